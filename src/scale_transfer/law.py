"""The saturating power law of Abnar et al. (2022), in numpy.

``e_ds = k * e_us**alpha + e_ir`` with errors ``e = 1 - accuracy``; the asymptote is
``1 - e_ir``, the downstream accuracy left when upstream accuracy reaches 100%.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["ds_acc", "e_ds"]


def e_ds(e_us: ArrayLike, k: ArrayLike, alpha: ArrayLike, e_ir: ArrayLike) -> np.ndarray:
    """Downstream error predicted by the law.

    Parameters
    ----------
    e_us : array_like
        Upstream error, ``1 - us_acc``.
    k, alpha, e_ir : array_like
        Parameters of the law (broadcast against ``e_us``).

    Returns
    -------
    numpy.ndarray
        ``k * e_us**alpha + e_ir``.
    """
    e_us = np.asarray(e_us, dtype=float)
    return np.asarray(k) * np.power(e_us, alpha) + np.asarray(e_ir)


def ds_acc(us_acc: ArrayLike, k: ArrayLike, alpha: ArrayLike, e_ir: ArrayLike) -> np.ndarray:
    """Downstream accuracy predicted by the law at upstream accuracy ``us_acc``.

    Parameters
    ----------
    us_acc : array_like
        Upstream accuracy in [0, 1].
    k, alpha, e_ir : array_like
        Parameters of the law.

    Returns
    -------
    numpy.ndarray
        ``1 - e_ds(1 - us_acc, k, alpha, e_ir)``.
    """
    return 1.0 - e_ds(1.0 - np.asarray(us_acc, dtype=float), k, alpha, e_ir)
