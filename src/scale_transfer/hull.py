"""The upper convex hull of (US accuracy, DS accuracy): the frontier the paper fits.

A randomized mixture of two models reaches every point of the segment between them, so the
best downstream accuracy reachable at upstream accuracy ``u`` is the upper convex hull of the
points. The paper fits its law to the *rising* part of that hull:

- it starts at the leftmost point (the one with the highest ``ds_acc`` among the points with
  the lowest ``us_acc``);
- it ends at the point with the highest ``ds_acc`` (the leftmost one if several share it);
  points to its right are dominated: a model with less upstream error reaches a better
  downstream accuracy;
- in between it keeps only the *vertices* of the hull: a point on the segment between two
  others (collinear) or below it is left out.

The chain is therefore strictly increasing in both ``us_acc`` and ``ds_acc`` and concave.
Ties and duplicates are resolved deterministically: of points with the same ``us_acc`` only
the highest can be on the hull, and of exact duplicates the first in input order is returned.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from scale_transfer.data import setting_of

__all__ = ["check_xy", "hull_points", "mark_hull", "upper_hull"]

GROUP_COLUMNS = ("setting", "task")


def check_xy(us_acc: ArrayLike, ds_acc: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Return US and DS accuracies as flat float arrays; refuse unequal lengths and NaN or inf."""
    x = np.asarray(us_acc, dtype=float).ravel()
    y = np.asarray(ds_acc, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"us_acc and ds_acc differ in length: {x.size} and {y.size}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("us_acc and ds_acc must be finite (no NaN or inf)")
    return x, y


def _records(y_sorted: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Strict left-to-right maxima of ``y_sorted`` (the points no earlier point dominates).

    ``y_sorted`` is in hull order (``us_acc`` ascending, ties by ``ds_acc`` descending).
    With ``mask`` (any leading shape), only masked points count. Returns a boolean array.
    """
    ym = y_sorted if mask is None else np.where(mask, y_sorted, -np.inf)
    prev = np.maximum.accumulate(ym, axis=-1)
    prev = np.concatenate([np.full(prev.shape[:-1] + (1,), -np.inf), prev[..., :-1]], axis=-1)
    rec = ym > prev
    return rec if mask is None else rec & mask


def _prune(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Positions of the upper-hull vertices of a chain strictly increasing in x and in y.

    Any point on or below the segment joining its two neighbours is not a vertex, whether or
    not those neighbours are; so all such points are dropped at once, until none is left.
    """
    keep = np.arange(x.size)
    while keep.size > 2:
        xs, ys = x[keep], y[keep]
        # cross(prev -> cur, prev -> next) >= 0: cur is on or below the segment prev-next.
        cross = (xs[1:-1] - xs[:-2]) * (ys[2:] - ys[:-2]) - (ys[1:-1] - ys[:-2]) * (
            xs[2:] - xs[:-2]
        )
        drop = cross >= 0
        if not drop.any():
            break
        keep = np.concatenate([keep[:1], keep[1:-1][~drop], keep[-1:]])
    return keep


def _hull_order(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sort order: ``us_acc`` ascending, then ``ds_acc`` descending, then input order."""
    return np.lexsort((np.arange(x.size), -y, x))


def upper_hull(us_acc: ArrayLike, ds_acc: ArrayLike) -> np.ndarray:
    """Find the points on the rising upper convex hull of (``us_acc``, ``ds_acc``).

    Parameters
    ----------
    us_acc, ds_acc : array_like
        Upstream and downstream accuracy of each point (same length, finite).

    Returns
    -------
    numpy.ndarray
        Integer positions into the inputs, ordered by ``us_acc`` ascending. The chain runs
        from the leftmost point to the (leftmost) point of highest ``ds_acc``; it is strictly
        increasing and concave, and every input point lies on or below its piecewise-linear
        interpolation (and below its last point to the right of it). Empty input gives an
        empty array.

    Raises
    ------
    ValueError
        If the inputs differ in length or hold NaN or inf.

    Examples
    --------
    >>> upper_hull([0.1, 0.2, 0.3, 0.4, 0.5], [0.2, 0.5, 0.55, 0.9, 0.6])
    array([0, 1, 3])
    """
    x, y = check_xy(us_acc, ds_acc)
    if x.size == 0:
        return np.empty(0, dtype=np.intp)
    order = _hull_order(x, y)
    xs, ys = x[order], y[order]
    cand = np.flatnonzero(_records(ys))
    return order[cand[_prune(xs[cand], ys[cand])]]


def _groups(df: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"setting": setting_of(df).to_numpy(), "task": df["task"].to_numpy()})


def mark_hull(df: pd.DataFrame) -> pd.DataFrame:
    """Add a boolean column ``on_hull``: the row is on the upper hull of its (setting, task).

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy frame with columns ``task``, ``us_acc``, ``ds_acc`` and optionally ``setting``
        (or ``upstream`` and ``shots``, see :func:`scale_transfer.data.setting_of`).

    Returns
    -------
    pandas.DataFrame
        A copy of ``df`` with the column ``on_hull``.
    """
    out = df.copy()
    on = np.zeros(len(df), dtype=bool)
    us, ds = df["us_acc"].to_numpy(dtype=float), df["ds_acc"].to_numpy(dtype=float)
    for pos in _groups(df).groupby(list(GROUP_COLUMNS), sort=False).indices.values():
        on[pos[upper_hull(us[pos], ds[pos])]] = True
    out["on_hull"] = on
    return out


def hull_points(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``df`` on the upper hull of their (setting, task), all columns kept.

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy frame, as for :func:`mark_hull`.

    Returns
    -------
    pandas.DataFrame
        The hull rows, grouped by (setting, task) in order of first appearance and sorted by
        ``us_acc`` within a group; the index of ``df`` is kept.
    """
    us, ds = df["us_acc"].to_numpy(dtype=float), df["ds_acc"].to_numpy(dtype=float)
    groups = _groups(df).groupby(list(GROUP_COLUMNS), sort=False).indices.values()
    pos = [p[upper_hull(us[p], ds[p])] for p in groups]
    take = np.concatenate(pos) if pos else np.empty(0, dtype=np.intp)
    return df.iloc[take]
