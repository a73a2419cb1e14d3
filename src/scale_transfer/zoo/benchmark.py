"""The JFT few-shot scaling benchmark as tidy data: every run checkpoint a model."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from scale_transfer.data import DataError, name_rows, read_tidy
from scale_transfer.zoo.common import (
    ZooData,
    numeric_column,
    read_csv,
    resolve_path,
    unjoined_frame,
)

__all__ = ["BENCHMARK_ENV", "load_scaling_benchmark"]

#: Environment variable naming ``benchmark.vision.csv``.
BENCHMARK_ENV = "SCALE_TRANSFER_BENCHMARK"
_BENCHMARK_DEFAULT = Path("..", "shared", "data", "scaling-benchmark", "benchmark.vision.csv")

#: Benchmark dataset codes -> task names.
_BENCHMARK_DATASETS = {"inet": "imagenet", "bird": "bird", "c": "cifar100", "cal": "caltech101"}
#: Parameter counts of the benchmark models as the benchmark's README states them.
_BENCHMARK_PARAMS = {
    "ViT/S/16": 32e6,
    "ViT/B/16": 110e6,
    "BiT/50/1": 61e6,
    "BiT/101/3": 494e6,
    "MiX/B/16": 73e6,
    "MiX/L/16": 226e6,
}
_BENCHMARK_UPSTREAM = "jft"


def _shots_filter(shots: int | Iterable[int] | None) -> set[int] | None:
    if shots is None:
        return None
    if isinstance(shots, (int, np.integer)):
        return {int(shots)}
    return {int(s) for s in shots}


def _join_run(
    run: str, d: pd.DataFrame, up: pd.DataFrame, name: str, upstream_task: str,
    unjoined: list[dict],
) -> pd.DataFrame | None:  # fmt: skip
    """Give one run's downstream checkpoints their upstream accuracy; list those left out.

    The upstream error is interpolated in log(seen examples), never extrapolated.
    """
    u = up[up["Model"] == run].sort_values("seen")
    keys = run + "@" + d["seen"].map(lambda s: f"{s:.0f}")
    if len(u) == 0:
        unjoined += [
            {"file": name, "model": k, "task": t,
             "reason": "no upstream points for this run", "detail": upstream_task}
            for k, t in zip(keys, d["Task"], strict=True)
        ]  # fmt: skip
        return None
    lo, hi = float(u["seen"].iloc[0]), float(u["seen"].iloc[-1])
    exact = d["seen"].map(dict(zip(u["seen"], u["err"], strict=True)))
    inside = (d["seen"] >= lo) & (d["seen"] <= hi)
    interp = np.interp(np.log(d["seen"]), np.log(u["seen"]), u["err"])
    us_err = exact.where(exact.notna(), pd.Series(interp, index=d.index)).where(inside)
    reason = "outside the run's upstream range; not extrapolated"
    detail = f"{upstream_task} of {run} spans [{lo:.0f}, {hi:.0f}] seen examples"
    unjoined += [
        {"file": name, "model": k, "task": t, "reason": reason, "detail": detail}
        for k, t in zip(keys[~inside], d.loc[~inside, "Task"], strict=True)
    ]
    j = d[inside]
    return pd.DataFrame(
        {
            "model": keys[inside],
            "task": j["dataset"].map(lambda c: _BENCHMARK_DATASETS.get(c, c)),
            "us_acc": 1.0 - us_err[inside],
            "ds_acc": 1.0 - j["err"],
            "upstream": _BENCHMARK_UPSTREAM,
            "shots": j["shots"],
            "params": _BENCHMARK_PARAMS.get(str(run), np.nan),
            "family": str(run).split("/")[0].lower(),
            "benchmark_task": j["Task"],
            "seen_examples": j["seen"],
            "us_interpolated": exact[inside].isna(),
            "training": j["training"],
        }
    )


def _read_benchmark(src: Path, hint: str) -> tuple[pd.DataFrame, list[dict]]:
    """Read the benchmark's image-classification rows; drop (and list) incomplete ones."""
    df = read_csv(src, ["Task", "Model", "Seen Examples", "Loss"], hint).reset_index(drop=True)
    if "Domain" in df.columns:
        # keep the row labels: they are positions in the file, which errors name as lines
        df = df[df["Domain"].astype(str).str.strip() == "IC"]
        if len(df) == 0:
            raise DataError(f"{src}: column 'Domain' has no image classification ('IC') rows")
    name = src.name
    loss = numeric_column(df, "Loss", src, 0.0, 1.0)
    seen = numeric_column(df, "Seen Examples", src, 0.0, np.inf)
    task = df["Task"].astype("string").str.strip()
    model = df["Model"].astype("string").str.strip()
    missing = task.isna() | model.isna() | loss.isna() | (seen.isna() | (seen <= 0))
    dropped = [
        {
            "file": name,
            "model": None if pd.isna(model[i]) else str(model[i]),
            "task": None if pd.isna(task[i]) else str(task[i]),
            "reason": "missing values; row dropped",
            "detail": f"{name_rows([i], path=src)}: missing or non-positive values",
        }
        for i in df.index[missing]
    ]
    keep = ~missing.to_numpy()
    b = pd.DataFrame({"Task": task, "Model": model, "seen": seen, "err": loss})[keep]
    b["training"] = (
        pd.to_numeric(df["Training"], errors="coerce")[keep].eq(1)
        if "Training" in df.columns
        else np.nan
    )
    parts = b["Task"].str.extract(r"^(?P<dataset>.+)_(?P<shots>\d+)$")
    bad = b.index[parts["dataset"].isna()]
    if len(bad):
        raise DataError(
            f"{src}: column 'Task' is not '<dataset>_<shots>' at {name_rows(bad, path=src)} "
            f"(e.g. {b.at[bad[0], 'Task']!r})"
        )
    b["dataset"] = parts["dataset"].astype(str)
    b["shots"] = parts["shots"].astype(int)
    return b, dropped


def load_scaling_benchmark(
    path: str | os.PathLike | None = None,
    *,
    upstream_task: str = "inet_25",
    shots: int | Iterable[int] | None = None,
) -> ZooData:
    """Load the JFT few-shot scaling benchmark as tidy data.

    (Longer than 100 lines: most of it is the documentation of the columns it returns.)

    ``benchmark.vision.csv`` (Alabdulmohsin, Neyshabur and Zhai 2022) holds the few-shot
    error (``Loss``, a fraction) of six JFT-300M pre-training runs (``Model``: ViT, BiT and
    MLP-Mixer) at many checkpoints (``Seen Examples``) on the tasks ``<dataset>_<shots>``.
    Every (Model, Seen Examples) checkpoint of a downstream task becomes one model of the
    tidy frame; its upstream accuracy is ``1 - error`` of ``upstream_task`` for the same
    run at the same number of seen examples.

    The tasks are evaluated at slightly different checkpoints, so the upstream error is
    used directly where the upstream task has that exact number of seen examples, and
    otherwise linearly interpolated in log(seen examples) between the two nearest
    upstream checkpoints of the same run. There is no extrapolation: checkpoints before
    the first or after the last upstream checkpoint of their run are left out and listed
    in ``unjoined``.

    Parameters
    ----------
    path : str or path, optional
        The CSV. Default: ``$SCALE_TRANSFER_BENCHMARK`` if set, else
        ``../shared/data/scaling-benchmark/benchmark.vision.csv`` relative to the working
        directory.
    upstream_task : str, default "inet_25"
        Benchmark task that gives the upstream error. It is not a downstream task.
    shots : int or iterable of int, optional
        Keep only downstream tasks with these shots (5, 10, 25); default all.

    Returns
    -------
    ZooData
        ``data`` has one row per (checkpoint, downstream task) with columns

        - ``model``: ``f"{Model}@{seen examples}"``, e.g. ``"ViT/B/16@1626112000"``.
        - ``task``: dataset name, ``imagenet``, ``bird``, ``cifar100``, ``caltech101``.
        - ``upstream``: ``"jft"``; ``shots``: 5, 10 or 25. The setting is therefore
          ``jft-5shot``, ``jft-10shot`` or ``jft-25shot``, as in Abnar et al. (2022): the
          law is fitted per (setting, task). With the default upstream ``inet_25``, the
          ``imagenet`` task appears in the 5- and 10-shot settings only.
        - ``params``: as stated in the benchmark's README (e.g. ViT/B/16 110M);
          ``family``: ``vit``, ``bit`` or ``mix`` (the Model prefix, lower case).
        - ``benchmark_task``: the original task (``"bird_5"``); ``seen_examples``;
          ``us_interpolated``: whether ``us_acc`` was interpolated.
        - ``training``: the benchmark's ``Training`` flag as bool. Its README defines it
          as 1 for points "used for training and 0 if used for testing (extrapolation)":
          for every run and task all training points come before all test points, so
          False marks the late checkpoints held out to test extrapolation of a learning
          curve. It does not mean "still training"; all points are mid-training
          checkpoints of the same runs.

        Checkpoints of one run are not independent models: they share an architecture
        and a training trajectory.

    Raises
    ------
    DataError
        If the file is missing or malformed, the upstream task is not in it, or no
        downstream task is left; the message names the file.
    """
    src = resolve_path(path, BENCHMARK_ENV, _BENCHMARK_DEFAULT)
    hint = (
        " (give the benchmark CSV's path: the data argument, or path=... in Python; "
        f"or set {BENCHMARK_ENV})"
    )
    b, dropped = _read_benchmark(src, hint)
    name = src.name
    dup = b.index[b.duplicated(["Task", "Model", "seen"], keep=False)]
    if len(dup):
        where = name_rows(dup, path=src)
        raise DataError(f"{src}: duplicate (Task, Model, Seen Examples) at {where}")
    tasks = sorted(b["Task"].unique())
    if upstream_task not in tasks:
        raise DataError(
            f"{src}: column 'Task' has no upstream task {upstream_task!r}; found {', '.join(tasks)}"
        )
    up = b[b["Task"] == upstream_task]
    ds = b[b["Task"] != upstream_task]
    wanted = _shots_filter(shots)
    if wanted is not None:
        ds = ds[ds["shots"].isin(wanted)]
    if len(ds) == 0:
        raise DataError(
            f"{src}: no downstream task left besides {upstream_task!r}"
            + (f" with shots {sorted(wanted)}" if wanted is not None else "")
        )

    frames = []
    unjoined: list[dict] = []
    for run, d in ds.groupby("Model", sort=False):
        frame = _join_run(str(run), d, up, name, upstream_task, unjoined)
        if frame is not None:
            frames.append(frame)
    if not frames or sum(len(f) for f in frames) == 0:
        raise DataError(f"{src}: no downstream point lies within its run's {upstream_task} range")
    out = pd.concat(frames, ignore_index=True)
    data = read_tidy(out, min_points=1)
    return ZooData(data=data, unjoined=unjoined_frame(dropped + unjoined), source=str(src))
