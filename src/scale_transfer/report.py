"""Reports of a fitted model: one self-contained HTML file and its Markdown twin.

:func:`write_report` writes ``report.html`` (figures embedded as base64 PNG, no external
file, script or style) and ``report.md`` (the same text and tables, with the figures as PNG
files beside it). Both hold the data summary, the model and its priors, the convergence
verdict (loud when the sampler did not converge), the asymptote table, the extrapolation
table and the figures; every interval is named with its kind and probability.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scale_transfer import __version__
from scale_transfer.plots import (
    INTERVAL_NAMES,
    inner_prob_for,
    interval_label,
    lsq_interval_prob,
    task_row,
    with_asymptote,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from scale_transfer.posterior import Posterior

__all__ = [
    "EXTRAPOLATION_US",
    "FIGURES",
    "asymptote_table",
    "extrapolation_table",
    "report_paths",
    "write_report",
]

#: Upstream accuracies of the extrapolation table.
EXTRAPOLATION_US = (0.7, 0.8, 0.9, 1.0)
#: Figure files of a report, in the order they appear.
FIGURES = (
    "figure_a",
    "figure_a_zoom",
    "forest_asymptotes",
    "ppc",
    "rank",
    "prior_predictive",
)
_DIGITS = 4


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


def _short(prob: float, kind: str) -> str:
    return f"{100 * prob:g}% {kind.upper()}"


def _fmt(v: Any, digits: int = _DIGITS) -> str:
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        if not np.isfinite(v):
            return ""
        return f"{float(v):.{digits}f}"
    return "" if v is None else str(v)


def _strings(df: pd.DataFrame, digits: dict[str, int] | None = None) -> pd.DataFrame:
    digits = digits or {}
    return pd.DataFrame(
        {c: [_fmt(v, digits.get(c, _DIGITS)) for v in df[c].tolist()] for c in df.columns}
    )


# ---------------------------------------------------------------------------- tables
def data_table(post: Posterior) -> pd.DataFrame:
    """Per task (and setting): points, points fitted, hull points, US and DS ranges."""
    d = post.data
    rows = []
    for setting, task, _n in post.groups[["setting", "task", "n"]].itertuples(index=False):
        m = (d["task"].astype(str) == str(task)) & (d["setting"].astype(str) == str(setting))
        g = d[m]
        rows.append(
            {
                "task": task,
                "setting": setting,
                "points": len(g),
                "fitted": int(g["used"].sum()) if "used" in g else len(g),
                "on hull": int(g["on_hull"].sum()) if "on_hull" in g else 0,
                "US min": g["us_acc"].min(),
                "US max": g["us_acc"].max(),
                "DS min": g["ds_acc"].min(),
                "DS max": g["ds_acc"].max(),
            }
        )
    return pd.DataFrame(rows)


def asymptote_table(
    post: Posterior,
    prob: float = 0.9,
    *,
    kind: str = "eti",
    lsq: pd.DataFrame | None = None,
    truth: pd.DataFrame | None = None,
    lsq_prob: float | None = None,
) -> pd.DataFrame:
    """Return the asymptote table of a report: :meth:`Posterior.summary` and baselines.

    Parameters
    ----------
    post : Posterior
        The fit.
    prob : float
        Interval probability.
    kind : {"eti", "hdi"}
        Interval kind.
    lsq : pandas.DataFrame, optional
        :func:`scale_transfer.lsq.fit_lsq_frame` output: adds ``lsq`` (the estimate) and its
        bootstrap bounds ``lsq lower``, ``lsq upper``.
    truth : pandas.DataFrame, optional
        True asymptotes: adds ``truth`` and ``truth inside`` (inside the credible interval).
    lsq_prob : float, optional
        Probability of the bootstrap interval (default ``prob``), named in ``lsq interval``.

    Returns
    -------
    pandas.DataFrame
        ``task, setting, n, median, mean, sd, lower, upper, interval`` (the values of
        :meth:`Posterior.summary`, ``interval`` naming kind and probability) and the
        optional columns.
    """
    s = post.summary(prob=prob, kind=kind)
    out = s[["task", "setting", "n", "median", "mean", "sd", "lower", "upper"]].copy()
    out["interval"] = interval_label(prob, kind)
    if lsq is not None:
        rows = [task_row(lsq, st, t) for st, t in zip(s["setting"], s["task"], strict=True)]
        out["lsq"] = [np.nan if r is None else float(r["asymptote"]) for r in rows]
        out["lsq lower"] = [
            np.nan if r is None else float(r.get("asymptote_lower", np.nan)) for r in rows
        ]
        out["lsq upper"] = [
            np.nan if r is None else float(r.get("asymptote_upper", np.nan)) for r in rows
        ]
        has = np.isfinite(out["lsq lower"].to_numpy(float))
        out["lsq interval"] = np.where(
            has, f"{100 * lsq_interval_prob(lsq, lsq_prob, prob):g}% percentile bootstrap", ""
        )
    truth = with_asymptote(truth)
    if truth is not None:
        rows = [task_row(truth, st, t) for st, t in zip(s["setting"], s["task"], strict=True)]
        tv = np.array([np.nan if r is None else float(r["asymptote"]) for r in rows])
        out["truth"] = tv
        inside = (tv >= out["lower"].to_numpy()) & (tv <= out["upper"].to_numpy())
        out["truth inside"] = [
            bool(i) if np.isfinite(v) else None for i, v in zip(inside, tv, strict=True)
        ]
    return out


def extrapolation_table(
    post: Posterior,
    us_acc: Sequence[float] = EXTRAPOLATION_US,
    prob: float = 0.9,
    *,
    kind: str = "eti",
) -> pd.DataFrame:
    """DS accuracy predicted at the given US accuracies: the curve and a new model.

    Parameters
    ----------
    post : Posterior
        The fit.
    us_acc : sequence of float
        Upstream accuracies.
    prob : float
        Interval probability.
    kind : {"eti", "hdi"}
        Interval kind.

    Returns
    -------
    pandas.DataFrame
        ``task, setting, us_acc, data US max, extrapolated, curve mean, curve lower,
        curve upper, new model mean, new model lower, new model upper, interval``: the law's
        value (:meth:`Posterior.predict` with ``kind="curve"``) and the DS accuracy of a new
        model there (``kind="new-model"``); ``extrapolated`` is True beyond the largest
        observed US accuracy of the task.
    """
    curve = post.predict(us_acc, prob=prob, kind="curve", interval_kind=kind)
    new = post.predict(us_acc, prob=prob, kind="new-model", interval_kind=kind)
    d = post.data
    us_max = d.groupby([d["setting"].astype(str), d["task"].astype(str)])["us_acc"].max()
    keys = list(zip(curve["setting"].astype(str), curve["task"].astype(str), strict=True))
    top = np.array([us_max.get(k, np.nan) for k in keys])
    return pd.DataFrame(
        {
            "task": curve["task"],
            "setting": curve["setting"],
            "us_acc": curve["us_acc"],
            "data US max": top,
            "extrapolated": curve["us_acc"].to_numpy() > top,
            "curve mean": curve["mean"],
            "curve lower": curve["lower"],
            "curve upper": curve["upper"],
            "new model mean": new["mean"],
            "new model lower": new["lower"],
            "new model upper": new["upper"],
            # curve: a credible interval of the law; new model: a predictive interval
            "interval": interval_label(prob, kind, "credible (curve) / predictive (new model)"),
        }
    )


def _model_tables(post: Posterior) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    cfg = post.config.to_dict()
    priors = cfg.pop("priors")
    model = pd.DataFrame({"option": list(cfg), "value": [str(v) for v in cfg.values()]})
    prior_rows = []
    for name, spec in priors.items():
        params = ", ".join(f"{k}={v:g}" for k, v in spec.items() if k != "dist")
        prior_rows.append({"parameter": name, "prior": f"{spec['dist']}({params})"})
    sc = post.sampler.to_dict()
    diag = post.diagnostics
    for key, value in (
        ("compile seconds", diag.compile_seconds),
        ("sampling seconds", diag.sample_seconds),
    ):
        if value is not None and math.isfinite(value):
            sc[key] = f"{value:.1f}"
    sampler = pd.DataFrame({"option": list(sc), "value": [str(v) for v in sc.values()]})
    return model, pd.DataFrame(prior_rows), sampler


def _diagnostics_table(post: Posterior) -> pd.DataFrame:
    d = post.diagnostics
    rows = [
        ("max R-hat (rank-normalized split)", f"{d.max_rhat:.3f}"),
        ("min bulk ESS", f"{d.min_ess_bulk:.0f}"),
        ("min tail ESS", f"{d.min_ess_tail:.0f}"),
        ("divergent transitions", str(d.divergences)),
        ("max tree depth hits", str(d.max_depth_hits)),
        ("chains x draws", f"{d.chains} x {d.draws}"),
    ]
    return pd.DataFrame(rows, columns=["check", "value"])


# ---------------------------------------------------------------------------- figures
def _figures(
    post: Posterior,
    prob: float,
    kind: str,
    lsq: pd.DataFrame | None,
    truth: pd.DataFrame | None,
    lsq_prob: float,
) -> dict[str, tuple[Callable[[], Figure], str]]:
    """Figure builders (called lazily) and captions, by name."""
    from scale_transfer import plots

    band = interval_label(prob, kind, "credible band")
    lsq_txt = " The dash-dotted black curve is the least-squares fit (the paper's method)."
    truth_txt = " The green curve is the true law of the simulation."
    extra = (lsq_txt if lsq is not None else "") + (truth_txt if truth is not None else "")
    return {
        "figure_a": (
            lambda: plots.figure_a(post, prob=prob, lsq=lsq, truth=truth, interval_kind=kind),
            f"Figure A with uncertainty: DS accuracy against US accuracy per task, points sized "
            f"and coloured by parameter count, upper-hull points circled. Blue: posterior median "
            f"of the law and its {band}, dashed on the grey background where it is "
            f"extrapolated beyond the largest observed US accuracy. Purple: the asymptote "
            f"1 - e_IR with its {interval_label(prob, kind)}.{extra}",
        ),
        "figure_a_zoom": (
            lambda: plots.figure_a(
                post, prob=prob, lsq=lsq, truth=truth, interval_kind=kind, zoom=True
            ),
            "The same, zoomed on the top of the observed US range and the extrapolation: how "
            "the band widens beyond the data and meets the asymptote.",
        ),
        "forest_asymptotes": (
            lambda: plots.forest_asymptotes(
                post, prob=prob, lsq=lsq, truth=truth, interval_kind=kind, lsq_prob=lsq_prob
            ),
            f"Asymptote per task: {interval_label(prob, kind)} (thin) and "
            f"{100 * inner_prob_for(prob):g}% (thick) with the posterior median"
            + (
                "; in orange the population-level prediction for an unseen task."
                if post.config.pooling != "independent"
                else "."
            )
            + (" Crosses: least squares with its bootstrap interval." if lsq is not None else "")
            + (" Green diamonds: the true asymptotes." if truth is not None else ""),
        ),
        "ppc": (
            lambda: plots.ppc_plot(post, prob=prob, interval_kind=kind),
            f"Posterior predictive check: the fitted points against the "
            f"{interval_label(prob, kind, 'predictive band')} (and "
            f"{100 * inner_prob_for(prob):g}%) of the DS accuracy of a "
            "new model. About that share of the points should fall inside; far fewer means the "
            "model understates the scatter, far more that it overstates it.",
        ),
        "rank": (
            lambda: plots.trace_or_rank_plot(post),
            "Rank plots per chain of k, alpha and e_IR: flat histograms inside the grey band "
            "mean that the chains explored the same posterior.",
        ),
        "prior_predictive": (
            lambda: plots.prior_predictive_plot(post.config, post.data),
            "Prior predictive check: curves of the law drawn from the priors (before seeing "
            "the data), with the fitted points for scale, and the prior of the asymptote.",
        ),
    }


def _png(fig: Figure, dpi: int = 110) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


# ---------------------------------------------------------------------------- rendering
def _calibration_note(post: Posterior) -> str:
    """Return what is known of these intervals' calibration (docs/calibration.md)."""
    if post.config.target == "hull":
        return (
            " Caution: on 20 simulations with known truth, 90% intervals of hull fits covered "
            "only 72.5% of the true asymptotes (the hull keeps the highest noisy points, which "
            "biases a flat or still-rising frontier); read them as too narrow."
        )
    if post.config.likelihood == "frontier":
        return (
            " Caution: on 20 simulations with known truth (300 models each), 90% intervals of "
            "frontier fits covered 85% of the true asymptotes, the misses nearly all below "
            "the truth (the asymptote is underestimated by about 0.002)."
        )
    return (
        " Note: a fit to all points estimates the curve of a typical model, below the "
        "frontier; its asymptote is that curve's, not the best reachable accuracy."
    )


def _md_table(df: pd.DataFrame) -> str:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    head = "| " + " | ".join(cell(c) for c in df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def _html_table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, escape=True, border=0, classes="table")


_CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table.table { border-collapse: collapse; font-size: .85em; margin: .5em 0 1em; }
table.table th, table.table td { border: 1px solid #ddd; padding: .25em .55em; text-align: right; }
table.table th { background: #f3f3f3; }
table.table td:first-child, table.table th:first-child { text-align: left; }
.verdict { padding: .8em 1.1em; border-radius: 6px; margin: 1em 0; }
.verdict.ok { background: #e8f5e9; border: 1px solid #66bb6a; }
.verdict.bad { background: #fdecea; border: 3px solid #d32f2f; color: #7f0000;
               font-size: 1.15em; }
.verdict.bad strong { font-size: 1.3em; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #444; }
.note { color: #555; font-size: .9em; }
"""


def _verdict(post: Posterior) -> tuple[str, str]:
    """Return the verdict as (html, markdown)."""
    d = post.diagnostics
    if d.ok:
        text = d.verdict()
        return (
            f'<div class="verdict ok"><strong>Converged.</strong> {html.escape(text)}</div>',
            f"> **Converged.** {text}",
        )
    head = "NOT CONVERGED: the intervals in this report are not reliable."
    numbers = d.verdict().split(". ")[0].removeprefix("NOT CONVERGED: ")
    reasons = d.failed or [d.verdict()]
    items = "".join(f"<li>{html.escape(r)}</li>" for r in reasons)
    return (
        f'<div class="verdict bad"><strong>WARNING: {head}</strong>'
        f"<p>{html.escape(numbers)}.</p><ul>{items}</ul></div>",
        f"> **WARNING: {head}**\n>\n> {numbers}.\n>\n" + "\n".join(f"> - {r}" for r in reasons),
    )


def write_report(
    post: Posterior,
    out_dir: str | os.PathLike,
    *,
    prob: float = 0.9,
    lsq: pd.DataFrame | None = None,
    title: str | None = None,
    truth: pd.DataFrame | None = None,
    interval_kind: str = "eti",
    lsq_prob: float | None = None,
    us_acc: Sequence[float] = EXTRAPOLATION_US,
    figures: Sequence[str] = FIGURES,
    overwrite: bool = False,
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
    lsq_prob = lsq_interval_prob(lsq, lsq_prob, prob)
    cfg = post.config
    title = title or (
        f"scale-transfer report: {cfg.target} fit of {len(post.groups)} tasks "
        f"({cfg.pooling} pooling, {cfg.likelihood} likelihood)"
    )
    label = interval_label(prob, interval_kind)
    short = _short(prob, interval_kind)

    # ---- tables
    data_df = data_table(post)
    model_df, prior_df, sampler_df = _model_tables(post)
    diag_df = _diagnostics_table(post)
    asym_df = asymptote_table(
        post, prob, kind=interval_kind, lsq=lsq, truth=truth, lsq_prob=lsq_prob
    )
    extra_df = extrapolation_table(post, us_acc, prob, kind=interval_kind)
    if asym_df["setting"].nunique() == 1:
        asym_df = asym_df.drop(columns="setting")
        extra_df = extra_df.drop(columns="setting")
    asym_df = asym_df.drop(columns="interval").rename(
        columns={"lower": f"lower ({short})", "upper": f"upper ({short})"}
    )
    extra_df = extra_df.drop(columns="interval").rename(
        columns={
            "curve lower": f"curve lower ({short})",
            "curve upper": f"curve upper ({short})",
            "new model lower": f"new model lower ({short})",
            "new model upper": f"new model upper ({short})",
            "us_acc": "US accuracy",
        }
    )
    tables = {
        "data": _strings(data_df),
        "model": model_df,
        "priors": prior_df,
        "sampler": sampler_df,
        "diagnostics": diag_df,
        "asymptotes": _strings(asym_df, {"US accuracy": 2}),
        "extrapolation": _strings(extra_df, {"US accuracy": 2}),
    }

    # ---- figures
    builders = _figures(post, prob, interval_kind, lsq, truth, lsq_prob)
    pngs = {name: (_png(builders[name][0]()), builders[name][1]) for name in figures}

    # ---- text
    d = post.data
    n_models = d["model"].nunique() if "model" in d else len(d)
    settings = ", ".join(map(str, pd.unique(post.groups["setting"])))
    intro = (
        f"{len(d)} points ({n_models} models) on {len(post.groups)} tasks, setting(s): "
        f"{settings}; US accuracy from {d['us_acc'].min():.3f} to {d['us_acc'].max():.3f}. "
        f"Fitted: {int(post.groups['n'].sum())} points "
        f"({'the upper convex hull of each task' if cfg.target == 'hull' else 'all points'})."
    )
    law = (
        "The law (Abnar et al., 2022): e_DS = k * e_US^alpha + e_IR with e = 1 - accuracy; the "
        "asymptote 1 - e_IR is the DS accuracy at 100% US accuracy. Each task has its own k, "
        "alpha and e_IR, drawn from population-level distributions (partial pooling) for the "
        "hierarchical model. Priors are on log(level) (the log reducible DS error at the "
        "reference US error), log(alpha) and logit(e_IR)."
    )
    interval_note = (
        f"Every interval is a {label} ({short}: quantiles {(1 - prob) / 2:g} and "
        f"{(1 + prob) / 2:g} of the posterior draws)"
        if interval_kind == "eti"
        else f"Every interval is a {label} ({short}: the narrowest interval holding {prob:g} of "
        "the posterior draws)"
    ) + (
        ". 'Curve' intervals are for the law's value (the frontier, for a hull fit); 'new model' "
        "intervals add the model-level scatter of the likelihood, for the DS accuracy of one new "
        "model."
        + (
            " '(new task)' is an unseen task drawn from the population."
            if cfg.pooling != "independent"
            else ""
        )
        + (
            f" This fit has level effects ({', '.join(cfg.effects)}): the curves and asymptotes "
            "shown are the population curve (every effect at 0), which is no one level's "
            "curve, and 'new model' intervals draw the new model's level from the population "
            "(a model of an unseen kind), so they are wider; for a given level use "
            "'predict --effect COLUMN=LEVEL' (Posterior.predict(..., effects={...}))."
            if getattr(cfg, "effects", ())
            else ""
        )
    )
    lsq_target = (
        str(lsq["target"].iloc[0]) if lsq is not None and "target" in lsq and len(lsq) else None
    )
    lsq_note = (
        " 'lsq' is the least-squares estimate (the paper's method)"
        + {"hull": " fitted to the hull", "all": " fitted to all points"}.get(lsq_target, "")
        + f", with its {100 * lsq_prob:g}% percentile bootstrap interval"
        + (
            " (a fit to all points estimates a typical model's curve, below the frontier)."
            if lsq_target == "all" and cfg.likelihood == "frontier"
            else "."
        )
        if lsq is not None
        else ""
    )
    truth_note = (
        " 'truth' is the true asymptote of the simulation; 'truth inside' says whether the "
        "credible interval holds it."
        if truth is not None
        else ""
    )
    sections: list[tuple[str, str, list[tuple[str, str]]]] = [
        # (id, heading, [(kind, payload)]) kind: p, table, fig
        ("data", "1. Data", [("p", intro), ("table", "data")]),
        (
            "model",
            "2. Model and priors",
            [
                ("p", law),
                ("table", "model"),
                ("p", "Priors (as stored with the fit):"),
                ("table", "priors"),
                ("p", "Sampler:"),
                ("table", "sampler"),
            ],
        ),
        ("diagnostics", "3. Convergence", [("verdict", ""), ("table", "diagnostics")]),
        (
            "asymptotes",
            f"4. Asymptotes (1 - e_IR), {label}",
            [
                ("p", interval_note + lsq_note + truth_note + _calibration_note(post)),
                ("table", "asymptotes"),
            ],
        ),
        (
            "extrapolation",
            f"5. Extrapolation to higher US accuracy, {label}",
            [
                (
                    "p",
                    f"DS accuracy predicted at US accuracy {', '.join(f'{u:g}' for u in us_acc)}; "
                    "'extrapolated' marks US accuracies beyond the largest observed one of the "
                    "task ('data US max'), where the law is the only evidence.",
                ),
                ("table", "extrapolation"),
            ],
        ),
        ("figures", "6. Figures", [("fig", name) for name in pngs]),
    ]
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    meta = f"Generated {now} by scale-transfer {__version__}."
    v_html, v_md = _verdict(post)

    # ---- HTML
    h = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="note">{html.escape(meta)}</p>',
        v_html,
        "<nav><ul>"
        + "".join(f'<li><a href="#{sid}">{html.escape(head)}</a></li>' for sid, head, _ in sections)
        + "</ul></nav>",
    ]
    m = [f"# {title}", "", meta, "", v_md, ""]
    for sid, head, parts in sections:
        h.append(f'<h2 id="{sid}">{html.escape(head)}</h2>')
        m += [f"## {head}", ""]
        for kind, payload in parts:
            if kind == "p":
                h.append(f"<p>{html.escape(payload)}</p>")
                m += [payload, ""]
            elif kind == "verdict":
                h.append(v_html)
                m += [v_md, ""]
            elif kind == "table":
                h.append(_html_table(tables[payload]))
                m += [_md_table(tables[payload]), ""]
            elif kind == "fig":
                png, caption = pngs[payload]
                b64 = base64.b64encode(png).decode("ascii")
                h.append(
                    f'<figure id="{payload}"><img alt="{html.escape(payload)}" '
                    f'src="data:image/png;base64,{b64}">'
                    f"<figcaption>{html.escape(caption)}</figcaption></figure>"
                )
                m += [f"![{payload}]({paths[payload].name})", "", f"*{caption}*", ""]
    h.append("</body></html>")

    # ---- write
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, (png, _caption) in pngs.items():
        paths[name].write_bytes(png)
    paths["md"].write_text("\n".join(m), encoding="utf-8")
    paths["html"].write_text("\n".join(h), encoding="utf-8")
    return {name: path for name, path in paths.items() if name in ("html", "md", *pngs)}
