"""Many fits of one model structure at once, in JAX: for a GPU.

A Figure B study fits the same model to hundreds of data sets (subsamples of one setting).
On a CPU the package compiles the model once (nutpie, numba) and refits it data set by data
set. On a GPU one fit is too small to pay (a leapfrog step over a few thousand points is a
few microseconds of work and tens of microseconds of kernel launches), but many fits at
once are not: :func:`fit_batch` turns the package's own PyMC model into one JAX function
of (parameters, data), pads the data sets to one length with a mask, and runs numpyro's
NUTS ``jax.vmap``-ed over data sets and chains in one compiled program.

What is the same as :func:`scale_transfer.posterior.fit`: the model (``build_model``: the
law, its parametrization, the priors, the likelihood), the chains' start at per-group least
squares (:func:`scale_transfer.sampling.lsq_start`, jittered alike), the convergence checks
(:func:`scale_transfer.sampling.check_convergence`, per fit). What differs: numpyro's NUTS
and its windowed diagonal mass-matrix adaptation instead of nutpie's, and a vmapped NUTS
step runs as long as the longest tree among the fits and chains of the batch.

Needs ``jax`` and ``numpyro`` (``pip install scale-transfer[jax]``); runs on a CPU too
(slowly: use the nutpie path there).
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from scale_transfer.config import DEFAULT_KIND, DEFAULT_PROB, SamplerConfig
from scale_transfer.intervals import interval
from scale_transfer.model import FitData, ModelConfig, build_model, is_centered, prepare_data
from scale_transfer.sampling import (
    CHECK_VARS,
    ConvergenceWarning,
    init_jitter,
    jittered_start,
    lsq_start,
    resolve_sampler_config,
    transform_pair,
)

__all__ = ["BatchFit", "batch_diagnostics", "fit_batch"]

#: Data the model reads through ``pm.Data`` and that differ between fits.
_POINT_DATA = ("log_e_us", "e_ds_obs", "group_idx")
#: Variables kept per draw (per group), as in a :class:`~scale_transfer.posterior.Posterior`.
KEPT = ("k", "alpha", "e_ir", "asymptote", "sigma")


@dataclass
class BatchFit:
    """Result of :func:`fit_batch`.

    Attributes
    ----------
    posterior : xarray.Dataset
        ``k``, ``alpha``, ``e_ir``, ``asymptote``, ``sigma`` with dims
        ``(fit, chain, draw, group)``.
    sample_stats : xarray.Dataset
        ``diverging``, ``n_steps`` (leapfrog steps) and ``tree_depth`` with dims
        ``(fit, chain, draw)``.
    diagnostics : pandas.DataFrame
        One row per fit: ``fit``, ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail`` (over
        ``k``, ``alpha``, ``e_ir``, ``sigma`` of every group, as
        :func:`~scale_transfer.sampling.check_convergence`), ``divergences``,
        ``max_depth_hits``, ``mean_tree_depth``, ``converged``, ``failed`` (the checks
        that failed, with the thresholds of ``check_convergence``).
    groups : pandas.DataFrame
        The groups (``setting``, ``task``) shared by every fit.
    timings : dict
        ``prepare_seconds`` (data, model building and jaxifying, starts),
        ``sample_seconds`` (the vmapped NUTS; JIT compilation included unless
        ``jit_cached``), ``post_seconds`` (diagnostics), ``jit_cached``, ``backend``.
    """

    posterior: xr.Dataset
    sample_stats: xr.Dataset
    diagnostics: pd.DataFrame
    groups: pd.DataFrame
    timings: dict[str, Any] = field(default_factory=dict)

    def datatree(self, i: int) -> xr.DataTree:
        """Fit ``i`` as a DataTree with ``posterior`` and ``sample_stats`` groups."""
        return xr.DataTree.from_dict(
            {
                "posterior": self.posterior.isel(fit=i, drop=True),
                "sample_stats": self.sample_stats.isel(fit=i, drop=True),
            }
        )

    def asymptotes(
        self, prob: float = DEFAULT_PROB, interval_kind: str = DEFAULT_KIND
    ) -> pd.DataFrame:
        """Tidy table of the asymptote per fit and group: mean and interval.

        Columns ``fit``, ``setting``, ``task``, ``mean``, ``lower``, ``upper``, ``prob``,
        ``interval`` (the kind: ``"eti"``, equal-tailed, or ``"hdi"``, as in
        :meth:`Posterior.summary`).
        """
        a = self.posterior["asymptote"].stack(sample=("chain", "draw"))
        flat = a.transpose("sample", "fit", "group").values  # draws first, as interval() wants
        lo, hi = interval(flat, prob, interval_kind)
        n_fit, n_group = lo.shape
        out = pd.DataFrame(
            {
                "fit": np.repeat(np.arange(n_fit), n_group),
                "setting": np.tile(self.groups["setting"].to_numpy(), n_fit),
                "task": np.tile(self.groups["task"].to_numpy(), n_fit),
                "mean": flat.mean(axis=0).ravel(),
                "lower": lo.ravel(),
                "upper": hi.ravel(),
            }
        )
        out["prob"], out["interval"] = prob, interval_kind
        return out


def batch_diagnostics(
    posterior: xr.Dataset,
    sample_stats: xr.Dataset,
    *,
    rhat_max: float = 1.01,
    ess_min: float = 400.0,
    max_tree_depth: int = 10,
) -> pd.DataFrame:
    """Per-fit R-hat, bulk and tail ESS, divergences: :func:`check_convergence`, vectorized.

    One ArviZ call per statistic for all fits (the ``fit`` dimension is kept), with the
    same variables and thresholds as :func:`~scale_transfer.sampling.check_convergence`.
    """
    import arviz as az

    sub = posterior[[v for v in CHECK_VARS if v in posterior.data_vars]]
    dims = [d for d in sub.dims if d not in ("fit", "chain", "draw")]

    def per_fit(ds: xr.Dataset, how: str) -> np.ndarray:
        arr = ds.to_dataarray("var").transpose("fit", "var", *dims).values
        arr = arr.reshape(arr.shape[0], -1)
        return np.nanmax(arr, axis=1) if how == "max" else np.nanmin(arr, axis=1)

    n_chain = posterior.sizes["chain"]
    rhat = per_fit(az.rhat(sub), "max")
    bulk = per_fit(az.ess(sub, method="bulk"), "min")
    tail = per_fit(az.ess(sub, method="tail"), "min")
    div = sample_stats["diverging"].sum(("chain", "draw")).values.astype(int)
    depth = sample_stats["tree_depth"]
    hits = (depth >= max_tree_depth).sum(("chain", "draw")).values.astype(int)
    need = min(ess_min, 100.0 * n_chain)
    failed = []
    for r, b, t, d in zip(rhat, bulk, tail, div, strict=True):
        f = []
        if n_chain > 1 and r > rhat_max:
            f.append(f"R-hat {r:.3f} > {rhat_max}")
        if b < need:
            f.append(f"bulk ESS {b:.0f} < {need:.0f}")
        if t < need:
            f.append(f"tail ESS {t:.0f} < {need:.0f}")
        if d:
            f.append(f"{d} divergent transitions")
        failed.append("; ".join(f))
    return pd.DataFrame(
        {
            "fit": np.arange(len(rhat)),
            "max_rhat": rhat,
            "min_ess_bulk": bulk,
            "min_ess_tail": tail,
            "divergences": div,
            "max_depth_hits": hits,
            "mean_tree_depth": depth.mean(("chain", "draw")).values,
            "converged": [not f for f in failed],
            "failed": failed,
        }
    )


# (structure hash, groups, centred, n_points, draws, tune, ...) -> (jitted function, pieces)
_JITTED: dict[tuple, Any] = {}


def symbolic_model(fd: FitData, config: ModelConfig) -> dict[str, Any]:
    """Return the log density and kept variables as graphs of (values, data, mask)."""
    import pytensor.tensor as pt
    from pytensor.graph.replace import clone_replace

    model = build_model(fd, config)
    # fresh inputs of the data's own types (group_idx is int32 in the model)
    data_in = {n: model[n].type(name=f"{n}_in") for n in (*_POINT_DATA, "log_e_ref")}
    mask = pt.dvector("mask_in")
    free = model.free_RVs
    prior = pt.sum([pt.sum(t) for t in model.logp(vars=free, sum=False)])
    (obs,) = model.logp(vars=model.observed_RVs, sum=False)
    logp = prior + pt.sum(pt.switch(mask > 0, obs, 0.0))
    kept = model.replace_rvs_by_values([model[n] for n in KEPT])
    swap = {model[n]: v for n, v in data_in.items()}
    logp, *kept = clone_replace([logp, *kept], replace=swap)
    return {
        "model": model,
        "values": model.value_vars,
        "data_in": [data_in[n] for n in (*_POINT_DATA, "log_e_ref")],
        "mask": mask,
        "logp": logp,
        "kept": kept,
    }


def _start_points(
    model: Any, fd: FitData, config: ModelConfig, chains: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Unconstrained start of every value variable, ``(chains, *shape)`` each.

    ``fit``'s start: the least-squares values jittered by :func:`sampling.jittered_start`, PyMC's
    initial point for the variables they do not name.
    """
    start = lsq_start(fd, config)
    default = model.initial_point()
    jitter = init_jitter(config)
    per_chain = [jittered_start(model, start, rng, jitter) for _ in range(chains)]
    out = []
    for rv in model.free_RVs:
        x = np.asarray(default[model.rvs_to_values[rv].name], dtype=float)
        if rv.name in per_chain[0]:  # a transform jittered_start handles, or none
            v = np.stack([np.broadcast_to(c[rv.name], x.shape) for c in per_chain])
            forward = transform_pair(model, rv)[0]
            out.append(v if forward is None else forward(v))
        else:
            out.append(np.broadcast_to(x, (chains, *x.shape)).copy())
    return out


def _padded(fds: Sequence[FitData], pad_to: int | None = None) -> tuple[np.ndarray, ...]:
    """Point data of every fit padded to one length (copies of the first point, mask 0)."""
    n = max(len(fd.e_ds) for fd in fds)
    if pad_to is not None:
        if pad_to < n:
            raise ValueError(f"pad_to={pad_to} is below the largest data set ({n} points)")
        n = pad_to
    b = len(fds)
    x, y = np.empty((b, n)), np.empty((b, n))
    g, m = np.zeros((b, n), np.int32), np.zeros((b, n))
    for i, fd in enumerate(fds):
        k = len(fd.e_ds)
        x[i], y[i], g[i] = fd.log_e_us[0], fd.e_ds[0], fd.group_idx[0]
        x[i, :k], y[i, :k], g[i, :k], m[i, :k] = fd.log_e_us, fd.e_ds, fd.group_idx, 1.0
    ref = np.stack([fd.groups["log_e_ref"].to_numpy(float) for fd in fds])
    return x, y, g, ref, m


def _prepare_batch(
    datasets: Sequence[pd.DataFrame], config: ModelConfig
) -> tuple[list[FitData], list[tuple[str, str]], bool]:
    """Prepare every data set; refuse a batch whose groups or parametrization differ."""
    if not datasets:
        raise ValueError("fit_batch needs at least one data set")
    if config.effects or config.discrepancy:
        raise ValueError("fit_batch does not support effects or the discrepancy term")
    fds = [prepare_data(d, config) for d in datasets]
    keys0 = list(zip(fds[0].groups.setting, fds[0].groups.task, strict=True))
    centred = is_centered(config, fds[0])
    for i, fd in enumerate(fds):
        if list(zip(fd.groups.setting, fd.groups.task, strict=True)) != keys0:
            raise ValueError(
                f"data set {i} has groups {list(fd.groups.task)}; data set 0 has "
                f"{[t for _, t in keys0]}: fit_batch needs the same groups in the same order"
            )
        if is_centered(config, fd) != centred:
            raise ValueError(
                f"centered='auto' resolves differently for data set {i} (a group with few "
                "points); pass ModelConfig(centered=True or False)"
            )
    return fds, keys0, centred


def _compile_batch(
    fd: FitData,
    config: ModelConfig,
    *,
    draws: int,
    tune: int,
    target_accept: float,
    max_tree_depth: int,
) -> tuple[Any, Any, int]:
    """Return the jitted NUTS over (fit, chain), the PyMC model, and its number of values.

    The function takes ``(rng_keys, starts, log_e_us, e_ds, group_idx, log_e_ref, mask)``,
    each with a leading fit axis (keys and starts also a chain axis), and returns the kept
    variables, divergences and leapfrog steps of every draw after tuning.
    """
    import jax
    from numpyro.infer.hmc import hmc
    from pymc.sampling.jax import get_jaxified_graph

    sym = symbolic_model(fd, config)
    inputs = [*sym["values"], *sym["data_in"], sym["mask"]]
    logp_fn = get_jaxified_graph(inputs=inputs, outputs=[sym["logp"]])
    kept_fn = get_jaxified_graph(inputs=[*sym["values"], *sym["data_in"]], outputs=sym["kept"])

    def one_chain(rng_key, z0, xs, ys, gs, rs, ms):
        def potential(z):
            return -logp_fn(*z, xs, ys, gs, rs, ms)[0]

        init_kernel, sample_kernel = hmc(potential, algo="NUTS")
        state = init_kernel(
            z0,
            num_warmup=tune,
            target_accept_prob=target_accept,
            max_tree_depth=max_tree_depth,
            rng_key=rng_key,
        )

        def body(s, _):
            s = sample_kernel(s)
            kept = kept_fn(*s.z, xs, ys, gs, rs)
            return s, (kept, s.diverging, s.num_steps)

        _, out = jax.lax.scan(body, state, None, length=tune + draws)
        return jax.tree.map(lambda a: a[tune:], out)

    over_chains = jax.vmap(one_chain, in_axes=(0, 0, None, None, None, None, None))
    run = jax.jit(jax.vmap(over_chains, in_axes=(0, 0, 0, 0, 0, 0, 0)))
    return run, sym["model"], len(sym["values"])


def _to_datasets(
    fd: FitData,
    keys0: list[tuple[str, str]],
    kept: list[np.ndarray],
    div: np.ndarray,
    steps: np.ndarray,
) -> tuple[xr.Dataset, xr.Dataset]:
    """Return the kept draws as ``posterior``, the NUTS statistics as ``sample_stats``."""
    labels = list(fd.groups.task) if len(fd.settings) == 1 else [f"{s}/{t}" for s, t in keys0]
    dims4 = ("fit", "chain", "draw", "group")
    posterior = xr.Dataset(
        {n: (dims4, kept[j]) for j, n in enumerate(KEPT)}, coords={"group": labels}
    )
    dims3 = ("fit", "chain", "draw")
    sample_stats = xr.Dataset(
        {
            "diverging": (dims3, div.astype(bool)),
            "n_steps": (dims3, steps),
            "tree_depth": (dims3, np.log2(steps + 1.0)),
        }
    )
    return posterior, sample_stats


def fit_batch(
    datasets: Sequence[pd.DataFrame],
    config: ModelConfig | None = None,
    sampler: SamplerConfig | None = None,
    *,
    max_tree_depth: int = 10,
    pad_to: int | None = None,
) -> BatchFit:
    """Fit the model to many data sets at once, vmapped in JAX (one program for all).

    Parameters
    ----------
    datasets : sequence of pandas.DataFrame
        Tidy data sets with the same groups (settings and tasks, in the same order), e.g.
        subsamples of one setting. Their numbers of points may differ.
    config : ModelConfig, optional
        Model structure and priors (default ``ModelConfig(law="error")``). ``centered="auto"`` is
        resolved on every data set and must come out the same; else pass it.
    sampler : SamplerConfig, optional
        ``draws``, ``tune``, ``chains``, ``seed`` and ``target_accept`` of numpyro's NUTS
        (``"auto"`` resolved for numpyro on the first data set, as ``posterior.fit``
        does; ``max_tree_depth``: its largest tree depth); ``progress`` prints one line per
        stage (the sampler runs as one JAX call). Default ``SamplerConfig()``.
    pad_to : int, optional
        Pad every data set to this many points (default: the largest data set's), so that
        batches of different data sets share one compiled program.

    Returns
    -------
    BatchFit

    Notes
    -----
    The compiled NUTS program is cached per process, keyed by the model structure, the
    groups, the batch size, the padded length and the sampler settings: a second batch of
    the same shape pays no JIT compilation.
    """
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    config = config or ModelConfig(law="error")
    if config.law != "error":
        raise ValueError(
            f"fit_batch fits the paper's law; got law={config.law!r} "
            "(pass ModelConfig(law='error', ...))"
        )
    if config.target == "top":  # its cuts and anchors are data this batch does not swap
        raise ValueError("fit_batch does not fit target='top'; fit each data set with fit()")
    t0 = time.perf_counter()
    fds, keys0, centred = _prepare_batch(datasets, config)
    sc = resolve_sampler_config(
        dataclasses.replace(sampler or SamplerConfig(), sampler="numpyro"), fds[0], config
    )
    draws, tune, chains, seed = sc.draws, sc.tune, sc.chains, sc.seed
    x, y, g, ref, m = _padded(fds, pad_to)
    n_fit, n_pad = x.shape
    nuts = {"draws": draws, "tune": tune, "target_accept": sc.target_accept,
            "max_tree_depth": max_tree_depth}  # fmt: skip
    # jax.jit compiles again for another batch shape: the key says so in jit_cached
    key = (config.structure_hash(), tuple(keys0), centred, n_fit, n_pad, chains,
           *nuts.values())  # fmt: skip
    cached = key in _JITTED
    if not cached:
        _JITTED[key] = _compile_batch(fds[0], config, **nuts)
    run, model, n_val = _JITTED[key]
    rng = np.random.default_rng(seed)
    starts = [_start_points(model, fd, config, chains, rng) for fd in fds]
    z0 = [jnp.asarray(np.stack([s[j] for s in starts])) for j in range(n_val)]
    rng_keys = jax.random.split(jax.random.PRNGKey(seed), n_fit * chains)
    rng_keys = rng_keys.reshape(n_fit, chains, *rng_keys.shape[1:])
    t1 = time.perf_counter()
    if sc.progress:
        print(
            f"fit_batch: {n_fit} fits x {chains} chains, {n_pad} points each (padded), "
            f"{tune} + {draws} NUTS steps on {jax.default_backend()}"
            f"{'' if cached else ' (JIT compilation first)'} ...",
            flush=True,
        )
    kept, div, steps = run(rng_keys, z0, *[jnp.asarray(a) for a in (x, y, g, ref, m)])
    kept = [np.asarray(k) for k in jax.block_until_ready(kept)]
    t2 = time.perf_counter()
    posterior, sample_stats = _to_datasets(fds[0], keys0, kept, np.asarray(div), np.asarray(steps))
    diag = batch_diagnostics(posterior, sample_stats, max_tree_depth=max_tree_depth)
    t3 = time.perf_counter()
    bad = int((~diag["converged"]).sum())
    if bad:
        warnings.warn(
            f"scale-transfer: {bad} of {n_fit} batched fits did not converge "
            "(BatchFit.diagnostics['failed'] says why): raise tune/draws or target_accept",
            ConvergenceWarning,
            stacklevel=2,
        )
    return BatchFit(
        posterior=posterior,
        sample_stats=sample_stats,
        diagnostics=diag,
        groups=fds[0].groups[["setting", "task"]].reset_index(drop=True),
        timings={
            "prepare_seconds": t1 - t0,
            "sample_seconds": t2 - t1,
            "post_seconds": t3 - t2,
            "jit_cached": cached,
            "backend": jax.default_backend(),
        },
    )
