"""Held-out hull points against a least-squares fit to the pool's hull (docs/study.md).

The training hull (about 1,350 models) and the held-out hull (150 models) are maxima over
different numbers of models; this prints the mean signed residual of the held-out hull
points per task (negative: they sit below the fit) and the fit's residual sd, over 5
simulations of each setting. Usage:

    .venv/bin/python scripts/hull_holdout_bias.py
"""

from __future__ import annotations

import pandas as pd

from scale_transfer.hull import hull_points
from scale_transfer.lsq import fit_lsq, predict_lsq
from scale_transfer.simulate import simulate
from scale_transfer.study import _split

rows = []
for setting in ("jft-25shot", "in21k-1shot"):
    for seed in range(5):
        df = simulate(setting, 1500, seed).data
        pool, hold, _ = _split(df, 0.1)
        pool_hull, hold_hull = hull_points(pool), hull_points(hold)
        for task in df["task"].unique():
            fit_pts = pool_hull[pool_hull["task"] == task]
            held = hold_hull[hold_hull["task"] == task]
            f = fit_lsq(fit_pts["us_acc"], fit_pts["ds_acc"])
            resid = held["ds_acc"].to_numpy() - predict_lsq(f, held["us_acc"].to_numpy())
            rows.append(
                {
                    "setting": setting,
                    "seed": seed,
                    "task": task,
                    "mean_resid": resid.mean(),
                    "sd_fit": f.sigma,
                }
            )
table = pd.DataFrame(rows).groupby(["setting", "task"])[["mean_resid", "sd_fit"]].mean()
print(table.round(4).unstack(0).to_string())
