"""The sample-size study's table: read from its folder, summarised, coverage pooled."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from scale_transfer.studies.study_fits import FIT_KEY, TABLE_COLUMNS

__all__ = [
    "FITS_DIR",
    "as_table",
    "pooled_coverage",
    "read_study",
    "size_key",
    "size_order",
    "summarize",
]

#: Folder of a study directory that holds one CSV per finished fit.
FITS_DIR = "fits"


def size_key(size: str) -> float:
    """Sort key of a sample-size label: its number, ``"all"`` last."""
    return math.inf if size == "all" else float(size)


def size_order(sizes: Iterable[str]) -> list[str]:
    """Return the distinct sample-size labels in numeric order, ``"all"`` last."""
    return sorted(set(sizes), key=size_key)


def read_study(out: str | os.PathLike) -> pd.DataFrame:
    """Read every finished fit of the study in ``out`` into one table.

    Parameters
    ----------
    out : path
        The study directory.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TABLE_COLUMNS`, one row per (fit, task), sorted by setting, size,
        repeat, target, method and task (sizes in numeric order, ``"all"`` last).
    """
    files = sorted((Path(out) / FITS_DIR).glob("*/*.csv"))
    if not files:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    df = pd.concat([pd.read_csv(f, dtype={"size": str}) for f in files], ignore_index=True)
    df = df.reindex(columns=TABLE_COLUMNS)
    order = df["size"].map(size_key)
    df = df.assign(_o=order).sort_values(["setting", "_o", "repeat", "target", "method", "task"])
    return df.drop(columns="_o").reset_index(drop=True)


#: Metrics ``summarize`` pools over held-out points, and the weight of each: ``_n`` the points
#: a fit's intervals were scored on (all held-out points, or the held-out hull for a hull
#: fit), ``_nh`` the held-out hull points (the predictive hull of a fit to all points).
_POOLED = {
    "cover50": "_n",
    "cover90": "_n",
    "width90": "_n",
    "hull_cover50": "_nh",
    "hull_cover90": "_nh",
}


def _pool_weights(t: pd.DataFrame) -> dict[str, pd.Series]:
    """Held-out points behind each row's metrics: ``_n`` and ``_nh`` of :data:`_POOLED`."""
    n = np.where(t["target"] == "all", t["n_holdout_all"], t["n_holdout_hull"])
    return {"_n": pd.Series(n, index=t.index), "_nh": t["n_holdout_hull"]}


def as_table(table: pd.DataFrame | str | os.PathLike) -> pd.DataFrame:
    """Return the study table (a folder is read with :func:`read_study`); refuse an empty one."""
    where = ""
    if isinstance(table, str | os.PathLike):
        where = f" in {table}"
        if not Path(table).is_dir():
            raise FileNotFoundError(f"{table}: no such study folder")
        table = read_study(table)
    if len(table) == 0:
        raise ValueError(f"no finished fits{where}: run the study first (scale-transfer study)")
    return table


def pooled_coverage(table: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Coverage and width pooled over the held-out points of every fit in each group.

    Each fit and task weighs by its held-out points (:data:`_POOLED`: all held-out points
    for a fit to all points, the held-out hull for a hull fit and for the predictive hull);
    rows without the metric (a least-squares fit without a residual sd, a hull fit's
    predictive hull) are left out of its weights.

    Parameters
    ----------
    table : pandas.DataFrame or path
        From :func:`run_study` or :func:`read_study`, or the study folder.
    by : sequence of str
        Columns to group by, e.g. ``["setting", "target", "method"]``.

    Returns
    -------
    pandas.DataFrame
        One row per group: ``cover50, cover90, width90, hull_cover50, hull_cover90``.
    """
    t = as_table(table)
    weight = _pool_weights(t)
    cols = {}
    for c, w in _POOLED.items():
        x = t[c] if c in t else pd.Series(np.nan, index=t.index)
        wt = pd.Series(np.asarray(weight[w], float), index=t.index).where(x.notna(), 0.0)
        cols[f"_{c}"], cols[f"_{c}_w"] = x.fillna(0.0) * wt, wt
    g = pd.DataFrame(cols).join(t[list(by)]).groupby(list(by), sort=False).sum()
    out = pd.DataFrame(
        {c: g[f"_{c}"] / g[f"_{c}_w"].where(g[f"_{c}_w"] > 0) for c in _POOLED}, index=g.index
    )
    return out.reset_index()


def summarize(table: pd.DataFrame, max_rhat: float | None = None) -> pd.DataFrame:
    """Average the study over tasks (per fit), then summarise over repeats (per sample size).

    Errors of a fit are averaged over its tasks (as the paper's panels average over
    downstream tasks); coverage and width are pooled over the held-out points of all tasks.

    Parameters
    ----------
    table : pandas.DataFrame or path
        From :func:`run_study` or :func:`read_study`, or the study folder.
    max_rhat : float, optional
        Leave out Bayesian fits whose largest R-hat is above this (least-squares fits are
        always kept). Default: keep every fit.

    Returns
    -------
    pandas.DataFrame
        One row per (setting, size, target, method) with, for each of ``fit_mse``,
        ``pred_mse``, ``asymptote_abs_err``, ``cover50``, ``cover90``, ``width90``,
        ``hull_cover50``, ``hull_cover90`` (pooled over the held-out hull points): the mean,
        median and 10% and 90% quantiles over repeats (``<metric>``, ``<metric>_median``,
        ``<metric>_q10``, ``<metric>_q90``); ``repeats`` (fits summarised), ``max_rhat``
        (largest R-hat of those fits) and ``converged`` (share of fits that passed every
        convergence check; Bayesian methods only).
    """
    t = as_table(table).copy()
    if max_rhat is not None:
        t = t[(t["method"] == "lsq") | (t["max_rhat"] <= max_rhat)]
    t = t.assign(**_pool_weights(t))
    for c, w in _POOLED.items():  # tables from before a column existed lack it
        t[f"_{c}"] = (t[c] if c in t else np.nan) * t[w].astype(float)
    t["converged"] = t["converged"].map({True: 1.0, False: 0.0, "True": 1.0, "False": 0.0})
    per_fit = t.groupby(FIT_KEY, sort=False).agg(
        fit_mse=("fit_mse", "mean"),
        pred_mse=("pred_mse", "mean"),
        asymptote_abs_err=("asymptote_abs_err", "mean"),
        _n=("_n", "sum"),
        _nh=("_nh", "sum"),
        **{f"_{c}": (f"_{c}", lambda x: x.sum(min_count=1)) for c in _POOLED},
        max_rhat=("max_rhat", "first"),
        converged=("converged", "first"),
    )
    for c, w in _POOLED.items():
        per_fit[c] = per_fit[f"_{c}"] / per_fit[w]
    per_fit = per_fit.reset_index()
    metrics = ["fit_mse", "pred_mse", "asymptote_abs_err", *_POOLED]
    g = per_fit.groupby(["setting", "size", "target", "method"], sort=False)
    out = g[metrics].mean()
    out = out.join(g[metrics].median().add_suffix("_median"))
    for q, tag in ((0.1, "q10"), (0.9, "q90")):
        out = out.join(g[metrics].quantile(q).add_suffix(f"_{tag}"))
    out["repeats"] = g.size()
    out["max_rhat"] = g["max_rhat"].max()
    out["converged"] = g["converged"].mean()
    return out.reset_index()
