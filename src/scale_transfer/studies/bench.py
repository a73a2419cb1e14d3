"""A benchmark anyone can rerun: the Bayesian fit against the bootstrap and a naive model.

One call of :func:`run_benchmark` (``scale-transfer bench``) runs, side by side in one
process tree, for each case:

- ``paper-all``: ``simulate("jft-25shot", 3000, 0)``, all points (24,000 points, 8 tasks);
- ``paper-hull``: the same data, upper-hull points only;
- ``paper-top``: the same data, ``target="top"`` (the best fifth of each bin of US accuracy,
  4,800 points) with the frontier likelihood: the frontier at paper scale (frontier fit
  only; the frontier fits of all points of ``paper-all`` and ``timm`` and of the hull run
  only when ``frontier_cases`` names them);
- ``timm``: :func:`scale_transfer.zoo.load_timm` (5 shifted ImageNet test sets x ~1556
  models, all points), when a timm results folder is given;
- ``timm-top``: the same data, ``target="top"``: the frontier fit that ``scale-transfer fit``
  adds to a fit of timm (frontier fit only);

the hierarchical Bayesian fit (:func:`scale_transfer.posterior.fit`, Gaussian and frontier
likelihoods), the least-squares fit with a bootstrap per task
(:func:`scale_transfer.lsq.fit_lsq_frame`) and, optionally, a *naive* PyMC model: the law
transcribed as written, ``e_ds ~ Normal(k * e_us**alpha + e_ir, sigma)``, with a
non-centred hierarchy on ``log k``, ``log alpha`` and ``logit e_ir`` and no centring of
``log e_us``, sampled with nutpie. The naive model is the reference for "how much the
reparametrization buys".

Every fit runs in a fresh child process (``multiprocessing`` with the ``spawn`` start
method), so that its peak resident memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss`` in
the child) is its own and so that the compile cache starts cold, as for a user's first fit.
A second, *warm* fit of the same structure on new data in the same child shows what a
study pays per fit once the model is compiled.

The result is a JSON file (fields documented in ``docs/benchmark.md``), written after each
run so that an interrupted benchmark keeps what it measured, and a plain-text table.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from scale_transfer.publish import write_atomic
from scale_transfer.studies.bench_cases import (
    CASES,
    FRONTIER_ONLY,
    LIKELIHOODS,
    TARGETS,
    BenchConfig,
    case_data,
    naive_model,
)
from scale_transfer.studies.bench_table import (
    check_targets,
    derive_ratios,
    ess_per_second,
    format_table,
)
from scale_transfer.studies.runner import (
    CONVERGENCE_FIELDS,
    diagnostics_record,
    fit_quietly,
    optional_import,
    run_in_child,
)

__all__ = [
    "CASES",
    "LIKELIHOODS",
    "TARGETS",
    "BenchConfig",
    "case_data",
    "format_table",
    "machine_info",
    "naive_model",
    "run_benchmark",
    "versions",
]


# ----------------------------------------------------------------------------- child runs
def _peak_rss_bytes() -> int:
    # Linux reports ru_maxrss in KiB (macOS in bytes)
    scale = 1 if sys.platform == "darwin" else 1024
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * scale


def _cpu_seconds() -> float:
    # user + system time of this process, all its threads (nutpie samples in threads), and
    # of the processes it waited for (a C compiler started by PyTensor, say)
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        total += ru.ru_utime + ru.ru_stime
    return float(total)


def _current_rss_bytes() -> int:
    psutil = optional_import("psutil", "the benchmark's memory record")
    return int(psutil.Process().memory_info().rss)


def _sample_stats(dt: Any) -> dict[str, float]:
    ss = dt["sample_stats"]

    def get(*names: str) -> Any:
        for n in names:
            if n in ss.data_vars:
                return np.asarray(ss[n].values)
        return None

    depth = get("depth", "tree_depth")
    steps = get("n_steps", "n_leapfrog")
    step = get("step_size")
    return {
        "mean_tree_depth": float(depth.mean()) if depth is not None else float("nan"),
        "grad_evals": int(steps.sum()) if steps is not None else -1,
        "step_size": float(np.mean(step)) if step is not None else float("nan"),
    }


def _numba_cache_files() -> int:
    """Return the number of files in this process's on-disk PyTensor numba cache."""
    import pytensor

    path = Path(pytensor.config.base_compiledir) / "numba"
    return sum(1 for _ in path.iterdir()) if path.is_dir() else 0


def _bayes_record(post: Any, wall: float) -> dict[str, Any]:
    d = post.diagnostics
    rec = {
        "wall_seconds": wall,
        "compile_seconds": d.compile_seconds,
        "sample_seconds": d.sample_seconds,
        "compile_cache_warm": bool(d.compile_cached),
        "summary_stats": bool(d.summary_stats),
        **diagnostics_record(d, CONVERGENCE_FIELDS),
        "n_points": int(post.groups["n"].sum()),
        "n_groups": len(post.groups),
    }
    return rec | _sample_stats(post.dt)


def _child_bayes(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Child process: one cold Bayesian fit, then (optionally) a warm one on new data."""
    t_import = time.perf_counter()
    import scale_transfer.posterior  # noqa: F401 - timed: what a user's first fit imports

    import_seconds = time.perf_counter() - t_import
    from scale_transfer import compile_cache

    cfg = BenchConfig(**spec["config"])
    case, lik = spec["case"], spec["likelihood"]
    package_cache = spec.get("package_cache", "user")
    out = []
    for variant in (0, 1) if spec["warm"] else (0,):
        loaded0 = compile_cache.stats["loaded"]
        df, target = case_data(case, cfg, variant)
        sc = cfg.sampler_config(variant)
        rss0, files0 = _current_rss_bytes(), _numba_cache_files()
        c0, t0 = _cpu_seconds(), time.perf_counter()
        post = fit_quietly(df, target=target, likelihood=lik, law="error", sampler_config=sc)
        wall, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
        new_files = _numba_cache_files() - files0
        rec = {
            "case": case,
            "method": "bayes",
            "likelihood": lik,
            "fit": "warm" if variant else ("first" if package_cache == "empty" else "cold"),
        }
        rec |= _bayes_record(post, wall)
        rec |= {
            "compile_cache": package_cache,
            "compile_cache_loaded": compile_cache.stats["loaded"] > loaded0,
            "numba_cache": cfg.numba_cache,
            "numba_cache_files_before": files0,
            "numba_cache_new_files": new_files,
            "cpu_seconds": cpu,
            "load_average": os.getloadavg()[0],
            "import_seconds": import_seconds if variant == 0 else 0.0,
            "rss_before_fit_bytes": rss0,
            "peak_rss_bytes": _peak_rss_bytes(),
        }
        out.append(rec)
    return out


def _child_naive(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Child process: the naive model, compiled and sampled with nutpie."""
    t_import = time.perf_counter()
    import nutpie

    from scale_transfer.model import ModelConfig, prepare_data
    from scale_transfer.sampling import (
        ConvergenceWarning,
        check_convergence,
        nutpie_draws,
        resolve_sampler_config,
    )

    import_seconds = time.perf_counter() - t_import
    cfg = BenchConfig(**spec["config"])
    case = spec["case"]
    df, target = case_data(case, cfg, 0)
    rss0, files0 = _current_rss_bytes(), _numba_cache_files()
    c0, t0 = _cpu_seconds(), time.perf_counter()
    fd = prepare_data(df, ModelConfig(target=target, law="error"))
    compiled = nutpie.compile_pymc_model(naive_model(fd), backend="numba")
    t1 = time.perf_counter()
    # "auto" as for a Gaussian fit of every point (the naive model has no sufficient stats)
    plain = ModelConfig(target=target, summary_stats=False, law="error")
    sc = resolve_sampler_config(cfg.sampler_config(naive=True), fd, plain)
    keep = nutpie_draws(compiled, sc)
    t2 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # recorded, not printed
        d = check_convergence(keep)
    wall, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
    rec = {
        "case": case,
        "method": "naive-pymc",
        "likelihood": "gaussian",
        "fit": "cold",
        "wall_seconds": wall,
        "compile_seconds": t1 - t0,
        "sample_seconds": t2 - t1,
        "compile_cache_warm": False,
        "numba_cache": cfg.numba_cache,
        "numba_cache_files_before": files0,
        "numba_cache_new_files": _numba_cache_files() - files0,
        **diagnostics_record(d, CONVERGENCE_FIELDS),
        "n_points": len(fd.e_ds),
        "n_groups": len(fd.groups),
        "cpu_seconds": cpu,
        "load_average": os.getloadavg()[0],
        "import_seconds": import_seconds,
        "rss_before_fit_bytes": rss0,
        "peak_rss_bytes": _peak_rss_bytes(),
    }
    return [rec | _sample_stats(keep)]


def _child_bootstrap(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Child process: least squares per task with ``n_boot`` bootstrap resamples."""
    from scale_transfer.lsq import fit_lsq_frame

    cfg = BenchConfig(**spec["config"])
    case = spec["case"]
    df, target = case_data(case, cfg, 0)
    rss0 = _current_rss_bytes()
    c0, t0 = _cpu_seconds(), time.perf_counter()
    res = fit_lsq_frame(df, target=target, n_boot=cfg.n_boot, seed=cfg.seed)
    wall, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
    nan = float("nan")
    return [
        {
            "case": case,
            "method": "lsq-bootstrap",
            "likelihood": "least-squares",
            "fit": "cold",
            "wall_seconds": wall,
            "compile_seconds": 0.0,
            "sample_seconds": wall,
            "compile_cache_warm": False,
            "draws": cfg.n_boot,
            "chains": 1,
            "min_ess_bulk": nan,
            "min_ess_tail": nan,
            "max_rhat": nan,
            "divergences": 0,
            "max_depth_hits": 0,
            "converged": bool(np.isfinite(res["asymptote_lower"]).all()),
            "n_points": int(res["n"].sum()),
            "n_groups": len(res),
            "mean_tree_depth": nan,
            "grad_evals": -1,
            "step_size": nan,
            "cpu_seconds": cpu,
            "load_average": os.getloadavg()[0],
            "import_seconds": 0.0,
            "rss_before_fit_bytes": rss0,
            "peak_rss_bytes": _peak_rss_bytes(),
        }
    ]


_CHILDREN = {"bayes": _child_bayes, "naive-pymc": _child_naive, "lsq-bootstrap": _child_bootstrap}


def _in_child(method: str, spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Run one method in a fresh ``spawn`` child process and return its records.

    With ``numba_cache="fresh"`` the child's PyTensor gets an empty ``base_compiledir`` of
    its own (through ``PYTENSOR_FLAGS``, read when the child imports PyTensor), removed
    afterwards.
    With ``spec["package_cache_dir"]`` the child's package cache of compiled models
    (:mod:`scale_transfer.compile_cache`) is that folder; without it, the user's; the
    naive model and the bootstrap do not use it.
    """
    from scale_transfer.compile_cache import CACHE_DIR_ENV

    with contextlib.ExitStack() as stack:
        if spec["config"].get("numba_cache", "fresh") == "fresh":
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="st-bench-pytensor-"))
            stack.enter_context(_env("PYTENSOR_FLAGS", f"base_compiledir={tmp}", append=True))
        if spec.get("package_cache_dir"):
            stack.enter_context(_env(CACHE_DIR_ENV, spec["package_cache_dir"]))
        return run_in_child(_CHILDREN[method], spec)


@contextlib.contextmanager
def _env(name: str, value: str, *, append: bool = False) -> Iterator[None]:
    """Set (or append ``,value`` to) an environment variable for the processes started meanwhile."""
    old = os.environ.get(name)
    os.environ[name] = f"{old},{value}" if append and old else value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


# ----------------------------------------------------------------------------- machine
def machine_info() -> dict[str, Any]:
    """Return cores, CPU model, memory, Python and platform of this machine."""
    psutil = optional_import("psutil", "the benchmark's machine record")

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu,
        "memory_bytes": int(psutil.virtual_memory().total),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_start": list(os.getloadavg()),
    }


def versions() -> dict[str, str]:
    """Return the versions of the packages that the timings depend on."""
    out = {}
    for name in ("scale-transfer", "pymc", "pytensor", "nutpie", "numpy", "arviz", "numba"):
        try:
            out[name.replace("-", "_")] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name.replace("-", "_")] = "not installed"
    return out


# ----------------------------------------------------------------------------- driver
def _clean(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


def _run_method(method: str, spec: dict[str, Any], cfg: BenchConfig) -> list[dict[str, Any]]:
    """Run one step of the plan; a Bayesian fit in one child per package-cache state.

    The children of one step share a package cache folder of their own (removed
    afterwards); the warm refit runs in the last.
    """
    if method != "bayes":
        return _in_child(method, spec)
    runs = cfg.package_cache_runs(spec["likelihood"])
    recs: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        folder = None
        if runs != ("user",):
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="st-bench-models-"))
        for i, state in enumerate(runs):
            last = i == len(runs) - 1
            run = spec | {"package_cache": state, "package_cache_dir": folder,
                          "warm": spec["warm"] and last}  # fmt: skip
            recs += _in_child(method, run)
    return recs


def _plan(cfg: BenchConfig) -> list[tuple[str, str, str | None]]:
    """(case, method, likelihood) in run order: cheap first, the costly frontier fits last."""
    plan = []
    for case in cfg.cases:
        if case in FRONTIER_ONLY:
            continue
        plan.append((case, "lsq-bootstrap", None))
        if "gaussian" in cfg.likelihoods:
            plan.append((case, "bayes", "gaussian"))
        if cfg.with_naive:
            plan.append((case, "naive-pymc", None))
    if "frontier" in cfg.likelihoods:
        plan += [(case, "bayes", "frontier") for case in cfg.frontier_cases]
    return plan


def run_benchmark(
    out: str | os.PathLike,
    cfg: BenchConfig | None = None,
    *,
    overwrite: bool = False,
    command: str = "",
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the benchmark and write its JSON.

    Parameters
    ----------
    out : path
        JSON file to write; rewritten after every run (``"complete": false`` until the end).
    cfg : BenchConfig, optional
        What to run (default: the full benchmark without timm and naive).
    overwrite : bool
        Replace an existing ``out``.
    command : str
        The command line, stored in the JSON.
    log : callable, optional
        Receives progress lines (default: print to stderr).

    Returns
    -------
    dict
        The JSON content: ``machine``, ``versions``, ``command``, ``config``, ``records``,
        ``ratios``, ``targets``, ``complete``.
    """
    cfg = cfg or BenchConfig()
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True (--overwrite) to replace it")
    if log is None:

        def log(line: str) -> None:
            print(line, file=sys.stderr, flush=True)

    out.parent.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "machine": machine_info(),
        "versions": versions(),
        "command": command,
        "config": asdict(cfg) | {"at_target_settings": cfg.at_target_settings},
        "targets_thresholds": TARGETS,
        "records": [],
        "ratios": [],
        "targets": [],
        "complete": False,
    }

    written = []

    def write() -> None:
        result["ratios"] = derive_ratios(result["records"])
        result["targets"] = check_targets(result["records"], result["ratios"])
        text = json.dumps(_clean(result), indent=1)
        # the first write claims the name (never over another file without overwrite)
        write_atomic(out, lambda tmp: tmp.write_text(text), overwrite=overwrite or bool(written))
        written.append(out)

    write()
    plan = _plan(cfg)
    t_start = time.perf_counter()
    for i, (case, method, lik) in enumerate(plan, 1):
        warm = method == "bayes" and cfg.warm_for(case)
        what = f"{case} {method}" + (f" {lik}" if lik else "")
        runs = cfg.package_cache_runs(lik) if method == "bayes" else ("-",)
        log(
            f"[bench {i}/{len(plan)}] {what}: starting in "
            + ("a fresh process" if len(runs) == 1 else f"{len(runs)} fresh processes")
            + (" (+ warm refit)" if warm else "")
        )
        spec = {"case": case, "likelihood": lik, "warm": warm, "config": asdict(cfg)}
        recs = _run_method(method, spec, cfg)
        for r in recs:
            r["ess_per_second"] = ess_per_second(r)
            cache = "warm" if r["compile_cache_warm"] else "cold"
            cache += (
                ", model loaded from the package cache" if r.get("compile_cache_loaded") else ""
            )
            result["records"].append(r)
            log(
                f"[bench {i}/{len(plan)}] {what} ({r['fit']}): wall {r['wall_seconds']:.1f} s "
                f"(compile {r['compile_seconds']:.1f} s, cache {cache}), "
                f"min bulk ESS {r['min_ess_bulk']:.0f}, R-hat {r['max_rhat']:.3f}, "
                f"{r['divergences']} divergences, peak RSS {r['peak_rss_bytes'] / 2**20:.0f} MiB"
            )
        write()
    result["machine"]["load_average_end"] = list(os.getloadavg())
    result["total_seconds"] = time.perf_counter() - t_start
    result["complete"] = True
    write()
    return json.loads(out.read_text())
