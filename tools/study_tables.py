"""The summary table of a sample-size study, and the tables of docs/study.md printed from it.

Usage:
    .venv/bin/python tools/study_tables.py summarize STUDY_DIR_OR_CSV... --out SUMMARY.csv
    .venv/bin/python tools/study_tables.py print SUMMARY.csv

``summarize`` reads the finished fits of a study (a folder written by ``scale-transfer study``,
or its ``study.csv``; several inputs are stacked, each tagged with its simulation seed from
``study.json`` or ``--seeds``) and writes one row per group at three levels:

* ``setting, size, target, method``: one cell of the grid (all repeats);
* ``size = "*"``: a setting, target and method over all sizes;
* ``setting = "*", size = "*"``: a target and method over all settings and sizes.

Columns: ``fits``, ``repeats_min``/``repeats_max`` (fits per cell); cost (``worker_seconds``,
``fit_seconds_median``, ``compilations``); convergence of the Bayesian fits
(``max_rhat_median``, ``rhat_over_1_1``, ``fits_with_divergence``, ``ess_bulk_median``,
``converged``: share passing every check); errors averaged over tasks per fit, then over
fits (``fit_mse_*``, ``pred_mse_*``: ``median``, ``q10``, ``q90``; ``asymptote_abs_err``:
mean); coverage and width pooled over the held-out points of every fit and task
(``cover50``, ``cover90``, ``width90``, ``hull_cover50``, ``hull_cover90``,
``hull_width90``, with the pooled point counts ``n_heldout``, ``n_heldout_hull``).

``print`` prints, as Markdown, every table docs/study.md quotes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from scale_transfer.studies.study import pooled_coverage, read_study

FIT_KEY = ["sim_seed", "setting", "size", "repeat", "target", "method"]
ALL = "*"


def _read(path: Path, seed: int | None) -> pd.DataFrame:
    """One study's rows (fit x task), tagged with its simulation seed."""
    if path.is_dir() and (path / "fits").is_dir():
        t = read_study(path)
    else:
        csv = path / "study.csv" if path.is_dir() else path
        t = pd.read_csv(csv, dtype={"size": str})
    if seed is None:
        state = (path if path.is_dir() else path.parent) / "study.json"
        seed = json.loads(state.read_text()).get("sim_seed", 0) if state.exists() else 0
    return t.assign(sim_seed=seed)


def _as_bool(x: pd.Series) -> pd.Series:
    return x.map({True: True, False: False, "True": True, "False": False}).astype(float)


def _group_stats(t: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Every statistic of one level, grouped by ``by``."""
    t = t.reset_index(drop=True)  # pooled_coverage aligns on the index
    fits = t.drop_duplicates(FIT_KEY).copy()
    fits["_conv"] = _as_bool(fits["converged"])
    fits["_fresh"] = ~_as_bool(fits["compile_cached"]).fillna(1.0).astype(bool)
    bayes = fits["method"] != "lsq"
    per_fit = (
        t.groupby(FIT_KEY, sort=False)
        .agg(
            fit_mse=("fit_mse", "mean"),
            pred_mse=("pred_mse", "mean"),
            asymptote_abs_err=("asymptote_abs_err", "mean"),
        )
        .reset_index()
    )
    g = fits.groupby(by, sort=False)
    out = pd.DataFrame({"fits": g.size()})
    reps = fits.groupby([*by, *[c for c in ("setting", "size") if c not in by]]).size()
    out["repeats_min"] = reps.groupby(level=list(range(len(by)))).min()
    out["repeats_max"] = reps.groupby(level=list(range(len(by)))).max()
    out["worker_seconds"] = g["fit_seconds"].sum().round(1)
    out["fit_seconds_median"] = g["fit_seconds"].median().round(2)
    out["compilations"] = g["_fresh"].sum().astype(int)
    gb = fits[bayes].groupby(by, sort=False)
    out["max_rhat_median"] = gb["max_rhat"].median().round(4)
    out["rhat_over_1_1"] = gb["max_rhat"].apply(lambda r: int((r > 1.1).sum()))
    out["fits_with_divergence"] = gb["divergences"].apply(lambda d: int((d > 0).sum()))
    out["ess_bulk_median"] = gb["min_ess_bulk"].median().round(0)
    out["converged"] = gb["_conv"].mean().round(4)
    gp = per_fit.groupby(by, sort=False)
    for m in ("fit_mse", "pred_mse"):
        out[f"{m}_median"] = gp[m].median()
        out[f"{m}_q10"] = gp[m].quantile(0.1)
        out[f"{m}_q90"] = gp[m].quantile(0.9)
    out["asymptote_abs_err"] = gp["asymptote_abs_err"].mean()
    pooled = pooled_coverage(t, by).set_index(by)
    for c in ("cover50", "cover90", "width90", "hull_cover50", "hull_cover90"):
        out[c] = pooled[c]
    t["_n"] = np.where(t["target"] == "all", t["n_holdout_all"], t["n_holdout_hull"])
    t["_hw"] = t["hull_width90"] * t["n_holdout_hull"]
    t["_nhw"] = t["n_holdout_hull"].where(t["hull_width90"].notna(), 0)
    s = t.groupby(by, sort=False)[["_n", "_hw", "_nhw"]].sum()
    out["hull_width90"] = s["_hw"] / s["_nhw"].where(s["_nhw"] > 0)
    out["n_heldout"] = s["_n"].astype(int)
    out["n_heldout_hull"] = s["_nhw"].astype(int)
    return out.reset_index()


def summary(t: pd.DataFrame) -> pd.DataFrame:
    """Return the summary table at its three levels (see the module docstring)."""
    levels = [
        _group_stats(t, ["sim_seed", "setting", "size", "target", "method"]),
        _group_stats(t, ["sim_seed", "setting", "target", "method"]).assign(size=ALL),
        _group_stats(t, ["sim_seed", "target", "method"]).assign(setting=ALL, size=ALL),
    ]
    out = pd.concat(levels, ignore_index=True)
    key = ["sim_seed", "setting", "size", "target", "method"]
    return out[key + [c for c in out.columns if c not in key]]


def md(df: pd.DataFrame) -> str:
    """Format a table as Markdown."""
    cols = [str(c) for c in df.columns]
    rows = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    rows += ["| " + " | ".join(str(v) for v in r) + " |" for r in df.itertuples(index=False)]
    return "\n".join(rows)


def _f(x: float, d: int = 2) -> str:
    return "-" if not np.isfinite(x) else f"{x:.{d}f}"


def _size_key(index: tuple) -> tuple:
    """Order (setting, size) pairs by setting, then numerically by size, ``all`` last."""
    size = str(index[1])
    return (index[0], size == "all", int(size) if size.isdigit() else 0)


def print_tables(s: pd.DataFrame) -> None:
    """Print the tables of docs/study.md from a summary table."""
    s = s.astype({"size": str, "setting": str})
    for seed, z in s.groupby("sim_seed"):
        cells = z[(z["setting"] != ALL) & (z["size"] != ALL)]
        per_setting = z[(z["setting"] != ALL) & (z["size"] == ALL)]
        total = z[z["setting"] == ALL]
        print(f"## simulation seed {seed}: {int(total['fits'].sum())} fits\n")
        cols = [
            "target",
            "method",
            "fits",
            "worker_seconds",
            "fit_seconds_median",
            "compilations",
            "max_rhat_median",
            "rhat_over_1_1",
            "fits_with_divergence",
            "ess_bulk_median",
            "converged",
            "asymptote_abs_err",
        ]
        print(md(total[cols].round(4)), "\n")
        rep = cells.groupby(["method", "target"]).agg(
            cells=("fits", "size"), repeats_min=("fits", "min"), repeats_max=("fits", "max")
        )
        print(md(rep.reset_index()), "\n")
        med = cells.pivot_table(
            index=["setting", "size"], columns=["target", "method"], values="pred_mse_median"
        )
        med = med.iloc[sorted(range(len(med)), key=lambda i: _size_key(med.index[i]))]
        med = med.map(lambda x: f"{x:.1e}" if np.isfinite(x) else "-")
        med.columns = [f"{a}: {b}" for a, b in med.columns]
        print("Median over repeats of the task-averaged prediction MSE:\n")
        print(md(med.reset_index()), "\n")
        both = cells.pivot_table(
            index=["setting", "size", "method"], columns="target", values="pred_mse_median"
        ).dropna()
        if {"all", "hull"} <= set(both.columns):
            below = both["hull"] < both["all"]
            print(
                f"Hull prediction error below all-points: {int(below.sum())} of {len(both)} "
                f"setting x size x method cells; median factor "
                f"{(both['all'] / both['hull']).median():.0f}\n"
            )
        cov = per_setting.assign(
            **{
                "cover50 / cover90": lambda d: [
                    f"{_f(a)} / {_f(b)}" for a, b in zip(d.cover50, d.cover90, strict=True)
                ],
                "predictive hull 50% / 90%": lambda d: [
                    f"{_f(a)} / {_f(b)}"
                    for a, b in zip(d.hull_cover50, d.hull_cover90, strict=True)
                ],
            }
        )
        cols = [
            "setting",
            "target",
            "method",
            "fits",
            "cover50 / cover90",
            "width90",
            "predictive hull 50% / 90%",
            "hull_width90",
            "asymptote_abs_err",
        ]
        print("Coverage pooled over held-out points (50% / 90% nominal):\n")
        print(md(cov[cols].sort_values(cols[:3]).round(3)), "\n")
        hull = cells[(cells["target"] == "hull") & (cells["method"] != "lsq")]
        if len(hull):
            h = hull.pivot_table(index="setting", columns="size", values="cover90", sort=False)
            h = h[sorted(h.columns, key=lambda c: _size_key(("", c)))]
            print("90% coverage of the held-out hull by Bayesian hull fits, per size:\n")
            print(md(h.round(2).reset_index()), "\n")


def main(argv: list[str] | None = None) -> None:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("summarize", help="write the summary table of study folders/tables")
    a.add_argument("inputs", nargs="+", type=Path)
    a.add_argument("--seeds", type=int, nargs="*", help="simulation seed of each input")
    a.add_argument("--out", type=Path, required=True)
    b = sub.add_parser("print", help="print the tables of docs/study.md from a summary")
    b.add_argument("summary", type=Path)
    args = p.parse_args(argv)
    if args.cmd == "summarize":
        seeds = args.seeds or [None] * len(args.inputs)
        t = pd.concat(
            [_read(i, s) for i, s in zip(args.inputs, seeds, strict=True)], ignore_index=True
        )
        summary(t).to_csv(args.out, index=False, float_format="%.6g")
        print(f"wrote {args.out}")
    else:
        print_tables(pd.read_csv(args.summary, dtype={"size": str, "setting": str}))


if __name__ == "__main__":
    main()
