"""What the figures share: colours, panel grids, the groups of a fit, nested probabilities."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from scale_transfer.config import DEFAULT_KIND

if TYPE_CHECKING:
    from scale_transfer.posterior import Posterior

__all__ = [
    "INTERVAL_NAMES",
    "interval_label",
    "lsq_interval_prob",
    "short_label",
    "task_row",
    "with_asymptote",
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


# ---------------------------------------------------------------------- shared pieces
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


#: The interval kinds by the words a reader sees.
INTERVAL_NAMES = {"eti": "equal-tailed", "hdi": "highest-density"}


# ------------------------------------------------------------------------ interval names
def interval_label(
    prob: float, interval_kind: str = DEFAULT_KIND, what: str = "credible interval"
) -> str:
    """Name an interval, e.g. ``"90% equal-tailed credible interval"``.

    Parameters
    ----------
    prob : float
        Probability in (0, 1).
    interval_kind : {"eti", "hdi"}
        Interval kind.
    what : str
        The noun, e.g. ``"credible band"``.

    Returns
    -------
    str
    """
    if interval_kind not in INTERVAL_NAMES:
        raise ValueError(
            f"interval kind must be one of {tuple(INTERVAL_NAMES)}; got {interval_kind!r}"
        )
    return f"{100 * prob:g}% {INTERVAL_NAMES[interval_kind]} {what}"


def short_label(prob: float, interval_kind: str = DEFAULT_KIND) -> str:
    """Name an interval in a column header, e.g. ``"90% ETI"``."""
    interval_label(prob, interval_kind)  # checks the kind
    return f"{100 * prob:g}% {interval_kind.upper()}"


# ------------------------------------------------------------------- per-task baselines
def task_row(frame: pd.DataFrame | None, setting: str, task: str) -> pd.Series | None:
    """Return the row of a per-task frame (least squares, truth) for one group.

    Parameters
    ----------
    frame : pandas.DataFrame or None
        One row per task, column ``task`` and optionally ``setting`` (matched when present
        and holding ``setting``).
    setting, task : str
        The group.

    Returns
    -------
    pandas.Series or None
        The matching row; None when there is none (or no frame). A frame's one row for the
        task matches a fit without settings (setting ``"default"``) whatever its setting
        (e.g. a simulator's truth, labelled ``jft-25shot``, for data without setting
        columns); otherwise the settings must agree.

    Raises
    ------
    ValueError
        When the frame has several rows for the task and none (or more than one) in the
        group's setting: which one is meant cannot be told.
    """
    if frame is None or len(frame) == 0:
        return None
    rows = frame[frame["task"].astype(str) == task]
    if len(rows) > 1 and "setting" in rows:
        rows = rows[rows["setting"].astype(str) == setting]
    if len(rows) > 1 or (rows.empty and (frame["task"].astype(str) == task).sum() > 1):
        have = frame.loc[frame["task"].astype(str) == task]
        settings = sorted(have["setting"].astype(str)) if "setting" in have else []
        raise ValueError(
            f"the table has {len(have)} rows for task {task!r}"
            + (f" (settings {', '.join(settings)})" if settings else " and no 'setting' column")
            + f" and cannot be matched to the fit's setting {setting!r}"
        )
    if len(rows) == 1 and "setting" in rows and setting != "default":
        if str(rows["setting"].iloc[0]) != setting:
            return None  # another setting's row: this group has none
    return None if rows.empty else rows.iloc[0]


def lsq_interval_prob(lsq: pd.DataFrame | None, lsq_prob: float | None, prob: float) -> float:
    """Return the least-squares intervals' probability.

    As given; else as ``fit_lsq_frame`` recorded it; else ``prob`` (the figure's own).
    """
    if lsq_prob is not None:
        return lsq_prob
    return lsq.attrs.get("prob", prob) if lsq is not None else prob


def with_asymptote(truth: pd.DataFrame | None) -> pd.DataFrame | None:
    """Return a truth table with ``asymptote`` (``1 - e_ir`` where only that is given)."""
    if truth is not None and "asymptote" not in truth and "e_ir" in truth:
        truth = truth.assign(asymptote=1.0 - truth["e_ir"])
    return truth
