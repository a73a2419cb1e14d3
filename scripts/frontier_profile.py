"""Where does the frontier fit's bias come from? Profile likelihood of the asymptote.

For each simulation ``simulate("jft-25shot", N_MODELS, seed)`` and each task asked for, this
profiles the per-task frontier likelihood (``scripts/frontier_mle.py``'s ``full`` variant: the
package's gap model, fitted to one task alone, no priors) over the asymptote: at each value
of the asymptote on a grid it maximises over every other parameter. It prints the profile's
maximum (the maximum-likelihood asymptote), the 90% profile-likelihood interval (where the
log likelihood is within 1.353 of its maximum), whether that covers the truth, and the gap
shape ``w`` and noise sd at the maximum; then, per task, the mean bias and coverage of these
likelihood intervals, next to the Bayesian fit's from ``docs/calibration_frontier`` when a
CSV is given.

Usage:
    .venv/bin/python scripts/frontier_profile.py [N_MODELS] [SEEDS] [TASKS] [BAYES_CSV]
    e.g. scripts/frontier_profile.py 300 20 pets,caltech,cars,uc_merced \
        docs/calibration_frontier/run_b_noise_gamma.csv
"""

from __future__ import annotations

import importlib
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize, special

sys.path.insert(0, str(Path(__file__).parent))
F = importlib.import_module("frontier_mle")
S = importlib.import_module("scale_transfer.simulate")

#: half the 0.90 quantile of chi-square with one degree of freedom
HALF_CHI2_90 = 1.353
STEP = 0.0005


#: bounds of the free parameters (see ``profile``): without them a few fits run off to a
#: noise sd of 0 or of 1e20 (degenerate optima of the likelihood)
BOUNDS = [
    (-6, 1),
    (-2, 3.5),
    (np.log(5e-4), np.log(0.05)),
    (-7, 0),
    (-8, 8),
    (-3, 3),
    (-8, 0),
    (-5, 0),
]


def _fit(f, z0):
    z0 = np.clip(z0, [b[0] for b in BOUNDS], [b[1] for b in BOUNDS])
    opts = {"maxiter": 20000, "xtol": 1e-6, "ftol": 1e-10}
    return optimize.minimize(f, z0, method="Powell", bounds=BOUNDS, options=opts)


def profile(x: np.ndarray, y: np.ndarray, row) -> dict:
    """Profile the asymptote of one task; return the maximum, interval and parameters."""
    # free parameters: log k, log alpha, log sigma, log nu, logit(w / 0.45), power,
    # logit bad share, log extra gap (frontier_mle.nll's theta without logit e_ir)
    starts = [
        np.array(
            [np.log(row.k), np.log(row.alpha), np.log(0.003), np.log(0.03), 0, 0.5, -3, np.log(0.2)]
        ),
        np.array([np.log(0.5), np.log(3.0), np.log(0.01), np.log(0.05), 0, 0.5, -3, np.log(0.2)]),
    ]

    def nll_at(asym: float, z0: np.ndarray):
        e = special.logit(1.0 - asym)
        return _fit(lambda z: F.nll(np.r_[z[:2], e, z[2:]], x, y, "full"), z0)

    # coarse scan around the truth from two starts, then walk both ways with warm starts
    grid = np.round(np.arange(row.asymptote - 0.02, min(row.asymptote + 0.02, 0.9995), STEP), 6)
    centre = int(np.argmin(abs(grid - row.asymptote)))
    vals = np.full(grid.size, np.inf)
    params = [None] * grid.size
    best = min((nll_at(grid[centre], z) for z in starts), key=lambda r: r.fun)
    vals[centre], params[centre] = best.fun, best.x
    for direction in (1, -1):
        z = best.x
        i = centre + direction
        while 0 <= i < grid.size:
            r = nll_at(grid[i], z)
            vals[i], params[i], z = r.fun, r.x, r.x
            if r.fun - np.min(vals) > 2 * HALF_CHI2_90 + 1:
                break
            i += direction
    ok = np.isfinite(vals)
    g, v = grid[ok], vals[ok]
    j = int(np.argmin(v))
    inside = g[v - v[j] <= HALF_CHI2_90]
    p = params[int(np.flatnonzero(ok)[j])]
    return {
        "mle": g[j],
        "lower": inside.min() - STEP / 2,
        "upper": inside.max() + STEP / 2,
        "at_edge": bool(j in (0, g.size - 1)),
        "w": 0.45 * special.expit(p[4]),
        "sigma": float(np.exp(p[2])),
    }


def main() -> None:
    """Profile each (seed, task) and print the per-task summary."""
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    seeds = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    tasks = sys.argv[3].split(",") if len(sys.argv) > 3 else ["pets", "caltech"]
    bayes = pd.read_csv(sys.argv[4]) if len(sys.argv) > 4 else None
    rows = []
    for seed in range(seeds):
        sim = S.simulate("jft-25shot", n, seed)
        for row in sim.truth[sim.truth.task.isin(tasks)].itertuples():
            d = sim.data[sim.data.task == row.task]
            x = np.clip(1 - d.us_acc.to_numpy(), 1e-6, 1)
            y = 1 - d.ds_acc.to_numpy()
            r = profile(x, y, row)
            r |= {"seed": seed, "task": row.task, "truth": row.asymptote}
            r["covered"] = r["lower"] <= row.asymptote <= r["upper"]
            rows.append(r)
            print(
                f"seed {seed:2d} {row.task:10s} mle {r['mle']:.4f}"
                f" [{r['lower']:.4f}, {r['upper']:.4f}] truth {row.asymptote:.4f}"
                f" w {r['w']:.3f} sigma {r['sigma']:.4f}",
                flush=True,
            )
    t = pd.DataFrame(rows)
    t["bias"] = t.mle - t.truth
    t["width"] = t.upper - t.lower
    t["w_at_max"] = t.w > 0.449
    out = t.groupby("task").agg(
        mle_bias=("bias", "mean"), mle_cover=("covered", "mean"), mle_width=("width", "mean"),
        w_at_bound=("w_at_max", "mean"),
    )  # fmt: skip
    if bayes is not None:
        b = bayes[bayes.seed < seeds].assign(bias=lambda f: f["mean"] - f.truth)
        out = out.join(
            b.groupby("task").agg(
                bayes_bias=("bias", "mean"),
                bayes_cover=("covered", "mean"),
                bayes_width=("width", "mean"),
            )
        )
    print(out.round(4).to_string())
    print("overall:", out.mean().round(4).to_dict())


if __name__ == "__main__":
    main()
