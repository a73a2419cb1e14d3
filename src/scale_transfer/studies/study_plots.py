"""Figure B of the sample-size study: error against sample size, and interval coverage."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from scale_transfer.studies.study_fits import METHODS
from scale_transfer.studies.study_tables import as_table, size_order, summarize

__all__ = ["COLORS", "METHOD_NAMES", "STYLES", "plot_study"]

#: Line colour per (target, error): fits to all points or to the hull, fitting or prediction.
COLORS = {
    ("all", "fit"): "#4c72b0",
    ("all", "pred"): "#f28e2b",
    ("hull", "fit"): "#e15759",
    ("hull", "pred"): "#59a89c",
}
#: Line style and marker per method.
STYLES = {
    "lsq": ("-", "o"),
    "bayes": ("--", "s"),
    "bayes-gaussian": ((0, (5, 1)), "v"),
    "bayes-t": ("-.", "D"),
    "bayes-frontier": (":", "^"),
}
#: Legend name per method.
METHOD_NAMES = {
    "lsq": "least squares",
    "bayes": "Bayes",
    "bayes-gaussian": "Bayes (Gaussian)",
    "bayes-t": "Bayes (Student-t)",
    "bayes-frontier": "Bayes (frontier)",
}
_ERROR_NAMES = {
    ("all", "fit"): "all points: fitting error",
    ("all", "pred"): "all points: prediction error",
    ("hull", "fit"): "hull: fitting error",
    ("hull", "pred"): "hull: prediction error",
}
_HEADS = ("top row: error", "bottom row: coverage", "method (both rows)")


class _Bands:
    """Draws a summary column against sample size: the line and its 10%-90% band."""

    def __init__(self, sizes: list[str], suffix: str) -> None:
        self.xpos = {s: i for i, s in enumerate(sizes)}
        self.suffix = suffix
        self.lines: dict[Any, list[float]] = {}  # values of the lines drawn, per axes

    def draw(self, ax: Any, d: pd.DataFrame, col: str, color: str, style: tuple) -> None:
        """Draw ``col`` of ``d`` (one method, one target) if it has any value."""
        if not len(d) or not d[col].notna().any():
            return
        ls, marker = style
        d = d.assign(_x=d["size"].map(self.xpos)).sort_values("_x")
        x = d["_x"].to_numpy(float)
        ax.fill_between(x, d[f"{col}_q10"], d[f"{col}_q90"], color=color, alpha=0.15, lw=0)
        y = d[col + self.suffix].to_numpy(float)
        ax.plot(x, y, color=color, ls=ls, marker=marker, ms=3.5, lw=1.4)
        self.lines.setdefault(ax, []).extend(y[np.isfinite(y) & (y > 0)])


def _cell(summ: pd.DataFrame, setting: str, method: str, target: str) -> pd.DataFrame:
    return summ[(summ.setting == setting) & (summ.method == method) & (summ.target == target)]


def _error_panel(
    ax: Any, summ: pd.DataFrame, setting: str, methods: list[str], bands: _Bands
) -> None:
    """Top row: fitting and prediction error of each method and target, log scale."""
    for m in methods:
        for (target, kind), color in COLORS.items():
            col = "fit_mse" if kind == "fit" else "pred_mse"
            bands.draw(ax, _cell(summ, setting, m, target), col, color, STYLES[m])
    ax.set_yscale("log")
    if bands.lines.get(ax):
        # bands of fits whose chains did not mix can span decades: clip them, not the lines
        ax.set_ylim(min(bands.lines[ax]) / 4.0, max(bands.lines[ax]) * 4.0)
    ax.set_title(setting, fontsize=11, fontweight="bold")
    ax.grid(True, which="major", alpha=0.3)


def _coverage_panel(
    ax: Any, summ: pd.DataFrame, setting: str, methods: list[str], bands: _Bands
) -> None:
    """Bottom row: coverage of the 50% and 90% intervals, and of the predictive hull."""
    for level in (0.5, 0.9):
        ax.axhline(level, color="0.3", lw=1.0, ls=":", zorder=0)
        ax.text(1.0, level, f"{level:.0%} ", transform=ax.get_yaxis_transform(),
                ha="right", va="bottom", fontsize=8, color="0.3")  # fmt: skip
    for m in methods:
        for target in ("all", "hull"):
            d = _cell(summ, setting, m, target)
            for col in ("cover90", "cover50"):
                bands.draw(ax, d, col, COLORS[(target, "fit")], STYLES[m])
        d = _cell(summ, setting, m, "all")
        for col in ("hull_cover90", "hull_cover50"):  # predictive hull (all points)
            bands.draw(ax, d, col, COLORS[("hull", "pred")], STYLES[m])
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)


def _head(text: str) -> Any:
    from matplotlib.lines import Line2D

    return Line2D([], [], color="none", label=text)


def _line(label: str, color: str, **kwargs: Any) -> Any:
    from matplotlib.lines import Line2D

    return Line2D([], [], color=color, label=label, **kwargs)


def _repeat_notes(summ: pd.DataFrame, methods: list[str], n_cells: int) -> list[Any]:
    """Legend lines for a study still running: which methods' lines rest on fewer fits."""
    top = int(summ["repeats"].max())
    notes = []
    for m in methods:
        reps = summ.loc[summ["method"] == m, "repeats"]
        cells = n_cells * summ.loc[summ["method"] == m, "target"].nunique()
        if reps.min() < top or len(reps) < cells:
            lo, hi = int(reps.min()), int(reps.max())
            span = str(lo) if lo == hi else f"{lo}-{hi}"
            note = f"{METHOD_NAMES[m]}: {span} repeat{'s' if hi > 1 else ''}"
            if len(reps) < cells:
                note += f",\n  {len(reps)} of {cells} cells"
            notes.append(_head(note))
    return notes


def _legend_handles(
    summ: pd.DataFrame, methods: list[str], rows: int, stat: str, n_cells: int
) -> list[Any]:
    """Legend: the colours of each row, the methods' styles, and what lines and bands are."""
    handles = [_head(_HEADS[0])]
    handles += [_line(_ERROR_NAMES[k], c, lw=2) for k, c in COLORS.items()]
    if rows == 2:
        handles += [_head(""), _head(_HEADS[1])]
        handles += [
            _line("fit to all points", COLORS[("all", "fit")], lw=2),
            _line("fit to hull", COLORS[("hull", "fit")], lw=2),
        ]
        if summ[["hull_cover50", "hull_cover90"]].notna().any().any():
            label = "fit to all points:\npredictive hull vs held-out hull"
            handles += [_line(label, COLORS[("hull", "pred")], lw=2)]
        handles += [_line("nominal 50% / 90%", "0.3", ls=":")]
    handles += [_head(""), _head(_HEADS[2])]
    handles += [
        _line(METHOD_NAMES[m], "0.2", ls=STYLES[m][0], marker=STYLES[m][1]) for m in methods
    ]
    handles += [_head(""), _head(f"line: {stat} over repeats"), _head("band: 10%-90% of repeats")]
    return handles + _repeat_notes(summ, methods, n_cells)


def _place_legend(fig: Any, handles: list[Any]) -> None:
    """Put the legend right of the panels, its headings in bold."""
    leg = fig.legend(handles=handles, loc="center right", frameon=False, fontsize=9)
    for text in leg.get_texts():
        if text.get_text() in _HEADS:
            text.set_fontweight("bold")
    fig.canvas.draw()
    share = leg.get_window_extent().width / fig.bbox.width
    fig.tight_layout(rect=(0, 0, 1 - share - 0.01, 1))


def _shown_summary(
    table: pd.DataFrame, max_rhat: float | None, predictive_hull: str
) -> pd.DataFrame:
    """:func:`summarize`, the predictive hull's coverage kept for the chosen fits only."""
    summ = summarize(table, max_rhat=max_rhat)
    if predictive_hull != "all":
        frontier = table["target"].eq("all") & table["likelihood"].eq("frontier")
        shown = set() if predictive_hull == "none" else set(table.loc[frontier, "method"])
        hull_cols = [c for c in summ if c.startswith("hull_cover")]
        summ.loc[~summ["method"].isin(shown), hull_cols] = np.nan
    return summ


def plot_study(
    table: pd.DataFrame,
    coverage: bool = True,
    stat: str = "median",
    max_rhat: float | None = None,
    predictive_hull: str = "frontier",
) -> Any:
    """Figure B: error against sample size per setting, and interval coverage.

    Top row, one panel per setting: task-averaged mean squared error of DS accuracy against
    sample size, for the fitting and the prediction error (``fit_mse``, ``pred_mse``) of fits
    to all points and to the hull; one line style per method; log scale. Bottom row
    (``coverage=True``): empirical coverage of the 50% and 90% predictive intervals on the
    held-out points (Bayes: equal-tailed intervals of a new model's DS accuracy; least
    squares: curve ± z * residual sd), with the nominal levels as dotted lines, and the
    coverage of the held-out hull by the predictive hull of the held-out models
    (``hull_cover50``, ``hull_cover90``; see ``predictive_hull``). Lines are medians (or
    means) over repeats, bands the 10% to 90% quantiles over repeats. A method with fewer
    repeats in some cells than in others (a study still running) says so in the legend.

    Parameters
    ----------
    table : pandas.DataFrame or path
        From :func:`run_study` or :func:`read_study`, or the study folder.
    coverage : bool
        Draw the coverage row (when the table has coverage).
    stat : {"median", "mean"}
        The line: median (default; robust to a fit whose chains did not mix) or mean over
        repeats.
    max_rhat : float, optional
        Leave out Bayesian fits with a larger R-hat (see :func:`summarize`).
    predictive_hull : {"frontier", "all", "none"}
        Whose predictive hull to draw: fits to all points with the frontier likelihood
        (default: the one likelihood with a gap below the frontier, whose new models'
        upper hull estimates a held-out hull), every Bayesian fit to all points that has
        one (the Student-t's and Gaussian's put new models above the frontier: their
        predictive hull sits too high, see docs/study.md), or none. The table keeps the
        columns either way.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    if stat not in ("median", "mean"):
        raise ValueError(f"stat must be 'median' or 'mean'; got {stat!r}")
    if predictive_hull not in ("frontier", "all", "none"):
        raise ValueError(
            f"predictive_hull must be 'frontier', 'all' or 'none'; got {predictive_hull!r}"
        )
    table = as_table(table)
    summ = _shown_summary(table, max_rhat, predictive_hull)
    settings = list(pd.unique(table["setting"]))
    sizes = size_order(table["size"].astype(str))
    methods = [m for m in METHODS if m in set(table["method"])]
    bayes = [m for m in methods if m != "lsq"]
    rows = 2 if coverage and table["cover90"].notna().any() else 1
    ncol = len(settings)
    fig, axes = plt.subplots(
        rows, ncol, figsize=(3.6 * ncol + 2.8, 3.2 * rows + 0.3), squeeze=False, sharex=True
    )
    bands = _Bands(sizes, "_median" if stat == "median" else "")
    for j, s in enumerate(settings):
        _error_panel(axes[0, j], summ, s, methods, bands)
        if rows == 2:
            _coverage_panel(axes[1, j], summ, s, methods, bands)
    axes[0, 0].set_ylabel("MSE of DS accuracy\n(mean over tasks)")
    if rows == 2:
        axes[1, 0].set_ylabel("coverage of held-out points\n(50% and 90% intervals)")
    for ax in axes[-1]:
        ax.set_xticks(range(len(sizes)))
        ax.set_xticklabels(sizes, rotation=90)
        ax.set_xlabel("sample size (models)")
    handles = _legend_handles(summ, methods, rows, stat, len(settings) * len(sizes))
    if rows == 2 and "lsq" in methods:
        handles += [_head("lsq interval: curve ± z·sd")]
    if rows == 2 and bayes:
        handles += [_head("Bayes interval: ETI, new model")]
    if max_rhat is not None and bayes:
        handles += [_head(f"Bayes fits with R-hat > {max_rhat:g} left out")]
    _place_legend(fig, handles)
    return fig
