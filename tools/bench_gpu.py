"""GPU benchmark: the package's model through JAX, one big fit and many small fits at once.

Parts (``--parts``, in this order; each prints one JSON line and adds to ``--out``):

- ``paper``: the paper-scale case (``simulate("jft-25shot", 3000, 0)``, all 24,000
  points, Gaussian, hierarchical) fitted by ``scale_transfer.fit(..., sampler="numpyro")``:
  PyMC's JAX backend and numpyro NUTS, chains vectorized on one device. Twice (seeds 0
  and 1); PyMC builds its JAX function anew on each call (on a CPU, with 200 models, the
  second run took 10.5 s against the first's 18.6 s).
- ``batch-hull``: ``--batch`` hull fits (Gaussian, the study's hull method) of random
  ``--subset``-model subsets of the simulation with :func:`scale_transfer.studies.batch.fit_batch`
  (NUTS vmapped over fits and chains), twice with new subsets: the first run pays JIT
  compilation, the second reuses it (same padded length).
- ``batch-all``: the same with all points and the Student-t (the study's all-points
  method).
- ``nutpie``: the reference on a CPU: the package's default path (nutpie, numba), the same
  kind of fits one after another in one process with the compiled model reused (what a
  study's worker does); ``--nutpie-fits`` fits of each kind.

Usage on a lent GPU (needs pymc, pytensor and arviz there: see docs/benchmark.md)::

    python3 tools/bench_gpu.py --parts paper batch-hull batch-all --out $OUT/gpu.json

The same on a CPU, small::

    JAX_PLATFORMS=cpu python tools/bench_gpu.py --parts batch-hull --batch 8 --out cpu.json
    python tools/bench_gpu.py --parts nutpie --nutpie-fits 4 --out nutpie.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np


def _subsets(df, n_sets: int, size: int, seed: int) -> list:
    models = df["model"].unique()
    rng = np.random.default_rng(seed)
    return [df[df["model"].isin(rng.choice(models, size, replace=False))] for _ in range(n_sets)]


def _summary(diag, wall: float, n_fits: int) -> dict:
    return {
        "wall_seconds": wall,
        "fits": n_fits,
        "fits_per_second": n_fits / wall,
        "seconds_per_fit": wall / n_fits,
        "min_ess_bulk_median": float(diag["min_ess_bulk"].median()),
        "min_ess_bulk_min": float(diag["min_ess_bulk"].min()),
        "max_rhat_median": float(diag["max_rhat"].median()),
        "max_rhat_max": float(diag["max_rhat"].max()),
        "fits_converged": int(diag["converged"].sum()),
        "fits_with_divergences": int((diag["divergences"] > 0).sum()),
        "divergences_total": int(diag["divergences"].sum()),
        "mean_tree_depth": float(diag["mean_tree_depth"].mean()),
        "max_depth_hits": int(diag["max_depth_hits"].sum()),
    }


def part_paper(a) -> dict:
    """Paper-scale fit through PyMC's numpyro path, twice."""
    from scale_transfer import fit, simulate

    df = simulate("jft-25shot", a.n_models, 0).data
    out = {"n_points": len(df)}
    for run, seed in (("first", 0), ("second", 1)):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            post = fit(df, target="all", law="error", sampler="numpyro",
                       draws=a.draws, tune=a.tune, chains=a.chains, seed=seed,
                       progress=False)  # fmt: skip
        wall = time.perf_counter() - t0
        d = post.diagnostics
        out[run] = {
            "wall_seconds": wall,
            "prepare_seconds": d.compile_seconds,
            "sample_seconds": d.sample_seconds,
            "min_ess_bulk": d.min_ess_bulk,
            "min_ess_tail": d.min_ess_tail,
            "max_rhat": d.max_rhat,
            "divergences": d.divergences,
            "ess_per_second": d.min_ess_bulk / wall,
            "converged": d.ok,
        }
        print(f"paper {run}: {json.dumps(out[run])}", flush=True)
    return out


def part_batch(a, target: str) -> dict:
    """``a.batch`` fits at once with ``fit_batch``, twice (new subsets, same program)."""
    from scale_transfer import ModelConfig, SamplerConfig, simulate
    from scale_transfer.model import prepare_data
    from scale_transfer.studies.batch import fit_batch

    df = simulate("jft-25shot", a.n_models, 0).data
    likelihood = "gaussian" if target == "hull" else "student_t"
    cfg = ModelConfig(target=target, likelihood=likelihood, centered=True)
    runs = {run: _subsets(df, a.batch, a.subset, i) for i, run in enumerate(("first", "second"))}
    # one padded length for both runs, so that the second reuses the first's program
    pad = max(prepare_data(s, cfg).e_ds.size for sets in runs.values() for s in sets)
    out = {"batch": a.batch, "subset_models": a.subset, "likelihood": likelihood, "pad_to": pad}
    for seed, (run, sets) in enumerate(runs.items()):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sc = SamplerConfig(draws=a.draws, tune=a.tune, chains=a.chains, seed=seed)
            r = fit_batch(sets, cfg, sc, pad_to=pad)
        wall = time.perf_counter() - t0
        steps = r.sample_stats["n_steps"].transpose("draw", ...).values.reshape(a.draws, -1)
        out[run] = _summary(r.diagnostics, wall, a.batch) | {
            "timings": r.timings,
            # a vmapped NUTS step lasts as long as the longest trajectory of all lanes
            "leapfrog_per_draw_mean": float(steps.mean()),
            "leapfrog_per_draw_lockstep": float(steps.max(axis=1).mean()),
        }
        print(f"batch-{target} {run}: {json.dumps(out[run])}", flush=True)
    return out


def part_nutpie(a) -> dict:
    """Run the CPU reference: nutpie fits one after another, compiled model reused."""
    from scale_transfer import fit, simulate
    from scale_transfer.studies.batch import batch_diagnostics

    df = simulate("jft-25shot", a.n_models, 0).data
    out = {}
    for target, likelihood in (("hull", "gaussian"), ("all", "student_t")):
        sets = _subsets(df, a.nutpie_fits + 1, a.subset, 1)
        rows = []
        for i, s in enumerate(sets):
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p = fit(s, target=target, likelihood=likelihood, law="error", draws=a.draws,
                        tune=a.tune, chains=a.chains, seed=i, progress=False)  # fmt: skip
            rows.append((time.perf_counter() - t0, p))
        warm = rows[1:]  # the first fit pays compilation
        wall = sum(w for w, _ in warm)
        import xarray as xr

        post = xr.concat([p.dt["posterior"].to_dataset() for _, p in warm], "fit")
        stats = xr.concat([p.dt["sample_stats"].to_dataset() for _, p in warm], "fit")
        stats["tree_depth"] = stats["depth"] if "depth" in stats else stats["tree_depth"]
        diag = batch_diagnostics(post, stats)
        out[target] = _summary(diag, wall, len(warm)) | {"first_fit_seconds": rows[0][0]}
        print(f"nutpie-{target}: {json.dumps(out[target])}", flush=True)
    return out


def machine() -> dict:
    """Device, cores and versions."""
    import jax

    info = {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
    }
    try:
        q = "name,memory.total,driver_version"
        info["gpu"] = subprocess.run(
            ["nvidia-smi", f"--query-gpu={q}", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=False,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        info["gpu"] = ""
    from importlib import metadata

    for p in ("jax", "jaxlib", "numpyro", "pymc", "pytensor", "numpy", "nutpie"):
        try:
            info[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            info[p] = None
    return info


def main(argv: list[str] | None = None) -> dict:
    """Run the chosen parts, print one line each, write ``--out`` after each part."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--parts", nargs="+", default=["paper", "batch-hull", "batch-all"],
                   choices=["paper", "batch-hull", "batch-all", "nutpie"])  # fmt: skip
    p.add_argument("--n-models", type=int, default=3000)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--batch", type=int, default=256, help="fits vmapped at once")
    p.add_argument("--subset", type=int, default=300, help="models per fit")
    p.add_argument("--nutpie-fits", type=int, default=8, help="warm nutpie fits per kind")
    p.add_argument("--out", type=Path, default=None, help="JSON file to write")
    a = p.parse_args(argv)
    result = {"machine": machine(), "args": {k: str(v) for k, v in vars(a).items()}}
    print(json.dumps(result["machine"]), flush=True)

    def write() -> None:
        if a.out is not None:
            a.out.parent.mkdir(parents=True, exist_ok=True)
            a.out.write_text(json.dumps(result, indent=1, default=float))

    for part in a.parts:
        t0 = time.perf_counter()
        if part == "paper":
            result[part] = part_paper(a)
        elif part == "nutpie":
            result[part] = part_nutpie(a)
        else:
            result[part] = part_batch(a, part.removeprefix("batch-"))
        result[part]["part_seconds"] = time.perf_counter() - t0
        write()
    return result


if __name__ == "__main__":
    main()
