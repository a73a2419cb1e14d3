"""The frontier likelihood sampled with nutpie's diagonal and low-rank mass matrices.

Fits the same simulated data twice in one process, once with each adaptation, and prints
wall seconds, leapfrog steps per draw, mean tree depth, min bulk ESS, max R-hat and
divergences (the run that chose ``SamplerConfig(adaptation="auto")`` -> ``"low_rank"``
for the frontier likelihood).

Usage: .venv/bin/python scripts/frontier_adaptation.py [N_MODELS] [DRAWS] [CHAINS]
"""

from __future__ import annotations

import sys
import time
import warnings

from scale_transfer.posterior import fit
from scale_transfer.sampling import ConvergenceWarning
from scale_transfer.simulate import simulate

n_models = int(sys.argv[1]) if len(sys.argv) > 1 else 100
draws = int(sys.argv[2]) if len(sys.argv) > 2 else 300
chains = int(sys.argv[3]) if len(sys.argv) > 3 else 4
sim = simulate("jft-25shot", n_models, 0)
fit(sim.data, likelihood="frontier", draws=10, tune=10, chains=1, progress=False)  # compile
print(f"simulate('jft-25shot', {n_models}, 0), frontier, {chains} chains x {draws} draws "
      f"after {draws} tuning steps (compiled model cached)")  # fmt: skip
for adaptation in ("diag", "low_rank"):
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        post = fit(sim.data, likelihood="frontier", draws=draws, tune=draws, chains=chains,
                   seed=1, progress=False, adaptation=adaptation)  # fmt: skip
    wall = time.perf_counter() - t0
    ss = post.dt["sample_stats"]
    d = post.diagnostics
    print(f"{adaptation:8s} wall {wall:6.1f} s | steps/draw {float(ss['n_steps'].mean()):6.1f} | "
          f"depth {float(ss['depth'].mean()):.2f} | min bulk ESS {d.min_ess_bulk:5.0f} | "
          f"ESS/s {d.min_ess_bulk / wall:5.2f} | max R-hat {d.max_rhat:.3f} | "
          f"divergences {d.divergences}", flush=True)  # fmt: skip
