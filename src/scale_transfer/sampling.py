"""Sampling: compile a model once, reuse it with new data, run NUTS, check convergence."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import xarray as xr
from scipy import special

from scale_transfer import compile_cache, suffstats
from scale_transfer.config import (
    DEFAULT_DRAWS,
    DEFAULT_MAX_DEPTH,
    DEFAULT_TUNE,
    ODDS_PARAMS,
    ODDS_UNPOOLED,
    PARAMS,
    TARGET_ACCEPT_DEFAULT,
    TARGET_ACCEPT_HIGH,
    TOP_DRAWS,
    TOP_MAX_DEPTH,
    TOP_TUNE,
    ModelConfig,
    SamplerConfig,
)
from scale_transfer.convergence import (
    CHECK_VARS,
    ConvergenceError,
    ConvergenceWarning,
    Diagnostics,
    check_convergence,
)
from scale_transfer.model import (
    FitData,
    anchor_dim,
    build_model,
    effect_level_parameters,
    is_centered,
    uses_anchor,
)
from scale_transfer.publish import check_interrupted, interrupts_held

__all__ = [
    "CHECK_VARS",
    "ConvergenceError",
    "ConvergenceWarning",
    "LOW_RANK_MAX_EFFECTS",
    "Diagnostics",
    "SamplerConfig",
    "SamplingTimeout",
    "check_convergence",
    "effect_level_parameters",
    "init_jitter",
    "jittered_start",
    "lsq_start",
    "resolve_sampler_config",
    "sample",
    "transform_pair",
]


class SamplingTimeout(RuntimeError):
    """Sampling ran past ``SamplerConfig.time_limit`` and was stopped."""


# compiled models, keyed by structure and groups; reused with new data
_COMPILED: dict[tuple, Any] = {}


def _data_updates(fd: FitData, config: ModelConfig, stats: bool = False) -> dict[str, np.ndarray]:
    if fd.logit_us is not None:  # the odds law
        return {
            "logit_us_ref": fd.groups["logit_us_ref"].to_numpy(float),
            "logit_us_top": fd.groups["logit_us_top"].to_numpy(float),
            "logit_us": fd.logit_us,
            "logit_ds_obs": fd.logit_ds,
            "group_idx": fd.group_idx,
        }
    ref = {"log_e_ref": fd.groups["log_e_ref"].to_numpy(float)}
    if stats:
        return ref | suffstats.moments(fd)
    points = {"log_e_us": fd.log_e_us, "e_ds_obs": fd.e_ds, "group_idx": fd.group_idx}
    if fd.e_ds_cut is not None:  # target="top"
        points["e_ds_cut"] = fd.e_ds_cut
        if uses_anchor(config, fd):
            ref["log_e_best"] = fd.groups["log_e_best"].to_numpy(float)
    return ref | points


def _uses_stats(fd: FitData, config: ModelConfig, exact: bool = False) -> bool:
    """Whether the nutpie model of these data is the sufficient-statistics one."""
    if getattr(config, "law", "error") == "odds":
        return False
    return not exact and suffstats.use_summary_stats(fd, config)


def _cache_key(fd: FitData, config: ModelConfig, backend: str, exact: bool = False) -> tuple:
    stats = _uses_stats(fd, config, exact)
    # centring as resolved for these data: a config that names it and one that resolves
    # to it ("auto") build the same graph (the leave-future-out refits fix it)
    resolved = dataclasses.replace(config, centered=is_centered(config, fd))
    return (
        resolved.structure_hash(),
        tuple(fd.groups["setting"]),
        tuple(fd.groups["task"]),
        is_centered(config, fd),
        backend,
        # the stats model has other data; its grid's shape is fixed by these constants
        (suffstats.GRID_SIZE, suffstats.GRID_TERMS, suffstats.GRID_STEP) if stats else None,
    )


def _compiled_with_layout(
    fd: FitData, config: ModelConfig, backend: str, *, exact: bool = False
) -> tuple[Any, list, bool]:
    """Return the nutpie-compiled model for these data, its start layout, and cache use.

    The model is compiled once per structure (config, groups, parametrization, and whether
    the likelihood comes from sufficient statistics) and then reused with new data through
    ``with_data``: compilation is paid once per process. ``exact=True`` forces the
    per-point likelihood.
    """
    import nutpie

    stats = _uses_stats(fd, config, exact)
    key = _cache_key(fd, config, backend, exact)
    if config.effects:
        # the effects' levels and indices are part of the compiled graph, not data that
        # ``with_data`` swaps in: never reuse a compiled model for them
        _COMPILED.pop(key, None)
    cached = key in _COMPILED
    if not cached:
        # a Ctrl-C inside numba's compiler can crash the process: deliver it afterwards
        with interrupts_held():
            model = build_model(fd, config, for_sampling=stats)
            if backend == "numba":  # compiled once per machine: later processes load it
                compiled, _ = compile_cache.compile_model(model)
            else:
                compiled = nutpie.compile_pymc_model(model, backend=backend, freeze_model=False)
            _COMPILED[key] = (compiled, _layout(model, compiled))
    compiled, layout = _COMPILED[key]
    return compiled.with_data(**_data_updates(fd, config, stats)), layout, cached


def prepared_model(
    fd: FitData,
    config: ModelConfig,
    sc: SamplerConfig,
    *,
    exact: bool = False,
    start: dict[str, np.ndarray] | None = None,
) -> tuple[Any, bool]:
    """Return the nutpie-compiled model for these data, chains started as ``sc.init`` says.

    With ``init="lsq"`` the chains start at ``start`` (default: :func:`lsq_start`),
    jittered per chain. Also returns whether the compiled model came from the cache.
    """
    compiled, layout, cached = _compiled_with_layout(fd, config, "numba", exact=exact)
    if sc.init == "lsq":
        start = lsq_start(fd, config) if start is None else start
        init = _initial_point_fn(compiled.initial_point_func, layout, start, init_jitter(config))
        compiled = dataclasses.replace(compiled, initial_point_func=init)
    return compiled, cached


def clear_cache() -> None:
    """Forget compiled models."""
    _COMPILED.clear()


#: The odds law's ``adaptation="auto"`` is ``"diag"`` where model-attribute effects of named
#: levels add more than this many parameters (levels x groups); see :func:`resolve_adaptation`.
LOW_RANK_MAX_EFFECTS = 300


def resolve_adaptation(
    sc: SamplerConfig, config: ModelConfig, fd: FitData | None = None
) -> SamplerConfig:
    """Return ``sc`` with ``adaptation="auto"`` resolved for this model (and data).

    The frontier likelihood gets ``"low_rank"`` (its gap parameters trade off with the
    law's; a diagonal mass matrix then needs mean tree depth 6.4-7.6), and so does the odds
    law (its anchors' rise and the scatter's slope correlate; on timm 15 leapfrog steps per
    draw against 19 with ``"diag"``, and on the scaling benchmark R-hat 1.005 against 1.011
    at seed 0), every other model ``"diag"``. The exception: an odds law whose effects of
    named levels add more than :data:`LOW_RANK_MAX_EFFECTS` parameters (``fd`` given) gets
    ``"diag"``. With timm's 143 families (715 level effects, 768 parameters; top 10% held out,
    4 x 1,000 draws, seed 0) the low-rank adaptation spent 250-480 leapfrog steps per draw
    in its first 100-150 tuning steps and took 365 s to sample (R-hat 1.007, bulk ESS 555),
    the diagonal one 94 s (R-hat 1.004, bulk ESS 847); with the scaling benchmark's 6 runs
    (55 level effects, 129 parameters) the low-rank one converged (R-hat 1.004) where the
    diagonal one did not (1.014; docs/validation.md).
    """
    if sc.adaptation != "auto":
        return sc
    chosen = "low_rank" if config.likelihood == "frontier" or config.law == "odds" else "diag"
    if (
        config.law == "odds"
        and fd is not None
        and effect_level_parameters(fd) > LOW_RANK_MAX_EFFECTS
    ):
        chosen = "diag"
    return dataclasses.replace(sc, adaptation=chosen)


def resolve_sampler_config(sc: SamplerConfig, fd: FitData, config: ModelConfig) -> SamplerConfig:
    """Return ``sc`` with every ``"auto"`` resolved for this model and data.

    The one place where ``"auto"`` settings become values: :func:`resolve_adaptation`,
    :func:`resolve_target_accept` and :func:`resolve_tuning`. Resolving twice changes
    nothing.
    """
    sc = resolve_target_accept(resolve_adaptation(sc, config, fd), fd, config)
    return resolve_tuning(sc, config)


def resolve_tuning(sc: SamplerConfig, config: ModelConfig) -> SamplerConfig:
    """Return ``sc`` with ``draws``, ``tune`` and ``max_depth`` ``"auto"`` resolved for this model.

    A top fit (``target="top"``) gets :data:`~scale_transfer.config.TOP_DRAWS` draws,
    :data:`~scale_transfer.config.TOP_TUNE` tuning steps and a largest tree depth of
    :data:`~scale_transfer.config.TOP_MAX_DEPTH`, other fits
    :data:`~scale_transfer.config.DEFAULT_DRAWS`,
    :data:`~scale_transfer.config.DEFAULT_TUNE` and nutpie's
    :data:`~scale_transfer.config.DEFAULT_MAX_DEPTH`.
    """
    top = config.target == "top"
    if sc.draws == "auto":
        sc = dataclasses.replace(sc, draws=TOP_DRAWS if top else DEFAULT_DRAWS)
    if sc.tune == "auto":
        sc = dataclasses.replace(sc, tune=TOP_TUNE if top else DEFAULT_TUNE)
    if sc.max_depth == "auto":
        sc = dataclasses.replace(sc, max_depth=TOP_MAX_DEPTH if top else DEFAULT_MAX_DEPTH)
    return sc


def resolve_target_accept(sc: SamplerConfig, fd: FitData, config: ModelConfig) -> SamplerConfig:
    """Return ``sc`` with ``target_accept="auto"`` resolved for this model and data."""
    if sc.target_accept != "auto":
        return sc
    # the frontier likelihood of the best of each US bin (target="top") converged at the
    # default: 0.9 left divergent transitions in 3 of 6 fits (docs/calibration.md)
    frontier = config.likelihood == "frontier" and config.target != "top"
    high = frontier or (sc.sampler == "nutpie" and _uses_stats(fd, config))
    chosen = TARGET_ACCEPT_HIGH if high else TARGET_ACCEPT_DEFAULT
    return dataclasses.replace(sc, target_accept=chosen)


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

    Notes
    -----
    With nutpie, a Gaussian model may be sampled from sufficient statistics
    (``config.summary_stats``, :mod:`scale_transfer.suffstats`). That likelihood is exact
    for ``alpha <= ALPHA_MAX`` and ``-inf`` above; if any draw has ``alpha`` above
    ``suffstats.ALPHA_GUARD`` the fit warns (:class:`~scale_transfer.suffstats.SummaryStatsWarning`)
    and is sampled again with the per-point likelihood, whose draws are returned.
    """
    t0 = time.perf_counter()
    sc = resolve_sampler_config(sc, fd, config)
    if sc.sampler == "nutpie":
        start = lsq_start(fd, config) if sc.init == "lsq" else None
        exact = False
        while True:
            compiled, cached = prepared_model(fd, config, sc, exact=exact, start=start)
            t1 = time.perf_counter()
            dt = nutpie_draws(compiled, sc)
            # the stats model ends at alpha = ALPHA_MAX: draws near there are redone exactly
            stats_used = _uses_stats(fd, config, exact)
            if not stats_used or not suffstats.guard(dt["posterior"]):
                break
            exact = True
    else:  # numpyro (SamplerConfig refuses any other name)
        import pymc as pm

        if sc.time_limit is not None:
            raise ValueError("time_limit works with the nutpie sampler only")

        cached = stats_used = False
        model = build_model(fd, config)
        initvals = None
        if sc.init == "lsq":
            start = lsq_start(fd, config)
            rng = np.random.default_rng(sc.seed)
            jitter = init_jitter(config)
            initvals = [jittered_start(model, start, rng, jitter) for _ in range(sc.chains)]
        import jax

        # one JAX device (a GPU, or a CPU by default) runs the chains as one vectorized
        # program; numpyro's "parallel" would draw them one after the other there
        chain_method = "parallel" if jax.local_device_count() >= sc.chains else "vectorized"
        t1 = time.perf_counter()
        # progress=False is quiet, as with nutpie: PyMC logs the sampled variables and a
        # short-chain notice (this package checks convergence itself)
        quiet = contextlib.nullcontext() if sc.progress else _logger_level("pymc", logging.ERROR)
        with quiet:
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
                initvals=initvals,
                nuts={"chain_method": chain_method},
            )
    t2 = time.perf_counter()
    out = _kept_groups(dt)
    diag = check_convergence(
        out,
        var_names=check_vars(config),
        strict=sc.strict,
        target_accept=sc.target_accept,
        expected=(sc.chains, sc.draws),
    )
    diag.compile_seconds, diag.sample_seconds, diag.compile_cached = t1 - t0, t2 - t1, cached
    diag.summary_stats = stats_used
    return out, diag


# ----------------------------------------------------------------------------- starts
#: Half-width of the uniform jitter (unconstrained scale) around the least-squares start.
INIT_JITTER = 0.3
#: A top fit's start for each group's mean gap: this many times the kept points' mean
#: distance below their cut.
TOP_GAP_START = 4.0
#: A top fit starts its frontier this many residual sds (of the least-squares curve through
#: the kept points) below that curve, in error.
TOP_START_DROP = 2.0
#: A top fit's jitter: its frontier is pinned to a few thousandths, and at
#: :data:`INIT_JITTER` the starts' log density fell from about +19,000 (the start itself) to
#: between -10,000 and -360,000 (jft-25shot, 3,000 models, seeds 3 and 5), where chains
#: stalled in tuning; at 0.05 it stays above +16,000.
TOP_INIT_JITTER = 0.05


def init_jitter(config: ModelConfig) -> float:
    """Half-width of the start's uniform jitter on the unconstrained scale for this model."""
    return TOP_INIT_JITTER if config.target == "top" else INIT_JITTER


def lsq_start(fd: FitData, config: ModelConfig) -> dict[str, np.ndarray]:
    """Return starting values (constrained scale, by name) from per-group least squares.

    Each group's law is fitted by :func:`scale_transfer.lsq.fit_lsq`; its ``k``, ``alpha``,
    ``e_ir`` and residual sd map to ``log_level``, ``log_alpha``, ``logit_e_ir`` and
    ``sigma``, and the population parameters start at the mean and spread of the groups.
    A group the least squares cannot fit (fewer than 4 points, a failed fit) starts at the
    mean of the others. Variables not named here keep PyMC's default start.
    """
    if getattr(config, "law", "error") == "odds":
        return odds_start(fd, config)
    from scale_transfer.lsq import fit_lsq

    n_groups = len(fd.groups)
    vals = np.full((n_groups, 4), np.nan)
    for g in range(n_groups):
        m = fd.group_idx == g
        if m.sum() < 4:
            continue
        try:
            f = fit_lsq(1.0 - np.exp(fd.log_e_us[m]), 1.0 - fd.e_ds[m], n_starts=2)
        except ValueError:
            continue
        if not (np.isfinite([f.k, f.alpha, f.e_ir, f.sigma]).all() and f.k > 0 and f.alpha > 0):
            continue
        log_ref = fd.groups["log_e_ref"].iloc[g]
        e_ir = float(np.clip(f.e_ir, 1e-3, 0.99))
        vals[g] = (np.log(f.k) + f.alpha * log_ref, np.log(f.alpha), np.log(e_ir / (1 - e_ir)),
                   max(f.sigma, 1e-4))  # fmt: skip
    if np.isnan(vals).all():
        return {}
    if config.likelihood == "frontier" and fd.e_ds_cut is not None:
        # the curve through the best points of each bin runs through their middle; the
        # frontier lies under them all (in error): start it that far lower, or the points
        # below it cost the start tens of thousands in log density (measured: chains started
        # through the middle stalled in tuning with a collapsed step size)
        e_ir = special.expit(vals[:, 2]) - TOP_START_DROP * vals[:, 3]
        vals[:, 2] = special.logit(np.clip(e_ir, 1e-3, 0.99))
    fill = np.nanmean(vals, axis=0)
    vals = np.where(np.isnan(vals), fill, vals)
    vals[:, 0] = np.clip(vals[:, 0], -8.0, 1.0)  # reducible error at the reference point
    vals[:, 1] = np.clip(vals[:, 1], -2.0, 2.5)  # alpha in [0.14, 12]
    start: dict[str, np.ndarray] = {}
    if config.likelihood == "frontier":
        # the frontier lies below the mean curve (in error) by about the mean gap
        start["gap"], start["sigma"] = vals[:, 3], 0.5 * vals[:, 3]
        if fd.e_ds_cut is not None:
            # the kept points are the best of their bins: they span only the near end of the gap's
            # distribution, and their spread misses most of its mean (on simulations the
            # fitted mean gap is 2-7 times the kept points' mean distance below their cut)
            n = np.bincount(fd.group_idx, minlength=n_groups)
            below = np.bincount(fd.group_idx, fd.e_ds_cut - fd.e_ds, minlength=n_groups)
            start["gap"] = np.where(n > 0, TOP_GAP_START * below / np.maximum(n, 1), vals[:, 3])
        # the gap's shape and power at the centre of their priors: PyMC's default start
        # jitters them by +-1 on their unconstrained scale (a power up to 4.4), where a
        # chain could stall in tuning with a collapsed step size
        start["gap_shape"] = np.full(n_groups, 0.5)
        start["gap_power"] = np.full(n_groups, 0.5)
    else:
        start["sigma"] = vals[:, 3]
    start.update(_pooled_start(fd, config, dict(zip(PARAMS, vals[:, :3].T, strict=True))))
    if uses_anchor(config, fd):  # the law's three parameters follow from the anchors
        dim = anchor_dim(config)
        del start[f"log_level_{dim}"], start[f"log_alpha_{dim}"], start[f"logit_e_ir_{dim}"]
        start.update(_anchored_start(fd, config, vals[:, :3]))
    return start


def _anchored_start(fd: FitData, config: ModelConfig, vals: np.ndarray) -> dict[str, np.ndarray]:
    """Return starts of the anchored law from per-group ``log_level, log_alpha, logit_e_ir``.

    The frontier's error at the best models, its rise from there to the low end of the US
    range and the irreducible share of the former, on their sampled scales
    (:func:`scale_transfer.model._anchored_law_params`).
    """
    e_ir = special.expit(vals[:, 2])
    offset = (fd.groups["log_e_best"] - fd.groups["log_e_ref"]).to_numpy(float)
    reducible = np.exp(vals[:, 0] + np.exp(vals[:, 1]) * offset)  # at the best models
    best = np.clip(e_ir + reducible, 1e-6, 1 - 1e-6)
    rise = np.maximum(np.exp(vals[:, 0]) - reducible, 1e-8)
    dim = anchor_dim(config)
    return {
        f"logit_frontier_best_{dim}": special.logit(best),
        f"log_frontier_rise_{dim}": np.log(rise),
        f"logit_e_ir_share_{dim}": special.logit(np.clip(e_ir / best, 1e-6, 1 - 1e-6)),
    }


def _pooled_start(
    fd: FitData,
    config: ModelConfig,
    per_group: Mapping[str, np.ndarray],
    unpooled: tuple[str, ...] = (),
) -> dict[str, np.ndarray]:
    """Return starting values of pooled per-group parameters from one value per group each.

    Parameters named in ``unpooled`` are each group's own in a hierarchical fit.
    """
    n_groups = len(fd.groups)
    start: dict[str, np.ndarray] = {}
    if config.by_setting and len(fd.settings) > 1:
        task_of_group = fd.groups["task"].map({t: i for i, t in enumerate(fd.tasks)}).to_numpy()
        n_tasks = len(fd.tasks)
    else:
        task_of_group, n_tasks = np.arange(n_groups), n_groups
    centered = is_centered(config, fd)
    for name, v in per_group.items():
        if config.pooling == "complete":
            start[name] = np.asarray(v.mean())
            continue
        if config.pooling == "independent" or name in unpooled:
            start[f"{name}_group"] = v
            continue
        task = np.bincount(task_of_group, weights=v, minlength=n_tasks) / np.maximum(
            np.bincount(task_of_group, minlength=n_tasks), 1
        )
        mu, sd = float(task.mean()), float(max(task.std(), 0.1))
        start[f"{name}_mu"], start[f"{name}_sigma"] = np.asarray(mu), np.asarray(sd)
        if centered:
            start[f"{name}_task"] = task
        else:
            start[f"{name}_task_z"] = (task - mu) / sd
        if config.by_setting and len(fd.settings) > 1:
            start[f"{name}_setting"] = np.zeros(len(fd.settings))
    return start


def odds_start(fd: FitData, config: ModelConfig) -> dict[str, np.ndarray]:
    """Return starting values for the odds law (constrained scale, by name).

    Per group, least squares of the law in ``logit(acc_ds)`` (asymptote logit in
    [-3, 8], three starts), mapped to the sampled parameters, and the log of its residual
    sd; the scatter slope starts at 0.
    """
    from scipy import optimize

    from scale_transfer.odds import logit_mean

    n_groups = len(fd.groups)
    vals = np.full((n_groups, 5), np.nan)
    x_ref = fd.groups["logit_us_ref"].to_numpy(float)
    x_top = fd.groups["logit_us_top"].to_numpy(float)
    for g in range(n_groups):
        m = fd.group_idx == g
        if m.sum() < 4:
            continue
        xc, y = fd.logit_us[m] - x_ref[g], fd.logit_ds[m]
        slope = float(np.clip(np.polyfit(xc, y, 1)[0], 0.05, 20.0))
        best = None
        for c in (1.0, 3.0, 6.0):
            x0 = np.array([float(np.mean(y)), np.log(slope), c])
            try:
                r = optimize.least_squares(
                    lambda t, xc=xc, y=y: logit_mean(t[0], np.exp(t[1]), t[2], xc) - y,
                    x0,
                    bounds=([-20.0, -3.0, -3.0], [20.0, 3.0, 8.0]),
                )
            except ValueError:
                continue
            if np.isfinite(r.cost) and (best is None or r.cost < best.cost):
                best = r
        if best is None:
            continue
        rmse = float(np.sqrt(2.0 * best.cost / m.sum()))
        level, log_alpha, logit_c = best.x
        span = x_top[g] - x_ref[g]
        m_ref, m_top = logit_mean(level, np.exp(log_alpha), logit_c, np.array([0.0, span]))
        rise = max((m_top - m_ref) / span, 1e-3)
        headroom = max(logit_c - m_ref - rise * span, 1e-3)
        vals[g] = (m_ref, np.log(rise), np.log(headroom), np.log(max(rmse, 1e-3)), 0.0)
    if np.isnan(vals).all():
        return {}
    vals = np.where(np.isnan(vals), np.nanmean(vals, axis=0), vals)
    per_group = dict(zip(ODDS_PARAMS, vals.T, strict=True))
    return _pooled_start(fd, config, per_group, unpooled=ODDS_UNPOOLED)


def check_vars(config: ModelConfig) -> tuple[str, ...]:
    """Return the variables whose convergence is checked.

    :data:`CHECK_VARS`, and for the odds law its scatter slope too.
    """
    if getattr(config, "law", "error") == "odds":
        return (*CHECK_VARS, "scatter_slope_group")
    return CHECK_VARS


def transform_pair(model: Any, rv: Any) -> tuple[Any, Any] | None:
    """NumPy forward and backward of ``rv``'s transform to the unconstrained scale.

    ``(None, None)`` without a transform; ``None`` for a transform not handled here (its
    variable then keeps PyMC's default start).
    """
    transform = model.rvs_to_transforms.get(rv)
    if transform is None:
        return None, None
    kind = type(transform).__name__
    if kind == "LogTransform":
        return np.log, np.exp
    if kind == "LogOddsTransform":
        return special.logit, special.expit
    if kind == "Interval":
        from pytensor.tensor.basic import get_underlying_scalar_constant_value
        from pytensor.tensor.exceptions import NotScalarConstantError

        try:
            lower, upper = (
                None if b is None else float(get_underlying_scalar_constant_value(b))
                for b in transform.args_fn(*rv.owner.inputs)
            )
        except NotScalarConstantError:  # bounds that are not constants: not handled
            return None
        if lower is not None and upper is None:
            return (lambda x: np.log(x - lower)), (lambda y: lower + np.exp(y))
        if lower is None and upper is not None:
            return (lambda x: np.log(upper - x)), (lambda y: upper - np.exp(y))
    return None


def _layout(model: Any, compiled: Any) -> list[tuple[str, slice, tuple[int, ...], Any]]:
    """Position of each free variable in nutpie's flat unconstrained vector.

    Each entry also holds the variable's transforms (:func:`transform_pair`).
    """
    out, pos = [], 0
    for rv in model.free_RVs:
        value = model.rvs_to_values[rv]
        shape = tuple(int(s) for s in compiled.shapes[value.name])
        size = int(np.prod(shape))
        out.append((rv.name, slice(pos, pos + size), shape, transform_pair(model, rv)))
        pos += size
    return out


def _initial_point_fn(
    default_fn: Any, layout: list, start: Mapping[str, np.ndarray], jitter: float = INIT_JITTER
) -> Any:
    """Return a nutpie initial-point function: jittered ``start``, the default elsewhere."""

    def fn(seed: Any) -> np.ndarray:
        x = np.array(default_fn(seed), dtype=float, copy=True)
        rng = np.random.default_rng(seed)
        for name, sl, shape, pair in layout:
            if name not in start or pair is None:
                continue
            v = np.broadcast_to(np.asarray(start[name], float), shape).ravel()
            v = v if pair[0] is None else pair[0](v)
            x[sl] = v + rng.uniform(-jitter, jitter, v.size)
        return x

    return fn


def jittered_start(
    model: Any,
    start: Mapping[str, np.ndarray],
    rng: np.random.Generator,
    jitter: float = INIT_JITTER,
) -> dict:
    """One chain's ``initvals`` for ``pymc.sample``: ``start`` jittered like nutpie's."""
    out = {}
    for rv in model.free_RVs:
        pair = transform_pair(model, rv)
        if rv.name not in start or pair is None:
            continue
        v = np.asarray(start[rv.name], float)
        forward, backward = pair if pair[0] is not None else (lambda x: x, lambda y: y)
        out[rv.name] = backward(forward(v) + rng.uniform(-jitter, jitter, v.shape))
    return out


def nutpie_draws(compiled: Any, sc: SamplerConfig) -> xr.DataTree:
    """Sample a nutpie-compiled model with these settings; keep posterior and sample_stats.

    ``sc.adaptation`` must be resolved (:func:`resolve_adaptation`): a compiled model alone
    does not say which likelihood it has.
    """
    import nutpie

    if sc.adaptation == "auto":
        raise ValueError("resolve adaptation='auto' first (sampling.resolve_adaptation)")
    if "auto" in (sc.target_accept, sc.draws, sc.tune, sc.max_depth):
        raise ValueError("resolve the 'auto' settings first (sampling.resolve_sampler_config)")

    kwargs = dict(
        draws=sc.draws,
        tune=sc.tune,
        chains=sc.chains,
        cores=sc.cores,
        seed=sc.seed,
        save_warmup=False,
        progress_bar=sc.progress,
        target_accept=sc.target_accept,
        adaptation=sc.adaptation,
        maxdepth=sc.max_depth,
    )
    # sample in nutpie's background thread: its own blocking call turns Ctrl-C into a
    # cut-short result, here an interrupt stops the chains and propagates (nothing is kept);
    # with a time limit the tuning draws are kept so that a stopped fit can say what its
    # chains were doing
    kwargs["save_warmup"] = sc.time_limit is not None
    check_interrupted()  # a Ctrl-C while numba compiled the model is lost in its callback
    running = nutpie.sample(compiled, blocking=False, **kwargs)
    try:
        dt = running.wait(timeout=sc.time_limit)
    except BaseException as err:
        if not isinstance(err, TimeoutError):
            running.cancel()
            raise
        try:
            with warnings.catch_warnings():
                # ArviZ warns that the few draws so far are fewer than the chains; expected
                warnings.filterwarnings("ignore", "Found chain dimension", UserWarning)
                where = _stall_report(running.abort())
        except Exception:  # noqa: BLE001 - the report is a courtesy; the timeout is the news
            running.cancel()
            where = ""
        raise SamplingTimeout(
            f"sampling stopped after {sc.time_limit:g} s (time_limit){where}; "
            "raise the limit, or look at this fit's data and parametrization"
        ) from None
    return _kept_groups(dt)


@contextlib.contextmanager
def _logger_level(name: str, level: int) -> Iterator[None]:
    """Set a logger's level for the duration of a ``with`` block."""
    logger = logging.getLogger(name)
    old = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(old)


def _stall_report(dt: xr.DataTree) -> str:
    """Say per chain how far a stopped nutpie run got and how its trees looked.

    A chain whose step size fell far below the others' and whose trees hit the maximum
    depth is stuck in a region of high curvature (docs/study.md: the frontier fit that
    hung); one with ordinary trees was simply slow.
    """
    parts = []
    stats = [dt[g].ds for g in ("warmup_sample_stats", "sample_stats") if g in dt]
    if not stats:
        return ""
    for c in stats[0].chain.values:
        done, step, depth, hits = [], float("nan"), [], 0
        for ds in stats:
            st = ds.sel(chain=c)
            ok = np.isfinite(st["step_size"].values)
            done.append(int(ok.sum()))
            if ok.any():
                step = float(st["step_size"].values[ok][-1])
                depth.extend(st["depth"].values[ok][-50:].tolist())
                hits += int(np.sum(st["maxdepth_reached"].values[ok]))
        tuned = f"{done[0]} tuning" + (f" + {done[1]}" if len(done) > 1 else "") + " draws"
        if not sum(done):
            parts.append(f"chain {c}: not started")
            continue
        parts.append(
            f"chain {c}: {tuned}, step size {step:.2g}, mean tree depth "
            f"{np.mean(depth[-50:]):.1f} (last 50), {hits} at the maximum depth"
        )
    return " (" + "; ".join(parts) + ")"


def _kept_groups(dt: xr.DataTree) -> xr.DataTree:
    out = xr.DataTree()
    out["posterior"] = dt["posterior"]
    out["sample_stats"] = dt["sample_stats"]
    return out
