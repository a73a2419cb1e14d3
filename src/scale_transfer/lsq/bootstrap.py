"""Percentile bootstrap of the asymptote, vectorised over resamples; the frame-level fit."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from scale_transfer import hull as _hull
from scale_transfer.config import DEFAULT_PROB
from scale_transfer.data import setting_of
from scale_transfer.lsq.fit import (
    BOUNDS,
    FRAME_COLUMNS,
    LOWER,
    UPPER,
    LsqFit,
    fit_lsq,
    profile,
    safe_log,
)

__all__ = ["fit_lsq_frame"]

_BOOT_GRID = np.geomspace(0.05, BOUNDS["alpha"][1], 40)
_CHUNK_ELEMENTS = 1 << 19  # resamples x points per block of the batched polish

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
    lx = safe_log(x)
    lx_pow = np.where(x > 0, lx, -np.inf)  # exp(alpha * -inf) = 0 = 0**alpha
    theta = np.clip(theta, LOWER, UPPER)
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
        held = ((th <= LOWER) & (grad > 0)) | ((th >= UPPER) & (grad < 0))
        free = ~held
        diag = np.maximum(np.diagonal(a, axis1=1, axis2=2), 1e-12)
        m = a + (lam[idx, None] * diag)[:, :, None] * eye
        m = m * (free[:, :, None] & free[:, None, :]) + eye * held[:, :, None]
        step = -np.linalg.solve(m, (grad * free)[..., None])[..., 0]
        new = np.clip(th + step, LOWER, UPPER)
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
        k_g, e_g, c_g = profile(x, y, ws, grid)
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
    from scale_transfer.data import DataError, looks_like_percent, name_rows

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
            if looks_like_percent(v):
                hint = " They look like percent: divide by 100 (read_tidy(..., percent=True))."
            where = name_rows(bad, labels=list(df.index))
            raise DataError(
                f"column {col!r} is not an accuracy in [0, 1] at {where} "
                f"(e.g. {df[col].iloc[bad[0]]!r}).{hint}"
            )


def _fit_group(
    us: np.ndarray,
    ds: np.ndarray,
    setting: str,
    task: str,
    target: str,
    n_boot: int,
    prob: float,
    ss: np.random.SeedSequence,
    *,
    hull_resample: str,
    n_starts: int,
) -> dict:
    """Fit one (setting, task) and bootstrap its asymptote; return its row."""
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
        rng = np.random.default_rng(ss)
        boot = _bootstrap_asymptote(
            us, ds, fit, target=target, hull_resample=hull_resample, n_boot=n_boot, rng=rng
        )
        boot = boot[np.isfinite(boot)]
        if boot.size:
            tail = (1.0 - prob) / 2.0
            lower, upper = (float(q) for q in np.quantile(boot, [tail, 1.0 - tail]))
    return {
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


def fit_lsq_frame(
    df: pd.DataFrame,
    target: Literal["all", "hull"] = "all",
    n_boot: int = 1000,
    prob: float = DEFAULT_PROB,
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
    from scale_transfer.data import unwrap

    df = unwrap(df)  # a loader's result: its .data
    _check_frame(df)
    groups = pd.DataFrame({"setting": setting_of(df).to_numpy(), "task": df["task"].to_numpy()})
    index = groups.groupby(["setting", "task"], sort=False).indices
    seeds = np.random.SeedSequence(seed).spawn(len(index))
    us_all = df["us_acc"].to_numpy(dtype=float)
    ds_all = df["ds_acc"].to_numpy(dtype=float)
    rows = [
        _fit_group(us_all[pos], ds_all[pos], setting, task, target, n_boot, prob, ss,
                   hull_resample=hull_resample, n_starts=n_starts)
        for (setting, task), pos, ss in zip(index.keys(), index.values(), seeds, strict=True)
    ]  # fmt: skip
    out = pd.DataFrame(rows, columns=FRAME_COLUMNS)
    out.attrs["prob"] = prob  # what the interval holds: a report labels it from this
    return out
