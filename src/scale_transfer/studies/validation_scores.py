"""Scores of the held-out validation: CRPS, interval coverage, and the calibration tolerance."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

__all__ = [
    "ALL_GROUP",
    "calibration_tolerance",
    "crps_draws",
    "crps_normal",
    "prob_label",
    "score_intervals",
]

#: Label of the pooled row (all held-out points of all tasks) in the table.
ALL_GROUP = "(all)"


def crps_normal(y: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """CRPS of a normal predictive distribution, in closed form.

    ``crps = sigma * (z * (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi))`` with
    ``z = (y - mu) / sigma`` (Gneiting and Raftery 2007).

    Parameters
    ----------
    y : array_like
        Observed values.
    mu, sigma : array_like
        Mean and standard deviation of the predictive normal (broadcast against ``y``).

    Returns
    -------
    numpy.ndarray
        The CRPS of each observation (same units as ``y``).
    """
    y, mu, sigma = (np.asarray(a, dtype=float) for a in (y, mu, sigma))
    z = (y - mu) / sigma
    return sigma * (
        z * (2.0 * stats.norm.cdf(z) - 1.0) + 2.0 * stats.norm.pdf(z) - 1 / math.sqrt(np.pi)
    )


def crps_draws(y: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """CRPS of the empirical distribution of predictive draws.

    ``crps = E|X - y| - E|X - X'| / 2`` with ``X, X'`` independent draws; the second term is
    computed exactly from the sorted draws, ``E|X - X'| = 2 / m**2 * sum_i (2 i - m - 1) x_(i)``.

    Parameters
    ----------
    y : array_like, shape (n,)
        Observed values.
    draws : array_like, shape (m, n)
        ``m`` predictive draws for each observation.

    Returns
    -------
    numpy.ndarray, shape (n,)
    """
    y = np.atleast_1d(np.asarray(y, dtype=float))
    x = np.sort(np.asarray(draws, dtype=float).reshape(-1, y.size), axis=0)
    m = x.shape[0]
    term1 = np.mean(np.abs(x - y[None, :]), axis=0)
    w = (2.0 * np.arange(1, m + 1) - m - 1.0)[:, None]
    term2 = np.sum(w * x, axis=0) / (m * m)  # = E|X - X'| / 2
    return term1 - term2


def score_intervals(
    y: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return whether each ``y`` lies in ``[lower, upper]``, and the widths."""
    y = np.asarray(y, dtype=float)
    return (y >= lower) & (y <= upper), np.asarray(upper) - np.asarray(lower)


def calibration_tolerance(prob: float) -> float:
    """Return how far the coverage of a ``prob`` interval may be from ``prob``.

    ``min(0.10, (1 - prob) / 2)``: 0.05 for a 90% interval, 0.10 for a 50% one.
    """
    return min(0.10, (1.0 - prob) / 2.0)


def prob_label(prob: float) -> str:
    """Return the column suffix of an interval probability: ``0.9`` -> ``"90"``."""
    v = 100.0 * prob
    return f"{v:.0f}" if abs(v - round(v)) < 1e-9 else f"{v:g}".replace(".", "p")
