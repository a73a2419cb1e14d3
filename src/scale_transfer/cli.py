"""The command line: parse, call the library, print. No statistics live here.

User errors (bad data, an existing output file, a mismatched model) exit with status 2 and
one line on stderr; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    import pandas as pd

app = typer.Typer(
    name="scale-transfer",
    help=(
        "Bayesian analysis of how pre-training scale transfers downstream: fit "
        "e_DS = k * e_US**alpha + e_IR per task with a hierarchical model, and report "
        "credible intervals on the asymptote 1 - e_IR and on extrapolated accuracy."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_DEBUG = False


class Target(StrEnum):
    """Which points to fit."""

    all = "all"
    hull = "hull"


class Pooling(StrEnum):
    """Pooling across tasks."""

    hierarchical = "hierarchical"
    independent = "independent"
    complete = "complete"


class Likelihood(StrEnum):
    """Residual model."""

    gaussian = "gaussian"
    student_t = "student_t"
    frontier = "frontier"


class Adaptation(StrEnum):
    """nutpie's mass-matrix adaptation."""

    auto = "auto"
    diag = "diag"
    low_rank = "low_rank"


class Kind(StrEnum):
    """Prediction kind."""

    curve = "curve"
    new_model = "new-model"
    hull = "hull"


class Centered(StrEnum):
    """Hierarchy parametrization."""

    auto = "auto"
    yes = "yes"
    no = "no"


class IntervalKind(StrEnum):
    """Interval kind."""

    eti = "eti"
    hdi = "hdi"


def _fail(msg: str, code: int = 2) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code)


def _user_errors() -> tuple[type[BaseException], ...]:
    from scale_transfer.data import DataError
    from scale_transfer.posterior import ModelMismatchError

    return (DataError, ModelMismatchError, FileExistsError, FileNotFoundError, ValueError)


def _check_out(path: Path | None, overwrite: bool, *, folder: bool = False) -> None:
    """Refuse an output path before any work is done: existing, or not writable as asked.

    ``folder``: the path is a folder the command writes into (an existing one is fine).
    """
    if path is None:
        return
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                _fail(f"cannot write {path}: {parent} is a file, not a folder")
            break
    if folder:
        if path.exists() and not path.is_dir():
            _fail(f"cannot write into {path}: it is a file, not a folder")
        return
    if path.is_dir():
        _fail(f"{path} is a folder; --out needs a file name")
    if path.exists() and not overwrite:
        _fail(f"{path} exists; pass --overwrite to replace it")


def _check_prob(prob: float) -> None:
    if not 0.0 < prob < 1.0:  # NaN fails too
        _fail(f"--prob must be in (0, 1); got {prob}")


def _write_table(df, out: Path | None, overwrite: bool) -> None:  # noqa: ANN001
    import pandas as pd

    _check_out(out, overwrite)  # before printing, so that a refusal is the last line
    with pd.option_context("display.width", 160, "display.max_rows", 200):
        typer.echo(df.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(out, index=False)
        typer.echo(f"wrote {out}")


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    global _DEBUG
    _DEBUG = debug


@app.command()
def validate(
    file: Annotated[
        Path, typer.Argument(help="Tidy CSV or Parquet file (or a timm results folder).")
    ],
    percent: Annotated[
        bool, typer.Option("--percent", help="Accuracies are in percent: divide by 100.")
    ] = False,
) -> None:
    """Check a tidy data file; exit 0 if it is good, 2 with one clear line if not.

    Columns: model, task, us_acc, ds_acc (fractions in [0, 1]); optional upstream, shots,
    params, family.
    """
    from scale_transfer.data import validate as _validate

    report = _validate(_zoo_or_file(file, percent), percent=percent)
    typer.echo(str(report))
    typer.echo("ok")


def _zoo_or_file(path: Path, percent: bool) -> Path | pd.DataFrame:
    """Return the tidy frame of a timm folder or a benchmark CSV; any other path as it is."""
    from scale_transfer.studies.validation import is_benchmark_file, load_dataset

    if path.is_dir() or is_benchmark_file(path):
        if percent:
            raise ValueError("--percent is for tidy files; the zoo loaders convert percent")
        return load_dataset(path)
    return path


@app.command()
def simulate(
    setting: Annotated[
        str, typer.Option(help="jft-25shot, jft-1shot, in21k-25shot, in21k-1shot")
    ] = ("jft-25shot"),
    n_models: Annotated[int, typer.Option("--n-models", help="Number of models.")] = 3000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    out: Annotated[Path, typer.Option(help="Tidy CSV to write.")] = Path("data.csv"),
    truth: Annotated[Path | None, typer.Option(help="CSV of the true parameters.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing files.")] = False,
) -> None:
    """Simulate the paper's experiments (8 tasks) with known true parameters."""
    from scale_transfer.simulate import simulate as _simulate

    for p in (out, truth):
        _check_out(p, overwrite)
    sim = _simulate(setting, n_models=n_models, seed=seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    sim.data.to_csv(out, index=False)
    typer.echo(f"wrote {out}: {len(sim.data)} rows, {sim.data.task.nunique()} tasks")
    if truth is not None:
        cols = ["task", "k", "alpha", "e_ir", "asymptote", "setting"]
        truth.parent.mkdir(parents=True, exist_ok=True)
        sim.truth[[c for c in cols if c in sim.truth]].to_csv(truth, index=False)
        typer.echo(f"wrote {truth}")


@app.command()
def fit(
    data: Annotated[
        Path,
        typer.Argument(
            help="Tidy CSV or Parquet file; or a timm results folder, the scaling benchmark's CSV."
        ),
    ],
    out: Annotated[Path, typer.Option(help="netCDF file for the fit, e.g. models/NAME.nc.")],
    target: Annotated[Target, typer.Option(help="Fit all points or the upper hull.")] = Target.all,
    pooling: Annotated[Pooling, typer.Option(help="Pooling across tasks.")] = Pooling.hierarchical,
    likelihood: Annotated[Likelihood, typer.Option(help="Residual model.")] = Likelihood.gaussian,
    by_setting: Annotated[
        bool, typer.Option("--by-setting", help="Add a setting level (upstream x shots).")
    ] = False,
    effects: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated columns whose levels get their own curve offsets, partially "
            "pooled (e.g. family,extra_data on timm; docs/model.md)."
        ),
    ] = None,
    discrepancy: Annotated[
        bool,
        typer.Option("--discrepancy", help="Add a smooth term beside the law (docs/model.md)."),
    ] = False,
    draws: Annotated[int, typer.Option(help="Draws per chain.")] = 1000,
    tune: Annotated[int, typer.Option(help="Tuning steps per chain.")] = 1000,
    chains: Annotated[int, typer.Option(help="Chains.")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    sampler: Annotated[str, typer.Option(help="nutpie (default) or numpyro.")] = "nutpie",
    adaptation: Annotated[
        Adaptation,
        typer.Option(help="nutpie mass matrix; auto: low_rank for the frontier, else diag."),
    ] = Adaptation.auto,
    percent: Annotated[bool, typer.Option("--percent", help="Accuracies in percent.")] = False,
    strict: Annotated[bool, typer.Option(help="Fail (exit 3) if convergence fails.")] = False,
    progress: Annotated[bool, typer.Option(help="Show the sampler's progress bar.")] = True,
    centered: Annotated[
        Centered,
        typer.Option(
            help="Hierarchy parametrization: auto (centred for data-rich tasks and hulls), yes, no."
        ),
    ] = Centered.auto,
    target_accept: Annotated[
        float | None,
        typer.Option(
            "--target-accept",
            help="NUTS target acceptance in (0, 1); default auto (0.99 for the frontier "
            "likelihood and for Gaussian fits sampled from sufficient statistics, else 0.95).",
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
) -> None:
    """Fit the hierarchical power-law model with MCMC and save it to netCDF."""
    from scale_transfer.data import read_tidy
    from scale_transfer.posterior import fit as _fit
    from scale_transfer.sampling import ConvergenceError

    _check_out(out, overwrite)
    df = read_tidy(_zoo_or_file(data, percent), percent=percent)
    typer.echo(
        f"fitting {len(df)} points, {df.task.nunique()} tasks: target={target.value}, "
        f"pooling={pooling.value}, likelihood={likelihood.value}",
        err=True,
    )
    try:
        post = _fit(
            df,
            target=target.value,
            pooling=pooling.value,
            likelihood=likelihood.value,
            by_setting=by_setting,
            effects=tuple(e.strip() for e in (effects or "").split(",") if e.strip()),
            discrepancy=discrepancy,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            sampler=sampler,
            adaptation=adaptation.value,
            progress=progress,
            strict=strict,
            centered={"auto": "auto", "yes": True, "no": False}[centered.value],
            target_accept="auto" if target_accept is None else target_accept,
        )
    except ConvergenceError as err:
        _fail(str(err), code=3)
    post.save(out, overwrite=overwrite)
    typer.echo(post.diagnostics.verdict())
    typer.echo(f"wrote {out}")


@app.command()
def summary(
    model: Annotated[Path, typer.Argument(help="A fit written by 'scale-transfer fit'.")],
    prob: Annotated[float, typer.Option(help="Interval probability.")] = 0.9,
    interval: Annotated[IntervalKind, typer.Option(help="eti or hdi.")] = IntervalKind.eti,
    var: Annotated[str, typer.Option(help="asymptote, e_ir, k or alpha.")] = "asymptote",
    out: Annotated[Path | None, typer.Option(help="CSV to write.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
) -> None:
    """Posterior of the asymptote (1 - e_IR) per task, and of an unseen task.

    Columns: task, mean, lower, upper, prob, interval kind (eti: equal-tailed; hdi:
    highest density), and setting, median, sd, n.
    """
    from scale_transfer.posterior import Posterior

    _check_out(out, overwrite)
    post = Posterior.load(model)
    df = post.summary(prob=prob, kind=interval.value, var=var)
    df = df.rename(columns={"interval": "interval_kind"})
    cols = ["task", "mean", "lower", "upper", "prob", "interval_kind", "setting", "median", "sd"]
    _write_table(df[cols + ["n"]], out, overwrite)


@app.command()
def predict(
    model: Annotated[Path, typer.Argument(help="A fit written by 'scale-transfer fit'.")],
    us_acc: Annotated[
        list[float], typer.Option("--us-acc", help="Upstream accuracies, e.g. 0.7 0.8 1.0.")
    ],
    prob: Annotated[float, typer.Option(help="Interval probability.")] = 0.9,
    kind: Annotated[
        Kind,
        typer.Option(
            help="curve: the law; new-model: a new model; hull: the upper hull (best so far) "
            "of a set of new models (give --models-us-acc or --models-csv)."
        ),
    ] = Kind.curve,
    interval: Annotated[IntervalKind, typer.Option(help="eti or hdi.")] = IntervalKind.eti,
    models_us_acc: Annotated[
        list[float] | None,
        typer.Option(
            "--models-us-acc", help="--kind hull: US accuracies of the new models, e.g. 0.8 0.85."
        ),
    ] = None,
    models_csv: Annotated[
        Path | None,
        typer.Option(help="--kind hull: CSV with a column us_acc, one row per new model."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the new models' draws (new-model, hull).")] = 0,
    effect: Annotated[
        list[str] | None,
        typer.Option(
            help="Fits with --effects: the new models' level, COLUMN=LEVEL (repeat the option), "
            "e.g. --effect family=vit; a column not given gets the population curve (curve) "
            "or a level drawn from the population (new-model)."
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="CSV to write.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
) -> None:
    """Extrapolated downstream accuracy at the given upstream accuracies (no resampling).

    Columns: task, us_acc, mean, lower, upper, and setting, prob, interval, kind. With
    --kind hull: the best downstream accuracy that a set of new models (at the US
    accuracies of --models-us-acc or --models-csv) will show at each --us-acc, read off
    their upper hull; meaningful for fits to all points (the frontier likelihood).
    """
    from scale_transfer.posterior import Posterior

    _check_out(out, overwrite)
    post = Posterior.load(model)
    if kind is Kind.hull:
        new = _new_models_us_acc(models_us_acc, models_csv)
        df = post.predict_hull(new, us_acc, prob=prob, interval_kind=interval.value, seed=seed)
    else:
        if models_us_acc or models_csv is not None:
            raise ValueError("--models-us-acc and --models-csv go with --kind hull")
        df = post.predict(
            us_acc,
            prob=prob,
            kind=kind.value,
            interval_kind=interval.value,
            seed=seed,
            effects=_parse_effects(effect),
        )
    df["interval_kind"] = df["interval"]  # the name summary uses; 'interval' kept as it was
    cols = ["task", "us_acc", "mean", "lower", "upper", "setting", "prob", "interval", "kind"]
    _write_table(df[cols + ["interval_kind"]], out, overwrite)


def _parse_effects(items: list[str] | None) -> dict[str, str] | None:
    """``["family=vit"]`` -> ``{"family": "vit"}``; None when none given."""
    if not items:
        return None
    out = {}
    for item in items:
        col, sep, level = item.partition("=")
        if not sep or not col.strip() or not level.strip():
            raise ValueError(f"--effect takes COLUMN=LEVEL, e.g. family=vit; got {item!r}")
        out[col.strip()] = level.strip()
    return out


def _new_models_us_acc(values: list[float] | None, csv: Path | None) -> list[float]:
    """Return the new models' US accuracies of ``predict --kind hull``, checked."""
    import numpy as np
    import pandas as pd

    from scale_transfer.data import DataError, _name_rows, _read_file

    if values and csv is not None:
        raise ValueError("--kind hull: give the new models once, --models-us-acc or --models-csv")
    if not values and csv is None:
        raise ValueError("--kind hull needs the new models: --models-us-acc or --models-csv")
    if csv is not None:
        df = _read_file(csv)  # names the file when it is missing, empty or unreadable
        if "us_acc" not in df.columns:
            raise DataError(f"{csv}: no column 'us_acc' (columns: {', '.join(df.columns)})")
        col = pd.to_numeric(df["us_acc"], errors="coerce")
        bad = np.flatnonzero(~col.between(0.0, 1.0).to_numpy())
        if len(bad):
            # rows named as read_tidy names them: the file's lines
            examples = ", ".join(repr(v) for v in df["us_acc"].iloc[bad[:3]])
            where = _name_rows(bad, path=csv, n_rows=len(df))
            raise DataError(
                f"{csv}: column 'us_acc' is not an accuracy in [0, 1] at {where} (e.g. {examples})"
            )
        return col.tolist()
    return list(values)  # Posterior.hull_draws checks the range


@app.command()
def report(
    model: Annotated[Path, typer.Argument(help="A fit written by 'scale-transfer fit'.")],
    out: Annotated[Path, typer.Option(help="Folder for report.html, report.md and figures.")],
    prob: Annotated[float, typer.Option(help="Interval probability.")] = 0.9,
    interval: Annotated[IntervalKind, typer.Option(help="eti or hdi.")] = IntervalKind.eti,
    lsq: Annotated[
        bool, typer.Option("--lsq/--no-lsq", help="Add the least-squares baseline (bootstrap).")
    ] = True,
    truth: Annotated[
        Path | None, typer.Option(help="CSV of true parameters (from 'simulate --truth').")
    ] = None,
    title: Annotated[str | None, typer.Option(help="Title of the report.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing report files.")] = False,
) -> None:
    """Write an HTML report (one self-contained file) and its Markdown twin for a fit.

    Data summary, model and priors, convergence verdict, asymptote table, extrapolation
    to US accuracy 0.7-1.0 and figures, every interval named with its kind and probability.
    """
    import time

    from scale_transfer.lsq import fit_lsq_frame
    from scale_transfer.posterior import Posterior
    from scale_transfer.report import report_paths, write_report

    _check_out(out, overwrite, folder=True)
    _check_prob(prob)
    existing = [p for p in report_paths(out).values() if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists; pass --overwrite to replace the report")
    t0 = time.perf_counter()
    truth_df = _read_truth(truth) if truth is not None else None
    post = Posterior.load(model)
    lsq_df = None
    if lsq:
        typer.echo("fitting the least-squares baseline (1000 bootstrap resamples)...", err=True)
        # the paper's estimate of what the fit estimates: a frontier fit's is the hull's
        frontier = post.config.likelihood == "frontier"
        lsq_target = "hull" if frontier else post.config.target
        lsq_df = fit_lsq_frame(post.data, target=lsq_target, prob=prob)
    paths = write_report(
        post,
        out,
        prob=prob,
        lsq=lsq_df,
        truth=truth_df,
        title=title,
        interval_kind=interval.value,
        overwrite=overwrite,
    )
    typer.echo(post.diagnostics.verdict())
    typer.echo(f"wrote {paths['html']} and {paths['md']} ({time.perf_counter() - t0:.1f} s)")


def _read_truth(path: Path):  # noqa: ANN202
    """Read a CSV of true parameters ('simulate --truth'), checked."""
    from scale_transfer.data import DataError, _read_file

    df = _read_file(path)  # names the file when it is missing, empty or unreadable
    missing = [c for c in ("task",) if c not in df.columns]
    if "asymptote" not in df.columns and "e_ir" not in df.columns:
        missing.append("asymptote")
    if missing:
        raise DataError(
            f"{path}: not a truth file (no column {', '.join(map(repr, missing))}; "
            f"columns: {', '.join(map(str, df.columns))}); write one with 'simulate --truth'"
        )
    return df


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for data, truth, fit and report.")],
    n_models: Annotated[int, typer.Option("--n-models", help="Simulated models.")] = 3000,
    draws: Annotated[int, typer.Option(help="Draws per chain.")] = 1000,
    tune: Annotated[int, typer.Option(help="Tuning steps per chain.")] = 1000,
    chains: Annotated[int, typer.Option(help="Chains.")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed (simulation and sampler).")] = 0,
    target: Annotated[Target, typer.Option(help="Fit all points or the upper hull.")] = (
        Target.hull
    ),
    likelihood: Annotated[Likelihood, typer.Option(help="Residual model.")] = Likelihood.gaussian,
    prob: Annotated[float, typer.Option(help="Interval probability.")] = 0.9,
    overwrite: Annotated[bool, typer.Option(help="Replace existing files in --out.")] = False,
) -> None:
    """Simulate the paper's JFT 25-shot experiments, fit them and write a report.

    Writes DIR/data.csv (simulated data), DIR/truth.csv (the true parameters), DIR/fit.nc
    (the hierarchical fit) and DIR/report.html + DIR/report.md, which compare the Bayesian
    intervals with least squares and with the truth. A few minutes on two cores.
    """
    import time

    from scale_transfer.lsq import fit_lsq_frame
    from scale_transfer.posterior import fit as _fit
    from scale_transfer.report import report_paths, write_report
    from scale_transfer.sampling import SamplerConfig
    from scale_transfer.simulate import simulate as _simulate

    _check_out(out, overwrite, folder=True)
    _check_prob(prob)
    SamplerConfig(draws=draws, tune=tune, chains=chains)  # bad values fail before any work
    files = {"fit": out / "fit.nc", "data": out / "data.csv", "truth": out / "truth.csv"}
    existing = [p for p in [*files.values(), *report_paths(out).values()] if p.exists()]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise FileExistsError(f"{existing[0]} exists{more}; pass --overwrite to replace them")
    t_all = time.perf_counter()

    def step(i: int, text: str) -> float:
        typer.echo(f"[{i}/5] {text}")
        return time.perf_counter()

    def done(t0: float, extra: str = "") -> None:
        typer.echo(f"      done in {time.perf_counter() - t0:.1f} s{extra}")

    t0 = step(1, f"simulating the JFT 25-shot experiments: {n_models} models x 8 tasks")
    sim = _simulate("jft-25shot", n_models=n_models, seed=seed)
    done(t0, f": {len(sim.data)} points")

    t0 = step(
        2,
        f"fitting the hierarchical model (target={target.value}, likelihood={likelihood.value}; "
        f"{chains} chains x {draws} draws after {tune} tuning steps; compiling takes ~10 s)",
    )
    post = _fit(
        sim.data,
        target=target.value,
        pooling="hierarchical",
        likelihood=likelihood.value,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        progress=True,
    )
    done(t0, f": {post.diagnostics.verdict().split('. ')[0]}")

    t0 = step(3, "fitting the least-squares baseline (the paper's method, 1000 bootstraps)")
    lsq = fit_lsq_frame(sim.data, target=target.value, prob=prob, seed=seed)
    done(t0)

    t0 = step(4, f"saving {files['data']}, {files['truth']} and {files['fit']}")
    out.mkdir(parents=True, exist_ok=True)
    sim.data.to_csv(files["data"], index=False)
    sim.truth.to_csv(files["truth"], index=False)
    post.save(files["fit"], overwrite=overwrite)
    done(t0)

    t0 = step(5, "writing the report (figures, tables)")
    paths = write_report(
        post,
        out,
        prob=prob,
        lsq=lsq,
        truth=sim.truth,
        title=f"scale-transfer demo: simulated JFT 25-shot, {n_models} models, {target.value} fit",
        overwrite=overwrite,
    )
    done(t0)

    s = post.summary(prob=prob)
    s["truth"] = s["task"].map(dict(zip(sim.truth["task"], sim.truth["asymptote"], strict=True)))
    s["lsq"] = s["task"].map(dict(zip(lsq["task"], lsq["asymptote"], strict=True)))
    typer.echo(f"\nasymptote 1 - e_IR: posterior median and {100 * prob:g}% equal-tailed interval")
    cols = ["task", "median", "lower", "upper", "lsq", "truth"]
    typer.echo(s[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}", na_rep="-"))
    typer.echo(f"\n{post.diagnostics.verdict()}")
    typer.echo(f"report: {paths['html']} (and {paths['md']})")
    typer.echo(f"total {time.perf_counter() - t_all:.1f} s")


def _words(values: list[str] | None) -> list[str]:
    """Split repeated and comma- or space-separated option values: lsq,bayes -> [lsq, bayes]."""
    return [w for v in values or [] for w in v.replace(",", " ").split()]


def _sigterm_exits() -> None:
    """Make SIGTERM raise ``SystemExit`` (exit status 143), so that clean-up code runs.

    Python's default is to die at once; a study then left its worker processes running.
    Finished fits are on disk either way; rerun with the same ``--out`` to resume.
    """
    import signal

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


@app.command()
def study(
    out: Annotated[Path, typer.Option(help="Study directory; a rerun with it resumes.")],
    setting: Annotated[
        list[str] | None,
        typer.Option(
            "--setting",
            help="Setting to study (repeat the option). Simulated: jft-25shot, jft-1shot, "
            "in21k-25shot, in21k-1shot (default: all four); with --data: its settings.",
        ),
    ] = None,
    sizes: Annotated[
        list[int] | None,
        typer.Option("--sizes", help="Sample sizes in models, e.g. --sizes 100 200 300."),
    ] = None,
    include_all: Annotated[
        bool, typer.Option("--all/--no-all", help="Add the size 'all' (every pool model).")
    ] = True,
    repeats: Annotated[int, typer.Option(help="Subsamples per size.")] = 10,
    methods: Annotated[
        list[str] | None,
        typer.Option(
            help="lsq, bayes (Student-t on all points, Gaussian on the hull), "
            "bayes-gaussian, bayes-t, bayes-frontier: --methods lsq,bayes (default both)."
        ),
    ] = None,
    targets: Annotated[
        list[str] | None, typer.Option(help="all, hull: --targets all,hull (default both).")
    ] = None,
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

    Holds out the models of highest US accuracy, fits subsamples of the rest (least squares
    and the Bayesian model, to all points and to the hull), and writes DIR/study.csv (one
    row per fit and task), DIR/figure_b.png and one file per finished fit in DIR/fits/.
    """
    from scale_transfer.studies.study import DEFAULT_SIZES, run_study

    _check_out(out, True, folder=True)
    size_list: list[int | str] = list(sizes) if sizes else [s for s in DEFAULT_SIZES if s != "all"]
    if include_all:
        size_list.append("all")

    def say(line: str) -> None:
        typer.echo(line, err=True)

    _sigterm_exits()
    res = run_study(
        out,
        settings=setting or None,
        data=data,
        sizes=size_list,
        repeats=repeats,
        methods=_words(methods) or ("lsq", "bayes"),
        targets=_words(targets) or ("all", "hull"),
        holdout_top=holdout_top,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        n_models=n_models,
        percent=percent,
        scheduler=scheduler,
        workers=workers,
        time_limit=None if time_limit is None else 60.0 * time_limit,
        fit_time_limit=None if fit_time_limit is None else 60.0 * fit_time_limit,
        progress=say,
    )
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
        _fail(f"{res.n_failed} fit(s) failed: {'; '.join(parts)}")


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
    draws: Annotated[int | None, typer.Option(help="Draws per chain (default 1000).")] = None,
    chains: Annotated[int | None, typer.Option(help="Chains (default 4).")] = None,
    n_boot: Annotated[
        int | None, typer.Option("--n-boot", help="Bootstrap resamples per task (default 1000).")
    ] = None,
    naive_draws: Annotated[
        int | None,
        typer.Option("--naive-draws", help="Draws (and tuning steps) of the naive model."),
    ] = None,
    case: Annotated[
        list[str] | None,
        typer.Option("--case", help="Run only these cases: paper-hull, timm, paper-all."),
    ] = None,
    likelihood: Annotated[
        list[str] | None,
        typer.Option("--likelihood", help="Run only these likelihoods: gaussian, frontier."),
    ] = None,
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

    _check_out(out, overwrite)
    kw = {
        "draws": draws,
        "chains": chains,
        "n_boot": n_boot,
        "timm_dir": str(timm) if timm is not None else None,
        "with_naive": with_naive,
        "naive_draws": naive_draws,
        "cases": tuple(c for c in CASES if c in set(case)) if case else None,
        "likelihoods": (
            tuple(x for x in LIKELIHOODS if x in set(likelihood)) if likelihood else None
        ),
        "warm_refit": warm_refit,
        "numba_cache": numba_cache,
    }
    for name, values, allowed in (("case", case, CASES), ("likelihood", likelihood, LIKELIHOODS)):
        bad = sorted(set(values or ()) - set(allowed))
        if bad:
            _fail(f"unknown {name} {', '.join(bad)}; choose from {', '.join(allowed)}")
    if case and "timm" in case and timm is None:
        _fail("--case timm needs the timm results folder: --timm DIR")
    if timm is not None and not timm.is_dir():
        _fail(f"--timm {timm}: no such folder")
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
        list[float] | None, typer.Option(help="Interval probabilities, e.g. --prob 0.5 0.9.")
    ] = None,
    options: Annotated[
        str,
        typer.Option(
            help="'default' (lsq, the default model, and 'effects' where the data have "
            "effect columns), 'all', or comma-separated methods: lsq, lsq_hull, default, "
            "independent, hull, student_t, frontier, effects, effects_student_t, "
            "discrepancy, effects_discrepancy."
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
) -> None:
    """Hold out the models with the highest US accuracy, fit the rest, score the prediction.

    Per task: mean squared error of the predicted DS accuracy, coverage and mean width of
    the equal-tailed predictive intervals for a new model, and CRPS, for the least-squares
    baseline (Gaussian residual intervals) and the Bayesian variants. Writes
    OUT/validation.csv (one row per method and task, plus '(all)'), OUT/points.csv,
    OUT/fits.csv and OUT/validation.png.
    """
    from scale_transfer.studies.validation import validate_extrapolation as _validate

    _check_out(out, overwrite, folder=True)
    names = ["validation.csv", "points.csv", "fits.csv", "validation.png"]
    existing = [out / n for n in names if (out / n).exists()]
    if existing and not overwrite:
        _fail(f"{existing[0]} exists; pass --overwrite to replace the results in {out}")
    result = _validate(
        data,
        top=holdout_top,
        above=holdout_above,
        probs=tuple(prob) if prob else (0.5, 0.9),
        options=options,
        effects=[e.strip() for e in effects.split(",") if e.strip()] if effects else None,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        progress=progress,
        log=lambda line: typer.echo(line, err=True),
        percent=percent,
    )
    result.save(out, overwrite=overwrite)
    pooled = result.pooled().drop(columns=["setting", "task"])
    _write_table(pooled, None, overwrite)
    for line in result.verdicts():
        typer.echo(("warning: " if "NOT" in line or "WORSE" in line else "") + line, err=True)
    typer.echo(f"wrote {out}")


# --- end of commands ---


def _expand_multi_values(argv: list[str]) -> list[str]:
    """Let ``--us-acc 0.7 0.8`` mean ``--us-acc 0.7 --us-acc 0.8``.

    ``--us-acc=0.7`` and ``--us-acc 0.7,0.8`` (commas, as ``--methods`` takes) work too.

    Numbers after ``--us-acc``, ``--models-us-acc`` and ``--sizes`` are expanded, and after
    ``--prob`` where it takes several (``validate-extrapolation``; elsewhere a second number
    is left for the command to refuse); so are words after ``--setting``, ``--methods`` and
    ``--targets`` of ``study`` (which takes no positional argument that they could swallow).
    """
    command = next((a for a in argv if not a.startswith("-")), None)
    numbers = {"--us-acc", "--sizes", "--models-us-acc"}
    if command == "validate-extrapolation":
        numbers.add("--prob")
    words = {"--setting", "--methods", "--targets"} if command == "study" else set()
    split: list[str] = []  # "--us-acc=0.9" and "--us-acc 0.9,1.0" as "--us-acc 0.9 1.0"
    in_numbers = False
    for a in argv:
        opt, eq, value = a.partition("=")
        if eq and opt in numbers:
            split += [opt, *_comma_numbers(value)]
            in_numbers = True
        elif a.startswith("-") and not _is_number(a):
            split.append(a)
            in_numbers = a in numbers
        else:
            split += _comma_numbers(a) if in_numbers else [a]
    out: list[str] = []
    current = None
    for a in split:
        if a.startswith("-") and not _is_number(a):
            current = a if a in numbers | words else None
            out.append(a)
        elif current is None or out[-1] == current:
            out.append(a)
        elif current in words or _is_number(a):
            out += [current, a]
        else:
            current = None
            out.append(a)
    return out


def _comma_numbers(s: str) -> list[str]:
    """``"0.9,1.0"`` -> ``["0.9", "1.0"]`` when every part is a number; else ``[s]``."""
    parts = [p.strip() for p in s.split(",")]
    return parts if len(parts) > 1 and all(_is_number(p) for p in parts) else [s]


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _click_errors() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """Usage-error and abort classes of click and of the copy of click that typer vendors.

    typer >= 0.20 raises its own ``typer._click`` exceptions, which are not click's.
    """
    import click

    usage: list[type] = [click.exceptions.ClickException]
    abort: list[type] = [click.exceptions.Abort, typer.Abort]
    try:
        from typer._click import exceptions as vendored
    except ImportError:  # older typer: click itself
        pass
    else:
        usage.append(vendored.ClickException)
        if hasattr(vendored, "Abort"):
            abort.append(vendored.Abort)
    return tuple(usage), tuple(abort)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``scale-transfer`` command."""
    args = _expand_multi_values(list(sys.argv[1:] if argv is None else argv))
    debug = "--debug" in args
    if not debug:
        import warnings

        def _show(message, category, *_args, **_kwargs):  # noqa: ANN001, ANN002, ANN003
            typer.echo(f"warning: {message}", err=True)

        warnings.showwarning = _show
    try:
        rc = app(args=args, standalone_mode=False)
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except SystemExit:
        raise
    except Exception as err:  # noqa: BLE001
        usage, abort = _click_errors()
        if isinstance(err, usage):  # bad options: click's usage message, no traceback
            err.show()
            sys.exit(getattr(err, "exit_code", 2) or 2)
        if isinstance(err, abort):
            sys.exit(130)
        if debug or not isinstance(err, _user_errors()):
            raise
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
