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
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt

from scale_transfer import suffstats
from scale_transfer.data import MIN_POINTS, read_tidy

Target = Literal["all", "hull"]
Pooling = Literal["hierarchical", "independent", "complete"]
Likelihood = Literal["gaussian", "student_t", "frontier"]

TARGETS = ("all", "hull")
POOLINGS = ("hierarchical", "independent", "complete")
LIKELIHOODS = ("gaussian", "student_t", "frontier")
#: The three per-group parameters on their unconstrained scale.
PARAMS = ("log_level", "log_alpha", "logit_e_ir")
#: Smallest upstream error used (log of 0 is undefined).
E_MIN = 1e-6
#: With ``centered="auto"``, all-points fits centre the hierarchy when every group has at
#: least this many points; hull fits centre it from 4 points.
CENTERED_MIN_POINTS = 50

__all__ = [
    "DEFAULT_PRIORS",
    "LIKELIHOODS",
    "POOLINGS",
    "TARGETS",
    "FitData",
    "ModelConfig",
    "build_model",
    "prepare_data",
]

#: Default priors. ``<param>_mu`` and ``<param>_sigma`` are the population mean and the
#: between-task spread of each per-group parameter; the rest are per-group scales.
#: Units: ``log_level`` is the log reducible downstream *error* at the reference upstream
#: error; ``log_alpha`` the log exponent; ``logit_e_ir`` the logit of the irreducible error.
DEFAULT_PRIORS: dict[str, dict[str, Any]] = {
    "log_level_mu": {"dist": "Normal", "mu": -2.5, "sigma": 0.75},
    "log_level_sigma": {"dist": "HalfNormal", "sigma": 1.0},
    "log_alpha_mu": {"dist": "Normal", "mu": 1.0, "sigma": 0.75},
    "log_alpha_sigma": {"dist": "HalfNormal", "sigma": 0.5},
    "logit_e_ir_mu": {"dist": "Normal", "mu": -2.0, "sigma": 1.0},
    "logit_e_ir_sigma": {"dist": "HalfNormal", "sigma": 1.0},
    # residual scale of downstream error, per group
    "sigma": {"dist": "HalfNormal", "sigma": 0.05},
    # frontier likelihood: the noise sd (its ``sigma``), per group. Zero-avoiding: an accuracy
    # measured on a finite test set is never noise-free, and near sd 0 the gap's edge turns
    # into a kink where NUTS diverges (docs/calibration.md); mode 0.005, mean 0.01
    "noise": {"dist": "Gamma", "alpha": 2.0, "beta": 200.0},
    # Student-t degrees of freedom (shared)
    "nu": {"dist": "Gamma", "alpha": 2.0, "beta": 0.1},
    # frontier likelihood: mean gap below the frontier (in error) at the group's reference
    # point, per group; the gap's shape (share of its second exponential part, times
    # FRONTIER_MAX_SHARE); how its mean grows with the frontier's error (power); the share
    # of failed models and their extra mean gap (shared by the groups)
    "gap": {"dist": "HalfNormal", "sigma": 0.1},
    "gap_shape": {"dist": "Beta", "alpha": 2.0, "beta": 2.0},
    # the gap's power: 0 a constant mean gap, 1 a gap proportional to the frontier's error
    # (timm's shifted test sets: 2-2.7). Below -1 (the gap growing faster than the
    # frontier improves) is excluded: under Normal(0, 1) a chain could wander there during
    # tuning (power -7, noise sd 0.0007) and its trees hit the maximum depth for 25+
    # minutes (docs/study.md, session 7)
    "gap_power": {"dist": "TruncatedNormal", "mu": 1.0, "sigma": 1.0, "lower": -1.0},
    "bad_share": {"dist": "Beta", "alpha": 1.0, "beta": 19.0},
    "bad_gap": {"dist": "HalfNormal", "sigma": 0.3},
    # model-attribute effects (ModelConfig.effects): spread of the level effects on
    # log_level and on log_alpha, per group
    "effect_sigma": {"dist": "HalfNormal", "sigma": 0.5},
    # discrepancy term (ModelConfig.discrepancy): its amplitude (sd, in error), per group
    "discrepancy_eta": {"dist": "HalfNormal", "sigma": 0.05},
}


def _prior(name: str, spec: Mapping[str, Any], **kwargs: Any) -> pt.TensorVariable:
    params = {k: v for k, v in spec.items() if k != "dist"}
    return getattr(pm, spec["dist"])(name, **params, **kwargs)


#: Parameters that must be positive wherever a prior names them.
_POSITIVE_PARAMS = ("sigma", "beta", "alpha", "lam", "nu", "tau")


def _check_prior(name: str, spec: Mapping[str, Any]) -> None:
    """Refuse a prior that PyMC could not build, or one with a non-positive scale."""
    dist = spec.get("dist")
    cls = getattr(pm, str(dist), None)
    if not (isinstance(cls, type) and issubclass(cls, pm.Distribution)):
        raise ValueError(
            f"prior {name!r}: unknown distribution {dist!r} (a PyMC name, e.g. 'Normal')"
        )
    params = {k: v for k, v in spec.items() if k != "dist"}
    named = [
        n
        for n, p in inspect.signature(cls.dist).parameters.items()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    unknown = sorted(set(params) - set(named))
    if unknown:
        raise ValueError(
            f"prior {name!r}: {dist} has no parameter(s) {', '.join(unknown)} "
            f"(it takes {', '.join(named)})"
        )
    for key in _POSITIVE_PARAMS:
        value = params.get(key)
        if isinstance(value, int | float) and not value > 0:
            raise ValueError(f"prior {name!r}: {key} must be positive; got {value!r}")
    try:
        cls.dist(**params)
    except Exception as err:  # noqa: BLE001 - PyMC raises several kinds for bad parameters
        raise ValueError(f"prior {name!r}: {dist}({params}) is not valid: {err}") from err


@dataclass(frozen=True)
class ModelConfig:
    """Structure and priors of the model: everything but the data.

    Parameters
    ----------
    target : {"all", "hull"}
        Fit every point, or only the upper-hull points of each group.
    pooling : {"hierarchical", "independent", "complete"}
        Partial pooling across tasks (default), none (each task its own fixed prior),
        or one curve shared by all tasks.
    likelihood : {"gaussian", "student_t", "frontier"}
        Gaussian residuals (the paper's least squares), Student-t residuals (robust to
        the tail of bad models), or a stochastic frontier: each model sits above its
        task's frontier error by a non-negative gap plus Gaussian noise. The gap is the sum
        of two exponential parts (shares ``w`` and ``1 - w`` of its mean: from a plain
        exponential at ``w = 0`` to a gap that is rarely near 0), its mean grows as a power
        of the frontier's error, and a share of failed models has a larger gap (see
        :func:`frontier_logp`).
    by_setting : bool
        Add a setting level (upstream dataset x shots): parameters vary by task and by
        setting, task effects shared across settings.
    centered : {"auto", True, False}
        Centred or non-centred hierarchy. ``"auto"`` centres when every group has at
        least ``CENTERED_MIN_POINTS`` points (the data pin each group down).
    priors : dict
        Overrides of :data:`DEFAULT_PRIORS`, merged as ``defaults | priors``.
    effects : tuple of str
        Categorical columns of the data that describe the models (e.g. ``"family"``,
        ``"extra_data"``; ``"model"`` gives one latent effect per model). Each level of
        each column shifts every group's ``log_level`` and ``log_alpha`` by its own
        amount, drawn from ``Normal(0, s)`` with a spread ``s`` per group and column
        (prior ``effect_sigma``): models of one kind follow their own curve, partially
        pooled. ``k``, ``alpha`` and the asymptote are then those of the population
        (effect 0). Default ``()``: no effects.
    discrepancy : bool
        Add a smooth discrepancy ``f_g(log e_us)`` to each group's law: a Gaussian process
        with squared-exponential kernel (length-scale :data:`DISCREPANCY_ELL` in
        ``log e_us``, amplitude per group with prior ``discrepancy_eta``) in its
        Hilbert-space approximation. Where the law misfits the data the amplitude grows,
        and predictions away from the data revert to the law with that much extra
        uncertainty. The asymptote stays the law's ``1 - e_ir``. Default False.
    summary_stats : {"auto", True, False}
        Compute the Gaussian likelihood from per-group sufficient statistics
        (:mod:`scale_transfer.suffstats`) when sampling with nutpie: the same posterior
        (exact to rounding) at a cost per gradient that does not grow with the number of
        points. Applies to ``likelihood="gaussian"`` without ``effects`` or
        ``discrepancy``. ``"auto"`` (default) uses it when every group has at least
        :data:`scale_transfer.suffstats.MIN_POINTS` points. It changes how the posterior
        is computed, not the model: it is left out of :meth:`structure_hash`.
    """

    target: str = "all"
    pooling: str = "hierarchical"
    likelihood: str = "gaussian"
    by_setting: bool = False
    centered: bool | str = "auto"
    priors: dict[str, dict[str, Any]] = field(default_factory=dict)
    effects: tuple[str, ...] = ()
    discrepancy: bool = False
    summary_stats: bool | str = "auto"

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("target", self.target, TARGETS),
            ("pooling", self.pooling, POOLINGS),
            ("likelihood", self.likelihood, LIKELIHOODS),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
        if self.centered not in ("auto", True, False):
            raise ValueError(f"centered must be 'auto', True or False; got {self.centered!r}")
        if self.summary_stats not in ("auto", True, False):
            raise ValueError(
                f"summary_stats must be 'auto', True or False; got {self.summary_stats!r}"
            )
        unknown = set(self.priors) - set(DEFAULT_PRIORS)
        if unknown:
            raise ValueError(f"unknown prior(s) {sorted(unknown)}; known: {sorted(DEFAULT_PRIORS)}")
        merged = copy.deepcopy(DEFAULT_PRIORS)
        for name, spec in self.priors.items():
            if not isinstance(spec, Mapping):
                raise ValueError(
                    f"prior {name!r} must be a dict such as {DEFAULT_PRIORS[name]}; got {spec!r}"
                )
            # without 'dist', the keys change the parameters of the default distribution
            spec = dict(spec) if "dist" in spec else merged[name] | dict(spec)
            if spec != DEFAULT_PRIORS[name]:  # a saved fit's full priors: only the changed
                _check_prior(name, spec)
            merged[name] = spec
        effects = (self.effects,) if isinstance(self.effects, str) else tuple(self.effects)
        object.__setattr__(self, "effects", tuple(str(e) for e in effects))
        if not isinstance(self.summary_stats, str):
            object.__setattr__(self, "summary_stats", bool(self.summary_stats))
        if self.summary_stats is True and (
            self.likelihood != "gaussian" or self.effects or self.discrepancy
        ):
            raise ValueError(
                "summary_stats=True needs likelihood='gaussian', no effects and no discrepancy"
            )
        # keep the priors in full (defaults | user), so equal models compare equal
        object.__setattr__(self, "priors", merged)

    @property
    def full_priors(self) -> dict[str, dict[str, Any]]:
        """Return the default priors updated with the user's."""
        return copy.deepcopy(DEFAULT_PRIORS) | copy.deepcopy(self.priors)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (priors in full)."""
        d = asdict(self)
        d["priors"] = self.full_priors
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelConfig:
        """Build a config from :meth:`to_dict` output."""
        return cls(**dict(d))

    def structure_hash(self) -> str:
        """Return a hash of the model structure and priors (not the data).

        ``summary_stats`` is left out: it changes how the likelihood is computed, not the
        posterior, and fits saved before it existed keep their hash.
        """
        d = self.to_dict()
        d.pop("summary_stats", None)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


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


#: This package's folder: warnings are attributed to the first caller outside it.
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


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
        skip_file_prefixes=(_PACKAGE_DIR,),
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
    groups["log_e_ref"] = np.bincount(group_idx, weights=log_e_us) / groups["n"].to_numpy()
    if config.target == "hull" and config.pooling != "complete":  # complete: one curve
        _warn_few_hull_points(groups, config)
    return FitData(
        frame=df,
        groups=groups,
        settings=settings,
        tasks=tasks,
        log_e_us=log_e_us,
        e_ds=1.0 - used["ds_acc"].to_numpy(float),
        group_idx=group_idx,
        **_effect_codes(used, config),
    )


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


#: Random effects are centred where every (level, group) cell has this many points.
EFFECT_CENTERED_MIN = 10


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
            from scale_transfer.data import _name_rows

            rows = _name_rows(np.flatnonzero(used[col].isna().to_numpy()), labels=list(used.index))
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
    fd: FitData, priors: Mapping[str, Mapping[str, Any]], gidx: Any, log_level: Any, alpha: Any
) -> tuple[Any, Any]:
    """Per-point ``log_level`` and ``alpha`` with the model-attribute effects added.

    A column with levels ``False``/``True`` gets one coefficient per group (``True``
    against ``False``, prior ``Normal(0, 1)``); other columns get a random effect per
    level and group, centred where every (level, group) cell holds at least
    ``EFFECT_CENTERED_MIN`` points and non-centred otherwise.
    """
    lvl, log_a = log_level[gidx], pt.log(alpha)[gidx]
    n_groups = len(fd.groups)
    for j, (col, levels) in enumerate(fd.effect_levels.items()):
        dim = f"effect_{col}_level"
        pm.Model.get_context().add_coord(dim, levels)
        idx = fd.effect_idx[:, j]
        cells = np.bincount(idx * n_groups + fd.group_idx, minlength=len(levels) * n_groups)
        centered = bool(cells.min() >= EFFECT_CENTERED_MIN)
        for part in ("log_level", "log_alpha"):
            name = f"effect_{col}_{part}"
            if levels == ["False", "True"]:
                beta = pm.Normal(f"{name}_true", 0.0, 1.0, dims="group")
                eff = pm.Deterministic(
                    name, pt.stack([pt.zeros(n_groups), beta]), dims=(dim, "group")
                )
            else:
                s = _prior(f"{name}_sigma", priors["effect_sigma"], dims="group")
                if centered:
                    eff = pm.Normal(name, 0.0, s[None, :], dims=(dim, "group"))
                else:
                    z = pm.Normal(f"{name}_z", 0.0, 1.0, dims=(dim, "group"))
                    eff = pm.Deterministic(name, z * s[None, :], dims=(dim, "group"))
            term = eff[idx, gidx]
            if part == "log_level":
                lvl = lvl + term
            else:
                log_a = log_a + term
    return lvl, pt.exp(log_a)


def is_centered(config: ModelConfig, fd: FitData) -> bool:
    """Resolve ``centered="auto"`` for these data."""
    if config.centered == "auto":
        # hull points lie on the curve with little noise: they pin each group down even
        # when few; scattered points pin it down only when many (measured, docs/model.md)
        if config.target == "hull":
            return bool(fd.groups["n"].min() >= 4)
        return bool(fd.groups["n"].min() >= CENTERED_MIN_POINTS)
    return bool(config.centered)


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
        sd = float(np.hypot(mu_spec["sigma"], sigma_spec["sigma"]))
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


#: Above this standardized distance ``z`` past the gap's mode the normal CDF factor of the
#: ex-Gaussian density is 1 to double precision (``erfc(-8/sqrt(2)) = 2 - 1.2e-15``).
_EXG_Z_SWITCH = 8.0


def exgaussian_logp(value, mu, sigma, nu):
    """Log density of ``mu + Normal(0, sigma) + Exponential(mean=nu)``, stable everywhere.

    PyMC's ``ExGaussian`` switches to a plain normal when ``nu < 0.05 * sigma``; the switch
    leaves the gradient in ``nu`` at zero there, and chains that start on that side stay
    stuck. This form is exact on both sides: with ``z = (value - mu)/sigma - sigma/nu``,
    for ``z < 8`` it uses the scaled complementary error function
    (``log p = -log nu - (d/sigma)^2/2 + log(erfcx(-z/sqrt 2)/2)``), which removes the
    cancellation between a large exponent and a tiny normal CDF; beyond, where the CDF
    factor is 1 to double precision, the exponential's closed form. One special function
    per point (its gradient included), not two.
    """
    d = value - mu
    z = d / sigma - sigma / nu
    zl = pt.minimum(z, _EXG_Z_SWITCH)  # erfcx(-z/sqrt 2) overflows for z > 37
    left = -pt.log(nu) - 0.5 * pt.sqr(d / sigma) + pt.log(0.5 * pt.erfcx(-zl / np.sqrt(2.0)))
    right = -pt.log(nu) - d / nu + 0.5 * pt.sqr(sigma / nu)
    return pt.switch(pt.lt(z, _EXG_Z_SWITCH), left, right)


#: Largest share ``w`` of the gap's second exponential part (at 0.5 the two parts have the
#: same rate and the closed form below divides by zero).
FRONTIER_MAX_SHARE = 0.45


def hypoexp_gaussian_logp(value, mu, sigma, nu, w):
    """Log density of ``mu + Normal(0, sigma) + Exp(mean (1-w) nu) + Exp(mean w nu)``.

    With rates ``a = 1/((1-w) nu)`` and ``b = 1/(w nu)`` the gap's density is
    ``(b f_a - a f_b) / (b - a)`` in terms of the exponential densities; convolved with the
    noise, ``f_a`` and ``f_b`` become ex-Gaussian densities (:func:`exgaussian_logp`), so
    ``log p = log f_a + log((1-w)/(1-2w)) + log1p(-(w/(1-w)) f_b / f_a)``, for
    ``0 < w < 1/2``; as ``w -> 0`` it tends to the ex-Gaussian.
    """
    lfa = exgaussian_logp(value, mu, sigma, (1.0 - w) * nu)
    lfb = exgaussian_logp(value, mu, sigma, w * nu)
    ratio = pt.minimum(w / (1.0 - w) * pt.exp(lfb - lfa), 1.0 - 1e-12)
    return lfa + pt.log((1.0 - w) / (1.0 - 2.0 * w)) + pt.log1p(-ratio)


def frontier_logp(value, mu, sigma, nu, w, bad_share, nu_bad):
    """Log density of the frontier likelihood.

    A share ``1 - bad_share`` of the models sits above the frontier error ``mu`` by the
    two-part gap of :func:`hypoexp_gaussian_logp` (mean ``nu``, shape ``w``) plus noise;
    the failed models (``bad_share``) by one exponential gap of mean ``nu_bad`` plus noise.
    """
    good = pt.log1p(-bad_share) + hypoexp_gaussian_logp(value, mu, sigma, nu, w)
    bad = pt.log(bad_share) + exgaussian_logp(value, mu, sigma, nu_bad)
    return pt.logaddexp(good, bad)


def frontier_gap_draws(
    rng: np.random.Generator, nu: Any, w: Any, bad_share: Any, nu_bad: Any, size: Any
) -> np.ndarray:
    """Draw gaps of the frontier likelihood (parameters broadcast to ``size``)."""
    nu, w, bad_share, nu_bad = (np.broadcast_to(v, size) for v in (nu, w, bad_share, nu_bad))
    gap = rng.exponential((1.0 - w) * nu) + rng.exponential(np.maximum(w * nu, 1e-300))
    bad = rng.random(size) < bad_share
    return np.where(bad, rng.exponential(nu_bad), gap)


def _frontier_random(mu, sigma, nu, w, bad_share, nu_bad, rng=None, size=None):
    rng = np.random.default_rng(rng)
    size = np.broadcast_shapes(*(np.shape(v) for v in (mu, sigma, nu, w))) if size is None else size
    gap = frontier_gap_draws(rng, nu, w, bad_share, nu_bad, size)
    return mu + sigma * rng.standard_normal(size) + gap


def frontier_gap_mean(gap, power, log_level, e_ir, mu, lib: Any = np):
    """Mean gap of a good model where the frontier error is ``mu``.

    ``gap * (mu / mu_ref) ** power`` with ``mu_ref = exp(log_level) + e_ir``, the frontier
    error at the group's reference point (all arguments broadcast).
    """
    return gap * lib.exp(power * (lib.log(mu) - lib.log(lib.exp(log_level) + e_ir)))


def _law_params(
    priors: Mapping[str, Mapping[str, Any]],
    config: ModelConfig,
    centered: bool,
    task_of_group: np.ndarray,
    setting_of_group: np.ndarray,
    fd: FitData,
    log_e_ref: Any,
) -> tuple[Any, Any, Any, Any]:
    """Add the per-group law, its deterministics and ``sigma``; return the four tensors."""
    args = (priors, config, centered, task_of_group, setting_of_group, len(fd.settings))
    log_level = _group_param("log_level", *args)
    log_alpha = _group_param("log_alpha", *args)
    logit_e_ir = _group_param("logit_e_ir", *args)
    alpha = pm.Deterministic("alpha", pt.exp(log_alpha), dims="group")
    e_ir = pm.Deterministic("e_ir", pm.math.sigmoid(logit_e_ir), dims="group")
    pm.Deterministic("k", pt.exp(log_level - alpha * log_e_ref), dims="group")
    pm.Deterministic("asymptote", 1.0 - e_ir, dims="group")
    sigma_spec = priors["noise" if config.likelihood == "frontier" else "sigma"]
    sigma = _prior("sigma", sigma_spec, dims="group")
    return log_level, alpha, e_ir, sigma


def build_model(fd: FitData, config: ModelConfig, *, for_sampling: bool = False) -> pm.Model:
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
    stats = for_sampling and suffstats.use_summary_stats(fd, config)
    with pm.Model(coords=coords) as model:
        log_e_ref = pm.Data("log_e_ref", fd.groups["log_e_ref"].to_numpy(float), dims="group")
        if stats:
            stat_data = {k: pm.Data(k, v) for k, v in suffstats.moments(fd).items()}
            log_level, alpha, e_ir, sigma = _law_params(
                priors, config, centered, task_of_group, setting_of_group, fd, log_e_ref
            )
            pm.Potential(
                "e_ds_loglik",
                suffstats.gaussian_loglik(log_level, alpha, e_ir, sigma, stat_data).sum(),
            )
            return model
        log_e_us = pm.Data("log_e_us", fd.log_e_us, dims="obs_id")
        e_ds_obs = pm.Data("e_ds_obs", fd.e_ds, dims="obs_id")
        gidx = pm.Data("group_idx", fd.group_idx, dims="obs_id")
        log_level, alpha, e_ir, sigma = _law_params(
            priors, config, centered, task_of_group, setting_of_group, fd, log_e_ref
        )
        lvl_obs, alpha_obs = log_level[gidx], alpha[gidx]
        if config.effects:
            lvl_obs, alpha_obs = _effect_terms(fd, priors, gidx, log_level, alpha)
        mu = pt.exp(lvl_obs + alpha_obs * (log_e_us - log_e_ref[gidx])) + e_ir[gidx]
        if getattr(config, "discrepancy", False):
            model.add_coord("discrepancy_basis", np.arange(DISCREPANCY_BASIS))
            eta = _prior("discrepancy_eta", priors["discrepancy_eta"], dims="group")
            dims = ("group", "discrepancy_basis")
            if centered:  # data-rich groups pin the coefficients down
                coef = pm.Normal("discrepancy_coef", 0.0, eta[:, None], dims=dims)
            else:
                z = pm.Normal("discrepancy_z", 0.0, 1.0, dims=dims)
                coef = pm.Deterministic("discrepancy_coef", eta[:, None] * z, dims=dims)
            mu = mu + (discrepancy_basis(log_e_us, pt) * coef[gidx]).sum(-1)
        if config.likelihood == "gaussian":
            pm.Normal("e_ds", mu=mu, sigma=sigma[gidx], observed=e_ds_obs, dims="obs_id")
        elif config.likelihood == "student_t":
            nu = _prior("nu", priors["nu"])
            pm.StudentT("e_ds", nu=nu, mu=mu, sigma=sigma[gidx], observed=e_ds_obs, dims="obs_id")
        else:
            gap = _prior("gap", priors["gap"], dims="group")
            shape = _prior("gap_shape", priors["gap_shape"], dims="group")
            power = _prior("gap_power", priors["gap_power"], dims="group")
            bad_share = _prior("bad_share", priors["bad_share"])
            bad_gap = _prior("bad_gap", priors["bad_gap"])
            mu_pos = pt.maximum(mu, E_MIN)
            nu = frontier_gap_mean(
                gap[gidx], power[gidx], log_level[gidx], e_ir[gidx], mu_pos, lib=pt
            )
            pm.CustomDist(
                "e_ds",
                mu,
                sigma[gidx],
                nu,
                FRONTIER_MAX_SHARE * shape[gidx],
                bad_share,
                nu + bad_gap,
                logp=frontier_logp,
                random=_frontier_random,
                observed=e_ds_obs,
                dims="obs_id",
            )
    return model
