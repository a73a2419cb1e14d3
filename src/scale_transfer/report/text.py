"""The sentences of a report: the answer first, then what each table and interval means.

Every function returns plain text (no markup); the renderers escape it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scale_transfer.config import TOP_POINTS
from scale_transfer.report.tables import interval_label, short_label

if TYPE_CHECKING:
    from scale_transfer.config import ModelConfig
    from scale_transfer.posterior import Posterior

__all__ = [
    "answer",
    "calibration_note",
    "data_intro",
    "interval_note",
    "law_text",
    "lsq_note",
    "truth_note",
    "whose_asymptote",
]


def whose_asymptote(config: ModelConfig) -> str:
    """Say whose curve the fit's asymptote belongs to."""
    if config.target == "hull":
        who = "the frontier (the best models: the upper hull of each task)"
    elif config.target == "top":
        who = (
            f"the frontier (the best models' curve, from {TOP_POINTS} under a truncated "
            "stochastic-frontier likelihood)"
        )
    elif config.likelihood == "frontier":
        who = "the frontier (the best models' curve, under a stochastic-frontier likelihood)"
    else:
        who = "a typical model (the mean curve of all points, below the best models' frontier)"
    if getattr(config, "effects", ()):
        who += ", for the population curve (every level effect at 0)"
    return who


def _interval_words(prob: float, kind: str) -> str:
    if kind == "eti":
        how = f"quantiles {(1 - prob) / 2:g} and {(1 + prob) / 2:g} of the posterior draws"
    else:
        how = f"the narrowest interval holding {prob:g} of the posterior draws"
    return f"{interval_label(prob, kind)} ({short_label(prob, kind)}: {how})"


def _gains(extra: pd.DataFrame, setting: str, task: str, us_acc: Sequence[float]) -> str:
    rows = extra[(extra["task"].astype(str) == task) & (extra["setting"].astype(str) == setting)]
    by_us = dict(zip(rows["us_acc"].astype(float), rows["gain median"], strict=True))
    gains = [by_us.get(float(u), np.nan) for u in us_acc]
    return " / ".join(f"{g:+.3f}" if np.isfinite(g) else "n/a" for g in gains)


def answer(
    post: Posterior,
    summary: pd.DataFrame,
    extra: pd.DataFrame,
    prob: float,
    kind: str,
    us_acc: Sequence[float],
) -> str:
    """Return the report's first paragraph: per task, the asymptote and what more buys.

    Parameters
    ----------
    post : Posterior
        The fit.
    summary : pandas.DataFrame
        ``post.summary(prob=prob, kind=kind)``.
    extra : pandas.DataFrame
        :func:`~scale_transfer.report.tables.extrapolation_table` at ``us_acc``.
    prob, kind
        The interval.
    us_acc : sequence of float
        The upstream accuracies asked for.
    """
    multi = summary["setting"].astype(str).nunique() > 1
    n_groups = len(post.groups)
    parts = []
    for i, r in enumerate(summary.itertuples(index=False)):
        name = f"{r.task} ({r.setting})" if multi else str(r.task)
        item = f"{name} {r.median:.3f} [{r.lower:.3f}, {r.upper:.3f}]"
        if i < n_groups:
            item += ", " + _gains(extra, str(r.setting), str(r.task), us_acc)
        parts.append(item)
    asked = " / ".join(f"{u:g}" for u in us_acc)
    whose = post.estimand_fit()
    curve = "that curve" if whose is post else "a typical model's curve (the fit of all points)"
    return (
        f"Asymptote (1 - e_IR, the DS accuracy at 100% US accuracy) of "
        f"{whose_asymptote(whose.config)}: posterior median and {_interval_words(prob, kind)}; "
        f"then what more pre-training would buy: the rise of {curve} from each task's best "
        f"observed US accuracy to US accuracy {asked} (posterior medians, n/a where the data "
        f"reach it already; intervals in section 3). Per task: {'; '.join(parts)}."
    )


def data_intro(post: Posterior) -> str:
    """Say how many points, models and tasks were fitted, over which US range."""
    d = post.data
    n_models = d["model"].nunique() if "model" in d else len(d)
    settings = ", ".join(map(str, pd.unique(post.groups["setting"])))
    fitted = {
        "hull": "the upper convex hull of each task",
        "top": TOP_POINTS,
    }.get(post.config.target, "all points")
    front = getattr(post, "frontier", None)
    also = (
        ""
        if front is None
        else f" The frontier fit, for the asymptotes: {int(front.groups['n'].sum())} points "
        f"({TOP_POINTS})."
    )
    return (
        f"{len(d)} points ({n_models} models) on {len(post.groups)} tasks, setting(s): "
        f"{settings}; US accuracy from {d['us_acc'].min():.3f} to {d['us_acc'].max():.3f}. "
        f"Fitted: {int(post.groups['n'].sum())} points ({fitted}).{also}"
    )


def frontier_note(post: Posterior) -> str:
    """Say which fit the asymptotes come from, where a frontier fit gives them."""
    if getattr(post, "frontier", None) is None:
        return ""
    return (
        " The asymptotes (the table, Figure A's purple band, the forest plot) come from a "
        f"second fit to the same data, of the frontier: {TOP_POINTS} under a truncated "
        "stochastic-frontier likelihood. The curves, the extrapolation and the new-model "
        "intervals are those of the fit of all points, a typical model's, which sits below "
        "the frontier."
    )


def other_fits(refits: pd.DataFrame) -> str:
    """Say what the fits of the refit table are, before it."""
    what = []
    roles = set(refits["refit"])
    if roles & {"drift layer", "self-check"}:
        what.append(
            "the drift layer and the self-check come from refits of the same model to the data "
            "without each task's top band(s) by US accuracy"
        )
    if "frontier" in roles:
        what.append(f"the asymptotes from the frontier fit ({TOP_POINTS})")
    text = "; ".join(what)
    return text[:1].upper() + text[1:] + "; their checks:"


def law_text(law: str = "error") -> str:
    """Describe the law and its parameters."""
    if law == "odds":
        return (
            "The law: acc_DS = c * sigmoid(a + alpha * logit(acc_US)), the odds-space form of "
            "Abnar et al.'s (2022) e_DS = k * e_US^alpha + e_IR near 100% US accuracy, with "
            "c = 1 - e_IR the asymptote; Gaussian scatter in logit(acc_DS) whose log sd is "
            "linear in logit(acc_US). Each task's curve is sampled through its mean at the "
            "task's mean logit US accuracy, its rise from there to the 90th percentile and the "
            "headroom of logit(c) above it, each drawn from a population-level distribution "
            "(partial pooling)."
        )
    return (
        "The law (Abnar et al., 2022): e_DS = k * e_US^alpha + e_IR with e = 1 - accuracy; the "
        "asymptote 1 - e_IR is the DS accuracy at 100% US accuracy. Each task has its own k, "
        "alpha and e_IR, drawn from population-level distributions (partial pooling) for the "
        "hierarchical model. Priors are on log(level) (the log reducible DS error at the "
        "reference US error), log(alpha) and logit(e_IR)."
    )


def interval_note(config: ModelConfig, prob: float, kind: str) -> str:
    """Say what every interval of the report is, and what curve and new model mean."""
    text = (
        f"Every interval is a {_interval_words(prob, kind)}. 'Curve' intervals are for the "
        "law's value (the frontier, for a hull or frontier fit); 'new model' intervals add the "
        "model-level scatter of the likelihood, for the DS accuracy of one new model."
    )
    if config.pooling != "independent":
        text += " '(new task)' is an unseen task drawn from the population."
    if getattr(config, "effects", ()):
        text += (
            f" This fit has level effects ({', '.join(config.effects)}): the curves and "
            "asymptotes shown are the population curve (every effect at 0), which is no one "
            "level's curve, and 'new model' intervals draw the new model's level from the "
            "population (a model of an unseen kind), so they are wider; for a given level use "
            "'predict --effect COLUMN=LEVEL' (Posterior.predict(..., effects={...}))."
        )
    return text


def lsq_note(lsq: pd.DataFrame | None, config: ModelConfig, lsq_prob: float) -> str:
    """Say what the least-squares columns are (empty without them)."""
    if lsq is None:
        return ""
    target = str(lsq["target"].iloc[0]) if "target" in lsq and len(lsq) else None
    where = {"hull": " fitted to the hull", "all": " fitted to all points"}.get(target, "")
    tail = (
        " (a fit to all points estimates a typical model's curve, below the frontier)."
        if target == "all" and config.likelihood == "frontier"
        else "."
    )
    return (
        f" 'lsq' is the least-squares estimate (the paper's method){where}, with its "
        f"{100 * lsq_prob:g}% percentile bootstrap interval{tail}"
    )


def truth_note(truth: pd.DataFrame | None) -> str:
    """Say what the truth columns are (empty without them)."""
    if truth is None:
        return ""
    return (
        " 'truth' is the true asymptote of the simulation; 'truth inside' says whether the "
        "credible interval holds it."
    )


#: What is measured of ``target="top"`` fits' asymptote intervals (docs/calibration.md).
TOP_CALIBRATION_NOTE = (
    " Calibration of these asymptote intervals, measured on 20 simulations with known truth "
    "in each of two settings (3,000 models each, 4 chains x 1,000 draws, the defaults; "
    "docs/calibration.md): the 90% intervals held 151 of 160 true asymptotes in jft-25shot "
    "(0.94) and 143 of 160 in in21k-1shot (0.89), the 50% intervals 0.56 and 0.50. All 40 "
    "fits passed the convergence check; read the intervals with this coverage where the "
    "fit converged, which section 5 says of this one."
)


def calibration_note(config: ModelConfig) -> str:
    """Return what is known of these intervals' calibration (docs/calibration.md)."""
    if config.target == "hull":
        return (
            " Caution: on 20 simulations with known truth, 90% intervals of hull fits covered "
            "only 72.5% of the true asymptotes (the hull keeps the highest noisy points, which "
            "biases a flat or still-rising frontier); read them as too narrow."
        )
    if config.target == "top":
        return TOP_CALIBRATION_NOTE
    if config.likelihood == "frontier":
        return (
            " Caution: on 20 simulations with known truth (300 models each), 90% intervals of "
            "frontier fits covered 85% of the true asymptotes, the misses nearly all below "
            "the truth (the asymptote is underestimated by about 0.002)."
        )
    note = (
        " Note: a fit to all points estimates the curve of a typical model, below the "
        "frontier; its asymptote is that curve's, not the best reachable accuracy."
    )
    if getattr(config, "law", "error") == "odds":
        note += (
            " Caution: on simulations with known truth (3,000 models each; docs/calibration.md)"
            " this model's 90% asymptote intervals held 12% of the true asymptotes: where the "
            "data end well below 100% US accuracy, the odds law's asymptote is set by its "
            "prior's tail (often near 1.0, with a narrow interval). Read it as an "
            "extrapolation, not a calibrated interval. What is validated are new-model "
            "predictions just beyond the data (the top 10% of models held out, "
            "docs/validation.md)."
        )
    return note
