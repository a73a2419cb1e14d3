"""timm, Gaussian, all points: the same fits with and without sufficient statistics.

Usage (from the repository root)::

    python scripts/timm_summary_stats_check.py [TIMM_DIR] [SEEDS]
    python scripts/timm_summary_stats_check.py --target-accept [TIMM_DIR] [SEEDS]

For each seed (default 4) fits ``fit(timm, seed=s, summary_stats=True)`` and ``False``
(4 chains x 1000 draws after 1000 tuning steps; each variant compiles once) and prints
wall and sampling time, min bulk ESS, max R-hat, divergences, mean tree depth and the
posterior mean asymptotes. With ``--target-accept`` it fits the default model (statistics
on) at ``target_accept`` 0.95 and 0.99 for each seed (default 8) and prints the
divergences, max R-hat, min bulk ESS and sampling seconds per seed. Results of session 7:
docs/benchmark.md.
"""

import sys
import time
import warnings

import numpy as np

from scale_transfer import zoo
from scale_transfer.posterior import fit

warnings.simplefilter("ignore")
args = sys.argv[1:]
sweep = bool(args) and args[0] == "--target-accept"
args = args[1:] if sweep else args
folder = args[0] if args else "../shared/data/timm-results"
seeds = range(int(args[1]) if len(args) > 1 else (8 if sweep else 4))
data = zoo.load_timm(folder).data
if sweep:
    for ta in (0.95, 0.99):
        rows = []
        for seed in seeds:
            d = fit(data, draws=1000, tune=1000, chains=4, seed=seed, progress=False,
                    target_accept=ta).diagnostics  # fmt: skip
            rows.append((d.divergences, d.max_rhat, d.min_ess_bulk, d.sample_seconds))
        r = np.array(rows)
        print(
            f"target_accept {ta}: divergences {r[:, 0].astype(int).tolist()}, "
            f"max R-hat {np.round(r[:, 1], 3).tolist()}, bulk ESS {r[:, 2].astype(int).tolist()}, "
            f"sampling s {np.round(r[:, 3], 1).tolist()}",
            flush=True,
        )
    sys.exit(0)
for seed in seeds:
    for stats in (True, False):
        t = time.perf_counter()
        post = fit(data, draws=1000, tune=1000, chains=4, seed=seed, progress=False,
                   summary_stats=stats)  # fmt: skip
        d = post.diagnostics
        depth = float(post.dt["sample_stats"]["depth"].mean())
        asym = post.dt["posterior"]["asymptote"].mean(("chain", "draw")).values
        print(
            f"seed {seed} stats {stats}: {time.perf_counter() - t:.1f} s "
            f"(sample {d.sample_seconds:.1f}), ESS {d.min_ess_bulk:.0f}, R-hat {d.max_rhat:.3f}, "
            f"div {d.divergences}, depth {depth:.2f}, asymptotes {np.round(asym, 4)}",
            flush=True,
        )
