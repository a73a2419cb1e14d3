"""Figure A (the law per task with credible bands) and the forest of asymptotes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from scale_transfer.config import DEFAULT_KIND, DEFAULT_PROB
from scale_transfer.law import ds_acc
from scale_transfer.plots.common import (
    C_ASYM,
    C_BAND,
    C_CURVE,
    C_EXTRAP,
    C_LSQ,
    C_NEW_TASK,
    C_POINTS,
    C_TRUTH,
    POINT_CMAP,
    check_nested,
    finite,
    group_data,
    group_rows,
    interval_label,
    label_outer,
    lsq_interval_prob,
    panel_grid,
    task_row,
    with_asymptote,
)
from scale_transfer.posterior import NEW_TASK, interval

if TYPE_CHECKING:
    from scale_transfer.posterior import Posterior

__all__ = ["figure_a", "forest_asymptotes"]


# ------------------------------------------------------------------------------ Figure A
def _points(ax, d: pd.DataFrame, us: np.ndarray, ds: np.ndarray, norm) -> None:  # noqa: ANN001
    """Scatter a panel's models (small first, so the big ones stay on top) and circle the hull."""
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


def _law_band(
    ax,
    post: Posterior,
    g: int,
    xs: tuple,
    prob: float,
    interval_kind: str,
    n_grid: int,  # noqa: ANN001
) -> list[float]:
    """Draw group ``g``'s law (median, band) over the data, then extrapolated; return y range."""
    x_lo, x_hi, end, x_start = xs
    y_seen: list[float] = []
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
    return y_seen


def _legend(
    fig: Figure, flat: list, curve_name: str, band_name: str, prob: float, interval_kind: str,
    lsq: pd.DataFrame | None, truth: pd.DataFrame | None, norm,  # noqa: ANN001
) -> None:  # fmt: skip
    """Figure A's legend, and the colour bar of parameter counts where the data have them."""
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


def _reference_curves(
    ax, full: np.ndarray, lsq: pd.DataFrame | None, truth: pd.DataFrame | None, setting: str,
    task: str,  # noqa: ANN001
) -> None:  # fmt: skip
    """Draw the least-squares curve and the true law (a simulation's) where given."""
    lrow = task_row(lsq, setting, task)
    if lrow is not None and finite(lrow["k"], lrow["alpha"], lrow["e_ir"]):
        y = ds_acc(full, lrow["k"], lrow["alpha"], lrow["e_ir"])
        ax.plot(full, y, color=C_LSQ, lw=1.1, ls="-.", zorder=4)
    trow = task_row(truth, setting, task)
    law = ("k", "alpha", "e_ir")  # a truth table may hold only the asymptotes
    if trow is not None and all(c in trow for c in law) and finite(*trow[list(law)]):
        y = ds_acc(full, trow["k"], trow["alpha"], trow["e_ir"])
        ax.plot(full, y, color=C_TRUTH, lw=1.1, zorder=4)


def _params_norm(data: pd.DataFrame) -> mcolors.LogNorm | None:
    """Log colour scale of the parameter counts, or None where the data have none."""
    params = data["params"].to_numpy(float) if "params" in data else np.full(len(data), np.nan)
    ok = np.isfinite(params) & (params > 0)
    if not ok.any():
        return None
    lo, hi = np.nanmin(params[ok]), np.nanmax(params[ok])
    return mcolors.LogNorm(vmin=lo, vmax=max(hi, lo * 1.0001))


def _limits(
    ax,
    zoom: bool,
    y_seen: list[float],
    xs: tuple,
    ds_min: float,
    lower: float,  # noqa: ANN001
) -> None:
    """Set a Figure A panel's axes: the whole range, or a zoom on the extrapolation."""
    x_lo, x_start, end = xs
    if zoom:
        span = max(y_seen) - min(y_seen)
        ax.set_xlim(x_start, end + 0.01)
        ax.set_ylim(max(0.0, min(y_seen) - 0.3 * span), min(1.005, max(y_seen) + 0.3 * span))
    else:
        ax.set_xlim(max(0.0, x_lo - 0.02), end + 0.01)
        ax.set_ylim(max(0.0, min(ds_min, lower) - 0.03), 1.005)


def figure_a(
    post: Posterior,
    *,
    prob: float = DEFAULT_PROB,
    lsq: pd.DataFrame | None = None,
    extrapolate_to: float = 1.0,
    truth: pd.DataFrame | None = None,
    interval_kind: str = DEFAULT_KIND,
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
        ``post.summary(prob=prob, interval_kind=interval_kind)`` when the caller has it already.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not 0 < extrapolate_to <= 1:
        raise ValueError(f"extrapolate_to must be in (0, 1]; got {extrapolate_to}")
    groups = group_rows(post)
    curve_name = "law + discrepancy" if getattr(post.config, "discrepancy", False) else "law"
    if getattr(post.config, "effects", ()):
        curve_name += " (population curve: effects at 0)"
    asym = post.summary(prob=prob, interval_kind=interval_kind) if summary is None else summary
    norm = _params_norm(post.data)
    fig, axes, flat, ncols = panel_grid(len(groups), ncols, (3.5, 2.9), extra_h=0.9)
    band_name = interval_label(prob, interval_kind, "credible band")
    for ax, (g, label, setting, task) in zip(flat, groups, strict=True):
        d = group_data(post, setting, task)
        us = d["us_acc"].to_numpy(float)
        ds = d["ds_acc"].to_numpy(float)
        x_lo, x_hi = float(us.min()), float(us.max())
        end = max(extrapolate_to, x_hi)
        x_start = x_lo + 0.6 * (x_hi - x_lo) if zoom else x_lo
        y_seen = [float(asym["lower"].iloc[g]), float(asym["upper"].iloc[g])]
        _points(ax, d, us, ds, norm)
        # extrapolation region
        if end > x_hi:
            ax.axvspan(x_hi, end + 0.02, color=C_EXTRAP, zorder=0, linewidth=0)
            ax.axvline(x_hi, color="0.55", linewidth=0.7, linestyle=":", zorder=1)
        # asymptote and its interval
        row = asym.iloc[g]
        ax.axhspan(row["lower"], row["upper"], color=C_ASYM, alpha=0.18, linewidth=0, zorder=1)
        ax.axhline(row["median"], color=C_ASYM, linestyle=":", linewidth=1.3, zorder=3)
        y_seen += _law_band(ax, post, g, (x_lo, x_hi, end, x_start), prob, interval_kind, n_grid)
        _reference_curves(ax, np.linspace(x_lo, end, n_grid), lsq, truth, setting, task)
        _limits(ax, zoom, y_seen, (x_lo, x_start, end), float(ds.min()), float(row["lower"]))
        ax.set_title(
            f"{label}\nasymptote {row['median']:.3f} [{row['lower']:.3f}, {row['upper']:.3f}]",
            fontsize=9,
        )
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3, linewidth=0.5)
    label_outer(flat, ncols, "US accuracy", "DS accuracy")

    _legend(fig, flat, curve_name, band_name, prob, interval_kind, lsq, truth, norm)
    c = post.config
    fig.suptitle(
        f"DS vs US accuracy{' (zoom on the extrapolation)' if zoom else ''}: Bayesian fit of "
        + (
            "acc_DS = c sigmoid(a + alpha logit acc_US) (odds law, "
            if getattr(c, "law", "error") == "odds"
            else "e_DS = k e_US^alpha + e_IR ("
        )
        + f"target={c.target}, pooling={c.pooling}, likelihood={c.likelihood})",
        fontsize=11,
    )
    return fig


# ------------------------------------------------------------------------ asymptote forest
def _forest_references(ax, yi: float, lrow, trow) -> None:  # noqa: ANN001
    """Mark a task's least-squares estimate (and interval) and true asymptote, if given."""
    if lrow is not None and finite(lrow["asymptote"]):
        yl = yi + 0.27
        if "asymptote_lower" in lrow and finite(lrow["asymptote_lower"], lrow["asymptote_upper"]):
            ax.plot(
                [lrow["asymptote_lower"], lrow["asymptote_upper"]], [yl, yl], color=C_LSQ,
                lw=0.9, zorder=2,
            )  # fmt: skip
        ax.plot(lrow["asymptote"], yl, "x", color=C_LSQ, ms=6, zorder=4)
    if trow is not None and "asymptote" in trow and finite(trow["asymptote"]):
        ax.plot(trow["asymptote"], yi - 0.27, "D", color=C_TRUTH, ms=5, zorder=5)


def _forest_handles(
    prob: float, inner_prob: float, interval_kind: str, new_task: bool,
    lsq: pd.DataFrame | None, lsq_prob: float, truth: pd.DataFrame | None,
) -> list:  # fmt: skip
    """Return the forest plot's legend entries."""
    handles = [
        Line2D([], [], color=C_CURVE, lw=1.4, label=interval_label(prob, interval_kind)),
        Line2D([], [], color=C_CURVE, lw=5, label=interval_label(inner_prob, interval_kind)),
        Line2D([], [], marker="o", ls="", mfc="white", mec=C_CURVE, label="posterior median"),
    ]
    if new_task:
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
    return handles


def forest_asymptotes(
    post: Posterior,
    *,
    prob: float = DEFAULT_PROB,
    lsq: pd.DataFrame | None = None,
    truth: pd.DataFrame | None = None,
    interval_kind: str = DEFAULT_KIND,
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
        ``post.summary(prob=prob, interval_kind=interval_kind)`` when the caller has it already.

    Returns
    -------
    matplotlib.figure.Figure
    """
    inner_prob = check_nested(prob, inner_prob)
    lsq_prob = lsq_interval_prob(lsq, lsq_prob, prob)
    truth = with_asymptote(truth)
    outer = post.summary(prob=prob, interval_kind=interval_kind) if summary is None else summary
    inner = post.summary(prob=inner_prob, interval_kind=interval_kind)
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
        _forest_references(ax, y[i], task_row(lsq, setting, task), task_row(truth, setting, task))
    if len(outer) > n_groups:
        ax.axhline((y[n_groups - 1] + y[n_groups]) / 2, color="0.6", lw=0.7, ls="--")
    ax.set_yticks(y, labels)
    for tick in ax.get_yticklabels()[n_groups:]:
        tick.set_color(C_NEW_TASK)
        tick.set_fontstyle("italic")
    ax.set_ylim(y[-1] + 0.7, -0.7)
    ax.set_xlabel("asymptote 1 - e_IR (DS accuracy at 100% US accuracy)")
    ax.grid(axis="x", alpha=0.3)
    handles = _forest_handles(
        prob, inner_prob, interval_kind, len(outer) > n_groups, lsq, lsq_prob, truth
    )
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=8)
    ax.set_title(
        f"Asymptote per task: {interval_label(prob, interval_kind)} (thin) and "
        f"{100 * inner_prob:g}% (thick)",
        fontsize=10,
    )
    return fig
