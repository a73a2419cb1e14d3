"""Public model zoos as tidy data: timm's ImageNet results and the JFT scaling benchmark.

Two loaders turn public result tables into the tidy frame of :mod:`scale_transfer.data`:

:func:`load_timm`
    pytorch-image-models (timm) ``results/`` folder: ImageNet-1k top-1 as the upstream
    accuracy, five shifted test sets as downstream tasks, one model per released weight and
    input resolution.
:func:`load_scaling_benchmark`
    ``benchmark.vision.csv`` of Alabdulmohsin, Neyshabur and Zhai (2022): few-shot error of
    JFT-pretrained ViT, BiT and MLP-Mixer checkpoints during pre-training; every
    (architecture, seen examples) checkpoint is a model.

Both return a :class:`ZooData`: the validated tidy frame and a table of what did not join
and why. Both read the files from any folder or path a user gives; the defaults are the
project's shared copies (``../shared/data/...`` from the working directory), which the
environment variables ``SCALE_TRANSFER_TIMM`` and ``SCALE_TRANSFER_BENCHMARK`` override.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from scale_transfer.data import DataError, name_rows, read_tidy

__all__ = [
    "BENCHMARK_ENV",
    "TIMM_ENV",
    "TIMM_TASKS",
    "ZooData",
    "load_scaling_benchmark",
    "load_timm",
]

#: Environment variable naming the timm ``results/`` folder.
TIMM_ENV = "SCALE_TRANSFER_TIMM"
#: Environment variable naming ``benchmark.vision.csv``.
BENCHMARK_ENV = "SCALE_TRANSFER_BENCHMARK"
_TIMM_DEFAULT = Path("..", "shared", "data", "timm-results")
_BENCHMARK_DEFAULT = Path("..", "shared", "data", "scaling-benchmark", "benchmark.vision.csv")

#: Downstream task -> (upstream file, downstream file) in the timm ``results/`` folder.
#: ImageNet-R and ImageNet-A cover 200 classes; their upstream is the ImageNet validation
#: set restricted to the same 200 classes ("clean"), as timm itself compares them.
TIMM_TASKS: dict[str, tuple[str, str]] = {
    "imagenetv2": ("results-imagenet.csv", "results-imagenetv2-matched-frequency.csv"),
    "sketch": ("results-imagenet.csv", "results-sketch.csv"),
    "real": ("results-imagenet.csv", "results-imagenet-real.csv"),
    "imagenet-r": ("results-imagenet-r-clean.csv", "results-imagenet-r.csv"),
    "imagenet-a": ("results-imagenet-a-clean.csv", "results-imagenet-a.csv"),
}
_TIMM_METADATA = "model_metadata-in1k.csv"
_TIMM_UPSTREAM = "in1k"

#: Tokens of a timm weights tag (text after the ".") that name pre-training data beyond
#: ImageNet-1k. ``ssld`` is Baidu's semi-supervised label distillation, which mines
#: unlabelled ImageNet-22k images; ``clip``/``openai`` are image-text pre-training.
_EXTRA_DATA_TOKENS = frozenset(
    {
        "in12k", "in21k", "in22k", "jft", "ig1b", "yfcc100m", "laion2b", "laiona", "clip",
        "openai", "webli", "m30m", "m38m", "seer", "swag", "ssld",
    }
)  # fmt: skip
#: ``pretrain`` values of ``model_metadata-in1k.csv`` that use ImageNet-1k only
#: (plain, distilled from an in1k teacher, AdvProp, adversarial training). All others
#: (in21k, in21k-selfsl, jft300m-ns, ig1b-wsl, ig1b-swsl, yfc-semisl) add data.
_IN1K_PRETRAIN = frozenset({"in1k", "in1k-dist", "in1k-ap", "in1k-adv"})
#: Leading qualifiers of timm architecture names that say who ported the weights, not the
#: architecture: ``tf_efficientnet_b0`` is an EfficientNet.
_NAME_QUALIFIERS = ("tf_", "legacy_", "dm_", "gluon_", "tv_")

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


def _resolve(path: str | os.PathLike | None, env: str, default: Path) -> Path:
    """Return the explicit path, else the environment variable's, else the default."""
    if path is not None:
        return Path(path)
    if os.environ.get(env):
        return Path(os.environ[env])
    return (Path.cwd() / default).resolve()


def _unjoined(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=_UNJOINED_COLUMNS)


def _read_csv(path: Path, required: Iterable[str], hint: str = "") -> pd.DataFrame:
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


def _numeric(df: pd.DataFrame, col: str, path: Path, lo: float, hi: float) -> pd.Series:
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


def _parse_params(raw: pd.Series) -> pd.Series:
    """Parameter counts in millions, possibly with thousands separators -> counts."""
    text = raw.astype("string").str.replace(",", "", regex=False).str.strip()
    return pd.to_numeric(text, errors="coerce").astype(float) * 1e6


def _timm_family(arch: str) -> str:
    """Coarse family of a timm architecture name.

    Port qualifiers (``tf_``, ``legacy_``, ...) are dropped, then the leading letters are
    kept, with a version suffix ``v<digits>`` when there is one: ``vit_base_patch16_224`` ->
    ``vit``, ``resnet50d`` -> ``resnet``, ``tf_efficientnet_b0`` -> ``efficientnet``,
    ``mobilenetv3_large_100`` -> ``mobilenetv3``, ``convnextv2_atto`` -> ``convnextv2``.
    """
    name = arch.lower()
    for q in _NAME_QUALIFIERS:
        if name.startswith(q):
            name = name[len(q) :]
            break
    m = re.match(r"[a-z]+v\d+|[a-z]+", name)
    return m.group(0) if m else name


def _extra_data_tag(tag: str) -> bool:
    return bool(_EXTRA_DATA_TOKENS & set(re.split(r"[_\-]", tag.lower())))


def _read_timm_file(path: Path, dropped: list[dict], task: str | None) -> pd.DataFrame:
    """One timm results file -> columns name, img_size, acc, params (rows keyed uniquely)."""
    df = _read_csv(path, ["model", "img_size", "top1"])
    df = df.reset_index(drop=True)
    acc = _numeric(df, "top1", path, 0.0, 100.0)
    size = _numeric(df, "img_size", path, 1.0, np.inf)
    name = df["model"].astype("string").str.strip()
    missing = name.isna() | (name == "") | size.isna() | acc.isna()
    for i in df.index[missing]:
        what = [c for c, s in (("model", name), ("img_size", size), ("top1", acc)) if pd.isna(s[i])]
        dropped.append(
            {
                "file": path.name,
                "model": None if pd.isna(name[i]) else str(name[i]),
                "task": task,
                "reason": "missing values; row dropped",
                "detail": f"{name_rows([i], path=path)}: no {', '.join(what)}",
            }
        )
    out = pd.DataFrame(
        {
            "name": name,
            "img_size": size.astype("Int64"),
            "acc": acc / 100.0,
            "params": _parse_params(df["param_count"]) if "param_count" in df else np.nan,
        }
    )[~missing.to_numpy()]
    dup = out.index[out.duplicated(["name", "img_size"], keep=False)]
    if len(dup):
        first = out.loc[dup[0]]
        raise DataError(
            f"{path}: duplicate (model, img_size) at {name_rows(dup, path=path)} "
            f"(e.g. {first['name']!r} at {first['img_size']})"
        )
    return out


def load_timm(
    folder: str | os.PathLike | None = None,
    tasks: Iterable[str] | None = None,
    *,
    metadata: bool = True,
) -> ZooData:
    """Load timm's ImageNet results as tidy data: one upstream, five downstream tasks.

    The upstream accuracy is ImageNet-1k validation top-1 (``results-imagenet.csv``) for
    the downstream tasks ``imagenetv2``, ``sketch`` and ``real``; for ``imagenet-r`` and
    ``imagenet-a`` it is the top-1 on the same 200 classes of the validation set
    (``results-imagenet-{r,a}-clean.csv``), see :data:`TIMM_TASKS`. Accuracies are
    converted from percent to fractions.

    Parameters
    ----------
    folder : str or path, optional
        The timm ``results/`` folder. Default: ``$SCALE_TRANSFER_TIMM`` if set, else
        ``../shared/data/timm-results`` relative to the working directory.
    tasks : iterable of str, optional
        Downstream tasks to load, a subset of :data:`TIMM_TASKS`; default all five. Only
        the files these tasks need are read.
    metadata : bool, default True
        Read ``model_metadata-in1k.csv`` to add the ``pretrain`` column.

    Returns
    -------
    ZooData
        ``data`` has one row per (model, task) with columns

        - ``model``: ``f"{name}@{img_size}"``, always. timm evaluates some weights at two
          resolutions (1556 rows, 1266 names), so the name alone is not a key; the suffix
          is added to every name, not only the ambiguous ones, so that a model's key does
          not depend on which other rows a file holds.
        - ``us_acc``, ``ds_acc``: fractions.
        - ``upstream``: ``"in1k"`` for every row, and no ``shots`` column, so all tasks
          form the single setting ``"in1k"`` (the 200-class clean subsets are still
          ImageNet-1k validation images; ``us_file`` says which file gave ``us_acc``).
        - ``params``: parameter count (``param_count`` is in millions, ``"1,013.01"`` ->
          1.01301e9), from the downstream file.
        - ``family``: coarse architecture family from the name, e.g. ``vit``, ``resnet``,
          ``efficientnet``, ``mobilenetv3``.
        - ``name``, ``img_size``: the timm name (``arch.tag``) and input resolution.
        - ``extra_data``: whether the weights tag (after the ".") names pre-training data
          beyond ImageNet-1k (in12k, in21k, in22k, jft, ig1b, yfcc100m, laion2b, clip,
          openai, webli, m30m, m38m, seer, swag, ssld). Distillation from a teacher
          trained on more data is not visible in the tag and counts as False.
        - ``pretrain`` (with ``metadata=True``): the value in ``model_metadata-in1k.csv``
          for the architecture name (text before the "."), NaN where the file has no such
          name. That file predates timm's weight tags and names one weight per
          architecture; where its value contradicts the tag (e.g. ``in1k`` for
          ``tf_efficientnet_b4.ns_jft_in1k``) it describes other weights and is set to NaN.

        ``unjoined`` lists: models in a downstream file but not its upstream file and vice
        versa; rows dropped for missing values; metadata names that match no architecture;
        metadata values set to NaN for contradicting the tag.

    Raises
    ------
    DataError
        If the folder or a needed file is missing or a file is malformed (non-numeric or
        out-of-range accuracies, duplicate (model, img_size)); the message names the file.
    ValueError
        For an unknown task name.

    Examples
    --------
    >>> zoo = load_timm(tasks=["imagenetv2", "imagenet-r"])  # doctest: +SKIP
    >>> print(zoo)  # doctest: +SKIP
    """
    root = _resolve(folder, TIMM_ENV, _TIMM_DEFAULT)
    if isinstance(tasks, str):  # one task: "sketch", not the letters s, k, e, ...
        tasks = [tasks]
    names = list(TIMM_TASKS) if tasks is None else [str(t) for t in tasks]
    unknown = [t for t in names if t not in TIMM_TASKS]
    if unknown or not names:
        raise ValueError(
            f"unknown timm task(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"choose from {', '.join(TIMM_TASKS)}"
        )
    if not root.is_dir():
        raise DataError(
            f"{root}: no such folder; give the timm results folder (the data argument, or "
            f"folder=... in Python) or set {TIMM_ENV}"
        )
    hint = " (needed for task(s) {}; pass tasks=... to load others)"
    needs: dict[str, list[str]] = {}
    for t in names:
        for f in TIMM_TASKS[t]:
            needs.setdefault(f, []).append(t)
    for f, ts in needs.items():  # fail on any missing file before reading any
        if not (root / f).is_file():
            raise DataError(f"{root / f}: no such file" + hint.format(", ".join(ts)))

    dropped: list[dict] = []
    unjoined: list[dict] = []
    cache: dict[str, pd.DataFrame] = {}

    def read(f: str, task: str | None) -> pd.DataFrame:
        if f not in cache:
            cache[f] = _read_timm_file(root / f, dropped, task)
        return cache[f]

    frames = []
    key = ["name", "img_size"]
    for t in names:
        us_file, ds_file = TIMM_TASKS[t]
        us = read(us_file, None)
        ds = read(ds_file, t)
        both = ds.merge(us[[*key, "acc"]], on=key, how="outer", suffixes=("_ds", "_us"),
                        indicator=True)  # fmt: skip
        for _, r in both[both["_merge"] == "left_only"].iterrows():
            unjoined.append({"file": ds_file, "model": f"{r['name']}@{r['img_size']}",
                             "task": t, "reason": "not in the upstream file",
                             "detail": us_file})  # fmt: skip
        for _, r in both[both["_merge"] == "right_only"].iterrows():
            unjoined.append({"file": us_file, "model": f"{r['name']}@{r['img_size']}",
                             "task": t, "reason": "not in the downstream file",
                             "detail": ds_file})  # fmt: skip
        j = both[both["_merge"] == "both"]
        frames.append(
            pd.DataFrame(
                {
                    "model": j["name"] + "@" + j["img_size"].astype(str),
                    "task": t,
                    "us_acc": j["acc_us"],
                    "ds_acc": j["acc_ds"],
                    "upstream": _TIMM_UPSTREAM,
                    "params": j["params"],
                    "name": j["name"],
                    "img_size": j["img_size"],
                    "us_file": us_file,
                }
            )
        )
    df = pd.concat(frames, ignore_index=True)
    if len(df) == 0:
        raise DataError(f"{root}: no model joined between upstream and downstream files")
    df["name"] = df["name"].astype(str)
    arch = df["name"].str.split(".", n=1).str[0]
    tag = df["name"].str.split(".", n=1).str[1].fillna("")
    df["family"] = arch.map(_timm_family)
    df["extra_data"] = tag.map(_extra_data_tag).astype(bool)

    if metadata:
        path = root / _TIMM_METADATA
        meta = _read_csv(path, ["model", "pretrain"], " (pass metadata=False to load without it)")
        meta = meta.dropna(subset=["model"]).drop_duplicates("model")
        meta["model"] = meta["model"].astype(str).str.strip()
        lookup = dict(zip(meta["model"], meta["pretrain"], strict=True))
        pretrain = arch.map(lookup)
        meta_extra = pretrain.map(lambda p: np.nan if pd.isna(p) else p not in _IN1K_PRETRAIN)
        clash = pretrain.notna() & (meta_extra.astype(object) != df["extra_data"].astype(object))
        seen_clash: set[str] = set()
        for i in df.index[clash]:
            m = df.at[i, "model"]
            if m in seen_clash:
                continue
            seen_clash.add(m)
            unjoined.append(
                {
                    "file": _TIMM_METADATA,
                    "model": m,
                    "task": None,
                    "reason": "pretrain contradicts the weights tag; set to NaN",
                    "detail": f"{pretrain[i]!r} for {arch[i]!r}, tag {tag[i]!r}",
                }
            )
        df["pretrain"] = pretrain.where(~clash).astype(object)
        all_arch = set(arch)
        for m in meta["model"]:
            if m not in all_arch:
                unjoined.append(
                    {
                        "file": _TIMM_METADATA,
                        "model": m,
                        "task": None,
                        "reason": "matches no architecture name",
                        "detail": "older timm naming",
                    }
                )

    data = read_tidy(df, min_points=1)
    return ZooData(data=data, unjoined=_unjoined(dropped + unjoined), source=str(root))


def _shots_filter(shots: int | Iterable[int] | None) -> set[int] | None:
    if shots is None:
        return None
    if isinstance(shots, (int, np.integer)):
        return {int(shots)}
    return {int(s) for s in shots}


def load_scaling_benchmark(
    path: str | os.PathLike | None = None,
    *,
    upstream_task: str = "inet_25",
    shots: int | Iterable[int] | None = None,
) -> ZooData:
    """Load the JFT few-shot scaling benchmark as tidy data.

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
    src = _resolve(path, BENCHMARK_ENV, _BENCHMARK_DEFAULT)
    hint = (
        " (give the benchmark CSV's path: the data argument, or path=... in Python; "
        f"or set {BENCHMARK_ENV})"
    )
    df = _read_csv(src, ["Task", "Model", "Seen Examples", "Loss"], hint).reset_index(drop=True)
    if "Domain" in df.columns:
        # keep the row labels: they are positions in the file, which errors name as lines
        df = df[df["Domain"].astype(str).str.strip() == "IC"]
        if len(df) == 0:
            raise DataError(f"{src}: column 'Domain' has no image classification ('IC') rows")
    name = src.name
    loss = _numeric(df, "Loss", src, 0.0, 1.0)
    seen = _numeric(df, "Seen Examples", src, 0.0, np.inf)
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
        u = up[up["Model"] == run].sort_values("seen")
        keys = run + "@" + d["seen"].map(lambda s: f"{s:.0f}")
        if len(u) == 0:
            unjoined += [
                {"file": name, "model": k, "task": t,
                 "reason": "no upstream points for this run", "detail": upstream_task}
                for k, t in zip(keys, d["Task"], strict=True)
            ]  # fmt: skip
            continue
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
        frames.append(
            pd.DataFrame(
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
        )
    if not frames or sum(len(f) for f in frames) == 0:
        raise DataError(f"{src}: no downstream point lies within its run's {upstream_task} range")
    out = pd.concat(frames, ignore_index=True)
    data = read_tidy(out, min_points=1)
    return ZooData(data=data, unjoined=_unjoined(dropped + unjoined), source=str(src))
