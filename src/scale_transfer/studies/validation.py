"""Held-out validation of the extrapolation: how well calibrated are predictive intervals.

The protocol (Figure B of the paper, with intervals): for each task (and setting), hold out
the models with the *highest* upstream accuracy, fit on the rest, and score the held-out
models' downstream accuracy against the prediction for a new model at their upstream
accuracy. Per task and pooled over every held-out point (the row ``task == "(all)"``):

- **mse** and **bias**: mean squared error and mean of observed minus predicted, of the
  point prediction (the mean of a Bayesian fit's new-model predictive draws; for the least
  squares baselines, the fitted curve);
- **coverage_XX** and **width_XX**: share of held-out models inside the central
  (equal-tailed) predictive interval of probability ``XX``%, and its mean width; by default
  at 50, 80, 90 and 95% (:data:`scale_transfer.selfcheck.LEVELS`);
- **coverage_mse**: the mean squared coverage error over those probabilities;
- **crps**: continuous ranked probability score (lower is better; it rewards sharp intervals
  that still cover), from the predictive draws, or in closed form for least squares with
  Gaussian residual intervals.

Methods (:mod:`.validation_methods`): ``lsq`` (the paper's least squares per task in error
space, intervals ``center +- z * sigma`` from the residual sd), ``lsq_hull`` (the same on the
upper hull), ``logit`` (the field's practice: ``logit(ds) = a + b logit(us)`` per task with
Student-t prediction intervals), and Bayesian fits named in :data:`OPTIONS` (``default`` is
the package default; ``odds`` the odds law with its leave-future-out drift layer).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scale_transfer.config import ModelConfig, SamplerConfig
from scale_transfer.data import MIN_POINTS, read_tidy
from scale_transfer.publish import write_atomic
from scale_transfer.studies.validation_methods import bayes_method, logit_method, lsq_method
from scale_transfer.studies.validation_plots import plot_validation
from scale_transfer.studies.validation_scores import (
    ALL_GROUP,
    LEVELS,
    calibration_tolerance,
    coverage_mse,
    crps_normal,
    prob_label,
    score_intervals,
)
from scale_transfer.zoo import load_dataset

__all__ = [
    "ALL_GROUP",
    "BASELINES",
    "LEVELS",
    "OPTIONS",
    "RECOMMENDED",
    "SAMPLER",
    "ValidationResult",
    "calibration_tolerance",
    "crps_normal",
    "holdout_split",
    "plot_validation",
    "resolve_methods",
    "score_intervals",
    "validate_extrapolation",
]

#: Least-squares baselines and the points they are fitted to: the paper's law in error space
#: (``lsq``, ``lsq_hull``) and the logit-linear line (``logit``).
BASELINES: dict[str, str] = {"lsq": "all", "lsq_hull": "hull", "logit": "all"}
#: Placeholder for "the effect columns of the data" (see :func:`default_effects`).
AUTO = "auto"
#: Model-attribute columns used as effects by default, when present: the architecture
#: family and whether the model was pre-trained on more data than ImageNet-1k (timm).
EFFECT_COLUMNS = ("family", "extra_data")
#: Bayesian variants: name -> keyword arguments of :class:`scale_transfer.ModelConfig`.
OPTIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "paper": {"law": "error"},
    "independent": {"pooling": "independent", "law": "error"},
    "hull": {"target": "hull"},
    "student_t": {"likelihood": "student_t"},
    "frontier": {"likelihood": "frontier"},
    "effects": {"effects": AUTO},
    "effects_student_t": {"effects": AUTO, "likelihood": "student_t"},
    "discrepancy": {"discrepancy": True},
    "effects_discrepancy": {"effects": AUTO, "discrepancy": True},
    "odds": {"law": "odds", "extrapolation": "lfo"},
    "odds_effects": {"effects": AUTO, "law": "odds", "extrapolation": "lfo"},
}
#: The variant that uses the data's model columns (see docs/validation.md): model-attribute
#: effects, run by ``options="default"`` beside the default where the data have such columns.
RECOMMENDED = "effects"
#: Methods run by ``options="default"``: the two baselines, the package default and the
#: recommended variant (left out when the data have no effect columns).
DEFAULT_METHODS = ("lsq", "logit", "default", RECOMMENDED)
#: Sampler settings of each Bayesian fit unless the caller gives its own.
SAMPLER = SamplerConfig(draws=500, tune=500, chains=2, progress=False)


# -------------------------------------------------------------------------------- split
def holdout_split(
    data: pd.DataFrame,
    top: float | None = 0.1,
    above: float | None = None,
    *,
    min_train: int = MIN_POINTS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out, per (setting, task), the models with the highest upstream accuracy.

    Parameters
    ----------
    data : pandas.DataFrame
        Tidy data (validated, with a ``setting`` column).
    top : float or None
        Fraction in (0, 1): hold out the ``ceil(top * n)`` points of highest ``us_acc`` of
        each (setting, task) with ``n`` points (ties broken by model name). Ignored when
        ``above`` is given.
    above : float or None
        Hold out the points with ``us_acc > above`` instead.
    min_train : int
        Fewest points a (setting, task) must keep to be fitted.

    Returns
    -------
    (train, test) : tuple of pandas.DataFrame
        Disjoint parts of ``data`` (original index kept).

    Raises
    ------
    ValueError
        For a fraction outside (0, 1), a threshold that leaves a task with fewer than
        ``min_train`` points, or one that holds nothing out.
    """
    df = data if "setting" in data else read_tidy(data)
    if above is None:
        if top is None or not 0.0 < float(top) < 1.0:
            raise ValueError(f"holdout fraction must be in (0, 1); got {top}")
    held = pd.Series(False, index=df.index)
    for (setting, task), g in df.groupby(["setting", "task"], sort=False):
        if above is not None:
            out = g.index[g["us_acc"] > above]
        else:
            n_out = math.ceil(float(top) * len(g))
            order = g.sort_values(["us_acc", "model"], ascending=[False, True], kind="mergesort")
            out = order.index[:n_out]
        if len(g) - len(out) < min_train:
            raise ValueError(
                f"task {task!r} ({setting}): holding out {len(out)} of {len(g)} points leaves "
                f"fewer than {min_train} to fit; lower the threshold"
            )
        held[out] = True
    if not held.any():
        raise ValueError(f"no point has us_acc above {above}: nothing to hold out")
    return df[~held].copy(), df[held].copy()


# ------------------------------------------------------------------------------ methods
def resolve_methods(options: str | Sequence[str] = "default") -> list[str]:
    """Turn ``"default"``, ``"all"`` or a list / comma-separated names into method names."""
    if isinstance(options, str):
        if options == "default":
            return list(DEFAULT_METHODS)
        if options == "all":
            return list(BASELINES) + list(OPTIONS)
        options = [o.strip() for o in options.split(",") if o.strip()]
    names = list(dict.fromkeys(options))
    known = list(BASELINES) + list(OPTIONS)
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise ValueError(
            f"unknown method(s) {', '.join(map(repr, bad)) or '(none)'}; choose 'default', "
            f"'all' or names among {', '.join(known)}"
        )
    return names


def default_effects(data: pd.DataFrame) -> tuple[str, ...]:
    """Return the effect columns for the ``effects`` options.

    ``data.attrs["effects"]`` if set (the scaling benchmark sets ``("run",)``), else those
    of :data:`EFFECT_COLUMNS` present.
    """
    if data.attrs.get("effects"):
        return tuple(data.attrs["effects"])
    return tuple(c for c in EFFECT_COLUMNS if c in data.columns)


# ------------------------------------------------------------------------------- result
@dataclass
class ValidationResult:
    """Outcome of :func:`validate_extrapolation`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (method, setting, task) and a pooled row per method (``task ==
        "(all)"``): ``method, setting, task, n_train, n_heldout, us_min_heldout, mse, bias,
        coverage_XX, width_XX, coverage_mse, crps`` (``bias`` = mean of observed minus
        predicted; ``coverage_mse`` = mean of ``(coverage_XX - XX/100)**2``).
    points : pandas.DataFrame
        One row per (method, held-out point): ``method, setting, task, model, us_acc,
        ds_acc, pred, lower_XX, upper_XX, crps``.
    fits : pandas.DataFrame
        One row per method: configuration, convergence (Bayesian fits) and seconds.
    probs : tuple of float
        Interval probabilities (equal-tailed intervals).
    meta : dict
        Split and sampler settings.
    """

    table: pd.DataFrame
    points: pd.DataFrame
    fits: pd.DataFrame
    probs: tuple[float, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    def pooled(self) -> pd.DataFrame:
        """Return the pooled rows (all tasks), one per method."""
        return self.table[self.table["task"] == ALL_GROUP].reset_index(drop=True)

    def verdicts(self) -> list[str]:
        """Return one line per method: calibrated or not, and its MSE against least squares.

        An interval of probability ``p`` counts as calibrated when its pooled coverage is
        within ``calibration_tolerance(p)`` of ``p`` (0.85-0.95 for 90%, 0.40-0.60 for 50%).
        """
        pooled = self.pooled().set_index("method")
        lsq_mse = pooled["mse"].get("lsq", np.nan)
        lines = []
        for method, r in pooled.iterrows():
            bad = []
            for p in self.probs:
                cov, tol = r[f"coverage_{prob_label(p)}"], calibration_tolerance(p)
                if abs(cov - p) > tol:
                    bad.append(f"{p:.0%} intervals hold {cov:.0%} (calibrated: "
                               f"{p - tol:.0%}-{p + tol:.0%})")  # fmt: skip
            head = f"{method}: " + ("NOT CALIBRATED: " + "; ".join(bad) if bad else "calibrated")
            if method != "lsq" and np.isfinite(lsq_mse):
                rel = "no worse than" if r["mse"] <= lsq_mse else "WORSE than"
                head += f"; MSE {r['mse']:.4g} {rel} least squares ({lsq_mse:.4g})"
            head += self._self_check_words(str(method), r)
            lines.append(head)
        return lines

    def _self_check_words(self, method: str, pooled: pd.Series) -> str:
        """``"; self-check: ..."`` for a method whose fit ran its self-check, else ``""``."""
        fits = self.fits.set_index("method") if "method" in self.fits else pd.DataFrame()
        if method not in fits.index:
            return ""
        said = []
        for p in self.probs:
            col = f"selfcheck_coverage_{prob_label(p)}"
            if col in fits and np.isfinite(fits.loc[method, col]):
                held = pooled[f"coverage_{prob_label(p)}"]
                gap = abs(fits.loc[method, col] - held)
                said.append(f"{p:.0%}: {fits.loc[method, col]:.0%} (held out: {held:.0%}, "
                            f"{'within' if gap <= 0.10 else 'MORE than'} 10 points)")  # fmt: skip
        return "; self-check said " + ", ".join(said) if said else ""

    def save(self, out: str | os.PathLike, *, overwrite: bool = False) -> list[Path]:
        """Write ``validation.csv``, ``points.csv``, ``fits.csv`` and ``validation.png``."""
        out = Path(out)
        names = ["validation.csv", "points.csv", "fits.csv", "validation.png"]
        paths = [out / n for n in names]
        if not overwrite:
            clash = [str(p) for p in paths if p.exists()]
            if clash:
                raise FileExistsError(f"{clash[0]} exists; pass overwrite=True (--overwrite)")
        for path, frame in zip(paths, (self.table, self.points, self.fits), strict=False):
            write_atomic(path, lambda tmp, f=frame: f.to_csv(tmp, index=False), overwrite=overwrite)
        fig = plot_validation(self)
        save = lambda tmp: fig.savefig(tmp, dpi=120, bbox_inches="tight")  # noqa: E731
        write_atomic(paths[3], save, overwrite=overwrite)
        import matplotlib.pyplot as plt

        plt.close(fig)
        return paths


# ---------------------------------------------------------------------------- scoring
def _summarise(points: pd.DataFrame, train: pd.DataFrame, probs: Sequence[float]) -> pd.DataFrame:
    n_train = train.groupby(["setting", "task"], sort=False).size()
    rows = []

    def one(method: str, setting: str, task: str, g: pd.DataFrame, ntr: int) -> dict:
        err = g["ds_acc"] - g["pred"]
        row = {
            "method": method,
            "setting": setting,
            "task": task,
            "n_train": ntr,
            "n_heldout": len(g),
            "us_min_heldout": float(g["us_acc"].min()),
            "mse": float(np.mean(err**2)),
            "bias": float(np.mean(err)),
        }
        coverage = {}
        for p in probs:
            c = prob_label(p)
            inside, width = score_intervals(g["ds_acc"], g[f"lower_{c}"], g[f"upper_{c}"])
            row[f"coverage_{c}"] = coverage[p] = float(np.mean(inside))
            row[f"width_{c}"] = float(np.mean(width))
        row["coverage_mse"] = coverage_mse(coverage)
        row["crps"] = float(g["crps"].mean())
        return row

    for method, gm in points.groupby("method", sort=False):
        for (setting, task), g in gm.groupby(["setting", "task"], sort=False):
            rows.append(one(method, setting, task, g, int(n_train.get((setting, task), 0))))
        rows.append(one(method, "", ALL_GROUP, gm, int(len(train))))
    return pd.DataFrame(rows)


def _config(method: str, effects: Sequence[str]) -> ModelConfig:
    """Return the model of a Bayesian method, with the data's effect columns where it asks."""
    kwargs = dict(OPTIONS[method])
    if kwargs.get("effects") == AUTO:
        kwargs["effects"] = tuple(effects)
    return ModelConfig(**kwargs)


def validate_extrapolation(
    data: pd.DataFrame | str | os.PathLike,
    *,
    top: float | None = 0.1,
    above: float | None = None,
    probs: Iterable[float] = LEVELS,
    options: str | Sequence[str] = "default",
    effects: Sequence[str] | None = None,
    sampler: SamplerConfig = SAMPLER,
    percent: bool = False,
    log: Callable[[str], Any] | None = None,
    self_check: bool = False,
) -> ValidationResult:
    """Run the held-out extrapolation protocol.

    Parameters
    ----------
    data : pandas.DataFrame, path, or ``"timm"`` / ``"benchmark"`` / ``"simulated"``
        Tidy data (see :func:`scale_transfer.zoo.load_dataset`).
    top, above : float, optional
        Hold-out rule, see :func:`holdout_split`.
    probs : iterable of float
        Probabilities of the equal-tailed predictive intervals scored (default 50, 80, 90
        and 95%).
    options : str or sequence of str
        ``"default"`` (the baselines ``lsq`` and ``logit``, the default model, and
        ``effects`` where the data have effect columns), ``"all"`` (every entry of
        :data:`BASELINES` and :data:`OPTIONS`), or method names.
    effects : sequence of str, optional
        Effect columns of the ``effects*`` methods; default :func:`default_effects`. A
        held-out model's level is known (its family, its training run); a level absent
        from the training set gets a new effect drawn from its population.
    sampler : SamplerConfig
        Sampler settings of each Bayesian fit (default :data:`SAMPLER`); its seed also
        seeds the predictive draws.
    log : callable, optional
        Called with one line of text per finished method (e.g. ``print``).
    percent : bool, default False
        A tidy file's or frame's accuracies are in percent: divide them by 100.
    self_check : bool, default False
        Also run the self-check of each fit with a drift layer (one more fit each) and
        record its pooled coverage in the fits table (``selfcheck_coverage_XX``) and the
        verdicts, beside the held-out coverage it predicts.

    Returns
    -------
    ValidationResult
    """
    if isinstance(data, pd.DataFrame):
        df = data if "setting" in data and not percent else read_tidy(data, percent=percent)
    else:
        df = load_dataset(data, percent=percent)
    probs = tuple(float(p) for p in probs)
    for p in probs:
        if not 0.0 < p < 1.0:
            raise ValueError(f"interval probability must be in (0, 1); got {p}")
    methods = resolve_methods(options)
    effects = default_effects(df) if effects is None else tuple(effects)
    if options == "default" and not effects:
        methods = [m for m in methods if OPTIONS.get(m, {}).get("effects") != AUTO]
    if any(OPTIONS.get(m, {}).get("effects") == AUTO for m in methods) and not effects:
        raise ValueError("the effects methods need effect columns (effects=...); none found")
    train, test = holdout_split(df, top=top, above=above)
    points, infos = [], []
    for m in methods:
        if m == "logit":
            pts, info = logit_method(m, train, test, probs)
        elif m in BASELINES:
            pts, info = lsq_method(m, train, test, probs, BASELINES[m])
        else:
            pts, info = bayes_method(
                m, train, test, probs, _config(m, effects), sampler, self_check=self_check
            )
        points.append(pts)
        infos.append(info)
        if log is not None:
            flags = ("" if info.get("converged", True) else " (NOT converged)") + (
                "" if info.get("refits_converged", True) else " (a refit NOT converged)"
            )
            log(f"{m}: {info['seconds']:.0f} s{flags}")
    pts = pd.concat(points, ignore_index=True)
    table = _summarise(pts, train, probs)
    name = None if isinstance(data, pd.DataFrame) else str(data)
    meta = {"data": name, "top": top, "above": above, "probs": probs,
            **{k: getattr(sampler, k) for k in ("seed", "draws", "tune", "chains")},
            "effects": ",".join(effects),
            "n_train": len(train), "n_heldout": len(test)}  # fmt: skip
    return ValidationResult(table, pts, pd.DataFrame(infos), probs, meta)
