"""timm, default model, 4 x 2000 draws after 2000 tuning steps, at seeds 0-7.

Usage (from the repository root): .venv/bin/python scripts/timm_sweep_long.py
Prints divergences, max R-hat and min bulk ESS per seed (session 10: docs/timm_sweep_s10.txt).
"""

import warnings, time
warnings.simplefilter("ignore")
from scale_transfer import fit, load_timm
data = load_timm("../shared/data/timm-results").data
rh, dv, es = [], [], []
for seed in range(8):
    p = fit(data, target="all", likelihood="gaussian", progress=False, seed=seed, draws=2000, tune=2000)
    d = p.diagnostics
    rh.append(round(d.max_rhat, 3)); dv.append(d.divergences); es.append(int(d.min_ess_bulk))
print("4 x 2000 (tune 2000), target_accept auto (0.99): divergences", dv, "max R-hat", rh, "bulk ESS", es)
