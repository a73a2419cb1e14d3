"""Least squares, the paper's method: the baseline the Bayesian model is compared with.

The law ``e_ds = k * e_us**alpha + e_ir`` is fitted by bounded non-linear least squares in
error space (residuals ``k * e_us**alpha + e_ir - e_ds``; the same as in accuracy space),
with bounds ``k`` in [1e-6, 10], ``alpha`` in [1e-3, 50] and ``e_ir`` in [0, 1).

The law is linear in ``(k, e_ir)`` once ``alpha`` is fixed, so the residual sum of squares
profiled over ``alpha`` has a closed form (a two-parameter least-squares problem in a box).
:func:`fit_lsq` scans that profile on a fine grid of ``alpha`` and starts
:func:`scipy.optimize.least_squares` (with the analytic Jacobian) from its minimum and from a
few log-spaced values of ``alpha``; the best solution wins.

:func:`fit_lsq_frame` adds a percentile bootstrap interval on the asymptote ``1 - e_ir``. Its
refits are vectorised over the resamples: the same profile scan (one matrix product for all
resamples, on a coarse grid of ``alpha`` plus the full-data ``alpha``, with ``(k, e_ir)`` in
closed form), then a batched, bound-constrained Levenberg-Marquardt polish (numpy) from the
best point of that scan. About 7 s for 8 tasks x 3,000 points x 1,000 resamples (all points),
2 s for the hull target, on two shared cores.

Bootstrap scheme for the hull target: each resample draws the *models* (all points of the
task, with replacement), recomputes the upper hull of the resample and refits the law to it.
The hull is a statistic of the whole sample, so this is the bootstrap of the estimator the
paper uses; resampling the hull points themselves would treat them as independent draws
around the curve and ignore which models happened to be sampled. Caveat: the hull of a
resample lies on or below the hull of the data, so this bootstrap's distribution tends to
sit below the point estimate (the hull is an extreme-value statistic, for which the bootstrap
is known to be biased): read the interval as sampling variability, not as coverage of the
true asymptote. ``hull_resample="hull"``
resamples the hull points instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import optimize, stats

from scale_transfer import hull as _hull
from scale_transfer.data import setting_of
from scale_transfer.law import ds_acc as law_ds_acc

__all__ = [
    "BOUNDS",
    "LsqFit",
    "fit_lsq",
    "fit_lsq_frame",
    "lsq_interval",
    "predict_lsq",
]

#: Bounds of (k, alpha, e_ir). ``e_ir`` < 1 is enforced as <= 1 - 1e-9.
BOUNDS = {"k": (1e-6, 10.0), "alpha": (1e-3, 50.0), "e_ir": (0.0, 1.0 - 1e-9)}
_LO = np.array([BOUNDS["k"][0], BOUNDS["alpha"][0], BOUNDS["e_ir"][0]])
_HI = np.array([BOUNDS["k"][1], BOUNDS["alpha"][1], BOUNDS["e_ir"][1]])
#: ``e_ir`` at most this far above 0 counts as on the bound.
AT_BOUND_TOL = 1e-7
_PROFILE_GRID = np.geomspace(BOUNDS["alpha"][0], BOUNDS["alpha"][1], 241)
_BOOT_GRID = np.geomspace(0.05, BOUNDS["alpha"][1], 40)
_CHUNK_ELEMENTS = 1 << 19  # resamples x points per block of the batched polish

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


def _safe_log(x: np.ndarray) -> np.ndarray:
    return np.log(np.where(x > 0, x, 1.0))


def _box_ls(
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


def _profile(
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
    return _box_ls(sw, sz, szz, sy, szy, syy)


# --------------------------------------------------------------------------------------------
# Single fit: scipy least_squares from several starts.


def _xy(us_acc: ArrayLike, ds_acc: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    us = np.asarray(us_acc, dtype=float).ravel()
    ds = np.asarray(ds_acc, dtype=float).ravel()
    if us.shape != ds.shape:
        raise ValueError(f"us_acc and ds_acc differ in length: {us.size} and {ds.size}")
    if not (np.isfinite(us).all() and np.isfinite(ds).all()):
        raise ValueError("us_acc and ds_acc must be finite (no NaN or inf)")
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
    lx = _safe_log(x)

    def resid(theta: np.ndarray) -> np.ndarray:
        return theta[0] * np.power(x, theta[1]) + theta[2] - y

    def jac(theta: np.ndarray) -> np.ndarray:
        z = np.power(x, theta[1])
        return np.column_stack([z, theta[0] * z * lx, np.ones_like(z)])

    alphas = np.geomspace(0.5, 30.0, n_starts) if n_starts > 0 else np.empty(0)
    if seed is not None and alphas.size:
        alphas = alphas * np.random.default_rng(seed).uniform(1 / 1.5, 1.5, alphas.size)
    w = np.ones((1, n))
    k_g, e_g, c_g = _profile(x, y, w, _PROFILE_GRID)
    g = int(np.argmin(c_g[0]))
    starts = [(k_g[0, g], _PROFILE_GRID[g], e_g[0, g])]
    if alphas.size:
        k_s, e_s, _ = _profile(x, y, w, alphas)
        starts += list(zip(k_s[0], alphas, e_s[0], strict=True))
    # Strictly inside the bounds: trf needs a feasible start and moves off the bounds itself.
    span = _HI - _LO
    best = None
    for start in starts:
        theta0 = np.clip(np.asarray(start, dtype=float), _LO + 1e-9 * span, _HI - 1e-9 * span)
        res = optimize.least_squares(
            resid,
            theta0,
            jac=jac,
            bounds=(_LO, _HI),
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
# Batched refits for the bootstrap.


def _polish(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    theta: np.ndarray,
    *,
    max_iter: int = 100,
    ftol: float = 1e-10,
    xtol: float = 1e-7,
) -> tuple[np.ndarray, np.ndarray]:
    """Bound-constrained Levenberg-Marquardt on each row of weights ``w`` (B, n) at once.

    Parameters at a bound whose gradient pushes them out are held there for the step
    (an active set); other steps are projected onto the box and kept only if they lower
    the weighted RSS. A row stops when an accepted step lowers the RSS by less than ``ftol``
    (relative) or, in the Gauss-Newton regime, moves every parameter by less than ``xtol``
    (relative: the error left is then of the order of its square). Returns ``theta`` (B, 3)
    and the weighted RSS (B,).
    """
    lx = _safe_log(x)
    lx_pow = np.where(x > 0, lx, -np.inf)  # exp(alpha * -inf) = 0 = 0**alpha
    theta = np.clip(theta, _LO, _HI)
    z = np.exp(theta[:, 1:2] * lx_pow)
    r = theta[:, 0:1] * z + theta[:, 2:3] - y
    cost = np.sum(w * r * r, axis=1)
    sw = np.sum(w, axis=1)
    lam = np.full(theta.shape[0], 1e-4)
    todo = np.ones(theta.shape[0], dtype=bool)
    eye = np.eye(3)
    for _ in range(max_iter):
        idx = np.flatnonzero(todo)
        if idx.size == 0:
            break
        every = idx.size == theta.shape[0]
        wi, zi, ri, th = (w, z, r, theta) if every else (w[idx], z[idx], r[idx], theta[idx])
        ki = th[:, 0]
        zl = zi * lx
        wz, wzl, wr = wi * zi, wi * zl, wi * ri
        a11 = np.sum(wz * zi, axis=1)
        a12 = ki * np.sum(wz * zl, axis=1)
        a13 = np.sum(wz, axis=1)
        a22 = ki * ki * np.sum(wzl * zl, axis=1)
        a23 = ki * np.sum(wzl, axis=1)
        a33 = sw[idx]
        grad = np.stack(
            [np.sum(wr * zi, axis=1), ki * np.sum(wr * zl, axis=1), np.sum(wr, axis=1)], axis=1
        )
        a = np.stack(
            [
                np.stack([a11, a12, a13], axis=1),
                np.stack([a12, a22, a23], axis=1),
                np.stack([a13, a23, a33], axis=1),
            ],
            axis=1,
        )
        held = ((th <= _LO) & (grad > 0)) | ((th >= _HI) & (grad < 0))
        free = ~held
        diag = np.maximum(np.diagonal(a, axis1=1, axis2=2), 1e-12)
        m = a + (lam[idx, None] * diag)[:, :, None] * eye
        m = m * (free[:, :, None] & free[:, None, :]) + eye * held[:, :, None]
        step = -np.linalg.solve(m, (grad * free)[..., None])[..., 0]
        new = np.clip(th + step, _LO, _HI)
        z_new = np.exp(new[:, 1:2] * lx_pow)
        r_new = new[:, 0:1] * z_new + new[:, 2:3] - y
        c_new = np.sum(wi * r_new * r_new, axis=1)
        ok = c_new < cost[idx]
        acc = idx[ok]
        tiny = (np.abs(new - th) <= xtol * (np.abs(th) + xtol)).all(axis=1)
        small = (cost[idx] - c_new) <= ftol * cost[idx] + 1e-300
        gauss_newton = lam[idx] <= 1e-3
        theta[acc], z[acc], r[acc], cost[acc] = new[ok], z_new[ok], r_new[ok], c_new[ok]
        lam[acc] = np.maximum(lam[acc] / 3.0, 1e-12)
        lam[idx[~ok]] *= 4.0
        done = ok & (small | (tiny & gauss_newton))
        done |= ~ok & (tiny | (lam[idx] > 1e10))
        todo[idx[done]] = False
    return theta, cost


def _refit_batch(x: np.ndarray, y: np.ndarray, w: np.ndarray, theta_hat: np.ndarray) -> np.ndarray:
    """Refit the law to each row of weights ``w`` (B, n); returns ``theta`` (B, 3).

    Each row starts at the minimum of a profile scan over a coarse grid of ``alpha`` and the
    full-data ``alpha`` (``theta_hat[1]``), then is polished by :func:`_polish`. Rows with
    fewer than 3 points of positive weight give NaN.
    """
    out = np.full((w.shape[0], 3), np.nan)
    rows = np.flatnonzero(np.count_nonzero(w, axis=1) >= 3)
    step = max(1, _CHUNK_ELEMENTS // max(x.size, 1))
    grid = np.append(_BOOT_GRID, theta_hat[1])
    for start in range(0, rows.size, step):
        sel = rows[start : start + step]
        ws = w[sel]
        k_g, e_g, c_g = _profile(x, y, ws, grid)
        g = np.argmin(c_g, axis=1)
        pick = np.arange(sel.size)
        theta0 = np.column_stack([k_g[pick, g], grid[g], e_g[pick, g]])
        out[sel] = _polish(x, y, ws, theta0)[0]
    return out


def _multinomial_counts(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """Bootstrap counts (n_boot, n): how often each point is drawn in each resample."""
    draws = rng.integers(0, n, size=(n_boot, n)) + n * np.arange(n_boot)[:, None]
    return np.bincount(draws.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(float)


def _hull_weights(us: np.ndarray, ds: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Weights (B, n): 1 on the upper hull of the points drawn in each resample, else 0."""
    order = _hull._hull_order(us, ds)
    xs, ys = us[order], ds[order]
    rec = _hull._records(ys, counts[:, order] > 0)
    w = np.zeros(counts.shape)
    for b in range(counts.shape[0]):
        cand = np.flatnonzero(rec[b])
        w[b, order[cand[_hull._prune(xs[cand], ys[cand])]]] = 1.0
    return w


def _bootstrap_asymptote(
    us: np.ndarray,
    ds: np.ndarray,
    fit: LsqFit,
    *,
    target: str,
    hull_resample: str,
    n_boot: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Asymptotes of ``n_boot`` bootstrap refits (NaN where a resample cannot be fitted)."""
    theta_hat = np.array([fit.k, fit.alpha, fit.e_ir])
    if target == "hull" and hull_resample == "hull":
        idx = _hull.upper_hull(us, ds)
        us, ds = us[idx], ds[idx]
        target = "all"
    counts = _multinomial_counts(rng, us.size, n_boot)
    if target == "hull":
        w = _hull_weights(us, ds, counts)
        used = np.flatnonzero(w.any(axis=0))
        us, ds, w = us[used], ds[used], w[:, used]
    else:
        w = counts
    theta = _refit_batch(1.0 - us, 1.0 - ds, w, theta_hat)
    return 1.0 - theta[:, 2]


def _check_frame(df: pd.DataFrame) -> None:
    """Refuse a frame without the columns, or with values that are not accuracies."""
    from scale_transfer.data import DataError, _looks_like_percent, _name_rows

    missing = [c for c in ("task", "us_acc", "ds_acc") if c not in df.columns]
    if missing:
        raise DataError(
            f"missing column(s) {', '.join(missing)}; found {', '.join(map(str, df.columns))}"
        )
    for col in ("us_acc", "ds_acc"):
        v = pd.to_numeric(df[col], errors="coerce").reset_index(drop=True)
        bad = np.flatnonzero(~v.between(0.0, 1.0).to_numpy())
        if len(bad):
            hint = ""
            if _looks_like_percent(v):
                hint = " They look like percent: divide by 100 (read_tidy(..., percent=True))."
            where = _name_rows(bad, labels=list(df.index))
            raise DataError(
                f"column {col!r} is not an accuracy in [0, 1] at {where} "
                f"(e.g. {df[col].iloc[bad[0]]!r}).{hint}"
            )


def fit_lsq_frame(
    df: pd.DataFrame,
    target: Literal["all", "hull"] = "all",
    n_boot: int = 1000,
    prob: float = 0.9,
    seed: int | None = 0,
    *,
    hull_resample: Literal["points", "hull"] = "points",
    n_starts: int = 4,
) -> pd.DataFrame:
    """Fit the law to each (setting, task) of a tidy frame, with bootstrap intervals.

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy frame (columns ``task``, ``us_acc``, ``ds_acc``; the setting comes from
        ``setting`` or ``upstream`` and ``shots``, see :func:`scale_transfer.data.setting_of`),
        or a loader's result (``load_timm(folder)``).
    target : {"all", "hull"}, default "all"
        Fit all points, or the points on the upper hull (:func:`scale_transfer.hull.upper_hull`).
    n_boot : int, default 1000
        Bootstrap resamples for the interval on the asymptote; 0 skips it (NaN bounds).
    prob : float, default 0.9
        Probability mass of the equal-tailed percentile interval.
    seed : int or None, default 0
        Seed of the resampling (each task gets its own stream, so a task's interval does
        not depend on the other tasks).
    hull_resample : {"points", "hull"}, default "points"
        For ``target="hull"``: resample all points and recompute the hull of each resample
        (default), or resample the hull points of the data. See the module notes.
    n_starts : int, default 4
        Passed to :func:`fit_lsq` for the point estimates.

    Returns
    -------
    pandas.DataFrame
        One row per (setting, task) in order of appearance, columns ``setting, task, target,
        k, alpha, e_ir, asymptote, asymptote_lower, asymptote_upper, n, sigma, at_bound``;
        ``n`` is the number of points fitted and ``at_bound`` is True when ``e_ir`` is on its
        lower bound 0. A task with fewer than 3 points to fit (its hull can be that small)
        gets NaN estimates. Bootstrap resamples with fewer than 3 points are left out of the
        interval.

    Raises
    ------
    ValueError
        For an unknown ``target`` or ``hull_resample``, ``prob`` outside (0, 1), or a
        negative ``n_boot``.
    """
    if target not in ("all", "hull"):
        raise ValueError(f"target must be 'all' or 'hull', got {target!r}")
    if hull_resample not in ("points", "hull"):
        raise ValueError(f"hull_resample must be 'points' or 'hull', got {hull_resample!r}")
    if not 0.0 < prob < 1.0:
        raise ValueError(f"prob must be in (0, 1), got {prob}")
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0, got {n_boot}")
    from scale_transfer.data import _unwrap

    df = _unwrap(df)  # a loader's result: its .data
    _check_frame(df)
    groups = pd.DataFrame({"setting": setting_of(df).to_numpy(), "task": df["task"].to_numpy()})
    index = groups.groupby(["setting", "task"], sort=False).indices
    seeds = np.random.SeedSequence(seed).spawn(len(index))
    us_all = df["us_acc"].to_numpy(dtype=float)
    ds_all = df["ds_acc"].to_numpy(dtype=float)
    tail = (1.0 - prob) / 2.0
    rows = []
    for (setting, task), pos, ss in zip(index.keys(), index.values(), seeds, strict=True):
        us, ds = us_all[pos], ds_all[pos]
        fit_us, fit_ds = us, ds
        if target == "hull":
            h = _hull.upper_hull(us, ds)
            fit_us, fit_ds = us[h], ds[h]
        lower = upper = nan = float("nan")
        if fit_us.size < 3:  # too few (hull) points for 3 parameters
            fit = LsqFit(nan, nan, nan, nan, nan, int(fit_us.size), nan, False)
        else:
            fit = fit_lsq(fit_us, fit_ds, n_starts=n_starts, seed=0)
        if n_boot > 0 and np.isfinite(fit.k):
            boot = _bootstrap_asymptote(
                us,
                ds,
                fit,
                target=target,
                hull_resample=hull_resample,
                n_boot=n_boot,
                rng=np.random.default_rng(ss),
            )
            boot = boot[np.isfinite(boot)]
            if boot.size:
                lower, upper = (float(q) for q in np.quantile(boot, [tail, 1.0 - tail]))
        rows.append(
            {
                "setting": setting,
                "task": task,
                "target": target,
                "k": fit.k,
                "alpha": fit.alpha,
                "e_ir": fit.e_ir,
                "asymptote": fit.asymptote,
                "asymptote_lower": lower,
                "asymptote_upper": upper,
                "n": fit.n,
                "sigma": fit.sigma,
                "at_bound": fit.at_bound,
            }
        )
    out = pd.DataFrame(rows, columns=FRAME_COLUMNS)
    out.attrs["prob"] = prob  # what the interval holds: a report labels it from this
    return out


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
    fit_row: LsqFit | Mapping[str, Any] | pd.Series, us_acc: ArrayLike, prob: float = 0.9
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
