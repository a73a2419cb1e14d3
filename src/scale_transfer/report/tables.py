"""Tables of a fitted model: the asymptotes, the extrapolation, the data, model and sampler.

Every table that reports an interval reads one :meth:`Posterior.summary` (or
:meth:`Posterior.predict`) and names the interval's kind and probability. The lookups of a
per-task baseline (least squares, the truth of a simulation) live here too; the figures
use them as well, so that a table and a figure never disagree on which row is a task's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scale_transfer.config import DEFAULT_KIND, DEFAULT_PROB
from scale_transfer.plots.common import (
    INTERVAL_NAMES,
    interval_label,
    lsq_interval_prob,
    short_label,
    task_row,
    with_asymptote,
)
from scale_transfer.posterior import interval

if TYPE_CHECKING:
    from scale_transfer.config import ModelConfig
    from scale_transfer.posterior import Posterior

__all__ = [
    "EXTRAPOLATION_US",
    "INTERVAL_NAMES",
    "asymptote_table",
    "data_table",
    "diagnostics_table",
    "extrapolation_table",
    "format_frame",
    "interval_label",
    "lsq_interval_prob",
    "model_table",
    "prior_table",
    "priors_used",
    "refit_table",
    "sampler_table",
    "short_label",
    "task_row",
    "with_asymptote",
]

#: Upstream accuracies of the extrapolation table.
EXTRAPOLATION_US = (0.7, 0.8, 0.9, 1.0)
#: Decimals of the numbers in a report's tables.
DIGITS = 4


# ----------------------------------------------------------------------------- formatting
def format_value(v: Any, digits: int = DIGITS) -> str:
    """Format one cell: booleans as yes/no, floats with ``digits`` decimals, NaN as empty."""
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        if not np.isfinite(v):
            return ""
        return f"{float(v):.{digits}f}"
    return "" if v is None else str(v)


def format_frame(df: pd.DataFrame, digits: dict[str, int] | None = None) -> pd.DataFrame:
    """Return ``df`` as strings (:func:`format_value`), with ``digits`` per column."""
    digits = digits or {}
    return pd.DataFrame(
        {c: [format_value(v, digits.get(c, DIGITS)) for v in df[c].tolist()] for c in df.columns}
    )


# ------------------------------------------------------------------------- result tables
def _check_summary(summary: pd.DataFrame, prob: float, kind: str) -> None:
    if not (np.allclose(summary["prob"], prob) and (summary["interval"] == kind).all()):
        raise ValueError(
            f"the summary given holds {summary['prob'].iloc[0]:g} {summary['interval'].iloc[0]} "
            f"intervals; asked for {prob:g} {kind}"
        )


def asymptote_table(
    post: Posterior,
    prob: float = DEFAULT_PROB,
    *,
    interval_kind: str = DEFAULT_KIND,
    lsq: pd.DataFrame | None = None,
    truth: pd.DataFrame | None = None,
    lsq_prob: float | None = None,
    summary: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Return the asymptote table of a report: :meth:`Posterior.summary` and baselines.

    Parameters
    ----------
    post : Posterior
        The fit.
    prob : float
        Interval probability.
    interval_kind : {"eti", "hdi"}
        Interval kind.
    lsq : pandas.DataFrame, optional
        :func:`scale_transfer.lsq.fit_lsq_frame` output: adds ``lsq`` (the estimate) and its
        bootstrap bounds ``lsq lower``, ``lsq upper``.
    truth : pandas.DataFrame, optional
        True asymptotes: adds ``truth`` and ``truth inside`` (inside the credible interval).
    lsq_prob : float, optional
        Probability of the bootstrap interval (default ``prob``), named in ``lsq interval``.
    summary : pandas.DataFrame, optional
        ``post.summary(prob=prob, interval_kind=interval_kind)`` when the caller has it already.

    Returns
    -------
    pandas.DataFrame
        ``task, setting, n, median, mean, sd, lower, upper, interval`` (the values of
        :meth:`Posterior.summary`, ``interval`` naming kind and probability) and the
        optional columns.
    """
    s = post.summary(prob=prob, interval_kind=interval_kind) if summary is None else summary
    _check_summary(s, prob, interval_kind)
    out = s[["task", "setting", "n", "median", "mean", "sd", "lower", "upper"]].copy()
    out["interval"] = interval_label(prob, interval_kind)
    keys = list(zip(s["setting"].astype(str), s["task"].astype(str), strict=True))
    if lsq is not None:
        rows = [task_row(lsq, st, t) for st, t in keys]

        def col(name: str) -> list[float]:
            return [np.nan if r is None else float(r.get(name, np.nan)) for r in rows]

        out["lsq"], out["lsq lower"], out["lsq upper"] = (
            col("asymptote"),
            col("asymptote_lower"),
            col("asymptote_upper"),
        )
        has = np.isfinite(out["lsq lower"].to_numpy(float))
        out["lsq interval"] = np.where(
            has, f"{100 * lsq_interval_prob(lsq, lsq_prob, prob):g}% percentile bootstrap", ""
        )
    truth = with_asymptote(truth)
    if truth is not None:
        rows = [task_row(truth, st, t) for st, t in keys]
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
    prob: float = DEFAULT_PROB,
    *,
    interval_kind: str = DEFAULT_KIND,
) -> pd.DataFrame:
    """DS accuracy predicted at the given US accuracies, and what it adds to the data's best.

    Parameters
    ----------
    post : Posterior
        The fit.
    us_acc : sequence of float
        Upstream accuracies.
    prob : float
        Interval probability.
    interval_kind : {"eti", "hdi"}
        Interval kind.

    Returns
    -------
    pandas.DataFrame
        ``task, setting, us_acc, data US max, extrapolated, curve mean, curve lower,
        curve upper, gain median, gain lower, gain upper, new model mean, new model lower,
        new model upper, interval``: the law's value (:meth:`Posterior.predict` with
        ``kind="curve"``); ``gain`` the curve's rise from the task's largest observed US
        accuracy to ``us_acc`` (the same draws; NaN where ``us_acc`` is not beyond it);
        and the DS accuracy of a new model there (``kind="new-model"``). ``extrapolated``
        is True beyond the largest observed US accuracy of the task.
    """
    curve = post.predict(us_acc, prob=prob, kind="curve", interval_kind=interval_kind)
    new = post.predict(us_acc, prob=prob, kind="new-model", interval_kind=interval_kind)
    d = post.data
    us_max = d.groupby([d["setting"].astype(str), d["task"].astype(str)])["us_acc"].max()
    g = post.groups
    groups = list(zip(g["setting"].astype(str), g["task"].astype(str), strict=True))
    top_g = np.array([us_max.get(k, np.nan) for k in groups])
    us = np.asarray(us_acc, dtype=float)
    n_g, n_us = len(groups), us.size
    # the curve at the asked US accuracies and at each task's best observed one, same draws
    x = post.predict_draws(np.concatenate([us, np.nan_to_num(top_g, nan=0.5)]), kind="curve")
    gain = x[:, :, :n_us] - x[:, np.arange(n_g), n_us + np.arange(n_g)][:, :, None]
    g_lo, g_hi = interval(gain.reshape(gain.shape[0], -1), prob, interval_kind)
    beyond = (us[None, :] > top_g[:, None]).reshape(-1)
    g_med = np.median(gain, axis=0).reshape(-1)
    top = np.repeat(top_g, n_us)  # predict's rows: group-major, us_acc within a group
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
            "gain median": np.where(beyond, g_med, np.nan),
            "gain lower": np.where(beyond, g_lo, np.nan),
            "gain upper": np.where(beyond, g_hi, np.nan),
            "new model mean": new["mean"],
            "new model lower": new["lower"],
            "new model upper": new["upper"],
            # curve: a credible interval of the law; new model: a predictive interval
            "interval": interval_label(
                prob, interval_kind, "credible (curve) / predictive (new model)"
            ),
        }
    )


# ---------------------------------------------------------------------------- detail tables
def data_table(post: Posterior) -> pd.DataFrame:
    """Per task (and setting): points, points fitted, hull points, US and DS ranges."""
    d = post.data
    rows = []
    for setting, task in post.groups[["setting", "task"]].itertuples(index=False):
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


def priors_used(config: ModelConfig) -> list[str]:
    """Return the names of the priors that the model of ``config`` draws from.

    The population priors of the three law parameters (only their means with complete
    pooling); the likelihood's own (``sigma``; with Student-t also ``nu``; the frontier's
    ``noise`` and gap priors instead of ``sigma``); ``effect_sigma`` with effects and
    ``discrepancy_eta`` with a discrepancy term.
    """
    names = []
    for param in ("log_level", "log_alpha", "logit_e_ir"):
        names.append(f"{param}_mu")
        if config.pooling != "complete":
            names.append(f"{param}_sigma")
    names += {
        "gaussian": ["sigma"],
        "student_t": ["sigma", "nu"],
        "frontier": ["noise", "gap", "gap_shape", "gap_power", "bad_share", "bad_gap"],
    }[config.likelihood]
    if getattr(config, "effects", ()):
        names.append("effect_sigma")
    if getattr(config, "discrepancy", False):
        names.append("discrepancy_eta")
    return names


def model_table(config: ModelConfig) -> pd.DataFrame:
    """Return the model's options (everything of the config but its priors)."""
    cfg = config.to_dict()
    cfg.pop("priors")
    return pd.DataFrame({"option": list(cfg), "value": [str(v) for v in cfg.values()]})


def prior_table(config: ModelConfig) -> pd.DataFrame:
    """Return the priors of :func:`priors_used`, as stored with the fit."""
    priors = config.full_priors
    rows = []
    for name in priors_used(config):
        spec = priors[name]
        params = ", ".join(f"{k}={v:g}" for k, v in spec.items() if k != "dist")
        rows.append({"parameter": name, "prior": f"{spec['dist']}({params})"})
    return pd.DataFrame(rows, columns=["parameter", "prior"])


def sampler_table(post: Posterior) -> pd.DataFrame:
    """Return the sampler's settings, with the compile and sampling times where known."""
    sc = post.sampler.to_dict()
    diag = post.diagnostics
    for key, value in (
        ("compile seconds", getattr(diag, "compile_seconds", None)),
        ("sampling seconds", getattr(diag, "sample_seconds", None)),
    ):
        if value is not None and math.isfinite(value):
            sc[key] = f"{value:.1f}"
    return pd.DataFrame({"option": list(sc), "value": [str(v) for v in sc.values()]})


def refit_table(refits: pd.DataFrame) -> pd.DataFrame:
    """Return the refits' convergence as shown (:attr:`Posterior.refits`)."""
    return pd.DataFrame(
        {
            "refit": refits["refit"],
            "points": refits["points"].map(lambda v: f"{int(v):,}"),
            "verdict": refits["ok"].map(lambda ok: "converged" if ok else "NOT CONVERGED"),
            "max R-hat": refits["max_rhat"].map(lambda v: f"{v:.3f}"),
            "min bulk ESS": refits["min_ess_bulk"].map(lambda v: f"{v:.0f}"),
            "min tail ESS": refits["min_ess_tail"].map(lambda v: f"{v:.0f}"),
            "divergences": refits["divergences"].map(lambda v: f"{int(v)}"),
        }
    )


def diagnostics_table(post: Posterior) -> pd.DataFrame:
    """Return the numbers behind the convergence verdict."""
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
