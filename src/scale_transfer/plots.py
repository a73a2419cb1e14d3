"""Figures of a fitted model: Figure A with credible bands, the asymptote forest, and checks.

Every function returns a :class:`matplotlib.figure.Figure` (never shows it) and names the kind
and probability of every interval it draws in its legend or title. The figures read only a
:class:`~scale_transfer.posterior.Posterior` (plus, optionally, the least-squares baseline of
:func:`scale_transfer.lsq.fit_lsq_frame` and the true parameters of a simulation), except
:func:`prior_predictive_plot`, which builds the model from a config and data.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from scale_transfer.law import ds_acc
from scale_transfer.posterior import NEW_TASK, interval
from scale_transfer.report.tables import (
    interval_label,
    lsq_interval_prob,
    task_row,
    with_asymptote,
)

if TYPE_CHECKING:
    from scale_transfer.model import ModelConfig
    from scale_transfer.posterior import Posterior

__all__ = [
    "figure_a",
    "forest_asymptotes",
    "interval_label",
    "ppc_plot",
    "prior_predictive_plot",
    "task_row",
    "trace_or_rank_plot",
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
def _group_rows(post: Posterior) -> list[tuple[int, str, str, str]]:
    """(index, label, setting, task) of every group of the fit."""
    labels = post.group_labels
    return [
        (i, labels[i], str(s), str(t))
        for i, (s, t) in enumerate(zip(post.groups["setting"], post.groups["task"], strict=True))
    ]


def _group_data(post: Posterior, setting: str, task: str) -> pd.DataFrame:
    d = post.data
    mask = d["task"].astype(str) == task
    if "setting" in d:
        mask &= d["setting"].astype(str) == setting
    return d[mask]


def _grid(n_panels: int, ncols: int, panel: tuple[float, float], extra_h: float = 0.0):
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


def _label_outer(axes_flat: list, ncols: int, xlabel: str, ylabel: str) -> None:
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


def _check_nested(prob: float, inner_prob: float | None) -> float:
    inner = inner_prob_for(prob) if inner_prob is None else inner_prob
    if not 0 < inner < prob < 1:
        raise ValueError(
            f"need 0 < inner_prob < prob < 1 (the inner interval inside the outer one); got "
            f"inner_prob={inner}, prob={prob}"
        )
    return inner


def _finite(*values: float) -> bool:
    return all(v is not None and np.isfinite(float(v)) for v in values)


# ------------------------------------------------------------------------------ Figure A
def figure_a(
    post: Posterior,
    *,
    prob: float = 0.9,
    lsq: pd.DataFrame | None = None,
    extrapolate_to: float = 1.0,
    truth: pd.DataFrame | None = None,
    interval_kind: str = "eti",
    ncols: int = 4,
    n_grid: int = 160,
    zoom: bool = False,
    summary: pd.DataFrame | None = None,
) -> Figure:
    """DS accuracy against US accuracy per task, with the fitted law and its credible band.

    The Bayesian counterpart of the paper's Figure A: one panel per task (and setting); the
    points sized and coloured by parameter count, the upper-hull points circled, the posterior
    median of the law (plus its discrepancy term where the fit has one, as in
    :meth:`~scale_transfer.posterior.Posterior.predict`) with its credible band over the data,
    and extended (dashed, on a shaded background) to US accuracy ``extrapolate_to``; the
    asymptote ``1 - e_IR`` as a horizontal line with its credible interval.

    Parameters
    ----------
    post : Posterior
        The fit.
    prob : float
        Probability of the credible band and the asymptote interval.
    lsq : pandas.DataFrame, optional
        Output of :func:`scale_transfer.lsq.fit_lsq_frame`: its curves are drawn dash-dotted.
    extrapolate_to : float
        US accuracy the curves are extended to; the region beyond the largest observed US
        accuracy of each panel is shaded.
    truth : pandas.DataFrame, optional
        True parameters (``task``, ``k``, ``alpha``, ``e_ir``, optionally ``setting``), e.g.
        ``Simulation.truth``: the true curve is drawn in green.
    interval_kind : {"eti", "hdi"}
        Interval kind.
    ncols : int
        Panels per row.
    n_grid : int
        Points of the curves.
    zoom : bool
        Zoom on the extrapolation: each panel shows the upper 40% of the observed US range
        and beyond, with the DS axis fitted to the credible band (points below are cut).
    summary : pandas.DataFrame, optional
        ``post.summary(prob=prob, kind=interval_kind)`` when the caller has it already.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not 0 < extrapolate_to <= 1:
        raise ValueError(f"extrapolate_to must be in (0, 1]; got {extrapolate_to}")
    groups = _group_rows(post)
    curve_name = "law + discrepancy" if getattr(post.config, "discrepancy", False) else "law"
    if getattr(post.config, "effects", ()):
        curve_name += " (population curve: effects at 0)"
    asym = post.summary(prob=prob, kind=interval_kind) if summary is None else summary
    data = post.data
    params = data["params"].to_numpy(float) if "params" in data else np.full(len(data), np.nan)
    ok = np.isfinite(params) & (params > 0)
    norm = None
    if ok.any():
        lo, hi = np.nanmin(params[ok]), np.nanmax(params[ok])
        norm = mcolors.LogNorm(vmin=lo, vmax=max(hi, lo * 1.0001))

    fig, axes, flat, ncols = _grid(len(groups), ncols, (3.5, 2.9), extra_h=0.9)
    band_name = interval_label(prob, interval_kind, "credible band")
    for ax, (g, label, setting, task) in zip(flat, groups, strict=True):
        d = _group_data(post, setting, task)
        us = d["us_acc"].to_numpy(float)
        ds = d["ds_acc"].to_numpy(float)
        x_lo, x_hi = float(us.min()), float(us.max())
        end = max(extrapolate_to, x_hi)
        x_start = x_lo + 0.6 * (x_hi - x_lo) if zoom else x_lo
        y_seen = [float(asym["lower"].iloc[g]), float(asym["upper"].iloc[g])]
        # points, small models first so that the big ones stay visible on top
        if norm is not None and "params" in d and np.isfinite(d["params"].to_numpy(float)).any():
            p = d["params"].to_numpy(float)
            p = np.where(np.isfinite(p) & (p > 0), p, norm.vmin)
            order = np.argsort(p)
            frac = (np.log(p) - np.log(norm.vmin)) / max(np.log(norm.vmax / norm.vmin), 1e-12)
            sizes = 4 + 46 * np.clip(frac, 0, 1)
            ax.scatter(
                us[order], ds[order], s=sizes[order], c=p[order], cmap=POINT_CMAP, norm=norm,
                alpha=0.6, linewidths=0, zorder=2, rasterized=True,
            )  # fmt: skip
        else:
            ax.scatter(us, ds, s=8, color=C_POINTS, alpha=0.6, linewidths=0, zorder=2)
        if "on_hull" in d:
            h = d["on_hull"].to_numpy(bool)
            ax.scatter(
                us[h], ds[h], s=26, facecolors="none", edgecolors="black", linewidths=0.8,
                zorder=5,
            )  # fmt: skip
        # extrapolation region
        if end > x_hi:
            ax.axvspan(x_hi, end + 0.02, color=C_EXTRAP, zorder=0, linewidth=0)
            ax.axvline(x_hi, color="0.55", linewidth=0.7, linestyle=":", zorder=1)
        # asymptote and its interval
        row = asym.iloc[g]
        ax.axhspan(row["lower"], row["upper"], color=C_ASYM, alpha=0.18, linewidth=0, zorder=1)
        ax.axhline(row["median"], color=C_ASYM, linestyle=":", linewidth=1.3, zorder=3)
        # the fitted law: median and band, over the data then extrapolated
        in_grid = np.linspace(x_lo, x_hi, n_grid)
        ex_grid = np.linspace(x_hi, end, max(2, n_grid // 2)) if end > x_hi else in_grid[:0]
        # one call for both stretches: the curve predict gives (discrepancy term included)
        both = post.predict_draws(np.concatenate([in_grid, ex_grid]), kind="curve")[:, g, :]
        stretches = ((in_grid, both[:, :n_grid], False), (ex_grid, both[:, n_grid:], True))
        for grid, acc, extrap in stretches:
            if extrap and end <= x_hi:
                continue
            lo_b, hi_b = interval(acc, prob, interval_kind)
            med = np.median(acc, axis=0)
            win = grid >= x_start
            y_seen += [float(lo_b[win].min()), float(hi_b[win].max())]
            ax.fill_between(
                grid, lo_b, hi_b, color=C_BAND, alpha=0.18 if extrap else 0.35, linewidth=0,
                zorder=3,
            )  # fmt: skip
            ax.plot(grid, med, color=C_CURVE, lw=1.6, ls="--" if extrap else "-", zorder=6)
        full = np.linspace(x_lo, end, n_grid)
        lrow = task_row(lsq, setting, task)
        if lrow is not None and _finite(lrow["k"], lrow["alpha"], lrow["e_ir"]):
            y = ds_acc(full, lrow["k"], lrow["alpha"], lrow["e_ir"])
            ax.plot(full, y, color=C_LSQ, lw=1.1, ls="-.", zorder=4)
        trow = task_row(truth, setting, task)
        law = ("k", "alpha", "e_ir")  # a truth table may hold only the asymptotes
        if trow is not None and all(c in trow for c in law) and _finite(*trow[list(law)]):
            y = ds_acc(full, trow["k"], trow["alpha"], trow["e_ir"])
            ax.plot(full, y, color=C_TRUTH, lw=1.1, zorder=4)
        if zoom:
            span = max(y_seen) - min(y_seen)
            ax.set_xlim(x_start, end + 0.01)
            ax.set_ylim(max(0.0, min(y_seen) - 0.3 * span), min(1.005, max(y_seen) + 0.3 * span))
        else:
            ax.set_xlim(max(0.0, x_lo - 0.02), end + 0.01)
            ax.set_ylim(max(0.0, min(float(ds.min()), float(row["lower"])) - 0.03), 1.005)
        ax.set_title(
            f"{label}\nasymptote {row['median']:.3f} [{row['lower']:.3f}, {row['upper']:.3f}]",
            fontsize=9,
        )
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3, linewidth=0.5)
    _label_outer(flat, ncols, "US accuracy", "DS accuracy")

    handles = [
        Line2D([], [], color=C_CURVE, lw=1.6, label=f"posterior median of the {curve_name}"),
        Patch(color=C_BAND, alpha=0.35, label=band_name),
        Line2D([], [], color=C_CURVE, lw=1.6, ls="--", label="extrapolated (median, band)"),
        Patch(color=C_EXTRAP, label="beyond the largest observed US accuracy"),
        Line2D(
            [],
            [],
            color=C_ASYM,
            ls=":",
            lw=1.3,
            label="asymptote 1 - e_IR (posterior median)",
        ),  # fmt: skip
        Patch(color=C_ASYM, alpha=0.18, label=f"asymptote: {interval_label(prob, interval_kind)}"),
        Line2D(
            [],
            [],
            marker="o",
            ls="",
            mfc="none",
            mec="black",
            label="upper-hull points",
        ),  # fmt: skip
    ]
    if lsq is not None:
        handles.append(Line2D([], [], color=C_LSQ, ls="-.", lw=1.1, label="least squares fit"))
    if truth is not None:
        handles.append(Line2D([], [], color=C_TRUTH, lw=1.1, label="true law (simulation)"))
    if norm is not None:
        sm = plt.cm.ScalarMappable(norm=norm, cmap=POINT_CMAP)
        fig.colorbar(
            sm, ax=flat, label="parameters (log scale; also point size)", shrink=0.8, pad=0.01
        )
    else:
        handles.append(Line2D([], [], marker="o", ls="", color=C_POINTS, label="models"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(4, len(handles)), fontsize=8)
    c = post.config
    fig.suptitle(
        f"DS vs US accuracy{' (zoom on the extrapolation)' if zoom else ''}: Bayesian fit of "
        f"e_DS = k e_US^alpha + e_IR (target={c.target}, pooling={c.pooling}, "
        f"likelihood={c.likelihood})",
        fontsize=11,
    )
    return fig


# ------------------------------------------------------------------------ asymptote forest
def forest_asymptotes(
    post: Posterior,
    *,
    prob: float = 0.9,
    lsq: pd.DataFrame | None = None,
    truth: pd.DataFrame | None = None,
    interval_kind: str = "eti",
    inner_prob: float | None = None,
    lsq_prob: float | None = None,
    summary: pd.DataFrame | None = None,
) -> Figure:
    """Forest plot of the asymptote ``1 - e_IR`` per task and for an unseen task.

    Parameters
    ----------
    post : Posterior
        The fit.
    prob : float
        Probability of the outer (thin) interval.
    lsq : pandas.DataFrame, optional
        Output of :func:`scale_transfer.lsq.fit_lsq_frame`: point estimates (crosses) and,
        where present, their bootstrap intervals, drawn just below each task's row.
    truth : pandas.DataFrame, optional
        True asymptotes (``task``, ``asymptote``, optionally ``setting``), drawn as green
        diamonds just above each row.
    interval_kind : {"eti", "hdi"}
        Interval kind.
    inner_prob : float, optional
        Probability of the inner (thick) interval, below ``prob``; default
        :func:`inner_prob_for` (0.5, or half of ``prob`` up to 0.5).
    lsq_prob : float, optional
        Probability of the least-squares bootstrap interval; default the ``prob`` that
        ``fit_lsq_frame`` recorded in ``lsq.attrs``.
    summary : pandas.DataFrame, optional
        ``post.summary(prob=prob, kind=interval_kind)`` when the caller has it already.

    Returns
    -------
    matplotlib.figure.Figure
    """
    inner_prob = _check_nested(prob, inner_prob)
    lsq_prob = lsq_interval_prob(lsq, lsq_prob, prob)
    truth = with_asymptote(truth)
    outer = post.summary(prob=prob, kind=interval_kind) if summary is None else summary
    inner = post.summary(prob=inner_prob, kind=interval_kind)
    n_groups = len(post.groups)
    labels = [*post.group_labels]
    multi = outer["setting"].nunique() > 1
    for i in range(n_groups, len(outer)):
        labels.append(NEW_TASK + (f" {outer['setting'].iloc[i]}" if multi else ""))
    y = np.arange(len(outer), dtype=float)
    y[n_groups:] += 0.6  # set the population rows apart
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.42 * len(outer) + 0.9), layout="constrained")
    for i in range(len(outer)):
        new = i >= n_groups
        color = C_NEW_TASK if new else C_CURVE
        o, n = outer.iloc[i], inner.iloc[i]
        ax.plot([o["lower"], o["upper"]], [y[i], y[i]], color=color, lw=1.4, zorder=3)
        ax.plot([n["lower"], n["upper"]], [y[i], y[i]], color=color, lw=5, zorder=3)
        ax.plot(o["median"], y[i], "o", color="white", mec=color, mew=1.5, ms=6, zorder=4)
        if new:
            continue
        setting, task = str(post.groups["setting"].iloc[i]), str(post.groups["task"].iloc[i])
        lrow = task_row(lsq, setting, task)
        if lrow is not None and _finite(lrow["asymptote"]):
            yl = y[i] + 0.27
            if "asymptote_lower" in lrow and _finite(
                lrow["asymptote_lower"], lrow["asymptote_upper"]
            ):
                ax.plot(
                    [lrow["asymptote_lower"], lrow["asymptote_upper"]], [yl, yl], color=C_LSQ,
                    lw=0.9, zorder=2,
                )  # fmt: skip
            ax.plot(lrow["asymptote"], yl, "x", color=C_LSQ, ms=6, zorder=4)
        trow = task_row(truth, setting, task)
        if trow is not None and "asymptote" in trow and _finite(trow["asymptote"]):
            ax.plot(trow["asymptote"], y[i] - 0.27, "D", color=C_TRUTH, ms=5, zorder=5)
    if len(outer) > n_groups:
        ax.axhline((y[n_groups - 1] + y[n_groups]) / 2, color="0.6", lw=0.7, ls="--")
    ax.set_yticks(y, labels)
    for tick in ax.get_yticklabels()[n_groups:]:
        tick.set_color(C_NEW_TASK)
        tick.set_fontstyle("italic")
    ax.set_ylim(y[-1] + 0.7, -0.7)
    ax.set_xlabel("asymptote 1 - e_IR (DS accuracy at 100% US accuracy)")
    ax.grid(axis="x", alpha=0.3)
    handles = [
        Line2D([], [], color=C_CURVE, lw=1.4, label=interval_label(prob, interval_kind)),
        Line2D([], [], color=C_CURVE, lw=5, label=interval_label(inner_prob, interval_kind)),
        Line2D([], [], marker="o", ls="", mfc="white", mec=C_CURVE, label="posterior median"),
    ]
    if len(outer) > n_groups:
        handles.append(
            Line2D([], [], color=C_NEW_TASK, lw=3, label="unseen task (population level)")
        )
    if lsq is not None:
        has_boot = {"asymptote_lower", "asymptote_upper"} <= set(lsq.columns) and bool(
            np.isfinite(lsq["asymptote_lower"].to_numpy(float)).any()
        )
        text = "least squares estimate"
        if has_boot:
            text += f" with {100 * lsq_prob:g}% percentile bootstrap interval"
        handles.append(Line2D([], [], color=C_LSQ, marker="x", lw=0.9, label=text))
    if truth is not None:
        handles.append(Line2D([], [], color=C_TRUTH, marker="D", ls="", label="true asymptote"))
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=8)
    ax.set_title(
        f"Asymptote per task: {interval_label(prob, interval_kind)} (thin) and "
        f"{100 * inner_prob:g}% (thick)",
        fontsize=10,
    )
    return fig


# ------------------------------------------------------------------------- checks
def _predictive_bounds(
    post: Posterior,
    us: np.ndarray,
    probs: Sequence[float],
    interval_kind: str,
    max_elements: int = 4_000_000,
) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """New-model predictive intervals at ``us`` for every group: ``prob -> (lo, hi)``.

    Each of ``lo``, ``hi`` is ``(n_groups, len(us))``; computed in chunks of ``us`` to bound
    memory.
    """
    n_draws = post.draws("sigma").shape[0]
    n_groups = len(post.groups)
    step = max(1, max_elements // max(1, n_draws * n_groups))
    out = {p: (np.empty((n_groups, us.size)), np.empty((n_groups, us.size))) for p in probs}
    for c, start in enumerate(range(0, us.size, step)):
        sl = slice(start, start + step)
        x = post.predict_draws(us[sl], kind="new-model", seed=c)
        for p in probs:
            lo, hi = interval(x, p, interval_kind)
            out[p][0][:, sl], out[p][1][:, sl] = lo, hi
    return out


def ppc_plot(
    post: Posterior,
    *,
    prob: float = 0.9,
    inner_prob: float | None = None,
    interval_kind: str = "eti",
    ncols: int = 4,
    n_grid: int = 80,
) -> Figure:
    """Posterior predictive check: fitted points against a new model's predictive interval.

    One panel per task: the ``prob`` and ``inner_prob`` predictive bands of the DS accuracy of
    a new model (the law plus the likelihood's model-level scatter) over the US range of the
    fitted points, the fitted points on top, and in the title the share of fitted points
    inside each band (about ``prob`` and ``inner_prob`` if the model fits).

    Parameters
    ----------
    post : Posterior
        The fit.
    prob, inner_prob : float
        Probabilities of the outer and inner bands (``inner_prob < prob``; default
        :func:`inner_prob_for`).
    interval_kind : {"eti", "hdi"}
        Interval kind.
    ncols : int
        Panels per row.
    n_grid : int
        Points of the bands.

    Returns
    -------
    matplotlib.figure.Figure
    """
    inner_prob = _check_nested(prob, inner_prob)
    groups = _group_rows(post)
    data = post.data
    used = data[data["used"].astype(bool)] if "used" in data else data
    us_unique, inv = np.unique(used["us_acc"].to_numpy(float), return_inverse=True)
    gkey = {(s, t): g for g, _, s, t in groups}
    gi = np.array(
        [gkey.get((str(s), str(t)), -1) for s, t in zip(used["setting"], used["task"], strict=True)]
    )
    bounds = _predictive_bounds(post, us_unique, (prob, inner_prob), interval_kind)
    ds_all = used["ds_acc"].to_numpy(float)
    inside: dict[float, np.ndarray] = {}
    for p, (lo, hi) in bounds.items():
        ok = gi >= 0
        vals = np.zeros(len(used), dtype=bool)
        vals[ok] = (ds_all[ok] >= lo[gi[ok], inv[ok]]) & (ds_all[ok] <= hi[gi[ok], inv[ok]])
        inside[p] = vals
    fig, axes, flat, ncols = _grid(len(groups), ncols, (3.4, 2.7), extra_h=0.6)
    for ax, (g, label, _setting, _task) in zip(flat, groups, strict=True):
        m = gi == g
        us, ds = used["us_acc"].to_numpy(float)[m], ds_all[m]
        grid = np.linspace(us.min(), us.max(), n_grid)
        gb = _predictive_bounds(post, grid, (prob, inner_prob), interval_kind)
        ax.fill_between(grid, gb[prob][0][g], gb[prob][1][g], color=C_BAND, alpha=0.25, lw=0)
        ax.fill_between(
            grid, gb[inner_prob][0][g], gb[inner_prob][1][g], color=C_BAND, alpha=0.45, lw=0
        )
        out = ~inside[prob][m]
        ax.scatter(us[~out], ds[~out], s=9, color="black", zorder=3, linewidths=0)
        ax.scatter(us[out], ds[out], s=14, color="#d7301f", zorder=4, linewidths=0)
        ax.set_title(
            f"{label}: {inside[prob][m].mean():.0%} in outer, {inside[inner_prob][m].mean():.0%} "
            f"in inner band (n={m.sum()})",
            fontsize=8.5,
        )
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3, linewidth=0.5)
    _label_outer(flat, ncols, "US accuracy", "DS accuracy")
    handles = [
        Patch(
            color=C_BAND, alpha=0.25, label=interval_label(prob, interval_kind, "predictive band")
        ),
        Patch(
            color=C_BAND,
            alpha=0.45,
            label=interval_label(inner_prob, interval_kind, "predictive band"),
        ),
        Line2D([], [], marker="o", ls="", color="black", label="fitted point inside outer band"),
        Line2D([], [], marker="o", ls="", color="#d7301f", label="fitted point outside outer band"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=8)
    total = inside[prob].mean()
    fig.suptitle(
        f"Posterior predictive check: DS accuracy of a new model vs the fitted points "
        f"({total:.0%} of all fitted points inside the {100 * prob:g}% band, expect about "
        f"{100 * prob:g}%)",
        fontsize=10,
    )
    return fig


def _rank_bounds(n: int, bins: int, prob: float = 0.99) -> tuple[float, float]:
    """Range of a uniform rank histogram's bin count (binomial quantiles)."""
    from scipy import stats

    lo, hi = stats.binom.ppf([(1 - prob) / 2, (1 + prob) / 2], n, 1.0 / bins)
    return float(lo), float(hi)


def trace_or_rank_plot(
    post: Posterior,
    *,
    var_names: Sequence[str] = ("k", "alpha", "e_ir"),
    bins: int = 20,
    max_cols: int = 8,
) -> Figure:
    """Rank histograms per chain of the per-task parameters (Vehtari et al., 2021).

    Draws of all chains are ranked together; each chain's histogram of ranks should be flat
    (inside the grey 99% band of a uniform histogram) when the chains mix. Each panel gives
    the rank-normalized split R-hat.

    Parameters
    ----------
    post : Posterior
        The fit.
    var_names : sequence of str
        Per-group variables to show.
    bins : int
        Histogram bins.
    max_cols : int
        Panels per row; more groups wrap onto further rows.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import arviz as az
    from scipy import stats

    ds = post.dt["posterior"].to_dataset()
    names = [v for v in var_names if v in ds.data_vars]
    if not names:
        raise ValueError(f"none of {list(var_names)} is in the posterior")
    scalar = [v for v in names if "group" not in ds[v].dims]
    if scalar:
        raise ValueError(
            f"trace_or_rank_plot draws per-group variables; {', '.join(scalar)} "
            "has no 'group' dimension (plot it with arviz, e.g. az.plot_rank)"
        )
    rhat = az.rhat(ds[names])
    labels = post.group_labels
    n_groups = len(labels)
    ncols = max(1, min(max_cols, n_groups))
    rows_per_var = math.ceil(n_groups / ncols)
    nrows = rows_per_var * len(names)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(1.9 * ncols + 0.6, 1.45 * nrows + 1.0),
        squeeze=False,
        layout="constrained",
        sharey=True,
    )
    n_chain, n_draw = ds.sizes["chain"], ds.sizes["draw"]
    edges = np.linspace(0, n_chain * n_draw, bins + 1)
    lo_b, hi_b = _rank_bounds(n_draw, bins)
    colors = plt.get_cmap("tab10")(np.arange(n_chain) % 10)
    for vi, name in enumerate(names):
        da = ds[name].transpose("chain", "draw", ...)
        vals = np.asarray(da.values, dtype=float).reshape(n_chain, n_draw, -1)
        for g in range(n_groups):
            r, c = vi * rows_per_var + g // ncols, g % ncols
            ax = axes[r, c]
            x = vals[:, :, g]
            ranks = stats.rankdata(x.reshape(-1)).reshape(x.shape)
            ax.axhspan(lo_b, hi_b, color="0.88", lw=0)
            ax.axhline(n_draw / bins, color="0.5", lw=0.7, ls="--")
            for ch in range(n_chain):
                counts, _ = np.histogram(ranks[ch], bins=edges)
                ax.stairs(counts, edges, color=colors[ch], lw=1.0, baseline=None)
            rh = float(np.asarray(rhat[name].values).reshape(-1)[g]) if name in rhat else np.nan
            bad = np.isfinite(rh) and rh > 1.01
            ax.set_title(
                f"{name} | {labels[g]}\nR-hat {rh:.3f}",
                fontsize=8,
                color="#d7301f" if bad else "black",
            )
            ax.set_xticks([])
            ax.tick_params(labelsize=7)
            if c == 0:
                ax.set_ylabel("draws per bin", fontsize=8)
        for g in range(n_groups, rows_per_var * ncols):
            fig.delaxes(axes[vi * rows_per_var + g // ncols, g % ncols])
    handles = [Line2D([], [], color=colors[ch], label=f"chain {ch}") for ch in range(n_chain)]
    handles.append(Patch(color="0.88", label="99% range of a uniform rank histogram"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(6, len(handles)), fontsize=8)
    fig.suptitle(
        f"Rank plots ({n_chain} chains x {n_draw} draws, {bins} bins; x: rank of the draw "
        "among all chains): flat histograms mean the chains agree",
        fontsize=10,
    )
    return fig


def prior_predictive_plot(
    config: ModelConfig,
    data: pd.DataFrame,
    *,
    draws: int = 500,
    seed: int = 0,
    n_curves: int = 150,
) -> Figure:
    """Curves of the law drawn from the prior, over US accuracy from 0 to 1.

    Samples ``k``, ``alpha`` and ``e_ir`` from the prior of the model built on ``data``
    (the reference upstream error, which sets the scale of ``k``, depends on the data), and
    draws a subset of the implied curves with the data behind them. The title gives the
    share of prior curves that stay in [0, 1] and increase with US accuracy.

    Parameters
    ----------
    config : ModelConfig
        Model structure and priors.
    data : pandas.DataFrame
        Tidy data (as given to :func:`scale_transfer.posterior.fit`).
    draws : int
        Prior draws.
    seed : int
        Random seed.
    n_curves : int
        Curves drawn.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import pymc as pm

    from scale_transfer.model import build_model, prepare_data

    fd = prepare_data(data, config)
    model = build_model(fd, config)
    pm_log = logging.getLogger("pymc")
    level = pm_log.level
    pm_log.setLevel(logging.WARNING)  # no "Sampling: [...]" line
    try:
        prior = pm.sample_prior_predictive(
            draws=draws, model=model, var_names=["k", "alpha", "e_ir"], random_seed=seed
        )["prior"]
    finally:
        pm_log.setLevel(level)
    k, alpha, e_ir = (
        np.asarray(prior[v].values, dtype=float).reshape(-1) for v in ("k", "alpha", "e_ir")
    )
    grid = np.linspace(0.0, 1.0, 101)
    acc = ds_acc(grid[None, :], k[:, None], alpha[:, None], e_ir[:, None])
    in_range = np.all((acc >= 0) & (acc <= 1), axis=1)
    increasing = np.all(np.diff(acc, axis=1) >= -1e-12, axis=1)
    used = fd.used
    us_lo, us_hi = float(used["us_acc"].min()), float(used["us_acc"].max())
    dgrid = np.linspace(us_lo, us_hi, 51)
    dacc = ds_acc(dgrid[None, :], k[:, None], alpha[:, None], e_ir[:, None])
    in_data_range = np.all((dacc >= 0) & (dacc <= 1), axis=1)
    good = in_range & increasing
    rng = np.random.default_rng(seed)
    pick = rng.choice(acc.shape[0], size=min(n_curves, acc.shape[0]), replace=False)
    fig, (ax, ax2) = plt.subplots(
        1, 2, figsize=(11, 4.6), layout="constrained", gridspec_kw={"width_ratios": [2, 1]}
    )
    ax.axhspan(1.0, 2.0, color="0.9", zorder=0, lw=0)
    ax.axhspan(-2.0, 0.0, color="0.9", zorder=0, lw=0)
    ax.axvspan(us_lo, us_hi, color=C_BAND, alpha=0.08, zorder=0, lw=0)
    ax.scatter(used["us_acc"], used["ds_acc"], s=5, color="0.45", alpha=0.5, lw=0, zorder=3)
    for i in pick:
        ax.plot(grid, acc[i], color=C_CURVE if good[i] else "#d7301f", alpha=0.25, lw=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.3, 1.1)
    ax.set_xlabel("US accuracy")
    ax.set_ylabel("DS accuracy (axis cut at -0.3)")
    ax.legend(
        handles=[
            Line2D([], [], color=C_CURVE, label="prior curve in [0, 1], increasing"),
            Line2D([], [], color="#d7301f", label="prior curve leaving [0, 1]"),
            Patch(color=C_BAND, alpha=0.15, label="US range of the fitted points"),
            Line2D([], [], marker="o", ls="", color="0.45", label="fitted points"),
        ],
        fontsize=8,
        loc="lower right",
    )
    n_groups = len(fd.groups)
    ax.set_title(
        f"{len(pick)} of {acc.shape[0]} prior curves ({acc.shape[0] // max(n_groups, 1)} draws "
        f"x {n_groups} tasks)",
        fontsize=9,
    )
    asym = 1.0 - e_ir
    ax2.hist(asym, bins=40, range=(0, 1), color=C_ASYM, alpha=0.7)
    lo, hi = interval(asym, 0.9, "eti")
    ax2.set_title(
        f"prior of the asymptote\n90% equal-tailed interval [{lo:.2f}, {hi:.2f}]", fontsize=9
    )
    ax2.set_xlabel("asymptote 1 - e_IR")
    ax2.set_ylabel("prior draws")
    fig.suptitle(
        f"Prior predictive ({config.target} target, {config.pooling} pooling)\n"
        f"{in_range.mean():.0%} of prior curves stay in [0, 1] for US accuracy 0-1 "
        f"({in_data_range.mean():.0%} over the data's US range), "
        f"{increasing.mean():.0%} increase with US accuracy",
        fontsize=10,
    )
    return fig
