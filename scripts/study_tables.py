"""Print the tables of docs/study.md from a study folder (so every number there can be rechecked).

Usage:
    .venv/bin/python scripts/study_tables.py [STUDY_DIR]      # default docs/study_default

Prints, as Markdown: what the folder holds (fits per method and target, repeats per cell),
cost (worker-seconds, median seconds per fit, compilations), convergence, the median over
repeats of the task-averaged prediction MSE at sizes 100, 500 and all, the paper's pattern
(hull prediction error below all-points, per cell), and coverage per setting (the mean over
sizes of :func:`scale_transfer.study.summarize`'s pooled coverage, and the coverage pooled
over every fit and held-out point).
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from scale_transfer.study import pooled_coverage, read_study, summarize

KEY = ["setting", "size", "repeat", "target", "method"]


def fmt(x: float, digits: int = 2) -> str:
    """Format a number with ``digits`` decimals, or "-"."""
    return "-" if not np.isfinite(x) else f"{x:.{digits}f}"


def md(df: pd.DataFrame) -> str:
    """Format a table as Markdown."""
    cols = [str(c) for c in df.columns]
    rows = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    rows += ["| " + " | ".join(str(v) for v in r) + " |" for r in df.itertuples(index=False)]
    return "\n".join(rows)


def main(folder: str) -> None:
    """Print the tables."""
    t = read_study(folder)
    fits = t.drop_duplicates(KEY)
    print(f"## {folder}: {len(fits)} fits, {len(t)} rows (fit x task)\n")
    cells = fits.groupby(["method", "target", "setting", "size"]).size()
    count = cells.groupby(["method", "target"]).agg(["sum", "size", "min", "max"])
    count.columns = ["fits", "cells", "repeats_min", "repeats_max"]
    print(md(count.reset_index()), "\n")

    bayes = fits[fits["method"] != "lsq"]
    cost = fits.groupby(["method", "target"]).agg(
        worker_seconds=("fit_seconds", "sum"),
        median_s=("fit_seconds", "median"),
        compilations=("compile_cached", lambda c: int((~c.astype(bool)).sum())),
    )
    cost["worker_seconds"] = cost["worker_seconds"].round(0).astype(int)
    cost["median_s"] = cost["median_s"].round(1)
    print(md(cost.reset_index()), "\n")
    if len(bayes):
        conv = bayes.groupby(["method", "target"]).agg(
            median_max_rhat=("max_rhat", "median"),
            rhat_over_1_1=("max_rhat", lambda r: int((r > 1.1).sum())),
            with_divergence=("divergences", lambda d: fmt(float((d > 0).mean()), 3)),
            median_ess_bulk=("min_ess_bulk", "median"),
            converged=("converged", lambda c: fmt(float(c.astype(str).eq("True").mean()), 3)),
        )
        conv["median_max_rhat"] = conv["median_max_rhat"].round(3)
        conv["median_ess_bulk"] = conv["median_ess_bulk"].round(0).astype(int)
        print(md(conv.reset_index()), "\n")

    summ = summarize(t)
    med = summ[summ["size"].isin(["100", "500", "all"])].pivot_table(
        index=["setting", "size"], columns=["target", "method"], values="pred_mse_median"
    )
    med = med.map(lambda x: f"{x:.1e}" if np.isfinite(x) else "-")
    med.columns = [f"{a}: {b}" for a, b in med.columns]
    print("Median over repeats of the task-averaged prediction MSE:\n")
    print(md(med.reset_index()), "\n")

    both = summ.pivot_table(
        index=["setting", "size", "method"], columns="target", values="pred_mse_median"
    ).dropna()
    if {"all", "hull"} <= set(both.columns):
        below = both["hull"] < both["all"]
        ratio = (both["all"] / both["hull"]).median()
        print(
            f"Hull prediction error below all-points: {int(below.sum())} of {len(both)} "
            f"setting x size x method cells; median factor {ratio:.0f}\n"
        )

    pooled = pooled_coverage(t, ["setting", "target", "method"])
    rows = []
    for p in pooled.itertuples(index=False):
        sm = summ[
            (summ.setting == p.setting) & (summ.target == p.target) & (summ.method == p.method)
        ]
        g = t[(t.setting == p.setting) & (t.target == p.target) & (t.method == p.method)]
        rows.append(
            {
                "setting": p.setting,
                "target": p.target,
                "method": p.method,
                "cover50 / cover90 (mean over sizes)": f"{fmt(sm['cover50'].mean())} / "
                f"{fmt(sm['cover90'].mean())}",
                "cover50 / cover90 (pooled)": f"{fmt(p.cover50)} / {fmt(p.cover90)}",
                "width90": fmt(p.width90, 3),
                "predictive hull 50% / 90% (pooled)": f"{fmt(p.hull_cover50)} / "
                f"{fmt(p.hull_cover90)}",
                "fits": g.drop_duplicates(KEY).shape[0],
            }
        )
    rows.sort(key=lambda r: (r["setting"], r["target"], r["method"]))
    print("Coverage (50% / 90% nominal):\n")
    print(md(pd.DataFrame(rows)), "\n")

    err = (
        t.drop_duplicates(KEY + ["task"]).groupby(["target", "method"])["asymptote_abs_err"].mean()
    )
    print("Asymptote absolute error against the simulator's frontier (mean over fits and tasks):\n")
    print(md(err.map(lambda x: f"{x:.4f}").reset_index()), "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/study_default")
