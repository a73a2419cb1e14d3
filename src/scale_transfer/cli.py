"""The command line: parse, call the library, print. No statistics live here.

User errors (bad data, an existing output file, a mismatched model) exit with status 2 and
one line on stderr; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

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


class Kind(StrEnum):
    """Prediction kind."""

    curve = "curve"
    new_model = "new-model"


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


def _check_out(path: Path | None, overwrite: bool) -> None:
    if path is not None and path.exists() and not overwrite:
        _fail(f"{path} exists; pass --overwrite to replace it")


def _write_table(df, out: Path | None, overwrite: bool) -> None:  # noqa: ANN001
    import pandas as pd

    with pd.option_context("display.width", 160, "display.max_rows", 200):
        typer.echo(df.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if out is not None:
        _check_out(out, overwrite)
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
    file: Annotated[Path, typer.Argument(help="Tidy CSV or Parquet file.")],
    percent: Annotated[
        bool, typer.Option("--percent", help="Accuracies are in percent: divide by 100.")
    ] = False,
) -> None:
    """Check a tidy data file; exit 0 if it is good, 2 with one clear line if not.

    Columns: model, task, us_acc, ds_acc (fractions in [0, 1]); optional upstream, shots,
    params, family.
    """
    from scale_transfer.data import validate as _validate

    report = _validate(file, percent=percent)
    typer.echo(str(report))
    typer.echo("ok")


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
        sim.truth[[c for c in cols if c in sim.truth]].to_csv(truth, index=False)
        typer.echo(f"wrote {truth}")


@app.command()
def fit(
    data: Annotated[Path, typer.Argument(help="Tidy CSV or Parquet file.")],
    out: Annotated[Path, typer.Option(help="netCDF file for the fit, e.g. models/NAME.nc.")],
    target: Annotated[Target, typer.Option(help="Fit all points or the upper hull.")] = Target.all,
    pooling: Annotated[Pooling, typer.Option(help="Pooling across tasks.")] = Pooling.hierarchical,
    likelihood: Annotated[Likelihood, typer.Option(help="Residual model.")] = Likelihood.gaussian,
    by_setting: Annotated[
        bool, typer.Option("--by-setting", help="Add a setting level (upstream x shots).")
    ] = False,
    draws: Annotated[int, typer.Option(help="Draws per chain.")] = 1000,
    tune: Annotated[int, typer.Option(help="Tuning steps per chain.")] = 1000,
    chains: Annotated[int, typer.Option(help="Chains.")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    sampler: Annotated[str, typer.Option(help="nutpie (default) or numpyro.")] = "nutpie",
    percent: Annotated[bool, typer.Option("--percent", help="Accuracies in percent.")] = False,
    strict: Annotated[bool, typer.Option(help="Fail (exit 3) if convergence fails.")] = False,
    progress: Annotated[bool, typer.Option(help="Show the sampler's progress bar.")] = True,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
) -> None:
    """Fit the hierarchical power-law model with MCMC and save it to netCDF."""
    from scale_transfer.data import read_tidy
    from scale_transfer.posterior import fit as _fit
    from scale_transfer.sampling import ConvergenceError

    _check_out(out, overwrite)
    df = read_tidy(data, percent=percent)
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
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            sampler=sampler,
            progress=progress,
            strict=strict,
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
    kind: Annotated[Kind, typer.Option(help="curve: the law; new-model: a new model.")] = (
        Kind.curve
    ),
    interval: Annotated[IntervalKind, typer.Option(help="eti or hdi.")] = IntervalKind.eti,
    out: Annotated[Path | None, typer.Option(help="CSV to write.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
) -> None:
    """Extrapolated downstream accuracy at the given upstream accuracies (no resampling).

    Columns: task, us_acc, mean, lower, upper, and setting, prob, interval, kind.
    """
    from scale_transfer.posterior import Posterior

    post = Posterior.load(model)
    df = post.predict(us_acc, prob=prob, kind=kind.value, interval_kind=interval.value)
    cols = ["task", "us_acc", "mean", "lower", "upper", "setting", "prob", "interval", "kind"]
    _write_table(df[cols], out, overwrite)


# --- end of commands ---


def _expand_multi_values(argv: list[str]) -> list[str]:
    """Let ``--us-acc 0.7 0.8`` mean ``--us-acc 0.7 --us-acc 0.8`` (and ``--prob``, ``--sizes``)."""
    multi = {"--us-acc", "--prob", "--sizes"}
    out: list[str] = []
    current = None
    for a in argv:
        if a.startswith("-") and not _is_number(a):
            current = a if a in multi else None
            out.append(a)
        elif current is not None and not _is_number(a):
            current = None
            out.append(a)
        elif current is not None and _is_number(a) and out[-1] != current:
            out += [current, a]
        else:
            out.append(a)
    return out


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


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
        app(args=args, standalone_mode=False)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except SystemExit:
        raise
    except Exception as err:  # noqa: BLE001
        import click

        if isinstance(err, click.exceptions.ClickException):
            err.show()
            sys.exit(2)
        if isinstance(err, click.exceptions.Abort):
            sys.exit(130)
        if debug or not isinstance(err, _user_errors()):
            raise
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
