"""timm, default model, 4 x 2000 draws after 2000 tuning steps, at seeds 0-7.

Usage (from the repository root): .venv/bin/python tools/timm_sweep_long.py [TIMM_DIR]
Prints divergences, max R-hat and min bulk ESS per seed (recorded in docs/timm/sweep.txt).
"""

import sys
import warnings

from scale_transfer import fit, load_timm

warnings.simplefilter("ignore")  # the per-fit verdicts are printed below
folder = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/timm-results"
data = load_timm(folder).data
rhat, div, ess = [], [], []
for seed in range(8):
    d = fit(
        data,
        target="all",
        law="error",
        progress=False,
        seed=seed,
        draws=2000,
        tune=2000,
    ).diagnostics
    rhat.append(round(d.max_rhat, 3))
    div.append(d.divergences)
    ess.append(int(d.min_ess_bulk))
print(
    "4 x 2000 (tune 2000), target_accept auto (0.99): divergences",
    div,
    "max R-hat",
    rhat,
    "bulk ESS",
    ess,
)
