"""Figure B: how fitting and extrapolation error depend on the sample size, with uncertainty.

For each setting, the models with the highest upstream (US) accuracy are held out (the top
``holdout_top`` fraction, by the model's mean US accuracy over its tasks). From the remaining
*pool*, ``size`` models are drawn (all their tasks come along, so every subsample holds every
task) for each sample size and repeat; ``"all"`` takes the whole pool. The same subsample is
fitted by every method and target (paired comparison):

- ``lsq``: :func:`scale_transfer.lsq.fit_lsq` per task (the paper's method);
- ``bayes``: the hierarchical model (:func:`scale_transfer.posterior.fit`, Gaussian
  likelihood); ``bayes-frontier``: the same with ``likelihood="frontier"``;

each to all points (``target="all"``) and to the upper hull of each task
(``target="hull"``). Each fit gives one row per task of the table (:data:`TABLE_COLUMNS`).

Errors are mean squared errors of downstream (DS) accuracy, as in the paper:

- ``fit_mse``: against the points the fit used (all points, or the hull points of the
  subsample);
- ``pred_mse_all``: against every held-out point of the task; ``pred_mse_hull``: against the
  held-out points on the upper hull of the held-out points of the task (the frontier at
  high US accuracy); ``pred_mse`` is the one of the fit's own kind (``pred_mse_all`` for
  ``target="all"``, ``pred_mse_hull`` for ``target="hull"``). A fit to the hull estimates
  the frontier, so it is scored against the held-out frontier; a fit to all points
  estimates the mean downstream accuracy, so it is scored against all held-out points.

Point predictions: the least-squares curve; for the Bayesian fits the posterior mean of the
curve against hull points and the posterior-predictive mean of a new model against all
points (the same for the Gaussian likelihood; the curve minus the mean gap for the frontier
likelihood). Predictive intervals (``cover50``, ``cover90``, ``width50``, ``width90``) are
equal-tailed (ETI) 50% and 90% intervals of :meth:`Posterior.predict` with
``kind="new-model"`` at each held-out point's US accuracy, scored on the same held-out points
as ``pred_mse``. For ``lsq`` they are the paper-style Gaussian intervals of
:func:`scale_transfer.lsq.lsq_interval` (curve ± z * residual sd; no parameter uncertainty),
given as a baseline. ``asymptote_abs_err`` is ``|asymptote - asymptote_true|`` where the truth
is known (simulated data; the truth is the *frontier's* asymptote, so an all-points fit is
expected to miss it).

Execution. Every fit is one job run by an executor: local processes
(:class:`concurrent.futures.ProcessPoolExecutor`, spawn context, one worker per core by
default), or a Dask distributed cluster (``scheduler=`` its address). Worker processes are
reused, and :mod:`scale_transfer.sampling` keeps compiled models in a per-process cache keyed
by model structure and group labels, so each worker compiles each model structure once. Two
things make the structures few: every job relabels its setting to one constant before
fitting (the groups are then the 8 tasks in every setting, and the reference upstream error
of a setting is data, swapped in through ``with_data``), and a hull fit passes the upper-hull
points of the subsample to the model with ``target="all"``, which is exactly what
``target="hull"`` does inside :func:`scale_transfer.model.prepare_data` (same rows, same
reference error) but shares the compiled model with the all-points fits. The table records
``compile_seconds``, ``compile_cached`` and ``worker`` for each fit. Each Bayesian fit runs its
chains one after the other (``cores=1``): the parallelism is across fits.

Order. Least-squares fits (cheap) run first, then the Bayesian ones repeat by repeat, so a run
stopped early (``time_limit``, an interruption) leaves whole repeats finished.

Resume. Each finished fit is written at once to ``DIR/fits/<setting>/<size>-r<repeat>-
<target>-<method>.csv``; a rerun with the same ``DIR`` skips the fits found there.
``DIR/study.json`` records what the results depend on (data, holdout, sampler settings, seed);
a rerun with other values is refused. ``DIR/study.csv`` (all fits) and ``DIR/figure_b.png``
are rewritten at the end of each run. Nothing else in ``DIR`` is touched.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scale_transfer.config import SamplerConfig
from scale_transfer.studies.runner import make_runner, write_atomic_csv
from scale_transfer.studies.study_fits import (
    BAYES_LIKELIHOODS,
    FIT_SETTING,
    METHODS,
    TABLE_COLUMNS,
    TARGETS,
    run_job,
)
from scale_transfer.studies.study_grid import Grid, fit_keys, load_data, size_label, split_pool
from scale_transfer.studies.study_plots import plot_study
from scale_transfer.studies.study_tables import FITS_DIR, pooled_coverage, read_study, summarize

__all__ = [
    "DEFAULT_SIZES",
    "METHODS",
    "SAMPLER",
    "TABLE_COLUMNS",
    "StudyResult",
    "plot_study",
    "pooled_coverage",
    "read_study",
    "run_study",
    "summarize",
]

#: Sample sizes of the paper's Figure B (models per subsample), and ``"all"``.
DEFAULT_SIZES: tuple[int | str, ...] = (*range(100, 1001, 100), "all")
#: Sampler settings of each Bayesian fit unless the caller gives its own. Each fit runs its
#: chains one after the other (``cores=1``) without a progress bar, whatever it is given.
SAMPLER = SamplerConfig(draws=500, tune=500, chains=2, cores=1, progress=False)
_STATE = "study.json"
_TABLE = "study.csv"
_FIGURE = "figure_b.png"


# --------------------------------------------------------------------------------------------
# Data, subsamples and the study's directory.


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s) or "_"


def _fit_path(out: Path, key: tuple) -> Path:
    setting, size, repeat, target, method = key
    return out / FITS_DIR / _slug(setting) / f"{size}-r{repeat:03d}-{target}-{method}.csv"


def _check_state(out: Path, state: dict[str, Any]) -> None:
    """Create ``DIR/study.json``, or check that the study in ``DIR`` used the same settings."""
    path = out / _STATE
    if path.exists():
        old = json.loads(path.read_text())
        diff = {k: (old.get(k), v) for k, v in state.items() if old.get(k) != v}
        if diff:
            text = ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in diff.items())
            raise ValueError(
                f"{out} holds a study made with other settings ({text}); "
                "rerun with the same settings to resume it, or choose another --out"
            )
        return
    ours = [out / _TABLE, out / _FIGURE, out / FITS_DIR]
    taken = [str(p) for p in ours if p.exists()]
    if taken:
        raise FileExistsError(
            f"{out} is not a study directory (no {_STATE}) but holds {', '.join(taken)}; "
            "refusing to overwrite them: choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=2) + "\n")


# --------------------------------------------------------------------------------------------
# The study.


@dataclass
class StudyResult:
    """What :func:`run_study` did.

    Attributes
    ----------
    table : pandas.DataFrame
        Every finished fit in the directory (:data:`TABLE_COLUMNS`).
    out : pathlib.Path
        The study directory.
    n_total, n_done, n_skipped, n_failed, n_left : int
        Fits asked for; fitted in this run; found finished and skipped; failed (retried on
        the next run); not started because the time limit was reached.
    wall_seconds : float
        Wall time of this run's fitting.
    table_path, figure_path : pathlib.Path or None
        The table and figure written.
    errors : list of str
        One line per failed fit.
    """

    table: pd.DataFrame
    out: Path
    n_total: int
    n_done: int
    n_skipped: int
    n_failed: int
    n_left: int
    wall_seconds: float
    table_path: Path | None = None
    figure_path: Path | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def fits_per_second(self) -> float:
        """Fits finished per second of wall time in this run."""
        return self.n_done / self.wall_seconds if self.wall_seconds > 0 else float("nan")


def _hms(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


@dataclass
class _Progress:
    """Counts of the fits of one run, the failures, and an ETA from each method's own rate."""

    n_total: int
    n_skipped: int
    t0: float = field(default_factory=time.perf_counter)
    n_done: int = 0
    errors: list[str] = field(default_factory=list)
    first: dict[str, float] = field(default_factory=dict)  # per method: first submission
    last: dict[str, float] = field(default_factory=dict)  # last completion
    done_by: dict[str, int] = field(default_factory=dict)  # fits done

    def started(self, key: tuple) -> None:
        """Note a submission (the ETA counts a method's time from its first one)."""
        self.first.setdefault(key[4], time.perf_counter())

    def failed(self, key: tuple, err: BaseException) -> str:
        """Record a failed fit (retried on the next run); return its line."""
        # the fit runs under one setting label; name the user's
        text = str(err).replace(f"({FIT_SETTING})", f"({key[0]})")
        self.errors.append(f"{key}: {type(err).__name__}: {text}")
        return f"FAILED {self.errors[-1]}"

    def finished(self, key: tuple, rows: pd.DataFrame, left: list[str]) -> str:
        """Record a finished fit; return its line with counts, rate and ETA."""
        self.n_done += 1
        now = time.perf_counter()
        self.last[key[4]] = now
        self.done_by[key[4]] = self.done_by.get(key[4], 0) + 1
        return (
            f"[{self.n_skipped + self.n_done}/{self.n_total}] {_describe(rows)} | "
            f"{self.n_done / (now - self.t0):.3f} fits/s, ETA {_hms(self._eta(left))}"
        )

    def _eta(self, left: list[str]) -> float:
        """Seconds left: each method's fits left over its own rate (methods run one by one)."""
        eta = 0.0
        for m in set(left):
            if not self.done_by.get(m):
                return math.inf
            eta += left.count(m) * (self.last[m] - self.first[m]) / self.done_by[m]
        return eta


def _describe(df: pd.DataFrame) -> str:
    r = df.iloc[0]
    text = (
        f"{r['setting']} size={r['size']} repeat={r['repeat']} target={r['target']} {r['method']}"
    )
    if r["method"] == "lsq":
        return text
    cache = (
        "cached model" if bool(r["compile_cached"]) else f"compiled {r['compile_seconds']:.1f} s"
    )
    return (
        f"{text}: {r['fit_seconds']:.1f} s ({cache}), R-hat {r['max_rhat']:.3f}, "
        f"{int(r['divergences'])} div"
    )


def _check_args(
    methods: Sequence[str],
    targets: Sequence[str],
    holdout_top: float,
    repeats: int,
    sampler: SamplerConfig,
    sizes: Iterable[int | str],
) -> list[str]:
    """Refuse bad arguments of :func:`run_study`; return the sample-size labels."""
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ValueError(f"methods must be among {', '.join(METHODS)}; got {list(methods)}")
    bad = [t for t in targets if t not in TARGETS]
    if bad or not targets:
        raise ValueError(f"targets must be among {', '.join(TARGETS)}; got {list(targets)}")
    if not 0.0 < holdout_top < 1.0:
        raise ValueError(f"holdout_top must be in (0, 1); got {holdout_top}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}")
    for name in ("draws", "tune", "chains"):
        v = getattr(sampler, name)
        if v < 1:
            raise ValueError(f"{name} must be >= 1; got {v}")
    if isinstance(sizes, str | int):
        raise ValueError(f"sizes must be a list of sample sizes, e.g. [100, 200]; got {sizes!r}")
    size_labels = list(dict.fromkeys(size_label(s) for s in sizes))
    if not size_labels:
        raise ValueError("no sample sizes given")
    return size_labels


def _run_fits(
    todo: list[tuple],
    grid: Grid,
    out: Path,
    runner: Any,
    progress: _Progress,
    deadline: float | None,
    say: Callable[[str], None],
) -> list[tuple]:
    """Run the fits of ``todo``, writing each as it finishes; return the keys not started."""
    pending = list(reversed(todo))
    running: dict[Any, tuple] = {}
    try:
        while pending or running:
            while pending and len(running) < 2 * runner.n_slots:
                if deadline is not None and time.perf_counter() > deadline:
                    break
                key = pending.pop()
                progress.started(key)
                running[runner.submit(run_job, grid.job(key))] = key
            if not running:
                break
            for fut in runner.wait_one(set(running)):
                key = running.pop(fut)
                try:
                    rows = fut.result()
                except Exception as err:  # noqa: BLE001 - reported, retried on resume
                    say(progress.failed(key, err))
                    continue
                write_atomic_csv(rows, _fit_path(out, key))
                left = [k[4] for k in pending] + [k[4] for k in running.values()]
                say(progress.finished(key, rows, left))
    except BaseException:  # interrupted (Ctrl-C, SIGTERM) or failed: stop the workers too
        runner.close(abort=True)
        raise
    runner.close()
    return pending


def _write_outputs(out: Path, figure: bool) -> tuple[pd.DataFrame, Path, Path | None]:
    """Write the table of every finished fit, and the figure; return them."""
    table = read_study(out)
    table_path = out / _TABLE
    write_atomic_csv(table, table_path)
    if not (figure and len(table)):
        return table, table_path, None
    import matplotlib.pyplot as plt

    figure_path = out / _FIGURE
    fig = plot_study(table)
    tmp = figure_path.with_name(f".{figure_path.name}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=130)
    os.replace(tmp, figure_path)
    plt.close(fig)
    return table, table_path, figure_path


def run_study(
    out: str | os.PathLike,
    *,
    settings: Sequence[str] | None = None,
    data: str | os.PathLike | pd.DataFrame | None = None,
    sizes: Iterable[int | str] = DEFAULT_SIZES,
    repeats: int = 10,
    methods: Sequence[str] = ("lsq", "bayes"),
    targets: Sequence[str] = TARGETS,
    holdout_top: float = 0.1,
    sampler: SamplerConfig = SAMPLER,
    n_models: int = 1500,
    centered: bool | str = "auto",
    percent: bool = False,
    scheduler: Any = None,
    workers: int | None = None,
    time_limit: float | None = None,
    figure: bool = True,
    progress: Callable[[str], None] | None = None,
) -> StudyResult:
    """Run the sample-size study (the paper's Figure B) and write its table and figure.

    Longer than 100 lines: it documents its 16 arguments; each step is a named function.

    Parameters
    ----------
    out : path
        Study directory: finished fits go to ``out/fits/``, the table to ``out/study.csv``,
        the figure to ``out/figure_b.png``. A rerun with the same ``out`` resumes.
    settings : sequence of str, optional
        Settings to study. Simulated data: any of
        :data:`scale_transfer.simulate.SETTINGS` (default: all four). With ``data``: settings
        of the data (default: all of them).
    data : path or pandas.DataFrame, optional
        Tidy data to study instead of simulated data (see :mod:`scale_transfer.data`).
    sizes : iterable of int or "all"
        Sample sizes in models (each with all its tasks); sizes not below the pool size are
        skipped (``"all"`` covers them).
    repeats : int
        Subsamples per size (for ``"all"`` the repeats differ only in the MCMC seed).
    methods : sequence of {"lsq", "bayes", "bayes-gaussian", "bayes-t", "bayes-frontier"}
        Fit methods.
    targets : sequence of {"all", "hull"}
        Fit all points, or the upper hull of each task.
    holdout_top : float
        Fraction of each setting's models, those of highest US accuracy, held out to score
        the extrapolation.
    sampler : SamplerConfig
        Sampler settings of each Bayesian fit (default :data:`SAMPLER`); its chains run one
        after the other (``cores=1``). Its ``seed`` seeds the simulated data, the
        subsamples and (one seed per fit) the MCMC runs; its ``time_limit``, seconds of
        sampling after which a Bayesian fit is stopped
        (:class:`scale_transfer.sampling.SamplingTimeout`) and counted as failed (a rerun
        tries it again; default none: one stuck fit then holds its worker).
    n_models : int
        Models per simulated setting (ignored with ``data``).
    centered : {"auto", True, False}
        Parametrization of the Bayesian model (:class:`scale_transfer.model.ModelConfig`);
        ``"auto"`` picks it per fit from the points per task, which may cost a second
        compilation per worker.
    percent : bool
        ``data`` accuracies are in percent.
    scheduler : str or distributed.Client, optional
        Address of a Dask scheduler (``"tcp://host:8786"``) or a client: run the fits on
        that cluster. Default: local processes.
    workers : int, optional
        Local worker processes (default: the number of cores); 0 runs the fits in this
        process. Ignored with ``scheduler``.
    time_limit : float, optional
        Seconds after which no new fit is started; running fits finish and are kept, and a
        rerun resumes with the rest.
    figure : bool
        Write the figure.
    progress : callable, optional
        Called with one line of text per finished fit (counts, rate and ETA) and per event.

    Returns
    -------
    StudyResult

    Raises
    ------
    ValueError
        For an unknown method, target or setting, a bad size or holdout fraction, or a
        directory that holds a study made with other settings.
    FileExistsError
        If ``out`` is not a study directory but holds files the study would write.
    """
    say = progress or (lambda _msg: None)
    sampler = dataclasses.replace(sampler, cores=1, progress=False)
    size_labels = _check_args(methods, targets, holdout_top, repeats, sampler, sizes)
    seed = sampler.seed
    frames, truths, ident = load_data(settings, data, n_models, seed, percent)
    out = Path(out)
    # what each method fits with is part of the state: a study made when "bayes" meant the
    # Gaussian on all points is not resumed under the new meaning
    state = {**ident, "holdout_top": holdout_top, "seed": seed,
             **{k: getattr(sampler, k) for k in ("draws", "tune", "chains")},
             "centered": centered, "likelihoods": BAYES_LIKELIHOODS}  # fmt: skip
    splits = {s: split_pool(df, holdout_top) for s, df in frames.items()}
    keys = fit_keys(splits, size_labels, methods, targets, repeats, say)
    _check_state(out, state)  # after the checks above: a refused study leaves no folder
    todo = [k for k in keys if not _fit_path(out, k).exists()]
    n_skipped = len(keys) - len(todo)
    say(
        f"study in {out}: {len(keys)} fits ({len(frames)} setting(s) x {len(size_labels)} "
        f"sizes x {repeats} repeats x {len(targets)} targets x {len(methods)} methods), "
        f"{n_skipped} already done, {len(todo)} to run"
    )
    grid = Grid(splits, truths, sampler, centered)
    prog = _Progress(n_total=len(keys), n_skipped=n_skipped)
    deadline = None if time_limit is None else prog.t0 + float(time_limit)
    left: list[tuple] = []
    if todo:
        runner = make_runner(scheduler, workers)
        say(f"running on {runner.n_slots} worker slot(s) ({runner.name})")
        left = _run_fits(todo, grid, out, runner, prog, deadline, say)
    wall = time.perf_counter() - prog.t0
    if left:
        say(
            f"time limit reached: {len(left)} fits not started; rerun with the same --out to resume"
        )
    table, table_path, figure_path = _write_outputs(out, figure)
    return StudyResult(
        table=table,
        out=out,
        n_total=len(keys),
        n_done=prog.n_done,
        n_skipped=n_skipped,
        n_failed=len(prog.errors),
        n_left=len(left),
        wall_seconds=wall,
        table_path=table_path,
        figure_path=figure_path,
        errors=prog.errors,
    )
