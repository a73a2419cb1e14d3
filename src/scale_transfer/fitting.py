"""Fitting: data and configs in, a checked :class:`~scale_transfer.posterior.Posterior` out."""

from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any

import pandas as pd

from scale_transfer.config import (
    ModelConfig,
    SamplerConfig,
)
from scale_transfer.data import MIN_POINTS, read_tidy
from scale_transfer.model import FitData, prepare_data
from scale_transfer.posterior import Posterior
from scale_transfer.sampling import resolve_sampler_config, sample

__all__ = ["fit", "warn_on_choices"]


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

    Returns
    -------
    Posterior
    """
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
    path_or_frame = data if not isinstance(data, os.PathLike) else str(data)
    fd: FitData = prepare_data(path_or_frame, config, min_points=min_points)
    sampler_config = resolve_sampler_config(sampler_config, fd, config)  # saved as sampled
    dt, diag = sample(fd, config, sampler_config)
    post = Posterior(dt, config, sampler_config, fd.groups, fd.frame, diag, fd.data_hash())
    if config.extrapolation == "lfo":
        from scale_transfer.extrapolation import learn

        post.drift, post.self_check, post.refits = learn(post, self_check=self_check)
    return post
