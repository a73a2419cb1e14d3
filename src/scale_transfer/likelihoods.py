"""The frontier likelihood and its parts.

Each model sits above its task's frontier error by a non-negative gap plus Gaussian
noise: PyTensor log densities and NumPy draws.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.compile.builders import OpFromGraph

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


_INV_SQRT2 = float(1.0 / np.sqrt(2.0))
_TWO_OVER_SQRT_PI = float(2.0 / np.sqrt(np.pi))

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

    Its value is that of those two functions. Its gradient in ``mu``, ``sigma``, ``nu`` and
    ``w`` is written out (:func:`_top_logp_partials`), computed in the same pass as the
    value, instead of PyTensor's automatic differentiation: measured at 4,800 points (a top
    fit of 3,000 models x 8 tasks), 0.75 ms per log density and gradient of the whole model
    against 0.95 ms. ``value`` and ``cut`` are data and get no gradient.
    """
    args = [pt.as_tensor_variable(v) for v in (value, mu, sigma, nu, w, cut)]
    inner = [v.type() for v in args]
    logp, partials = _top_logp_partials(*inner)
    op = OpFromGraph(inner, [logp, *partials], pullback=_top_pullback, name="frontier_top_logp")
    return op(*args)[0]


def _top_pullback(inputs, outputs, output_grads):
    """Pullback of :func:`frontier_top_logp`: the incoming gradient times each partial."""
    g = output_grads[0]
    return [pt.zeros_like(inputs[0]), *(g * part for part in outputs[1:]), pt.zeros_like(inputs[5])]


def _exgaussian_parts(d, s, inv_s, inv_n):
    """:func:`exgaussian_logp` of ``d = value - mu`` and its partials in ``d``, ``s`` and ``n``.

    Takes the reciprocals ``inv_s = 1/s`` and ``inv_n = 1/n``, which both parts of the gap share.
    """
    ds = d * inv_s
    c = s * inv_n
    z = ds - c
    left_side = pt.lt(z, EXG_Z_SWITCH)
    u = -pt.minimum(z, EXG_Z_SWITCH) * _INV_SQRT2
    e = erfcx(u)
    r = (2.0 * u - _TWO_OVER_SQRT_PI / e) * _INV_SQRT2  # erfcx'(u) / erfcx(u) / sqrt 2
    log_inv_n = pt.log(inv_n)
    left = log_inv_n - 0.5 * pt.sqr(ds) + pt.log(0.5 * e)
    right = log_inv_n - d * inv_n + 0.5 * pt.sqr(c)
    value = pt.switch(left_side, left, right)
    d_d = pt.switch(left_side, -(ds + r) * inv_s, -inv_n)
    d_s = pt.switch(left_side, (pt.sqr(ds) + r * (ds + c)) * inv_s, c * inv_n)
    d_n = pt.switch(left_side, -(1.0 + r * c) * inv_n, (d * inv_n - 1.0 - pt.sqr(c)) * inv_n)
    return value, d_d, d_s, d_n


def _top_logp_partials(value, mu, sigma, nu, w, cut):
    """:func:`frontier_top_logp` and its partials in ``mu``, ``sigma``, ``nu`` and ``w``.

    The same expressions as :func:`hypoexp_gaussian_logp` minus
    :func:`hypoexp_gaussian_logcdf` at ``cut - mu``, with their clips; where a clip binds,
    the partial of the clipped term is 0, as automatic differentiation has it. The value is
    written again here rather than taken from those functions because the partials reuse
    its intermediates (the five ``erfcx``, the ratio of the gap's parts) in the same pass;
    ``tests/test_model.py`` holds value and partials equal to those functions and their
    automatic derivatives, so a change to one that the other misses fails there.
    """
    d, t, s = value - mu, cut - mu, sigma
    one_w, one_2w = 1.0 - w, 1.0 - 2.0 * w
    inv_s, inv_n = pt.reciprocal(sigma), pt.reciprocal(nu)
    inv_one_w, inv_w, inv_one_2w = pt.reciprocal(one_w), pt.reciprocal(w), pt.reciprocal(one_2w)
    inv_na, inv_nb = inv_n * inv_one_w, inv_n * inv_w  # 1 / ((1-w) nu), 1 / (w nu)
    # density: f_a (mean (1-w) nu) and f_b (mean w nu), combined as in hypoexp_gaussian_logp
    la, la_d, la_s, la_n = _exgaussian_parts(d, s, inv_s, inv_na)
    lb, lb_d, lb_s, lb_n = _exgaussian_parts(d, s, inv_s, inv_nb)
    raw = w * inv_one_w * pt.exp(lb - la)
    ratio = pt.minimum(raw, 1.0 - 1e-12)
    k = pt.switch(pt.lt(raw, 1.0 - 1e-12), ratio * pt.reciprocal(1.0 - ratio), 0.0)
    dens = la + pt.log(one_w * inv_one_2w) + pt.log1p(-ratio)
    dens_d = (1.0 + k) * la_d - k * lb_d
    dens_s = (1.0 + k) * la_s - k * lb_s
    dens_n = (1.0 + k) * la_n * one_w - k * lb_n * w
    nu_n = nu * ((1.0 + k) * la_n + k * lb_n)
    dens_w = -nu_n - inv_one_w + 2.0 * inv_one_2w - k * inv_w * inv_one_w
    # truncation: log CDF at t = cut - mu, as in hypoexp_gaussian_logcdf
    x = t * inv_s
    near = pt.lt(x, CDF_X_SWITCH)
    xl = pt.minimum(x, CDF_X_SWITCH)
    a = -xl * _INV_SQRT2
    ca, cb = s * inv_na, s * inv_nb
    al, be = ca * _INV_SQRT2, cb * _INV_SQRT2
    e0, ea, eb = erfcx(a), erfcx(a + al), erfcx(a + be)
    bracket = one_2w * e0 - one_w * ea + w * eb
    inner = 0.5 * bracket * inv_one_2w
    floor = pt.lt(inner, 1e-300)
    g_left = -0.5 * pt.sqr(xl) + pt.log(pt.maximum(inner, 1e-300))

    def deriv(y, ey):  # erfcx'(y)
        return 2.0 * y * ey - _TWO_OVER_SQRT_PI

    da, daa, dbb = deriv(a, e0), deriv(a + al, ea), deriv(a + be, eb)
    b_a = one_2w * da - one_w * daa + w * dbb
    b_al, b_be = -one_w * daa * al, w * dbb * be  # times alpha and beta
    b_w = -2.0 * e0 + ea + eb
    live = pt.switch(floor, 0.0, pt.reciprocal(bracket))
    gx_left = -xl - b_a * _INV_SQRT2 * live
    gsn_left = (b_al + b_be) * live  # s * d/ds through alpha and beta; -n * d/dn
    gw_left = (b_w + b_al * inv_one_w - b_be * inv_w) * live
    gw_left += pt.switch(floor, 0.0, 2.0 * inv_one_2w)

    def tail(c):  # exp(c^2/2 - c x) where the noise's factor is 1, else negligible
        return pt.switch(pt.lt(c, x), pt.exp(pt.minimum(c * (0.5 * c - x), 0.0)), 0.0)

    ta, tb = tail(ca), tail(cb)
    q = (one_w * ta - w * tb) * inv_one_2w
    q_in = pt.and_(pt.ge(q, 0.0), pt.le(q, 1.0 - 1e-15))
    g_right = pt.log1p(-pt.clip(q, 0.0, 1.0 - 1e-15))
    gq = pt.switch(q_in, -pt.reciprocal(1.0 - q), 0.0)
    q_x = (w * tb * cb - one_w * ta * ca) * inv_one_2w
    q_ca = one_w * ta * (ca - x) * ca * inv_one_2w  # times ca
    q_cb = -w * tb * (cb - x) * cb * inv_one_2w  # times cb
    q_w = (2.0 * q - ta - tb) * inv_one_2w + q_ca * inv_one_w - q_cb * inv_w
    gx_right = gq * q_x
    gsn_right = gq * (q_ca + q_cb)
    gw_right = gq * q_w

    g = pt.switch(near, g_left, g_right)
    g_x = pt.switch(near, gx_left, gx_right)
    g_sn = pt.switch(near, gsn_left, gsn_right)
    g_s = (g_sn - g_x * x) * inv_s
    g_n = -g_sn * inv_n
    g_w = pt.switch(near, gw_left, gw_right)
    g_t = g_x * inv_s

    logp = dens - g
    return logp, (-dens_d + g_t, dens_s - g_s, dens_n - g_n, dens_w - g_w)


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
