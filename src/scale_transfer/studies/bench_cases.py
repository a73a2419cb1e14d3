"""What the benchmark runs: its cases, settings and thresholds, and the naive reference model."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scale_transfer.config import DEFAULT_DRAWS

if TYPE_CHECKING:
    from scale_transfer.config import SamplerConfig

__all__ = [
    "CASES",
    "FRONTIER_ONLY",
    "FRONTIER_OPT_IN",
    "TIMM_CASES",
    "GIB",
    "LIKELIHOODS",
    "METHODS",
    "NAIVE_PRIORS",
    "TARGETS",
    "BenchConfig",
    "case_data",
    "iter_cases",
    "naive_model",
]

#: Cases, in the order they run (cheap first).
CASES = ("paper-hull", "timm", "paper-all", "timm-top", "paper-top")
#: Cases with a frontier fit only: ``paper-top`` and ``timm-top`` are ``target="top"``, the
#: frontier fit that ``scale-transfer fit`` adds to a fit of all points; it needs the frontier
#: likelihood, and has no least-squares or naive counterpart.
FRONTIER_ONLY = ("timm-top", "paper-top")
#: Cases whose frontier fit runs only when ``frontier_cases`` names them: the frontier
#: likelihood on all 24,000 points of ``paper-all`` takes over 20 minutes and on all of
#: timm over 10 (``paper-top`` and ``timm-top`` are the frontier fits the package runs);
#: on hull points it samples badly, and the package warns against it.
FRONTIER_OPT_IN = ("paper-hull", "timm", "paper-all")
#: Cases on timm's data: they run only with a timm results folder.
TIMM_CASES = ("timm", "timm-top")
#: Each case's fit target (``"all"`` where not named).
CASE_TARGETS = {"paper-hull": "hull", "timm-top": "top", "paper-top": "top"}
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
    "cold_vs_bootstrap": 2.0,  # first fit of a later process: wall / bootstrap wall <=
    "warm_vs_bootstrap": 1.0,  # warm refit: wall / bootstrap wall <=
    "peak_rss_gib": 2.0,  # <
    "top_wall_s": 120.0,  # paper-top, first fit in a process, compilation included: <=
}
GIB = 1024.0**3


@dataclass
class BenchConfig:
    """What the benchmark runs.

    Parameters
    ----------
    draws, tune, chains : int
        Sampler settings of the Bayesian fits (``draws`` and ``tune`` None: the package's
        defaults per fit, ``"auto"``: :data:`~scale_transfer.config.TOP_DRAWS` draws after 400
        tuning steps for the top cases, 1,000 after 1,000 otherwise); kept as fields, the
        JSON's ``config``, and handed to the fits as one :meth:`sampler_config`.
    n_boot : int
        Bootstrap resamples per task of the least-squares fit.
    n_models : int
        Simulated models of the paper cases.
    timm_dir : str or None
        timm results folder; the ``timm`` and ``timm-top`` cases run only when given.
    timm_models : int or None
        Subsample of timm models (None: all).
    with_naive : bool
        Also run the naive PyMC model (Gaussian likelihood).
    naive_draws, naive_tune : int or None
        Draws and tuning steps of the naive model (default: as the Bayesian fit); the
        comparison is per effective sample, so fewer draws keep it fair.
    cases, likelihoods : tuple of str
        Which cases and likelihoods to run.
    frontier_cases : tuple of str, optional
        The cases of ``cases`` whose frontier fit runs (default: ``timm-top`` and
        ``paper-top``, all but :data:`FRONTIER_OPT_IN`). ``timm-top`` and ``paper-top`` run
        only the frontier fit.
    warm_refit : {"all", "hull", "none"}
        Which cases get a second, warm fit (same compiled model, new data) in the child.
    numba_cache : {"fresh", "shared"}
        PyTensor keeps numba-compiled functions on disk (``config.base_compiledir``/numba)
        and reuses them in later processes. ``"fresh"`` (default) gives every child an
        empty cache folder of its own, so a cold fit compiles everything, as on a
        user's first run; ``"shared"`` uses the user's folder as it is (what a user's
        later runs see). Each record counts the files its fits added to the cache.
    compile_cache : {"both", "empty", "user"}
        The package's persistent cache of compiled models (:mod:`scale_transfer.compile_cache`).
        ``"both"`` (default): each Gaussian case runs in two children, one after the other,
        sharing a cache folder of the benchmark's own: the first starts with it empty (the
        first fit after install, ``fit: first``), the second with what the first stored
        (the first fit of a later process, ``fit: cold``, then the warm refit); other
        likelihoods run once, from an empty folder. ``"empty"``: one child per fit, from an
        empty folder. ``"user"``: one child, with the user's cache folder as it is.
    quick : bool
        Small sizes, for tests.
    seed : int
        Seed of the first fit (the warm fit uses ``seed + 1``).
    """

    draws: int | None = None
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
    frontier_cases: tuple[str, ...] | None = None
    warm_refit: str = "all"
    numba_cache: str = "fresh"
    compile_cache: str = "both"
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
        if self.naive_draws is None:
            self.naive_draws = DEFAULT_DRAWS if self.draws is None else self.draws
        if self.naive_tune is None:
            self.naive_tune = self.naive_draws
        self.cases = tuple(self.cases)
        self.likelihoods = tuple(self.likelihoods)
        if self.frontier_cases is None:
            self.frontier_cases = tuple(c for c in self.cases if c not in FRONTIER_OPT_IN)
        self.frontier_cases = tuple(self.frontier_cases)
        bad = [c for c in (*self.cases, *self.frontier_cases) if c not in CASES]
        if bad:
            raise ValueError(f"unknown case(s) {bad}; choose from {', '.join(CASES)}")
        bad = [x for x in self.likelihoods if x not in LIKELIHOODS]
        if bad:
            raise ValueError(f"unknown likelihood(s) {bad}; choose from {', '.join(LIKELIHOODS)}")
        if self.warm_refit not in ("all", "hull", "none"):
            raise ValueError(f"warm_refit must be all, hull or none; got {self.warm_refit!r}")
        if self.numba_cache not in ("fresh", "shared"):
            raise ValueError(f"numba_cache must be fresh or shared; got {self.numba_cache!r}")
        if self.compile_cache not in ("both", "empty", "user"):
            raise ValueError(
                f"compile_cache must be both, empty or user; got {self.compile_cache!r}"
            )
        if self.timm_dir is None:
            self.cases = tuple(c for c in self.cases if c not in TIMM_CASES)
        self.frontier_cases = tuple(c for c in self.frontier_cases if c in self.cases)
        for name in ("draws", "tune", "chains", "n_models", "naive_draws", "naive_tune"):
            if name in ("draws", "tune") and getattr(self, name) is None:  # default per fit
                continue
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        if self.n_boot < 1:
            raise ValueError(f"n_boot must be >= 1; got {self.n_boot}")

    def sampler_config(self, variant: int = 0, *, naive: bool = False) -> SamplerConfig:
        """Return the sampler settings of a fit: the Bayesian one's, or the naive model's.

        ``variant`` 1 is the warm refit (seed + 1). The naive model takes its own draws and
        tuning steps and nutpie's diagonal mass matrix; ``target_accept`` stays ``"auto"``
        for the fit to resolve.
        """
        from scale_transfer.config import SamplerConfig

        tune = "auto" if self.tune is None else self.tune
        draws = "auto" if self.draws is None else self.draws
        sc = SamplerConfig(draws=draws, tune=tune, chains=self.chains,
                           seed=self.seed + variant, progress=False)  # fmt: skip
        if naive:
            sc = replace(sc, draws=self.naive_draws, tune=self.naive_tune, adaptation="diag")
        return sc

    @property
    def at_target_settings(self) -> bool:
        """Return True when the run uses the targets' settings (4 chains x 1000 draws or more)."""
        draws = DEFAULT_DRAWS if self.draws is None else self.draws
        return (not self.quick) and self.chains >= 4 and draws >= 1000

    def package_cache_runs(self, likelihood: str) -> tuple[str, ...]:
        """Return the package cache's state in each child of a Bayesian fit, in run order."""
        if self.compile_cache == "user":
            return ("user",)
        if self.compile_cache == "both" and likelihood == "gaussian":
            return ("empty", "filled")
        return ("empty",)

    def warm_for(self, case: str) -> bool:
        """Return whether ``case`` gets a warm refit (never a top fit: sampling dominates)."""
        if case in FRONTIER_ONLY:
            return False
        return self.warm_refit == "all" or (self.warm_refit == "hull" and case == "paper-hull")


# ----------------------------------------------------------------------------- data
def case_data(case: str, cfg: BenchConfig, variant: int = 0) -> tuple[pd.DataFrame, str]:
    """Return the tidy data and the target (``"all"``, ``"hull"`` or ``"top"``) of a case.

    ``variant=0`` is the benchmarked data; ``variant=1`` is *new data of the same structure*
    for the warm refit: the simulation with the next seed, or for timm a random 90% of the
    models.
    """
    if case in ("paper-all", "paper-hull", "paper-top"):
        from scale_transfer.simulate import simulate

        df = simulate("jft-25shot", cfg.n_models, cfg.seed + variant).data
        return df, CASE_TARGETS.get(case, "all")
    if case in TIMM_CASES:
        from scale_transfer.zoo import load_timm

        df = load_timm(cfg.timm_dir).data
        models = pd.unique(df["model"])
        rng = np.random.default_rng(cfg.seed)
        if cfg.timm_models is not None and cfg.timm_models < len(models):
            models = rng.choice(models, cfg.timm_models, replace=False)
        if variant:
            rng = np.random.default_rng(cfg.seed + variant)
            models = rng.choice(models, int(round(0.9 * len(models))), replace=False)
        return df[df["model"].isin(set(models))].reset_index(drop=True), CASE_TARGETS.get(
            case, "all"
        )
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


def iter_cases(cases: Iterable[str] | None) -> tuple[str, ...]:
    """Return the cases to run, in run order."""
    if not cases:
        return CASES
    return tuple(c for c in CASES if c in set(cases))
