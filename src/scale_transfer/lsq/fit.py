"""Least-squares fits of the law to one task's points, and their predictions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import optimize, stats

from scale_transfer.config import DEFAULT_PROB
from scale_transfer.hull import check_xy
from scale_transfer.law import ds_acc as law_ds_acc

__all__ = ["BOUNDS", "FRAME_COLUMNS", "LsqFit", "fit_lsq", "lsq_interval", "predict_lsq"]

#: Bounds of (k, alpha, e_ir). ``e_ir`` < 1 is enforced as <= 1 - 1e-9.
BOUNDS = {"k": (1e-6, 10.0), "alpha": (1e-3, 50.0), "e_ir": (0.0, 1.0 - 1e-9)}
LOWER = np.array([BOUNDS["k"][0], BOUNDS["alpha"][0], BOUNDS["e_ir"][0]])
UPPER = np.array([BOUNDS["k"][1], BOUNDS["alpha"][1], BOUNDS["e_ir"][1]])
#: ``e_ir`` at most this far above 0 counts as on the bound.
AT_BOUND_TOL = 1e-7
_PROFILE_GRID = np.geomspace(BOUNDS["alpha"][0], BOUNDS["alpha"][1], 241)

FRAME_COLUMNS = [
    "setting",
    "task",
    "target",
    "k",
    "alpha",
    "e_ir",
    "asymptote",
    "asymptote_lower",
    "asymptote_upper",
    "n",
    "sigma",
    "at_bound",
]


@dataclass(frozen=True)
class LsqFit:
    """A least-squares fit of the law to one task.

    Attributes
    ----------
    k, alpha, e_ir : float
        Parameters of the law.
    asymptote : float
        ``1 - e_ir``, the DS accuracy at 100% US accuracy.
    rss : float
        Residual sum of squares (in error, equivalently accuracy, units).
    n : int
        Number of points fitted.
    sigma : float
        Residual standard deviation ``sqrt(rss / (n - 3))``; NaN when ``n <= 3``.
    converged : bool
        The optimizer reported convergence.
    """

    k: float
    alpha: float
    e_ir: float
    asymptote: float
    rss: float
    n: int
    sigma: float
    converged: bool

    @property
    def at_bound(self) -> bool:
        """``e_ir`` is on its lower bound 0 (within :data:`AT_BOUND_TOL`)."""
        return bool(self.e_ir <= AT_BOUND_TOL)

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a dict."""
        return asdict(self)


# --------------------------------------------------------------------------------------------
# Closed-form pieces: the law is linear in (k, e_ir) for fixed alpha.


def safe_log(x: np.ndarray) -> np.ndarray:
    return np.log(np.where(x > 0, x, 1.0))


def box_ls(
    sw: np.ndarray,
    sz: np.ndarray,
    szz: np.ndarray,
    sy: np.ndarray,
    szy: np.ndarray,
    syy: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimise ``sum w (y - k z - e)^2`` over the box of (k, e) from weighted sums.

    The objective is a convex quadratic, so its minimum over the box is the unconstrained
    one if feasible, else the best of the four edges' (clipped) one-dimensional minima.
    All arguments broadcast; returns ``k, e, rss``.
    """
    (k_lo, k_hi), (e_lo, e_hi) = BOUNDS["k"], BOUNDS["e_ir"]
    sw, sz, szz, sy, szy, syy = np.broadcast_arrays(sw, sz, szz, sy, szy, syy)

    def cost(k: np.ndarray, e: np.ndarray) -> np.ndarray:
        return syy - 2 * k * szy - 2 * e * sy + k * k * szz + 2 * k * e * sz + e * e * sw

    with np.errstate(divide="ignore", invalid="ignore"):
        det = szz * sw - sz * sz
        ok = det > 1e-13 * np.maximum(szz * sw, 1e-300)
        k0 = np.where(ok, (szy * sw - sz * sy) / det, np.nan)
        e0 = np.where(ok, (szz * sy - sz * szy) / det, np.nan)
        inside = ok & (k0 >= k_lo) & (k0 <= k_hi) & (e0 >= e_lo) & (e0 <= e_hi)
        cands = [(np.where(inside, k0, k_lo), np.where(inside, e0, e_lo), inside)]
        szz_safe = np.where(szz > 0, szz, 1.0)
        sw_safe = np.where(sw > 0, sw, 1.0)
        for e_b in (e_lo, e_hi):
            k_b = np.clip(np.where(szz > 0, (szy - e_b * sz) / szz_safe, k_lo), k_lo, k_hi)
            cands.append((k_b, np.full_like(k_b, e_b), np.ones(k_b.shape, bool)))
        for k_b in (k_lo, k_hi):
            e_b = np.clip(np.where(sw > 0, (sy - k_b * sz) / sw_safe, e_lo), e_lo, e_hi)
            cands.append((np.full_like(e_b, k_b), e_b, np.ones(e_b.shape, bool)))
    best_k, best_e = cands[0][0].copy(), cands[0][1].copy()
    best_c = np.where(cands[0][2], cost(best_k, best_e), np.inf)
    for k_c, e_c, valid in cands[1:]:
        c = np.where(valid, cost(k_c, e_c), np.inf)
        better = c < best_c
        best_k = np.where(better, k_c, best_k)
        best_e = np.where(better, e_c, best_e)
        best_c = np.where(better, c, best_c)
    return best_k, best_e, np.maximum(best_c, 0.0)


def profile(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, alphas: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Profile over ``alphas`` for each row of weights ``w`` (B, n).

    Returns ``k, e, rss``, each (B, G).
    """
    z = np.power(x[None, :], alphas[:, None])  # (G, n)
    sw = w.sum(axis=1)[:, None]
    sy = (w @ y)[:, None]
    syy = (w @ (y * y))[:, None]
    sz = w @ z.T
    szz = w @ (z * z).T
    szy = w @ (z * y).T
    return box_ls(sw, sz, szz, sy, szy, syy)


# --------------------------------------------------------------------------------------------
# Single fit: scipy least_squares from several starts.


def _xy(us_acc: ArrayLike, ds_acc: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    us, ds = check_xy(us_acc, ds_acc)
    if us.size < 3:
        raise ValueError(f"need at least 3 points to fit the law (3 parameters), got {us.size}")
    return 1.0 - us, 1.0 - ds


def fit_lsq(
    us_acc: ArrayLike,
    ds_acc: ArrayLike,
    *,
    n_starts: int = 4,
    seed: int | None = 0,
) -> LsqFit:
    """Fit the law by bounded non-linear least squares, from several starts.

    Parameters
    ----------
    us_acc, ds_acc : array_like
        Upstream and downstream accuracies of the points (at least 3).
    n_starts : int, default 4
        Starts besides the minimum of the profile scan over ``alpha``: that many values of
        ``alpha`` log-spaced over [0.5, 30], each with its best ``(k, e_ir)``.
    seed : int or None, default 0
        Jitters the log-spaced starts (by up to a factor 1.5) when not ``None``; with
        ``None`` they are exactly log-spaced. The fit is deterministic either way for a
        given ``seed``.

    Returns
    -------
    LsqFit
        The best of the fits.

    Raises
    ------
    ValueError
        For fewer than 3 points, unequal lengths or non-finite values.
    """
    x, y = _xy(us_acc, ds_acc)
    n = x.size
    lx = safe_log(x)

    def resid(theta: np.ndarray) -> np.ndarray:
        return theta[0] * np.power(x, theta[1]) + theta[2] - y

    def jac(theta: np.ndarray) -> np.ndarray:
        z = np.power(x, theta[1])
        return np.column_stack([z, theta[0] * z * lx, np.ones_like(z)])

    alphas = np.geomspace(0.5, 30.0, n_starts) if n_starts > 0 else np.empty(0)
    if seed is not None and alphas.size:
        alphas = alphas * np.random.default_rng(seed).uniform(1 / 1.5, 1.5, alphas.size)
    w = np.ones((1, n))
    k_g, e_g, c_g = profile(x, y, w, _PROFILE_GRID)
    g = int(np.argmin(c_g[0]))
    starts = [(k_g[0, g], _PROFILE_GRID[g], e_g[0, g])]
    if alphas.size:
        k_s, e_s, _ = profile(x, y, w, alphas)
        starts += list(zip(k_s[0], alphas, e_s[0], strict=True))
    # Strictly inside the bounds: trf needs a feasible start and moves off the bounds itself.
    span = UPPER - LOWER
    best = None
    for start in starts:
        theta0 = np.clip(np.asarray(start, dtype=float), LOWER + 1e-9 * span, UPPER - 1e-9 * span)
        res = optimize.least_squares(
            resid,
            theta0,
            jac=jac,
            bounds=(LOWER, UPPER),
            method="trf",
            x_scale="jac",
            ftol=1e-12,
            xtol=1e-12,
            gtol=1e-12,
        )
        rss = float(np.sum(res.fun**2))
        if best is None or rss < best[1]:
            best = (res, rss)
    res, rss = best
    k, alpha, e_ir = (float(v) for v in res.x)
    e_ir = 0.0 if e_ir <= AT_BOUND_TOL * 1e-3 else e_ir
    sigma = float(np.sqrt(rss / (n - 3))) if n > 3 else float("nan")
    return LsqFit(
        k=k,
        alpha=alpha,
        e_ir=e_ir,
        asymptote=1.0 - e_ir,
        rss=rss,
        n=int(n),
        sigma=sigma,
        converged=bool(res.status > 0),
    )


# --------------------------------------------------------------------------------------------
# Prediction.


def _params(fit: LsqFit | Mapping[str, Any] | pd.Series) -> tuple[float, float, float]:
    if isinstance(fit, LsqFit):
        return fit.k, fit.alpha, fit.e_ir
    return float(fit["k"]), float(fit["alpha"]), float(fit["e_ir"])


def predict_lsq(fit: LsqFit | Mapping[str, Any] | pd.Series, us_acc: ArrayLike) -> np.ndarray:
    """DS accuracy predicted by a least-squares fit.

    Parameters
    ----------
    fit : LsqFit, mapping or pandas.Series
        A fit, or a row of :func:`fit_lsq_frame` (anything with ``k``, ``alpha``, ``e_ir``).
    us_acc : array_like
        Upstream accuracies.

    Returns
    -------
    numpy.ndarray
        The law's DS accuracy at ``us_acc``.
    """
    k, alpha, e_ir = _params(fit)
    return law_ds_acc(us_acc, k, alpha, e_ir)


def lsq_interval(
    fit_row: LsqFit | Mapping[str, Any] | pd.Series, us_acc: ArrayLike, prob: float = DEFAULT_PROB
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian predictive interval of a least-squares fit: the curve ± z * sigma.

    The paper-style baseline for calibration: it treats the residuals as Gaussian with the
    fit's residual sd and ignores the uncertainty of the parameters.

    Parameters
    ----------
    fit_row : LsqFit, mapping or pandas.Series
        A fit or a row of :func:`fit_lsq_frame` (``k``, ``alpha``, ``e_ir``, ``sigma``).
    us_acc : array_like
        Upstream accuracies.
    prob : float, default 0.9
        Probability mass of the central interval.

    Returns
    -------
    tuple of numpy.ndarray
        ``(center, lower, upper)`` DS accuracies; the bounds are clipped to [0, 1].

    Raises
    ------
    ValueError
        If ``prob`` is outside (0, 1) or the fit has no finite ``sigma``.
    """
    if not 0.0 < prob < 1.0:
        raise ValueError(f"prob must be in (0, 1), got {prob}")
    sigma = float(fit_row.sigma if isinstance(fit_row, LsqFit) else fit_row["sigma"])
    if not np.isfinite(sigma):
        raise ValueError("the fit has no residual sd (sigma is NaN: too few points)")
    center = predict_lsq(fit_row, us_acc)
    half = stats.norm.ppf(0.5 + prob / 2.0) * sigma
    return center, np.clip(center - half, 0.0, 1.0), np.clip(center + half, 0.0, 1.0)
