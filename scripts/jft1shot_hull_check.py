"""Where the frontier's predictive hull misses jft-1shot's held-out hull (session 6 check).

One frontier fit (2 chains x 300 draws) to the pool of ``simulate("jft-1shot", 1500, 0)``
(the top 10% of models by US accuracy held out, as the study does), then the 90% predictive
hull of the held-out models against their observed hull, per task: which points lie above,
below or inside. About 3 minutes on one core.

Run: ``python scripts/jft1shot_hull_check.py``
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from scale_transfer import fit, simulate
from scale_transfer.hull import upper_hull

TASKS = ("caltech", "cars", "cifar100", "imagenet", "pets")


def main() -> pd.DataFrame:
    """Fit, compare, print; return the table of held-out hull points."""
    warnings.simplefilter("ignore")
    sim = simulate("jft-1shot", 1500, 0)
    df = sim.data
    us = df.groupby("model")["us_acc"].first()
    held = us[us > us.quantile(0.9)].index
    pool, hold = df[~df["model"].isin(held)], df[df["model"].isin(held)]
    post = fit(pool, target="all", likelihood="frontier", draws=300, tune=300, chains=2,
               seed=0, progress=False)  # fmt: skip
    print(post.diagnostics.verdict())
    rows = []
    for task in TASKS:
        h = hold[hold["task"] == task]
        hull = h.iloc[upper_hull(h["us_acc"].to_numpy(), h["ds_acc"].to_numpy())]
        hull = hull.sort_values("us_acc")
        p = post.predict_hull(h["us_acc"].to_numpy(), hull["us_acc"].to_numpy(), prob=0.9)
        p = p[p["task"] == task]
        for (_, r), y in zip(p.iterrows(), hull["ds_acc"], strict=True):
            rows.append((task, r["us_acc"], y, r["mean"], r["lower"], r["upper"]))
    out = pd.DataFrame(rows, columns=["task", "us_acc", "held_hull", "mean", "lower", "upper"])
    out["where"] = np.select(
        [out["held_hull"] > out["upper"], out["held_hull"] < out["lower"]], ["above", "below"], "in"
    )
    print(out.round(4).to_string())
    print(post.summary(prob=0.9).round(4).to_string())
    print(sim.truth)
    return out


if __name__ == "__main__":
    main()
