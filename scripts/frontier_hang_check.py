"""Look inside the frontier fit that hung in the Figure B study, and check a prior on timm.

Usage (from the repository root)::

    python scripts/frontier_hang_check.py WAIT_S [REPEAT] [PRIORS_JSON]
    python scripts/frontier_hang_check.py --timm [PRIORS_JSON]

The first form rebuilds the study's fit ``in21k-25shot``, size ``all``, repeat ``REPEAT``
(default 1), method ``bayes-frontier`` (default study: 1,500 simulated models, top 10% held
out, seed 0), samples it as the study does (2 chains x (300 + 300), one after the other,
chains started at least squares), stops after ``WAIT_S`` seconds and prints, per chain, the
draws done, the step size, tree depth, maximum-depth hits and divergences, and the path
of ``gap_power``, ``gap`` and ``sigma`` over the draws. ``PRIORS_JSON`` overrides priors,
e.g. ``'{"gap_power": {"dist": "Normal", "mu": 0.0, "sigma": 1.0}}'`` (the prior before
session 7, under which this fit stalled).

``--timm`` fits the frontier likelihood to timm (``../shared/data/timm-results``,
4 chains x (500 + 500)) and prints the posterior of the gap parameters and the asymptotes.
"""

from __future__ import annotations

import json
import sys
import time
import warnings

import numpy as np


def _hang(wait: float, repeat: int, priors: dict) -> None:
    import nutpie

    from scale_transfer import study as st
    from scale_transfer.model import ModelConfig, prepare_data
    from scale_transfer.sampling import (
        SamplerConfig,
        prepared_model,
        resolve_adaptation,
        resolve_target_accept,
    )

    frames, _, _ = st._load_data(["in21k-25shot"], None, 1500, 0, False)
    pool, _, _ = st._split(frames["in21k-25shot"], 0.1)
    seed = st._fit_seed(0, ("in21k-25shot", "all", repeat, "all", "bayes-frontier"))
    cols = ["model", "task", "setting", "us_acc", "ds_acc"]
    fitted = pool.assign(setting=st._FIT_SETTING)[cols].reset_index(drop=True)
    cfg = ModelConfig(target="all", likelihood="frontier", priors=priors)
    sc = resolve_adaptation(SamplerConfig(draws=300, tune=300, chains=2, seed=seed, cores=1), cfg)
    fd = prepare_data(fitted, cfg)
    sc = resolve_target_accept(sc, fd, cfg)
    print(f"seed {seed}, {len(fd.e_ds)} points, adaptation {sc.adaptation}", flush=True)
    compiled, _ = prepared_model(fd, cfg, sc)  # compiled, chains started as fit() does
    t0 = time.perf_counter()
    run = nutpie.sample(
        compiled, draws=300, tune=300, chains=2, cores=1, seed=seed, save_warmup=True,
        progress_bar=False, target_accept=sc.target_accept, adaptation=sc.adaptation,
        blocking=False,
    )  # fmt: skip
    try:
        tr = run.wait(timeout=wait)
        print(f"finished in {time.perf_counter() - t0:.0f} s")
    except TimeoutError:
        print(f"still running after {time.perf_counter() - t0:.0f} s; the trace so far:")
        tr = run.abort()
    groups = list(fd.groups["task"])
    for part in ("warmup", ""):
        stats_name = f"{part}_sample_stats" if part else "sample_stats"
        post_name = f"{part}_posterior" if part else "posterior"
        if stats_name not in tr:
            continue
        s, p = tr[stats_name].ds, tr[post_name].ds
        for c in s.chain.values:
            sc_ = s.sel(chain=c)
            n = int(np.isfinite(sc_["step_size"].values).sum())
            if not n:
                print(f"{part or 'draws'} chain {c}: no draws yet")
                continue
            depth, hits = sc_["depth"].values[:n], sc_["maxdepth_reached"].values[:n]
            steps, div = sc_["n_steps"].values[:n], sc_["diverging"].values[:n]
            print(
                f"{part or 'draws'} chain {c}: {n} draws, "
                f"step size {sc_['step_size'].values[n - 1]:.2e}, mean depth {depth.mean():.2f}, "
                f"max-depth hits {int(hits.sum())}, mean leapfrog steps {steps.mean():.0f}, "
                f"divergences {int(div.sum())}"
            )
            print(
                "   step size every 25th draw:",
                np.array2string(sc_["step_size"].values[:n:25], precision=4),
            )
            for v in ("gap_power", "gap", "sigma"):
                x = p[v].sel(chain=c).values[:n]
                ends = ", ".join(
                    f"{g} {a:.3g}->{b:.3g}" for g, a, b in zip(groups, x[0], x[-1], strict=True)
                )
                print(f"   {v} first->last draw: {ends}")


def _timm(priors: dict) -> None:
    from scale_transfer import zoo
    from scale_transfer.posterior import fit

    data = zoo.load_timm("../shared/data/timm-results").data
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        post = fit(data, likelihood="frontier", draws=500, tune=500, chains=4, seed=0,
                   progress=False, priors=priors)  # fmt: skip
    print(f"priors {priors}: {time.perf_counter() - t:.0f} s; {post.diagnostics.verdict()}")
    p = post.dt["posterior"].ds
    for v in ("gap_power", "gap", "gap_shape", "sigma", "asymptote"):
        m = p[v].mean(("chain", "draw")).values
        q = p[v].quantile([0.05, 0.95], ("chain", "draw")).values
        print(v, np.round(m, 4), "5%", np.round(q[0], 4), "95%", np.round(q[1], 4))


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--timm":
        _timm(json.loads(args[1]) if len(args) > 1 else {})
    else:
        _hang(
            float(args[0]) if args else 300.0,
            int(args[1]) if len(args) > 1 else 1,
            json.loads(args[2]) if len(args) > 2 else {},
        )
