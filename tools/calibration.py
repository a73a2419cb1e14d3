"""Asymptote calibration on simulated data with known truth.

Usage:
    .venv/bin/python tools/calibration.py --seeds 20 --n-models 1000 --out docs/calibration
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from scale_transfer.config import SamplerConfig
from scale_transfer.studies.calibration import asymptote_coverage, coverage_summary

p = argparse.ArgumentParser(description=__doc__)
p.add_argument("--seeds", type=int, default=20)
p.add_argument("--first-seed", type=int, default=0, help="seeds run: first-seed .. +seeds-1")
p.add_argument("--n-models", type=int, default=1000)
p.add_argument("--draws", type=int, default=1000)
p.add_argument("--tune", type=int, default=1000)
p.add_argument("--chains", type=int, default=4)
p.add_argument("--sparse", type=int, default=15, help="points per task in the sparse study")
p.add_argument(
    "--variants",
    nargs="+",
    default=["hull/gaussian", "all/frontier"],
    help="TARGET/LIKELIHOOD pairs scored in the coverage study",
)
p.add_argument("--sparse-lik", default="frontier", help="likelihood of the sparse study")
p.add_argument("--only", choices=["coverage", "sparse", "both"], default="both")
p.add_argument("--out", type=Path, default=Path("docs/calibration"))
a = p.parse_args()
a.out.mkdir(parents=True, exist_ok=True)
seeds = list(range(a.first_seed, a.first_seed + a.seeds))
kw = dict(sampler=SamplerConfig(draws=a.draws, tune=a.tune, chains=a.chains, progress=False))
result = {"command": " ".join(["tools/calibration.py", *__import__("sys").argv[1:]])}
t0 = time.time()
if a.only in ("coverage", "both"):
    variants = {v: {"target": v.split("/")[0], "likelihood": v.split("/")[1]} for v in a.variants}
    cov = asymptote_coverage(seeds, n_models=a.n_models, variants=variants, **kw)
    cov.to_csv(a.out / "coverage.csv", index=False)
    s = coverage_summary(cov)
    print(s.to_string(index=False))
    result["coverage"] = s.to_dict(orient="records")
if a.only in ("sparse", "both"):
    variants = {
        "hierarchical": {"target": "all", "pooling": "hierarchical", "likelihood": a.sparse_lik},
        "independent": {"target": "all", "pooling": "independent", "likelihood": a.sparse_lik},
    }
    sp = asymptote_coverage(
        seeds, n_models=a.n_models, n_per_task=a.sparse, variants=variants, **kw
    )
    sp.to_csv(a.out / "sparse.csv", index=False)
    s = coverage_summary(sp)
    print(s.to_string(index=False))
    result["sparse"] = s.to_dict(orient="records")
result["seconds"] = time.time() - t0
(a.out / "summary.json").write_text(json.dumps(result, indent=2, default=str))
