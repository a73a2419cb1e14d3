"""The odds-space law and its scatter, in NumPy or PyTensor.

For a group with reference point ``x_ref`` (its mean logit US accuracy)::

    acc_ds = c * sigmoid(a + alpha * x),   x = logit(acc_us),   c = sigmoid(g) = 1 - e_ir

written around the reference point as ``u = level + alpha * (x - x_ref)`` with
``level = a + alpha * x_ref``. The model is Gaussian in ``y = logit(acc_ds)``, with mean
``logit(c * sigmoid(u))`` and log sd ``log_scatter + scatter_slope * (x - x_ref)``.

Near ``acc_us -> 1`` the law is the paper's in odds:
``e_ds ~ e_ir + c exp(-a) e_us**alpha``, so ``k = c exp(-a)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

from scale_transfer.config import ACC_EPS

__all__ = ["logit", "logit_mean", "scatter_sd"]


def logit(acc: Any) -> np.ndarray:
    """Logit of accuracies clipped to ``[ACC_EPS, 1 - ACC_EPS]``."""
    p = np.clip(np.asarray(acc, dtype=float), ACC_EPS, 1.0 - ACC_EPS)
    return np.log(p) - np.log1p(-p)


def _log_sigmoid(z: Any, lib: Any) -> Any:
    if lib is np:
        return special.log_expit(z)
    return -lib.softplus(-z)


def logit_mean(level: Any, alpha: Any, logit_c: Any, x_centred: Any, lib: Any = np) -> Any:
    """``logit(c * sigmoid(u))`` with ``u = level + alpha * x_centred``, stable everywhere.

    ``1 - c s = (1 - c) s + (1 - s)`` with ``s = sigmoid(u)``, so the log of it is a
    ``logaddexp`` of log-sigmoids: no cancellation as ``c -> 1`` or ``s -> 1``.
    """
    u = level + alpha * x_centred
    ls_u = _log_sigmoid(u, lib)
    log_acc = _log_sigmoid(logit_c, lib) + ls_u
    log_err = lib.logaddexp(_log_sigmoid(-logit_c, lib) + ls_u, _log_sigmoid(-u, lib))
    return log_acc - log_err


def scatter_sd(log_scatter: Any, slope: Any, x_centred: Any, lib: Any = np) -> Any:
    """Scatter sd of ``logit(acc_ds)``: ``exp(log_scatter + slope * x_centred)``."""
    return lib.exp(log_scatter + slope * x_centred)
