"""What every command shares: the app, option vocabularies, output checks, errors.

User errors (bad data, an existing output file, a mismatched model) exit with status 2 and
one line on stderr; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from scale_transfer.config import (
    ADAPTATIONS,
    DEFAULT_DRAWS,
    DEFAULT_TUNE,
    EXTRAPOLATIONS,
    INTERVAL_KINDS,
    LAWS,
    LIKELIHOODS,
    POOLINGS,
    TARGETS,
    TOP_DRAWS,
    TOP_TUNE,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pandas as pd

    from scale_transfer.config import SamplerConfig

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


def _choices(name: str, values: tuple[str, ...], doc: str) -> type[StrEnum]:
    """Return an option's choices as an enum built from the config's vocabulary."""
    enum = StrEnum(name, {v: v for v in values})
    enum.__doc__ = doc
    return enum


Target = _choices("Target", TARGETS, "Which points to fit.")
Pooling = _choices("Pooling", POOLINGS, "Pooling across tasks.")
Likelihood = _choices("Likelihood", LIKELIHOODS, "Residual model.")
Adaptation = _choices("Adaptation", ADAPTATIONS, "nutpie's mass-matrix adaptation.")
Law = _choices("Law", ("auto", *LAWS), "The law fitted to each task.")
Extrapolation = _choices(
    "Extrapolation",
    ("auto", *EXTRAPOLATIONS),
    "How new-model predictions beyond the data are calibrated.",
)
IntervalKind = _choices("IntervalKind", INTERVAL_KINDS, "Equal-tailed or highest-density.")


class Kind(StrEnum):
    """Prediction kind."""

    curve = "curve"
    new_model = "new-model"
    hull = "hull"


class Estimand(StrEnum):
    """Whose asymptote a summary gives."""

    auto = "auto"
    frontier = "frontier"
    own = "own"


class Centered(StrEnum):
    """Hierarchy parametrization."""

    auto = "auto"
    yes = "yes"
    no = "no"


def fail(msg: str, code: int = 2) -> None:
    """Print ``error: msg`` on stderr and exit with ``code``."""
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code)


def user_errors() -> tuple[type[BaseException], ...]:
    """Return the exceptions that are the user's to fix: one line and exit 2, no traceback."""
    from scale_transfer.data import DataError
    from scale_transfer.posterior import ModelMismatchError

    return (DataError, ModelMismatchError, FileExistsError, FileNotFoundError, ValueError)


def check_out(path: Path | None, overwrite: bool, *, folder: bool = False) -> None:
    """Refuse an output path before any work is done: existing, or not writable as asked.

    ``folder``: the path is a folder the command writes into (an existing one is fine).
    The folder that will hold the output is probed with a file of its own
    (:func:`scale_transfer.publish.check_writable`).
    """
    from scale_transfer.publish import OutputError, check_writable

    if path is None:
        return
    try:
        check_writable(path, folder=folder)
    except OutputError as err:
        fail(str(err))
    if not folder and path.exists() and not overwrite:
        fail(f"{path} exists; pass --overwrite to replace it")


def check_prob(prob: float) -> None:
    """Refuse an interval probability outside (0, 1)."""
    if not 0.0 < prob < 1.0:  # NaN fails too
        fail(f"--prob must be in (0, 1); got {prob}")


#: ``--draws``: unset, the sampler's ``draws="auto"``.
DrawsOption = Annotated[
    int | None,
    typer.Option(
        help=f"Draws per chain (default: {TOP_DRAWS} for a top fit, {DEFAULT_DRAWS} otherwise)."
    ),
]
#: ``--tune``: unset, the sampler's ``tune="auto"``.
TuneOption = Annotated[
    int | None,
    typer.Option(
        help=f"Tuning steps per chain (default: {TOP_TUNE} for a top fit, "
        f"{DEFAULT_TUNE} otherwise)."
    ),
]


def sampler_options(options: Mapping[str, Any], **fixed: Any) -> SamplerConfig:
    """Return the :class:`SamplerConfig` of a command's options; bad values refused at once.

    ``options`` is the command's ``locals()``: each name that is a ``SamplerConfig`` field
    (``draws``, ``tune``, ``chains``, ``seed``, ``sampler``, ``adaptation``, ``progress``,
    ``strict``, ``target_accept``, ...) is taken, an enum by its value; an option left
    unset (None) keeps the field's default. ``fixed`` sets the fields a command decides.
    """
    from scale_transfer.config import SamplerConfig

    fields = SamplerConfig.__dataclass_fields__
    given = {k: getattr(v, "value", v) for k, v in options.items() if k in fields}
    return SamplerConfig(**{k: v for k, v in (given | fixed).items() if v is not None})


def write_table(df, out: Path | None, overwrite: bool) -> None:  # noqa: ANN001
    """Print a table, and write it as CSV to ``out`` when given."""
    import pandas as pd

    check_out(out, overwrite)  # before printing, so that a refusal is the last line
    with pd.option_context("display.width", 160, "display.max_rows", 200):
        typer.echo(df.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if out is not None:
        write_csv(df, out, overwrite)
        typer.echo(f"wrote {out}")


def write_csv(df, out: Path, overwrite: bool) -> None:  # noqa: ANN001
    """Write a table as CSV through a private temporary file, published atomically."""
    from scale_transfer.publish import write_atomic

    write_atomic(out, lambda tmp: df.to_csv(tmp, index=False), overwrite=overwrite)


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    """Options shared by every command (``--debug`` is read by :func:`main`)."""


def zoo_or_file(path: Path, percent: bool) -> Path | pd.DataFrame:
    """Return the tidy frame of a timm folder or a benchmark CSV; any other path as it is."""
    from scale_transfer.zoo import is_benchmark_file, load_dataset

    if path.is_dir() or is_benchmark_file(path):
        if percent:
            raise ValueError("--percent is for tidy files; the zoo loaders convert percent")
        return load_dataset(path)
    return path


def parse_effects(items: list[str] | None) -> dict[str, str] | None:
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


def new_models_us_acc(values: list[float] | None, csv: Path | None) -> list[float]:
    """Return the new models' US accuracies of ``predict --kind hull``, checked."""
    import numpy as np
    import pandas as pd

    from scale_transfer.data import DataError, name_rows, read_file

    if values and csv is not None:
        raise ValueError("--kind hull: give the new models once, --models-us-acc or --models-csv")
    if not values and csv is None:
        raise ValueError("--kind hull needs the new models: --models-us-acc or --models-csv")
    if csv is not None:
        df = read_file(csv)  # names the file when it is missing, empty or unreadable
        if "us_acc" not in df.columns:
            raise DataError(f"{csv}: no column 'us_acc' (columns: {', '.join(df.columns)})")
        col = pd.to_numeric(df["us_acc"], errors="coerce")
        bad = np.flatnonzero(~col.between(0.0, 1.0).to_numpy())
        if len(bad):
            # rows named as read_tidy names them: the file's lines
            examples = ", ".join(repr(v) for v in df["us_acc"].iloc[bad[:3]])
            where = name_rows(bad, path=csv, n_rows=len(df))
            raise DataError(
                f"{csv}: column 'us_acc' is not an accuracy in [0, 1] at {where} (e.g. {examples})"
            )
        return col.tolist()
    return list(values)  # Posterior.hull_draws checks the range


def read_truth(path: Path):  # noqa: ANN202
    """Read a CSV of true parameters ('simulate --truth'), checked."""
    from scale_transfer.data import DataError, read_file

    df = read_file(path)  # names the file when it is missing, empty or unreadable
    missing = [c for c in ("task",) if c not in df.columns]
    if "asymptote" not in df.columns and "e_ir" not in df.columns:
        missing.append("asymptote")
    if missing:
        raise DataError(
            f"{path}: not a truth file (no column {', '.join(map(repr, missing))}; "
            f"columns: {', '.join(map(str, df.columns))}); write one with 'simulate --truth'"
        )
    return df


def words(values: list[str] | None) -> list[str]:
    """Split repeated and comma- or space-separated option values: lsq,bayes -> [lsq, bayes]."""
    return [w for v in values or [] for w in v.replace(",", " ").split()]


def sigterm_exits() -> None:
    """Make SIGTERM raise ``SystemExit`` (exit status 143), so that clean-up code runs.

    Python's default is to die at once; a study then left its worker processes running.
    Finished fits are on disk either way; rerun with the same ``--out`` to resume.
    """
    import signal

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
