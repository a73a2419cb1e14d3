"""Experiment (not part of the package): the law sampled by its height at the reference point.

The package samples each group's ``log_level`` and ``logit_e_ir``. On 15 scattered points
per task the data pin the frontier's error at the reference point,
``T = exp(log_level) + e_ir``, and leave a curved ridge along which level, ``e_ir`` and
``alpha`` trade off (docs/calibration.md, sparse data, session 9). Here each group is
sampled as ``h = logit T`` and ``r = logit s`` with ``s`` the reducible share of ``T``
(``level = T s``, ``e_ir = T (1 - s)``), and the priors on ``log_level`` and
``logit_e_ir`` are kept by adding the log Jacobian ``log(1 - T) - log(1 - e_ir)``: the
same model, restricted to ``T < 1`` (an error at the reference point of 100% or more,
which no data allow) and, in the hierarchical case, without renormalising the population
prior for that restriction. ``alpha`` keeps the package's parametrization. The per-task
hierarchy on (``log_level``, ``logit_e_ir``) is centred (through the potential).

Usage: .venv/bin/python scripts/reference_parametrization.py SEED POOLING MODE
    POOLING: hierarchical | independent; MODE: hr (this parametrization) | level (package)
Fits the frontier likelihood to ``simulate("jft-25shot", 3000, SEED)`` subsampled to 15
points per task (as ``scripts/calibration.py --only sparse``), 4 x 1000 draws, and prints
convergence and the asymptotes' error and 90% equal-tailed coverage against the truth.

    .venv/bin/python scripts/reference_parametrization.py sparse FIRST_SEED N_SEEDS OUT
runs the whole sparse comparison (hierarchical and independent, seeds FIRST_SEED ..
+N_SEEDS-1) in this parametrization and writes OUT/sparse.csv and OUT/summary.json.
"""

import sys
import time
import warnings

import numpy as np
import pymc as pm
import pytensor.tensor as pt

import scale_transfer.model as M
import scale_transfer.sampling as S
from scale_transfer.calibration import sparse_subsample
from scale_transfer.posterior import fit
from scale_transfer.simulate import simulate


def _law_params_hr(priors, config, centered, task_of_group, setting_of_group, fd, log_e_ref):
    assert config.pooling in ("independent", "hierarchical") and not config.by_setting
    h = pm.Flat("ref_error_logit", dims="group")
    r = pm.Flat("reducible_logit", dims="group")
    log_T = -pt.softplus(-h)  # log sigmoid(h)
    log_s = -pt.softplus(-r)
    log_1ms = -pt.softplus(r)  # log(1 - s)
    log_level = log_T + log_s
    e_ir = pt.exp(log_T + log_1ms)
    logit_e_ir = pt.log(e_ir) - pt.log1p(-e_ir)
    log_jac = -pt.softplus(h) - pt.log1p(-e_ir)  # log(1 - T) - log(1 - e_ir)
    if config.pooling == "independent":
        lp = 0.0
        for name, x in (("log_level", log_level), ("logit_e_ir", logit_e_ir)):
            mu_spec, sd_spec = priors[f"{name}_mu"], priors[f"{name}_sigma"]
            sd = float(np.hypot(mu_spec["sigma"], sd_spec["sigma"]))
            lp = lp + pm.logp(pm.Normal.dist(mu_spec["mu"], sd), x)
    else:
        lp = 0.0
        for name, x in (("log_level", log_level), ("logit_e_ir", logit_e_ir)):
            mu = M._prior(f"{name}_mu", priors[f"{name}_mu"])
            sd = M._prior(f"{name}_sigma", priors[f"{name}_sigma"])
            lp = lp + pm.logp(pm.Normal.dist(mu, sd), x)
    pm.Potential("law_prior", (lp + log_jac).sum())
    pm.Deterministic("log_level_group", log_level, dims="group")
    pm.Deterministic("logit_e_ir_group", logit_e_ir, dims="group")
    args = (priors, config, centered, task_of_group, setting_of_group, len(fd.settings))
    log_alpha = M._group_param("log_alpha", *args)
    alpha = pm.Deterministic("alpha", pt.exp(log_alpha), dims="group")
    e_ir = pm.Deterministic("e_ir", e_ir, dims="group")
    pm.Deterministic("k", pt.exp(log_level - alpha * log_e_ref), dims="group")
    pm.Deterministic("asymptote", 1.0 - e_ir, dims="group")
    sigma = M._prior(
        "sigma", priors["noise" if config.likelihood == "frontier" else "sigma"], dims="group"
    )
    return log_level, alpha, e_ir, sigma


_orig_start = S.lsq_start


def lsq_start_hr(fd, config, *a, **k):
    """Return the package's least-squares start, translated to (h, r)."""
    st = _orig_start(fd, config, *a, **k)

    def grp(name):
        if f"{name}_group" in st:
            return st[f"{name}_group"]
        if f"{name}_task" in st:
            return st[f"{name}_task"]
        return st[f"{name}_mu"] + st[f"{name}_sigma"] * st[f"{name}_task_z"]

    ll, le = grp("log_level"), grp("logit_e_ir")
    T = np.clip(np.exp(ll) + 1 / (1 + np.exp(-le)), 1e-6, 0.999)
    s = np.clip(np.exp(ll) / T, 1e-6, 1 - 1e-6)
    st["ref_error_logit"] = np.log(T / (1 - T))
    st["reducible_logit"] = np.log(s / (1 - s))
    return st


def sparse_run(first: int, n: int, out: str) -> None:
    """Run the sparse comparison of ``scripts/calibration.py --only sparse`` this way."""
    import json
    from pathlib import Path

    from scale_transfer.calibration import asymptote_coverage, coverage_summary

    M._law_params = _law_params_hr
    S.lsq_start = lsq_start_hr
    variants = {
        p: {"target": "all", "pooling": p, "likelihood": "frontier"}
        for p in ("hierarchical", "independent")
    }
    table = asymptote_coverage(
        list(range(first, first + n)), n_models=3000, n_per_task=15, variants=variants
    )
    Path(out).mkdir(parents=True, exist_ok=True)
    table.to_csv(Path(out) / "sparse.csv", index=False)
    summ = coverage_summary(table)
    print(summ.to_string(index=False))
    (Path(out) / "summary.json").write_text(json.dumps(summ.to_dict("records"), indent=2))


if __name__ == "__main__" and sys.argv[1] == "sparse":
    # .venv/bin/python scripts/reference_parametrization.py sparse FIRST_SEED N_SEEDS OUT
    sparse_run(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
elif __name__ == "__main__":
    seed, pooling, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    if mode == "hr":
        M._law_params = _law_params_hr
        S.lsq_start = lsq_start_hr
    sim = simulate("jft-25shot", 3000, seed)
    data = sparse_subsample(sim.data, 15, seed)
    t = time.time()
    kw = dict(draws=1000, tune=1000, chains=4, seed=seed, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        post = fit(data, target="all", pooling=pooling, likelihood="frontier", **kw)
    p = post.dt["posterior"]
    asy = p["asymptote"].stack(sample=("chain", "draw")).values
    g = [str(x) for x in p["asymptote"].coords["group"].values]
    truth = sim.truth.set_index("task")["asymptote"].loc[g].to_numpy()
    lo, hi = np.quantile(asy, [0.05, 0.95], axis=1)
    err = np.abs(asy.mean(1) - truth)
    cov = (lo <= truth) & (truth <= hi)
    print(seed, pooling, mode, round(time.time() - t), post.diagnostics.verdict()[:260])
    print(f"  mean abs err {err.mean():.4f} covered {cov.sum()}/8 widths {(hi - lo).mean():.3f}")
    print("  per task err", dict(zip(g, np.round(err, 4), strict=True)))
