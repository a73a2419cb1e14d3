"""The hierarchical Bayesian power-law model over downstream tasks.

For each group ``g`` (a downstream task, or a (setting, task) pair) the law is

    e_ds = k_g * e_us**alpha_g + e_ir_g

written, for sampling, around a reference upstream error ``e_ref_g`` of each group (the
geometric mean of the group's fitted upstream errors) as

    e_ds = exp(log_level_g + alpha_g * (log e_us - log e_ref_g)) + e_ir_g,

so ``log_level_g = log k_g + alpha_g * log e_ref_g`` is the log reducible error at the
reference point. That shear has unit Jacobian and decorrelates ``k`` and ``alpha``, which
trade off strongly when the data sit far from ``e_us = 1``. Each of the three per-group
parameters ``log_level``, ``log_alpha`` and ``logit_e_ir`` is drawn from a population-level
normal (partial pooling), so a task with few points borrows strength from the others.

``ModelConfig(law="odds")`` builds the odds-space law instead (:mod:`scale_transfer.odds`):
Gaussian in ``logit(acc_ds)`` around ``logit(c * sigmoid(a + alpha * logit(acc_us)))`` with a
log scatter sd linear in ``logit(acc_us)``; its five per-group parameters
(:data:`~scale_transfer.config.ODDS_PARAMS`) are pooled the same way, except the headroom of
the asymptote, which each group has on its own (:data:`~scale_transfer.config.ODDS_UNPOOLED`).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt

from scale_transfer import suffstats
from scale_transfer.config import (
    CENTERED_MIN_POINTS,
    DEFAULT_PRIORS,
    E_MIN,
    LIKELIHOODS,
    ODDS_PARAMS,
    ODDS_UNPOOLED,
    PACKAGE_DIR,
    PARAMS,
    POOLINGS,
    TARGETS,
    TOP_BINS,
    TOP_SHARE,
    ModelConfig,
)
from scale_transfer.data import MIN_POINTS, read_tidy
from scale_transfer.likelihoods import (
    FRONTIER_MAX_SHARE,
    frontier_gap_mean,
    frontier_logp,
    frontier_random,
    frontier_top_logp,
    frontier_top_random,
)

__all__ = [
    "CENTERED_MIN_POINTS",
    "DEFAULT_PRIORS",
    "E_MIN",
    "LIKELIHOODS",
    "POOLINGS",
    "PARAMS",
    "TARGETS",
    "FewHullPointsWarning",
    "FitData",
    "ModelConfig",
    "build_model",
    "effect_level_parameters",
    "prepare_data",
]


def _prior(name: str, spec: Mapping[str, Any], **kwargs: Any) -> pt.TensorVariable:
    params = {k: v for k, v in spec.items() if k != "dist"}
    return getattr(pm, spec["dist"])(name, **params, **kwargs)


@dataclass
class FitData:
    """Arrays the model is built from: the selected points and their groups."""

    frame: pd.DataFrame  # all validated rows, with ``on_hull`` and ``used`` columns
    groups: pd.DataFrame  # one row per group: setting, task, n, log_e_ref
    settings: list[str]
    tasks: list[str]
    log_e_us: np.ndarray
    e_ds: np.ndarray
    group_idx: np.ndarray
    #: level index of each used point per column of ``ModelConfig.effects`` (n_obs, n_effects)
    effect_idx: np.ndarray | None = None
    #: levels of each effect column, in index order
    effect_levels: dict[str, list[str]] = field(default_factory=dict)
    #: logits of the used points' US and DS accuracies (clipped to ``ACC_EPS``)
    logit_us: np.ndarray | None = None
    logit_ds: np.ndarray | None = None
    #: ``target="top"``: each used point's cut, the DS error below which it was kept
    e_ds_cut: np.ndarray | None = None

    @property
    def used(self) -> pd.DataFrame:
        """Return the rows the model is fitted to."""
        return self.frame[self.frame["used"]]

    def data_hash(self) -> str:
        """Return a hash of the fitted data (model, task, setting, accuracies)."""
        cols = ["model", "task", "setting", "us_acc", "ds_acc"]
        h = pd.util.hash_pandas_object(self.used[cols], index=False).to_numpy()
        return hashlib.sha256(h.tobytes()).hexdigest()[:16]


class FewHullPointsWarning(UserWarning):
    """A task's hull has fewer points than the law has parameters (3)."""


def _warn_few_hull_points(groups: pd.DataFrame, config: ModelConfig) -> None:
    few = groups[groups["n"] < 3]
    if len(few) == 0:
        return
    several = groups["setting"].nunique() > 1
    names = ", ".join(
        f"{r.task} ({r.setting}): {r.n}" if several else f"{r.task}: {r.n}"
        for r in few.itertuples()
    )
    source = (
        "the population level (the other tasks) and the priors"
        if config.pooling == "hierarchical"
        else "the priors"
    )
    warnings.warn(
        f"target='hull': fewer hull points than the law's 3 parameters in {names}. Their "
        f"curves and asymptotes come from {source}, not from their data (a hull of 1 point: "
        "the best model is also the one with the least upstream accuracy). Fit all points "
        "(target='all', likelihood='frontier'), or check these tasks' data.",
        FewHullPointsWarning,
        skip_file_prefixes=(PACKAGE_DIR,),
    )


def prepare_data(
    data: pd.DataFrame | str, config: ModelConfig, *, min_points: int = MIN_POINTS
) -> FitData:
    """Validate tidy data and select the points and groups the model is fitted to.

    Parameters
    ----------
    data : pandas.DataFrame or path
        Tidy data (see :mod:`scale_transfer.data`).
    config : ModelConfig
        Decides the target (all points or hull points).
    min_points : int
        Fewest points a task (and setting) of ``data`` needs (see :func:`~scale_transfer.fit`).

    Returns
    -------
    FitData
    """
    from scale_transfer.hull import mark_hull

    # every frame, also one with a 'setting' column: one set of rules
    df = read_tidy(data, min_points=min_points)
    df = mark_hull(df.reset_index(drop=True))
    cut = None
    if config.target == "top":
        df["used"], cut = select_top(df)
    else:
        df["used"] = df["on_hull"] if config.target == "hull" else True
    used = df[df["used"]]
    settings = list(pd.unique(used["setting"]))
    tasks = list(pd.unique(used["task"]))
    e_us = np.clip(1.0 - used["us_acc"].to_numpy(float), E_MIN, 1.0)
    log_e_us = np.log(e_us)
    keys = list(zip(used["setting"], used["task"], strict=True))
    group_keys = list(dict.fromkeys(keys))
    gindex = {g: i for i, g in enumerate(group_keys)}
    group_idx = np.array([gindex[k] for k in keys], dtype=np.int64)
    groups = pd.DataFrame(group_keys, columns=["setting", "task"])
    groups["n"] = np.bincount(group_idx, minlength=len(group_keys))
    # reference point per group: the mean log upstream error of the group's fitted points
    # (tasks of one setting can have different upstream measurements, e.g. timm's
    # imagenet-r and imagenet-a use 200-class subsets, 5x lower upstream error)
    if config.target == "top":
        # the low end of the group's US accuracy (90th percentile of log e_us): where a
        # flat frontier's level is bounded, so that its level and exponent do not form a
        # ridge (a level near zero at the reference point leaves the exponent free)
        by_group = pd.Series(log_e_us).groupby(group_idx)
        ends = {"log_e_ref": TOP_REF_QUANTILE, "log_e_best": TOP_BEST_QUANTILE}
        for col, q in ends.items():
            groups[col] = by_group.quantile(q).reindex(range(len(groups))).to_numpy(float)
        # the two ends apart, also where a group's points share one US accuracy
        groups["log_e_best"] = np.minimum(groups["log_e_best"], groups["log_e_ref"] - TOP_MIN_SPAN)
    else:
        groups["log_e_ref"] = np.bincount(group_idx, weights=log_e_us) / groups["n"].to_numpy()
    if config.target == "hull" and config.pooling != "complete":  # complete: one curve
        _warn_few_hull_points(groups, config)
    odds = {}
    if getattr(config, "law", "error") == "odds":
        from scale_transfer.odds import logit

        x = logit(used["us_acc"].to_numpy(float))
        odds = {"logit_us": x, "logit_ds": logit(used["ds_acc"].to_numpy(float))}
        # reference point per group: the mean logit US accuracy of its fitted points
        groups["logit_us_ref"] = np.bincount(group_idx, weights=x) / groups["n"].to_numpy()
        # upper anchor: the 90th percentile of its fitted logit US accuracies, at least
        # 0.05 logits above the reference (a group with all points at one US accuracy)
        top = pd.Series(x).groupby(group_idx).quantile(0.9).reindex(range(len(groups)))
        groups["logit_us_top"] = np.maximum(top.to_numpy(float), groups["logit_us_ref"] + 0.05)
    return FitData(
        frame=df,
        groups=groups,
        settings=settings,
        tasks=tasks,
        log_e_us=log_e_us,
        e_ds=1.0 - used["ds_acc"].to_numpy(float),
        group_idx=group_idx,
        **_effect_codes(used, config),
        **odds,
        e_ds_cut=None if cut is None else cut[df["used"].to_numpy()],
    )


#: ``target="top"``: quantiles of each group's kept ``log e_us`` where its law is anchored:
#: the level at the low end of its US accuracy (``log_e_ref``), where a flat frontier's
#: level is bounded so that its level and exponent do not form a ridge, and the frontier's
#: error at the high end (``log_e_best``, :func:`_anchored_law_params`)
TOP_REF_QUANTILE = 0.9
TOP_BEST_QUANTILE = 0.1
#: least distance in ``log e_us`` between the two ends (``log_e_best`` moves below)
TOP_MIN_SPAN = 0.05


def select_top(
    df: pd.DataFrame, share: float | None = None, n_bins: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mark the best points of each bin of US accuracy, per task and setting.

    Each group's points are cut into up to ``n_bins`` bins of equal count along US
    accuracy (at least 10 points per bin); in each bin the ``share`` of points with the
    highest DS accuracy is kept, ties at the edge included. A kept point's cut is the DS
    error halfway between the worst kept point of its bin and the next one: every point of
    the bin below it is kept, every point above it is not, the selection the truncated
    likelihood (:func:`~scale_transfer.likelihoods.frontier_top_logp`) conditions on.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Whether each row of ``df`` is kept, and its cut (NaN where not kept).
    """
    share = TOP_SHARE if share is None else share
    n_bins = TOP_BINS if n_bins is None else n_bins
    keep = np.zeros(len(df), bool)
    cut = np.full(len(df), np.nan)
    e_ds = 1.0 - df["ds_acc"].to_numpy(float)
    us = df["us_acc"].to_numpy(float)
    for rows in df.groupby(["setting", "task"], sort=False).indices.values():
        bins = max(1, min(n_bins, len(rows) // 10))
        order = rows[np.argsort(us[rows], kind="stable")]
        for part in np.array_split(order, bins):
            n_keep = max(1, int(np.ceil(share * len(part))))
            worst = np.partition(e_ds[part], n_keep - 1)[n_keep - 1]
            above = e_ds[part][e_ds[part] > worst]
            edge = (worst + above.min()) / 2 if above.size else worst + 1e-6
            kept = part[e_ds[part] < edge]
            keep[kept] = True
            cut[kept] = edge
    return keep, cut


#: Discrepancy term: domain of ``log e_us`` (clipped to it), number of basis functions,
#: length-scale and boundary factor of the Hilbert-space Gaussian process approximation.
DISCREPANCY_LOG_E = (float(np.log(1e-3)), 0.0)
DISCREPANCY_BASIS = 8
DISCREPANCY_ELL = 1.2
_DISC_C = 1.5


def discrepancy_basis(log_e_us: Any, lib: Any = np) -> Any:
    """Basis functions of the discrepancy at ``log e_us``: ``(..., DISCREPANCY_BASIS)``.

    ``lib`` is ``numpy`` or ``pytensor.tensor``. Each function is scaled by the square root
    of the kernel's spectral density at its frequency, so that ``basis @ z`` with
    ``z ~ Normal(0, 1)`` approximates a unit-amplitude Gaussian process.
    """
    lo, hi = DISCREPANCY_LOG_E
    half = (hi - lo) / 2.0
    big_l = _DISC_C * half
    j = np.arange(1, DISCREPANCY_BASIS + 1)
    w = np.pi * j / (2.0 * big_l)
    spectral = np.sqrt(2 * np.pi) * DISCREPANCY_ELL * np.exp(-0.5 * (DISCREPANCY_ELL * w) ** 2)
    sqrt_s = np.sqrt(spectral)
    x = lib.clip(log_e_us, lo, hi) - (lo + half)
    return lib.sin(w * (x[..., None] + big_l)) * (sqrt_s / np.sqrt(big_l))


#: Random effects are centred where the median (level, group) cell has this many points.
EFFECT_CENTERED_MIN = 10
#: The levels of a yes/no effect column (one coefficient per group and part, not per level).
BINARY_LEVELS = ["False", "True"]


def effect_level_parameters(fd: FitData) -> int:
    """Count the effect parameters of the columns of named levels (levels x groups).

    ``False``/``True`` columns are left out: they add one coefficient per group and part.
    """
    n_groups = len(fd.groups)
    return sum(
        len(levels) * n_groups
        for levels in fd.effect_levels.values()
        if list(levels) != BINARY_LEVELS
    )


def _effect_codes(used: pd.DataFrame, config: ModelConfig) -> dict[str, Any]:
    """Level indices of the ``effects`` columns (empty dict when there are none)."""
    effects = tuple(getattr(config, "effects", ()))
    if not effects:
        return {}
    from scale_transfer.data import DataError

    idx, levels = [], {}
    for col in effects:
        if col not in used.columns:
            raise DataError(f"effect column {col!r} is not in the data; columns: {list(used)}")
        if used[col].isna().any():
            from scale_transfer.data import name_rows

            rows = name_rows(np.flatnonzero(used[col].isna().to_numpy()), labels=list(used.index))
            raise DataError(
                f"effect column {col!r} has missing values at {rows} (of the fitted data); "
                "fill them (e.g. 'unknown') or drop those rows"
            )
        values = used[col].astype(str)  # booleans become "False"/"True"
        levels[col] = sorted(values.unique())
        code = {v: i for i, v in enumerate(levels[col])}
        idx.append(values.map(code).to_numpy(np.int64))
    return {"effect_idx": np.column_stack(idx), "effect_levels": levels}


def _effect_terms(
    fd: FitData,
    priors: Mapping[str, Mapping[str, Any]],
    gidx: Any,
    parts: Mapping[str, Any],
    binary_only: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Per-point values of the per-group ``parts`` with the model-attribute effects added.

    ``parts`` maps a name (``"log_level"``, ``"log_alpha"``; the odds law also
    ``"odds_level"`` and ``"log_scatter"``) to its per-group tensor on the scale the effects
    add to. A column with levels ``False``/``True`` gets one coefficient per group and part
    (``True`` against ``False``, prior ``Normal(0, 1)``); other columns get a random effect
    per level, group and part with sd ``effect_{column}_{part}_sigma`` per group. Where
    the median (level, group) cell holds at least ``EFFECT_CENTERED_MIN`` points the effects are
    centred and sum to zero over the levels in each group (``pm.ZeroSumNormal``, the
    variable ``effect_{column}_{part}_zerosum``): the group's own parameter is then the
    levels' mean, and the sampler does not have to walk the ridge between it and the
    effects' mean (on the scaling benchmark's 6 runs: 31 leapfrog steps per draw against 51,
    docs/validation.md); otherwise non-centred (``..._z``). A level the fit has not seen
    draws its effect from ``Normal(0, sigma)`` either way. Each is the variable
    ``effect_{column}_{part}`` with dims ``(effect_{column}_level, group)``. The parts in
    ``binary_only`` are shifted only by ``False``/``True`` columns: a column of named levels
    (an architecture family, a training run) shifts the curve, and the many levels of such
    a column, with a point or two per group, do not pin down a slope or spread each. The
    rule depends on the column, not on the data's counts, so a refit of part of the data
    (the drift layer's) has the structure of the fit.
    """
    out = {part: value[gidx] for part, value in parts.items()}
    n_groups = len(fd.groups)
    for j, (col, levels) in enumerate(fd.effect_levels.items()):
        dim = f"effect_{col}_level"
        pm.Model.get_context().add_coord(dim, levels)
        idx = fd.effect_idx[:, j]
        cells = np.bincount(idx * n_groups + fd.group_idx, minlength=len(levels) * n_groups)
        # by the median cell, so that a refit without the top band (the drift layer's) keeps
        # the fit's parametrisation where one cell falls short
        centered = bool(np.median(cells) >= EFFECT_CENTERED_MIN)
        binary = list(levels) == BINARY_LEVELS
        for part in parts:
            if part in binary_only and not binary:
                continue
            name = f"effect_{col}_{part}"
            if binary:
                beta = pm.Normal(f"{name}_true", 0.0, 1.0, dims="group")
                eff = pm.Deterministic(
                    name, pt.stack([pt.zeros(n_groups), beta]), dims=(dim, "group")
                )
            else:
                s = _prior(f"{name}_sigma", priors["effect_sigma"], dims="group")
                if centered:
                    # zero-sum over the levels in each group (see the docstring)
                    raw = pm.ZeroSumNormal(f"{name}_zerosum", sigma=s[:, None], dims=("group", dim))
                    eff = pm.Deterministic(name, raw.T, dims=(dim, "group"))
                else:
                    z = pm.Normal(f"{name}_z", 0.0, 1.0, dims=(dim, "group"))
                    eff = pm.Deterministic(name, z * s[None, :], dims=(dim, "group"))
            out[part] = out[part] + eff[idx, gidx]
    return out


#: Parts of the odds law that model-attribute effects shift (:func:`_effect_terms`): the
#: curve's level and exponent, and its scatter (effectively robust models scatter more);
#: the last two only by ``False``/``True`` columns (e.g. timm's ``extra_data``).
ODDS_EFFECT_PARTS = ("odds_level", "log_alpha", "log_scatter")
ODDS_EFFECT_BINARY_ONLY = ("log_alpha", "log_scatter")


def is_centered(config: ModelConfig, fd: FitData) -> bool:
    """Resolve ``centered="auto"`` for these data."""
    if config.centered == "auto":
        # hull points lie on the curve with little noise: they pin each group down even
        # when few; scattered points pin it down only when many (measured, docs/model.md)
        if config.target == "hull":
            return bool(fd.groups["n"].min() >= 4)
        return bool(fd.groups["n"].min() >= CENTERED_MIN_POINTS)
    return bool(config.centered)


def _own_prior_sd(mu_spec: Mapping[str, Any], sigma_spec: Mapping[str, Any]) -> float:
    """Return the sd of a group's own prior: as wide as the population's prior predictive."""
    return float(np.hypot(mu_spec["sigma"], sigma_spec["sigma"]))


def _group_param(
    name: str,
    priors: Mapping[str, Mapping[str, Any]],
    config: ModelConfig,
    centered: bool,
    task_of_group: np.ndarray,
    setting_of_group: np.ndarray,
    n_settings: int,
) -> pt.TensorVariable:
    """Per-group parameter on the unconstrained scale, with the chosen pooling."""
    mu_spec, sigma_spec = priors[f"{name}_mu"], priors[f"{name}_sigma"]
    if config.pooling == "complete":
        value = _prior(name, mu_spec)
        return pm.Deterministic(f"{name}_group", value + pt.zeros(len(task_of_group)), dims="group")
    if config.pooling == "independent":
        # each task alone, under a fixed prior as wide as the population's prior predictive
        sd = _own_prior_sd(mu_spec, sigma_spec)
        return pm.Normal(f"{name}_group", mu=mu_spec["mu"], sigma=sd, dims="group")
    mu = _prior(f"{name}_mu", mu_spec)
    sigma = _prior(f"{name}_sigma", sigma_spec)
    if centered:
        task_eff = pm.Normal(f"{name}_task", mu=mu, sigma=sigma, dims="task")
    else:
        z = pm.Normal(f"{name}_task_z", 0.0, 1.0, dims="task")
        task_eff = pm.Deterministic(f"{name}_task", mu + sigma * z, dims="task")
    value = task_eff[task_of_group]
    if config.by_setting and n_settings > 1:
        # setting offsets shared by all tasks, plus a setting x task interaction
        offset = pm.Normal(f"{name}_setting", 0.0, 1.0, dims="setting")
        sigma_int = pm.HalfNormal(f"{name}_interaction_sigma", 0.3)
        zi = pm.Normal(f"{name}_interaction_z", 0.0, 1.0, dims="group")
        value = value + offset[setting_of_group] + sigma_int * zi
    return pm.Deterministic(f"{name}_group", value, dims="group")


def _law_params(args: tuple, log_e_ref: Any) -> tuple[Any, Any, Any, Any]:
    """Add the per-group law, its deterministics and ``sigma``; return the four tensors.

    ``args`` are :func:`_group_param`'s arguments after the name (priors and config first).
    """
    priors, config = args[0], args[1]
    log_level = _group_param("log_level", *args)
    log_alpha = _group_param("log_alpha", *args)
    logit_e_ir = _group_param("logit_e_ir", *args)
    alpha = pm.Deterministic("alpha", pt.exp(log_alpha), dims="group")
    e_ir = pm.Deterministic("e_ir", pm.math.sigmoid(logit_e_ir), dims="group")
    return log_level, alpha, e_ir, _law_tail(priors, config, log_level, alpha, e_ir, log_e_ref)


def _law_tail(
    priors: Mapping[str, Any], config: ModelConfig, log_level: Any, alpha: Any, e_ir: Any,
    log_e_ref: Any,
) -> Any:  # fmt: skip
    """Add ``k``, ``asymptote`` and the residual sd ``sigma`` of the law; return ``sigma``."""
    pm.Deterministic("k", pt.exp(log_level - alpha * log_e_ref), dims="group")
    pm.Deterministic("asymptote", 1.0 - e_ir, dims="group")
    sigma_spec = priors["noise" if config.likelihood == "frontier" else "sigma"]
    return _prior("sigma", sigma_spec, dims="group")


def anchor_dim(config: ModelConfig) -> str:
    """Return the dimension of an anchored law's sampled variables (:func:`uses_anchor`)."""
    return "group" if config.pooling == "independent" else "task"


def uses_anchor(config: ModelConfig, fd: FitData) -> bool:
    """Whether a model samples its law through the frontier at the best models.

    ``target="top"`` with each group its own task (no setting offsets), centred or each
    group on its own (:func:`_anchored_law_params`); other models sample ``log_level``,
    ``log_alpha`` and ``logit_e_ir`` directly.
    """
    if config.target != "top" or "log_e_best" not in fd.groups:
        return False
    if config.pooling == "independent":
        return True
    several = config.by_setting and len(fd.settings) > 1
    return config.pooling == "hierarchical" and is_centered(config, fd) and not several


def _anchored_law_params(args: tuple, log_e_ref: Any, log_e_best: Any) -> tuple[Any, ...]:
    """Add the law of a top fit, sampled through the frontier at both ends of its data.

    The kept points pin the frontier's error down at both ends of their US range; sampled
    as ``log_level``, ``log_alpha`` and ``logit_e_ir``, the law's parameters trade off along
    ridges (``logit_e_ir`` against the level, posterior correlation -0.95 on jft-25shot; the
    exponent against the irreducible share, 0.8-0.99, a curved ridge where a frontier is
    flat). Here each group samples the logit of the frontier's error ``f`` at the high end of
    its US range (``log_e_best``), the log of the frontier's rise ``d`` from there to the low
    end (``log_e_ref``) and the logit of the share ``u`` of ``f`` that is irreducible: the
    data pin the first two, and the exponent follows from where the irreducible error sits
    under them, ``e_ir = u f``, ``r = (1 - u) f`` (the reducible error at the best models),
    ``log_level = log(r + d)`` and ``alpha = log(1 + d / r) / (log_e_ref - log_e_best)``.
    The priors stay those of ``log_level``, ``log_alpha`` and ``logit_e_ir``
    (:data:`~scale_transfer.config.DEFAULT_PRIORS`), added as a potential with the log
    Jacobian of the map, ``log((1 - f) d / ((1 - e_ir) (r + d) log(1 + d / r)))``, so the
    posterior is the same as :func:`_law_params`'s up to the frontier's error at the best
    models being below 1.
    """
    priors, config = args[0], args[1]
    own = config.pooling == "independent"
    dim = anchor_dim(config)
    logit_f = pm.Flat(f"logit_frontier_best_{dim}", dims=dim)
    log_rise = pm.Flat(f"log_frontier_rise_{dim}", dims=dim)
    logit_u = pm.Flat(f"logit_e_ir_share_{dim}", dims=dim)
    log_f, log1m_f = -pt.softplus(-logit_f), -pt.softplus(logit_f)
    log_e = log_f - pt.softplus(-logit_u)
    log1m_e = pt.log1mexp(log_e)
    log_r = log_f - pt.softplus(logit_u)
    log_level = pt.logaddexp(log_r, log_rise)
    span = pt.softplus(log_rise - log_r)  # log(1 + d / r) = alpha * (log_e_ref - log_e_best)
    alpha = pm.Deterministic("alpha", span / (log_e_ref - log_e_best), dims="group")
    log_alpha = pt.log(alpha)
    if not own:
        pm.Deterministic("log_alpha_task", log_alpha, dims="task")
    pm.Deterministic("log_alpha_group", log_alpha, dims="group")
    logit_e_ir = log_e - log1m_e
    logp = pt.sum(log1m_f + log_rise - log1m_e - log_level - pt.log(span))  # log Jacobian
    laws = (("log_level", log_level), ("log_alpha", log_alpha), ("logit_e_ir", logit_e_ir))
    for name, value in laws:
        mu_spec, sigma_spec = priors[f"{name}_mu"], priors[f"{name}_sigma"]
        if own:  # as _group_param: a fixed prior as wide as the population's
            mu, sigma = mu_spec["mu"], _own_prior_sd(mu_spec, sigma_spec)
        else:
            mu, sigma = _prior(f"{name}_mu", mu_spec), _prior(f"{name}_sigma", sigma_spec)
            if name != "log_alpha":
                pm.Deterministic(f"{name}_task", value, dims="task")
        logp = logp + pt.sum(pm.logp(pm.Normal.dist(mu, sigma), value))
    pm.Potential("law_prior", logp)
    log_level = pm.Deterministic("log_level_group", log_level, dims="group")
    pm.Deterministic("logit_e_ir_group", logit_e_ir, dims="group")
    e_ir = pm.Deterministic("e_ir", pt.exp(log_e), dims="group")
    return log_level, alpha, e_ir, _law_tail(priors, config, log_level, alpha, e_ir, log_e_ref)


def _odds_params(args: tuple, x_ref: Any, x_top: Any) -> tuple[Any, ...]:
    """Add the odds law's per-group parameters and deterministics; return the five tensors.

    Sampled (:data:`~scale_transfer.config.ODDS_PARAMS`): the mean curve at ``x_ref``
    (``odds_ref``), its log rise per logit up to ``x_top`` and the log headroom of
    ``logit(c)`` above it there. From them: the inner level ``u_ref`` (``odds_level``),
    ``logit(c)`` (``logit_asymptote``) and the exponent, the inner argument's rise from
    ``x_ref`` to ``x_top``. The deterministics ``alpha``, ``asymptote``, ``e_ir`` and ``k`` are
    named as the paper's law names them (``k = c exp(-a)``, the paper's ``k`` near
    ``acc_us -> 1``); ``odds_a`` is the intercept ``a`` and ``sigma`` the scatter sd (logit
    units) at the group's reference point.
    """
    from scale_transfer.odds import inner_from_mean

    config = args[1]
    own = (args[0], replace(config, pooling="independent"), *args[2:])
    unpooled = config.pooling == "hierarchical"
    m_ref, log_rise, log_headroom, log_scatter, slope = (
        _group_param(p, *(own if unpooled and p in ODDS_UNPOOLED else args)) for p in ODDS_PARAMS
    )
    span = x_top - x_ref
    m_top = m_ref + pt.exp(log_rise) * span
    logit_c = pm.Deterministic("logit_asymptote_group", m_top + pt.exp(log_headroom), dims="group")
    level = pm.Deterministic("odds_level_group", inner_from_mean(m_ref, logit_c, pt), dims="group")
    u_top = inner_from_mean(m_top, logit_c, pt)
    alpha = pm.Deterministic("alpha", (u_top - level) / span, dims="group")
    a = pm.Deterministic("odds_a", level - alpha * x_ref, dims="group")
    asymptote = pm.Deterministic("asymptote", pm.math.sigmoid(logit_c), dims="group")
    pm.Deterministic("e_ir", pm.math.sigmoid(-logit_c), dims="group")
    pm.Deterministic("k", asymptote * pt.exp(-a), dims="group")
    pm.Deterministic("sigma", pt.exp(log_scatter), dims="group")
    return level, alpha, logit_c, log_scatter, slope


def _build_odds(
    fd: FitData,
    config: ModelConfig,
    coords: dict[str, Any],
    centered: bool,
    task_of_group: np.ndarray,
    setting_of_group: np.ndarray,
) -> pm.Model:
    """Build the odds-space law's model: Gaussian in ``logit(acc_ds)``, log sd linear in x."""
    from scale_transfer.odds import logit_mean, scatter_sd

    priors = config.full_priors
    with pm.Model(coords=coords) as model:
        x_ref = pm.Data("logit_us_ref", fd.groups["logit_us_ref"].to_numpy(float), dims="group")
        x_top = pm.Data("logit_us_top", fd.groups["logit_us_top"].to_numpy(float), dims="group")
        x = pm.Data("logit_us", fd.logit_us, dims="obs_id")
        y = pm.Data("logit_ds_obs", fd.logit_ds, dims="obs_id")
        gidx = pm.Data("group_idx", fd.group_idx, dims="obs_id")
        args = (priors, config, centered, task_of_group, setting_of_group, len(fd.settings))
        level, alpha, logit_c, log_scatter, slope = _odds_params(args, x_ref, x_top)
        xc = x - x_ref[gidx]
        lvl, alpha_obs, log_sd = level[gidx], alpha[gidx], log_scatter[gidx]
        if config.effects:
            base = dict(zip(ODDS_EFFECT_PARTS, (level, pt.log(alpha), log_scatter), strict=True))
            terms = _effect_terms(fd, priors, gidx, base, ODDS_EFFECT_BINARY_ONLY)
            lvl, log_sd = terms["odds_level"], terms["log_scatter"]
            alpha_obs = pt.exp(terms["log_alpha"])
        mu = logit_mean(lvl, alpha_obs, logit_c, xc, lib=pt, index=gidx)
        sd = scatter_sd(log_sd, slope[gidx], xc, lib=pt)
        pm.Normal("logit_ds", mu=mu, sigma=sd, observed=y, dims="obs_id")
    return model


def _discrepancy(
    model: pm.Model, priors: Mapping[str, Any], centered: bool, log_e_us: Any, gidx: Any
) -> Any:
    """Add the discrepancy term's coefficients; return its value at each point."""
    model.add_coord("discrepancy_basis", np.arange(DISCREPANCY_BASIS))
    eta = _prior("discrepancy_eta", priors["discrepancy_eta"], dims="group")
    dims = ("group", "discrepancy_basis")
    if centered:  # data-rich groups pin the coefficients down
        coef = pm.Normal("discrepancy_coef", 0.0, eta[:, None], dims=dims)
    else:
        z = pm.Normal("discrepancy_z", 0.0, 1.0, dims=dims)
        coef = pm.Deterministic("discrepancy_coef", eta[:, None] * z, dims=dims)
    return (discrepancy_basis(log_e_us, pt) * coef[gidx]).sum(-1)


def _likelihood(
    config: ModelConfig,
    priors: Mapping[str, Any],
    mu: Any,
    sigma: Any,
    log_level: Any,
    e_ir: Any,
    gidx: Any,
    e_ds_obs: Any,
    e_ds_cut: Any = None,
) -> None:
    """Add the observed ``e_ds`` under the configured likelihood around the law ``mu``.

    With ``target="top"`` the frontier likelihood is truncated to errors below each point's
    ``e_ds_cut`` (:func:`~scale_transfer.likelihoods.frontier_top_logp`).
    """
    if config.likelihood == "gaussian":
        pm.Normal("e_ds", mu=mu, sigma=sigma[gidx], observed=e_ds_obs, dims="obs_id")
    elif config.likelihood == "student_t":
        nu = _prior("nu", priors["nu"])
        pm.StudentT("e_ds", nu=nu, mu=mu, sigma=sigma[gidx], observed=e_ds_obs, dims="obs_id")
    else:
        gap = _prior("gap", priors["gap"], dims="group")
        shape = _prior("gap_shape", priors["gap_shape"], dims="group")
        power = _prior("gap_power", priors["gap_power"], dims="group")
        mu_pos = pt.maximum(mu, E_MIN)
        nu = frontier_gap_mean(gap[gidx], power[gidx], log_level[gidx], e_ir[gidx], mu_pos, lib=pt)
        if e_ds_cut is None:  # every point: the failed models' part of its own
            bad_share = _prior("bad_share", priors["bad_share"])
            bad_gap = _prior("bad_gap", priors["bad_gap"])
            rest, logp, random = (bad_share, nu + bad_gap), frontier_logp, frontier_random
        else:  # the best of each bin, truncated at its cut
            rest, logp, random = (e_ds_cut,), frontier_top_logp, frontier_top_random
        pm.CustomDist(
            "e_ds",
            mu,
            sigma[gidx],
            nu,
            FRONTIER_MAX_SHARE * shape[gidx],
            *rest,
            logp=logp,
            random=random,
            observed=e_ds_obs,
            dims="obs_id",
        )


def build_model(
    fd: FitData, config: ModelConfig, *, for_sampling: bool = False, for_prior: bool = False
) -> pm.Model:
    """Build the PyMC model for these data.

    Data enter through ``pm.Data`` (``log_e_us``, ``e_ds_obs``, ``group_idx``) so that a
    compiled model can be reused for new data with the same groups.

    Parameters
    ----------
    fd : FitData
        From :func:`prepare_data`.
    config : ModelConfig
        Structure and priors.
    for_sampling : bool
        Build the model only to draw from its posterior (nutpie): where
        ``config.summary_stats`` resolves to True for these data
        (:func:`scale_transfer.suffstats.use_summary_stats`), the per-point Gaussian
        likelihood is replaced by the potential ``e_ds_loglik`` computed from per-group
        sufficient statistics (``pm.Data`` named :data:`~scale_transfer.suffstats.STAT_NAMES`
        instead of the per-point data). Same log density to rounding, but no observed
        ``e_ds`` (no predictive sampling). Default False: the per-point model.
    for_prior : bool
        Build the model in the parametrization its priors are stated in, to draw from the
        prior: a top fit samples its law through the frontier at the best models
        (:func:`uses_anchor`), whose variables have no prior of their own. Same posterior.

    Returns
    -------
    pymc.Model
    """
    priors = config.full_priors
    if config.by_setting and config.pooling != "hierarchical":
        raise ValueError("by_setting needs pooling='hierarchical'")
    if not config.by_setting and len(fd.settings) > 1:
        # one setting level off: every (setting, task) pair is its own task
        task_labels = [f"{s}/{t}" for s, t in zip(fd.groups.setting, fd.groups.task, strict=True)]
        task_of_group = np.arange(len(fd.groups))
    else:
        task_labels = fd.tasks
        tindex = {t: i for i, t in enumerate(fd.tasks)}
        task_of_group = fd.groups["task"].map(tindex).to_numpy()
    sindex = {s: i for i, s in enumerate(fd.settings)}
    setting_of_group = fd.groups["setting"].map(sindex).to_numpy()
    group_labels = [f"{s}/{t}" for s, t in zip(fd.groups.setting, fd.groups.task, strict=True)]
    if len(fd.settings) == 1:
        group_labels = list(fd.groups.task)
    coords = {
        "group": group_labels,
        "task": task_labels,
        "setting": fd.settings,
        "obs_id": np.arange(len(fd.e_ds)),
    }
    centered = is_centered(config, fd)
    if getattr(config, "law", "error") == "odds":
        return _build_odds(fd, config, coords, centered, task_of_group, setting_of_group)
    stats = for_sampling and suffstats.use_summary_stats(fd, config)
    args = (priors, config, centered, task_of_group, setting_of_group, len(fd.settings))
    with pm.Model(coords=coords) as model:
        log_e_ref = pm.Data("log_e_ref", fd.groups["log_e_ref"].to_numpy(float), dims="group")
        if stats:
            stat_data = {k: pm.Data(k, v) for k, v in suffstats.moments(fd).items()}
            log_level, alpha, e_ir, sigma = _law_params(args, log_e_ref)
            pm.Potential(
                "e_ds_loglik",
                suffstats.gaussian_loglik(log_level, alpha, e_ir, sigma, stat_data).sum(),
            )
            return model
        log_e_us = pm.Data("log_e_us", fd.log_e_us, dims="obs_id")
        e_ds_obs = pm.Data("e_ds_obs", fd.e_ds, dims="obs_id")
        gidx = pm.Data("group_idx", fd.group_idx, dims="obs_id")
        cut = None
        if config.target == "top":
            cut = pm.Data("e_ds_cut", fd.e_ds_cut, dims="obs_id")
        if uses_anchor(config, fd) and not for_prior:
            best = pm.Data("log_e_best", fd.groups["log_e_best"].to_numpy(float), dims="group")
            log_level, alpha, e_ir, sigma = _anchored_law_params(args, log_e_ref, best)
        else:
            log_level, alpha, e_ir, sigma = _law_params(args, log_e_ref)
        lvl_obs, alpha_obs = log_level[gidx], alpha[gidx]
        if config.effects:
            base = {"log_level": log_level, "log_alpha": pt.log(alpha)}
            terms = _effect_terms(fd, priors, gidx, base)
            lvl_obs, alpha_obs = terms["log_level"], pt.exp(terms["log_alpha"])
        mu = pt.exp(lvl_obs + alpha_obs * (log_e_us - log_e_ref[gidx])) + e_ir[gidx]
        if getattr(config, "discrepancy", False):
            mu = mu + _discrepancy(model, priors, centered, log_e_us, gidx)
        _likelihood(config, priors, mu, sigma, log_level, e_ir, gidx, e_ds_obs, cut)
    return model
