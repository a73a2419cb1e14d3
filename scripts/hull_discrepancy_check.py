"""Hull fits with and without the discrepancy term: coverage of the held-out hull.

One simulation each of in21k-1shot and jft-1shot (1,500 models, top 10% held out), sizes
500 and all, 2 repeats, Gaussian likelihood on the hull points, 2 x 300 draws; prints the
share of held-out hull points inside the 50% and 90% new-model intervals (docs/study.md).

    .venv/bin/python scripts/hull_discrepancy_check.py
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd

from scale_transfer.hull import hull_points
from scale_transfer.posterior import fit
from scale_transfer.simulate import simulate
from scale_transfer.study import _split, _subsample

warnings.simplefilter("ignore")
COLS = ["model", "task", "setting", "us_acc", "ds_acc"]


rows = []
for setting in ("in21k-1shot", "jft-1shot"):
    df = simulate(setting, 1500, 0).data
    pool, hold, pool_models = _split(df, 0.1)
    held = hull_points(hold)
    keys = list(zip(held["task"], held["us_acc"], strict=True))
    obs = held["ds_acc"].to_numpy()
    us = np.unique(held["us_acc"].to_numpy())
    for size in ("500", "all"):
        for rep in range(2):
            sub = hull_points(_subsample(pool, pool_models, size, 0, setting, rep))
            sub = sub.assign(setting="s")[COLS].reset_index(drop=True)
            for disc in (False, True):
                t0 = time.time()
                post = fit(sub, target="all", likelihood="gaussian", discrepancy=disc,
                           draws=300, tune=300, chains=2, cores=1, progress=False,
                           seed=rep)  # fmt: skip
                for prob in (0.5, 0.9):
                    p = post.predict(us, prob=prob, kind="new-model", interval_kind="eti",
                                     seed=rep).set_index(["task", "us_acc"])  # fmt: skip
                    lo, hi = p.loc[keys, "lower"].to_numpy(), p.loc[keys, "upper"].to_numpy()
                    rows.append(
                        {
                            "setting": setting,
                            "size": size,
                            "rep": rep,
                            "disc": disc,
                            "prob": prob,
                            "cover": ((obs >= lo) & (obs <= hi)).mean(),
                            "width": (hi - lo).mean(),
                            "secs": time.time() - t0,
                        }
                    )
table = pd.DataFrame(rows).groupby(["setting", "disc", "prob"])[["cover", "width", "secs"]]
print(table.mean().round(3).to_string())
