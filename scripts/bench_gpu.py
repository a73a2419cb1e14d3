"""GPU benchmark of the power-law model in JAX (numpyro): one big fit, and many small ones.

Meant for a lent GPU machine whose image has JAX and numpyro but not PyMC: it loads only
the package's numpy modules (simulator, hull) and writes the model in numpyro. Two parts:

1. ``paper``: the paper-scale case (``simulate("jft-25shot", 3000, 0)``, all 24,000 points,
   8 tasks, Gaussian likelihood, centred hierarchy with the package's shear around the
   reference upstream error), numpyro NUTS with ``chain_method="vectorized"``. Run twice:
   the first run pays JIT compilation, the second reuses it.
2. ``batch``: many small hull fits at once, like a Figure B study: ``--batch`` data sets,
   each a random subset of ``--subset`` models of one simulation, its upper-hull points per
   task (padded to a common length with a mask), fitted with a centred hierarchy (as the
   package's ``centered="auto"`` does for hull fits).
   NUTS is written with numpyro's functional API (``hmc``) and ``jax.vmap``-ed over data
   sets and chains, so one compiled program runs every fit; a vmapped NUTS runs as long
   as its slowest member per step, which the mean tree depth shows.

It prints the card, the timings, min bulk ESS and divergences, and writes a JSON file.

Usage (GPU)::

    python3 scripts/bench_gpu.py --out $OUT/bench_gpu.json

Smoke test on a CPU (tiny sizes; seconds)::

    python scripts/bench_gpu.py --smoke
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _load_package_numpy_modules() -> tuple:
    """Import the simulator and hull without the package's ``__init__`` (which needs PyMC)."""
    if "scale_transfer" not in sys.modules:
        pkg = types.ModuleType("scale_transfer")
        pkg.__path__ = [str(ROOT / "src" / "scale_transfer")]
        sys.modules["scale_transfer"] = pkg
    simulate = importlib.import_module("scale_transfer.simulate").simulate
    upper_hull = importlib.import_module("scale_transfer.hull").upper_hull
    return simulate, upper_hull


def _arrays(df, tasks: list[str], hull_fn=None) -> tuple[np.ndarray, ...]:
    """(log e_us, e_ds, task index) of a tidy frame's points (hull points with hull_fn)."""
    xs, ys, gs = [], [], []
    for i, t in enumerate(tasks):
        sub = df[df["task"] == t]
        us, ds = sub["us_acc"].to_numpy(float), sub["ds_acc"].to_numpy(float)
        if hull_fn is not None:
            h = hull_fn(us, ds)
            us, ds = us[h], ds[h]
        xs.append(np.log(np.clip(1.0 - us, 1e-6, 1.0)))
        ys.append(1.0 - ds)
        gs.append(np.full(len(us), i))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(gs)


def make_model(n_tasks: int, centered: bool):
    """Return a numpyro model of the law with the package's parametrization and priors."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    priors = {  # (mu's mean, mu's sd, sigma's scale), as DEFAULT_PRIORS in model.py
        "log_level": (-2.5, 0.75, 1.0),
        "log_alpha": (1.0, 0.75, 0.5),
        "logit_e_ir": (-2.0, 1.0, 1.0),
    }

    def model(log_e_us, e_ds, gidx, mask, log_e_ref):
        p = {}
        with numpyro.plate("task", n_tasks):
            for name, (m0, s0, sd0) in priors.items():
                mu = numpyro.sample(f"{name}_mu", dist.Normal(m0, s0))
                sd = numpyro.sample(f"{name}_sigma", dist.HalfNormal(sd0))
                if centered:
                    p[name] = numpyro.sample(f"{name}_task", dist.Normal(mu, sd))
                else:
                    z = numpyro.sample(f"{name}_z", dist.Normal(0.0, 1.0))
                    p[name] = mu + sd * z
            sigma = numpyro.sample("sigma", dist.HalfNormal(0.05))
        alpha = jnp.exp(p["log_alpha"])
        e_ir = numpyro.deterministic("e_ir", 1.0 / (1.0 + jnp.exp(-p["logit_e_ir"])))
        mu = jnp.exp(p["log_level"][gidx] + alpha[gidx] * (log_e_us - log_e_ref)) + e_ir[gidx]
        with numpyro.handlers.mask(mask=mask):
            numpyro.sample("e_ds", dist.Normal(mu, sigma[gidx]), obs=e_ds)

    return model


def bench_paper(simulate, a) -> dict:
    """Part 1: one paper-scale fit with numpyro NUTS, chains vectorized."""
    import jax
    import jax.numpy as jnp
    from numpyro.diagnostics import effective_sample_size, split_gelman_rubin
    from numpyro.infer import MCMC, NUTS, init_to_median

    df = simulate("jft-25shot", a.n_models, 0).data
    tasks = list(dict.fromkeys(df["task"]))
    x, y, g = _arrays(df, tasks)
    args = (jnp.asarray(x), jnp.asarray(y), jnp.asarray(g), jnp.ones(len(x), bool), float(x.mean()))
    kernel = NUTS(
        make_model(len(tasks), centered=True),
        target_accept_prob=0.95,
        init_strategy=init_to_median,  # uniform(-2, 2) starts can overflow exp(alpha * ...)
    )
    mcmc = MCMC(
        kernel,
        num_warmup=a.tune,
        num_samples=a.draws,
        num_chains=a.chains,
        chain_method="vectorized",
        progress_bar=False,
    )
    out = {"n_points": len(x), "n_tasks": len(tasks)}
    for run, seed in (("first", 0), ("second", 1)):
        t0 = time.perf_counter()
        mcmc.run(jax.random.PRNGKey(seed), *args, extra_fields=("diverging", "num_steps"))
        e_ir = mcmc.get_samples(group_by_chain=True)["e_ir"]
        jax.block_until_ready(e_ir)
        wall = time.perf_counter() - t0
        e = np.asarray(e_ir)
        ess = float(np.min(effective_sample_size(e)))
        extra = mcmc.get_extra_fields(group_by_chain=True)
        steps = np.asarray(extra["num_steps"])
        out[run] = {
            "wall_seconds": wall,
            "min_ess_bulk_e_ir": ess,
            "max_rhat_e_ir": float(np.max(split_gelman_rubin(e))),
            "divergences": int(np.asarray(extra["diverging"]).sum()),
            "mean_tree_depth": float(np.mean(np.log2(steps + 1))),
            "ess_per_second": ess / wall,
        }
        print(
            f"paper ({run} run, {'JIT compile included' if seed == 0 else 'compiled'}): "
            f"{json.dumps(out[run])}",
            flush=True,
        )
    return out


def _batch_data(simulate, upper_hull, a) -> tuple[np.ndarray, ...]:
    """Hull points of ``a.batch`` random model subsets, padded to one length."""
    df = simulate("jft-25shot", a.n_models, 0).data
    tasks = list(dict.fromkeys(df["task"]))
    models = df["model"].unique()
    rng = np.random.default_rng(0)
    sets = []
    for _ in range(a.batch):
        pick = set(rng.choice(models, a.subset, replace=False))
        sets.append(_arrays(df[df["model"].isin(pick)], tasks, upper_hull))
    n = max(len(s[0]) for s in sets)
    xb, yb = np.zeros((a.batch, n)), np.full((a.batch, n), 0.5)
    gb, mb = np.zeros((a.batch, n), int), np.zeros((a.batch, n), bool)
    for i, (x, y, g) in enumerate(sets):
        xb[i, : len(x)], yb[i, : len(x)], gb[i, : len(x)], mb[i, : len(x)] = x, y, g, True
    ref = np.array([x.mean() for x, _, _ in sets])
    return xb, yb, gb, mb, ref, len(tasks), np.array([len(s[0]) for s in sets])


def bench_batch(simulate, upper_hull, a) -> dict:
    """Part 2: many small hull fits, NUTS vmapped over data sets and chains."""
    import jax
    import jax.numpy as jnp
    from numpyro.diagnostics import effective_sample_size
    from numpyro.infer import init_to_median
    from numpyro.infer.hmc import hmc
    from numpyro.infer.util import initialize_model

    xb, yb, gb, mb, ref, n_tasks, sizes = _batch_data(simulate, upper_hull, a)
    model = make_model(n_tasks, centered=True)
    data0 = (
        jnp.asarray(xb[0]),
        jnp.asarray(yb[0]),
        jnp.asarray(gb[0]),
        jnp.asarray(mb[0]),
        jnp.asarray(ref[0]),
    )
    init, potential_gen, _, _ = initialize_model(
        jax.random.PRNGKey(0),
        model,
        model_args=data0,
        dynamic_args=True,
        init_strategy=init_to_median,
    )
    z0 = init.z
    n_steps = a.tune + a.draws

    def one_chain(key, x, y, g, m, r):
        init_kernel, sample_kernel = hmc(potential_gen(x, y, g, m, r), algo="NUTS")
        state = init_kernel(z0, num_warmup=a.tune, target_accept_prob=0.95, rng_key=key)

        def body(s, _):
            s = sample_kernel(s)
            return s, (s.z["logit_e_ir_task"], s.diverging, s.num_steps)

        _, (zs, div, steps) = jax.lax.scan(body, state, None, length=n_steps)
        return zs[a.tune :], div[a.tune :], steps[a.tune :]

    over_chains = jax.vmap(one_chain, in_axes=(0, None, None, None, None, None))
    over_sets = jax.jit(jax.vmap(over_chains, in_axes=(0, 0, 0, 0, 0, 0)))
    data = tuple(jnp.asarray(v) for v in (xb, yb, gb, mb, ref))
    out = {
        "batch": a.batch,
        "subset_models": a.subset,
        "points_per_fit_median": float(np.median(sizes)),
        "padded_points": int(xb.shape[1]),
    }
    for run, seed in (("first", 0), ("second", 1)):
        keys = jax.random.split(jax.random.PRNGKey(seed), a.batch * a.chains)
        keys = keys.reshape(a.batch, a.chains, *keys.shape[1:])
        t0 = time.perf_counter()
        zs, div, steps = over_sets(keys, *data)
        jax.block_until_ready(zs)
        wall = time.perf_counter() - t0
        # ESS of logit e_ir per task: e_ir is a monotone map of it, so the ranks (and the
        # rank-normalised ESS) are the same
        zs = np.asarray(zs)  # (batch, chains, draws, tasks)
        ess = np.array([np.min(effective_sample_size(zs[i])) for i in range(a.batch)])
        div = np.asarray(div)
        out[run] = {
            "wall_seconds": wall,
            "fits_per_second": a.batch / wall,
            "seconds_per_fit": wall / a.batch,
            "min_ess_bulk_median_over_fits": float(np.median(ess)),
            "min_ess_bulk_min_over_fits": float(np.min(ess)),
            "divergent_share": float(div.mean()),
            "fits_with_divergences": int((div.sum(axis=(1, 2)) > 0).sum()),
            "mean_tree_depth": float(np.mean(np.log2(np.asarray(steps) + 1))),
        }
        print(
            f"batch ({run} run, {'JIT compile included' if seed == 0 else 'compiled'}): "
            f"{json.dumps(out[run])}",
            flush=True,
        )
    return out


def main(argv: list[str] | None = None) -> dict:
    """Run the GPU benchmark and print/write its results."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n-models", type=int, default=3000)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--batch", type=int, default=512, help="hull fits vmapped at once")
    p.add_argument("--subset", type=int, default=300, help="models per hull fit")
    p.add_argument("--only", choices=["paper", "batch", "both"], default="both")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, for a CPU check")
    p.add_argument("--out", type=Path, default=None, help="JSON file to write")
    a = p.parse_args(argv)
    if a.smoke:
        a.n_models, a.draws, a.tune, a.chains, a.batch, a.subset = 120, 30, 30, 2, 3, 60
    import jax

    jax.config.update("jax_enable_x64", True)
    simulate, upper_hull = _load_package_numpy_modules()
    import numpyro

    dev = jax.devices()[0]
    result = {
        "device": str(dev),
        "device_kind": getattr(dev, "device_kind", ""),
        "backend": jax.default_backend(),
        "jax": jax.__version__,
        "numpyro": numpyro.__version__,
        "python": platform.python_version(),
        "args": vars(a) | {"out": str(a.out)},
    }
    print(
        f"device: {result['device_kind'] or result['device']} ({result['backend']}); "
        f"jax {jax.__version__}, numpyro {numpyro.__version__}",
        flush=True,
    )
    if a.only in ("paper", "both"):
        result["paper"] = bench_paper(simulate, a)
    if a.only in ("batch", "both"):
        result["batch"] = bench_batch(simulate, upper_hull, a)
    if a.out is not None:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(result, indent=1))
        print(f"wrote {a.out}")
    return result


if __name__ == "__main__":
    main()
