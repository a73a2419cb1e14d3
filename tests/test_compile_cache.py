"""The persistent cache of compiled models: keyed by structure, safe to damage and to share."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from scale_transfer import compile_cache

pm = pytest.importorskip("pymc")
pytest.importorskip("nutpie")


def tiny_model(y: np.ndarray, n_groups: int = 3, prior_sd: float = 1.0):
    """A small hierarchical model with its data in containers, as the package's."""
    idx = np.arange(len(y)) % n_groups
    with pm.Model(coords={"group": np.arange(n_groups)}) as model:
        y_data = pm.Data("y", y)
        g = pm.Data("group_idx", idx)
        mu = pm.Normal("mu", 0.0, prior_sd)
        sd = pm.HalfNormal("sd", 1.0)
        z = pm.Normal("z", mu, sd, dims="group")
        sigma = pm.HalfNormal("sigma", 1.0)
        pm.Deterministic("scale", 2.0 * sigma)
        pm.Normal("obs", z[g], sigma, observed=y_data, shape=y_data.shape)
    return model


def data(seed: int, n: int = 30) -> np.ndarray:
    return np.random.default_rng(seed).normal(1.0, 0.5, n)


def logp_and_grad(compiled, x: np.ndarray) -> tuple[float, np.ndarray]:
    """Call nutpie's compiled C callback as the sampler does."""
    dbl = ctypes.POINTER(ctypes.c_double)
    proto = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64, dbl, dbl, dbl, ctypes.c_void_p)
    fn = proto(compiled.compiled_logp_func.address)
    x = np.ascontiguousarray(x, dtype=float)
    grad, lp = np.zeros_like(x), np.zeros(1)
    rc = fn(len(x), x.ctypes.data_as(dbl), grad.ctypes.data_as(dbl), lp.ctypes.data_as(dbl),
            compiled.user_data.ctypes.data)  # fmt: skip
    assert rc == 0
    return float(lp[0]), grad


def pymc_logp(model, compiled, x: np.ndarray) -> float:
    """The same log density computed by PyMC itself (unconstrained values, Jacobian)."""
    names, slices, shapes = compiled.shape_info
    point = {n: x[s].reshape(shp) for n, s, shp in zip(names, slices, shapes, strict=True)
             if n in {v.name for v in model.value_vars}}  # fmt: skip
    return float(model.compile_logp(mode="FAST_COMPILE")(point))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(compile_cache.CACHE_DIR_ENV, str(tmp_path))
    monkeypatch.setenv(compile_cache.CACHE_ENV, "1")
    monkeypatch.setattr(compile_cache, "_IN_PROCESS", {})
    return tmp_path / "compiled-models"


def test_key_follows_structure_not_data():
    key = compile_cache.model_key
    base = key(tiny_model(data(0)))
    assert base is not None and len(base) == 64
    assert key(tiny_model(data(1))) == base  # other values, same structure
    assert key(tiny_model(data(1) * 100.0)) == base
    assert key(tiny_model(data(0), prior_sd=2.0)) != base  # a prior's constant
    assert key(tiny_model(data(0), n_groups=4)) != base  # a dimension's length
    assert key(tiny_model(data(0, n=31))) == base  # data of another length: read at run time


def test_key_follows_library_versions(monkeypatch):
    model = tiny_model(data(0))
    base = compile_cache.model_key(model)
    monkeypatch.setattr(compile_cache, "_versions", lambda: ("another", "pytensor"))
    assert compile_cache.model_key(model) != base


def test_cache_location_and_switch(monkeypatch, tmp_path):
    monkeypatch.setenv(compile_cache.CACHE_DIR_ENV, str(tmp_path))
    assert compile_cache.cache_dir() == tmp_path / "compiled-models"
    monkeypatch.delenv(compile_cache.CACHE_DIR_ENV)
    assert compile_cache.cache_dir().name == "compiled-models"
    for off in ("0", "false", "no"):
        monkeypatch.setenv(compile_cache.CACHE_ENV, off)
        assert not compile_cache.enabled()
    monkeypatch.setenv(compile_cache.CACHE_ENV, "1")
    assert compile_cache.enabled()


def test_stored_model_loads_with_new_data_and_equals_pymc(cache):
    first, loaded = compile_cache.compile_model(tiny_model(data(0)))
    assert not loaded
    assert len(list(cache.glob("*.model"))) == 1
    # another process's view: nothing compiled or loaded here yet
    compile_cache._IN_PROCESS.clear()
    model = tiny_model(data(7))
    second, loaded = compile_cache.compile_model(model)
    assert loaded
    x = np.linspace(-0.5, 0.7, second.n_dim)
    lp, grad = logp_and_grad(second, x)
    assert lp == pytest.approx(pymc_logp(model, second, x), rel=1e-10)
    # the same machine code as the compiled one, reading the new data
    lp_first, grad_first = logp_and_grad(first.with_data(y=data(7)), x)
    assert lp == pytest.approx(lp_first, rel=1e-12)
    np.testing.assert_allclose(grad, grad_first, rtol=1e-12)
    assert lp != pytest.approx(logp_and_grad(first, x)[0])  # the data matter
    # and in this process the callbacks are reused, not loaded twice
    _, again = compile_cache.compile_model(tiny_model(data(8)))
    assert again
    # data of another length: the same entry, reading the new length
    compile_cache._IN_PROCESS.clear()
    longer = tiny_model(data(9, n=45))
    third, loaded = compile_cache.compile_model(longer)
    assert loaded and len(list(cache.glob("*.model"))) == 1
    assert logp_and_grad(third, x)[0] == pytest.approx(pymc_logp(longer, third, x), rel=1e-10)


def test_changed_structure_misses(cache):
    a, _ = compile_cache.compile_model(tiny_model(data(0)))
    compile_cache._IN_PROCESS.clear()
    model = tiny_model(data(0), prior_sd=3.0)
    b, loaded = compile_cache.compile_model(model)
    assert not loaded
    assert len(list(cache.glob("*.model"))) == 2
    x = np.full(b.n_dim, 0.3)
    assert logp_and_grad(b, x)[0] == pytest.approx(pymc_logp(model, b, x), rel=1e-10)
    assert logp_and_grad(b, x)[0] != pytest.approx(logp_and_grad(a, x)[0])


@pytest.mark.parametrize("damage", ["truncate", "flip", "other-key", "garbage"])
def test_damaged_entry_falls_back_to_compiling(cache, damage):
    compile_cache.compile_model(tiny_model(data(0)))
    (path,) = cache.glob("*.model")
    blob = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(blob[: len(blob) // 2])
    elif damage == "flip":
        path.write_bytes(blob[:-100] + bytes([blob[-100] ^ 0xFF]) + blob[-99:])
    elif damage == "other-key":  # a whole entry, filed under another model's key
        compile_cache._IN_PROCESS.clear()
        compile_cache.compile_model(tiny_model(data(0), prior_sd=5.0))
        other = next(p for p in cache.glob("*.model") if p != path)
        path.write_bytes(other.read_bytes())
    else:
        path.write_bytes(b"not a compiled model")
    compile_cache._IN_PROCESS.clear()
    before = dict(compile_cache.stats)
    model = tiny_model(data(3))
    compiled, loaded = compile_cache.compile_model(model)
    assert not loaded
    assert compile_cache.stats["fallbacks"] == before["fallbacks"] + 1
    x = np.full(compiled.n_dim, -0.2)
    assert logp_and_grad(compiled, x)[0] == pytest.approx(pymc_logp(model, compiled, x), rel=1e-10)
    # the entry was rewritten whole
    compile_cache._IN_PROCESS.clear()
    assert compile_cache.compile_model(tiny_model(data(4)))[1]


def test_unwritable_cache_still_compiles(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the folder would be")
    monkeypatch.setenv(compile_cache.CACHE_DIR_ENV, str(blocker))
    monkeypatch.setattr(compile_cache, "_IN_PROCESS", {})
    compiled, loaded = compile_cache.compile_model(tiny_model(data(0)))
    assert not loaded and compiled.n_dim == 6


def test_disabled_cache_neither_reads_nor_writes(cache, monkeypatch):
    monkeypatch.setenv(compile_cache.CACHE_ENV, "0")
    compile_cache.compile_model(tiny_model(data(0)))
    assert not cache.exists() or not list(cache.iterdir())


CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    from test_compile_cache import data, logp_and_grad, pymc_logp, tiny_model
    from scale_transfer import compile_cache

    model = tiny_model(data(int(sys.argv[1])))
    compiled, loaded = compile_cache.compile_model(model)
    x = np.linspace(-0.4, 0.4, compiled.n_dim)
    ok = abs(logp_and_grad(compiled, x)[0] - pymc_logp(model, compiled, x)) < 1e-8
    print(int(loaded), int(ok))
    """
)


def test_two_processes_fill_the_cache_at_once(cache, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(tests=str(Path(__file__).parent)))
    env = os.environ | {"PYTHONWARNINGS": "ignore"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(s)],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for s in (1, 2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert out.split()[-1] == "1"  # a right log density, whether compiled or loaded
    assert len(list(cache.glob("*.model"))) == 1
    assert not list(cache.glob("*.tmp"))  # no temporary file left behind
    third = subprocess.run([sys.executable, str(script), "3"], env=env, text=True,
                           capture_output=True, timeout=600, check=True)  # fmt: skip
    assert third.stdout.split() == ["1", "1"]  # loaded, and right


def test_compiles_through_nutpie_when_its_internals_differ(cache, monkeypatch):
    def moved(model):
        raise AttributeError("module 'nutpie.compile_pymc' has no attribute '_make_functions'")

    monkeypatch.setattr(compile_cache, "_compile", moved)
    model = tiny_model(data(0))
    compiled, loaded = compile_cache.compile_model(model)
    assert not loaded and not cache.exists()
    x = np.full(compiled.n_dim, 0.1)
    assert logp_and_grad(compiled, x)[0] == pytest.approx(pymc_logp(model, compiled, x), rel=1e-10)
