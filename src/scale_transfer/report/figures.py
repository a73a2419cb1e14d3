"""The figures of a report, their captions, and their PNG bytes.

Each figure is built only when asked for, from the summary the report computed once.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from scale_transfer.report.tables import interval_label

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from scale_transfer.posterior import Posterior

__all__ = ["FIGURES", "FigureSpec", "figure_specs", "png_bytes"]

#: Figure files of a report, in the order they appear.
FIGURES = (
    "figure_a",
    "forest_asymptotes",
    "figure_a_zoom",
    "rank",
    "ppc",
    "prior_predictive",
)


@dataclass(frozen=True)
class FigureSpec:
    """How to draw one figure (called lazily) and its caption."""

    build: Callable[[], Figure]
    caption: str


def _baseline_text(lsq: pd.DataFrame | None, truth: pd.DataFrame | None) -> str:
    return (
        " The dash-dotted black curve is the least-squares fit (the paper's method)."
        if lsq is not None
        else ""
    ) + (" The green curve is the true law of the simulation." if truth is not None else "")


def figure_specs(
    post: Posterior,
    summary: pd.DataFrame,
    prob: float,
    kind: str,
    lsq: pd.DataFrame | None,
    truth: pd.DataFrame | None,
    lsq_prob: float,
) -> dict[str, FigureSpec]:
    """Return every figure of :data:`FIGURES` by name, drawn from ``summary``.

    ``summary`` is ``post.summary(prob=prob, kind=kind)``: the figures show the very
    intervals of the tables.
    """
    from scale_transfer import plots

    band = interval_label(prob, kind, "credible band")
    inner = 100 * plots.inner_prob_for(prob)
    common = {"prob": prob, "lsq": lsq, "truth": truth, "interval_kind": kind, "summary": summary}
    pooled = post.config.pooling != "independent"
    has_frontier = getattr(post, "frontier", None) is not None
    of_frontier = " of the frontier fit (the best models' curve)" if has_frontier else ""
    return {
        "figure_a": FigureSpec(
            lambda: plots.figure_a(post, **common),
            f"Figure A with uncertainty: DS accuracy against US accuracy per task, points sized "
            f"and coloured by parameter count, upper-hull points circled. Blue: posterior median "
            f"of the law and its {band}, dashed on the grey background where it is "
            f"extrapolated beyond the largest observed US accuracy. Purple: the asymptote "
            f"1 - e_IR{of_frontier} with its {interval_label(prob, kind)}."
            f"{_baseline_text(lsq, truth)}",
        ),
        "forest_asymptotes": FigureSpec(
            lambda: plots.forest_asymptotes(post, lsq_prob=lsq_prob, **common),
            f"Asymptote per task: {interval_label(prob, kind)} (thin) and {inner:g}% (thick) "
            "with the posterior median"
            + ("; in orange the population-level prediction for an unseen task." if pooled else ".")
            + (" Crosses: least squares with its bootstrap interval." if lsq is not None else "")
            + (" Green diamonds: the true asymptotes." if truth is not None else ""),
        ),
        "figure_a_zoom": FigureSpec(
            lambda: plots.figure_a(post, zoom=True, **common),
            "Figure A zoomed on the top of the observed US range and the extrapolation: how "
            "the band widens beyond the data and meets the asymptote.",
        ),
        "rank": FigureSpec(
            lambda: plots.trace_or_rank_plot(post),
            "Rank plots per chain of k, alpha and e_IR: flat histograms inside the grey band "
            "mean that the chains explored the same posterior.",
        ),
        "ppc": FigureSpec(
            lambda: plots.ppc_plot(post, prob=prob, interval_kind=kind),
            f"Posterior predictive check: the fitted points against the "
            f"{interval_label(prob, kind, 'predictive band')} (and {inner:g}%) of the DS "
            "accuracy of a new model. About that share of the points should fall inside; far "
            "fewer means the model understates the scatter, far more that it overstates it.",
        ),
        "prior_predictive": FigureSpec(
            lambda: plots.prior_predictive_plot(post.config, post.data),
            "Prior predictive check: curves of the law drawn from the priors (before seeing "
            "the data), with the fitted points for scale, and the prior of the asymptote.",
        ),
    }


def png_bytes(fig: Figure, dpi: int = 110) -> bytes:
    """Return a figure as PNG bytes, and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return buf.getvalue()
