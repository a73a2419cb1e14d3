"""timm's ImageNet results as tidy data: one upstream, five shifted test sets."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from scale_transfer.data import DataError, name_rows, read_tidy
from scale_transfer.zoo.common import (
    ZooData,
    numeric_column,
    parse_params,
    read_csv,
    resolve_path,
    unjoined_frame,
)

__all__ = ["TIMM_ENV", "TIMM_TASKS", "load_timm"]

#: Environment variable naming the timm ``results/`` folder.
TIMM_ENV = "SCALE_TRANSFER_TIMM"
_TIMM_DEFAULT = Path("..", "shared", "data", "timm-results")

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
    df = read_csv(path, ["model", "img_size", "top1"])
    df = df.reset_index(drop=True)
    acc = numeric_column(df, "top1", path, 0.0, 100.0)
    size = numeric_column(df, "img_size", path, 1.0, np.inf)
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
            "params": parse_params(df["param_count"]) if "param_count" in df else np.nan,
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


def _timm_request(
    folder: str | os.PathLike | None, tasks: Iterable[str] | None
) -> tuple[Path, list[str]]:
    """Return the results folder and the task names, refusing unknown tasks or missing files."""
    root = resolve_path(folder, TIMM_ENV, _TIMM_DEFAULT)
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
    known = sorted({f for files in TIMM_TASKS.values() for f in files})
    if not any((root / f).is_file() for f in known):
        raise DataError(
            f"{root}: not a timm results folder (it has none of {', '.join(known)}); give "
            "a tidy CSV or Parquet file, or the results/ folder of timm's repository"
        )
    hint = " (needed for task(s) {}; pass tasks=... to load others)"
    needs: dict[str, list[str]] = {}
    for t in names:
        for f in TIMM_TASKS[t]:
            needs.setdefault(f, []).append(t)
    for f, ts in needs.items():  # fail on any missing file before reading any
        if not (root / f).is_file():
            raise DataError(f"{root / f}: no such file" + hint.format(", ".join(ts)))

    return root, names


def _join_task(
    t: str, us_file: str, ds_file: str, us: pd.DataFrame, ds: pd.DataFrame, unjoined: list[dict]
) -> pd.DataFrame:
    """Join one task's downstream file to its upstream file; list the models left out."""
    key = ["name", "img_size"]
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
    return pd.DataFrame(
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


def _pretrain(
    root: Path, df: pd.DataFrame, arch: pd.Series, tag: pd.Series, unjoined: list[dict]
) -> pd.Series:
    """Return each row's ``pretrain`` from the metadata file (NaN where it contradicts the tag)."""
    path = root / _TIMM_METADATA
    meta = read_csv(path, ["model", "pretrain"], " (pass metadata=False to load without it)")
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

    return pretrain.where(~clash).astype(object)


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
    root, names = _timm_request(folder, tasks)
    dropped: list[dict] = []
    unjoined: list[dict] = []
    cache: dict[str, pd.DataFrame] = {}

    def read(f: str, task: str | None) -> pd.DataFrame:
        if f not in cache:
            cache[f] = _read_timm_file(root / f, dropped, task)
        return cache[f]

    frames = []
    for t in names:
        us_file, ds_file = TIMM_TASKS[t]
        us = read(us_file, None)
        ds = read(ds_file, t)
        frames.append(_join_task(t, us_file, ds_file, us, ds, unjoined))
    df = pd.concat(frames, ignore_index=True)
    if len(df) == 0:
        raise DataError(f"{root}: no model joined between upstream and downstream files")
    df["name"] = df["name"].astype(str)
    arch = df["name"].str.split(".", n=1).str[0]
    tag = df["name"].str.split(".", n=1).str[1].fillna("")
    df["family"] = arch.map(_timm_family)
    df["extra_data"] = tag.map(_extra_data_tag).astype(bool)

    if metadata:
        df["pretrain"] = _pretrain(root, df, arch, tag, unjoined)
    data = read_tidy(df, min_points=1)
    return ZooData(data=data, unjoined=unjoined_frame(dropped + unjoined), source=str(root))
