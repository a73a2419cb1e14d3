"""What the zoo loaders share: their result type, paths, and CSV reading with clear errors."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from scale_transfer.data import DataError, name_rows

__all__ = [
    "ZooData",
    "numeric_column",
    "parse_params",
    "read_csv",
    "resolve_path",
    "unjoined_frame",
]

_UNJOINED_COLUMNS = ["file", "model", "task", "reason", "detail"]


@dataclass
class ZooData:
    """A model zoo as tidy data, with a record of what did not make it in.

    Attributes
    ----------
    data : pandas.DataFrame
        Tidy frame as returned by :func:`scale_transfer.data.read_tidy` (columns ``model,
        task, us_acc, ds_acc, setting`` and optional and loader-specific columns).
    unjoined : pandas.DataFrame
        One row per left-out item, columns ``file`` (where it came from), ``model``,
        ``task`` (the downstream task concerned, as the file names it; ``None`` where it
        concerns all tasks),
        ``reason`` (a short fixed text, so that reasons can be counted) and ``detail``
        (the specifics: row, values, range).
    source : str
        The folder or file the data were read from.
    """

    data: pd.DataFrame
    unjoined: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=_UNJOINED_COLUMNS))
    source: str = ""

    def __str__(self) -> str:
        df = self.data
        lines = [
            f"{self.source or 'zoo'}: {len(df)} rows, {df['model'].nunique()} models, "
            f"{df['task'].nunique()} tasks, setting(s): {', '.join(map(str, df.setting.unique()))}"
        ]
        for (setting, task), n in df.groupby(["setting", "task"], sort=False).size().items():
            lines.append(f"  {task} ({setting}): {n} points")
        lines.append(f"unjoined: {len(self.unjoined)}")
        if len(self.unjoined):
            counts = self.unjoined.groupby(["file", "reason"], sort=False).size()
            counts = counts.sort_values(ascending=False)
            for (file, reason), n in counts.head(6).items():
                lines.append(f"  {n} x {file}: {reason}")
            if len(counts) > 6:
                lines.append(f"  ... and {len(counts) - 6} more reasons")
        return "\n".join(lines)


def resolve_path(path: str | os.PathLike | None, env: str, default: Path) -> Path:
    """Return the explicit path, else the environment variable's, else the default."""
    if path is not None:
        return Path(path)
    if os.environ.get(env):
        return Path(os.environ[env])
    return (Path.cwd() / default).resolve()


def unjoined_frame(rows: list[dict]) -> pd.DataFrame:
    """Return the table of rows that did not join, with its fixed columns."""
    return pd.DataFrame(rows, columns=_UNJOINED_COLUMNS)


def read_csv(path: Path, required: Iterable[str], hint: str = "") -> pd.DataFrame:
    """Read a CSV, raising :class:`DataError` naming the file if absent or malformed."""
    if not path.is_file():
        raise DataError(f"{path}: no such file{hint}")
    try:
        df = pd.read_csv(path, dtype={"param_count": str})
    except pd.errors.EmptyDataError as err:
        raise DataError(f"{path}: the file is empty") from err
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as err:
        raise DataError(f"{path}: cannot be read as CSV: {err}") from err
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(df.columns)}"
        )
    return df


def numeric_column(df: pd.DataFrame, col: str, path: Path, lo: float, hi: float) -> pd.Series:
    """Column as floats; DataError for text or values outside [lo, hi]; NaN stays NaN."""
    raw = df[col]
    num = pd.to_numeric(raw, errors="coerce")
    bad = df.index[num.isna() & raw.notna()]
    if len(bad):
        raise DataError(
            f"{path}: column {col!r} has non-numeric values at {name_rows(bad, path=path)} "
            f"(e.g. {str(raw.loc[bad[0]])!r})"
        )
    out = df.index[(num < lo) | (num > hi)]
    if len(out):
        raise DataError(
            f"{path}: column {col!r} is outside [{lo:g}, {hi:g}] at {name_rows(out, path=path)} "
            f"(e.g. {num.loc[out[0]]:g})"
        )
    return num.astype(float)


def parse_params(raw: pd.Series) -> pd.Series:
    """Parameter counts in millions, possibly with thousands separators -> counts."""
    text = raw.astype("string").str.replace(",", "", regex=False).str.strip()
    return pd.to_numeric(text, errors="coerce").astype(float) * 1e6
