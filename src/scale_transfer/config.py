"""Configuration as data: model structure and priors, sampler settings, vocabularies.

The model's structure and priors, the sampler's settings, and the vocabularies
(targets, poolings, likelihoods, interval kinds) in one place.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import inspect
import json
import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import pymc as pm

__all__ = [
    "ADAPTATIONS",
    "DEFAULT_KIND",
    "DEFAULT_PRIORS",
    "DEFAULT_PROB",
    "EXTRAPOLATIONS",
    "INTERVAL_KINDS",
    "LAWS",
    "LIKELIHOODS",
    "POOLINGS",
    "SAMPLERS",
    "TARGETS",
    "TOP_BINS",
    "TOP_POINTS",
    "TOP_SHARE",
    "ModelConfig",
    "SamplerConfig",
]

#: The installed package's version (written into every saved fit).
VERSION = importlib.metadata.version("scale-transfer")
#: This package's folder: warnings are attributed to the first caller outside it.
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

Target = Literal["all", "hull", "top"]
Pooling = Literal["hierarchical", "independent", "complete"]
Likelihood = Literal["gaussian", "student_t", "frontier"]
Law = Literal["error", "odds"]
Extrapolation = Literal["none", "lfo"]

#: ``"top"``: the best points of each bin of US accuracy (:data:`TOP_SHARE` of each of up
#: to :data:`TOP_BINS` bins per task), fitted with the frontier likelihood truncated to
#: them (:func:`scale_transfer.likelihoods.frontier_top_logp`): an estimate of the
#: frontier's law that needs only a fifth of the points.
TARGETS = ("all", "hull", "top")
#: ``target="top"``: share of each bin's points kept (the best by DS accuracy) ...
TOP_SHARE = 0.2
#: ... in this many bins of equal count along the task's US accuracy (fewer where a task
#: has under 10 points per bin).
TOP_BINS = 30
#: The points a ``target="top"`` fit keeps, in words (help texts, reports).
TOP_POINTS = (
    f"the best {TOP_SHARE:.0%} of each task's points in each of up to {TOP_BINS} bins of US "
    "accuracy"
)
POOLINGS = ("hierarchical", "independent", "complete")
LIKELIHOODS = ("gaussian", "student_t", "frontier")
#: The law: the paper's, in error (``e_ds = k e_us**alpha + e_ir``), or the odds-space law
#: ``acc_ds = c * sigmoid(a + alpha * logit(acc_us))`` with ``c = 1 - e_ir`` and Gaussian
#: scatter in ``logit(acc_ds)`` whose log sd is linear in ``logit(acc_us)``.
LAWS = ("error", "odds")
#: How a new model's predictive behaves beyond the data: as fitted (``"none"``), or with a
#: drift layer learned by leave-future-out inside the data (``"lfo"``,
#: :mod:`scale_transfer.extrapolation`).
EXTRAPOLATIONS = ("none", "lfo")
#: The three per-group parameters on their unconstrained scale.
PARAMS = ("log_level", "log_alpha", "logit_e_ir")
#: The odds law's five per-group parameters on their unconstrained scale, each anchored where
#: the group's data are: the mean ``logit(acc_ds)`` at the group's reference point ``x_ref``
#: (its mean ``logit(acc_us)``), the log of the mean curve's rise per logit of US accuracy
#: from there to the group's upper anchor ``x_top`` (90th percentile of ``logit(acc_us)``),
#: the log headroom of ``logit(c)`` above the mean curve at ``x_top``, the log scatter sd at
#: ``x_ref`` and the scatter's slope in ``logit(acc_us)``. The asymptote, exponent and inner
#: level follow from these (:func:`scale_transfer.odds.inner_from_mean`); anchoring two points
#: the data pin down leaves the weakly identified curvature on one axis of its own.
ODDS_PARAMS = ("odds_ref", "odds_log_rise", "log_headroom", "log_scatter", "scatter_slope")
#: Of these, the ones each group has on its own in a hierarchical fit, under a fixed prior as
#: wide as the population's prior predictive (as ``pooling="independent"`` has every
#: parameter). The headroom of one task's asymptote says little about another's, and where
#: the data barely bound it from above (timm's ImageNet-A) its posterior is the prior's long
#: tail: pooled, that tail and the population sd mixed slowly (R-hat 1.016, bulk ESS 316 at
#: ImageNet-A's asymptote on timm's training split, seed 0); unpooled, R-hat 1.004 and bulk
#: ESS 1,042 in the same time.
ODDS_UNPOOLED = ("log_headroom",)
#: Smallest upstream error used (log of 0 is undefined).
E_MIN = 1e-6
#: The odds law clips accuracies to ``[ACC_EPS, 1 - ACC_EPS]`` before taking logits.
ACC_EPS = 1e-4
#: With ``centered="auto"``, all-points fits centre the hierarchy when every group has at
#: least this many points; hull fits centre it from 4 points.
CENTERED_MIN_POINTS = 50

#: Interval kinds: equal-tailed (quantiles at ``(1-prob)/2`` and ``(1+prob)/2``) or
#: highest-density; both computed by arviz-stats.
INTERVAL_KINDS = ("eti", "hdi")
#: The interval every table, figure and command reports unless asked otherwise.
DEFAULT_PROB = 0.9
DEFAULT_KIND = "eti"

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
    # measured on a finite test set is never noise-free (binomial sd 0.0013 at 90% on 50,000
    # examples), and near sd 0 the gap's edge turns into a kink where NUTS diverges
    # (docs/calibration.md). Median 0.004, 95% between 0.0015 and 0.011; a lognormal, not
    # Gamma(2, 200), whose density falls only linearly to 0 (top fits on jft-25shot diverged
    # where a noise sd reached 0.0001). Log sd 0.5, not 1: with 1, a top fit on in21k-1shot
    # diverged at a noise sd of 0.00008 and col_hist's noise sd slowed jft-25shot's chains
    # (1,500 draws needed where 1,000 now pass; docs/calibration.md, 2026-12-07). Its upper
    # tail is light: on timm's shifted test sets, whose noise sd is about 0.1, it pulls the
    # noise sd down by some 15% (docs/calibration.md)
    "noise": {"dist": "LogNormal", "mu": math.log(0.004), "sigma": 0.5},
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
    # minutes (docs/study.md, measured 2026-11-28)
    "gap_power": {"dist": "TruncatedNormal", "mu": 1.0, "sigma": 1.0, "lower": -1.0},
    "bad_share": {"dist": "Beta", "alpha": 1.0, "beta": 19.0},
    "bad_gap": {"dist": "HalfNormal", "sigma": 0.3},
    # model-attribute effects (ModelConfig.effects): spread of the level effects on
    # log_level and on log_alpha, per group
    "effect_sigma": {"dist": "HalfNormal", "sigma": 0.5},
    # discrepancy term (ModelConfig.discrepancy): its amplitude (sd, in error), per group
    "discrepancy_eta": {"dist": "HalfNormal", "sigma": 0.05},
    # odds law (ModelConfig.law="odds"), all in logit units. odds_ref: the mean
    # logit(acc_ds) at the group's mean logit US accuracy; odds_log_rise: log of the mean
    # curve's rise per logit of US accuracy up to the group's upper anchor (0 = "accuracy on
    # the line" with slope 1); log_headroom: log of logit(c) - (mean curve at the upper
    # anchor), c = 1 - e_ir: median headroom 1.6 logits, 95% of tasks between 0.2 and 12
    # (large headroom = a nearly logit-linear curve, which leaves c to the prior);
    # log_scatter: log sd of logit(acc_ds) at the reference point (mean sd 0.22);
    # scatter_slope: its change per logit of US accuracy
    "odds_ref_mu": {"dist": "Normal", "mu": 0.0, "sigma": 2.0},
    "odds_ref_sigma": {"dist": "HalfNormal", "sigma": 1.5},
    "odds_log_rise_mu": {"dist": "Normal", "mu": 0.0, "sigma": 0.75},
    "odds_log_rise_sigma": {"dist": "HalfNormal", "sigma": 0.5},
    "log_headroom_mu": {"dist": "Normal", "mu": 0.5, "sigma": 1.0},
    "log_headroom_sigma": {"dist": "HalfNormal", "sigma": 0.75},
    "log_scatter_mu": {"dist": "Normal", "mu": -1.5, "sigma": 1.0},
    "log_scatter_sigma": {"dist": "HalfNormal", "sigma": 0.75},
    "scatter_slope_mu": {"dist": "Normal", "mu": 0.0, "sigma": 0.5},
    "scatter_slope_sigma": {"dist": "HalfNormal", "sigma": 0.3},
}


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


#: The fields that ``law="auto"`` and ``extrapolation="auto"`` are resolved from.
_AUTO_INPUTS = ("target", "likelihood", "effects", "discrepancy", "summary_stats")


@dataclass(frozen=True)
class ModelConfig:
    """Structure and priors of the model: everything but the data.

    Parameters
    ----------
    target : {"all", "hull", "top"}
        Fit every point, only the upper-hull points of each group, or the best points of
        each bin of US accuracy (:data:`TOP_SHARE` of each of :data:`TOP_BINS` bins; needs
        ``likelihood="frontier"``, which is then truncated to the kept points).
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
        pooled. With ``law="odds"`` they shift the odds curve's level, and a
        ``False``/``True`` column its exponent and log scatter too
        (:data:`scale_transfer.model.ODDS_EFFECT_PARTS`). ``k``, ``alpha`` and the
        asymptote are then those of the population (effect 0). Default ``()``: no effects.
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
    law : {"auto", "error", "odds"}
        The paper's law in error space, ``e_ds = k e_us**alpha + e_ir``, or the odds-space
        law ``acc_ds = c sigmoid(a + alpha logit(acc_us))`` with Gaussian scatter in
        ``logit(acc_ds)`` (:mod:`scale_transfer.odds`). ``"auto"`` (default) is the odds
        law for Gaussian fits of all points without effects or discrepancy, whose
        predictions for new, better models it calibrates (docs/validation.md), and the
        paper's law otherwise (hull fits, the Student-t and frontier likelihoods).
    extrapolation : {"auto", "none", "lfo"}
        New-model predictions beyond the data as fitted, or with a drift layer learned by
        leave-future-out inside the data (:mod:`scale_transfer.extrapolation`; odds law
        only). ``"auto"`` (default): ``"lfo"`` for the odds law, else ``"none"``.
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
    law: str = "auto"
    extrapolation: str = "auto"

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("target", self.target, TARGETS),
            ("pooling", self.pooling, POOLINGS),
            ("likelihood", self.likelihood, LIKELIHOODS),
            ("law", self.law, ("auto", *LAWS)),
            ("extrapolation", self.extrapolation, ("auto", *EXTRAPOLATIONS)),
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
        if self.law == "auto":
            plain = (
                self.target == "all"
                and self.likelihood == "gaussian"
                and not self.effects
                and not self.discrepancy
                and self.summary_stats is not True
            )
            object.__setattr__(self, "law", "odds" if plain else "error")
        if self.extrapolation == "auto":
            object.__setattr__(self, "extrapolation", "lfo" if self.law == "odds" else "none")
        if self.summary_stats is True and (
            self.likelihood != "gaussian" or self.effects or self.discrepancy
        ):
            raise ValueError(
                "summary_stats=True needs likelihood='gaussian', no effects and no discrepancy"
            )
        if self.law == "odds" and (self.likelihood != "gaussian" or self.discrepancy):
            raise ValueError("law='odds' needs likelihood='gaussian' and no discrepancy")
        if self.target == "top" and self.likelihood != "frontier":
            raise ValueError(
                "target='top' needs likelihood='frontier': the best points of each bin are "
                "fitted with the frontier likelihood truncated to them"
            )
        if self.law == "odds" and self.summary_stats is True:
            raise ValueError("summary_stats=True needs law='error' (the odds law has none)")
        # keep the priors in full (defaults | user), so equal models compare equal
        object.__setattr__(self, "priors", merged)

    @property
    def estimand(self) -> str:
        """Whose asymptote this model estimates: ``"frontier"`` or ``"typical model"``.

        Hull and top fits and the frontier likelihood estimate the best models' curve; a
        Gaussian or Student-t fit of all points the mean curve, a typical model's.
        """
        frontier = self.target != "all" or self.likelihood == "frontier"
        return "frontier" if frontier else "typical model"

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
        """Build a config from :meth:`to_dict` output.

        A dict without ``law`` or ``extrapolation`` (written before they existed) is the
        paper's law without a drift layer, as it was fitted.
        """
        return cls(**({"law": "error", "extrapolation": "none"} | dict(d)))

    def with_changes(self, **changes: Any) -> ModelConfig:
        """Return this config with ``changes``.

        A law and drift layer it has by default (``"auto"``, resolved) are resolved anew
        for the changed fields: ``ModelConfig().with_changes(target="hull")`` is
        ``ModelConfig(target="hull")``.
        """
        if not changes:
            return self
        default = ModelConfig(**{k: getattr(self, k) for k in _AUTO_INPUTS})
        for name in ("law", "extrapolation"):
            if name not in changes and getattr(self, name) == getattr(default, name):
                changes[name] = "auto"
        return replace(self, **changes)

    def structure_hash(self) -> str:
        """Return a hash of the model structure and priors (not the data).

        ``summary_stats`` is left out: it changes how the likelihood is computed, not the
        posterior, and fits saved before it existed keep their hash; so is
        ``extrapolation`` (a layer computed after sampling), and ``law`` where it is the
        paper's (fits saved before the odds law keep their hash).
        """
        d = self.to_dict()
        d.pop("summary_stats", None)
        d.pop("extrapolation", None)
        if d.get("law") == "error":
            d.pop("law")
            odds_priors = {f"{p}_{part}" for p in ODDS_PARAMS for part in ("mu", "sigma")}
            d["priors"] = {k: v for k, v in d["priors"].items() if k not in odds_priors}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


#: nutpie mass-matrix adaptations (``"auto"`` resolves per model, :func:`resolve_adaptation`).
ADAPTATIONS = ("auto", "diag", "low_rank")
#: MCMC back ends.
SAMPLERS = ("nutpie", "numpyro")


@dataclass(frozen=True)
class SamplerConfig:
    """How to sample.

    Parameters
    ----------
    draws : int or "auto"
        Draws kept per chain. ``"auto"`` (default) resolves per fit
        (:func:`~scale_transfer.sampling.resolve_tuning`): :data:`TOP_DRAWS` for a top fit,
        :data:`DEFAULT_DRAWS` otherwise.
    chains : int
        Number of chains.
    tune : int or "auto"
        Tuning steps per chain. ``"auto"`` (default) resolves per fit
        (:func:`~scale_transfer.sampling.resolve_tuning`): :data:`TOP_TUNE` for a top fit
        (``target="top"`` with the frontier likelihood), :data:`DEFAULT_TUNE` otherwise.
    seed : int
        Random seed.
    sampler : {"nutpie", "numpyro"}
        NUTS implementation. nutpie (numba backend) is the default; numpyro needs JAX.
    cores : int or None
        Chains run in parallel (default: all cores).
    target_accept : float or "auto"
        NUTS target acceptance rate. ``"auto"`` (default) resolves per fit
        (:func:`resolve_target_accept`): 0.99 where nutpie samples a Gaussian likelihood
        from sufficient statistics (data-rich fits, where 0.95 left a few divergences in 5
        of 8 timm fits and the smaller steps cost about a second) and for the frontier
        likelihood (divergences in 3 of 3 simulations at 0.95, in 1 at 0.99), 0.95
        otherwise.
    progress : bool
        Show a progress bar.
    strict : bool
        Raise :class:`ConvergenceError` instead of warning when convergence fails.
    adaptation : {"auto", "diag", "low_rank"}
        nutpie's mass-matrix adaptation. ``"low_rank"`` learns the correlations of the
        posterior too: on timm (all points) it halved the gradient evaluations and doubled
        ESS per second; on the 24,000-point simulation it was 5x faster but mixed worse
        (ESS 260 against 1,215, 18 divergences). ``"auto"`` (default) takes ``"low_rank"``
        for the frontier likelihood, whose gap parameters correlate with the law's (on
        800 simulated points: 36-58 leapfrog steps per draw against 258-262 with
        ``"diag"``, docs/calibration.md) and for the odds law, ``"diag"`` otherwise; an odds
        law whose effects have many levels gets ``"diag"`` too (timm's 143 families: 4 times
        faster). A refit (drift layer, self-check) keeps its fit's. See
        :func:`~scale_transfer.sampling.resolve_adaptation`.
    init : {"lsq", "default"}
        Where chains start. ``"lsq"`` (default): at per-group least-squares estimates
        (:func:`lsq_start`), jittered by up to ``INIT_JITTER`` on the unconstrained scale,
        so that no chain starts in the far tail where the law's likelihood is flat and a
        chain can stay stuck through tuning. ``"default"``: PyMC's jittered support point.
    max_depth : int or "auto"
        nutpie's largest tree depth (at most ``2**max_depth - 1`` leapfrog steps per draw).
        ``"auto"`` (default): :data:`TOP_MAX_DEPTH` for a top fit, whose first tuning draws
        otherwise spend up to 1,023 steps each while the mass matrix is still unknown, and
        nutpie's 10 elsewhere (:func:`~scale_transfer.sampling.resolve_tuning`).
    time_limit : float, optional
        Seconds of sampling (compilation not counted) after which nutpie is stopped and
        :class:`SamplingTimeout` raised; default no limit. For batches of fits where one
        stuck fit must not hold up the rest (``scale-transfer study --fit-time-limit``).
        nutpie only.
    """

    draws: int | str = "auto"
    tune: int | str = "auto"
    chains: int = 4
    seed: int = 0
    sampler: str = "nutpie"
    cores: int | None = None
    target_accept: float | str = "auto"
    progress: bool = True
    strict: bool = False
    init: str = "lsq"
    adaptation: str = "auto"
    time_limit: float | None = None
    max_depth: int | str = "auto"

    def __post_init__(self) -> None:
        whole = (("draws", 1), ("chains", 1), ("tune", 0), ("seed", 0), ("cores", 1),
                 ("max_depth", 1))  # fmt: skip
        for name, least in whole:
            value = getattr(self, name)
            if (name == "cores" and value is None) or (name in AUTO_FIELDS and value == "auto"):
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
                raise ValueError(f"{name} must be a whole number >= {least}; got {value!r}")
        if self.seed >= 2**64:  # the samplers take a 64-bit seed
            raise ValueError(f"seed must be below 2**64 = {2**64}; got {self.seed}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}; got {self.sampler!r}")
        if self.sampler == "numpyro":
            import importlib.util

            missing = [m for m in ("jax", "numpyro") if importlib.util.find_spec(m) is None]
            if missing:
                raise ValueError(
                    f"sampler='numpyro' needs {' and '.join(missing)}, which is not installed: "
                    "pip install 'scale-transfer[jax]' (or use the default sampler, nutpie)"
                )
        ta = self.target_accept
        if ta != "auto" and not (isinstance(ta, int | float) and 0.0 < ta < 1.0):
            raise ValueError(f"target_accept must be 'auto' or in (0, 1); got {ta!r}")
        if self.time_limit is not None and not self.time_limit > 0:
            raise ValueError(f"time_limit must be positive seconds; got {self.time_limit!r}")
        if self.init not in ("lsq", "default"):
            raise ValueError(f"init must be 'lsq' or 'default'; got {self.init!r}")
        if self.adaptation not in ADAPTATIONS:
            raise ValueError(
                f"adaptation must be one of {', '.join(ADAPTATIONS)}; got {self.adaptation!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a dict."""
        return dict(self.__dict__)


#: ``target_accept="auto"``: the higher target, for Gaussian fits sampled from sufficient
#: statistics and for the frontier likelihood; the lower one elsewhere. Measured on timm
#: (8 seeds, 4 x 1000): at 0.95, 5 fits had 1-2 divergent transitions and 4 had R-hat
#: 1.011-1.018; at 0.99 none of either, for 2.1 s of sampling instead of 1.2 s
#: (docs/benchmark.md). Frontier: on three simulations of 300 models (4 x 1000 draws, nutpie,
#: low-rank adaptation) that had divergent transitions at 0.95 (5, 4, 3), 0.99 left 0, 1, 0
#: for 1.0-1.7x the wall time (docs/calibration.md, measured 2026-11-29). From the higher target on,
#: :func:`check_convergence` no longer advises raising it.
TARGET_ACCEPT_HIGH = 0.99
TARGET_ACCEPT_DEFAULT = 0.95
#: Fields of :class:`SamplerConfig` that take ``"auto"`` besides a whole number.
AUTO_FIELDS = ("draws", "tune", "max_depth")
#: ``draws="auto"`` of every fit but a top fit.
DEFAULT_DRAWS = 1000
#: ``draws="auto"`` of a top fit. Measured on jft-25shot (3,000 models, 2026-12-06/07): under
#: a noise prior with log sd 1, 2 of 20 fits failed the R-hat check at col_hist's flat
#: frontier with 1,000 draws per chain (1.0100001 and 1.013, bulk ESS 901 and 580) and passed
#: with 1,500; under the log sd 0.5 of :data:`DEFAULT_PRIORS` all 20 pass with 1,000 (R-hat
#: at most 1.006, bulk ESS 1,004 or more; docs/calibration.md).
TOP_DRAWS = 1000
#: ``tune="auto"`` and ``max_depth="auto"`` of every fit but a top fit (nutpie's own depth).
DEFAULT_TUNE = 1000
DEFAULT_MAX_DEPTH = 10
#: ``tune="auto"`` and ``max_depth="auto"`` of a top fit. Measured on jft-25shot (3,000
#: models, seed 5, 4 chains x 1,000 draws, 2026-12-06): with 1,000 tuning steps at nutpie's
#: depth 10, 255,000 leapfrog steps of tuning against 102,000 of draws (a chain's first 22
#: draws up to 1,023 steps each, 26 per draw from the 400th on), 203 s of sampling; at 400
#: steps and depth 8, 95,000 of tuning and 115 s, min bulk ESS 970-1,063 against 1,026 and
#: R-hat 1.008 either way (docs/calibration.md).
TOP_TUNE = 400
TOP_MAX_DEPTH = 8
