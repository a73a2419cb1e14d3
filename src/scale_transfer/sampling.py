"""Sampling: compile a model once, reuse it with new data, run NUTS, check convergence."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from scale_transfer.model import FitData, ModelConfig, build_model, is_centered

__all__ = [
    "ConvergenceError",
    "ConvergenceWarning",
    "Diagnostics",
    "SamplerConfig",
    "check_convergence",
    "sample",
]

#: Variables whose convergence is checked and reported.
CHECK_VARS = ("k", "alpha", "e_ir", "sigma")


class ConvergenceWarning(UserWarning):
    """The sampler did not converge: R-hat, ESS or divergences failed their thresholds."""


class ConvergenceError(RuntimeError):
    """Raised instead of :class:`ConvergenceWarning` in strict mode."""


@dataclass(frozen=True)
class SamplerConfig:
    """How to sample.

    Parameters
    ----------
    draws, tune, chains : int
        Draws kept and tuning steps per chain, number of chains.
    seed : int
        Random seed.
    sampler : {"nutpie", "numpyro"}
        NUTS implementation. nutpie (numba backend) is the default; numpyro needs JAX.
    cores : int or None
        Chains run in parallel (default: all cores).
    target_accept : float
        NUTS target acceptance rate.
    progress : bool
        Show a progress bar.
    strict : bool
        Raise :class:`ConvergenceError` instead of warning when convergence fails.
    """

    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    seed: int = 0
    sampler: str = "nutpie"
    cores: int | None = None
    target_accept: float = 0.95
    progress: bool = True
    strict: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a dict."""
        return dict(self.__dict__)


@dataclass
class Diagnostics:
    """Convergence summary of one fit."""

    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    max_depth_hits: int
    draws: int
    chains: int
    failed: list[str] = field(default_factory=list)
    compile_seconds: float = float("nan")
    sample_seconds: float = float("nan")
    compile_cached: bool = False

    @property
    def ok(self) -> bool:
        """Return True when every check passed."""
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        """Return the fields (and ``ok``) as a dict."""
        d = dict(self.__dict__)
        d["ok"] = self.ok
        return d

    def verdict(self) -> str:
        """Return a one-paragraph verdict."""
        head = "converged" if self.ok else "NOT CONVERGED"
        text = (
            f"{head}: max R-hat {self.max_rhat:.3f}, min bulk ESS {self.min_ess_bulk:.0f}, "
            f"min tail ESS {self.min_ess_tail:.0f}, {self.divergences} divergences, "
            f"{self.max_depth_hits} max-tree-depth hits ({self.chains} chains x {self.draws} draws)"
        )
        if self.failed:
            text += ". " + " ".join(self.failed)
        return text


# compiled models, keyed by structure and groups; reused with new data
_COMPILED: dict[tuple, Any] = {}


def _data_updates(fd: FitData) -> dict[str, np.ndarray]:
    return {
        "log_e_us": fd.log_e_us,
        "e_ds_obs": fd.e_ds,
        "group_idx": fd.group_idx,
        "log_e_ref": fd.groups["log_e_ref"].to_numpy(float),
    }


def _cache_key(fd: FitData, config: ModelConfig, backend: str) -> tuple:
    return (
        config.structure_hash(),
        tuple(fd.groups["setting"]),
        tuple(fd.groups["task"]),
        is_centered(config, fd),
        backend,
    )


def compiled_model(fd: FitData, config: ModelConfig, backend: str = "numba") -> tuple[Any, bool]:
    """Return a nutpie-compiled model for these data, and whether it came from the cache.

    The model is compiled once per structure (config, groups, parametrization) and then
    reused with new data through ``with_data``: compilation is paid once per process.
    """
    import nutpie

    key = _cache_key(fd, config, backend)
    cached = key in _COMPILED
    if not cached:
        model = build_model(fd, config)
        _COMPILED[key] = nutpie.compile_pymc_model(model, backend=backend, freeze_model=False)
    return _COMPILED[key].with_data(**_data_updates(fd)), cached


def clear_cache() -> None:
    """Forget compiled models."""
    _COMPILED.clear()


def sample(fd: FitData, config: ModelConfig, sc: SamplerConfig) -> tuple[xr.DataTree, Diagnostics]:
    """Sample the posterior of the model on these data.

    Parameters
    ----------
    fd : FitData
        From :func:`scale_transfer.model.prepare_data`.
    config : ModelConfig
        Model structure and priors.
    sc : SamplerConfig
        Sampler settings.

    Returns
    -------
    (xarray.DataTree, Diagnostics)
        The posterior (groups ``posterior`` and ``sample_stats``) and its diagnostics.
    """
    t0 = time.perf_counter()
    if sc.sampler == "nutpie":
        import nutpie

        compiled, cached = compiled_model(fd, config)
        t1 = time.perf_counter()
        dt = nutpie.sample(
            compiled,
            draws=sc.draws,
            tune=sc.tune,
            chains=sc.chains,
            cores=sc.cores,
            seed=sc.seed,
            save_warmup=False,
            progress_bar=sc.progress,
            target_accept=sc.target_accept,
        )
    elif sc.sampler == "numpyro":
        import pymc as pm

        cached = False
        model = build_model(fd, config)
        t1 = time.perf_counter()
        dt = pm.sample(
            draws=sc.draws,
            tune=sc.tune,
            chains=sc.chains,
            random_seed=sc.seed,
            model=model,
            nuts_sampler="numpyro",
            progressbar=sc.progress,
            target_accept=sc.target_accept,
            compute_convergence_checks=False,
        )
    else:
        raise ValueError(f"sampler must be 'nutpie' or 'numpyro'; got {sc.sampler!r}")
    t2 = time.perf_counter()
    out = xr.DataTree()
    out["posterior"] = dt["posterior"]
    out["sample_stats"] = dt["sample_stats"]
    diag = check_convergence(out, strict=sc.strict)
    diag.compile_seconds, diag.sample_seconds, diag.compile_cached = t1 - t0, t2 - t1, cached
    return out, diag


def _stat(dt: xr.DataTree, *names: str) -> xr.DataArray | None:
    ss = dt["sample_stats"]
    for n in names:
        if n in ss.data_vars:
            return ss[n]
    return None


def check_convergence(
    dt: xr.DataTree,
    *,
    rhat_max: float = 1.01,
    ess_min: float = 400.0,
    strict: bool = False,
    var_names: tuple[str, ...] = CHECK_VARS,
) -> Diagnostics:
    """Check R-hat, bulk and tail ESS and divergences; warn (or raise) on failure.

    Parameters
    ----------
    dt : xarray.DataTree
        With ``posterior`` and ``sample_stats``.
    rhat_max : float
        Largest acceptable rank-normalized split R-hat.
    ess_min : float
        Smallest acceptable bulk and tail ESS (over all chains; scaled down for short runs
        to 100 per chain).
    strict : bool
        Raise :class:`ConvergenceError` instead of warning.
    var_names : tuple of str
        Variables checked.

    Returns
    -------
    Diagnostics
    """
    post = dt["posterior"].to_dataset()
    names = [v for v in var_names if v in post.data_vars]
    sub = post[names]
    nchain, ndraw = post.sizes["chain"], post.sizes["draw"]
    rhat = az.rhat(sub)
    ess_b = az.ess(sub, method="bulk")
    ess_t = az.ess(sub, method="tail")
    div = _stat(dt, "diverging")
    ndiv = int(div.sum()) if div is not None else 0
    depth = _stat(dt, "maxdepth_reached", "reached_max_treedepth")
    ndepth = int(depth.sum()) if depth is not None else 0

    def worst(ds: xr.Dataset, fn: str) -> tuple[float, str]:
        vals = {}
        for v in ds.data_vars:
            arr = ds[v]
            if arr.size == 0:
                continue
            s = arr.to_series() if arr.ndim else pd.Series([float(arr)], index=[v])
            s = s.dropna()
            if s.empty:
                continue
            idx = s.idxmax() if fn == "max" else s.idxmin()
            label = v if arr.ndim == 0 else f"{v}[{idx}]"
            vals[label] = float(s.max() if fn == "max" else s.min())
        if not vals:
            return float("nan"), ""
        pick = max(vals, key=vals.get) if fn == "max" else min(vals, key=vals.get)
        return vals[pick], pick

    max_rhat, rhat_at = worst(rhat, "max")
    min_bulk, bulk_at = worst(ess_b, "min")
    min_tail, tail_at = worst(ess_t, "min")
    need = min(ess_min, 100.0 * nchain)
    failed = []
    if nchain > 1 and max_rhat > rhat_max:
        failed.append(
            f"R-hat {max_rhat:.3f} > {rhat_max} at {rhat_at}: run longer (more tune/draws) "
            "or check the parametrization (--centered)."
        )
    if min_bulk < need:
        failed.append(f"bulk ESS {min_bulk:.0f} < {need:.0f} at {bulk_at}: draw more.")
    if min_tail < need:
        failed.append(f"tail ESS {min_tail:.0f} < {need:.0f} at {tail_at}: draw more.")
    if ndiv:
        failed.append(
            f"{ndiv} divergent transitions: raise target_accept, or switch centring "
            "(centered=True for data-rich tasks, False for few points)."
        )
    diag = Diagnostics(
        max_rhat=max_rhat,
        min_ess_bulk=min_bulk,
        min_ess_tail=min_tail,
        divergences=ndiv,
        max_depth_hits=ndepth,
        draws=ndraw,
        chains=nchain,
        failed=failed,
    )
    if failed:
        msg = "scale-transfer: the sampler did not converge. " + " ".join(failed)
        if strict:
            raise ConvergenceError(msg)
        warnings.warn(msg, ConvergenceWarning, stacklevel=2)
    return diag
