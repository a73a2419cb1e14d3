"""Write a report: compute each summary once, lay out the sections, render, write.

The report reads top-down like an analysis: the answer (the asymptotes and what more
pre-training buys), Figure A and the forest plot, the extrapolation, the self-check and
the convergence verdict; then the details (data, model, the priors the model uses,
sampler settings).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from scale_transfer.config import DEFAULT_KIND, DEFAULT_PROB, VERSION
from scale_transfer.extrapolation import REFIT_ROLES, fit_name
from scale_transfer.publish import write_atomic
from scale_transfer.report import tables, text
from scale_transfer.report.document import Block, Document, Figure, Section, Verdict
from scale_transfer.report.figures import FIGURES, figure_specs, png_bytes
from scale_transfer.report.html import render_html
from scale_transfer.report.markdown import render_markdown
from scale_transfer.report.tables import EXTRAPOLATION_US, INTERVAL_NAMES, short_label

if TYPE_CHECKING:
    from scale_transfer.posterior import Posterior

__all__ = ["build_document", "report_paths", "write_report"]


def report_paths(out_dir: str | os.PathLike) -> dict[str, Path]:
    """Return the files :func:`write_report` writes into ``out_dir``.

    Parameters
    ----------
    out_dir : path
        The report folder.

    Returns
    -------
    dict of str to pathlib.Path
        ``"html"``, ``"md"`` and one entry per figure of :data:`FIGURES` (``<name>.png``).
    """
    out = Path(out_dir)
    paths = {"html": out / "report.html", "md": out / "report.md"}
    paths |= {name: out / f"{name}.png" for name in FIGURES}
    return paths


def _refits(post: Posterior) -> pd.DataFrame | None:
    """Return the convergence of the refits behind the drift layer, or None without any."""
    refits = getattr(post, "refits", None)
    return refits if isinstance(refits, pd.DataFrame) and len(refits) else None


def _verdict(post: Posterior) -> Verdict:
    """Return the main fit's verdict, failed also by a failed refit behind the drift layer."""
    d = post.diagnostics
    refits = _refits(post)
    bad = refits[~refits["ok"].astype(bool)] if refits is not None else None
    if d.ok and (bad is None or bad.empty):
        text = d.verdict()
        if refits is not None:
            text += f"; the {len(refits)} other fits ({', '.join(refits['refit'])}) converged too"
        return Verdict(True, text)
    numbers = d.verdict().split(". ")[0].removeprefix("NOT CONVERGED: ")
    reasons = list(d.failed)
    if bad is not None and not bad.empty:
        numbers = f"main fit: {numbers}; " + "; ".join(
            f"{fit_name(r.refit)}: NOT CONVERGED (max R-hat {r.max_rhat:.3f}, min bulk ESS "
            f"{r.min_ess_bulk:.0f}, {r.divergences} divergences)"
            for r in bad.itertuples(index=False)
        )
        reasons += [
            f"The {fit_name(r.refit)} did not converge: {r.failed} "
            f"{REFIT_ROLES[r.refit][1].capitalize()}; "
            "refit with another --seed or more --tune/--draws."
            for r in bad.itertuples(index=False)
        ]
    return Verdict(False, d.verdict(), numbers, tuple(reasons or [d.verdict()]))


def _self_check(post: Posterior, given: pd.DataFrame | None) -> pd.DataFrame | None:
    """Return the self-check: as given, else as the posterior carries it, else None."""
    if given is not None:
        return given
    carried = getattr(post, "self_check", None)
    return carried if isinstance(carried, pd.DataFrame) else None


def _shown_tables(
    asym: pd.DataFrame, extra: pd.DataFrame, prob: float, kind: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the asymptote and extrapolation tables as shown: interval named in the headers."""
    short = short_label(prob, kind)
    named = set(asym.get("lsq interval", pd.Series(dtype=str))) - {""}
    if "lsq interval" in asym and len(named) <= 1:  # one interval: named in the headers
        boot = f" ({named.pop().replace('percentile bootstrap', 'bootstrap')})" if named else ""
        asym = asym.drop(columns="lsq interval").rename(
            columns={"lsq lower": f"lsq lower{boot}", "lsq upper": f"lsq upper{boot}"}
        )
    if asym["setting"].nunique() == 1:
        asym, extra = asym.drop(columns="setting"), extra.drop(columns="setting")
    asym = asym.drop(columns="interval").rename(
        columns={"lower": f"lower ({short})", "upper": f"upper ({short})"}
    )
    bounds = ("curve", "gain", "new model")
    names = {f"{b} {side}": f"{b} {side} ({short})" for b in bounds for side in ("lower", "upper")}
    extra = extra.drop(columns="interval").rename(columns=names | {"us_acc": "US accuracy"})
    digits = {"US accuracy": 2}
    return tables.format_frame(asym, digits), tables.format_frame(extra, digits)


def _sections(
    post: Posterior,
    doc: Document,
    notes: str,
    answer: str,
    us_acc: Sequence[float],
    short: str,
    has_check: bool,
) -> list[Section]:
    figs = set(doc.figures)

    def fig(*names: str) -> list[Block]:
        return [Block("figure", n) for n in names if n in figs]

    asked = ", ".join(f"{u:g}" for u in us_acc)
    check = (
        [Block("table", "self_check")]
        if has_check
        else [Block("note", "This fit carries no extrapolation self-check: nothing to show.")]
    )
    refit_blocks = (
        [Block("p", text.other_fits(_refits(post))), Block("table", "refits")]
        if "refits" in doc.tables
        else []
    )
    return [
        Section("answer", "1. Answer", (Block("answer", answer), Block("table", "asymptotes"))),
        Section(
            "figures",
            f"2. Figure A and the asymptotes, {short}",
            (*fig("figure_a", "forest_asymptotes"), Block("note", notes)),
        ),
        Section(
            "extrapolation",
            f"3. What more pre-training buys: extrapolation, {short}",
            (
                Block(
                    "p",
                    f"DS accuracy predicted at US accuracy {asked}; 'extrapolated' marks US "
                    "accuracies beyond the largest observed one of the task ('data US max'), "
                    "where the law is the only evidence; 'gain' is the curve's rise above its "
                    "value at 'data US max' (the same posterior draws).",
                ),
                Block("table", "extrapolation"),
                *fig("figure_a_zoom"),
            ),
        ),
        Section("self-check", "4. Extrapolation self-check", tuple(check)),
        Section(
            "convergence",
            "5. Convergence",
            (
                Block("verdict"),
                Block("table", "diagnostics"),
                *refit_blocks,
                *fig("rank", "ppc"),
            ),
        ),
        Section(
            "data", "6. Details: data", (Block("p", text.data_intro(post)), Block("table", "data"))
        ),
        Section(
            "model",
            "7. Details: model and priors",
            (
                Block("p", text.law_text(getattr(post.config, "law", "error"))),
                Block("table", "model"),
                Block("p", "The priors this model uses (as stored with the fit):"),
                Block("table", "priors"),
                *fig("prior_predictive"),
            ),
        ),
        Section("sampler", "8. Details: sampler settings", (Block("table", "sampler"),)),
    ]


def build_document(
    post: Posterior,
    *,
    title: str | None = None,
    prob: float = DEFAULT_PROB,
    interval_kind: str = DEFAULT_KIND,
    lsq: pd.DataFrame | None = None,
    truth: pd.DataFrame | None = None,
    lsq_prob: float | None = None,
    us_acc: Sequence[float] = EXTRAPOLATION_US,
    figures: Sequence[str] = FIGURES,
    self_check: pd.DataFrame | None = None,
) -> Document:
    """Compute the report's summaries once, and lay out its text, tables and figures.

    Parameters are those of :func:`write_report`.

    Returns
    -------
    Document
    """
    kind = interval_kind
    lsq_prob = tables.lsq_interval_prob(lsq, lsq_prob, prob)
    cfg = post.config
    whose = post.estimand_fit().config  # the asymptotes': the frontier fit's, where it has one
    summary = post.summary(prob=prob, interval_kind=kind)  # the one summary: tables and figures
    asym = tables.asymptote_table(
        post, prob, interval_kind=kind, lsq=lsq, truth=truth, lsq_prob=lsq_prob, summary=summary
    )
    extra = tables.extrapolation_table(post, us_acc, prob, interval_kind=kind)
    asym_shown, extra_shown = _shown_tables(asym, extra, prob, kind)
    check = _self_check(post, self_check)
    refits = _refits(post)
    specs = figure_specs(post, summary, prob, kind, lsq, truth, lsq_prob)
    doc = Document(
        title=title
        or (
            f"scale-transfer report: {cfg.target} fit of {len(post.groups)} tasks "
            f"({cfg.pooling} pooling, {cfg.likelihood} likelihood)"
        ),
        meta=f"Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC} by scale-transfer {VERSION}.",
        verdict=_verdict(post),
        tables={
            "asymptotes": asym_shown,
            "extrapolation": extra_shown,
            "diagnostics": tables.diagnostics_table(post),
            **({"refits": tables.refit_table(refits)} if refits is not None else {}),
            "data": tables.format_frame(tables.data_table(post)),
            "model": tables.model_table(cfg),
            "priors": tables.prior_table(cfg),
            "sampler": tables.sampler_table(post),
        }
        | ({"self_check": tables.format_frame(check)} if check is not None else {}),
        figures={
            n: Figure(png_bytes(specs[n].build()), f"{n}.png", specs[n].caption)
            for n in FIGURES
            if n in figures
        },
    )
    notes = (
        text.interval_note(cfg, prob, kind)
        + text.frontier_note(post)
        + text.lsq_note(lsq, whose, lsq_prob)
        + text.truth_note(truth)
        + text.calibration_note(whose)
    )
    answer = text.answer(post, summary, extra, prob, kind, us_acc)
    short = short_label(prob, kind)
    doc.sections = _sections(post, doc, notes, answer, us_acc, short, check is not None)
    return doc


def write_report(
    post: Posterior,
    out_dir: str | os.PathLike,
    *,
    prob: float = DEFAULT_PROB,
    lsq: pd.DataFrame | None = None,
    title: str | None = None,
    truth: pd.DataFrame | None = None,
    interval_kind: str = DEFAULT_KIND,
    lsq_prob: float | None = None,
    us_acc: Sequence[float] = EXTRAPOLATION_US,
    figures: Sequence[str] = FIGURES,
    overwrite: bool = False,
    self_check: pd.DataFrame | None = None,
) -> dict[str, Path]:
    """Write ``report.html`` (self-contained) and ``report.md`` (with PNG figures) to a folder.

    Parameters
    ----------
    post : Posterior
        The fit.
    out_dir : path
        Folder to write to (created if missing).
    prob : float
        Probability of every credible and predictive interval.
    lsq : pandas.DataFrame, optional
        Least-squares baseline (:func:`scale_transfer.lsq.fit_lsq_frame`), shown beside the
        Bayesian estimates.
    title : str, optional
        Title of the report.
    truth : pandas.DataFrame, optional
        True parameters of a simulation (``Simulation.truth``), shown in the asymptote table
        and the figures.
    interval_kind : {"eti", "hdi"}
        Interval kind.
    lsq_prob : float, optional
        Probability of the least-squares bootstrap interval (default ``prob``).
    us_acc : sequence of float
        Upstream accuracies of the extrapolation table.
    figures : sequence of str
        Figures to include, a subset of :data:`FIGURES` (default all).
    overwrite : bool
        Replace existing report files; without it an existing file raises.
    self_check : pandas.DataFrame, optional
        An extrapolation self-check of the fit, shown in its section (default: the one the
        posterior carries as ``self_check``, if any; otherwise the section says there is
        none).

    Returns
    -------
    dict of str to pathlib.Path
        The files written: ``"html"``, ``"md"`` and one PNG per figure (see
        :func:`report_paths`).

    Raises
    ------
    FileExistsError
        If a report file exists and ``overwrite`` is False (nothing is written).
    """
    if interval_kind not in INTERVAL_NAMES:
        raise ValueError(f"interval_kind must be one of {tuple(INTERVAL_NAMES)}")
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1); got {prob}")
    unknown = set(figures) - set(FIGURES)
    if unknown:
        raise ValueError(f"unknown figure(s) {sorted(unknown)}; choose from {FIGURES}")
    paths = report_paths(out_dir)
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{', '.join(existing)} exist(s); pass overwrite=True (--overwrite) to replace"
        )
    doc = build_document(
        post, prob=prob, interval_kind=interval_kind, lsq=lsq, truth=truth, lsq_prob=lsq_prob,
        us_acc=us_acc, figures=figures, title=title, self_check=self_check,
    )  # fmt: skip
    # each file through a private temporary file, published atomically (never over another
    # writer's file without overwrite); both texts rendered before any is written
    texts = {"md": render_markdown(doc), "html": render_html(doc)}
    files = {name: fig.png for name, fig in doc.figures.items()}
    files |= {name: s.encode("utf-8") for name, s in texts.items()}
    for name, content in files.items():
        write_atomic(paths[name], lambda tmp, b=content: tmp.write_bytes(b), overwrite=overwrite)
    return {name: path for name, path in paths.items() if name in ("html", "md", *doc.figures)}
