"""Fitting: data and configs in, a checked :class:`~scale_transfer.posterior.Posterior` out."""

from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any

import pandas as pd

from scale_transfer.config import (
    DEFAULT_DRAWS,
    ModelConfig,
    SamplerConfig,
)
from scale_transfer.data import MIN_POINTS, read_tidy
from scale_transfer.model import FitData, prepare_data
from scale_transfer.posterior import Posterior
from scale_transfer.sampling import resolve_sampler_config, sample

__all__ = ["FRONTIER_MODEL", "fit", "fit_frontier", "warn_on_choices", "wants_frontier"]

#: The model of the frontier fit that gives a fit of the typical model its frontier
#: asymptote (``fit(..., frontier=True)``): the best points of each bin of US accuracy under
#: the truncated frontier likelihood, the estimate calibrated in docs/calibration.md.
FRONTIER_MODEL = {"target": "top", "likelihood": "frontier"}


def warn_on_choices(config: ModelConfig) -> None:
    """Warn about model choices that are known to sample badly or to mislead.

    ``likelihood="frontier"`` with ``target="hull"``: the hull already is the frontier, so
    the gap parameters have no data; measured on the paper-scale hull (docs/benchmark.md):
    81 divergences and 188 transitions at the maximum tree depth in 4 x 1000 draws.
    """
    if config.target == "hull" and config.likelihood == "frontier":
        warnings.warn(
            "likelihood='frontier' on hull points samples badly (the hull leaves the gap "
            "below the frontier without data; docs/benchmark.md): fit the frontier "
            "likelihood to all points (target='all'), or the hull with 'gaussian'",
            UserWarning,
            stacklevel=3,
        )


def fit(
    data: pd.DataFrame | str | os.PathLike,
    config: ModelConfig | None = None,
    sampler_config: SamplerConfig | None = None,
    *,
    percent: bool = False,
    min_points: int = MIN_POINTS,
    self_check: bool = True,
    frontier: bool | str = False,
    **kwargs: Any,
) -> Posterior:
    """Fit the hierarchical power-law model.

    Parameters
    ----------
    data : pandas.DataFrame or path
        Tidy data (see :mod:`scale_transfer.data`), or a loader's result
        (``load_timm(folder)``).
    config : ModelConfig, optional
        Model structure and priors; keyword arguments that name ``ModelConfig`` fields
        (``target``, ``pooling``, ``likelihood``, ...) build one, or override those fields
        of the one given.
    sampler_config : SamplerConfig, optional
        Sampler settings; keyword arguments that name ``SamplerConfig`` fields
        (``draws``, ``tune``, ``chains``, ``seed``, ...) build one, or override those fields
        of the one given.
    percent : bool, default False
        The data's accuracies are in percent: divide them by 100.
    min_points : int, default 4
        Fewest points each task (and setting) of ``data`` must have: 4, the law's three
        parameters and one more, as least squares needs. The hierarchical model can fit a
        task with fewer where the other tasks inform its priors, as ``target="hull"`` does
        with a hull of 3 points (and warns below 3): lower it to fit hull points computed
        elsewhere (``target="all"`` on them is ``target="hull"`` on the whole cloud).
    self_check : bool, default True
        With ``extrapolation="lfo"``: also compute :attr:`Posterior.self_check` (one more
        fit; :func:`scale_transfer.extrapolation.learn`). The drift layer itself costs one
        fit beyond this one.
    frontier : bool or "auto", default False
        Also fit the best models' frontier to the same data (:func:`fit_frontier`: the best
        points of each bin of US accuracy, truncated frontier likelihood) and attach it as
        :attr:`Posterior.frontier`, whose asymptotes :meth:`Posterior.summary` and the
        report then give: the asymptote calibrated on simulations with known truth
        (docs/calibration.md). One more fit, about two minutes at 3,000 models x 8 tasks.
        ``"auto"``: where this fit's own asymptote is a typical model's
        (:func:`wants_frontier`), as the command line's ``fit`` does by default.

    Returns
    -------
    Posterior
    """
    if frontier not in (True, False, "auto"):
        raise ValueError(f"frontier must be True, False or 'auto'; got {frontier!r}")
    if percent:
        data = read_tidy(data, percent=True, min_points=min_points)
    mfields = set(ModelConfig.__dataclass_fields__)
    sfields = set(SamplerConfig.__dataclass_fields__)
    unknown = set(kwargs) - mfields - sfields
    if unknown:
        raise TypeError(f"unknown argument(s): {sorted(unknown)}")
    model_kw = {k: v for k, v in kwargs.items() if k in mfields}
    sampler_kw = {k: v for k, v in kwargs.items() if k in sfields}
    # keywords build a config, or override the one given (never silently dropped)
    config = ModelConfig(**model_kw) if config is None else config.with_changes(**model_kw)
    sampler_config = (
        SamplerConfig(**sampler_kw)
        if sampler_config is None
        else dataclasses.replace(sampler_config, **sampler_kw)
    )
    warn_on_choices(config)
    if config.extrapolation == "lfo" and config.law != "odds":
        raise ValueError("extrapolation='lfo' needs law='odds'")
    asked = sampler_config  # before it is resolved for this fit: a frontier fit resolves its own
    path_or_frame = data if not isinstance(data, os.PathLike) else str(data)
    fd: FitData = prepare_data(path_or_frame, config, min_points=min_points)
    sampler_config = resolve_sampler_config(sampler_config, fd, config)  # saved as sampled
    dt, diag = sample(fd, config, sampler_config)
    post = Posterior(dt, config, sampler_config, fd.groups, fd.frame, diag, fd.data_hash())
    if config.extrapolation == "lfo":
        from scale_transfer.extrapolation import learn

        post.drift, post.self_check, post.refits = learn(post, self_check=self_check)
    if frontier and wants_frontier(config):
        fit_frontier(post, asked)
    return post


def wants_frontier(config: ModelConfig) -> bool:
    """Whether a fit's own asymptote is a typical model's, so a frontier fit would add one.

    True for fits of all points with the Gaussian or Student-t likelihood (the mean curve);
    hull, top and frontier-likelihood fits estimate the frontier themselves.
    """
    return config.estimand == "typical model"


def fit_frontier(post: Posterior, sampler_config: SamplerConfig | None = None) -> Posterior | None:
    """Fit the frontier to ``post``'s data and attach it as ``post.frontier``; return it.

    The model is :data:`FRONTIER_MODEL` with ``post``'s pooling and setting level; the
    sampler ``sampler_config`` (default ``post``'s, with tuning, tree depth, target and
    mass matrix resolved anew for this fit, and the draws too where ``post`` had the
    default number). Its convergence joins ``post.refits`` as the
    row ``"frontier"``, so that the verdicts of the command line and the report include
    it; a failed check warns (raises in strict mode), naming the frontier fit. Data too
    thin for it leave ``post.frontier`` None, with a warning.
    """
    from scale_transfer.extrapolation import refit, refit_diagnostics

    config = ModelConfig(
        **FRONTIER_MODEL, pooling=post.config.pooling, by_setting=post.config.by_setting
    )
    if sampler_config is None:  # post's as resolved for that fit: resolve again for this
        auto = dict(tune="auto", max_depth="auto", target_accept="auto", adaptation="auto")
        if post.sampler.draws == DEFAULT_DRAWS:  # the default's draws: a top fit's default
            auto["draws"] = "auto"
        sampler_config = dataclasses.replace(post.sampler, **auto)
    try:
        front = refit(post, post.data, "frontier", config=config, sampler=sampler_config)
    except ValueError as err:
        warnings.warn(
            f"no frontier fit ({err}): the asymptotes reported are this fit's own, "
            "a typical model's",
            UserWarning,
            stacklevel=2,
        )
        return None
    post.frontier = front
    row = refit_diagnostics({"frontier": front})
    post.refits = row if post.refits is None else pd.concat([post.refits, row], ignore_index=True)
    return front
