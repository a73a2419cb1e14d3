"""Credible intervals (by arviz-stats) and the checks of the accuracies they are asked at.

Intervals are equal-tailed (``"eti"``, the default: quantiles at ``(1-prob)/2`` and
``(1+prob)/2``) or highest-density (``"hdi"``); the probability and kind travel together as
``prob`` and ``interval_kind``.
"""

from __future__ import annotations

import arviz_stats as azs
import numpy as np
from numpy.typing import ArrayLike

from scale_transfer.config import DEFAULT_KIND, DEFAULT_PROB, INTERVAL_KINDS

__all__ = ["accuracies", "interval"]


def accuracies(values: ArrayLike, name: str) -> np.ndarray:
    """Return US accuracies as a 1-D float array; ValueError naming ``name`` if not in [0, 1]."""
    x = np.atleast_1d(np.asarray(values, dtype=float))
    if x.ndim != 1:
        raise ValueError(f"{name} must be one number or a 1-D list; got shape {x.shape}")
    if not np.all((x >= 0) & (x <= 1)):  # NaN fails too
        hint = ""
        if np.isfinite(x).all() and ((x > 1) & (x <= 100)).any():
            hint = " (accuracies are fractions: 85% is 0.85)"
        raise ValueError(f"{name} must be in [0, 1]; got {x.tolist()}{hint}")
    return x


def interval(
    samples: np.ndarray, prob: float = DEFAULT_PROB, interval_kind: str = DEFAULT_KIND
) -> tuple[np.ndarray, np.ndarray]:
    """Credible interval over the first axis of ``samples``, computed by arviz-stats.

    Parameters
    ----------
    samples : numpy.ndarray
        Draws along axis 0.
    prob : float
        Probability mass in (0, 1).
    interval_kind : {"eti", "hdi"}
        Equal-tailed (:func:`arviz_stats.eti`) or highest-density (:func:`arviz_stats.hdi`).

    Returns
    -------
    (lower, upper) : tuple of numpy.ndarray
    """
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1); got {prob}")
    if interval_kind not in INTERVAL_KINDS:
        raise ValueError(f"interval kind must be one of {INTERVAL_KINDS}; got {interval_kind!r}")
    samples = np.asarray(samples, dtype=float)
    fn = azs.eti if interval_kind == "eti" else azs.hdi
    both = np.asarray(fn(samples, prob=prob, axis=0))
    return both[..., 0], both[..., 1]
