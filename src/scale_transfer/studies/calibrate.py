"""The ``calibrate`` command: asymptote intervals against the simulator's truth, resumable.

Simulate the paper's setting once per seed (:func:`scale_transfer.simulate.simulate`), fit
each variant, and score each task's asymptote interval at several probabilities against the
true asymptote, the *frontier's* (the best models' curve). A variant whose asymptote is a
typical model's (a fit of all points with a Gaussian likelihood: ``fit``'s default) is
scored against the frontier too, because that is the number users ask for; its
``estimand`` column says whose asymptote it estimates.

One row per (seed, variant, task) goes to ``OUT/calibration.csv`` after each fit, so an
interrupted run resumes where it stopped (same ``--out``, same settings); then
``OUT/summary.csv`` (one row per variant) and ``OUT/calibration.png``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scale_transfer.config import DEFAULT_KIND, ModelConfig, SamplerConfig
from scale_transfer.simulate import simulate
from scale_transfer.studies.runner import diagnostics_record, fit_quietly, write_atomic_csv

__all__ = ["VARIANTS", "CalibrationRun", "calibrate", "calibration_summary", "plot_calibration"]

#: Variants ``calibrate`` knows: name -> keyword arguments of ``fit``. ``default`` is
#: ``fit``'s default model without the drift layer, whose refits leave the asymptote as is.
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {"extrapolation": "none"},
    "hull": {"target": "hull", "likelihood": "gaussian"},
    "frontier": {"target": "all", "likelihood": "frontier"},
    "top": {"target": "top", "likelihood": "frontier"},
}
#: Interval probabilities scored by default.
PROBS = (0.5, 0.9)
_SETTINGS_FILE = "calibration.json"


def _label(p: float) -> str:
    return f"{round(100 * p)}"


def _whose(kwargs: dict[str, Any]) -> str:
    from scale_transfer.report.text import whose_asymptote

    return whose_asymptote(ModelConfig(**kwargs))


def _rows(post: Any, truth: pd.Series, probs: Sequence[float], **fields: Any) -> list[dict]:
    """One row per task: the asymptote's intervals against the truth, and the diagnostics."""
    summaries = {p: post.summary(prob=p, interval_kind=DEFAULT_KIND).set_index("task")
                 for p in probs}  # fmt: skip
    main = summaries[probs[-1]]
    main = main[main.index != "(new task)"]
    rows = {t: {**fields, "task": t, "truth": float(truth[t]), "mean": float(r["mean"]),
                "median": float(r["median"])} for t, r in main.iterrows()}  # fmt: skip
    for p, s in summaries.items():
        for t, row in rows.items():
            lo, hi = float(s.loc[t, "lower"]), float(s.loc[t, "upper"])
            row |= {f"lower_{_label(p)}": lo, f"upper_{_label(p)}": hi,
                    f"covered_{_label(p)}": bool(lo <= row["truth"] <= hi)}  # fmt: skip
    diag = diagnostics_record(post.diagnostics, ("max_rhat", "min_ess_bulk", "divergences"))
    for row in rows.values():
        row |= {"error": row["mean"] - row["truth"], **diag}
    return list(rows.values())


@dataclass
class CalibrationRun:
    """What :func:`calibrate` did: the per-fit table, its summary and the files written."""

    table: pd.DataFrame
    summary: pd.DataFrame
    paths: list[Path]
    n_fitted: int
    n_skipped: int


def calibration_summary(table: pd.DataFrame, probs: Sequence[float]) -> pd.DataFrame:
    """One row per variant: coverage at each probability, error, width and convergence.

    Columns ``variant, estimand, fits, intervals, coverage_XX, width_XX, bias,
    mean_abs_error, fits_converged, max_rhat, min_ess_bulk, divergent_fits, seconds_per_fit``.
    """
    out = []
    for v, g in table.groupby("variant", sort=False):
        fits = g.drop_duplicates(["seed"])
        row = {"variant": v, "estimand": g["estimand"].iloc[0], "fits": len(fits),
               "intervals": len(g)}  # fmt: skip
        for p in probs:
            lab = _label(p)
            row[f"coverage_{lab}"] = float(g[f"covered_{lab}"].mean())
            row[f"width_{lab}"] = float((g[f"upper_{lab}"] - g[f"lower_{lab}"]).mean())
        row |= {
            "bias": float(g["error"].mean()),
            "mean_abs_error": float(g["error"].abs().mean()),
            "fits_converged": int(fits["converged"].sum()),
            "max_rhat": float(fits["max_rhat"].max()),
            "min_ess_bulk": float(fits["min_ess_bulk"].min()),
            "divergent_fits": int((fits["divergences"] > 0).sum()),
            "seconds_per_fit": float(fits["seconds"].mean()),
        }
        out.append(row)
    return pd.DataFrame(out)


def plot_calibration(table: pd.DataFrame, probs: Sequence[float], title: str = ""):  # noqa: ANN201
    """Left: coverage against nominal probability per variant (dots: single tasks).

    Right: each task's asymptote error (posterior mean minus truth) per variant, one dot per
    simulation, with its 90% intervals' mean half-width as a bar for scale.
    """
    import matplotlib.pyplot as plt

    variants = list(dict.fromkeys(table["variant"]))
    colors = {v: plt.get_cmap("tab10")(i % 10) for i, v in enumerate(variants)}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), layout="constrained",
                             gridspec_kw={"width_ratios": [1, 1.4]})  # fmt: skip
    ax = axes[0]
    p = np.asarray(probs, float)
    lo = max(0.0, float(p.min()) - 0.1)
    ax.plot([lo, 1], [lo, 1], color="0.5", ls="--", lw=1, label="nominal")
    for i, v in enumerate(variants):
        g = table[table["variant"] == v]
        dx = 0.01 * (i - (len(variants) - 1) / 2)
        cov = [g[f"covered_{_label(q)}"].mean() for q in p]
        ax.plot(p + dx, cov, marker="o", lw=2, color=colors[v], label=v)
        for q in p:
            per_task = g.groupby("task")[f"covered_{_label(q)}"].mean()
            ax.scatter(np.full(len(per_task), q + dx), per_task, s=10, alpha=0.45, lw=0,
                       color=colors[v])  # fmt: skip
    ax.set_xlim(lo, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xticks(p, [f"{q:.0%}" for q in p])
    ax.set_xlabel("interval probability (equal-tailed)")
    ax.set_ylabel("share of true asymptotes inside")
    ax.set_title("Coverage (line: all tasks; dots: single tasks)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    ax = axes[1]
    tasks = list(dict.fromkeys(table["task"]))
    width = 0.8 / len(variants)
    for i, v in enumerate(variants):
        g = table[table["variant"] == v]
        x0 = np.arange(len(tasks)) - 0.4 + width * (i + 0.5)
        for j, t in enumerate(tasks):
            e = g.loc[g["task"] == t, "error"].to_numpy()
            ax.scatter(np.full(e.size, x0[j]), e, s=10, color=colors[v], alpha=0.7, lw=0,
                       label=v if j == 0 else None)  # fmt: skip
        top = _label(max(p))
        half = g.assign(h=(g[f"upper_{top}"] - g[f"lower_{top}"]) / 2).groupby("task")["h"].mean()
        ax.bar(x0, 2 * half.reindex(tasks).to_numpy(), bottom=-half.reindex(tasks).to_numpy(),
               width=width * 0.9, color=colors[v], alpha=0.15)  # fmt: skip
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xticks(np.arange(len(tasks)), tasks, rotation=30, ha="right", rotation_mode="anchor")
    ax.set_ylabel("asymptote: posterior mean - truth")
    ax.set_title(f"Error per task and simulation (bars: mean {max(p):.0%} interval, centred)",
                 fontsize=10)  # fmt: skip
    ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def calibrate(
    out: str | Path,
    *,
    setting: str = "jft-25shot",
    seeds: Sequence[int] = range(20),
    n_models: int = 3000,
    variants: Sequence[str] = ("default",),
    probs: Sequence[float] = PROBS,
    sampler: SamplerConfig | None = None,
    log: Callable[[str], None] | None = print,
) -> CalibrationRun:
    """Fit simulations of ``setting`` and score the asymptote intervals; resume in ``out``.

    Parameters
    ----------
    out : path
        Folder for ``calibration.csv``, ``summary.csv``, ``calibration.png`` and
        ``calibration.json`` (the settings; a folder run with other settings is refused).
    setting, seeds, n_models
        The simulations (:func:`~scale_transfer.simulate.simulate`).
    variants : sequence of str
        Keys of :data:`VARIANTS`.
    probs : sequence of float
        Interval probabilities (equal-tailed intervals).
    sampler : SamplerConfig, optional
        Every fit's sampler settings (each simulation's fits take its seed).
    log : callable, optional
        Progress printer.

    Returns
    -------
    CalibrationRun
    """
    import matplotlib.pyplot as plt

    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    probs = tuple(sorted(float(p) for p in probs))
    sampler = replace(sampler or SamplerConfig(), progress=False)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"setting": setting, "n_models": int(n_models), "probs": list(probs),
                **{k: getattr(sampler, k) for k in ("draws", "tune", "chains")}}  # fmt: skip
    sfile, csv = out / _SETTINGS_FILE, out / "calibration.csv"
    if sfile.exists() and json.loads(sfile.read_text()) != settings:
        raise ValueError(
            f"{out} holds a calibration run with other settings ({sfile.read_text().strip()}); "
            "choose another --out"
        )
    sfile.write_text(json.dumps(settings))
    table = pd.read_csv(csv) if csv.exists() else pd.DataFrame()
    done = set(zip(table.get("seed", []), table.get("variant", []), strict=True))
    todo = [(s, v) for s in seeds for v in variants if (int(s), v) not in done]
    n_skipped = len(seeds) * len(variants) - len(todo)
    t_start = time.perf_counter()
    sim = None
    for i, (seed, v) in enumerate(todo, 1):
        if sim is None or sim.seed != int(seed):  # one simulation per seed, all its variants
            sim = simulate(setting, n_models=n_models, seed=int(seed))
        truth = sim.truth.set_index("task")["asymptote"]
        t0 = time.perf_counter()
        post = fit_quietly(sim.data, sampler_config=replace(sampler, seed=int(seed)),
                           **VARIANTS[v])  # fmt: skip
        seconds = time.perf_counter() - t0
        rows = _rows(post, truth, probs, seed=int(seed), variant=v, setting=setting,
                     estimand=_whose(VARIANTS[v]), seconds=seconds)  # fmt: skip
        table = pd.concat([table, pd.DataFrame(rows)], ignore_index=True)
        write_atomic_csv(table, csv)
        if log is not None:
            g = table[table["variant"] == v]
            cov = ", ".join(f"{p:.0%}: {g[f'covered_{_label(p)}'].mean():.2f}" for p in probs)
            eta = (time.perf_counter() - t_start) / i * (len(todo) - i)
            log(f"[{i}/{len(todo)}] seed {seed} {v}: {seconds:.0f} s, "
                f"{'converged' if post.diagnostics.ok else 'NOT CONVERGED'}; "
                f"coverage so far {cov}; ETA {eta:.0f} s")  # fmt: skip
    summary = calibration_summary(table, probs)
    write_atomic_csv(summary, out / "summary.csv")
    fig = plot_calibration(table, probs, f"{setting}, {n_models} models per simulation, "
                           f"{table['seed'].nunique()} simulations")  # fmt: skip
    fig.savefig(out / "calibration.png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    paths = [csv, out / "summary.csv", out / "calibration.png", sfile]
    return CalibrationRun(table, summary, paths, len(todo), n_skipped)
