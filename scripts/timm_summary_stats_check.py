"""timm, Gaussian, all points: the same fits with and without sufficient statistics.

Usage (from the repository root)::

    python scripts/timm_summary_stats_check.py [TIMM_DIR] [SEEDS]

For each seed (default 4) fits ``fit(timm, seed=s, summary_stats=True)`` and ``False``
(4 chains x 1000 draws after 1000 tuning steps; each variant compiles once) and prints
wall and sampling time, min bulk ESS, max R-hat, divergences, mean tree depth and the
posterior mean asymptotes. Results of session 7: docs/benchmark.md.
"""

import sys
import time
import warnings

import numpy as np

from scale_transfer import zoo
from scale_transfer.posterior import fit

warnings.simplefilter("ignore")
folder = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/timm-results"
seeds = range(int(sys.argv[2]) if len(sys.argv) > 2 else 4)
data = zoo.load_timm(folder).data
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
