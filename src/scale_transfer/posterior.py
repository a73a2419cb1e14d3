"""A fitted model: diagnostics, summaries, predictions, save and load.

Intervals are equal-tailed (``"eti"``, the default: quantiles at ``(1-prob)/2`` and
``(1+prob)/2``) or highest-density (``"hdi"``); every table says which, with its probability.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike

from scale_transfer.config import (
    E_MIN,
    PACKAGE_DIR,
    ModelConfig,
    SamplerConfig,
)
from scale_transfer.convergence import Diagnostics, check_convergence
from scale_transfer.fitfile import FitFileInfo, ModelMismatchError, read_fit, write_fit
from scale_transfer.intervals import accuracies, interval
from scale_transfer.law import ds_acc

__all__ = ["NEW_TASK", "ModelMismatchError", "Posterior", "interval"]


@contextmanager
def unseen_levels_expected() -> Iterator[None]:
    """Silence the warning about effect levels a fit has not seen.

    For the package's own scoring of data rows (held-out models, a refit's band), where a
    level missing from the fitted part is expected and gets a new effect, as for a new model.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "effects: .* not among the fitted levels")
        yield


#: Label of the population-level (unseen task) row in summaries.
NEW_TASK = "(new task)"


#: Per-group quantities that :meth:`Posterior.summary` reports.
SUMMARY_VARS = ("asymptote", "e_ir", "k", "alpha")


class Posterior:
    """A fitted power-law model.

    Holds the DataTree (``posterior``, ``sample_stats``, ``fit_data``), the model and
    sampler config, the groups (tasks, or setting/task pairs) and the diagnostics.
    """

    def __init__(
        self,
        dt: xr.DataTree,
        config: ModelConfig,
        sampler: SamplerConfig,
        groups: pd.DataFrame,
        data: pd.DataFrame,
        diagnostics: Diagnostics,
        data_hash: str,
    ) -> None:
        self.dt = dt
        self.config = config
        self.sampler = sampler
        self.groups = groups
        self.data = data
        self.diagnostics = diagnostics
        self.data_hash = data_hash
        #: Where a loaded fit came from (path, version, checksum); None for a new fit.
        self.file_info: FitFileInfo | None = None
        #: The drift layer learned by leave-future-out (``extrapolation="lfo"``): one row per
        #: group (:func:`scale_transfer.extrapolation.drift_layer`); None without one.
        self.drift: pd.DataFrame | None = None
        #: The extrapolation self-check (:func:`scale_transfer.selfcheck.check`): scores of
        #: the fit without each group's top band on that band; None when not computed.
        self.self_check: pd.DataFrame | None = None
        #: The convergence of the refits behind :attr:`drift` and :attr:`self_check`
        #: (:func:`scale_transfer.extrapolation.refit_diagnostics`): one row per refit; None
        #: without them (and in fits saved before they were kept).
        self.refits: pd.DataFrame | None = None
        #: The frontier fit (``fit(..., frontier=True)``): the best models' curve fitted to
        #: the same data, whose asymptotes :meth:`summary` reports by default; None without.
        self.frontier: Posterior | None = None

    # ------------------------------------------------------------------ draws
    def draws(self, name: str) -> np.ndarray:
        """Return the draws of a per-group variable as ``(n_draws, n_groups)``."""
        if name not in self.dt["posterior"]:
            have = ", ".join(sorted(map(str, self.dt["posterior"].data_vars)))
            raise KeyError(f"this fit has no variable {name!r}; it has: {have}")
        da = self.dt["posterior"][name]
        da = da.stack(sample=("chain", "draw")).transpose("sample", ...)
        return np.asarray(da.values, dtype=float)

    @property
    def group_labels(self) -> list[str]:
        """Return the group labels (task names, or ``setting/task``)."""
        return [str(g) for g in self.dt["posterior"]["k"].coords["group"].values]

    def _population_draws(self, name: str, rng: np.random.Generator) -> np.ndarray | None:
        """Draws of an unseen task's parameter (per setting when the setting level is on)."""
        post = self.dt["posterior"]
        if self.config.pooling == "complete":
            return self.draws(f"{name}_group")[:, :1]
        if self.config.pooling == "independent":
            return None
        mu = self.draws(f"{name}_mu").reshape(-1)
        sigma = self.draws(f"{name}_sigma").reshape(-1)
        new = mu + sigma * rng.standard_normal(mu.shape)
        if f"{name}_setting" in post:
            off = self.draws(f"{name}_setting")
            si = self.draws(f"{name}_interaction_sigma").reshape(-1)
            return new[:, None] + off + si[:, None] * rng.standard_normal(off.shape)
        return new[:, None]

    # ---------------------------------------------------------------- summary
    def summary(
        self,
        prob: float = 0.9,
        kind: str = "eti",
        var: str = "asymptote",
        seed: int = 0,
        *,
        interval_kind: str | None = None,
        estimand: str = "auto",
    ) -> pd.DataFrame:
        """Posterior summary of a per-group quantity, with an unseen task's row.

        Parameters
        ----------
        prob : float
            Interval probability.
        kind : {"eti", "hdi"}
            Interval kind.
        var : str
            ``"asymptote"`` (default), ``"e_ir"``, ``"k"`` or ``"alpha"``.
        seed : int
            Seed for the unseen-task draws.
        interval_kind : {"eti", "hdi"}, optional
            The same as ``kind``, under the name :meth:`predict` uses for it.
        estimand : {"auto", "frontier", "own"}
            Whose law: ``"own"`` this fit's; ``"frontier"`` the best models' (the
            :attr:`frontier` fit's where this fit is a typical model's; an error where it
            has none); ``"auto"`` (default) the frontier fit's where there is one, else own.

        Returns
        -------
        pandas.DataFrame
            Columns ``task, setting, mean, median, sd, lower, upper, prob, interval``,
            ``n`` (points fitted) and ``estimand`` (``"frontier"`` or ``"typical model"``:
            whose law the row describes); with partial or complete pooling the last row
            (``task == "(new task)"``) is the population-level prediction for an unseen
            task (one per setting with the setting level); independent fits have none.
        """
        if var not in SUMMARY_VARS:
            raise ValueError(f"var must be one of {', '.join(SUMMARY_VARS)}; got {var!r}")
        fit = self.estimand_fit(estimand)
        if fit is not self:
            return fit.summary(prob, kind, var, seed, interval_kind=interval_kind, estimand="own")
        if interval_kind is not None:
            if kind != "eti" and kind != interval_kind:
                raise ValueError(f"kind={kind!r} and interval_kind={interval_kind!r} disagree")
            kind = interval_kind
        x = self.draws(var)
        lo, hi = interval(x, prob, kind)
        out = pd.DataFrame(
            {
                "task": self.groups["task"].to_numpy(),
                "setting": self.groups["setting"].to_numpy(),
                "mean": x.mean(0),
                "median": np.median(x, 0),
                "sd": x.std(0),
                "lower": lo,
                "upper": hi,
                "prob": prob,
                "interval": kind,
                "n": self.groups["n"].to_numpy(),
            }
        )
        if var in ("asymptote", "e_ir", "alpha"):
            rng = np.random.default_rng(seed)
            base = "log_alpha" if var == "alpha" else "logit_e_ir"
            # the odds law samples its asymptote and exponent through a task's own curve
            # (headroom above it, its rise): an unseen task has no population row
            pop = None if self.law == "odds" else self._population_draws(base, rng)
            if pop is not None:
                if var == "alpha":
                    val = np.exp(pop)
                else:
                    e_ir = 1.0 / (1.0 + np.exp(-pop))
                    val = 1.0 - e_ir if var == "asymptote" else e_ir
                # one population per setting (the setting level), or one for the tasks of
                # every setting, which is no one setting's
                settings = list(pd.unique(self.groups["setting"]))
                if val.shape[1] == 1 and len(settings) > 1:
                    settings = ["(all settings)"]
                plo, phi = interval(val, prob, kind)
                rows = pd.DataFrame(
                    {
                        "task": NEW_TASK,
                        "setting": settings[: val.shape[1]],
                        "mean": val.mean(0),
                        "median": np.median(val, 0),
                        "sd": val.std(0),
                        "lower": plo,
                        "upper": phi,
                        "prob": prob,
                        "interval": kind,
                        "n": 0,
                    }
                )
                out = pd.concat([out, rows], ignore_index=True)
        out["estimand"] = self.config.estimand
        return out

    def estimand_fit(self, estimand: str = "auto") -> Posterior:
        """Return the fit whose law :meth:`summary` reports for ``estimand`` (see there)."""
        if estimand == "own" or (estimand == "auto" and self.frontier is None):
            return self
        if estimand not in ("auto", "frontier"):
            raise ValueError(f"estimand must be 'auto', 'frontier' or 'own'; got {estimand!r}")
        if self.frontier is not None:
            return self.frontier
        if self.config.estimand == "frontier":
            return self
        raise ValueError(
            "this fit estimates a typical model's curve and carries no frontier fit: fit "
            "with frontier=True (the command line's default), or ask for estimand='own'"
        )

    # ---------------------------------------------------------------- predict
    def predict_draws(
        self,
        us_acc: np.ndarray,
        kind: str = "curve",
        seed: int = 0,
        effects: Mapping[str, Any] | None = None,
    ) -> np.ndarray:
        """Draws of DS accuracy at ``us_acc`` for every group: ``(n_draws, n_groups, n_us)``.

        ``kind="curve"`` gives the law's value (the frontier, for the frontier likelihood);
        ``kind="new-model"`` adds the model-level scatter of the likelihood, i.e. the DS
        accuracy of a new model at that US accuracy (clipped to [0, 1]).

        For the odds law (``ModelConfig(law="odds")``) the scatter is Gaussian in
        ``logit(acc_ds)``; with a drift layer (:attr:`drift`, ``extrapolation="lfo"``) the
        new-model draws at and beyond a group's largest fitted US accuracy carry it
        (:func:`scale_transfer.extrapolation.apply_drift`); the curve never does.

        ``effects`` (fits with ``ModelConfig.effects`` only) gives the new models' level of
        each effect column, one value or one per ``us_acc``, e.g. ``{"family": "vit"}``.
        A level the fit has not seen, or a column not given, gets a new effect drawn from
        its population for ``kind="new-model"`` and effect 0 (the population curve) for
        ``kind="curve"``.
        """
        us = np.atleast_1d(np.asarray(us_acc, dtype=float))
        if us.ndim != 1:
            raise ValueError(f"us_acc must be one number or a 1-D list; got shape {us.shape}")
        unknown = sorted(set(effects or {}) - set(getattr(self.config, "effects", ())))
        if unknown:
            have = ", ".join(getattr(self.config, "effects", ())) or "none"
            raise ValueError(
                f"effects: this fit has no effect column(s) {', '.join(map(repr, unknown))} "
                f"(its effect columns: {have})"
            )
        if self.law == "odds":
            return self._odds_draws(us, kind, seed, effects)
        k, alpha, e_ir = self.draws("k"), self.draws("alpha"), self.draws("e_ir")
        if getattr(self.config, "effects", ()):
            acc = self._effect_acc(us, kind, effects or {}, np.random.default_rng([seed, 1]))
        else:
            acc = ds_acc(us[None, None, :], k[..., None], alpha[..., None], e_ir[..., None])
        if getattr(self.config, "discrepancy", False):
            from scale_transfer.model import discrepancy_basis

            phi = discrepancy_basis(np.log(np.clip(1.0 - us, E_MIN, 1.0)))  # (us, basis)
            acc = acc - np.einsum("sgb,ub->sgu", self.draws("discrepancy_coef"), phi)
        if kind == "curve":
            return acc
        if kind != "new-model":
            raise ValueError(f"kind must be 'curve' or 'new-model'; got {kind!r}")
        rng = np.random.default_rng(seed)
        sigma = self.draws("sigma")[..., None]
        shape = acc.shape
        lik = self.config.likelihood
        if lik == "gaussian":
            noise = sigma * rng.standard_normal(shape)
        elif lik == "student_t":
            nu = self.draws("nu").reshape(-1, 1, 1)
            noise = sigma * rng.standard_t(np.broadcast_to(nu, shape))
        else:
            from scale_transfer.likelihoods import FRONTIER_MAX_SHARE, frontier_gap_draws

            nu = self._gap_mean(acc)
            w = FRONTIER_MAX_SHARE * self.draws("gap_shape")[..., None]
            bad, nu_bad = self._bad_part()
            nu_bad = nu + nu_bad
            noise = sigma * rng.standard_normal(shape)
            noise = noise + frontier_gap_draws(rng, nu, w, bad, nu_bad, shape)
        # noise is on downstream *error*: accuracy moves the other way
        return np.clip(acc - noise, 0.0, 1.0)

    @property
    def law(self) -> str:
        """Return the fitted law: ``"error"`` (the paper's) or ``"odds"``."""
        return getattr(self.config, "law", "error")

    def _odds_parts(
        self,
        us: np.ndarray,
        effects: Mapping[str, Any] | None = None,
        kind: str = "curve",
        rng: np.random.Generator | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the odds law's draws at ``us``, and ``x = logit(us)``.

        Draws ``(n_draws, n_groups, n_us)`` of the mean and scatter sd of ``logit(acc_ds)``.
        A fit with model-attribute effects adds those of ``effects`` (the models' levels, as
        :meth:`predict_draws` takes them; see :meth:`_effect_terms` for levels not given).
        """
        from scale_transfer.model import ODDS_EFFECT_PARTS
        from scale_transfer.odds import logit, logit_mean, scatter_sd

        x = logit(us)
        xc = x[None, None, :] - self.groups["logit_us_ref"].to_numpy(float)[None, :, None]
        level = self.draws("odds_level_group")[..., None]
        alpha = self.draws("alpha")[..., None]
        log_sd = self.draws("log_scatter_group")[..., None]
        if getattr(self.config, "effects", ()):
            rng = np.random.default_rng(1) if rng is None else rng
            terms = self._effect_terms(us, kind, effects or {}, rng, ODDS_EFFECT_PARTS)
            level = level + terms["odds_level"]
            alpha = alpha * np.exp(terms["log_alpha"])
            log_sd = log_sd + terms["log_scatter"]
        mu = logit_mean(level, alpha, self.draws("logit_asymptote_group")[..., None], xc)
        sd = scatter_sd(log_sd, self.draws("scatter_slope_group")[..., None], xc)
        return mu, sd, x

    def _odds_draws(
        self, us: np.ndarray, kind: str, seed: int, effects: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        """:meth:`predict_draws` for the odds law."""
        from scipy.special import expit

        from scale_transfer.extrapolation import apply_drift

        if kind not in ("curve", "new-model"):
            raise ValueError(f"kind must be 'curve' or 'new-model'; got {kind!r}")
        mu, sd, x = self._odds_parts(us, effects, kind, np.random.default_rng([seed, 1]))
        if kind == "curve":
            return expit(mu)
        loc, scale = mu, sd
        if self.drift is not None:
            rng = np.random.default_rng([seed, 2])  # each group's drift rate per draw
            loc, scale = apply_drift(self.drift, self.group_labels, x, mu, sd, rng=rng)
        z = loc + scale * np.random.default_rng(seed).standard_normal(mu.shape)
        return expit(z)

    def _gap_mean(self, acc: np.ndarray) -> np.ndarray:
        """Mean gap of a good model below the frontier accuracy ``acc`` (frontier fits)."""
        from scale_transfer.likelihoods import frontier_gap_mean

        return frontier_gap_mean(
            self.draws("gap")[..., None],
            self.draws("gap_power")[..., None],
            self.draws("log_level_group")[..., None],
            self.draws("e_ir")[..., None],
            np.maximum(1.0 - acc, E_MIN),
        )

    def expected_gap(self, us_acc: ArrayLike) -> np.ndarray:
        """Draws of the mean gap of a new model below the frontier: ``(draws, groups, us)``.

        Frontier fits only: the good models' mean gap at that US accuracy plus the failed
        models' share times their extra gap. The mean DS accuracy of a new model is the
        frontier minus this.
        """
        if self.config.likelihood != "frontier":
            raise ValueError("expected_gap needs a fit with likelihood='frontier'")
        acc = self.predict_draws(accuracies(us_acc, "us_acc"), "curve")
        bad, bad_gap = self._bad_part()
        return self._gap_mean(acc) + bad * bad_gap

    def _bad_part(self) -> tuple[np.ndarray, np.ndarray]:
        """Draws of the failed models' share and extra gap, ``(draws, 1, 1)`` each.

        Zero for a ``target="top"`` fit: it keeps only the best of each bin of US accuracy,
        so it learns the gap of well-tuned models and nothing of failed ones; its new-model
        predictive is that of a well-tuned model.
        """
        if self.config.target == "top":
            zero = np.zeros((1, 1, 1))
            return zero, zero
        bad = self.draws("bad_share").reshape(-1, 1, 1)
        return bad, self.draws("bad_gap").reshape(-1, 1, 1)

    def _effect_terms(
        self,
        us: np.ndarray,
        kind: str,
        effects: Mapping[str, Any],
        rng: np.random.Generator,
        parts: tuple[str, ...],
    ) -> dict[str, np.ndarray]:
        """Sum of the model-attribute effects on each of ``parts``: ``(n_draws, n_groups, n_us)``.

        ``effects`` gives the models' level of each effect column (one value or one per
        ``us``). A level the fit has not seen, or a column not given, gets a new effect drawn
        from its population for ``kind="new-model"`` and effect 0 for ``kind="curve"``. A part
        a column does not shift (no ``effect_{column}_{part}`` in the posterior) gets 0.
        """
        shape = (self.draws("alpha").shape[0], len(self.groups), len(us))
        out = {part: np.zeros(shape) for part in parts}
        for col in self.config.effects:
            levels = [str(v) for v in self.dt["posterior"].coords[f"effect_{col}_level"].values]
            index = {v: i for i, v in enumerate(levels)}
            idx = np.full(us.shape, -1)
            if effects.get(col) is not None:
                vals = np.broadcast_to(np.asarray(effects[col], dtype=object), us.shape)
                idx = np.array([index.get(str(v), -1) for v in vals])
                unseen = sorted({str(v) for v in vals if str(v) not in index})
                if unseen:
                    # documented (a new kind of model), but a typo reads the same: say so
                    what = "the population curve" if kind == "curve" else "a level drawn anew"
                    warnings.warn(
                        f"effects: {col} level(s) {', '.join(map(repr, unseen))} not among the "
                        f"fitted levels ({', '.join(map(repr, levels))}); {what} is used for them",
                        UserWarning,
                        skip_file_prefixes=(PACKAGE_DIR,),
                    )
            for part in parts:
                if f"effect_{col}_{part}" not in self.dt["posterior"]:
                    continue  # a part this column does not shift (model.ODDS_EFFECT_BINARY_ONLY)
                eff = self.draws(f"effect_{col}_{part}")  # (draws, level, group)
                term = np.moveaxis(eff[:, np.maximum(idx, 0), :], 1, 2)  # (draws, group, us)
                new = idx < 0
                if new.any() and f"effect_{col}_{part}_sigma" in self.dt["posterior"]:
                    sd = self.draws(f"effect_{col}_{part}_sigma")[..., None]
                    fresh = sd * rng.standard_normal(term.shape) if kind == "new-model" else 0.0
                    term = np.where(new[None, None, :], fresh, term)
                out[part] = out[part] + term
        return out

    def row_effects(self, rows: pd.DataFrame) -> dict[str, np.ndarray] | None:
        """Return the effect columns' levels of ``rows`` (``effects`` of :meth:`predict_draws`).

        None for a fit without effects.
        """
        return {c: rows[c].to_numpy() for c in getattr(self.config, "effects", ())} or None

    def _effect_acc(
        self, us: np.ndarray, kind: str, effects: Mapping[str, Any], rng: np.random.Generator
    ) -> np.ndarray:
        """Law's DS accuracy with model-attribute effects: ``(n_draws, n_groups, n_us)``."""
        lref = self.groups["log_e_ref"].to_numpy(float)
        x = np.log(np.clip(1.0 - us, E_MIN, 1.0))[None, None, :] - lref[None, :, None]
        terms = self._effect_terms(us, kind, effects, rng, ("log_level", "log_alpha"))
        log_level = self.draws("log_level_group")[..., None] + terms["log_level"]
        log_alpha = np.log(self.draws("alpha"))[..., None] + terms["log_alpha"]
        e_ir = self.draws("e_ir")[..., None]
        return 1.0 - (np.exp(log_level + np.exp(log_alpha) * x) + e_ir)

    def predict(
        self,
        us_acc: np.ndarray | list[float],
        prob: float = 0.9,
        kind: str = "curve",
        interval_kind: str = "eti",
        seed: int = 0,
        effects: Mapping[str, Any] | None = None,
        given: Mapping[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Extrapolated DS accuracy at the given US accuracies, with intervals.

        Parameters
        ----------
        us_acc : array_like
            Upstream accuracies, e.g. ``[0.7, 0.8, 0.9, 1.0]``.
        prob : float
            Interval probability.
        kind : {"curve", "new-model"}
            Interval of the law's curve, or predictive interval for a new model.
        interval_kind : {"eti", "hdi"}
            Interval kind.
        seed : int
            Seed for the predictive noise.
        effects : mapping, optional
            Levels of the new models' effect columns (fits with ``ModelConfig.effects``),
            see :meth:`predict_draws`.
        given : mapping, optional
            New models' measured DS accuracy on some tasks, ``{task: acc}`` (or one per
            ``us_acc``): predicts each new model's other tasks conditionally on them
            (:mod:`scale_transfer.conditional`; ``kind`` is then ``"conditional"``, a new
            model's predictive, and a ``given`` column says what was given).

        Returns
        -------
        pandas.DataFrame
            Columns ``task, setting, us_acc, mean, lower, upper, prob, interval, kind``.
        """
        if given is not None:
            from scale_transfer import conditional

            if effects:
                raise ValueError("given and effects cannot be combined")
            return conditional.predict(self, us_acc, given, prob, interval_kind, seed)
        us = accuracies(us_acc, "us_acc")
        x = self.predict_draws(us, kind, seed, effects)
        return self._interval_table(us, x, prob, interval_kind, kind)

    def _interval_table(
        self, us: np.ndarray, x: np.ndarray, prob: float, interval_kind: str, kind: str
    ) -> pd.DataFrame:
        """Tidy table of draws ``x`` ``(n_draws, n_groups, len(us))``: mean and interval."""
        lo, hi = interval(x, prob, interval_kind)
        g = len(self.groups)
        return pd.DataFrame(
            {
                "task": np.repeat(self.groups["task"].to_numpy(), len(us)),
                "setting": np.repeat(self.groups["setting"].to_numpy(), len(us)),
                "us_acc": np.tile(us, g),
                "mean": x.mean(0).reshape(-1),
                "lower": lo.reshape(-1),
                "upper": hi.reshape(-1),
                "prob": prob,
                "interval": interval_kind,
                "kind": kind,
            }
        )

    def hull_draws(
        self,
        models_us_acc: ArrayLike,
        at_us_acc: ArrayLike,
        seed: int = 0,
        max_draws: int = 1000,
        groups: ArrayLike | None = None,
    ) -> np.ndarray:
        """Draws of the upper hull of new models: ``(n_draws, n_groups, n_at)``.

        Posterior predictive of the frontier a *set* of new models will show: for each
        posterior draw, one new model per entry of ``models_us_acc`` (their US accuracies are
        known, their DS accuracies drawn as in ``predict_draws(kind="new-model")``), then the
        height at ``at_us_acc`` of the rising upper hull of those models
        (:func:`scale_transfer.hull.upper_hull`, linear between its vertices, flat beyond its
        ends). The best of 150 models sits lower than the best of 1,500: the hull of a
        group of models depends on how many there are, which a fit to a hull cannot know.
        At most ``max_draws`` posterior draws are used (evenly thinned). ``groups``
        (positions into :attr:`groups`) restricts the hulls to those groups, in that order.
        """
        from scale_transfer.hull import upper_hull

        us = np.asarray(models_us_acc, dtype=float).reshape(-1)
        at = np.atleast_1d(np.asarray(at_us_acc, dtype=float))
        if us.size == 0:
            raise ValueError("models_us_acc is empty")
        accuracies(us, "models_us_acc (--models-us-acc)")
        accuracies(at, "at_us_acc (--us-acc)")
        acc = self.predict_draws(us, kind="new-model", seed=seed)
        step = max(1, int(np.ceil(acc.shape[0] / max_draws)))
        acc = acc[::step]
        if groups is not None:
            acc = acc[:, np.asarray(groups, dtype=int)]
        out = np.empty(acc.shape[:2] + (at.size,))
        for s in range(acc.shape[0]):
            for g in range(acc.shape[1]):
                h = upper_hull(us, acc[s, g])
                out[s, g] = np.interp(at, us[h], acc[s, g, h])
        return out

    def predict_hull(
        self,
        models_us_acc: ArrayLike,
        at_us_acc: ArrayLike,
        prob: float = 0.9,
        interval_kind: str = "eti",
        seed: int = 0,
    ) -> pd.DataFrame:
        """Predictive interval of the upper hull of a set of new models.

        ``models_us_acc``: the US accuracies of the new models (e.g. held-out models whose
        downstream accuracy is to be predicted); ``at_us_acc``: where to read the hull off.
        See :meth:`hull_draws`. Meaningful for fits to *all* points: the frontier
        likelihood models the gap below the frontier that decides how high the best of a
        set of models reaches.

        Returns
        -------
        pandas.DataFrame
            Columns ``task, setting, us_acc, mean, lower, upper, prob, interval, kind``
            (``kind="hull"``).
        """
        if self.config.likelihood != "frontier" or self.config.target != "all":
            warnings.warn(
                f"predict_hull on a {self.config.target}-points {self.config.likelihood} fit: "
                "its new-model draws scatter symmetrically around the curve, so the best of "
                "many new models runs above any frontier (it can reach accuracy 1); fit all "
                "points with likelihood='frontier' for this question",
                UserWarning,
                stacklevel=2,
            )
        at = np.atleast_1d(np.asarray(at_us_acc, dtype=float))
        x = self.hull_draws(models_us_acc, at, seed)
        return self._interval_table(at, x, prob, interval_kind, "hull")

    # ------------------------------------------------------------- save/load
    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the fit to netCDF, atomically; an existing file only with ``overwrite``.

        The draws, the data, the configs, hashes and a checksum of the draws; see
        :func:`scale_transfer.fitfile.write_fit`.
        """
        return write_fit(self, path, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike, config: ModelConfig | None = None) -> Posterior:
        """Load a fit written by :meth:`save`; where it came from is in :attr:`file_info`.

        A fit of another model than ``config`` raises :class:`ModelMismatchError`; a
        damaged, foreign or edited file its subclass
        :class:`~scale_transfer.fitfile.FitFileError`, naming the file and the fault
        (:func:`scale_transfer.fitfile.read_fit`).
        """
        return cls._from_parts(read_fit(path, config))

    @classmethod
    def _from_parts(cls, parts: Any) -> Posterior:
        post = cls(*parts[:7])
        post.file_info = parts.info
        post.drift, post.self_check, post.refits = parts.drift, parts.self_check, parts.refits
        if parts.frontier is not None:
            post.frontier = cls._from_parts(parts.frontier)
        return post

    def recheck(self, **kwargs: Any) -> Diagnostics:
        """Re-run the convergence checks with other thresholds or ``strict=True``.

        Keywords as :func:`scale_transfer.sampling.check_convergence`: ``rhat_max`` (1.01),
        ``ess_min`` (400), ``strict``, ``var_names``.
        """
        from scale_transfer.sampling import check_vars

        kwargs.setdefault("target_accept", self.sampler.target_accept)  # as sampled
        kwargs.setdefault("var_names", check_vars(self.config))
        return check_convergence(self.dt, **kwargs)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"Posterior(target={c.target!r}, pooling={c.pooling!r}, likelihood={c.likelihood!r}, "
            f"groups={len(self.groups)}, points={int(self.groups['n'].sum())}; "
            f"{self.diagnostics.verdict()})"
        )


def __getattr__(name: str) -> Any:
    """Give :func:`scale_transfer.fitting.fit` as ``posterior.fit`` (it builds a Posterior)."""
    if name in ("fit", "warn_on_choices"):
        from scale_transfer import fitting

        return getattr(fitting, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
