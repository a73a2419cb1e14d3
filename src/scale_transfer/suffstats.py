"""Exact sufficient statistics of the Gaussian likelihood: O(groups) cost per gradient.

For group ``g`` with points ``(d_i, y_i)`` (``d_i`` the centred log upstream error,
``y_i`` the downstream error), the law's mean is ``A exp(a d_i) + e`` with
``A = exp(log_level)``, ``a = alpha``, ``e = e_ir``, and the Gaussian log-likelihood is

    -n log sigma - RSS / (2 sigma^2) - n/2 log(2 pi),

    RSS = sum_i (y_i - e - A exp(a d_i))^2
        = Syy + n c^2 - 2 A [G(a) + c F(a)] + A^2 F(2a),

with ``ybar`` the group's mean of ``y``, ``c = ybar - e``, ``Syy = sum (y_i - ybar)^2``,
``F(a) = sum_i exp(a d_i)`` and ``G(a) = sum_i (y_i - ybar) exp(a d_i)``. (Centring
``y`` keeps the terms that cancel in ``RSS`` small: ``n c^2`` against ``A c F``, of the
size of ``sum (y - e)^2``, instead of ``sum y^2``.)

``F`` and ``G`` are evaluated by a piecewise Taylor expansion on a fixed grid of exponents
``a_j = j h`` (``j = 0..J``, ``h = GRID_STEP``, ``J h = 2 ALPHA_MAX``): the moments

    M[g, j, k] = sum_{i in g} w_i d_i^k exp(a_j d_i) / k!,   k = 0..GRID_TERMS-1,

are computed once per data set (numpy), and for any ``a`` with ``j = round(a / h)`` and
``delta = a - a_j`` (``|delta| <= h/2``), ``sum_w(a) = sum_k M[g, j, k] delta^k``. The
truncation error of each point's term is at most ``|x|^K / K! * e^{2|x|}`` relative, with
``|x| = h max|d| / 2`` (:func:`taylor_error_bound`); with ``max|d| <= D_MAX`` that is below
1e-16, so the expansion is exact to rounding. The gradient in ``alpha`` flows through
``delta`` (the grid index is piecewise constant, and the expansion is continuous to that
accuracy across the cells' edges).

The grid ends at ``a = 2 ALPHA_MAX``. Above ``alpha = ALPHA_MAX`` the log-likelihood built
here is ``-inf`` (a wall; NUTS rejects such proposals), so the stats model is the exact
model truncated at ``alpha <= ALPHA_MAX``. :func:`scale_transfer.sampling.sample` checks
the draws: when any group's ``alpha`` exceeds ``ALPHA_GUARD`` (a quarter below the wall)
the truncation might matter, so it warns (:class:`SummaryStatsWarning`) and samples again
with the exact per-point model. No result comes silently from the truncated model.

The grid's shape (``GRID_SIZE`` x ``GRID_TERMS``) does not depend on the data, so a model
compiled once is reused on new data with the same groups (``with_data``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = [
    "ALPHA_GUARD",
    "ALPHA_MAX",
    "D_MAX",
    "GRID_STEP",
    "GRID_TERMS",
    "MIN_POINTS",
    "STAT_NAMES",
    "SummaryStatsWarning",
    "centred_log_e_us",
    "eligible",
    "gaussian_loglik",
    "grid",
    "guard",
    "max_alpha",
    "moments",
    "taylor_error_bound",
    "use_summary_stats",
]

#: Largest ``alpha`` of the exact expansion; the grid of exponents runs to ``2 ALPHA_MAX``.
ALPHA_MAX = 40.0
#: A fit with stats whose draws have ``alpha`` above this is redone with the exact model.
ALPHA_GUARD = 0.75 * ALPHA_MAX
#: Spacing ``h`` of the grid of exponents and number ``K`` of Taylor terms per cell.
GRID_STEP = 0.25
GRID_TERMS = 16
#: Number of grid points ``J + 1``.
GRID_SIZE = int(round(2 * ALPHA_MAX / GRID_STEP)) + 1
#: Largest ``|d|`` (centred log upstream error) the stats accept: the Taylor bound there is
#: 5e-17 relative, and ``exp(2 ALPHA_MAX D_MAX)`` stays far from overflow.
D_MAX = 5.0
#: ``summary_stats="auto"`` uses the stats when every group has at least this many points.
MIN_POINTS = 200
#: Names of the ``pm.Data`` arrays of the stats model (the ``with_data`` keys).
STAT_NAMES = ("ss_n", "ss_ybar", "ss_syy", "ss_m1", "ss_my")


class SummaryStatsWarning(UserWarning):
    """A fit with sufficient statistics came near the grid's end and was redone exactly."""


def grid() -> np.ndarray:
    """Return the grid of exponents ``a_j = j * GRID_STEP``, ``j = 0..GRID_SIZE-1``."""
    return np.arange(GRID_SIZE) * GRID_STEP


def taylor_error_bound(max_abs_d: float, h: float = GRID_STEP, k: int = GRID_TERMS) -> float:
    """Bound on the relative error of ``F_w(a)`` (``w >= 0``) from the truncated expansion.

    With ``|x| = h max|d| / 2`` (``|delta| <= h/2``) each point's term
    ``exp(a_j d) sum_{m<k} (delta d)^m / m!`` differs from ``exp(a d)`` by at most
    ``exp(a_j d) |x|^k e^{|x|} / k!``, that is ``|x|^k e^{2|x|} / k!`` relative.
    """
    x = 0.5 * h * float(max_abs_d)
    return x**k * math.exp(2 * x) / math.factorial(k)


def centred_log_e_us(fd: Any) -> np.ndarray:
    """Return ``d_i = log e_us_i - log e_ref_g``, per point."""
    return fd.log_e_us - fd.groups["log_e_ref"].to_numpy(float)[fd.group_idx]


def eligible(fd: Any, config: Any) -> tuple[bool, str]:
    """Say whether the stats can stand in for the per-point likelihood, and if not why."""
    if config.likelihood != "gaussian":
        return False, f"likelihood {config.likelihood!r} (only 'gaussian' has the stats)"
    if config.effects:
        return False, "model-attribute effects vary alpha within a group"
    if config.discrepancy:
        return False, "the discrepancy term is not a power law"
    if len(fd.e_ds) == 0:
        return False, "no points"
    d = np.abs(centred_log_e_us(fd)).max()
    if not d <= D_MAX:
        return False, f"max |log e_us - log e_ref| is {d:.3g} > D_MAX = {D_MAX:g}"
    return True, ""


def use_summary_stats(fd: Any, config: Any) -> bool:
    """Resolve ``config.summary_stats`` for these data.

    ``"auto"``: when the stats apply (:func:`eligible`) and every group has at least
    ``MIN_POINTS`` points. ``True``: always; a :class:`ValueError` when they do not apply.
    """
    choice = getattr(config, "summary_stats", "auto")
    if choice is False:
        return False
    ok, why = eligible(fd, config)
    if choice is True:
        if not ok:
            raise ValueError(f"summary_stats=True does not apply to this model/data: {why}")
        return True
    return ok and bool(fd.groups["n"].min() >= MIN_POINTS)


def moments(fd: Any) -> dict[str, np.ndarray]:
    """Return the sufficient statistics of each group (numpy), by ``STAT_NAMES``.

    ``ss_n``, ``ss_ybar``, ``ss_syy``: the number of points, the mean of ``e_ds`` and the
    sum of squares about it, ``(G,)``; ``ss_m1`` and ``ss_my``: the moments
    ``M[g, j, k]`` of the weights ``1`` and ``y - ybar``, ``(G, GRID_SIZE, GRID_TERMS)``.
    """
    n_groups = len(fd.groups)
    d_all = centred_log_e_us(fd)
    a = grid()
    fact = np.array([math.factorial(k) for k in range(GRID_TERMS)], dtype=float)
    out = {
        "ss_n": np.zeros(n_groups),
        "ss_ybar": np.zeros(n_groups),
        "ss_syy": np.zeros(n_groups),
        "ss_m1": np.zeros((n_groups, GRID_SIZE, GRID_TERMS)),
        "ss_my": np.zeros((n_groups, GRID_SIZE, GRID_TERMS)),
    }
    for g in range(n_groups):
        m = fd.group_idx == g
        d, y = d_all[m], np.asarray(fd.e_ds, float)[m]
        if d.size == 0:
            continue
        ybar = y.mean()
        yc = y - ybar
        out["ss_n"][g] = d.size
        out["ss_ybar"][g] = ybar
        out["ss_syy"][g] = np.dot(yc, yc)
        with np.errstate(over="raise"):
            e = np.exp(np.outer(a, d))  # (J, n)
        powers = d[:, None] ** np.arange(GRID_TERMS) / fact  # (n, K)
        out["ss_m1"][g] = e @ powers
        out["ss_my"][g] = e @ (yc[:, None] * powers)
    return out


def _taylor(m: Any, j: Any, delta: Any) -> Any:
    """``sum_k m[g, j_g, k] delta_g^k`` per group (PyTensor)."""
    import pytensor.tensor as pt

    rows = m[pt.arange(m.shape[0]), j]  # (G, K)
    # delta^0 apart: the gradient of delta^k (k >= 1) is finite at delta = 0 (0^0 = 1)
    ks = np.arange(1, GRID_TERMS, dtype=float)
    p = pt.concatenate([pt.ones_like(delta)[:, None], delta[:, None] ** ks], axis=1)
    return (rows * p).sum(axis=-1)


def _cell(a: Any) -> tuple[Any, Any]:
    """Nearest grid index of ``a`` (clipped to the grid) and the offset from it."""
    import pytensor.tensor as pt

    j = pt.clip(pt.cast(pt.floor(a / GRID_STEP + 0.5), "int64"), 0, GRID_SIZE - 1)
    return j, a - pt.cast(j, "float64") * GRID_STEP


def gaussian_loglik(
    log_level: Any, alpha: Any, e_ir: Any, sigma: Any, stats: Mapping[str, Any]
) -> Any:
    """Per-group Gaussian log-likelihood ``(G,)`` from the stats (PyTensor graph).

    ``stats`` maps ``STAT_NAMES`` to tensors (``pm.Data``). Groups with ``alpha`` above
    ``ALPHA_MAX`` get ``-inf`` (the grid's end, see the module's docstring).
    """
    import pytensor.tensor as pt

    n, ybar, syy = stats["ss_n"], stats["ss_ybar"], stats["ss_syy"]
    m1, my = stats["ss_m1"], stats["ss_my"]
    inside = pt.le(alpha, ALPHA_MAX)
    a = pt.clip(alpha, 0.0, ALPHA_MAX)  # keep the unused branch finite
    j1, d1 = _cell(a)
    j2, d2 = _cell(2.0 * a)
    f_a = _taylor(m1, j1, d1)
    g_a = _taylor(my, j1, d1)
    f_2a = _taylor(m1, j2, d2)
    amp = pt.exp(log_level)
    c = ybar - e_ir
    rss = syy + n * c**2 - 2.0 * amp * (g_a + c * f_a) + amp**2 * f_2a
    rss = pt.maximum(rss, 0.0)  # rounding only: a sum of squares
    ll = -n * pt.log(sigma) - rss / (2.0 * sigma**2) - 0.5 * n * np.log(2 * np.pi)
    return pt.switch(inside, ll, -np.inf)


def max_alpha(posterior: Any) -> float:
    """Largest ``alpha`` over the draws of a posterior (an xarray group with ``alpha``)."""
    return float(np.asarray(posterior["alpha"]).max())


def guard(posterior: Any) -> bool:
    """Return True (and warn) when the draws come near the grid's end (``ALPHA_GUARD``)."""
    top = max_alpha(posterior)
    if top <= ALPHA_GUARD:
        return False
    warnings.warn(
        f"a draw has alpha = {top:.3g} > {ALPHA_GUARD:g}, near the end of the summary "
        f"statistics' grid (alpha <= {ALPHA_MAX:g}); sampling again with the exact "
        "per-point likelihood",
        SummaryStatsWarning,
        stacklevel=3,
    )
    return True
