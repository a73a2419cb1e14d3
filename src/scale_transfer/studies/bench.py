"""A benchmark anyone can rerun: the Bayesian fit against the bootstrap and a naive model.

One call of :func:`run_benchmark` (``scale-transfer bench``) runs, side by side in one
process tree, for each case:

- ``paper-all``: ``simulate("jft-25shot", 3000, 0)``, all points (24,000 points, 8 tasks);
- ``paper-hull``: the same data, upper-hull points only;
- ``timm``: :func:`scale_transfer.zoo.load_timm` (5 shifted ImageNet test sets x ~1556
  models, all points), when a timm results folder is given;

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
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CASES",
    "TARGETS",
    "BenchConfig",
    "case_data",
    "format_table",
    "naive_model",
    "run_benchmark",
]

#: Cases, in the order they run (cheap first).
CASES = ("paper-hull", "timm", "paper-all")
#: Likelihoods of the Bayesian fit that are benchmarked.
LIKELIHOODS = ("gaussian", "frontier")
#: Methods recorded.
METHODS = ("bayes", "lsq-bootstrap", "naive-pymc")
#: The thresholds checked (see ``docs/benchmark.md``).
TARGETS = {
    "min_ess_bulk": 1000.0,  # >=
    "max_rhat": 1.01,  # <=
    "divergences": 0,  # <=
    "naive_speedup": 20.0,  # naive wall per ESS / Bayes wall per ESS >=
    "hull_warm_wall_s": 3.0,  # <
    "peak_rss_gib": 2.0,  # <
}
_GIB = 1024.0**3


@dataclass
class BenchConfig:
    """What the benchmark runs.

    Parameters
    ----------
    draws, tune, chains : int
        Sampler settings of the Bayesian fits (tune defaults to draws).
    n_boot : int
        Bootstrap resamples per task of the least-squares fit.
    n_models : int
        Simulated models of the paper cases.
    timm_dir : str or None
        timm results folder; the ``timm`` case runs only when given.
    timm_models : int or None
        Subsample of timm models (None: all).
    with_naive : bool
        Also run the naive PyMC model (Gaussian likelihood).
    naive_draws, naive_tune : int or None
        Draws and tuning steps of the naive model (default: as the Bayesian fit); the
        comparison is per effective sample, so fewer draws keep it fair.
    cases, likelihoods : tuple of str
        Which cases and likelihoods to run.
    warm_refit : {"all", "hull", "none"}
        Which cases get a second, warm fit (same compiled model, new data) in the child.
    numba_cache : {"fresh", "shared"}
        PyTensor keeps numba-compiled functions on disk (``config.base_compiledir``/numba)
        and reuses them in later processes. ``"fresh"`` (default) gives every child an
        empty cache folder of its own, so a cold fit compiles everything, as on a
        user's first run; ``"shared"`` uses the user's folder as it is (what a user's
        later runs see). Each record counts the files its fits added to the cache.
    quick : bool
        Small sizes, for tests.
    seed : int
        Seed of the first fit (the warm fit uses ``seed + 1``).
    """

    draws: int = 1000
    tune: int | None = None
    chains: int = 4
    n_boot: int = 1000
    n_models: int = 3000
    timm_dir: str | None = None
    timm_models: int | None = None
    with_naive: bool = False
    naive_draws: int | None = None
    naive_tune: int | None = None
    cases: tuple[str, ...] = CASES
    likelihoods: tuple[str, ...] = LIKELIHOODS
    warm_refit: str = "all"
    numba_cache: str = "fresh"
    quick: bool = False
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def quick_config(cls, **kwargs: Any) -> BenchConfig:
        """Return the ``--quick`` settings: 300 models, 200 draws, 2 chains, 50 resamples."""
        base = {
            "draws": 200,
            "tune": 200,
            "chains": 2,
            "n_boot": 50,
            "n_models": 300,
            "timm_models": 300,
            "quick": True,
        }
        return cls(**(base | {k: v for k, v in kwargs.items() if v is not None}))

    def __post_init__(self) -> None:
        if self.tune is None:
            self.tune = self.draws
        if self.naive_draws is None:
            self.naive_draws = self.draws
        if self.naive_tune is None:
            self.naive_tune = self.naive_draws
        self.cases = tuple(self.cases)
        self.likelihoods = tuple(self.likelihoods)
        bad = [c for c in self.cases if c not in CASES]
        if bad:
            raise ValueError(f"unknown case(s) {bad}; choose from {', '.join(CASES)}")
        bad = [x for x in self.likelihoods if x not in LIKELIHOODS]
        if bad:
            raise ValueError(f"unknown likelihood(s) {bad}; choose from {', '.join(LIKELIHOODS)}")
        if self.warm_refit not in ("all", "hull", "none"):
            raise ValueError(f"warm_refit must be all, hull or none; got {self.warm_refit!r}")
        if self.numba_cache not in ("fresh", "shared"):
            raise ValueError(f"numba_cache must be fresh or shared; got {self.numba_cache!r}")
        if "timm" in self.cases and self.timm_dir is None:
            self.cases = tuple(c for c in self.cases if c != "timm")
        for name in ("draws", "tune", "chains", "n_models", "naive_draws", "naive_tune"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        if self.n_boot < 1:
            raise ValueError(f"n_boot must be >= 1; got {self.n_boot}")

    @property
    def at_target_settings(self) -> bool:
        """Return True when the run uses the targets' settings (4 chains x 1000 draws)."""
        return (not self.quick) and self.chains >= 4 and self.draws >= 1000

    def warm_for(self, case: str) -> bool:
        """Return whether ``case`` gets a warm refit."""
        return self.warm_refit == "all" or (self.warm_refit == "hull" and case == "paper-hull")


# ----------------------------------------------------------------------------- data
def case_data(case: str, cfg: BenchConfig, variant: int = 0) -> tuple[pd.DataFrame, str]:
    """Return the tidy data and the target (``"all"`` or ``"hull"``) of a case.

    ``variant=0`` is the benchmarked data; ``variant=1`` is *new data of the same structure*
    for the warm refit: the simulation with the next seed, or for timm a random 90% of the
    models.
    """
    if case in ("paper-all", "paper-hull"):
        from scale_transfer.simulate import simulate

        df = simulate("jft-25shot", cfg.n_models, cfg.seed + variant).data
        return df, "hull" if case == "paper-hull" else "all"
    if case == "timm":
        from scale_transfer.zoo import load_timm

        df = load_timm(cfg.timm_dir).data
        models = pd.unique(df["model"])
        rng = np.random.default_rng(cfg.seed)
        if cfg.timm_models is not None and cfg.timm_models < len(models):
            models = rng.choice(models, cfg.timm_models, replace=False)
        if variant:
            rng = np.random.default_rng(cfg.seed + variant)
            models = rng.choice(models, int(round(0.9 * len(models))), replace=False)
        return df[df["model"].isin(set(models))].reset_index(drop=True), "all"
    raise ValueError(f"unknown case {case!r}; choose from {', '.join(CASES)}")


# ----------------------------------------------------------------------------- naive model
#: Priors of the naive model: (population mean's mean, its sd, between-task sd's scale).
NAIVE_PRIORS = {
    "log_k": (-1.0, 1.0, 1.0),
    "log_alpha": (1.0, 0.75, 0.5),
    "logit_e_ir": (-2.0, 1.0, 1.0),
}


def naive_model(fd: Any) -> Any:
    """Build the law transcribed as written: the reference the benchmark compares against.

    ``e_ds ~ Normal(k * e_us**alpha + e_ir, sigma)`` per group, with a non-centred
    hierarchy on ``log k``, ``log alpha`` and ``logit e_ir`` (population mean and sd, and a
    standard-normal offset per group), a per-group ``sigma ~ HalfNormal(0.05)`` as in the
    package's model, and ``e_us`` used as is (no centring around a reference error, so
    ``k`` and ``alpha`` stay strongly correlated).

    Parameters
    ----------
    fd : scale_transfer.model.FitData
        Points and groups, from :func:`scale_transfer.model.prepare_data`.

    Returns
    -------
    pymc.Model
    """
    import pymc as pm
    import pytensor.tensor as pt

    labels = [f"{s}/{t}" for s, t in zip(fd.groups.setting, fd.groups.task, strict=True)]
    with pm.Model(coords={"group": labels, "obs_id": np.arange(len(fd.e_ds))}) as model:
        e_us = pm.Data("e_us", np.exp(fd.log_e_us), dims="obs_id")
        gidx = pm.Data("group_idx", fd.group_idx, dims="obs_id")
        value = {}
        for name, (m0, s0, sd0) in NAIVE_PRIORS.items():
            mu = pm.Normal(f"{name}_mu", m0, s0)
            sd = pm.HalfNormal(f"{name}_sigma", sd0)
            z = pm.Normal(f"{name}_z", 0.0, 1.0, dims="group")
            value[name] = mu + sd * z
        k = pm.Deterministic("k", pt.exp(value["log_k"]), dims="group")
        alpha = pm.Deterministic("alpha", pt.exp(value["log_alpha"]), dims="group")
        e_ir = pm.Deterministic("e_ir", pm.math.sigmoid(value["logit_e_ir"]), dims="group")
        sigma = pm.HalfNormal("sigma", 0.05, dims="group")
        mu = k[gidx] * e_us ** alpha[gidx] + e_ir[gidx]
        pm.Normal("e_ds", mu=mu, sigma=sigma[gidx], observed=fd.e_ds, dims="obs_id")
    return model


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
    import psutil

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
        **_diagnostics_fields(d),
        "n_points": int(post.groups["n"].sum()),
        "n_groups": len(post.groups),
    }
    return rec | _sample_stats(post.dt)


def _diagnostics_fields(d: Any) -> dict[str, Any]:
    """Record fields taken from a :class:`scale_transfer.sampling.Diagnostics`."""
    return {
        "draws": d.draws,
        "chains": d.chains,
        "min_ess_bulk": d.min_ess_bulk,
        "min_ess_tail": d.min_ess_tail,
        "max_rhat": d.max_rhat,
        "divergences": d.divergences,
        "max_depth_hits": d.max_depth_hits,
        "converged": d.ok,
        "failed": list(d.failed),
    }


def _child_bayes(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Child process: one cold Bayesian fit, then (optionally) a warm one on new data."""
    t_import = time.perf_counter()
    from scale_transfer.posterior import fit
    from scale_transfer.sampling import ConvergenceWarning, SamplerConfig

    import_seconds = time.perf_counter() - t_import
    cfg = BenchConfig(**spec["config"])
    case, lik = spec["case"], spec["likelihood"]
    out = []
    for variant in (0, 1) if spec["warm"] else (0,):
        df, target = case_data(case, cfg, variant)
        sc = SamplerConfig(
            draws=cfg.draws,
            tune=cfg.tune,
            chains=cfg.chains,
            seed=cfg.seed + variant,
            progress=False,
        )
        rss0, files0 = _current_rss_bytes(), _numba_cache_files()
        c0, t0 = _cpu_seconds(), time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # recorded, not printed
            post = fit(df, target=target, likelihood=lik, sampler_config=sc)
        wall, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
        new_files = _numba_cache_files() - files0
        rec = {
            "case": case,
            "method": "bayes",
            "likelihood": lik,
            "fit": "warm" if variant else "cold",
        }
        rec |= _bayes_record(post, wall)
        rec |= {
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
        SamplerConfig,
        check_convergence,
        nutpie_draws,
    )

    import_seconds = time.perf_counter() - t_import
    cfg = BenchConfig(**spec["config"])
    case = spec["case"]
    df, target = case_data(case, cfg, 0)
    rss0, files0 = _current_rss_bytes(), _numba_cache_files()
    c0, t0 = _cpu_seconds(), time.perf_counter()
    fd = prepare_data(df, ModelConfig(target=target))
    compiled = nutpie.compile_pymc_model(naive_model(fd), backend="numba")
    t1 = time.perf_counter()
    sc = SamplerConfig(draws=cfg.naive_draws, tune=cfg.naive_tune, chains=cfg.chains,
                       seed=cfg.seed, progress=False, target_accept=0.95,
                       adaptation="diag")  # fmt: skip
    keep = nutpie_draws(compiled, sc)
    t2 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
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
        **_diagnostics_fields(d),
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
    """
    with contextlib.ExitStack() as stack:
        if spec["config"].get("numba_cache", "fresh") == "fresh":
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="st-bench-pytensor-"))
            stack.enter_context(_pytensor_flag(f"base_compiledir={tmp}"))
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
            return pool.submit(_CHILDREN[method], spec).result()


@contextlib.contextmanager
def _pytensor_flag(flag: str) -> Iterator[None]:
    """Add ``flag`` to ``PYTENSOR_FLAGS`` for the processes started meanwhile."""
    old = os.environ.get("PYTENSOR_FLAGS")
    os.environ["PYTENSOR_FLAGS"] = f"{old},{flag}" if old else flag
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PYTENSOR_FLAGS", None)
        else:
            os.environ["PYTENSOR_FLAGS"] = old


# ----------------------------------------------------------------------------- derived
def _ess_per_second(rec: dict[str, Any]) -> float:
    ess, wall = rec.get("min_ess_bulk", float("nan")), rec["wall_seconds"]
    return float(ess / wall) if np.isfinite(ess) and wall > 0 else float("nan")


def _find(records: Sequence[dict], **match: Any) -> dict | None:
    for r in records:
        if all(r.get(k) == v for k, v in match.items()):
            return r
    return None


def _ratios(records: Sequence[dict]) -> list[dict[str, Any]]:
    out = []
    for b in records:
        if b["method"] != "bayes":
            continue
        boot = _find(records, case=b["case"], method="lsq-bootstrap")
        if boot is not None:
            for kind, key in (("wall", "wall_seconds"), ("cpu", "cpu_seconds")):
                out.append(
                    {
                        "ratio": f"bayes_{kind}/bootstrap_{kind}",
                        "case": b["case"],
                        "likelihood": b["likelihood"],
                        "fit": b["fit"],
                        "compile_cache_warm": b["compile_cache_warm"],
                        "value": b[key] / boot[key],
                    }
                )
        naive = _find(records, case=b["case"], method="naive-pymc")
        if naive is not None and b["likelihood"] == "gaussian":
            kinds = (("wall", "wall_seconds"), ("sample", "sample_seconds"), ("cpu", "cpu_seconds"))
            if b["fit"] == "warm":  # the naive run paid compilation: compare sampling alone
                kinds = kinds[1:2]
            for kind, key in kinds:
                num = naive[key] / naive["min_ess_bulk"]
                den = b[key] / b["min_ess_bulk"]
                out.append(
                    {
                        "ratio": f"naive_{kind}_per_ess/bayes_{kind}_per_ess",
                        "case": b["case"],
                        "likelihood": "gaussian",
                        "fit": b["fit"],
                        "compile_cache_warm": b["compile_cache_warm"],
                        "value": num / den,
                    }
                )
    return out


def _targets(records: Sequence[dict], ratios: Sequence[dict]) -> list[dict[str, Any]]:
    t = TARGETS
    out: list[dict[str, Any]] = []

    def add(name: str, rec: dict, value: float, passed: bool, threshold: str, note: str = ""):
        out.append(
            {
                "target": name,
                "case": rec["case"],
                "likelihood": rec["likelihood"],
                "fit": rec["fit"],
                "value": float(value),
                "threshold": threshold,
                "passed": bool(passed),
                "note": note,
            }
        )

    for r in records:
        if r["method"] != "bayes":
            continue
        if r["fit"] == "cold":
            add(
                "min_ess_bulk",
                r,
                r["min_ess_bulk"],
                r["min_ess_bulk"] >= t["min_ess_bulk"],
                ">= 1000",
            )
            add("max_rhat", r, r["max_rhat"], r["max_rhat"] <= t["max_rhat"], "<= 1.01")
            add("divergences", r, r["divergences"], r["divergences"] <= 0, "== 0")
            if r["case"].startswith("paper"):
                gib = r["peak_rss_bytes"] / _GIB
                add(
                    "peak_rss_gib",
                    r,
                    gib,
                    gib < t["peak_rss_gib"],
                    "< 2 GiB",
                    "whole child process",
                )
        boot = _find(records, case=r["case"], method="lsq-bootstrap")
        if boot is not None:
            cache = "compile cache warm" if r["compile_cache_warm"] else "compile cache cold"
            add(
                "wall_vs_bootstrap_s",
                r,
                r["wall_seconds"],
                r["wall_seconds"] <= boot["wall_seconds"],
                f"<= bootstrap {boot['wall_seconds']:.1f} s",
                f"{cache}; compile {r['compile_seconds']:.1f} s included",
            )
            add(
                "cpu_vs_bootstrap_s",
                r,
                r["cpu_seconds"],
                r["cpu_seconds"] <= boot["cpu_seconds"],
                f"<= bootstrap {boot['cpu_seconds']:.1f} CPU s",
                "CPU time (user + system), less sensitive to a shared machine's load",
            )
        if r["case"] == "paper-hull" and r["fit"] == "warm":
            add(
                "hull_warm_wall_s",
                r,
                r["wall_seconds"],
                r["wall_seconds"] < t["hull_warm_wall_s"],
                "< 3 s",
                "compile cache warm" if r["compile_cache_warm"] else "cache MISSED (recompiled)",
            )
    for q in ratios:
        kind = {
            "naive_wall_per_ess/bayes_wall_per_ess": "naive_speedup",
            "naive_cpu_per_ess/bayes_cpu_per_ess": "naive_speedup_cpu",
        }.get(q["ratio"])
        if kind is not None:
            add(
                kind,
                q,
                q["value"],
                q["value"] >= t["naive_speedup"],
                ">= 20x",
                "compile cache warm" if q["compile_cache_warm"] else "compile cache cold",
            )
    return out


# ----------------------------------------------------------------------------- machine
def machine_info() -> dict[str, Any]:
    """Return cores, CPU model, memory, Python and platform of this machine."""
    import psutil

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


def _plan(cfg: BenchConfig) -> list[tuple[str, str, str | None]]:
    """(case, method, likelihood) in run order: cheap first, the costly frontier fits last."""
    plan = []
    for case in cfg.cases:
        plan.append((case, "lsq-bootstrap", None))
        if "gaussian" in cfg.likelihoods:
            plan.append((case, "bayes", "gaussian"))
        if cfg.with_naive:
            plan.append((case, "naive-pymc", None))
    for case in cfg.cases:
        if "frontier" in cfg.likelihoods:
            plan.append((case, "bayes", "frontier"))
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

    def write() -> None:
        result["ratios"] = _ratios(result["records"])
        result["targets"] = _targets(result["records"], result["ratios"])
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(_clean(result), indent=1))
        os.replace(tmp, out)

    write()
    plan = _plan(cfg)
    t_start = time.perf_counter()
    for i, (case, method, lik) in enumerate(plan, 1):
        warm = method == "bayes" and cfg.warm_for(case)
        what = f"{case} {method}" + (f" {lik}" if lik else "")
        log(
            f"[bench {i}/{len(plan)}] {what}: starting in a fresh process"
            + (" (+ warm refit)" if warm else "")
        )
        spec = {"case": case, "likelihood": lik, "warm": warm, "config": asdict(cfg)}
        recs = _in_child(method, spec)
        for r in recs:
            r["ess_per_second"] = _ess_per_second(r)
            cache = "warm" if r["compile_cache_warm"] else "cold"
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


# ----------------------------------------------------------------------------- table
def _fmt(v: Any, spec: str) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    return format(v, spec)


def format_table(result: dict[str, Any]) -> str:
    """Return the benchmark's records, ratios and targets as a readable text table."""
    rows = []
    for r in result["records"]:
        rows.append(
            {
                "case": r["case"],
                "method": r["method"],
                "likelihood": r["likelihood"],
                "fit": r["fit"],
                "cache": "warm" if r["compile_cache_warm"] else "cold",
                "wall_s": _fmt(r["wall_seconds"], ".1f"),
                "compile_s": _fmt(r["compile_seconds"], ".1f"),
                "sample_s": _fmt(r["sample_seconds"], ".1f"),
                "chains x draws": f"{r['chains']}x{r['draws']}",
                "ess_bulk": _fmt(r["min_ess_bulk"], ".0f"),
                "ess_tail": _fmt(r["min_ess_tail"], ".0f"),
                "rhat": _fmt(r["max_rhat"], ".3f"),
                "div": r["divergences"],
                "depth_hits": r["max_depth_hits"],
                "mean_depth": _fmt(r["mean_tree_depth"], ".1f"),
                "step": _fmt(r["step_size"], ".3f"),
                "ess_per_s": _fmt(r["ess_per_second"], ".1f"),
                "cpu_s": _fmt(r.get("cpu_seconds"), ".0f"),
                "load": _fmt(r.get("load_average"), ".1f"),
                "peak_MiB": _fmt(r["peak_rss_bytes"] / 2**20, ".0f"),
            }
        )
    lines = []
    with pd.option_context("display.width", 250, "display.max_columns", 50):
        lines.append(pd.DataFrame(rows).to_string(index=False) if rows else "(no records)")
        if result["ratios"]:
            q = pd.DataFrame(result["ratios"])
            q["value"] = q["value"].map(lambda v: _fmt(v, ".2f"))
            lines += ["", "ratios:", q.to_string(index=False)]
        if result["targets"]:
            t = pd.DataFrame(result["targets"])
            t["value"] = t["value"].map(lambda v: _fmt(v, ".3g"))
            t["passed"] = t["passed"].map({True: "PASS", False: "FAIL"})
            lines += ["", "targets:", t.to_string(index=False)]
    m = result["machine"]
    lines += [
        "",
        f"machine: {m['cores']} cores, {m['cpu_model']}, {m['memory_bytes'] / _GIB:.1f} GiB, "
        f"Python {m['python']}, load average at start {m['load_average_start']}",
    ]
    if not result["config"]["at_target_settings"]:
        lines.append(
            "note: not the targets' settings (4 chains x 1000 draws); targets are indicative"
        )
    if not result.get("complete", False):
        lines.append("note: INCOMPLETE run")
    return "\n".join(lines)


def iter_cases(cases: Iterable[str] | None) -> tuple[str, ...]:
    """Return the cases to run, in run order."""
    if not cases:
        return CASES
    return tuple(c for c in CASES if c in set(cases))
