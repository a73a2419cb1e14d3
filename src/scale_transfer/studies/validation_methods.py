"""The methods of the held-out validation: each fits the training rows and scores the rest.

Each method returns one row per held-out point (:func:`score_rows`: the point prediction,
the equal-tailed predictive interval at each probability and the CRPS) and one record of
what it fitted and how long it took.

- :func:`lsq_method`: the paper's least squares per task in error space, intervals
  ``center +- z * sigma`` from the residual sd (:func:`scale_transfer.lsq.lsq_interval`),
  CRPS in closed form;
- :func:`logit_method`: the field's practice, ``logit(ds) = a + b logit(us)`` by least
  squares per task, with Student-t prediction intervals (:func:`logit_linear_predictive`);
- :func:`bayes_method`: a Bayesian fit (:func:`scale_transfer.posterior.fit`), scored on the
  draws of its new-model predictive.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from scale_transfer.config import ModelConfig, SamplerConfig
from scale_transfer.hull import upper_hull
from scale_transfer.lsq import fit_lsq, lsq_interval, predict_lsq
from scale_transfer.odds import logit
from scale_transfer.posterior import unseen_levels_expected
from scale_transfer.selfcheck import ALL, crps_draws
from scale_transfer.studies.runner import diagnostics_record, fit_quietly
from scale_transfer.studies.validation_scores import crps_normal, prob_label

__all__ = [
    "QUANTILE_DRAWS",
    "bayes_method",
    "logit_linear_predictive",
    "logit_method",
    "lsq_method",
    "score_rows",
]

#: Draws at evenly spaced quantiles that stand for the logit baseline's predictive in its CRPS.
QUANTILE_DRAWS = 2000

Scored = tuple[pd.DataFrame, dict[str, Any]]


def score_rows(
    method: str, test: pd.DataFrame, pred: np.ndarray, bounds: dict, crps: np.ndarray
) -> pd.DataFrame:
    """One row per held-out point: its data, ``pred``, ``lower_XX``/``upper_XX`` and ``crps``."""
    pts = test[["setting", "task", "model", "us_acc", "ds_acc"]].reset_index(drop=True)
    pts.insert(0, "method", method)
    pts["pred"] = pred
    for p, (lo, hi) in bounds.items():
        pts[f"lower_{prob_label(p)}"] = lo
        pts[f"upper_{prob_label(p)}"] = hi
    pts["crps"] = crps
    return pts


def _per_task(train: pd.DataFrame, test: pd.DataFrame):  # noqa: ANN202 - a generator
    """Yield ``(label, training rows, held-out rows)`` of each held-out (setting, task)."""
    for (setting, task), te in test.groupby(["setting", "task"], sort=False):
        mask = (train["setting"] == setting) & (train["task"] == task)
        yield f"{setting}/{task}", train[mask], te


def _record(method: str, kind: str, target: str, skipped: list[str], t0: float) -> dict:
    return {"method": method, "kind": kind, "target": target, "skipped": ",".join(skipped),
            "seconds": time.perf_counter() - t0}  # fmt: skip


def lsq_method(
    method: str, train: pd.DataFrame, test: pd.DataFrame, probs: Sequence[float], target: str
) -> Scored:
    """Score the paper's least squares per task, fitted to ``target`` (``"all"`` or ``"hull"``)."""
    t0 = time.perf_counter()
    parts, skipped = [], []
    for label, tr, te in _per_task(train, test):
        us, ds = tr["us_acc"].to_numpy(float), tr["ds_acc"].to_numpy(float)
        if target == "hull":
            h = upper_hull(us, ds)
            us, ds = us[h], ds[h]
        if us.size < 3:  # the hull of a task can hold 2 points: the law is not fitted
            skipped.append(label)
            continue
        f = fit_lsq(us, ds)
        x, y = te["us_acc"].to_numpy(float), te["ds_acc"].to_numpy(float)
        center = predict_lsq(f, x)
        if np.isfinite(f.sigma) and f.sigma > 0:
            bounds = {p: lsq_interval(f, x, p)[1:] for p in probs}
            crps = crps_normal(y, center, f.sigma)
        else:  # 3 hull points: no residual sd; a point prediction (CRPS = absolute error)
            bounds = {p: (center, center) for p in probs}
            crps = np.abs(y - center)
        parts.append(score_rows(method, te, center, bounds, crps))
    if not parts:
        raise ValueError(f"{method}: fewer than 3 points to fit in every task")
    return pd.concat(parts, ignore_index=True), _record(method, "least squares", target,
                                                        skipped, t0)  # fmt: skip


def logit_linear_predictive(
    us_acc: np.ndarray, ds_acc: np.ndarray, us_new: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """Least squares of ``logit(ds) = a + b logit(us)`` and its prediction for new models.

    Returns ``(center, scale, df)``: a new model's ``logit(ds)`` is ``center + scale * T``
    with ``T`` Student-t with ``df = n - 2`` degrees of freedom, ``scale = s sqrt(1 + 1/n +
    (x0 - mean x)^2 / Sxx)`` (the classical prediction interval of a simple regression).
    Accuracies are clipped as :func:`scale_transfer.odds.logit` does.
    """
    x, y, x0 = logit(us_acc), logit(ds_acc), logit(us_new)
    n = x.size
    b, a = np.polyfit(x, y, 1)
    s = np.sqrt(np.sum((y - a - b * x) ** 2) / (n - 2))
    sxx = np.sum((x - x.mean()) ** 2)
    return a + b * x0, s * np.sqrt(1.0 + 1.0 / n + (x0 - x.mean()) ** 2 / sxx), n - 2


def logit_method(
    method: str, train: pd.DataFrame, test: pd.DataFrame, probs: Sequence[float]
) -> Scored:
    """Logit-linear least squares per task with Student-t prediction intervals.

    The point prediction is the fitted line, ``sigmoid(center)``; interval ends are the
    t quantiles mapped through the sigmoid; the CRPS is that of the predictive distribution
    in accuracy, from :data:`QUANTILE_DRAWS` draws at evenly spaced quantiles.
    """
    t0 = time.perf_counter()
    parts, skipped = [], []
    u = (np.arange(QUANTILE_DRAWS) + 0.5) / QUANTILE_DRAWS
    for label, tr, te in _per_task(train, test):
        if len(tr) < 3:
            skipped.append(label)
            continue
        center, scale, df = logit_linear_predictive(tr["us_acc"], tr["ds_acc"], te["us_acc"])
        bounds = {}
        for p in probs:
            half = stats.t.ppf((1.0 + p) / 2.0, df) * scale
            bounds[p] = (special.expit(center - half), special.expit(center + half))
        draws = special.expit(center[None, :] + stats.t.ppf(u, df)[:, None] * scale[None, :])
        crps = crps_draws(draws, te["ds_acc"].to_numpy(float))
        parts.append(score_rows(method, te, special.expit(center), bounds, crps))
    if not parts:
        raise ValueError(f"{method}: fewer than 3 points to fit in every task")
    return pd.concat(parts, ignore_index=True), _record(method, "logit least squares", "all",
                                                        skipped, t0)  # fmt: skip


def bayes_method(
    method: str,
    train: pd.DataFrame,
    test: pd.DataFrame,
    probs: Sequence[float],
    config: ModelConfig,
    sampler: SamplerConfig,
    self_check: bool = False,
) -> Scored:
    """Fit ``config`` to the training rows; score the new-model predictive's draws.

    A held-out model's effect levels are known (its family, its training run); a level the
    training set lacks gets a new effect drawn from its population. A fit with a drift layer
    (``extrapolation="lfo"``) carries it into the predictive; with ``self_check`` its
    self-check (one more fit) is run too, and its pooled coverage recorded as
    ``selfcheck_coverage_XX``: what the fit, seeing only the training rows, predicted the
    coverage of its extrapolation would be.
    """
    t0 = time.perf_counter()
    # convergence is recorded in the fits table instead of warning once per method
    post = fit_quietly(train, config=config, sampler_config=sampler, self_check=self_check)
    labels = list(zip(post.groups["setting"], post.groups["task"], strict=True))
    parts = []
    for (setting, task), te in test.groupby(["setting", "task"], sort=False):
        g = labels.index((setting, task))
        eff = post.row_effects(te)
        with unseen_levels_expected():
            d = post.predict_draws(te["us_acc"].to_numpy(float), kind="new-model",
                                   seed=sampler.seed + g, effects=eff)[:, g, :]  # fmt: skip
        bounds = {p: tuple(np.quantile(d, [(1 - p) / 2, (1 + p) / 2], axis=0)) for p in probs}
        crps = crps_draws(d, te["ds_acc"].to_numpy(float))
        parts.append(score_rows(method, te, d.mean(axis=0), bounds, crps))
    info = {
        "method": method,
        "kind": "bayes",
        "target": config.target,
        "pooling": config.pooling,
        "likelihood": config.likelihood,
        "law": config.law,
        "extrapolation": config.extrapolation,
        "effects": ",".join(config.effects),
        "discrepancy": bool(config.discrepancy),
        **diagnostics_record(post.diagnostics, ("max_rhat", "min_ess_bulk", "divergences")),
        "seconds": time.perf_counter() - t0,
    }
    refits = getattr(post, "refits", None)
    if refits is not None and len(refits):  # the refits behind the drift layer, worst of them
        info |= {
            "refits_converged": bool(refits["ok"].all()),
            "refits_max_rhat": float(refits["max_rhat"].max()),
            "refits_min_ess_bulk": float(refits["min_ess_bulk"].min()),
            "refits_divergences": int(refits["divergences"].sum()),
        }
    check = getattr(post, "self_check", None)
    if check is not None:
        pooled = check[check["task"] == ALL].iloc[0]
        for p in probs:
            col = f"cov{round(100 * p)}"
            if col in pooled:
                info[f"selfcheck_coverage_{prob_label(p)}"] = float(pooled[col])
    return pd.concat(parts, ignore_index=True), info
