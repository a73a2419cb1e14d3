"""Conditional prediction: a new model's other tasks, given its accuracy on some of them.

A model that does better than the curve on one shift tends to do better on the others
(effective robustness is shared across shifts): on timm the residuals of ImageNet-Sketch and
ImageNet-R correlate at r = 0.92. Measuring a new model on one task therefore says much about
its other tasks. This module turns that into a predictive.

**Correlation of the residuals** (:func:`residual_correlation`). For every fitted point, the
standardized residual in the likelihood's space, from the posterior mean: for the odds law
``z = (logit(acc_ds) - E[mu]) / sqrt(E[sd^2])`` with ``mu`` and ``sd`` the law's mean and
scatter sd of ``logit(acc_ds)`` at that point; for the paper's law (Gaussian likelihood) the
same in accuracy, with the curve and ``sigma`` (a Gaussian in error is one in accuracy, with
the sign of every residual turned, which leaves correlations as they are). Models are
matched across groups by the data's ``model`` column. For each pair of groups, the Pearson
correlation ``r`` of the ``n`` models present in both is shrunk toward 0 on Fisher's scale:
``atanh(r)``, whose sampling sd is ``1 / sqrt(n - 3)``, is replaced by its posterior mean
under a normal prior with mean 0 and sd :data:`PRIOR_SD`, i.e. multiplied by
``(n - 3) / (n - 3 + PRIOR_SD**-2)`` (with 0.5: 0.33 for 5 shared models, 0.96 for 100);
below :data:`MIN_SHARED` shared models the correlation is 0. The matrix is then made
positive definite: eigenvalues below :data:`MIN_EIGENVALUE` are raised to it, and the
diagonal rescaled to 1.

**Conditional predictive** (:func:`conditional_draws`). Per posterior draw, the unconditional
new-model predictive of each group is Gaussian in the likelihood's space with mean ``m`` and
sd ``s`` (the drift layer of ``extrapolation="lfo"`` included beyond the data, as
:meth:`~scale_transfer.posterior.Posterior.predict_draws` has it), and the covariance across
groups is ``C = s R s``. For the given groups ``G`` with observed ``y_G`` each other group
``B`` is drawn from the Gaussian conditional, mean ``m_B + C_BG C_GG^-1 (y_G - m_G)`` and
variance ``C_BB - C_BG C_GG^-1 C_GB``, then mapped back to accuracy. Intervals are
equal-tailed (or highest-density) over these draws (:func:`scale_transfer.intervals.interval`).

Which correlation ``R``: for a new model beyond any group's fitted data, a fit with a drift
layer learned it where such models are: the leave-future-out band's standardized residuals,
matched by model (:func:`scale_transfer.extrapolation.band_correlation`, shrunk as above).
Among timm's top models the residuals of ImageNet-R and Sketch correlate at about 0.8, not
the 0.92 of all fitted points, and a model's deviation beyond the data is partly the
curve's drift, which the fitted points' correlation does not see. Inside the data, and for
a fit without a drift layer (the paper's law), only the scatter ``S`` is correlated, by
:func:`residual_correlation` (or ``corr`` where given), and the drift layer's uncertainty
``D = s^2 - S^2`` (0 inside the data) is each task's own: ``C = S R S + diag(D)``.

Measured on timm: docs/validation.md ("Conditional prediction").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scale_transfer.intervals import accuracies, interval

if TYPE_CHECKING:
    from scale_transfer.posterior import Posterior

__all__ = [
    "MIN_EIGENVALUE",
    "MIN_SHARED",
    "PRIOR_SD",
    "conditional_draws",
    "given_options",
    "parse_given",
    "predict",
    "read_given_csv",
    "residual_correlation",
    "residuals",
    "resolve_given",
    "shrunk_correlation",
]

#: Prior sd of a pair's correlation on Fisher's scale (``atanh r``), centred on 0: the
#: shrinkage toward 0 where two groups share few models.
PRIOR_SD = 0.5
#: Fewest models two groups must share for their correlation to count (else 0).
MIN_SHARED = 5
#: Smallest eigenvalue of the correlation matrix (before its diagonal is rescaled to 1).
MIN_EIGENVALUE = 1e-3
#: Posterior draws used for the posterior-mean residuals (evenly thinned).
RESIDUAL_DRAWS = 400
#: ``kind`` of a conditional prediction's table rows.
KIND = "conditional"


# ------------------------------------------------------------------ the residuals
def _supported(post: Posterior) -> None:
    """Refuse fits whose new-model predictive is not Gaussian in the likelihood's space."""
    c = post.config
    if post.law == "odds" and not getattr(c, "effects", ()):
        return
    if c.likelihood != "gaussian" or getattr(c, "effects", ()):
        raise ValueError(
            "conditional prediction (given) needs a fit without effects, of law='odds' or "
            f"of the paper's law with likelihood='gaussian'; this fit has law={post.law!r}, "
            f"likelihood={c.likelihood!r}"
            + (f", effects={c.effects!r}" if getattr(c, "effects", ()) else "")
        )


def _thinned(post: Posterior, name: str, step: int) -> np.ndarray:
    return post.draws(name)[::step]


def _point_parts(post: Posterior, g: int, us: np.ndarray, max_draws: int) -> tuple[np.ndarray, ...]:
    """Posterior mean and scatter sd in the likelihood's space at ``us`` for group ``g``."""
    n_draws = post.draws("alpha").shape[0]
    step = max(1, math.ceil(n_draws / max_draws))
    if post.law == "odds":
        from scale_transfer.odds import logit_mean, scatter_sd

        xc = np.asarray(_logit(us)) - float(post.groups["logit_us_ref"].to_numpy(float)[g])
        mu = logit_mean(
            _thinned(post, "odds_level_group", step)[:, g, None],
            _thinned(post, "alpha", step)[:, g, None],
            _thinned(post, "logit_asymptote_group", step)[:, g, None],
            xc[None, :],
        )
        sd = scatter_sd(
            _thinned(post, "log_scatter_group", step)[:, g, None],
            _thinned(post, "scatter_slope_group", step)[:, g, None],
            xc[None, :],
        )
        return mu.mean(0), np.sqrt((sd**2).mean(0))
    mean = np.empty(us.shape)
    for lo in range(0, len(us), 200):  # the curve of every group and draw: in chunks
        chunk = us[lo : lo + 200]
        mean[lo : lo + 200] = post.predict_draws(chunk, "curve")[:, g, :].mean(0)
    sigma = post.draws("sigma")[:, g]
    return mean, np.full(us.shape, math.sqrt(float(np.mean(sigma**2))))


def _logit(acc: Any) -> np.ndarray:
    from scale_transfer.odds import logit

    return logit(acc)


def _to_space(post: Posterior, acc: np.ndarray) -> np.ndarray:
    """Accuracy in the likelihood's space: ``logit`` for the odds law, as is otherwise."""
    return _logit(acc) if post.law == "odds" else np.asarray(acc, dtype=float)


def _from_space(post: Posterior, y: np.ndarray) -> np.ndarray:
    if post.law == "odds":
        from scipy.special import expit

        return expit(y)
    return np.clip(y, 0.0, 1.0)


def residuals(post: Posterior, max_draws: int = RESIDUAL_DRAWS) -> pd.DataFrame:
    """Standardized posterior-mean residuals of the fitted points, one column per group.

    Rows are the data's models (its ``model`` column), columns the group labels; NaN where a
    model has no point in a group. See the module docstring for the space and the scale.
    """
    _supported(post)
    data = post.data[post.data["used"]] if "used" in post.data else post.data
    if "model" not in data:
        raise ValueError("conditional prediction needs the fitted data's 'model' column")
    cols = {}
    for g, (setting, task) in enumerate(
        zip(post.groups["setting"], post.groups["task"], strict=True)
    ):
        rows = data[(data["setting"] == setting) & (data["task"] == task)]
        rows = rows.drop_duplicates("model", keep=False)  # a model twice in a group: unmatched
        mean, sd = _point_parts(post, g, rows["us_acc"].to_numpy(float), max_draws)
        z = (_to_space(post, rows["ds_acc"].to_numpy(float)) - mean) / sd
        cols[post.group_labels[g]] = pd.Series(z, index=rows["model"].astype(str).to_numpy())
    return pd.DataFrame(cols)


def residual_correlation(
    post: Posterior,
    prior_sd: float = PRIOR_SD,
    min_shared: int = MIN_SHARED,
) -> pd.DataFrame:
    """Correlation matrix of the standardized residuals across groups, shrunk toward 0.

    Pairwise-complete Pearson correlations of :func:`residuals`, each shrunk toward 0 on
    Fisher's scale by a normal prior with sd ``prior_sd`` (0 below ``min_shared`` shared
    models), then made
    positive definite (see the module docstring). The result's ``attrs`` hold ``raw`` (the
    unshrunk correlations) and ``shared`` (the number of shared models), both as DataFrames.
    A fit's matrix is computed once and kept on the fit (``post._residual_correlation``).
    """
    cached = getattr(post, "_residual_correlation", None)
    if cached is not None and cached.attrs.get("key") == (prior_sd, min_shared):
        return cached
    z = residuals(post)
    r, raw, shared = _shrink(z, prior_sd, min_shared)
    labels = list(z.columns)
    out = pd.DataFrame(r, index=labels, columns=labels)
    out.attrs["raw"] = pd.DataFrame(raw, index=labels, columns=labels)
    out.attrs["shared"] = pd.DataFrame(shared.astype(int), index=labels, columns=labels)
    out.attrs["key"] = (prior_sd, min_shared)
    post._residual_correlation = out
    return out


def shrunk_correlation(
    z: pd.DataFrame, prior_sd: float = PRIOR_SD, min_shared: int = MIN_SHARED
) -> np.ndarray:
    """Pairwise-complete correlation of the columns of ``z``, shrunk and made positive definite.

    Rows are models, columns groups (NaN where a model has no value); see
    :func:`residual_correlation` for the shrinkage.
    """
    return _shrink(z, prior_sd, min_shared)[0]


def _shrink(
    z: pd.DataFrame, prior_sd: float, min_shared: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shrunk positive-definite correlation, raw correlation and shared counts of ``z``."""
    present = z.notna().to_numpy(float)
    shared = present.T @ present
    raw = z.corr(method="pearson", min_periods=max(min_shared, 2)).to_numpy(float)
    raw = np.nan_to_num(raw, nan=0.0)
    n = np.maximum(shared - 3.0, 0.0)
    weight = np.where(shared >= max(min_shared, 4), n / (n + prior_sd**-2), 0.0)
    r = np.tanh(np.arctanh(np.clip(raw, -0.999999, 0.999999)) * weight)
    np.fill_diagonal(r, 1.0)
    return _positive_definite(r), raw, shared


def _positive_definite(r: np.ndarray) -> np.ndarray:
    """Raise eigenvalues below :data:`MIN_EIGENVALUE` to it; diagonal back to 1."""
    vals, vecs = np.linalg.eigh((r + r.T) / 2)
    if vals.min() >= MIN_EIGENVALUE:
        return r
    fixed = (vecs * np.maximum(vals, MIN_EIGENVALUE)) @ vecs.T
    d = np.sqrt(np.diag(fixed))
    return fixed / d[:, None] / d[None, :]


# ----------------------------------------------------------------- the given values
def _group_index(post: Posterior, name: str) -> int:
    """Position of a group named by its label or, where unambiguous, its task."""
    labels = post.group_labels
    if name in labels:
        return labels.index(name)
    tasks = [str(t) for t in post.groups["task"]]
    hits = [i for i, t in enumerate(tasks) if t == name]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise ValueError(
            f"given: task {name!r} is fitted in several settings; name it as one of "
            f"{', '.join(labels[i] for i in hits)}"
        )
    raise ValueError(f"given: this fit has no task {name!r} (its tasks: {', '.join(labels)})")


def resolve_given(post: Posterior, given: Mapping[str, Any], n_new: int) -> np.ndarray:
    """Return the given accuracies as ``(n_groups, n_new)``, NaN where not given.

    ``given`` maps a task (or ``setting/task`` label) to one accuracy, used for every new
    model, or to one per new model (NaN or None: not measured for that model).
    """
    if not isinstance(given, Mapping) or not given:
        raise ValueError("given must map at least one task to its measured accuracy")
    out = np.full((len(post.groups), n_new), np.nan)
    seen: dict[int, str] = {}
    for name, value in given.items():
        g = _group_index(post, str(name))
        if g in seen:
            raise ValueError(f"given: {name!r} and {seen[g]!r} name the same task")
        seen[g] = str(name)
        arr = np.asarray(
            [np.nan if v is None else v for v in np.atleast_1d(np.asarray(value, dtype=object))],
            dtype=float,
        )
        if np.ndim(value) == 0:
            if not np.isfinite(arr).all():
                raise ValueError(f"given: {name} must be an accuracy in [0, 1]; got {value!r}")
            arr = np.repeat(arr, n_new)
        if arr.ndim != 1 or len(arr) != n_new:
            raise ValueError(
                f"given: {name} has {arr.size} values for {n_new} new model(s) (us_acc); "
                "give one, or one per us_acc"
            )
        ok = np.isnan(arr) | ((arr >= 0) & (arr <= 1))
        if not ok.all():
            hint = " (accuracies are fractions: 85% is 0.85)" if (arr[~ok] <= 100).all() else ""
            raise ValueError(
                f"given: {name} must be an accuracy in [0, 1]; got {arr[~ok].tolist()}{hint}"
            )
        out[g] = arr
    return out


# ---------------------------------------------------------------- the predictive
def _marginal(post: Posterior, us: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draws ``(n_draws, n_groups, n_new)`` of the new-model predictive's mean, sd and scatter.

    In the likelihood's space; ``us`` is ``(n_new,)``, or ``(n_groups, n_new)`` for a US
    accuracy per group (timm's ImageNet-R and -A have their own). ``scatter`` is the part
    of the sd that is the model's own scatter (correlated across tasks); the rest, the drift
    layer's uncertainty about the curve beyond the data, is each task's own.
    """
    if us.ndim == 2:
        parts = [_marginal(post, u) for u in us]  # every group at group i's US accuracies
        return tuple(  # type: ignore[return-value]
            np.stack([p[k][:, i] for i, p in enumerate(parts)], axis=1) for k in range(3)
        )
    if post.law == "odds":
        from scale_transfer.extrapolation import apply_drift

        mu, sd, x = post._odds_parts(us)
        if post.drift is not None:
            return apply_drift(post.drift, post.group_labels, x, mu, sd, scatter=True)
        return mu, sd, sd
    mu = post.predict_draws(us, "curve")
    sigma = np.broadcast_to(post.draws("sigma")[..., None], mu.shape)
    return mu, sigma, sigma


def conditional_draws(
    post: Posterior,
    us_acc: Any,
    given: Mapping[str, Any] | np.ndarray,
    seed: int = 0,
    corr: pd.DataFrame | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draws of the new models' DS accuracy given their accuracy on some tasks.

    Parameters
    ----------
    post : Posterior
        A fit of the odds law, or of the paper's law with a Gaussian likelihood.
    us_acc : array_like
        The new models' US accuracies, ``(n_new,)``; or ``(n_groups, n_new)`` where each
        group has its own US accuracy for a model.
    given : mapping or numpy.ndarray
        ``{task: accuracy or one per new model}`` (:func:`resolve_given`), or its result.
    seed : int
        Seed of the draws.
    corr : pandas.DataFrame or numpy.ndarray, optional
        The correlation of the scatter across groups (the drift layer's uncertainty then
        each task's own). Default: for a new model beyond any group's data, a fit with a
        drift layer correlates the whole predictive sd by its leave-future-out correlation
        (:func:`~scale_transfer.extrapolation.band_correlation`); otherwise the scatter is
        correlated by
        :func:`residual_correlation`.

    Returns
    -------
    (draws, mask)
        ``draws`` ``(n_draws, n_groups, n_new)`` in accuracy (given entries hold the given
        value), ``mask`` ``(n_groups, n_new)`` True where the value was given.
    """
    _supported(post)
    us = np.asarray(us_acc, dtype=float)
    if us.ndim == 2:
        if us.shape[0] != len(post.groups):
            raise ValueError(f"us_acc per group needs {len(post.groups)} rows; got {us.shape}")
        accuracies(us.reshape(-1), "us_acc")
    else:
        us = accuracies(us, "us_acc")
    n_new = us.shape[-1]
    values = given if isinstance(given, np.ndarray) else resolve_given(post, given, n_new)
    mask = np.isfinite(values)
    # beyond the data (of any group) a fit with a drift layer correlates the whole predictive
    # sd as its leave-future-out band did; inside, the scatter as the fitted points do
    band = None
    if corr is None and post.drift is not None:
        from scale_transfer.extrapolation import drift_correlation

        band = drift_correlation(post.drift)  # None for a fit saved before the layer had it
    far = _beyond(post, us) if band is not None else np.zeros(n_new, dtype=bool)
    near = None
    if not far.all():
        corr = residual_correlation(post) if corr is None else corr
        near = corr.to_numpy(float) if isinstance(corr, pd.DataFrame) else np.asarray(corr, float)
    loc, scale, scatter = _marginal(post, us)
    y = _to_space(post, np.where(mask, values, 0.5))
    rng = np.random.default_rng(seed)
    eps = rng.standard_normal(loc.shape)
    out = np.empty(loc.shape)
    # one batch of solves per pattern of given groups (usually one for every new model)
    patterns = {(tuple(col), bool(f)) for col, f in zip(mask.T, far, strict=True)}
    for pattern, beyond in patterns:
        cols = np.flatnonzero((mask.T == np.array(pattern)).all(axis=1) & (far == beyond))
        gi = np.flatnonzero(pattern)
        bi = np.flatnonzero(~np.array(pattern))
        r, shared = (band, scale) if beyond else (near, scatter)
        m_b, s_b = loc[:, bi][:, :, cols], scale[:, bi][:, :, cols]
        if len(gi):
            # in chunks of new models: the covariance is (draws, models, groups, groups)
            step = max(1, int(2e7 // (loc.shape[0] * len(r) ** 2)))
            parts = [
                _condition(
                    [a[:, :, c].transpose(0, 2, 1) for a in (loc, scale, shared)],
                    y[:, c].T,
                    r,
                    gi,
                    bi,
                )
                for c in (cols[i : i + step] for i in range(0, len(cols), step))
            ]
            m_b = np.concatenate([p[0] for p in parts], axis=2)
            s_b = np.concatenate([p[1] for p in parts], axis=2)
        draw = _from_space(post, m_b + s_b * eps[:, bi][:, :, cols])
        out[:, bi[:, None], cols[None, :]] = draw
        out[:, gi[:, None], cols[None, :]] = values[gi][:, cols][None]
    return out, mask


def _beyond(post: Posterior, us: np.ndarray) -> np.ndarray:
    """Return per new model whether it is beyond any group's fitted data (``x_max``)."""
    from scale_transfer.odds import logit

    x = np.broadcast_to(logit(us), (len(post.groups), us.shape[-1]))
    x_max = post.drift["x_max"].to_numpy(float)  # rows in group order
    return (x >= x_max[:, None]).any(axis=0)


def _condition(
    parts: list[np.ndarray], y: np.ndarray, r: np.ndarray, gi: np.ndarray, bi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian conditional of the groups ``bi`` given the values ``y`` of the groups ``gi``.

    ``parts`` are the mean, sd and scatter sd, each ``(n_draws, n_new, n_groups)``; ``y`` is
    ``(n_new, n_groups)``. The covariance across groups is ``S R S + D``: the scatter ``S``
    correlated by ``r``, the rest ``D = sd^2 - S^2`` independent. Returns the conditional
    mean and sd of ``bi``, ``(n_draws, len(bi), n_new)``.
    """
    loc, sd, sc = parts
    cov = sc[..., :, None] * r[None, None] * sc[..., None, :]
    own = np.maximum(sd**2 - sc**2, 0.0)
    cov = cov + own[..., :, None] * np.eye(r.shape[0])[None, None]
    c_gg, c_gb = cov[..., gi[:, None], gi[None, :]], cov[..., gi[:, None], bi[None, :]]
    w = np.linalg.solve(c_gg, c_gb)  # C_GG^-1 C_GB: (draws, new, G, B)
    resid = y[None, :, gi] - loc[..., gi]
    mean = loc[..., bi] + np.einsum("sngb,sng->snb", w, resid)
    var = cov[..., bi, bi] - np.einsum("sngb,sngb->snb", w, c_gb)
    return mean.transpose(0, 2, 1), np.sqrt(np.maximum(var, 1e-12)).transpose(0, 2, 1)


def predict(
    post: Posterior,
    us_acc: Any,
    given: Mapping[str, Any],
    prob: float = 0.9,
    interval_kind: str = "eti",
    seed: int = 0,
) -> pd.DataFrame:
    """Predict new models' other tasks given their accuracy on some (see module docstring).

    Returns
    -------
    pandas.DataFrame
        One row per new model and task not given for it: columns ``task, setting, us_acc,
        mean, lower, upper, prob, interval, kind`` (``kind="conditional"``) and ``given``
        (what was given, e.g. ``"sketch=0.41"``).
    """
    us = accuracies(us_acc, "us_acc")
    values = resolve_given(post, given, len(us))
    draws, mask = conditional_draws(post, us, values, seed=seed)
    lo, hi = interval(draws, prob, interval_kind)
    labels = post.group_labels
    said = [
        ", ".join(f"{labels[g]}={values[g, n]:g}" for g in np.flatnonzero(mask[:, n]))
        for n in range(len(us))
    ]
    rows = []
    for n in range(len(us)):
        for g in np.flatnonzero(~mask[:, n]):
            rows.append(
                {
                    "task": post.groups["task"].iloc[g],
                    "setting": post.groups["setting"].iloc[g],
                    "us_acc": us[n],
                    "mean": float(draws[:, g, n].mean()),
                    "lower": float(lo[g, n]),
                    "upper": float(hi[g, n]),
                    "prob": prob,
                    "interval": interval_kind,
                    "kind": KIND,
                    "given": said[n],
                }
            )
    cols = ["task", "setting", "us_acc", "mean", "lower", "upper", "prob", "interval", "kind"]
    return pd.DataFrame(rows, columns=cols + ["given"])


# -------------------------------------------------------------- command-line input
def parse_given(items: Sequence[str], n_new: int | None = None) -> dict[str, list[float]]:
    """Parse ``TASK=ACC`` items (``--given``); ``ACC`` may be a comma list, one per --us-acc."""
    out: dict[str, list[float]] = {}
    for item in items:
        name, eq, value = item.partition("=")
        name = name.strip()
        if not eq or not name or not value.strip():
            raise ValueError(f"--given takes TASK=ACC, e.g. --given sketch=0.41; got {item!r}")
        try:
            vals = [float(v) for v in value.split(",")]
        except ValueError:
            raise ValueError(f"--given {item}: {value!r} is not an accuracy") from None
        if name in out:
            raise ValueError(f"--given: task {name!r} given twice")
        if n_new is not None and len(vals) not in (1, n_new):
            raise ValueError(
                f"--given {item}: {len(vals)} values for {n_new} --us-acc; give one, or one per "
                "--us-acc"
            )
        out[name] = vals if len(vals) > 1 else vals[:1] * (n_new or 1)
    return out


def read_given_csv(path: str | Path) -> tuple[list[float], dict[str, list[float]]]:
    """Read a CSV of new models: column ``us_acc`` and one column per given task.

    One row per new model; an empty cell means the model was not measured on that task.
    Returns the US accuracies and the ``given`` mapping.
    """
    from scale_transfer.data import DataError, name_rows, read_file

    path = Path(path)
    df = read_file(path)  # names the file when it is missing, empty or unreadable
    if "us_acc" not in df.columns:
        raise DataError(f"{path}: no column 'us_acc' (columns: {', '.join(map(str, df.columns))})")
    tasks = [c for c in df.columns if c != "us_acc"]
    if not tasks:
        raise DataError(f"{path}: no column of a given task beside 'us_acc'")
    given: dict[str, list[float]] = {}
    for col in ["us_acc", *tasks]:
        vals = pd.to_numeric(df[col], errors="coerce")
        bad = ~vals.between(0.0, 1.0)
        if col != "us_acc":
            bad &= df[col].notna()  # an empty cell: not measured
        if bad.any():
            rows = np.flatnonzero(bad.to_numpy())
            examples = ", ".join(repr(v) for v in df[col].iloc[rows[:3]])
            where = name_rows(rows, path=path, n_rows=len(df))
            raise DataError(
                f"{path}: column {col!r} is not an accuracy in [0, 1] at {where} (e.g. {examples})"
            )
        if col != "us_acc":
            given[str(col)] = vals.tolist()
    return pd.to_numeric(df["us_acc"]).tolist(), given


def given_options(
    us_acc: list[float] | None,
    given: list[str] | None,
    given_csv: str | Path | None,
    kind: str,
    *,
    hull_models: bool = False,
) -> tuple[list[float], dict[str, list[float]] | None]:
    """Check ``predict``'s --us-acc, --given and --given-csv; return US accuracies and given.

    ``given`` is None when neither --given nor --given-csv is used; ``hull_models``: the
    new models of ``--kind hull`` (--models-us-acc, --models-csv) were given.
    """
    if given_csv is not None:
        if us_acc or given:
            raise ValueError("--given-csv gives the new models: no --us-acc or --given with it")
        us, cond = read_given_csv(given_csv)
    else:
        if not us_acc:
            raise ValueError("predict needs --us-acc (or --given-csv, whose column us_acc)")
        us, cond = list(us_acc), (parse_given(given, len(us_acc)) if given else None)
    if cond is not None and (kind == "hull" or hull_models):
        raise ValueError(
            "--given and --given-csv predict new models: not with --kind hull, "
            "--models-us-acc or --models-csv"
        )
    return us, cond
