"""Score conditional prediction on timm: the top 10% held out, ImageNet-Sketch given.

Fits the default model (the odds law with its drift layer) to timm without the top 10% of
models by US accuracy per task, then predicts each held-out model's other shifts (V2, ReaL,
ImageNet-R, ImageNet-A) given its measured Sketch accuracy, and scores the equal-tailed 50%
and 90% intervals and the MSE against the unconditional new-model predictive. Prints one
table (per task and pooled); docs/validation.md quotes it.

Usage (from the repository root; timm from $SCALE_TRANSFER_TIMM or ../shared/data)::

    .venv/bin/python tools/conditional_validation.py [--fit FIT.nc] [--draws 1000]

``--fit`` reuses a fit saved by an earlier run of this script (its training split).
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from scale_transfer import conditional
from scale_transfer.data import read_tidy
from scale_transfer.posterior import Posterior, fit
from scale_transfer.studies.validation import holdout_split
from scale_transfer.zoo import load_dataset

GIVEN = "sketch"


def score(draws: np.ndarray, truth: np.ndarray, tasks: list[str], name: str) -> pd.DataFrame:
    """Coverage and width of the 50% and 90% intervals and MSE, per task and pooled."""
    rows = []
    for i, task in enumerate(tasks):
        if task == GIVEN:
            continue
        ok = ~np.isnan(truth[i])
        d, y = draws[:, i, ok], truth[i, ok]
        row = {"method": name, "task": task, "n": int(ok.sum())}
        for p in (0.5, 0.9):
            lo, hi = np.quantile(d, [(1 - p) / 2, (1 + p) / 2], axis=0)
            row[f"coverage_{round(100 * p)}"] = float(np.mean((y >= lo) & (y <= hi)))
            row[f"width_{round(100 * p)}"] = float(np.mean(hi - lo))
        row["mse"] = float(np.mean((d.mean(0) - y) ** 2))
        rows.append(row)
    df = pd.DataFrame(rows)
    cols = ["coverage_50", "width_50", "coverage_90", "width_90", "mse"]
    pooled = {"method": name, "task": "(all)", "n": int(df["n"].sum())}
    pooled |= {c: float(np.average(df[c], weights=df["n"])) for c in cols}
    return pd.concat([df, pd.DataFrame([pooled])], ignore_index=True)


def main() -> None:
    """Fit (or load), predict and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", default=None, help="a fit saved by an earlier run")
    ap.add_argument("--save", default=None, help="save the fit here")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    data = read_tidy(load_dataset("timm"))
    train, test = holdout_split(data, 0.1)
    if args.fit:
        post = Posterior.load(args.fit)
    else:
        post = fit(train, draws=args.draws, tune=args.draws, chains=4, seed=args.seed)
        if args.save:
            post.save(args.save)
    tasks = [str(t) for t in post.groups["task"]]
    wide_us = test.pivot_table(index="model", columns="task", values="us_acc")
    wide_ds = test.pivot_table(index="model", columns="task", values="ds_acc")
    train_us = train.pivot_table(index="model", columns="task", values="us_acc")
    models = wide_ds.index[wide_ds[GIVEN].notna()]
    # each held-out model's US accuracy per task (ImageNet-R and -A have their own); where
    # it is not held out in a task, its training row gives it
    us = np.stack([wide_us.reindex(models)[t].fillna(train_us.reindex(models)[t]) for t in tasks])
    keep = ~np.isnan(us).any(axis=0)
    models, us = models[keep], us[:, keep]
    truth = np.stack([wide_ds.reindex(models)[t].to_numpy() for t in tasks])
    given = {GIVEN: wide_ds.reindex(models)[GIVEN].to_numpy()}
    # nothing given: the unconditional new-model predictive (the same draws' noise)
    plain, _ = conditional.conditional_draws(post, us, np.full(us.shape, np.nan), seed=0)
    cond, _ = conditional.conditional_draws(post, us, given, seed=0)
    table = pd.concat(
        [score(plain, truth, tasks, "unconditional"), score(cond, truth, tasks, "conditional")]
    )
    print(post.diagnostics.verdict())
    print(table.round(4).to_string(index=False))


if __name__ == "__main__":
    main()
