"""Calibration on data with known truth: how often do asymptote intervals cover the truth.

Simulate the paper's setting many times (:func:`scale_transfer.simulate.simulate`), fit
each simulation, and count how often the credible interval of each task's asymptote
contains the true asymptote. Also compares pooling options on sparse data (each task
subsampled to a few points), where partial pooling should beat no pooling.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from scale_transfer.config import DEFAULT_KIND, DEFAULT_PROB, SamplerConfig
from scale_transfer.simulate import simulate
from scale_transfer.studies.runner import diagnostics_record, fit_quietly

__all__ = ["asymptote_coverage", "coverage_summary", "sparse_subsample"]


def sparse_subsample(data: pd.DataFrame, n_per_task: int, seed: int) -> pd.DataFrame:
    """Keep ``n_per_task`` randomly chosen points of each (setting, task).

    Parameters
    ----------
    data : pandas.DataFrame
        Tidy data.
    n_per_task : int
        Points kept per task.
    seed : int
        Random seed.

    Returns
    -------
    pandas.DataFrame
    """
    rng = np.random.default_rng(seed)
    keys = [c for c in ("setting", "upstream", "shots") if c in data] + ["task"]
    parts = []
    for _, g in data.groupby(keys, sort=False):
        idx = rng.choice(len(g), size=min(n_per_task, len(g)), replace=False)
        parts.append(g.iloc[np.sort(idx)])
    return pd.concat(parts, ignore_index=True)


def _interval_rows(post: Any, truth: pd.Series, prob: float, **fields: Any) -> list[dict[str, Any]]:
    """One row per task: the asymptote's interval against the truth, and the fit's diagnostics."""
    s = post.summary(prob=prob, interval_kind=DEFAULT_KIND)
    s = s[s["task"] != "(new task)"]
    diag = diagnostics_record(post.diagnostics, ("max_rhat", "divergences", "min_ess_bulk"))
    rows = []
    for r in s.itertuples(index=False):
        true = float(truth[r.task])
        rows.append(
            {
                "seed": fields["seed"],
                "variant": fields["variant"],
                "task": r.task,
                "n": r.n,
                "truth": true,
                "mean": r.mean,
                "lower": r.lower,
                "upper": r.upper,
                "covered": bool(r.lower <= true <= r.upper),
                "abs_error": abs(r.mean - true),
                "width": r.upper - r.lower,
                **diag,
                "seconds": fields["seconds"],
            }
        )
    return rows


def asymptote_coverage(
    seeds: Sequence[int],
    *,
    setting: str = "jft-25shot",
    n_models: int = 3000,
    n_per_task: int | None = None,
    variants: dict[str, dict] | None = None,
    prob: float = DEFAULT_PROB,
    sampler: SamplerConfig | None = None,
    log: Callable[[str], None] | None = print,
) -> pd.DataFrame:
    """Fit simulations with known truth and score the asymptote intervals.

    Parameters
    ----------
    seeds : sequence of int
        One simulation per seed.
    setting, n_models : str, int
        Passed to :func:`~scale_transfer.simulate.simulate`.
    n_per_task : int, optional
        Subsample each task to this many points (sparse data).
    variants : dict
        Name -> keyword arguments of :func:`~scale_transfer.posterior.fit`
        (``target``, ``pooling``, ``likelihood``). Default: hull/gaussian and all/frontier.
    prob : float
        Interval probability (intervals of the library's default kind, equal-tailed).
    sampler : SamplerConfig, optional
        Sampler settings of every fit (default ``SamplerConfig(progress=False)``); each
        simulation's fits take its seed.
    log : callable, optional
        Progress printer.

    Returns
    -------
    pandas.DataFrame
        One row per (seed, variant, task): truth, mean, lower, upper, covered, abs_error,
        and the fit's diagnostics (max_rhat, divergences, min_ess_bulk, seconds).
    """
    if variants is None:
        variants = {
            "hull/gaussian": {"target": "hull", "likelihood": "gaussian"},
            "all/frontier": {"target": "all", "likelihood": "frontier"},
        }
    sampler = sampler or SamplerConfig(progress=False)
    rows = []
    t_start = time.perf_counter()
    total = len(seeds) * len(variants)
    done = 0
    for seed in seeds:
        sim = simulate(setting, n_models=n_models, seed=seed)
        data = sim.data
        if n_per_task is not None:
            data = sparse_subsample(data, n_per_task, seed)
        truth = sim.truth.set_index("task")["asymptote"]
        for name, kwargs in variants.items():
            t0 = time.perf_counter()
            sc = dataclasses.replace(sampler, seed=seed)
            post = fit_quietly(data, sampler_config=sc, **kwargs)
            seconds = time.perf_counter() - t0
            rows += _interval_rows(post, truth, prob, seed=seed, variant=name, seconds=seconds)
            done += 1
            if log is not None:
                cov = np.mean([x["covered"] for x in rows if x["variant"] == name])
                elapsed = time.perf_counter() - t_start
                log(
                    f"[{done}/{total}] seed {seed} {name}: {seconds:.1f}s, "
                    f"running coverage {cov:.3f}, {post.diagnostics.verdict()[:60]}; "
                    f"ETA {elapsed / done * (total - done):.0f}s"
                )
    return pd.DataFrame(rows)


def coverage_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Coverage, mean absolute error and width per variant (and overall convergence).

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`asymptote_coverage`.

    Returns
    -------
    pandas.DataFrame
    """
    g = table.groupby("variant", sort=False)
    return pd.DataFrame(
        {
            "intervals": g.size(),
            "coverage": g["covered"].mean(),
            "mean_abs_error": g["abs_error"].mean(),
            "mean_width": g["width"].mean(),
            "fits_not_converged": g.apply(
                lambda x: int((~x.groupby("seed")["converged"].first()).sum()),
                include_groups=False,
            ),
            "max_rhat": g["max_rhat"].max(),
            "divergent_fits": g.apply(
                lambda x: int((x.groupby("seed")["divergences"].first() > 0).sum()),
                include_groups=False,
            ),
        }
    ).reset_index()
