"""The truncated frontier likelihood as one compiled loop, with its analytic gradient.

:func:`scale_transfer.likelihoods.frontier_top_logp` written as PyTensor operations computes
four ex-Gaussian terms per point, both sides of each of their switches, and a gradient graph
of as many operations again. This module computes the log density and its partial
derivatives in one numba loop over the points (one PyTensor operation, whose gradient reuses
the partials), the same values to rounding (tests/test_model.py compares both, value and
gradient): about 1.6 times faster per gradient on the paper's scale.

The derivatives, with ``d = y - mu``, ``t = cut - mu``, ``z = d/s - s/nu`` and ``E`` the
ex-Gaussian CDF's second term (:func:`scale_transfer.likelihoods.exgaussian_cdf`):
``d/dt F = E/nu``, ``d/ds F = phi(t/s)/nu - E s/nu^2``,
``d/dnu F = -(E (t/nu^2 - s^2/nu^3) + phi(t/s) s/nu^2)``; the log density's as in
:func:`scale_transfer.likelihoods.exgaussian_logp`, through ``d/du log erfcx(u) = 2u -
2/(sqrt(pi) erfcx(u))``.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import numba_funcify

__all__ = ["FrontierTopOp", "frontier_top_logp_fused"]

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_TWO_OVER_SQRTPI = 2.0 / math.sqrt(math.pi)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)
#: As :data:`scale_transfer.likelihoods.EXG_Z_SWITCH`.
_Z_SWITCH = 8.0
_R_MAX = 1.0 - 1e-12
#: Compiled as PyTensor compiles its own operations (its fast-math flags where
#: ``pytensor.config.numba__fastmath`` is on), so that the kernel computes the same in a
#: freshly compiled model and in one loaded from the compiled-model cache.
_JIT = {
    "error_model": "numpy",
    "fastmath": (
        {"arcp", "contract", "afn", "reassoc", "nsz"} if pytensor.config.numba__fastmath else False
    ),
}


@numba.njit(**_JIT)
def _erfcx(u: float) -> float:
    if u < 26.0:  # exp(u^2) stays finite and erfc(u) keeps its relative precision
        return math.exp(u * u) * math.erfc(u)
    u2 = 1.0 / (u * u)
    return (1.0 - 0.5 * u2 * (1.0 - 1.5 * u2 * (1.0 - 2.5 * u2))) / (u * math.sqrt(math.pi))


@numba.njit(**_JIT)
def _exg_logpdf(d: float, s: float, nu: float) -> tuple[float, float, float, float]:
    """Log density of Normal(0, s) + Exp(mean nu) at d; its partials in d, s, nu."""
    z = d / s - s / nu
    if z < _Z_SWITCH:
        u = -z * _INV_SQRT2
        e = _erfcx(u)
        c = -(2.0 * u - _TWO_OVER_SQRTPI / e) * _INV_SQRT2  # d/dz log erfcx(-z/sqrt 2)
        val = -math.log(nu) - 0.5 * (d / s) ** 2 + math.log(0.5 * e)
        ds = d * d / (s * s * s) + c * (-d / (s * s) - 1.0 / nu)
        return val, -d / (s * s) + c / s, ds, -1.0 / nu + c * (s / (nu * nu))
    val = -math.log(nu) - d / nu + 0.5 * (s / nu) ** 2
    dnu = -1.0 / nu + d / (nu * nu) - s * s / (nu * nu * nu)
    return val, -1.0 / nu, s / (nu * nu), dnu


@numba.njit(**_JIT)
def _exg_cdf(
    t: float, s: float, nu: float, big_phi: float, small_phi: float
) -> tuple[float, float, float, float]:
    """CDF of Normal(0, s) + Exp(mean nu) at t; its partials in t, s, nu."""
    z = t / s - s / nu
    if z < _Z_SWITCH:
        e = 0.5 * _erfcx(-z * _INV_SQRT2) * math.exp(-0.5 * (t / s) ** 2)
    else:
        e = math.exp(-t / nu + 0.5 * (s / nu) ** 2)
    nu2 = nu * nu
    dnu = -(e * (t / nu2 - s * s / (nu2 * nu)) + small_phi * s / nu2)
    return big_phi - e, e / nu, -e * s / nu2 + small_phi / nu, dnu


@numba.njit(**_JIT)
def _point(
    y: float, mu: float, s: float, nu: float, w: float, cut: float
) -> tuple[float, float, float, float, float]:
    """Log density of one kept point and its partials in mu, s, nu, w."""
    d = y - mu
    na, nb = (1.0 - w) * nu, w * nu
    la, lad, las, lan = _exg_logpdf(d, s, na)
    lb, lbd, lbs, lbn = _exg_logpdf(d, s, nb)
    r = w / (1.0 - w) * math.exp(lb - la)
    clipped = r >= _R_MAX
    if clipped:
        r = _R_MAX
    h = la + math.log((1.0 - w) / (1.0 - 2.0 * w)) + math.log1p(-r)
    hr = 0.0 if clipped else -r / (1.0 - r)  # r * d/dr log1p(-r)
    hd = lad + hr * (lbd - lad)
    hs = las + hr * (lbs - las)
    hn = lan * (1.0 - w) + hr * (lbn * w - lan * (1.0 - w))
    hw = (
        -lan * nu
        - 1.0 / (1.0 - w)
        + 2.0 / (1.0 - 2.0 * w)
        + hr * (1.0 / w + 1.0 / (1.0 - w) + nu * (lbn + lan))
    )
    t = cut - mu
    ts = t / s
    big_phi = 0.5 * math.erfc(-ts * _INV_SQRT2)
    small_phi = _INV_SQRT2PI * math.exp(-0.5 * ts * ts)
    fa, fat, fas, fan = _exg_cdf(t, s, na, big_phi, small_phi)
    fb, fbt, fbs, fbn = _exg_cdf(t, s, nb, big_phi, small_phi)
    k = 1.0 / (1.0 - 2.0 * w)
    c = ((1.0 - w) * fa - w * fb) * k
    if c < 1e-300:  # as the graph's floor: no gradient through it
        return h - math.log(1e-300), -hd, hs, hn, hw
    ct = ((1.0 - w) * fat - w * fbt) * k
    cs = ((1.0 - w) * fas - w * fbs) * k
    cn = ((1.0 - w) ** 2 * fan - w * w * fbn) * k
    cw = (fa - fb) * k * k - ((1.0 - w) * fan + w * fbn) * nu * k
    return h - math.log(c), -hd + ct / c, hs - cs / c, hn - cn / c, hw - cw / c


@numba.njit(**_JIT)
def _kernel(y, mu, s, nu, w, cut):  # noqa: ANN001, ANN202 (numba arrays)
    n = y.shape[0]
    out = np.empty((5, n))
    for i in range(n):
        r = _point(y[i], mu[i], s[i], nu[i], w[i], cut[i])
        for j in range(5):
            out[j, i] = r[j]
    return out[0], out[1], out[2], out[3], out[4]


class FrontierTopOp(Op):
    """Log density of :func:`~scale_transfer.likelihoods.frontier_top_logp` per point.

    Inputs ``value, mu, sigma, nu, w, cut`` (vectors of one length); outputs the log
    density and its partials in ``mu, sigma, nu, w``, which the gradient reuses.
    """

    __props__ = ("version",)

    def __init__(self, version: int = 1) -> None:
        self.version = version  # part of the compiled-model cache key: bump on any change

    def make_node(self, *inputs: object) -> Apply:
        """Six float vectors in, five out."""
        ins = [pt.as_tensor_variable(x).astype("float64") for x in inputs]
        return Apply(self, ins, [pt.dvector() for _ in range(5)])

    def perform(self, node: Apply, inputs: list, outputs: list) -> None:
        """Run the compiled loop (PyTensor's Python and C backends)."""
        results = _kernel(*(np.asarray(x, float) for x in inputs))
        for out, value in zip(outputs, results, strict=True):
            out[0] = value

    def pullback(self, inputs: list, outputs: list, grads: list) -> list:
        """Return the gradient: each partial times the incoming gradient."""
        g = grads[0]
        value, *_, cut = inputs
        return [value.zeros_like(), *(g * p for p in outputs[1:]), cut.zeros_like()]


@numba_funcify.register(FrontierTopOp)
def _numba_frontier_top(op: FrontierTopOp, node: Apply, **kwargs: object) -> object:
    return _kernel


_OP = FrontierTopOp()


def frontier_top_logp_fused(value, mu, sigma, nu, w, cut):  # noqa: ANN001, ANN201
    """:func:`~scale_transfer.likelihoods.frontier_top_logp`, per point, in one operation."""
    args = (pt.as_tensor_variable(a).astype("float64") for a in (value, mu, sigma, nu, w, cut))
    return _OP(*pt.broadcast_arrays(*args))[0]
