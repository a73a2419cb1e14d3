"""Experiment: a frontier likelihood with a per-model quality shared by the tasks.

Not part of the package. The package's ``frontier`` likelihood treats the gap of each
(model, task) point below its task's frontier as independent. In the simulator - and in
real model zoos - part of the gap belongs to the model (a badly tuned model is bad on every
task): ``gap = nu_t(mu) * (rho * q_m + (1 - rho) * E_mt)`` with ``q_m ~ Exp(1)`` per model
and ``E_mt ~ Exp(1)`` per point, and a model is "failed" (larger gap) on all its tasks or
none. Given ``q_m`` a point is ex-Gaussian; the failed/good flag is summed out per model.
This fits that model to ``simulate("jft-25shot", N_MODELS, seed)`` and prints the 90%
equal-tailed interval of each asymptote against the truth, and convergence.

Usage: .venv/bin/python scripts/frontier_quality.py [N_MODELS] [SEED ...]
"""

from __future__ import annotations

import sys
import time

import arviz as az
import numpy as np
import nutpie
import pandas as pd
import pymc as pm
import pytensor.tensor as pt

from scale_transfer.model import (
    E_MIN,
    ModelConfig,
    _group_param,
    _prior,
    exgaussian_logp,
    frontier_gap_mean,
    prepare_data,
)
from scale_transfer.simulate import simulate


def build(data: pd.DataFrame) -> tuple[pm.Model, list[str]]:
    """Model over a complete (model x task) table."""
    config = ModelConfig(likelihood="frontier")
    priors = config.full_priors
    fd = prepare_data(data, config)
    tasks = list(fd.groups.task)
    wide = data.pivot(index="model", columns="task", values="ds_acc")[tasks]
    us = data.groupby("model").us_acc.first().loc[wide.index].to_numpy()
    e_ds = 1.0 - wide.to_numpy()  # (M, T)
    log_e_us = np.log(np.clip(1.0 - us, 1e-6, 1.0))[:, None]  # same clipping as prepare_data
    log_e_ref = fd.groups["log_e_ref"].to_numpy(float)[None, :]
    coords = {"group": tasks, "task": tasks, "setting": fd.settings, "model": list(wide.index)}
    t_of_g = np.arange(len(tasks))
    with pm.Model(coords=coords) as model:
        args = (priors, config, True, t_of_g, np.zeros(len(tasks), int), 1)
        log_level = _group_param("log_level", *args)
        log_alpha = _group_param("log_alpha", *args)
        logit_e_ir = _group_param("logit_e_ir", *args)
        alpha = pt.exp(log_alpha)
        e_ir = pm.Deterministic("e_ir", pm.math.sigmoid(logit_e_ir), dims="group")
        pm.Deterministic("asymptote", 1.0 - e_ir, dims="group")
        sigma = _prior("sigma", priors["noise"], dims="group")
        gap = _prior("gap", priors["gap"], dims="group")
        power = _prior("gap_power", priors["gap_power"], dims="group")
        rho = pm.Beta("rho", 2.0, 2.0)  # share of the gap that belongs to the model
        bad_share = _prior("bad_share", priors["bad_share"])
        bad_gap = _prior("bad_gap", priors["bad_gap"])
        q = pm.Exponential("quality", 1.0, dims="model")
        mu = pt.exp(log_level[None, :] + alpha[None, :] * (log_e_us - log_e_ref)) + e_ir[None, :]
        nu = frontier_gap_mean(gap, power, log_level, e_ir, pt.maximum(mu, E_MIN), lib=pt)
        loc = mu + rho * nu * q[:, None]
        good = exgaussian_logp(e_ds, loc, sigma[None, :], (1.0 - rho) * nu).sum(1)
        bad = exgaussian_logp(e_ds, loc, sigma[None, :], (1.0 - rho) * nu + bad_gap).sum(1)
        pm.Potential(
            "lik", pt.logaddexp(pt.log1p(-bad_share) + good, pt.log(bad_share) + bad).sum()
        )
    return model, tasks


def main() -> None:
    """Fit each seed and print coverage."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    seeds = [int(s) for s in sys.argv[2:]] or [0]
    rows = []
    for seed in seeds:
        sim = simulate("jft-25shot", n, seed)
        model, tasks = build(sim.data)
        t0 = time.perf_counter()
        compiled = nutpie.compile_pymc_model(model)
        dt = nutpie.sample(compiled, draws=500, tune=1000, chains=4, seed=seed, progress_bar=False,
                           target_accept=0.95, adaptation="low_rank")  # fmt: skip
        secs = time.perf_counter() - t0
        post = dt["posterior"]
        a = post["asymptote"].stack(s=("chain", "draw")).transpose("s", ...).values
        lo, hi = np.quantile(a, [0.05, 0.95], axis=0)
        names = ["asymptote", "sigma", "gap", "rho", "bad_share"]
        rhat = max(float(az.rhat(post[v]).max()) for v in names)
        ess = min(float(az.ess(post[v]).min()) for v in names)
        div = int(dt["sample_stats"]["diverging"].sum())
        truth = sim.truth.set_index("task").loc[tasks, "asymptote"].to_numpy()
        for i, t in enumerate(tasks):
            rows.append({"seed": seed, "task": t, "truth": truth[i], "mean": a[:, i].mean(),
                         "lower": lo[i], "upper": hi[i]})  # fmt: skip
        cov = ((lo <= truth) & (truth <= hi)).mean()
        print(f"seed {seed}: {secs:.0f} s, max R-hat {rhat:.3f}, min ESS {ess:.0f}, {div} div, "
              f"rho {float(post['rho'].mean()):.2f}, coverage {cov:.3f}, "
              f"mean bias {np.mean(a.mean(0) - truth):+.4f}", flush=True)  # fmt: skip
    t = pd.DataFrame(rows)
    t["bias"] = t["mean"] - t.truth
    t["covered"] = (t.lower <= t.truth) & (t.truth <= t.upper)
    t["width"] = t.upper - t.lower
    print(t.groupby("task")[["bias", "covered", "width"]].mean().round(4).to_string())
    print("coverage", t.covered.mean(), "mean abs error", t.bias.abs().mean().round(4))


if __name__ == "__main__":
    main()
