"""What the figures share: colours, panel grids, the groups of a fit, nested probabilities."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from scale_transfer.posterior import Posterior

__all__ = [
    "C_ASYM",
    "C_BAND",
    "C_CURVE",
    "C_EXTRAP",
    "C_LSQ",
    "C_NEW_TASK",
    "C_POINTS",
    "C_TRUTH",
    "POINT_CMAP",
    "check_nested",
    "finite",
    "group_data",
    "group_rows",
    "inner_prob_for",
    "label_outer",
    "panel_grid",
]

# colours: the Bayesian fit in blues, the asymptote in purple, least squares in black,
# the truth of a simulation in green; points from yellow (small) to dark red (large models)
C_CURVE = "#1b3f8b"
C_BAND = "#5b8bd9"
C_ASYM = "#7b2d8e"
C_LSQ = "black"
C_TRUTH = "#1a9850"
C_NEW_TASK = "#d95f02"
C_POINTS = "#f0a030"
C_EXTRAP = "0.9"
POINT_CMAP = mcolors.LinearSegmentedColormap.from_list(
    "params", plt.get_cmap("YlOrRd")(np.linspace(0.3, 1.0, 256))
)


# ------------------------------------------------------------------------------ helpers
def group_rows(post: Posterior) -> list[tuple[int, str, str, str]]:
    """(index, label, setting, task) of every group of the fit."""
    labels = post.group_labels
    return [
        (i, labels[i], str(s), str(t))
        for i, (s, t) in enumerate(zip(post.groups["setting"], post.groups["task"], strict=True))
    ]


def group_data(post: Posterior, setting: str, task: str) -> pd.DataFrame:
    """Return the fitted data rows of one (setting, task)."""
    d = post.data
    mask = d["task"].astype(str) == task
    if "setting" in d:
        mask &= d["setting"].astype(str) == setting
    return d[mask]


def panel_grid(n_panels: int, ncols: int, panel: tuple[float, float], extra_h: float = 0.0):
    """Return a figure with ``n_panels`` panels of size ``panel`` in rows of ``ncols``."""
    ncols = max(1, min(ncols, n_panels))
    nrows = max(1, math.ceil(n_panels / ncols))
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(panel[0] * ncols + 1.2, panel[1] * nrows + extra_h),
        squeeze=False,
        layout="constrained",
    )
    flat = list(axes.ravel())
    for ax in flat[n_panels:]:
        fig.delaxes(ax)
    return fig, axes, flat[:n_panels], ncols


def label_outer(axes_flat: list, ncols: int, xlabel: str, ylabel: str) -> None:
    """Y label on the first column; x label on every panel with no panel below it."""
    n = len(axes_flat)
    for j, ax in enumerate(axes_flat):
        if j % ncols == 0:
            ax.set_ylabel(ylabel)
        if j + ncols >= n:
            ax.set_xlabel(xlabel)


def inner_prob_for(prob: float) -> float:
    """Return the inner band's default probability: 0.5, or half of ``prob`` up to 0.5."""
    return 0.5 if prob > 0.5 else prob / 2


def check_nested(prob: float, inner_prob: float | None) -> float:
    """Return the inner probability (default :func:`inner_prob_for`), checked to nest."""
    inner = inner_prob_for(prob) if inner_prob is None else inner_prob
    if not 0 < inner < prob < 1:
        raise ValueError(
            f"need 0 < inner_prob < prob < 1 (the inner interval inside the outer one); got "
            f"inner_prob={inner}, prob={prob}"
        )
    return inner


def finite(*values: float) -> bool:
    """Whether every value is a finite number (``None`` is not)."""
    return all(v is not None and np.isfinite(float(v)) for v in values)
