"""A persistent cache of nutpie-compiled models: a new process loads, instead of compiling.

nutpie compiles a PyMC model into two C callbacks (the log density with its gradient, and
the expansion of a draw into every traced variable), built by numba from the functions
PyTensor generates. In a fresh process that takes 10-25 s even when PyTensor's own numba
disk cache is filled (the callbacks themselves are not cacheable by numba: their closures
differ in every process). This module keeps the callbacks' machine code on disk, with what
is needed to rebuild nutpie's compiled model around them, and reloads it in later
processes in a fraction of a second.

An entry is keyed by a fingerprint of the model's graph (every operation, its
parameters, the types, the constants' values, the names, types and ranks of the data
containers, the shapes of the sampled and traced variables), the versions of Python,
PyMC, PyTensor, nutpie, numba, llvmlite and NumPy, numba's target machine (CPU name and
features) and the PyTensor settings that change the compiled code. A model whose graph
differs in anything but the data containers' values and lengths gets another key. The
data are never part of an entry: the loaded model reads the current model's data
containers, as ``with_data`` does.

Entries are written to a temporary file in the cache folder and published with
:func:`os.replace`, so that two processes filling the cache at once each publish a
complete entry and readers never see a partial one. Each entry carries a checksum of its
content; a damaged, truncated or foreign entry, a key mismatch, or any failure while
loading falls back to compiling (and rewrites the entry), never to a wrong model.

Location: ``$SCALE_TRANSFER_CACHE_DIR`` if set, else the user cache folder
(``platformdirs.user_cache_dir("scale-transfer")``, e.g. ``~/.cache/scale-transfer``),
subfolder ``compiled-models``. ``SCALE_TRANSFER_COMPILE_CACHE=0`` turns the cache off.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import platform
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CACHE_DIR_ENV",
    "CACHE_ENV",
    "FORMAT",
    "cache_dir",
    "clear",
    "compile_model",
    "enabled",
    "model_key",
]

log = logging.getLogger(__name__)

#: Environment variable naming the cache folder.
CACHE_DIR_ENV = "SCALE_TRANSFER_CACHE_DIR"
#: Environment variable that turns the cache off when ``0``, ``false`` or ``no``.
CACHE_ENV = "SCALE_TRANSFER_COMPILE_CACHE"
#: Entry format; part of every key (a new format never reads an old entry).
FORMAT = 5
_MAGIC = b"scale-transfer compiled model\n"
_VERSIONED = ("pymc", "pytensor", "nutpie", "numba", "llvmlite", "numpy", "scale-transfer")


def enabled() -> bool:
    """Return whether the persistent cache is on (``SCALE_TRANSFER_COMPILE_CACHE``)."""
    return os.environ.get(CACHE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def cache_dir() -> Path:
    """Return the folder of compiled models (not created here)."""
    root = os.environ.get(CACHE_DIR_ENV)
    if not root:
        try:
            from platformdirs import user_cache_dir

            root = user_cache_dir("scale-transfer")
        except ImportError:  # platformdirs comes with nutpie; a fallback all the same
            root = os.path.join(os.path.expanduser("~"), ".cache", "scale-transfer")
    return Path(root) / "compiled-models"


def clear() -> int:
    """Remove every entry of the cache; return how many were removed."""
    n = 0
    folder = cache_dir()
    if folder.is_dir():
        for p in folder.glob("*.model"):
            with _quiet_oserror():
                p.unlink()
                n += 1
    return n


class _quiet_oserror:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, err: Any, tb: Any) -> bool:
        return kind is not None and issubclass(kind, OSError)


# ----------------------------------------------------------------------------- keys
def _versions() -> tuple:
    out = []
    for name in _VERSIONED:
        try:
            out.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            out.append((name, None))
    return (sys.version, platform.machine(), *out)


def _target() -> tuple:
    """Numba's target machine: code compiled for one CPU may not run on another."""
    from numba.core.registry import cpu_target

    return tuple(cpu_target.target_context.codegen().magic_tuple())


def _pytensor_settings(model: Any) -> tuple:
    import pytensor

    c = pytensor.config
    names = ("floatX", "numba__fastmath", "optimizer_including", "optimizer_excluding",
             "optimizer_requiring", "cast_policy")  # fmt: skip
    return (*(str(getattr(c, n, None)) for n in names), bool(model.check_bounds))


class _Unkeyable(Exception):
    """The graph holds something whose fingerprint would not be stable across processes."""


def _token(x: Any, depth: int = 0) -> Any:
    """Return a stable description of an op's parameter (or raise _Unkeyable)."""
    if depth > 20:
        raise _Unkeyable("nested too deeply")
    if x is None or isinstance(x, bool | int | float | str | bytes | complex):
        return x
    if isinstance(x, np.ndarray):
        return ("ndarray", str(x.dtype), x.shape, hashlib.sha256(x.tobytes()).hexdigest())
    if isinstance(x, np.generic | np.dtype):
        return (type(x).__name__, str(x), repr(x))
    if isinstance(x, tuple | list | frozenset | set):
        items = [_token(v, depth + 1) for v in x]
        return (type(x).__name__, tuple(sorted(items, key=repr) if isinstance(x, set | frozenset)
                                         else items))  # fmt: skip
    if isinstance(x, dict):
        return ("dict", tuple(sorted((repr(k), _token(v, depth + 1)) for k, v in x.items())))
    props = getattr(type(x), "__props__", None)
    name = f"{type(x).__module__}.{type(x).__qualname__}"
    if props is not None:
        return (name, tuple((p, _token(getattr(x, p), depth + 1)) for p in props))
    fgraph = getattr(x, "fgraph", None)  # a Composite or another op with an inner graph
    if fgraph is not None:
        return (name, _graph_token(list(fgraph.inputs), list(fgraph.outputs)))
    text = repr(x)
    if " at 0x" in text or " object at " in text:
        raise _Unkeyable(f"no stable description of {name}")
    return (name, text)


def _var_token(v: Any) -> tuple:
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.basic import Constant

    if isinstance(v, SharedVariable):  # data: name and type, not the values
        return ("shared", v.name, str(v.type))
    if isinstance(v, Constant):
        return ("constant", str(v.type), _token(np.asarray(v.data)))
    return ("input", v.name, str(v.type))


def _graph_token(inputs: list, outputs: list) -> str:
    """Return a hash of a graph: each node's op, parameters, inputs and outputs' types."""
    from pytensor.graph.traversal import toposort

    h = hashlib.sha256()
    ids: dict[Any, int] = {}

    def ref(v: Any) -> Any:
        if v not in ids:
            ids[v] = len(ids)
            if v.owner is None:
                h.update(repr(("leaf", ids[v], _var_token(v))).encode())
        return ids[v]

    for v in inputs:
        ref(v)
    for node in toposort(outputs):
        ins = [ref(v) for v in node.inputs]
        h.update(repr(("node", _token(node.op), ins)).encode())
        for out in node.outputs:
            ids[out] = len(ids)
            h.update(repr(("out", ids[out], str(out.type))).encode())
    h.update(repr(("outputs", [ref(v) for v in outputs])).encode())
    return h.hexdigest()


def _graphs(model: Any) -> tuple[list, list]:
    """Return the free variables' values and the graphs nutpie compiles (logp, traced)."""
    free = [model.rvs_to_values[rv] for rv in model.free_RVs]
    return free, [model.logp(), *model.unobserved_value_vars]


def _shared(outputs: list) -> dict[str, Any]:
    """Return the shared variables (data, dimension lengths) the graphs read, by name."""
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.traversal import graph_inputs

    found: dict[str, Any] = {}
    for v in graph_inputs(outputs):
        if isinstance(v, SharedVariable):
            if v.name is None or found.get(v.name, v) is not v:
                raise _Unkeyable(f"shared variable without a unique name: {v.name!r}")
            found[v.name] = v
    return found


def _shapes_token(model: Any, shared: dict[str, Any]) -> list:
    """Return what fixes the compiled code's sizes, but not the data's values or lengths.

    The shared variables' dtypes and ranks (their values, lengths and dimension lengths
    are read at run time, as ``with_data`` does), and the shape of every sampled and
    traced variable: their total sizes are constants of the compiled code.
    """
    import pytensor
    from nutpie.compile_pymc import _compute_shapes

    out: list = []
    for name in sorted(shared):
        value = np.asarray(shared[name].get_value(borrow=True))
        out.append((name, value.ndim, str(value.dtype)))
    with pytensor.config.change_flags(cxx=""):  # PyTensor's Python VM: no C compiler run
        shapes = _compute_shapes(model)
    out.append(sorted((k, tuple(int(n) for n in v)) for k, v in shapes.items()))
    return out


def model_key(model: Any, graphs: tuple[list, list] | None = None) -> str | None:
    """Return the cache key of a PyMC model, or None when it cannot be keyed safely.

    The key covers the log density's graph and the traced variables' graphs (as built,
    before PyTensor rewrites them), the data containers' names, types and ranks (not their
    values or lengths), the shapes of the sampled and traced variables, library versions,
    numba's target machine and PyTensor's settings that change the compiled code.
    """
    free, outputs = graphs or _graphs(model)
    try:
        graph = _graph_token(free, outputs)
        shapes = _shapes_token(model, _shared(outputs))
    except _Unkeyable as err:
        log.debug("compiled-model cache: model not keyable (%s)", err)
        return None
    parts = (FORMAT, graph, shapes, _versions(), _target(), _pytensor_settings(model))
    return hashlib.sha256(repr(parts).encode()).hexdigest()


# ----------------------------------------------------------------------------- compile / load
@dataclass(frozen=True)
class NativeFunction:
    """A numba C callback, as nutpie uses it (``address``), and what keeps it alive."""

    address: int
    compile_result: Any


def _native(cres: Any) -> NativeFunction:
    from numba.core.compiler_lock import global_compiler_lock

    with global_compiler_lock:  # finalizes the library, as ``CFunc.compile`` does
        address = cres.library.get_pointer_to_function(cres.fndesc.llvm_cfunc_wrapper_name)
    return NativeFunction(address, cres)


def _compile_native(pyfunc: Any, sig: Any) -> Any:
    """Compile a C callback as ``numba.cfunc`` does; return numba's compile result."""
    from numba.core import sigutils
    from numba.core.ccallback import CFunc
    from numba.core.compiler_lock import global_compiler_lock

    with global_compiler_lock:
        return CFunc(pyfunc, sigutils.normalize_signature(sig), {}, {})._compile_uncached()


def _rebuild(payload: tuple) -> Any:
    from numba.core.compiler import CompileResult
    from numba.core.compiler_lock import global_compiler_lock
    from numba.core.registry import cpu_target

    with global_compiler_lock:
        return CompileResult._rebuild(cpu_target.target_context, *payload)


def _externals(cres: Any) -> list[str]:
    """Return the names the machine code needs from the process (numba runtime, C API)."""
    mod = cres.library._final_module
    names = {f.name for f in mod.functions if f.is_declaration}
    names |= {g.name for g in mod.global_variables if g.is_declaration}
    return sorted(n for n in names if not n.startswith("llvm."))


def _check_externals(names: list[str]) -> None:
    """Raise unless every name resolves here (LLVM aborts the process on a missing one)."""
    import llvmlite.binding as ll
    from numba.core.registry import cpu_target

    cpu_target.target_context.refresh()  # numba's runtime registers its symbols
    missing = [n for n in names if not ll.address_of_symbol(n)]
    if missing:
        raise LookupError(f"symbols not found in this process: {missing[:5]}")


#: What this process's calls of :func:`compile_model` did: ``loaded`` from the cache,
#: ``compiled`` (and of those ``stored``), ``fallbacks`` (an entry there could not be used).
stats = {"loaded": 0, "compiled": 0, "stored": 0, "fallbacks": 0}
# key -> (entry without its machine code, the C callbacks) of models compiled or loaded here
_IN_PROCESS: dict[str, tuple[dict, tuple]] = {}


def compile_model(model: Any, *, use_cache: bool | None = None) -> tuple[Any, bool]:
    """Return nutpie's compiled model of a PyMC model (numba backend), and whether it loaded.

    Equivalent to ``nutpie.compile_pymc_model(model, backend="numba", freeze_model=False)``
    (the same graphs, functions and default start), but the compiled C callbacks come from
    the cache folder when an entry of this model's key is there, and a compiled model is
    stored there for later processes. ``use_cache=False`` (or ``SCALE_TRANSFER_COMPILE_CACHE=0``)
    compiles without reading or writing. Any problem with the cache falls back to compiling.
    """
    use_cache = enabled() if use_cache is None else use_cache
    key = path = None
    if use_cache:
        try:
            graphs = _graphs(model)
            key = model_key(model, graphs)
        except Exception as err:  # noqa: BLE001 - the cache is an optimisation, never a failure
            log.debug("compiled-model cache: no key (%r)", err)
        if key is not None:
            path = cache_dir() / f"{key}.model"
            # callbacks already in this process are reused: loading the same machine code
            # twice would define its symbols twice
            entry, natives = _IN_PROCESS.get(key) or (_read(path, key), None)
            if entry is not None:
                try:
                    compiled, natives = _from_entry(model, entry, _shared(graphs[1]), natives)
                except Exception as err:  # noqa: BLE001
                    log.warning("compiled-model cache: entry %s unusable (%r)", path, err)
                    stats["fallbacks"] += 1
                else:
                    _IN_PROCESS[key] = (_meta(entry), natives)
                    stats["loaded"] += 1
                    return compiled, True
    try:
        compiled, entry = _compile(model)
    except Exception as err:  # noqa: BLE001 - e.g. a nutpie whose internals moved
        log.warning("compiled-model cache: compiling through nutpie itself (%r)", err)
        import nutpie

        compiled = nutpie.compile_pymc_model(model, backend="numba", freeze_model=False)
        entry = None
    stats["compiled"] += 1
    if path is not None and entry is not None:
        entry["key"] = key
        natives = (compiled.compiled_logp_func, compiled.compiled_expand_func)
        _IN_PROCESS[key] = (_meta(entry), natives)
        if _write(path, key, entry):
            stats["stored"] += 1
    return compiled, False


def _meta(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if k not in ("logp", "expand")}


def _initial_point(model: Any) -> Any:
    """Return nutpie's default start function (PyMC's, evaluated by PyTensor's Python VM).

    PyMC compiles it in ``FAST_COMPILE`` mode, whose C virtual machine needs a C compiler
    run when PyTensor's compile folder is new (1.5 s measured) and reads the compiler's
    flags in every process; the Python VM gives the same values, called once per chain.
    """
    import pytensor
    from nutpie.compile_pymc import _wrap_with_lock
    from pymc.initial_point import make_initial_point_fn

    with pytensor.config.change_flags(cxx=""):
        fn = make_initial_point_fn(
            model=model,
            overrides=None,
            default_strategy="support_point",
            jitter_rvs=set(model.free_RVs),
            return_transformed=True,
        )
    return _wrap_with_lock(fn)


def _assemble(model: Any, native: tuple, user: tuple, layout: tuple) -> Any:
    """Nutpie's compiled model around two C callbacks, as nutpie assembles it."""
    from nutpie import compile_pymc as cp

    logp, expand = native
    shared_data, shared_var_keys, user_data = user
    n_dim, n_expanded, shape_info, reparameterized = layout
    n_free = len(model.free_RVs)
    init = cp._rv_dict_to_flat_array_wrapper(
        _initial_point(model), names=shape_info[0][:n_free], shapes=shape_info[2][:n_free]
    )
    dims, coords = cp._prepare_dims_and_coords(model, shape_info, reparameterized)
    return cp.CompiledPyMCModel(
        _n_dim=n_dim, dims=dims, _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info, strict=True)},
        compiled_logp_func=logp, compiled_expand_func=expand, initial_point_func=init,
        shared_data=shared_data, shared_var_keys=shared_var_keys, user_data=user_data,
        n_expanded=n_expanded, shape_info=shape_info, logp_func=None, expand_func=None,
        reparameterized_names=reparameterized,
    )  # fmt: skip


def _compile(model: Any) -> tuple[Any, dict | None]:
    """Compile as nutpie does; also return the cache entry (None: not cacheable)."""
    import uuid

    from nutpie import compile_pymc as cp

    n_dim, n_expanded, logp_pt, expand_pt, _, shape_info, reparameterized = cp._make_functions(
        model, mode="NUMBA", compute_grad=True, join_expanded=True,
        pymc_initial_point_fn=_initial_point(model), var_names=None,
    )  # fmt: skip
    shared_data, shared_var_keys = {}, {}
    for var in dict.fromkeys([*logp_pt.get_shared(), *expand_pt.get_shared()]):
        key = uuid.uuid4().hex
        shared_data[key] = np.array(var.get_value(), order="C", copy=True)
        shared_data[key].flags.writeable = False
        shared_var_keys[var] = key
    user_data = cp.make_user_data(shared_var_keys, shared_data)
    keys = [[shared_var_keys[v] for v in f.get_shared()] for f in (logp_pt, expand_pt)]
    raw, sig = cp._make_c_logp_func(n_dim, logp_pt.vm.jit_fn, user_data, keys[0], shared_data)
    logp = _compile_native(raw, sig)
    raw, sig = cp._make_c_expand_func(n_dim, n_expanded, expand_pt.vm.jit_fn, user_data,
                                      keys[1], shared_data)  # fmt: skip
    expand = _compile_native(raw, sig)
    layout = (n_dim, n_expanded, shape_info, reparameterized)
    compiled = _assemble(model, (_native(logp), _native(expand)),
                         (shared_data, shared_var_keys, user_data), layout)  # fmt: skip
    names = [v.name for v in shared_var_keys]
    if (
        any(c.library.has_dynamic_globals for c in (logp, expand))
        or len(set(names)) < len(names)
        or None in names
    ):
        return compiled, None  # machine code that points into this process, or ambiguous data
    entry = {
        "format": FORMAT,
        "layout": layout,
        "shared": [(k, v.name, str(shared_data[k].dtype), v.ndim)
                   for v, k in shared_var_keys.items()],
        "record": user_data.dtype.descr,
        "externals": sorted(set(_externals(logp)) | set(_externals(expand))),
        "logp": logp._reduce(),
        "expand": expand._reduce(),
    }  # fmt: skip
    return compiled, entry


def _from_entry(
    model: Any, entry: dict, variables: dict[str, Any], natives: tuple | None = None
) -> tuple[Any, tuple]:
    """Rebuild nutpie's compiled model from a cache entry and the model's shared variables.

    ``natives``: the entry's C callbacks when this process has them already.
    """
    from nutpie import compile_pymc as cp

    if entry.get("format") != FORMAT:
        raise ValueError(f"entry format {entry.get('format')!r}, expected {FORMAT}")
    shared_data, shared_var_keys = {}, {}
    for key, name, dtype, ndim in entry["shared"]:
        var = variables[name]
        value = np.array(var.get_value(), order="C", copy=True)
        if str(value.dtype) != dtype or value.ndim != ndim or var.ndim != ndim:
            raise ValueError(f"data container {name!r} is {value.dtype}[{value.ndim}]")
        value.flags.writeable = False
        shared_data[key], shared_var_keys[var] = value, key
    user_data = cp.make_user_data(shared_var_keys, shared_data)
    if user_data.dtype.descr != entry["record"]:
        raise ValueError("data record layout differs from the cached one")
    if natives is None:
        _check_externals(entry["externals"])
        natives = (_native(_rebuild(entry["logp"])), _native(_rebuild(entry["expand"])))
    user = (shared_data, shared_var_keys, user_data)
    return _assemble(model, natives, user, tuple(entry["layout"])), natives


# ----------------------------------------------------------------------------- files
def _header(key: str, digest: str) -> bytes:
    return _MAGIC + f"{key}\n{digest}\n".encode()


def _read(path: Path, key: str) -> dict | None:
    """Return the entry at ``path`` if it is whole and of this key, else None."""
    try:
        blob = path.read_bytes()
    except OSError:
        return None
    try:
        head_len = len(_header(key, "0" * 64))
        head, body = blob[:head_len], blob[head_len:]
        if head != _header(key, hashlib.sha256(body).hexdigest()):
            raise ValueError("header, key or checksum mismatch")
        entry = pickle.loads(body)
        if not isinstance(entry, dict) or entry.get("key") != key:
            raise ValueError("entry of another key")
    except Exception as err:  # noqa: BLE001 - a damaged entry is a miss
        log.warning("compiled-model cache: damaged entry %s (%r); compiling", path, err)
        stats["fallbacks"] += 1
        return None
    return entry


def _write(path: Path, key: str, entry: dict) -> bool:
    """Publish an entry atomically (temporary file, then ``os.replace``); False on failure."""
    tmp = None
    try:
        body = pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}-", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(_header(key, hashlib.sha256(body).hexdigest()))
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return True
    except Exception as err:  # noqa: BLE001 - a read-only or full disk only costs the cache
        log.warning("compiled-model cache: could not store %s (%r)", path, err)
        if tmp is not None:
            with _quiet_oserror():
                os.unlink(tmp)
        return False
