"""The drift layer: how far a new model beyond the data strays, learned inside the data.

Leave-future-out (Buerkner, Gabry & Vehtari 2020) on the fitted data. Per group, the top
band by US accuracy (``ceil(n / BAND_DIVISOR)`` points: the 80-90% band of data whose top
10% a user would extrapolate to) is held out and the same model is fitted to the rest (the
*inner* fit, reusing the compiled model). In logit space, with ``x = logit(acc_us)``,
``y = logit(acc_ds)`` and the inner fit's predictive mean ``m`` and sd ``s`` (the scatter
and the posterior spread of the law) at each band point:

- ``r = y - m``, ``d = x - x_inner_max >= 0`` (how far beyond the inner data), ``w = 1/s^2``;
- drift slope through the origin ``beta = sum(w d r) / sum(w d^2)`` (no drift at the edge);
- scatter inflation ``kappa2 = mean(((r - beta d) / s)^2)``, ``var_beta = kappa2 / sum(w d^2)``;
- the band's reach ``D = x_max - x_inner_max`` (``x_max``: the group's largest fitted x);
- the drift in units of the band's own predictive sd, ``beta_z = beta / rms(s)``.

A new model at ``x`` at or beyond ``x_max`` (``d = x - x_max >= 0``) is then drawn, per
posterior draw with mean ``mu`` and scatter sd ``sigma``, as

    y = mu + beta * min(d, CAP * D) + sqrt(kappa2 sigma^2 + var_beta d^2 + (tau sigma d)^2) eps

(:func:`apply_drift`): the drift continues, but its mean shift stops at the band's own
reach (``CAP``), and its uncertainty grows with the distance beyond the data at the rate of
the drifts of all groups, ``tau = DRIFT_SD * sqrt(mean(beta_z^2))`` over the ``G`` groups
with a band, in units of each group's scatter. A group whose band shows no drift is not
thereby sure that none comes beyond it: on timm, ImageNet-ReaL's band showed little drift,
and its top 10% fell below the curve. ``tau`` is estimated from ``G`` drifts (5 on timm), so
a group's rate is drawn from the distribution of a new drift given those ``G``, a Student-t
with ``G`` degrees of freedom and scale ``tau``: per posterior draw and group,
``tau / sqrt(chi2_G / G)`` (:func:`apply_drift` with ``rng``). Few groups make its tails
heavy (one group: a Cauchy), as they should: one drift says little about the next. Inside
the data the predictive is the fitted one.

The band's standardized residuals ``(r - beta d) / s``, matched across groups
by model, also give the correlation of a new model's deviations across tasks beyond the data
(:func:`band_correlation`), which conditional prediction uses
(:mod:`scale_transfer.conditional`).

Measured on timm and the scaling benchmark (top 10% per task held out):
docs/validation.md.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scale_transfer.odds import logit

if TYPE_CHECKING:
    from scale_transfer.config import ModelConfig, SamplerConfig
    from scale_transfer.posterior import Posterior

__all__ = [
    "BAND_DIVISOR", "CAP", "DRIFT_SD", "apply_drift", "band_correlation", "band_split",
    "drift_correlation", "drift_layer", "drift_rate", "learn", "refit_diagnostics",
    "refit_verdicts",
]  # fmt: skip

#: Band size per group: ``ceil(n / BAND_DIVISOR)`` of its ``n`` fitted points.
BAND_DIVISOR = 9
#: The mean shift stops at ``CAP`` times the band's reach beyond its inner data.
CAP = 1.0
#: Sd of the drift's continuation, as a multiple of the groups' root-mean-square drift.
DRIFT_SD = 1.0
#: Columns of a drift table.
DRIFT_COLUMNS = (
    "group", "setting", "task", "n_band", "x_inner_max", "x_max", "reach", "beta", "kappa2",
    "var_beta", "beta_z",
)  # fmt: skip
#: Prefix of the drift table's columns of band residual correlations (``corr_0`` is the
#: correlation with group 0, and so on; fits saved before them have none).
CORR_PREFIX = "corr_"

_KEYS = ["setting", "task"]


def band_split(
    frame: pd.DataFrame, sizes: dict[tuple[str, str], int] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, dict[tuple[str, str], int]]:
    """Split each (setting, task) into its top band by US accuracy and the rest.

    Parameters
    ----------
    frame : pandas.DataFrame
        Tidy rows (with ``setting``).
    sizes : dict, optional
        Band size per ``(setting, task)``; default ``ceil(n / BAND_DIVISOR)``.

    Returns
    -------
    (rest, band, sizes)
        Ties in US accuracy are broken by model name, as the held-out validation does.
    """
    in_band = pd.Series(False, index=frame.index)
    used: dict[tuple[str, str], int] = {}
    for key, g in frame.groupby(_KEYS, sort=False):
        key = (str(key[0]), str(key[1]))
        n_band = math.ceil(len(g) / BAND_DIVISOR) if sizes is None else sizes[key]
        n_band = min(n_band, len(g) - 1)  # the rest keeps a point at least
        order = g.sort_values(["us_acc", "model"], ascending=[False, True], kind="mergesort")
        in_band[order.index[:n_band]] = True
        used[key] = n_band
    return frame[~in_band].copy(), frame[in_band].copy(), used


def drift_layer(inner: Posterior, band: pd.DataFrame) -> pd.DataFrame:
    """Return the drift layer, one row per group, from the inner fit's predictive on the band.

    ``band`` holds the points above the inner fit's data (:func:`band_split`). Returns a
    table with :data:`DRIFT_COLUMNS`, one row per group of ``inner``.
    """
    from scale_transfer.posterior import unseen_levels_expected

    rows, resid = [], {}
    frame = inner.data[inner.data["used"]] if "used" in inner.data else inner.data
    for g, (setting, task) in enumerate(
        zip(inner.groups["setting"], inner.groups["task"], strict=True)
    ):
        b = band[(band["setting"] == setting) & (band["task"] == task)]
        mine = frame[(frame["setting"] == setting) & (frame["task"] == task)]
        x_in = float(logit(mine["us_acc"]).max())
        beta = kappa2 = var_beta = beta_z = 0.0
        x_max = x_in
        if len(b):
            # the band's models with their own effect levels (a level the inner fit lacks:
            # a new effect drawn from its population, as for a new model)
            eff = inner.row_effects(b)
            with unseen_levels_expected():
                mu, sd, x = inner._odds_parts(
                    b["us_acc"].to_numpy(float), eff, "new-model", np.random.default_rng(g)
                )
            mu, sd = mu[:, g, :], sd[:, g, :]
            loc = mu.mean(0)
            scale = np.sqrt((sd**2).mean(0) + mu.var(0))
            r = logit(b["ds_acc"]) - loc
            d = np.maximum(x - x_in, 0.0)
            w = 1.0 / scale**2
            lever = float(np.sum(w * d * d))
            beta = float(np.sum(w * d * r) / lever) if lever > 0 else 0.0
            z = (r - beta * d) / scale
            kappa2 = float(np.mean(z**2))
            var_beta = kappa2 / lever if lever > 0 else 0.0
            beta_z = beta / float(np.sqrt(np.mean(scale**2)))
            x_max = max(x_in, float(x.max()))
            resid[g] = pd.Series(np.asarray(z), index=b["model"].astype(str).to_numpy())
        rows.append(
            {
                "group": inner.group_labels[g],
                "setting": setting,
                "task": task,
                "n_band": len(b),
                "x_inner_max": x_in,
                "x_max": x_max,
                "reach": x_max - x_in,
                "beta": beta,
                "kappa2": kappa2 if len(b) else 1.0,
                "var_beta": var_beta,
                "beta_z": beta_z,
            }
        )
    out = pd.DataFrame(rows, columns=list(DRIFT_COLUMNS))
    corr = band_correlation(resid, len(out))
    for j in range(len(out)):
        out[f"{CORR_PREFIX}{j}"] = corr[:, j]
    return out


def band_correlation(resid: dict[int, pd.Series], n_groups: int) -> np.ndarray:
    """Correlation across groups of the band's standardized residuals, by model.

    ``resid`` maps a group's position to its residuals indexed by model (a model twice in a
    group is left out). Shrunk toward 0 and made positive definite as
    :func:`scale_transfer.conditional.shrunk_correlation` does; 0 for a group without band.
    """
    from scale_transfer.conditional import shrunk_correlation

    z = pd.DataFrame(
        {g: r[~r.index.duplicated(keep=False)] for g, r in resid.items()},
        columns=range(n_groups),
    )
    return shrunk_correlation(z)


def drift_correlation(drift: pd.DataFrame) -> np.ndarray | None:
    """Return the drift table's band residual correlation (groups in row order), or None."""
    cols = [f"{CORR_PREFIX}{j}" for j in range(len(drift))]
    if not all(c in drift.columns for c in cols):
        return None
    return drift[cols].to_numpy(float)


def drift_rate(drift: pd.DataFrame) -> float | None:
    """``tau``: the drift's continuation sd per unit of logit US accuracy, in scatter units.

    ``DRIFT_SD`` times the root-mean-square standardized drift over the groups with a band;
    None for a table without ``beta_z`` (fits saved before it: their own drift is used).
    """
    if "beta_z" not in drift.columns:
        return None
    bz = _band_drifts(drift)
    return DRIFT_SD * float(np.sqrt(np.mean(bz**2))) if len(bz) else 0.0


def _band_drifts(drift: pd.DataFrame) -> np.ndarray:
    """Return the standardized drifts ``beta_z`` of the groups with a band (tau's data)."""
    return drift.loc[drift["n_band"] > 0, "beta_z"].to_numpy(float)


def apply_drift(
    drift: pd.DataFrame,
    labels: list[str],
    x: np.ndarray,
    mu: np.ndarray,
    sd: np.ndarray,
    *,
    scatter: bool = False,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, ...]:
    """Mean and sd of a new model's ``logit(acc_ds)`` with the drift layer.

    ``mu`` and ``sd`` are draws ``(n_draws, n_groups, n_x)`` of the fit's mean and scatter
    at ``x = logit(acc_us)``; groups in ``labels`` order (a group without a row in
    ``drift`` is left as fitted). At and beyond a group's ``x_max`` the layer applies (see
    the module docstring); inside the data ``mu`` and ``sd`` are returned unchanged. With
    ``scatter``, also the part of the sd that is the model's own scatter
    (``sqrt(kappa2) sd``), without the drift's uncertainty about the curve.

    With ``rng``, each posterior draw gets each group's drift rate ``tau / sqrt(chi2_G / G)``
    (``G`` groups with a band): over the draws, the rate's Student-t predictive with ``G``
    degrees of freedom. Without it, the rate is ``tau`` in every draw (conditional
    prediction, which keeps a Gaussian predictive).
    """
    loc, scale, own = mu.copy(), sd.copy(), sd.copy()
    by_group = drift.set_index("group")
    tau = drift_rate(drift)
    rate = None  # per draw and group; None for a table saved before beta_z
    if tau is not None:
        rate = np.full((mu.shape[0], mu.shape[1], 1), tau)
        n = len(_band_drifts(drift))  # the G drifts tau is estimated from
        if rng is not None and n:
            rate = rate / np.sqrt(rng.chisquare(n, size=rate.shape) / n)
    for g, label in enumerate(labels):
        if label not in by_group.index:
            continue
        row = by_group.loc[label]
        d = x - float(row["x_max"])
        beyond = d >= 0
        if not beyond.any():
            continue
        d = np.maximum(d, 0.0)
        beta = float(row["beta"])
        shift = beta * np.minimum(d, CAP * float(row["reach"]))
        var = float(row["kappa2"]) * sd[:, g, :] ** 2 + float(row["var_beta"]) * d**2
        if rate is None:  # a table saved before beta_z: the group's own drift
            var = var + (DRIFT_SD * beta * d) ** 2
        else:
            var = var + (rate[:, g] * sd[:, g, :] * d) ** 2
        loc[:, g, :] = np.where(beyond, mu[:, g, :] + shift, mu[:, g, :])
        scale[:, g, :] = np.where(beyond, np.sqrt(var), sd[:, g, :])
        own[:, g, :] = np.where(beyond, math.sqrt(float(row["kappa2"])) * sd[:, g, :], sd[:, g, :])
    return (loc, scale, own) if scatter else (loc, scale)


#: Each refit of :func:`learn`: what it is, and what rests on it (its warnings' words).
REFIT_ROLES = {
    "drift layer": (
        "the drift layer's refit (the data without each group's top band)",
        "the new-model intervals beyond the data rest on it",
    ),
    "self-check": (
        "the self-check's refit (the data without each group's top two bands)",
        "the self-check's scores rest on it",
    ),
    "frontier": (
        "the frontier fit (the best points of each bin of US accuracy, the same data)",
        "the asymptotes reported rest on it",
    ),
}


def refit(
    post: Posterior,
    frame: pd.DataFrame,
    role: str = "drift layer",
    config: ModelConfig | None = None,
    sampler: SamplerConfig | None = None,
) -> Posterior:
    """Fit ``post``'s model to other data (no drift layer, no progress bar).

    The same structure and groups: the compiled model is reused. A refit that fails the
    convergence check warns (raises in strict mode) as the main fit does, naming the refit
    (``role``, a key of :data:`REFIT_ROLES`) and what rests on it. ``config`` and
    ``sampler``, where given, replace the model and the sampler settings.
    """
    from scale_transfer.convergence import ConvergenceError, ConvergenceWarning
    from scale_transfer.posterior import fit

    if config is None:
        config = dataclasses.replace(post.config, extrapolation="none")
    if sampler is None:
        sampler = dataclasses.replace(post.sampler, progress=False)
    data = frame.drop(columns=[c for c in ("used", "on_hull") if c in frame])
    which, rests = REFIT_ROLES[role]
    what = f"scale-transfer: {which} did not converge; {rests}."
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        try:
            out = fit(data, config, sampler, min_points=1)
        except ConvergenceError as err:
            raise ConvergenceError(f"{what} {err}") from err
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            text = str(w.message).removeprefix("scale-transfer: the sampler did not converge. ")
            warnings.warn(f"{what} {text}", ConvergenceWarning, stacklevel=2)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return out


def fit_name(role: str) -> str:
    """Name a fit of :data:`REFIT_ROLES`: "drift layer refit", "frontier fit"."""
    return f"{role} fit" if role == "frontier" else f"{role} refit"


def refit_diagnostics(fits: dict[str, Posterior]) -> pd.DataFrame:
    """Return the convergence of the refits, one row per refit (role -> fit).

    Columns ``refit, points, ok, max_rhat, min_ess_bulk, min_ess_tail, divergences,
    max_depth_hits, seconds, failed`` (``failed``: the failed checks' text, empty when ok).
    """
    rows = []
    for role, p in fits.items():
        d = p.diagnostics
        rows.append(
            {
                "refit": role,
                "points": int(p.groups["n"].sum()),
                "ok": bool(d.ok),
                "max_rhat": float(d.max_rhat),
                "min_ess_bulk": float(d.min_ess_bulk),
                "min_ess_tail": float(d.min_ess_tail),
                "divergences": int(d.divergences),
                "max_depth_hits": int(d.max_depth_hits),
                "seconds": float(np.nansum([d.compile_seconds, d.sample_seconds])),
                "failed": " ".join(d.failed),
            }
        )
    return pd.DataFrame(rows)


def refit_verdicts(refits: pd.DataFrame | None) -> list[str]:
    """Return one line per refit of :func:`refit_diagnostics`: its verdict and numbers."""
    if refits is None:
        return []
    lines = []
    for r in refits.itertuples(index=False):
        head = "converged" if r.ok else "NOT CONVERGED"
        line = (
            f"{fit_name(r.refit)} ({r.points:,} points): "
            f"{head}: max R-hat {r.max_rhat:.3f}, "
            f"min bulk ESS {r.min_ess_bulk:.0f}, min tail ESS {r.min_ess_tail:.0f}, "
            f"{r.divergences} divergences"
        )
        lines.append(line + (f". {r.failed}" if not r.ok and r.failed else ""))
    return lines


def fitted_rows(post: Posterior) -> pd.DataFrame:
    """Return the rows ``post`` was fitted to."""
    data = post.data
    return data[data["used"]] if "used" in data else data


def learn(
    post: Posterior, *, self_check: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame]:
    """Learn the drift layer of ``post`` (odds law), and its self-check.

    One inner fit (the data without each group's top band) gives the layer; with
    ``self_check``, one more (without the next band too) gives the inner fit its own
    layer, and the inner fit with that layer is scored on the band
    (:func:`scale_transfer.selfcheck.score_table`). Three fits in all, counting ``post``.

    Returns
    -------
    drift, self_check, refits : pandas.DataFrame
        The drift table, the self-check's scores (None without ``self_check``) and the
        refits' convergence (:func:`refit_diagnostics`).
    """
    from scale_transfer.selfcheck import score_points, score_table

    if post.law != "odds":
        raise ValueError("the drift layer needs a fit of the odds law (law='odds')")
    rest, band, sizes = band_split(fitted_rows(post))
    inner = refit(post, rest, "drift layer")
    drift = drift_layer(inner, band)
    if not self_check:
        return drift, None, refit_diagnostics({"drift layer": inner})
    rest2, band2, _ = band_split(rest, sizes)
    inner2 = refit(post, rest2, "self-check")
    inner.drift = drift_layer(inner2, band2)
    table = score_table(score_points(inner, band, seed=post.sampler.seed))
    table.attrs["drift_layer"] = True
    return drift, table, refit_diagnostics({"drift layer": inner, "self-check": inner2})
