"""Commands of the lab: study, bench, validate-extrapolation, calibrate."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from scale_transfer.cli.common import (
    DrawsOption,
    TuneOption,
    app,
    check_out,
    check_prob,
    fail,
    sampler_options,
    sigterm_exits,
    words,
    write_table,
)
from scale_transfer.config import DEFAULT_DRAWS, TOP_DRAWS, TOP_POINTS


def _names(flag: str, help_text: str) -> Any:
    """Return a repeatable option of names: ``--flag a,b`` or ``--flag a --flag b`` (words)."""
    return Annotated[list[str] | None, typer.Option(flag, help=help_text)]


SettingsOption = _names(
    "--setting",
    "Setting to study (repeat the option). Simulated: jft-25shot, jft-1shot, in21k-25shot, "
    "in21k-1shot (default: all four); with --data: its settings.",
)
MethodsOption = _names(
    "--methods",
    "lsq, bayes (Student-t on all points, Gaussian on the hull), bayes-gaussian, bayes-t, "
    "bayes-frontier: --methods lsq,bayes (default both).",
)
TargetsOption = _names("--targets", "all, hull: --targets all,hull (default both).")
CasesOption = _names(
    "--case",
    "Run only these cases: paper-hull, timm, paper-all, timm-top, paper-top (the frontier "
    "fits that fit runs, on timm and at paper scale). Without it, the frontier likelihood "
    "runs on timm-top and paper-top only; a named paper-hull, timm or paper-all case runs it "
    "too (paper-all: over 20 minutes).",
)
LikelihoodsOption = _names("--likelihood", "Run only these likelihoods: gaussian, frontier.")


def _say_study_result(res) -> None:  # noqa: ANN001
    """Print what a study did; exit 2 naming the failed fits and whether a rerun helps."""
    typer.echo(
        f"{res.n_done} fits in {res.wall_seconds:.0f} s ({res.fits_per_second:.3f} fits/s); "
        f"{res.n_skipped} already done, {res.n_failed} failed, {res.n_left} not started"
    )
    typer.echo(f"wrote {res.table_path} ({len(res.table)} rows)")
    if res.figure_path is not None:
        typer.echo(f"wrote {res.figure_path}")
    if res.n_failed:
        # bad data for a subsample (too few points, e.g. a small hull) fail again on a rerun:
        # the subsamples are fixed by the seed
        n_data = sum("DataError" in e for e in res.errors)
        parts = []
        if n_data:
            parts.append(
                f"{n_data} cannot be fitted with these data (DataError: a rerun fails the same "
                "way; choose larger --sizes, or leave out that target)"
            )
        if res.n_failed > n_data:
            parts.append(f"{res.n_failed - n_data} may succeed if you rerun with the same --out")
        fail(f"{res.n_failed} fit(s) failed: {'; '.join(parts)}")


@app.command()
def study(
    out: Annotated[Path, typer.Option(help="Study directory; a rerun with it resumes.")],
    setting: SettingsOption = None,
    sizes: Annotated[
        list[int] | None,
        typer.Option("--sizes", help="Sample sizes in models, e.g. --sizes 100 200 300."),
    ] = None,
    include_all: Annotated[
        bool, typer.Option("--all/--no-all", help="Add the size 'all' (every pool model).")
    ] = True,
    repeats: Annotated[int, typer.Option(help="Subsamples per size.")] = 10,
    methods: MethodsOption = None,
    targets: TargetsOption = None,
    draws: Annotated[int, typer.Option(help="Draws per chain (Bayesian fits).")] = 500,
    tune: Annotated[int, typer.Option(help="Tuning steps per chain.")] = 500,
    chains: Annotated[int, typer.Option(help="Chains per fit.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of data, subsamples and MCMC.")] = 0,
    n_models: Annotated[
        int, typer.Option("--n-models", help="Models per simulated setting.")
    ] = 1500,
    holdout_top: Annotated[
        float,
        typer.Option("--holdout-top", help="Share of models, highest US accuracy, held out."),
    ] = 0.1,
    data: Annotated[
        Path | None, typer.Option(help="Tidy CSV or Parquet to study instead of simulations.")
    ] = None,
    percent: Annotated[bool, typer.Option("--percent", help="--data accuracies in %.")] = False,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address, e.g. tcp://host:8786.")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Local worker processes (default: cores; 0: in this process)."),
    ] = None,
    time_limit: Annotated[
        float | None,
        typer.Option("--time-limit", help="Minutes after which no new fit starts."),
    ] = None,
    fit_time_limit: Annotated[
        float | None,
        typer.Option(
            "--fit-time-limit",
            help="Minutes of sampling after which a Bayesian fit is stopped and counted as "
            "failed (a rerun tries it again).",
        ),
    ] = None,
) -> None:
    """Figure B: fitting and extrapolation error vs sample size, with interval coverage.

    (Longer than 100 lines: its 18 options are declared in the signature, as typer needs.)

    Holds out the models of highest US accuracy, fits subsamples of the rest (least squares
    and the Bayesian model, to all points and to the hull), and writes DIR/study.csv (one
    row per fit and task), DIR/figure_b.png and one file per finished fit in DIR/fits/.
    """
    from scale_transfer.studies.study import DEFAULT_SIZES, run_study

    check_out(out, True, folder=True)
    fit_seconds = None if fit_time_limit is None else 60.0 * fit_time_limit
    # the study's --time-limit is the whole run's; each fit's is --fit-time-limit
    sampler = sampler_options(locals(), cores=1, progress=False, time_limit=fit_seconds)
    size_list: list[int | str] = list(sizes) if sizes else [s for s in DEFAULT_SIZES if s != "all"]
    if include_all:
        size_list.append("all")

    def say(line: str) -> None:
        typer.echo(line, err=True)

    sigterm_exits()
    res = run_study(
        out,
        settings=setting or None,
        data=data,
        sizes=size_list,
        repeats=repeats,
        methods=words(methods) or ("lsq", "bayes"),
        targets=words(targets) or ("all", "hull"),
        holdout_top=holdout_top,
        sampler=sampler,
        time_limit=None if time_limit is None else 60.0 * time_limit,
        n_models=n_models,
        percent=percent,
        progress=say,
        scheduler=scheduler,
        workers=workers,
    )
    _say_study_result(res)


@app.command()
def bench(
    out: Annotated[Path, typer.Option(help="JSON file for the results.")],
    quick: Annotated[
        bool, typer.Option("--quick", help="Small sizes (300 models, 2 chains x 200 draws).")
    ] = False,
    timm: Annotated[
        Path | None, typer.Option("--timm", help="timm results folder: adds the timm case.")
    ] = None,
    with_naive: Annotated[
        bool, typer.Option("--with-naive", help="Also run the naive PyMC transcription.")
    ] = False,
    draws: Annotated[
        int | None,
        typer.Option(
            help=f"Draws per chain (default: {TOP_DRAWS} for timm-top and paper-top, "
            f"{DEFAULT_DRAWS} otherwise)."
        ),
    ] = None,
    chains: Annotated[int | None, typer.Option(help="Chains (default 4).")] = None,
    n_boot: Annotated[
        int | None, typer.Option("--n-boot", help="Bootstrap resamples per task (default 1000).")
    ] = None,
    naive_draws: Annotated[
        int | None,
        typer.Option("--naive-draws", help="Draws (and tuning steps) of the naive model."),
    ] = None,
    case: CasesOption = None,
    likelihood: LikelihoodsOption = None,
    warm_refit: Annotated[
        str, typer.Option("--warm-refit", help="Cases with a warm refit: all, hull or none.")
    ] = "all",
    numba_cache: Annotated[
        str,
        typer.Option(
            "--numba-cache",
            help="fresh: every child compiles with an empty PyTensor/numba disk cache (a "
            "user's first run); shared: the user's cache as it is (later runs).",
        ),
    ] = "fresh",
    compile_cache: Annotated[
        str,
        typer.Option(
            "--compile-cache",
            help="both: each Gaussian fit runs first with an empty package cache of compiled "
            "models (the first fit after install), then in a later process that loads it; "
            "empty: only the first; user: the user's cache as it is.",
        ),
    ] = "both",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
) -> None:
    """Benchmark the Bayesian fit against the bootstrap (and a naive model); write JSON.

    Every fit runs in a fresh process (peak memory, cold compile cache), then once more warm.
    Field names are documented in docs/benchmark.md.
    """
    from scale_transfer.studies.bench import (
        CASES,
        LIKELIHOODS,
        BenchConfig,
        format_table,
        run_benchmark,
    )
    from scale_transfer.studies.bench_cases import TIMM_CASES

    check_out(out, overwrite)
    kw = {
        "draws": draws,
        "chains": chains,
        "n_boot": n_boot,
        "timm_dir": str(timm) if timm is not None else None,
        "with_naive": with_naive,
        "naive_draws": naive_draws,
        "cases": tuple(c for c in CASES if c in set(case)) if case else None,
        "frontier_cases": tuple(c for c in CASES if c in set(case)) if case else None,
        "likelihoods": (
            tuple(x for x in LIKELIHOODS if x in set(likelihood)) if likelihood else None
        ),
        "warm_refit": warm_refit,
        "numba_cache": numba_cache,
        "compile_cache": compile_cache,
    }
    for name, values, allowed in (("case", case, CASES), ("likelihood", likelihood, LIKELIHOODS)):
        bad = sorted(set(values or ()) - set(allowed))
        if bad:
            fail(f"unknown {name} {', '.join(bad)}; choose from {', '.join(allowed)}")
    for name in TIMM_CASES:
        if case and name in case and timm is None:
            fail(f"--case {name} needs the timm results folder: --timm DIR")
    if timm is not None and not timm.is_dir():
        fail(f"--timm {timm}: no such folder")
    kw = {k: v for k, v in kw.items() if v is not None}
    cfg = BenchConfig.quick_config(**kw) if quick else BenchConfig(**kw)
    command = "scale-transfer " + " ".join(sys.argv[1:])
    result = run_benchmark(out, cfg, overwrite=overwrite, command=command)
    typer.echo(format_table(result))
    typer.echo(f"wrote {out}")


@app.command("validate-extrapolation")
def validate_extrapolation(
    data: Annotated[
        str,
        typer.Argument(
            help="Tidy CSV/Parquet file; a timm results folder; the scaling benchmark's CSV; "
            "or 'timm' ($SCALE_TRANSFER_TIMM, else ../shared/data/timm-results), 'benchmark' "
            "($SCALE_TRANSFER_BENCHMARK), 'simulated'."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Folder for validation.csv, points.csv, figure.")],
    holdout_top: Annotated[
        float, typer.Option("--holdout-top", help="Hold out this top fraction of each task.")
    ] = 0.1,
    holdout_above: Annotated[
        float | None,
        typer.Option("--holdout-above", help="Hold out models above this US accuracy instead."),
    ] = None,
    prob: Annotated[
        list[float] | None,
        typer.Option(help="Interval probabilities, e.g. --prob 0.5 0.9 (default 0.5 0.8 0.9 0.95)"),
    ] = None,
    options: Annotated[
        str,
        typer.Option(
            help="'default' (lsq, logit, the default model, and 'effects' where the data "
            "have effect columns), 'all', or comma-separated methods: lsq, lsq_hull, logit, "
            "default, paper, independent, hull, student_t, frontier, effects, "
            "effects_student_t, discrepancy, effects_discrepancy, odds, odds_effects."
        ),
    ] = "default",
    effects: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated effect columns of the effects methods (default: family, "
            "extra_data where present; run for 'benchmark')."
        ),
    ] = None,
    draws: Annotated[int, typer.Option(help="Draws per chain of each fit.")] = 1000,
    tune: Annotated[int, typer.Option(help="Tuning steps per chain.")] = 1000,
    chains: Annotated[int, typer.Option(help="Chains.")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    progress: Annotated[bool, typer.Option(help="Show the sampler's progress bar.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace existing files in --out.")] = False,
    percent: Annotated[
        bool, typer.Option("--percent", help="A tidy file's accuracies are in percent.")
    ] = False,
    self_check: Annotated[
        bool,
        typer.Option(
            "--self-check",
            help="Also run each drift-layer fit's self-check (one more fit) and compare the "
            "coverage it predicts with the held-out coverage.",
        ),
    ] = False,
) -> None:
    """Hold out the models with the highest US accuracy, fit the rest, score the prediction.

    Per task and pooled: mean squared error and bias of the predicted DS accuracy, coverage
    and mean width of the equal-tailed predictive intervals for a new model, their mean
    squared coverage error, and CRPS, for the baselines (least squares in error space with
    Gaussian residual intervals; logit-linear least squares with t intervals) and the
    Bayesian variants. Writes
    OUT/validation.csv (one row per method and task, plus '(all)'), OUT/points.csv,
    OUT/fits.csv and OUT/validation.png.
    """
    from scale_transfer.studies.validation import LEVELS
    from scale_transfer.studies.validation import validate_extrapolation as _validate

    check_out(out, overwrite, folder=True)
    sampler = sampler_options(locals())
    for p in prob or ():
        check_prob(p)
    names = ["validation.csv", "points.csv", "fits.csv", "validation.png"]
    existing = [out / n for n in names if (out / n).exists()]
    if existing and not overwrite:
        fail(f"{existing[0]} exists; pass --overwrite to replace the results in {out}")
    result = _validate(
        data,
        top=holdout_top,
        above=holdout_above,
        probs=tuple(prob) if prob else LEVELS,
        options=options,
        effects=[e.strip() for e in effects.split(",") if e.strip()] if effects else None,
        sampler=sampler,
        log=lambda line: typer.echo(line, err=True),
        percent=percent,
        self_check=self_check,
    )
    result.save(out, overwrite=overwrite)
    pooled = result.pooled().drop(columns=["setting", "task"])
    write_table(pooled, None, overwrite)
    for line in result.verdicts():
        alarm = any(w in line for w in ("NOT", "WORSE", "MORE than"))
        typer.echo(("warning: " if alarm else "") + line, err=True)
    typer.echo(f"wrote {out}")


@app.command()
def calibrate(
    out: Annotated[Path, typer.Option(help="Folder for calibration.csv, summary.csv, figure.")],
    setting: Annotated[
        str,
        typer.Option(help="jft-25shot, jft-1shot, in21k-25shot or in21k-1shot."),
    ] = "jft-25shot",
    seeds: Annotated[int, typer.Option(help="Number of simulations.")] = 20,
    first_seed: Annotated[int, typer.Option("--first-seed", help="Seed of the first one.")] = 0,
    n_models: Annotated[int, typer.Option("--n-models", help="Models per simulation.")] = 3000,
    variants: Annotated[
        str,
        typer.Option(
            help="Comma-separated: default (fit's default model), hull (the paper's hull fit), "
            "frontier (the frontier likelihood on all points), top (the frontier likelihood "
            f"truncated to {TOP_POINTS})."
        ),
    ] = "default",
    prob: Annotated[
        list[float] | None,
        typer.Option(help="Interval probabilities, e.g. --prob 0.5 0.9 (the default)."),
    ] = None,
    draws: DrawsOption = None,
    tune: TuneOption = None,
    chains: Annotated[int, typer.Option(help="Chains.")] = 4,
) -> None:
    """Score asymptote intervals against the simulator's true asymptotes (the frontier's).

    One simulation of SETTING per seed, each variant fitted to it; per task, whether its
    equal-tailed intervals hold the true asymptote. Resumable: rerun the same command with the
    same --out to go on where it stopped. Writes OUT/calibration.csv (one row per seed,
    variant and task), OUT/summary.csv (one row per variant) and OUT/calibration.png.
    """
    from scale_transfer.simulate import SETTINGS
    from scale_transfer.studies.calibrate import PROBS, VARIANTS
    from scale_transfer.studies.calibrate import calibrate as _calibrate

    if setting not in SETTINGS:
        fail(f"--setting must be one of {', '.join(SETTINGS)}; got {setting!r}")
    names = [v.strip() for v in variants.split(",") if v.strip()]
    bad = [v for v in names if v not in VARIANTS]
    if bad or not names:
        fail(f"--variants: unknown {bad[0]!r}; choose from {', '.join(VARIANTS)}" if bad
             else "--variants: name at least one")  # fmt: skip
    for p in prob or ():
        check_prob(p)
    if seeds < 1 or n_models < 10:
        fail("--seeds must be at least 1 and --n-models at least 10")
    sampler = sampler_options(locals())
    try:
        run = _calibrate(out, setting=setting, seeds=range(first_seed, first_seed + seeds),
                         n_models=n_models, variants=names, probs=tuple(prob or PROBS),
                         sampler=sampler, log=lambda line: typer.echo(line, err=True))  # fmt: skip
    except ValueError as err:
        fail(str(err))
    typer.echo(f"{run.n_fitted} fits run, {run.n_skipped} already done")
    write_table(run.summary, None, False)
    for path in run.paths:
        typer.echo(f"wrote {path}")
