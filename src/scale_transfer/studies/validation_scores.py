"""Scores of the held-out validation that the library's self-check does not have.

The CRPS of predictive draws, the interval probabilities scored by default and the label of
the pooled row are the library's (:mod:`scale_transfer.selfcheck`), shared with the report's
self-check; this module adds the closed-form CRPS of a normal predictive (the least-squares
baseline), the coverage error and the calibration tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from scipy import stats

from scale_transfer.selfcheck import ALL as ALL_GROUP
from scale_transfer.selfcheck import LEVELS

__all__ = [
    "ALL_GROUP",
    "LEVELS",
    "calibration_tolerance",
    "coverage_mse",
    "crps_normal",
    "prob_label",
    "score_intervals",
]


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


def score_intervals(
    y: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return whether each ``y`` lies in ``[lower, upper]``, and the widths."""
    y = np.asarray(y, dtype=float)
    return (y >= lower) & (y <= upper), np.asarray(upper) - np.asarray(lower)


def coverage_mse(coverage: Mapping[float, float]) -> float:
    """Mean squared coverage error: the mean of ``(coverage - prob)**2`` over the probabilities.

    ``coverage`` maps each interval probability to the share of points its interval held;
    0 for perfectly calibrated intervals, 0.01 for intervals 10 points off at every level.
    """
    return float(np.mean([(c - p) ** 2 for p, c in coverage.items()]))


def calibration_tolerance(prob: float) -> float:
    """Return how far the coverage of a ``prob`` interval may be from ``prob``.

    ``min(0.10, (1 - prob) / 2)``: 0.05 for a 90% interval, 0.10 for a 50% one.
    """
    return min(0.10, (1.0 - prob) / 2.0)


def prob_label(prob: float) -> str:
    """Return the column suffix of an interval probability: ``0.9`` -> ``"90"``."""
    v = 100.0 * prob
    return f"{v:.0f}" if abs(v - round(v)) < 1e-9 else f"{v:g}".replace(".", "p")
