"""The fit file: a netCDF file holding one fitted model, written safely and read strictly.

The file holds the groups ``posterior`` and ``sample_stats`` (the draws), ``fit_data`` (the
data fitted) and ``groups``, and in its attributes the model config (priors in full), the
sampler config, the package version, a structure hash, a data hash, the diagnostics, and
a SHA-256 checksum of the draws (:func:`draws_checksum`).

Writing goes through :mod:`scale_transfer.publish`: a private temporary file, published
atomically, never over an existing file unless asked. Reading never unpickles or evaluates
anything, and every way a file can be damaged, foreign, edited or from another version
ends in one :class:`FitFileError` that names the file and what is wrong with it. A file
written before the checksum existed loads, with a :class:`OlderFitFileWarning` naming
the version that wrote it.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
import xarray as xr

from scale_transfer.config import PACKAGE_DIR, VERSION, ModelConfig, SamplerConfig
from scale_transfer.convergence import Diagnostics
from scale_transfer.publish import staged

if TYPE_CHECKING:
    from scale_transfer.posterior import Posterior

__all__ = [
    "CHECKSUM_ATTR",
    "FitFileError",
    "FitFileInfo",
    "ModelMismatchError",
    "OlderFitFileWarning",
    "draws_checksum",
    "read_fit",
    "write_fit",
]

#: The attribute that holds the checksum of the draws.
CHECKSUM_ATTR = "draws_sha256"
#: The groups whose arrays the checksum covers, in this order.
CHECKED_GROUPS = ("posterior", "sample_stats")
#: Attributes every fit file has (besides the checksum, which older files lack).
REQUIRED_ATTRS = ("model_config", "sampler_config", "structure_hash", "data_hash", "diagnostics")
#: Groups every fit file has.
REQUIRED_GROUPS = ("posterior", "sample_stats", "fit_data", "groups")
#: The group that holds a fit's frontier fit (``Posterior.frontier``), itself a fit's tree.
FRONTIER_GROUP = "frontier"
#: How a fit file marks an object column of True / False / missing (netCDF stores text).
_OBJECT_BOOL = "object-bool"


class ModelMismatchError(ValueError):
    """A saved fit does not match the model it is loaded into."""


class FitFileError(ModelMismatchError):
    """A file is not a readable fit: damaged, foreign, edited, or from another version."""


class OlderFitFileWarning(UserWarning):
    """A fit file was written before fit files carried a checksum of their draws."""


@dataclass
class FitFileInfo:
    """Where a loaded fit came from."""

    path: str
    version: str
    checksum: str | None  # None: an older file, written before checksums
    notes: list[str] = field(default_factory=list)


class FitParts(NamedTuple):
    """What a fit file holds, in :class:`~scale_transfer.posterior.Posterior`'s order."""

    dt: xr.DataTree
    config: ModelConfig
    sampler: SamplerConfig
    groups: pd.DataFrame
    data: pd.DataFrame
    diagnostics: Diagnostics
    data_hash: str
    info: FitFileInfo
    #: the drift layer (``extrapolation="lfo"``), the self-check and the convergence of the
    #: refits behind them, where the fit has them
    drift: pd.DataFrame | None = None
    self_check: pd.DataFrame | None = None
    refits: pd.DataFrame | None = None
    #: the frontier fit that gives this fit its frontier asymptotes, where it has one
    frontier: FitParts | None = None


#: Optional tables a fit may carry, by group name in the file and attribute of the fit;
#: the attribute ``tables_sha256`` holds a checksum of their text.
TABLES = {
    "extrapolation_drift": "drift",
    "self_check": "self_check",
    "refit_diagnostics": "refits",
}
TABLES_CHECKSUM_ATTR = "tables_sha256"


def _tables_checksum(tables: Mapping[str, pd.DataFrame]) -> str:
    h = hashlib.sha256()
    for name in sorted(tables):
        h.update(f"{name}\n".encode())
        h.update(tables[name].to_csv(index=False, float_format="%.17g").encode())
    return h.hexdigest()


# ------------------------------------------------------------------------ checksum
def draws_checksum(dt: xr.DataTree) -> str:
    """Return the SHA-256 of the draws: the arrays of ``posterior`` and ``sample_stats``.

    Each variable in turn (groups in a fixed order, variables sorted by name) contributes
    its group, name, dims, dtype and shape and then its bytes; each coordinate its name
    and its values as text (labels such as the task names). A changed draw, label, dtype
    or shape changes the checksum.
    """
    h = hashlib.sha256()
    for group in CHECKED_GROUPS:
        ds = dt[group].to_dataset()
        for name in sorted(map(str, ds.data_vars)):
            arr = np.ascontiguousarray(ds[name].values)
            if arr.dtype.kind in "OUS":  # text (netCDF may read it back as another dtype)
                kind, body = "text", _text(arr).encode()
            else:
                kind, body = arr.dtype.str, arr.tobytes()
            h.update(f"{group}/{name}|{ds[name].dims}|{kind}|{arr.shape}\n".encode())
            h.update(body)
        for name in sorted(map(str, ds.coords)):
            h.update(f"{group}/coord/{name}|{_text(ds.coords[name].values)}\n".encode())
    return h.hexdigest()


def _text(values: Any) -> str:
    """Return an array's values as one text, a missing value (None, NaN) as ""."""
    return "\x1f".join("" if pd.isna(v) else str(v) for v in np.asarray(values).ravel())


def _storable(ds: xr.Dataset) -> xr.Dataset:
    """Return ``ds`` with its object variables as text, "" for missing (as netCDF keeps them).

    nutpie's ``divergence_message`` is such a variable: None, or a message.
    """
    out = ds.copy()
    for name in ds.data_vars:
        if ds[name].dtype.kind == "O":
            text = [_text([v]) for v in np.asarray(ds[name].values).ravel()]
            out[name] = ds[name].copy(data=np.array(text, dtype=str).reshape(ds[name].shape))
    return out


def _data_hash(data: pd.DataFrame) -> str:
    used = data[data["used"]] if "used" in data else data
    cols = ["model", "task", "setting", "us_acc", "ds_acc"]
    h = pd.util.hash_pandas_object(used[cols], index=False).to_numpy()
    return hashlib.sha256(h.tobytes()).hexdigest()[:16]


# --------------------------------------------------------------------------- write
def _frame_for_netcdf(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """Return the data as netCDF can hold them, and the dtypes :func:`read_fit` restores."""
    frame = frame.copy()
    restore = {}
    for c in frame.columns:
        dtype = frame[c].dtype
        if isinstance(dtype, pd.api.extensions.ExtensionDtype) and dtype.kind in "iufb":
            restore[c] = str(dtype)  # e.g. timm's img_size, Int64
            frame[c] = frame[c].astype(float)  # nullable ints/bools: NaN for missing
        elif (
            pd.api.types.is_object_dtype(dtype)
            or str(dtype).startswith("str")
            or dtype.name == "category"
        ):
            values = frame[c].dropna()
            if len(values) and values.map(lambda v: isinstance(v, bool | np.bool_)).all():
                restore[c] = _OBJECT_BOOL  # True / False / missing, e.g. extra_data
            frame[c] = frame[c].astype(str)
    frame.index.name = "row"
    return frame, restore


def write_fit(post: Posterior, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a fit to netCDF (see the module docstring); return the path.

    Refuses an existing file unless ``overwrite``, also one that another process created
    while this one was writing (:class:`FileExistsError`).
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; save needs a file name (e.g. fit.nc)")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    dt = _fit_tree(post)
    frontier = getattr(post, "frontier", None)
    if frontier is not None:  # a complete fit of its own, in a group of the file
        dt[FRONTIER_GROUP] = _fit_tree(frontier)
    with staged(path, overwrite=overwrite) as tmp:
        dt.to_netcdf(tmp)
    return path


def _fit_tree(post: Posterior) -> xr.DataTree:
    """Return one fit as the tree :func:`write_fit` stores (groups and attributes)."""
    dt = xr.DataTree()
    for group in CHECKED_GROUPS:
        dt[group] = xr.DataTree(_storable(post.dt[group].to_dataset()))
    frame, restore = _frame_for_netcdf(post.data)
    dt["fit_data"] = xr.DataTree(xr.Dataset.from_dataframe(frame))
    groups = post.groups.copy()
    groups.index.name = "group_row"
    dt["groups"] = xr.DataTree(xr.Dataset.from_dataframe(groups))
    tables = {}
    for group, attr in TABLES.items():
        table = getattr(post, attr, None)
        if isinstance(table, pd.DataFrame):
            table = table.reset_index(drop=True)
            table.index.name = "row"
            dt[group] = xr.DataTree(xr.Dataset.from_dataframe(table))
            tables[group] = table
    dt.attrs = {
        "scale_transfer_version": VERSION,
        "model_config": json.dumps(post.config.to_dict()),
        "sampler_config": json.dumps(post.sampler.to_dict()),
        "structure_hash": post.config.structure_hash(),
        "data_hash": post.data_hash,
        "diagnostics": json.dumps(post.diagnostics.to_dict()),
        "fit_data_dtypes": json.dumps(restore),
        CHECKSUM_ATTR: draws_checksum(dt),
    }
    if tables:
        dt.attrs[TABLES_CHECKSUM_ATTR] = _tables_checksum(tables)
    return dt


# ---------------------------------------------------------------------------- read
def _fail(path: Path, what: str, version: str | None = None) -> FitFileError:
    """Return a one-line error naming the file (and the version that wrote it, if another)."""
    if version is not None and version != VERSION:
        what += f" (written by scale-transfer {version}; this is {VERSION})"
    return FitFileError(f"{path}: {what}")


def _json_attr(attrs: Mapping[str, Any], name: str, path: Path, version: str | None) -> Any:
    try:
        value = json.loads(attrs[name])
    except (TypeError, ValueError) as err:
        raise _fail(path, f"attribute {name!r} is not valid JSON ({err})", version) from None
    if not isinstance(value, dict):
        raise _fail(path, f"attribute {name!r} is not a JSON object", version)
    return value


def _build(kind: str, make: Any, d: Mapping[str, Any], path: Path, version: str | None) -> Any:
    """Build a config from its stored dict; unknown keys and bad values named, one line."""
    known = {f.name for f in fields(make)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise _fail(path, f"the stored {kind} has field(s) this version does not know: "
                          f"{', '.join(unknown)}", version)  # fmt: skip
    try:
        return make(**d)
    except (TypeError, ValueError) as err:
        raise _fail(path, f"the stored {kind} is not valid ({err})", version) from None


def _open(path: Path) -> xr.DataTree:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise FitFileError(f"{path} is a folder, not a fit (a .nc file from fit/save)")
    if path.stat().st_size == 0:
        raise FitFileError(f"{path} is empty, not a fit (a .nc file from fit/save)")
    try:
        with xr.open_datatree(path) as f:
            return f.load()
    except Exception as err:  # noqa: BLE001 - netCDF/HDF5 raise many kinds; all mean the same
        raise FitFileError(
            f"{path} is not a scale-transfer fit: it cannot be read as netCDF, it may be "
            f"truncated or another kind of file ({type(err).__name__}: {str(err)[:120]})"
        ) from None


def _fit_data(dt: xr.DataTree, attrs: Mapping[str, Any], path: Path, version: str | None):  # noqa: ANN202
    data = dt["fit_data"].to_dataset().to_dataframe().reset_index(drop=True)
    groups = dt["groups"].to_dataset().to_dataframe().reset_index(drop=True)
    missing = [c for c in ("model", "task", "setting", "us_acc", "ds_acc") if c not in data]
    if missing:
        raise _fail(path, f"group 'fit_data' lacks column(s) {', '.join(missing)}", version)
    for c in ("used", "on_hull"):
        if c in data:
            data[c] = data[c].astype(bool)
    for c in data.columns:
        # netCDF stores a missing text cell as "": read it back as missing (the key columns
        # are never empty: the data checks refuse that)
        if c not in ("model", "task", "setting") and not pd.api.types.is_numeric_dtype(data[c]):
            data[c] = data[c].mask(data[c].astype(str) == "")
    dtypes = _json_attr({"d": attrs.get("fit_data_dtypes", "{}")}, "d", path, version)
    for c, dtype in dtypes.items():
        if c not in data:
            continue
        try:
            if dtype == _OBJECT_BOOL:
                data[c] = data[c].map({"True": True, "False": False}).astype(object)
            else:
                data[c] = data[c].astype(dtype)
        except (TypeError, ValueError) as err:
            what = f"column {c!r} of 'fit_data' is not {dtype} ({err})"
            raise _fail(path, what, version) from None
    return data, groups


def read_fit(path: str | os.PathLike, config: ModelConfig | None = None) -> FitParts:
    """Read a fit file; every fault is one :class:`FitFileError` naming the file.

    Parameters
    ----------
    path : path
        The netCDF file.
    config : ModelConfig, optional
        The model the caller expects; a file fitted with another structure or other
        priors is refused with :class:`ModelMismatchError`.
    """
    path = Path(path)
    dt = _open(path)
    parts = _read_tree(dt, path, config)
    if FRONTIER_GROUP in dt.children:  # named in its errors as "FILE, group 'frontier'"
        where = Path(f"{path}, group '{FRONTIER_GROUP}'")
        parts = parts._replace(frontier=_read_tree(dt[FRONTIER_GROUP], where, None))
    return parts


def _read_tree(dt: xr.DataTree, path: Path, config: ModelConfig | None) -> FitParts:
    """Read one fit's tree (the file's root, or its frontier fit's group)."""
    attrs = dict(dt.attrs)
    version = attrs.get("scale_transfer_version")
    version = None if version is None else str(version)
    if "model_config" not in attrs and version is None:
        raise FitFileError(f"{path} is not a scale-transfer fit (no model_config attribute)")
    missing = [a for a in REQUIRED_ATTRS if a not in attrs]
    if missing:
        raise _fail(path, f"not a complete fit: attribute(s) {', '.join(missing)} missing", version)
    groups_missing = [g for g in REQUIRED_GROUPS if g not in dt.children]
    if groups_missing:
        raise _fail(path, f"not a complete fit: group(s) {', '.join(groups_missing)} missing",
                    version)  # fmt: skip
    saved = _build("model config", ModelConfig, _json_attr(attrs, "model_config", path, version),
                   path, version)  # fmt: skip
    if saved.structure_hash() != attrs["structure_hash"]:
        raise _fail(path, "the stored model config does not match its hash (edited?)", version)
    if config is not None and config.structure_hash() != saved.structure_hash():
        raise ModelMismatchError(
            f"{path} was fitted with a different model ({_config_diff(saved, config)}); "
            "refusing to load it as the model asked for"
        )
    sampler = _build("sampler config", SamplerConfig,
                     _json_attr(attrs, "sampler_config", path, version), path, version)  # fmt: skip
    d = _json_attr(attrs, "diagnostics", path, version)
    d.pop("ok", None)
    diag = _build("diagnostics", Diagnostics, d, path, version)

    keep = xr.DataTree()
    keep["posterior"] = dt["posterior"]
    keep["sample_stats"] = dt["sample_stats"]
    _check_draws(keep, diag, path, version)
    stored = attrs.get(CHECKSUM_ATTR)
    info = FitFileInfo(str(path), version or "unknown", None if stored is None else str(stored))
    if stored is None:
        note = (
            f"{path} has no checksum of its draws (an older format, written by scale-transfer "
            f"{version or 'of an unknown version'}): its draws cannot be verified; save it "
            "again to add one"
        )
        info.notes.append(note)
        warnings.warn(note, OlderFitFileWarning, skip_file_prefixes=(PACKAGE_DIR,))
    elif draws_checksum(keep) != stored:
        raise _fail(path, "the draws do not match their checksum: the file was changed or "
                          "damaged after it was written", version)  # fmt: skip
    data, groups = _fit_data(dt, attrs, path, version)
    if "k" in keep["posterior"] and keep["posterior"]["k"].sizes.get("group") != len(groups):
        raise _fail(path, "the draws and the group table disagree on the number of groups",
                    version)  # fmt: skip
    if _data_hash(data) != attrs["data_hash"]:
        raise _fail(path, "the stored data do not match the stored data hash", version)
    tables = {
        group: dt[group].to_dataset().to_dataframe().reset_index(drop=True)
        for group in TABLES
        if group in dt.children
    }
    if tables and _tables_checksum(tables) != attrs.get(TABLES_CHECKSUM_ATTR):
        raise _fail(path, "the stored drift layer, self-check or refit diagnostics do not "
                          "match their checksum (edited?)", version)  # fmt: skip
    return FitParts(keep, saved, sampler, groups, data, diag, str(attrs["data_hash"]), info,
                    *(tables.get(group) for group in TABLES))  # fmt: skip


def _check_draws(dt: xr.DataTree, diag: Diagnostics, path: Path, version: str | None) -> None:
    """Refuse draws that no summary can use: none, missing names, NaN, other counts."""
    post = dt["posterior"]
    need = [v for v in ("k", "alpha", "e_ir") if v not in post.data_vars]
    if need:
        raise _fail(path, f"the posterior lacks variable(s) {', '.join(need)}", version)
    sizes = post.sizes
    if sizes.get("chain", 0) == 0 or sizes.get("draw", 0) == 0:
        raise _fail(path, f"the posterior holds no draws ({dict(sizes)})", version)
    bad = [v for v in ("k", "alpha", "e_ir") if not np.isfinite(post[v].values).all()]
    if bad:
        raise _fail(path, f"the draws of {', '.join(bad)} are not all finite (a fit cut short "
                          "and padded with NaN?); fit again", version)  # fmt: skip
    if (sizes["chain"], sizes["draw"]) != (diag.chains, diag.draws):
        raise _fail(
            path,
            f"the posterior holds {sizes['chain']} chains x {sizes['draw']} draws, its "
            f"diagnostics say {diag.chains} x {diag.draws}",
            version,
        )


def _config_diff(saved: ModelConfig, asked: ModelConfig) -> str:
    """Name the fields (priors one by one) in which two model configs differ."""

    def flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            if isinstance(v, Mapping):
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[f"{prefix}{k}"] = v
        return out

    a, b = flat(saved.to_dict()), flat(asked.to_dict())
    diff = [
        f"{k}: {a.get(k, '(none)')!r} in the file, {b.get(k, '(none)')!r} asked"
        for k in sorted(set(a) | set(b))
        if a.get(k) != b.get(k)
    ]
    return "; ".join(diff) or "same fields, other structure hash"
