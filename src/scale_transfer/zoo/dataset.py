"""One name for any data set: a tidy file, a zoo's folder or file, or a named data set."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from scale_transfer.data import read_tidy

__all__ = ["is_benchmark_file", "load_dataset"]


def is_benchmark_file(path: Path) -> bool:
    """Whether a CSV has the scaling benchmark's columns (``Task``, ``Seen Examples``, ...)."""
    if not path.is_file() or path.suffix.lower() != ".csv":
        return False
    try:
        header = pd.read_csv(path, nrows=0).columns
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError):
        return False
    return {"Task", "Model", "Seen Examples", "Loss"} <= {str(c).strip() for c in header}


def load_dataset(name: str | os.PathLike, *, percent: bool = False) -> pd.DataFrame:
    """Return tidy data for a file path, or for ``timm``, ``benchmark`` or ``simulated``.

    ``timm`` is :func:`scale_transfer.zoo.load_timm`, ``benchmark``
    :func:`scale_transfer.zoo.load_scaling_benchmark` (with a ``run`` column, the training
    run of each checkpoint, and ``attrs["effects"] = ("run",)``), ``simulated``
    ``simulate("jft-25shot", 3000, 0)``; a folder is read as timm's ``results/`` folder and
    a CSV with the benchmark's columns as the benchmark; anything else is read with
    :func:`scale_transfer.data.read_tidy` (``percent``: its accuracies are in percent).
    """
    key = str(name)
    if key == "timm" or Path(key).is_dir():
        from scale_transfer.zoo.timm import load_timm

        return load_timm(None if key == "timm" else key).data
    if key == "benchmark" or is_benchmark_file(Path(key)):
        from scale_transfer.zoo.benchmark import load_scaling_benchmark

        df = load_scaling_benchmark(None if key == "benchmark" else key).data
        df["run"] = df["model"].str.split("@").str[0]  # the training run of a checkpoint
        df.attrs["effects"] = ("run",)
        return df
    if key == "simulated":
        from scale_transfer.simulate import simulate

        return simulate("jft-25shot", 3000, 0).data
    return read_tidy(name, percent=percent)
