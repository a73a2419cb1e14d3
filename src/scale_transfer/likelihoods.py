"""The frontier likelihood and its parts.

Each model sits above its task's frontier error by a non-negative gap plus Gaussian
noise: PyTensor log densities and NumPy draws.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor.tensor as pt

from scale_transfer.special import erfcx

__all__ = [
    "FRONTIER_MAX_SHARE",
    "exgaussian_logp",
    "frontier_gap_draws",
    "frontier_gap_mean",
    "frontier_logp",
    "frontier_random",
    "frontier_top_logp",
    "frontier_top_random",
    "hypoexp_gaussian_logcdf",
    "hypoexp_gaussian_logp",
]


#: Above this standardized distance ``z`` past the gap's mode the normal CDF factor of the
#: ex-Gaussian density is 1 to double precision (``erfc(-8/sqrt(2)) = 2 - 1.2e-15``).
EXG_Z_SWITCH = 8.0


def exgaussian_logp(value, mu, sigma, nu):
    """Log density of ``mu + Normal(0, sigma) + Exponential(mean=nu)``, stable everywhere.

    PyMC's ``ExGaussian`` switches to a plain normal when ``nu < 0.05 * sigma``; the switch
    leaves the gradient in ``nu`` at zero there, and chains that start on that side stay
    stuck. This form is exact on both sides: with ``z = (value - mu)/sigma - sigma/nu``,
    for ``z < 8`` it uses the scaled complementary error function
    (``log p = -log nu - (d/sigma)^2/2 + log(erfcx(-z/sqrt 2)/2)``), which removes the
    cancellation between a large exponent and a tiny normal CDF; beyond, where the CDF
    factor is 1 to double precision, the exponential's closed form. One special function
    per point (its gradient included), not two.
    """
    d = value - mu
    z = d / sigma - sigma / nu
    zl = pt.minimum(z, EXG_Z_SWITCH)  # erfcx(-z/sqrt 2) overflows for z > 37
    left = -pt.log(nu) - 0.5 * pt.sqr(d / sigma) + pt.log(0.5 * erfcx(-zl / np.sqrt(2.0)))
    right = -pt.log(nu) - d / nu + 0.5 * pt.sqr(sigma / nu)
    return pt.switch(pt.lt(z, EXG_Z_SWITCH), left, right)


#: Largest share ``w`` of the gap's second exponential part (at 0.5 the two parts have the
#: same rate and the closed form below divides by zero).
FRONTIER_MAX_SHARE = 0.45


def hypoexp_gaussian_logp(value, mu, sigma, nu, w):
    """Log density of ``mu + Normal(0, sigma) + Exp(mean (1-w) nu) + Exp(mean w nu)``.

    With rates ``a = 1/((1-w) nu)`` and ``b = 1/(w nu)`` the gap's density is
    ``(b f_a - a f_b) / (b - a)`` in terms of the exponential densities; convolved with the
    noise, ``f_a`` and ``f_b`` become ex-Gaussian densities (:func:`exgaussian_logp`), so
    ``log p = log f_a + log((1-w)/(1-2w)) + log1p(-(w/(1-w)) f_b / f_a)``, for
    ``0 < w < 1/2``; as ``w -> 0`` it tends to the ex-Gaussian.
    """
    lfa = exgaussian_logp(value, mu, sigma, (1.0 - w) * nu)
    lfb = exgaussian_logp(value, mu, sigma, w * nu)
    ratio = pt.minimum(w / (1.0 - w) * pt.exp(lfb - lfa), 1.0 - 1e-12)
    return lfa + pt.log((1.0 - w) / (1.0 - 2.0 * w)) + pt.log1p(-ratio)


def frontier_logp(value, mu, sigma, nu, w, bad_share, nu_bad):
    """Log density of the frontier likelihood.

    A share ``1 - bad_share`` of the models sits above the frontier error ``mu`` by the
    two-part gap of :func:`hypoexp_gaussian_logp` (mean ``nu``, shape ``w``) plus noise;
    the failed models (``bad_share``) by one exponential gap of mean ``nu_bad`` plus noise.
    """
    good = pt.log1p(-bad_share) + hypoexp_gaussian_logp(value, mu, sigma, nu, w)
    bad = pt.log(bad_share) + exgaussian_logp(value, mu, sigma, nu_bad)
    return pt.logaddexp(good, bad)


#: Above this standardized distance ``t / sigma`` the noise's CDF factors of
#: :func:`hypoexp_gaussian_logcdf` are 1 to double precision (``erfc(-26/sqrt 2) = 2`` to
#: 1e-149), and its factored form would overflow (``erfcx(-26/sqrt 2) ~ e^338``).
CDF_X_SWITCH = 26.0


def hypoexp_gaussian_logcdf(t, sigma, nu, w):
    """Log CDF at ``t`` of ``Normal(0, sigma) + Exp(mean (1-w) nu) + Exp(mean w nu)``.

    The gap's CDF is ``((1-w) F_a - w F_b) / (1-2w)`` in terms of the two exponential
    parts' ex-Gaussian CDFs, for ``0 < w < 1/2``. With
    ``x = t / sigma`` each part is ``exp(-x^2/2)/2`` times a difference of scaled
    complementary error functions, so for ``x < 26``
    ``log F = -x^2/2 + log(B / (2 (1-2w)))`` with
    ``B = (1-2w) erfcx(a) - (1-w) erfcx(a + c_a) + w erfcx(a + c_b)``, ``a = -x/sqrt 2`` and
    ``c = sigma / (nu_part sqrt 2)``: the factor that underflows far below the frontier is
    taken out in closed form (the sum of the parts' CDFs hit ``1e-300`` at ``x = -37``
    before, a wall in the log density of a kept point that the frontier passes above).
    Beyond, ``F = 1 - ((1-w) R_a - w R_b) / (1-2w)`` with the exponential tails
    ``R = exp(c'^2/2 - c' x)``, ``c' = sigma / nu_part``. Three special functions per point.
    """
    x = t / sigma
    xl = pt.minimum(x, CDF_X_SWITCH)
    a = -xl / np.sqrt(2.0)
    ca = sigma / ((1.0 - w) * nu)
    cb = sigma / (w * nu)
    bracket = (
        (1.0 - 2.0 * w) * erfcx(a)
        - (1.0 - w) * erfcx(a + ca / np.sqrt(2.0))
        + w * erfcx(a + cb / np.sqrt(2.0))
    )
    left = -0.5 * pt.sqr(xl) + pt.log(pt.maximum(0.5 * bracket / (1.0 - 2.0 * w), 1e-300))

    def tail(c):  # exp(c^2/2 - c x) where the noise's factor is 1, else negligible
        return pt.switch(pt.lt(c, x), pt.exp(pt.minimum(c * (0.5 * c - x), 0.0)), 0.0)

    q = ((1.0 - w) * tail(ca) - w * tail(cb)) / (1.0 - 2.0 * w)
    right = pt.log1p(-pt.clip(q, 0.0, 1.0 - 1e-15))
    return pt.switch(pt.lt(x, CDF_X_SWITCH), left, right)


def frontier_top_logp(value, mu, sigma, nu, w, cut):
    """Log density of the frontier likelihood of a point selected for ``value < cut``.

    The two-part gap plus noise above the frontier error ``mu``
    (:func:`hypoexp_gaussian_logp`), truncated to errors below ``cut``: the point was kept
    because it is among the best of its bin of US accuracy, so its density is divided by
    the probability of being kept. Failed models lie far below any cut and need no part of
    their own.
    """
    return hypoexp_gaussian_logp(value, mu, sigma, nu, w) - hypoexp_gaussian_logcdf(
        cut - mu, sigma, nu, w
    )


def frontier_top_random(mu, sigma, nu, w, cut, rng=None, size=None):
    """Draw values of :func:`frontier_top_logp` (rejection from the untruncated law)."""
    rng = np.random.default_rng(rng)
    shape = np.broadcast_shapes(*(np.shape(v) for v in (mu, sigma, nu, w, cut)))
    size = shape if size is None else size
    mu, sigma, nu, w, cut = (np.broadcast_to(v, size) for v in (mu, sigma, nu, w, cut))
    out = np.full(size, np.nan)
    todo = np.ones(size, bool)
    for _ in range(200):  # a point is kept with probability about the top share
        gap = frontier_gap_draws(rng, nu, w, 0.0, 1.0, size)
        y = mu + sigma * rng.standard_normal(size) + gap
        take = todo & (y < cut)
        out[take] = y[take]
        todo &= ~take
        if not todo.any():
            break
    out[todo] = np.minimum(mu, cut)[todo]  # kept with negligible probability: at the edge
    return out


def frontier_gap_draws(
    rng: np.random.Generator, nu: Any, w: Any, bad_share: Any, nu_bad: Any, size: Any
) -> np.ndarray:
    """Draw gaps of the frontier likelihood (parameters broadcast to ``size``)."""
    nu, w, bad_share, nu_bad = (np.broadcast_to(v, size) for v in (nu, w, bad_share, nu_bad))
    gap = rng.exponential((1.0 - w) * nu) + rng.exponential(np.maximum(w * nu, 1e-300))
    bad = rng.random(size) < bad_share
    return np.where(bad, rng.exponential(nu_bad), gap)


def frontier_random(mu, sigma, nu, w, bad_share, nu_bad, rng=None, size=None):
    """Draw values of the frontier likelihood (``random`` of its ``CustomDist``)."""
    rng = np.random.default_rng(rng)
    size = np.broadcast_shapes(*(np.shape(v) for v in (mu, sigma, nu, w))) if size is None else size
    gap = frontier_gap_draws(rng, nu, w, bad_share, nu_bad, size)
    return mu + sigma * rng.standard_normal(size) + gap


def frontier_gap_mean(gap, power, log_level, e_ir, mu, lib: Any = np):
    """Mean gap of a good model where the frontier error is ``mu``.

    ``gap * (mu / mu_ref) ** power`` with ``mu_ref = exp(log_level) + e_ir``, the frontier
    error at the group's reference point (all arguments broadcast).
    """
    return gap * lib.exp(power * (lib.log(mu) - lib.log(lib.exp(log_level) + e_ir)))
