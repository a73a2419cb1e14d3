"""Does this fit extrapolate on its own data? Leave-future-out scores of new-model intervals.

:func:`check` refits a fitted model without each group's top band by US accuracy
(``ceil(n / 9)`` points, :func:`scale_transfer.extrapolation.band_split`) and scores the
refit's new-model predictive on that band: coverage of equal-tailed intervals at
:data:`LEVELS`, CRPS, MSE and bias of the predictive mean, and the mean 90% width, per
task and pooled (the row ``task == "(all)"``). Where the fit has a drift layer
(``extrapolation="lfo"``) the refit gets its own, from one more refit without the next
band too; otherwise the refit's plain predictive is scored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scale_transfer.intervals import interval

if TYPE_CHECKING:
    from scale_transfer.posterior import Posterior

__all__ = ["ALL", "LEVELS", "check", "crps_draws", "score_points", "score_table"]

#: Interval probabilities scored.
LEVELS = (0.5, 0.8, 0.9, 0.95)
#: Label of the pooled row.
ALL = "(all)"


def crps_draws(draws: np.ndarray, y: np.ndarray) -> np.ndarray:
    """CRPS of draws ``(n_draws, n)`` against ``y`` ``(n,)``: ``E|X - y| - E|X - X'| / 2``."""
    x = np.sort(draws, axis=0)
    m = x.shape[0]
    first = np.abs(x - y[None, :]).mean(0)
    weights = (2.0 * np.arange(1, m + 1) - m - 1)[:, None]
    second = (weights * x).sum(0) / (m * m)  # E|X - X'| / 2
    return first - second


def score_points(post: Posterior, test: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Score ``post``'s new-model predictive at each row of ``test``; one row per point.

    Columns ``setting, task, model, us_acc, ds_acc, pred`` (the predictive mean), ``crps``,
    ``in50 ... in95`` (1 where the equal-tailed interval holds the point) and ``w50 ...
    w95`` (widths). Rows of a (setting, task) the fit does not have are left out.
    """
    from scale_transfer.posterior import unseen_levels_expected

    out = []
    for g, (setting, task) in enumerate(
        zip(post.groups["setting"], post.groups["task"], strict=True)
    ):
        t = test[(test["setting"] == setting) & (test["task"] == task)]
        if t.empty:
            continue
        eff = post.row_effects(t)
        with unseen_levels_expected():
            draws = post.predict_draws(t["us_acc"].to_numpy(float), "new-model", seed, eff)
        draws = draws[:, g, :]
        y = t["ds_acc"].to_numpy(float)
        rec = {
            "setting": setting,
            "task": task,
            "model": t["model"].to_numpy(),
            "us_acc": t["us_acc"].to_numpy(float),
            "ds_acc": y,
            "pred": draws.mean(0),
            "crps": crps_draws(draws, y),
        }
        for p in LEVELS:
            lo, hi = interval(draws, p, "eti")
            rec[f"in{round(p * 100)}"] = ((y >= lo) & (y <= hi)).astype(float)
            rec[f"w{round(p * 100)}"] = hi - lo
        out.append(pd.DataFrame(rec))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def _summary(points: pd.DataFrame) -> dict[str, float]:
    err = points["ds_acc"] - points["pred"]
    row = {"n": len(points)}
    row |= {f"cov{round(p * 100)}": points[f"in{round(p * 100)}"].mean() for p in LEVELS}
    row |= {
        "crps": points["crps"].mean(),
        "mse": float(np.mean(err**2)),
        "bias": float(np.mean(err)),
        "width90": points["w90"].mean(),
    }
    return row


def score_table(points: pd.DataFrame) -> pd.DataFrame:
    """Per (setting, task) and pooled scores of :func:`score_points`' rows.

    Columns ``task, setting, n, cov50, cov80, cov90, cov95, crps, mse, bias, width90``;
    ``bias`` is the mean of observed minus predicted; the last row (``task == "(all)"``)
    pools every point.
    """
    rows = [
        {"task": task, "setting": setting} | _summary(g)
        for (setting, task), g in points.groupby(["setting", "task"], sort=False)
    ]
    rows.append({"task": ALL, "setting": ""} | _summary(points))
    return pd.DataFrame(rows)


def check(post: Posterior, *, seed: int | None = None) -> pd.DataFrame:
    """Return the extrapolation self-check of a fitted posterior (refits it; see the module).

    A fit with ``extrapolation="lfo"`` (odds law) is scored with its drift layer: two
    refits. Any other fit is scored plainly: one refit. The table's ``attrs["drift_layer"]``
    says which.
    """
    from scale_transfer.extrapolation import band_split, drift_layer, fitted_rows, refit

    rest, band, sizes = band_split(fitted_rows(post))
    inner = refit(post, rest)
    layered = post.law == "odds" and post.config.extrapolation == "lfo"
    if layered:
        rest2, band2, _ = band_split(rest, sizes)
        inner.drift = drift_layer(refit(post, rest2), band2)
    table = score_table(score_points(inner, band, seed=post.sampler.seed if seed is None else seed))
    table.attrs["drift_layer"] = layered
    return table
