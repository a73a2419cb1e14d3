"""Is a frontier likelihood consistent on the simulator? Maximum likelihood per task.

Fits four gap models by maximum likelihood to each task of one large simulation and prints
the error of the fitted asymptote against the truth (no priors, no MCMC: a bias that
survives here is the likelihood's, not the sampler's):

- ``plain``: one exponential gap of constant mean (the old frontier likelihood);
- ``het``: its mean grows as a power of the frontier's error;
- ``gap2``: the gap is a sum of two exponential parts;
- ``full``: both, plus a share of failed models with a larger gap (the package's frontier).

Usage: .venv/bin/python scripts/frontier_mle.py [N_MODELS] [BAD_SHARE]
(BAD_SHARE overrides the simulator's share of badly tuned models, default 0.04.)
"""

from __future__ import annotations

import importlib
import sys

import numpy as np
from scipy import optimize, special

S = importlib.import_module("scale_transfer.simulate")


def exg(d: np.ndarray, sigma: float, nu: np.ndarray) -> np.ndarray:
    """Log density of Normal(0, sigma) + Exponential(mean nu) at d."""
    return -np.log(nu) - d / nu + 0.5 * (sigma / nu) ** 2 + special.log_ndtr(d / sigma - sigma / nu)


def nll(theta: np.ndarray, x: np.ndarray, y: np.ndarray, variant: str) -> float:
    """Return the negative log likelihood of a variant.

    theta: log k, log alpha, logit e_ir, log sigma, log nu, then (gap2, full) the logit of
    the share w / 0.45, (het, full) the power, (full) the logit of the bad share and the log
    of the bad models' extra gap.
    """
    k, a, e = np.exp(theta[0]), np.exp(theta[1]), special.expit(theta[2])
    mu = k * x**a + e
    sigma, nu = np.exp(theta[3]), np.exp(theta[4])
    rest = list(theta[5:])
    w = 0.45 * special.expit(rest.pop(0)) if variant in ("gap2", "full") else 0.0
    if variant in ("het", "full"):
        nu = nu * (mu / (k * np.exp(np.mean(np.log(x))) ** a + e)) ** rest.pop(0)
    d = y - mu
    if w > 0:
        lfa, lfb = exg(d, sigma, (1 - w) * nu), exg(d, sigma, w * nu)
        ratio = np.minimum(w / (1 - w) * np.exp(lfb - lfa), 1 - 1e-12)
        lp = lfa + np.log((1 - w) / (1 - 2 * w)) + np.log1p(-ratio)
    else:
        lp = exg(d, sigma, np.broadcast_to(nu, d.shape))
    if variant == "full":
        pi, extra = special.expit(rest.pop(0)), np.exp(rest.pop(0))
        lp = np.logaddexp(np.log1p(-pi) + lp, np.log(pi) + exg(d, sigma, nu + extra))
    return float(-lp.sum()) if np.all(np.isfinite(lp)) else 1e12


def main() -> None:
    """Print the asymptote error of each variant, task by task."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    if len(sys.argv) > 2:
        S._BAD_SHARE = float(sys.argv[2])
    sim = S.simulate("jft-25shot", n, 0)
    extra = {"plain": [], "het": [0.5], "gap2": [0.0], "full": [0.0, 0.5, -3.0, np.log(0.2)]}
    print(f"simulate('jft-25shot', {n}, 0), bad share {S._BAD_SHARE}: fitted - true asymptote")
    for variant, more in extra.items():
        errs = []
        for row in sim.truth.itertuples():
            d = sim.data[sim.data.task == row.task]
            x = np.clip(1 - d.us_acc.to_numpy(), 1e-6, 1)
            y = 1 - d.ds_acc.to_numpy()
            th0 = [np.log(row.k), np.log(row.alpha), special.logit(row.e_ir), np.log(0.003),
                   np.log(0.03), *more]  # fmt: skip
            best = None
            for j in range(2):  # two starts: the truth and a jittered one
                t0 = np.array(th0) + np.random.default_rng(j).normal(0, 0.3 * (j > 0), len(th0))
                r = optimize.minimize(nll, t0, args=(x, y, variant), method="Nelder-Mead",
                                      options={"maxiter": 20000, "maxfev": 20000,
                                               "xatol": 1e-7, "fatol": 1e-7})  # fmt: skip
                best = r if best is None or r.fun < best.fun else best
            errs.append((row.task, 1 - special.expit(best.x[2]) - row.asymptote))
        cells = " ".join(f"{t}:{e:+.4f}" for t, e in errs)
        mae = np.mean([abs(e) for _, e in errs])
        print(f"{variant:6s} mean abs {mae:.4f} | {cells}", flush=True)


if __name__ == "__main__":
    main()
