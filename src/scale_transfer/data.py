"""The tidy data schema: reading and validation with errors that name file, column and row.

One row per (model, task, setting). Required columns:

``model``
    Name of the pre-trained model.
``task``
    Downstream task.
``us_acc``, ``ds_acc``
    Upstream and downstream accuracy, fractions in [0, 1].

Optional columns: ``upstream`` (upstream dataset), ``shots``, ``params`` (parameter count),
``family``. ``upstream`` and ``shots`` together form the *setting*.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REQUIRED = ("model", "task", "us_acc", "ds_acc")
OPTIONAL = ("upstream", "shots", "params", "family")
ACCURACIES = ("us_acc", "ds_acc")
SETTING_COLUMNS = ("upstream", "shots")
#: Fewest points per task (and setting) that the law (3 parameters) can be fitted to.
MIN_POINTS = 4

__all__ = [
    "DataError",
    "MIN_POINTS",
    "ValidationReport",
    "read_tidy",
    "setting_of",
    "validate",
]


class DataError(ValueError):
    """Bad input data; the message names the source, the column and the rows."""


def _csv_lines(path: str | os.PathLike) -> list[int] | None:
    """Return the file line (1-based; the header is line 1) on which each data row starts.

    Counted as :func:`pandas.read_csv` reads the file by default: blank and whitespace-only
    lines are skipped, a quoted cell may span lines. ``None`` when the file is not a CSV
    that can be read again.
    """
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq") or not path.is_file():
        return None
    st = path.stat()
    return _csv_lines_of(str(path.resolve()), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=8)
def _csv_lines_of(path: str, mtime_ns: int, size: int) -> list[int] | None:
    """:func:`_csv_lines` of one version of a file (cached: a loader may name many rows)."""
    import csv

    starts: list[int] = []
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as fh:
            reader = csv.reader(fh)
            prev = 0
            for record in reader:
                if record and not (len(record) == 1 and not record[0].strip()):
                    starts.append(prev + 1)
                prev = reader.line_num
    except (OSError, csv.Error):
        return None
    return starts[1:]  # the first record is the header


def name_rows(
    index: Sequence[int],
    limit: int = 8,
    *,
    path: str | os.PathLike | None = None,
    labels: Sequence | None = None,
    n_rows: int | None = None,
) -> str:
    """Name data rows (positions in the table read) as the user sees them.

    In a CSV file (``path``): the file's line numbers, header on line 1, so an editor's
    "go to line" finds them. In a DataFrame (``labels``, its index): the index labels, as
    ``df.loc`` takes them. Otherwise 1-based data rows, header excluded; so also when the
    file's rows, counted again, are not the ``n_rows`` that were read.
    """
    pos = [int(i) for i in index]
    lines = _csv_lines(path) if path is not None else None
    if lines is not None and n_rows is not None and len(lines) != n_rows:
        lines = None
    if lines is not None and all(i < len(lines) for i in pos):
        shown, word = [lines[i] for i in pos], ("line", "lines")
    elif labels is not None:
        shown, word = [labels[i] for i in pos], ("row with index", "rows with index")
    else:
        shown, word = [i + 1 for i in pos], ("row", "rows")
    head = ", ".join(str(r) for r in shown[:limit])
    more = f" and {len(shown) - limit} more" if len(shown) > limit else ""
    return f"{word[len(shown) != 1]} {head}{more}"


def looks_like_percent(v: pd.Series) -> bool:
    """Return whether accuracies look like percent: most above 1, none above 100.

    A few values above 1 are typos in fractions, which dividing by 100 would turn into
    nonsense for every other row.
    """
    return bool(((v >= 0) & (v <= 100)).all() and (v > 1).mean() > 0.5)


def _where(source: str) -> str:
    return f"{source}: " if source else ""


@dataclass
class ValidationReport:
    """What :func:`validate` found in a tidy frame."""

    source: str
    n_rows: int
    tasks: dict[str, int] = field(default_factory=dict)
    settings: list[str] = field(default_factory=list)
    us_range: tuple[float, float] = (np.nan, np.nan)
    ds_range: tuple[float, float] = (np.nan, np.nan)

    def __str__(self) -> str:
        lines = [
            f"{self.source or 'data'}: {self.n_rows} rows, {len(self.tasks)} tasks, "
            f"{len(self.settings)} setting(s): {', '.join(self.settings)}",
            f"  us_acc in [{self.us_range[0]:.4f}, {self.us_range[1]:.4f}], "
            f"ds_acc in [{self.ds_range[0]:.4f}, {self.ds_range[1]:.4f}]",
        ]
        lines += [f"  {task}: {n} points" for task, n in self.tasks.items()]
        return "\n".join(lines)


def setting_of(df: pd.DataFrame) -> pd.Series:
    """Return the setting label of each row, e.g. ``"jft-25shot"``; ``"default"`` if none.

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy frame, optionally with ``upstream`` and ``shots`` columns.

    Returns
    -------
    pandas.Series
        One string per row.
    """
    if "setting" in df.columns:
        return df["setting"].astype(str)
    parts = []
    if "upstream" in df.columns:
        parts.append(df["upstream"].astype(str))
    if "shots" in df.columns:
        shots = df["shots"]
        parts.append(shots.map(lambda s: f"{int(s)}shot" if pd.notna(s) else "na"))
    if not parts:
        return pd.Series("default", index=df.index, dtype=object)
    out = parts[0]
    for p in parts[1:]:
        out = out + "-" + p
    return out.astype(object)


def read_file(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file; a missing, empty or unreadable one raises DataError."""
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError as err:
        raise DataError(f"{path}: the file is empty") from err
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: {_not_utf8(path)}") from err
    except (pd.errors.ParserError, OSError, ValueError) as err:
        sep = _other_delimiter(path)
        if sep is not None:
            raise DataError(f"{path}: {_delimiter_message(sep)}") from err
        raise DataError(f"{path}: cannot be read as {suffix or 'CSV'}: {err}") from err
    sep = _other_delimiter(path) if len(df.columns) == 1 else None
    if sep is not None:
        raise DataError(f"{path}: {_delimiter_message(sep)} (one column read: {df.columns[0]!r})")
    return df


#: Delimiters other than the comma that a CSV file may use, by name.
_DELIMITERS = {";": "semicolons (;)", "\t": "tabs", "|": "vertical bars (|)"}


def _other_delimiter(path: Path) -> str | None:
    """Return the delimiter of a file whose header has no comma but another delimiter."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        header = fh.readline()
    if "," in header:
        return None
    return next((d for d in _DELIMITERS if d in header), None)


def _delimiter_message(sep: str) -> str:
    return (
        f"the columns are separated by {_DELIMITERS[sep]}, not commas; save it as "
        "comma-separated CSV (or read it with pandas.read_csv(path, sep=...) and pass the frame)"
    )


def _not_utf8(path: Path) -> str:
    """Say where a file stops being UTF-8 text, and what it may be instead."""
    raw = path.read_bytes()
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "the file is UTF-16 text, not UTF-8; save it as UTF-8"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        return (
            f"the file is not UTF-8 text (byte 0x{raw[err.start]:02x} on line {line}; Latin-1 "
            "or Windows-1252, as some spreadsheets save CSV?); save it as UTF-8, e.g. "
            f"iconv -f latin1 -t utf-8 {path.name} > utf8-{path.name}"
        )
    return "the file is not UTF-8 text; save it as UTF-8"


def unwrap(data: Any) -> Any:
    """Return a loader's frame (``ZooData.data`` of :func:`~scale_transfer.load_timm`, ...)."""
    inner = getattr(data, "data", None)
    if not isinstance(data, pd.DataFrame) and isinstance(inner, pd.DataFrame):
        return inner
    return data


def read_tidy(
    data: str | os.PathLike | pd.DataFrame,
    *,
    percent: bool = False,
    min_points: int = MIN_POINTS,
) -> pd.DataFrame:
    """Read and validate tidy data from CSV, Parquet or a DataFrame.

    Parameters
    ----------
    data : str, path or pandas.DataFrame
        The data. Files ending in ``.parquet`` are read as Parquet, others as CSV. A
        loader's result (``load_timm(...)``, ``load_scaling_benchmark(...)``) stands for
        its ``.data``.
    percent : bool, default False
        Accuracies are given in percent: divide them by 100.
    min_points : int
        Fewest points a task (and setting) needs.

    Returns
    -------
    pandas.DataFrame
        A validated copy with columns ``model, task, us_acc, ds_acc, setting`` and any
        optional columns present, ``us_acc`` and ``ds_acc`` as float fractions.

    Raises
    ------
    DataError
        With a message naming the source, the column and the rows at fault.
    """
    data = unwrap(data)
    if isinstance(data, pd.DataFrame):
        source, df = "", data.copy()
    else:
        source = str(data)
        df = read_file(Path(data))
    return _check(df, source, percent=percent, min_points=min_points)


def _check(df: pd.DataFrame, source: str, *, percent: bool, min_points: int) -> pd.DataFrame:
    where = _where(source)
    labels = None if source else df.index  # the caller's labels (reset below)
    path, n_rows = source or None, len(df)

    def rows(index: Sequence[int]) -> str:  # this table's rows, named as its user sees them
        return name_rows(index, path=path, labels=labels, n_rows=n_rows)

    if len(df) == 0:
        raise DataError(f"{where}no data rows (the table is empty)")
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise DataError(
            f"{where}missing column(s) {', '.join(missing)}; found {', '.join(df.columns)}. "
            f"Required: {', '.join(REQUIRED)}"
        )
    df = df.reset_index(drop=True)
    for col in ("model", "task"):
        bad = df.index[df[col].isna() | (df[col].astype(str).str.strip() == "")]
        if len(bad):
            raise DataError(f"{where}column {col!r} is empty at {rows(bad)}")
        df[col] = df[col].astype(str).str.strip()
    df = _check_accuracies(df, where, rows, percent=percent)
    df = _check_optional(df, where, rows)
    df = _check_keys(df, where, rows, min_points=min_points)
    cols = [*REQUIRED, "setting"] + [c for c in OPTIONAL if c in df.columns]
    extra = [c for c in df.columns if c not in cols]
    return df[cols + extra]


def _check_accuracies(
    df: pd.DataFrame, where: str, rows: Callable[[Sequence[int]], str], *, percent: bool
) -> pd.DataFrame:
    """Check that both accuracies are numbers in [0, 1] (percent divided by 100 if asked)."""
    for col in ACCURACIES:
        raw = df[col]
        num = pd.to_numeric(raw, errors="coerce")
        nonnum = df.index[num.isna() & raw.notna()]
        if len(nonnum):
            examples = ", ".join(repr(str(raw.iloc[i])) for i in nonnum[:3])
            raise DataError(
                f"{where}column {col!r} has non-numeric values at {rows(nonnum)} (e.g. {examples})"
            )
        nan = df.index[num.isna()]
        if len(nan):
            raise DataError(f"{where}column {col!r} is missing (NaN) at {rows(nan)}")
        df[col] = num.astype(float)
    if percent:
        if all(df[col].max() <= 1.0 for col in ACCURACIES):
            raise DataError(
                f"{where}percent given, but every value of {' and '.join(map(repr, ACCURACIES))} "
                "is at most 1: they look like fractions already; drop --percent (percent=False)"
            )
        for col in ACCURACIES:
            df[col] = df[col] / 100.0
    for col in ACCURACIES:
        v = df[col]
        out = df.index[(v < 0) | (v > 1)]
        if len(out):
            hint = ""
            if not percent and looks_like_percent(v):
                hint = " They look like percent: pass --percent (percent=True) to divide by 100."
            raise DataError(
                f"{where}column {col!r} is outside [0, 1] at {rows(out)} "
                f"(e.g. {v.iloc[out[0]]:g}).{hint}"
            )
    return df


def _check_optional(
    df: pd.DataFrame, where: str, rows: Callable[[Sequence[int]], str]
) -> pd.DataFrame:
    """Check the optional columns: numeric params and shots, no empty setting or upstream."""
    if "params" in df.columns:
        raw = df["params"]
        p = raw
        if not pd.api.types.is_numeric_dtype(p):  # "1,000,000" is a number; "big" is not
            p = pd.to_numeric(p.astype(str).str.replace(",", ""), errors="coerce")
        p = pd.to_numeric(p, errors="coerce")
        blank = raw.isna() | (raw.astype(str).str.strip() == "")
        bad = df.index[p.isna() & ~blank]
        if len(bad):
            examples = ", ".join(repr(str(raw.iloc[i])) for i in bad[:3])
            raise DataError(
                f"{where}column 'params' is not a number at {rows(bad)} (e.g. {examples}); "
                "leave the cell empty where the parameter count is unknown"
            )
        df["params"] = p
    if "shots" in df.columns:
        s = pd.to_numeric(df["shots"], errors="coerce")
        bad = df.index[s.isna() & df["shots"].notna()]
        if len(bad):
            raise DataError(f"{where}column 'shots' is not a number at {rows(bad)}")
        bad = df.index[s.notna() & ((s % 1 != 0) | (s < 0))]
        if len(bad):
            raise DataError(
                f"{where}column 'shots' is not a whole number of shots at {rows(bad)} "
                f"(e.g. {s.iloc[bad[0]]:g})"
            )
        df["shots"] = s
    for col in ("setting", "upstream"):
        if col in df.columns:
            bad = df.index[df[col].isna() | (df[col].astype(str).str.strip() == "")]
            if len(bad):
                raise DataError(
                    f"{where}column {col!r} is empty at {rows(bad)}; fill it in, or drop "
                    "the column if the data hold one setting"
                )
    return df


def _check_keys(
    df: pd.DataFrame, where: str, rows: Callable[[Sequence[int]], str], *, min_points: int
) -> pd.DataFrame:
    """Check for one row per (model, task, setting) and enough points per task."""
    df["setting"] = setting_of(df)
    key = ["model", "task", "setting"]
    dup = df.index[df.duplicated(subset=key, keep=False)]
    if len(dup):
        first = df.loc[dup[0], key].tolist()
        raise DataError(
            f"{where}duplicate (model, task, setting) at {rows(dup)} "
            f"(e.g. model={first[0]!r}, task={first[1]!r}, setting={first[2]!r}); "
            "each model may appear once per task and setting"
        )
    counts = df.groupby(["setting", "task"], sort=False).size()
    few = counts[counts < min_points]
    if len(few):
        names = ", ".join(f"{t} ({s}): {n}" for (s, t), n in few.items())
        raise DataError(
            f"{where}column 'task': too few points to fit the law (need >= {min_points}): {names}"
        )
    return df


def validate(data: str | os.PathLike | pd.DataFrame, *, percent: bool = False) -> ValidationReport:
    """Validate tidy data and summarise it.

    Parameters
    ----------
    data : str, path or pandas.DataFrame
        As for :func:`read_tidy`.
    percent : bool, default False
        Accuracies are given in percent.

    Returns
    -------
    ValidationReport

    Raises
    ------
    DataError
        If the data are bad.
    """
    df = read_tidy(data, percent=percent)
    source = "" if isinstance(unwrap(data), pd.DataFrame) else str(data)
    return ValidationReport(
        source=source,
        n_rows=len(df),
        tasks={str(k): int(v) for k, v in df.groupby("task", sort=False).size().items()},
        settings=[str(s) for s in df["setting"].unique()],
        us_range=(float(df.us_acc.min()), float(df.us_acc.max())),
        ds_range=(float(df.ds_acc.min()), float(df.ds_acc.max())),
    )
