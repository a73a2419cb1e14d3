"""Sufficient statistics of the Gaussian likelihood: exact against the per-point sum."""

from __future__ import annotations

import ctypes
import hashlib
import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from scale_transfer import sampling
from scale_transfer import suffstats as ss
from scale_transfer.model import ModelConfig, build_model, prepare_data
from scale_transfer.simulate import simulate


def _random_data(rng: np.random.Generator, sizes: tuple[int, ...]) -> pd.DataFrame:
    rows = []
    for t, n in enumerate(sizes):
        us = rng.uniform(0.05, 0.9, n)
        e_us = 1.0 - us
        k, alpha, e_ir = rng.uniform(0.2, 0.9), rng.uniform(0.5, 8.0), rng.uniform(0.02, 0.3)
        ds = 1.0 - (k * e_us**alpha + e_ir) - np.abs(rng.normal(0.0, 0.03, n))
        rows.append(
            pd.DataFrame(
                {
                    "model": [f"m{i}" for i in range(n)],
                    "setting": "s",
                    "task": f"t{t}",
                    "us_acc": us,
                    "ds_acc": np.clip(ds, 0.0, 1.0),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def _point(model, rng, alpha=None, e_ir=None):
    """A random point of a centred hierarchical model (optionally at given alpha, e_ir)."""
    p = {k: v + rng.normal(0.0, 0.3, np.shape(v)) for k, v in model.initial_point().items()}
    n = len(p["log_alpha_task"])
    if alpha is not None:
        p["log_alpha_task"] = np.log(alpha) - np.abs(rng.normal(0.0, 1e-3, n))
        p["logit_e_ir_task"] = np.log(e_ir / (1 - e_ir)) + rng.normal(0.0, 1e-2, n)
        p["log_level_task"] = rng.normal(-2.5, 0.5, n)
        p["sigma_log__"] = np.log(rng.uniform(0.005, 0.05, n))
    return p


def _pair(df: pd.DataFrame):
    cfg = ModelConfig(summary_stats=True, centered=True)
    fd = prepare_data(df, cfg)
    exact, stats = build_model(fd, cfg), build_model(fd, cfg, for_sampling=True)
    assert "e_ds" in exact.named_vars and "e_ds" not in stats.named_vars
    assert "e_ds_loglik" in stats.named_vars
    assert [v.name for v in exact.value_vars] == [v.name for v in stats.value_vars]
    return fd, exact, stats


_FNS: dict[int, tuple] = {}


def _fns(model):
    if id(model) not in _FNS:
        _FNS[id(model)] = (model, model.compile_logp(), model.compile_dlogp())
    return _FNS[id(model)][1:]


def _assert_same(exact, stats, point, rtol=1e-10):
    (lp_e, dlp_e), (lp_s, dlp_s) = _fns(exact), _fns(stats)
    a, b = lp_e(point), lp_s(point)
    ga, gb = dlp_e(point), dlp_s(point)
    assert np.isfinite(a) and np.all(np.isfinite(ga))
    assert b == pytest.approx(a, rel=rtol)
    # elementwise, against the gradient's scale (a component can be near 0 at the mode)
    np.testing.assert_allclose(gb, ga, rtol=rtol, atol=rtol * np.abs(ga).max())


ALPHAS = [(0.1, 0.01), (0.1, 0.9), (1.0, 0.2), (3.0, 1e-4), (12.0, 0.9), (39.9, 0.5)]


@pytest.fixture(scope="module")
def paper():
    return _pair(simulate("jft-25shot", 3000, 0).data)


@pytest.mark.parametrize(("alpha", "e_ir"), [(None, None), *ALPHAS])
def test_loglik_and_gradient_equal_the_per_point_model_at_paper_scale(paper, alpha, e_ir):
    _, exact, stats = paper
    rng = np.random.default_rng(0 if alpha is None else int(alpha * 100))
    _assert_same(exact, stats, _point(stats, rng, alpha, e_ir))


def test_equal_near_the_mode_and_on_grid_points(paper):
    fd, exact, stats = paper
    start = sampling.lsq_start(fd, ModelConfig(centered=True, law="error"))
    p = stats.initial_point()
    for name, v in start.items():
        key = "sigma_log__" if name == "sigma" else name
        if key in p:
            p[key] = np.log(v) if name == "sigma" else np.broadcast_to(v, p[key].shape)
    _assert_same(exact, stats, p)
    # alpha exactly on the grid (delta = 0 for alpha and 2 alpha): the gradient stays finite
    p["log_alpha_task"] = np.zeros_like(p["log_alpha_task"])
    _assert_same(exact, stats, p)


@pytest.mark.parametrize("seed", [1, 2])
def test_loglik_and_gradient_on_small_random_data(seed):
    rng = np.random.default_rng(seed)
    _, exact, stats = _pair(_random_data(rng, (5, 40, 17)))
    for alpha, e_ir in [(None, None), *ALPHAS]:
        _assert_same(exact, stats, _point(stats, rng, alpha, e_ir))


def _taylor_numpy(m: np.ndarray, a: float) -> float:
    j = min(int(math.floor(a / ss.GRID_STEP + 0.5)), ss.GRID_SIZE - 1)
    return float(np.polynomial.polynomial.polyval(a - j * ss.GRID_STEP, m[j]))


def test_grid_error_bound():
    assert ss.taylor_error_bound(ss.D_MAX) < 1e-16
    assert ss.taylor_error_bound(3.0) < 1e-19
    rng = np.random.default_rng(3)
    d = np.r_[-3.0, 3.0, rng.uniform(-3.0, 3.0, 50)]  # |d| up to 3
    fd = type("FD", (), {})()
    fd.log_e_us, fd.group_idx, fd.e_ds = d, np.zeros(d.size, int), np.ones(d.size)
    fd.groups = pd.DataFrame({"n": [d.size], "log_e_ref": [0.0]})
    m1 = ss.moments(fd)["ss_m1"][0]
    worst = 0.0
    for a in np.r_[rng.uniform(0.0, 2 * ss.ALPHA_MAX, 200), 0.0, 0.125, 0.126, 2 * ss.ALPHA_MAX]:
        direct = math.fsum(np.exp(a * d).tolist())
        worst = max(worst, abs(_taylor_numpy(m1, a) - direct) / direct)
    assert worst < 1e-13, worst  # rounding only


def test_wall_above_alpha_max(paper):
    _, _, stats = paper
    p = _point(stats, np.random.default_rng(4), 12.0, 0.1)
    p["log_alpha_task"][0] = np.log(ss.ALPHA_MAX * 1.01)
    assert _fns(stats)[0](p) == -np.inf


def test_guard_warns_above_alpha_guard():
    post = xr.Dataset({"alpha": (("chain", "draw", "group"), np.full((1, 3, 2), 5.0))})
    assert not ss.guard(post)
    post["alpha"][0, 1, 1] = ss.ALPHA_GUARD * 1.01
    with pytest.warns(ss.SummaryStatsWarning, match="exact"):
        assert ss.guard(post)


def test_sample_redoes_a_fit_near_the_wall_with_the_exact_model(monkeypatch):
    df = _random_data(np.random.default_rng(5), (220, 230))
    cfg = ModelConfig(law="error")
    fd = prepare_data(df, cfg)
    assert ss.use_summary_stats(fd, cfg)
    asked = []

    def fake_compiled(fd, config, backend, *, exact=False):
        asked.append(exact)
        return None, [], False

    def fake_draws(compiled, sc):
        alpha = ss.ALPHA_GUARD * (1.1 if len(asked) == 1 else 0.1)
        shape = (sc.chains, sc.draws, 2)
        post = xr.Dataset({n: (("chain", "draw", "group"), np.full(shape, alpha))
                           for n in ("alpha", "k", "e_ir", "sigma")})  # fmt: skip
        stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros(shape[:2], bool))})
        return xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})

    monkeypatch.setattr(sampling, "_compiled_with_layout", fake_compiled)
    monkeypatch.setattr(sampling, "nutpie_draws", fake_draws)
    sc = sampling.SamplerConfig(draws=5, tune=5, chains=1, progress=False, init="default")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sampling.ConvergenceWarning)
        with pytest.warns(ss.SummaryStatsWarning):
            dt, _ = sampling.sample(fd, cfg, sc)
    assert asked == [False, True]  # the stats first, then the per-point model
    assert float(dt["posterior"]["alpha"].max()) < ss.ALPHA_GUARD
    # a fit without the stats is never redone
    asked[:] = [None]  # draws far from the wall from the first call on
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sampling.ConvergenceWarning)
        sampling.sample(fd, ModelConfig(summary_stats=False, law="error"), sc)
    assert asked == [None, False]


def _nutpie_logp(compiled, x):
    """Log density and gradient of a nutpie-compiled model at the flat point ``x``.

    Through the callback's address, as nutpie calls it (a numba ``cfunc`` or a model loaded
    from the package's compile cache).
    """
    ptr = ctypes.POINTER(ctypes.c_double)
    proto = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64, ptr, ptr, ptr, ctypes.c_void_p)
    fn = proto(compiled.compiled_logp_func.address)
    x = np.ascontiguousarray(x, float)
    out, lp = np.zeros_like(x), np.zeros(())
    rc = fn(
        x.size,
        x.ctypes.data_as(ptr),
        out.ctypes.data_as(ptr),
        lp.ctypes.data_as(ptr),
        compiled.user_data.ctypes.data_as(ctypes.c_void_p),
    )
    assert rc == 0
    return float(lp), out


def test_compiled_stats_model_is_reused_on_new_data():
    rng = np.random.default_rng(6)
    cfg = ModelConfig(summary_stats=True, centered=True)
    fd1 = prepare_data(_random_data(rng, (30, 50)), cfg)
    fd2 = prepare_data(_random_data(rng, (70, 20)), cfg)  # same groups, other points
    sampling.clear_cache()
    c1, _, cached1 = sampling._compiled_with_layout(fd1, cfg, "numba")
    c2, _, cached2 = sampling._compiled_with_layout(fd2, cfg, "numba")
    assert not cached1 and cached2
    assert "ss_m1" in {v.name for v in c2.shared_var_keys}
    for fd, compiled in ((fd1, c1), (fd2, c2)):
        exact = build_model(fd, cfg)
        point = _point(exact, rng)
        x = np.concatenate([np.ravel(point[v.name]) for v in exact.value_vars])
        lp, grad = _nutpie_logp(compiled, x)
        assert lp == pytest.approx(exact.compile_logp()(point), rel=1e-10)
        np.testing.assert_allclose(grad, exact.compile_dlogp()(point), rtol=1e-9, atol=1e-9)
    # the exact model has its own cache entry
    assert sampling._cache_key(fd1, cfg, "numba") != sampling._cache_key(
        fd1, cfg, "numba", exact=True
    )
    sampling.clear_cache()


def test_resolution_of_summary_stats():
    rng = np.random.default_rng(7)
    small = prepare_data(_random_data(rng, (50, 300)), ModelConfig(law="error"))
    big = prepare_data(_random_data(rng, (ss.MIN_POINTS, 300)), ModelConfig(law="error"))
    assert not ss.use_summary_stats(small, ModelConfig(law="error"))
    assert ss.use_summary_stats(big, ModelConfig(law="error"))
    assert ss.use_summary_stats(small, ModelConfig(summary_stats=True))
    assert not ss.use_summary_stats(big, ModelConfig(summary_stats=False, law="error"))
    assert not ss.use_summary_stats(big, ModelConfig(likelihood="student_t"))
    assert not ss.use_summary_stats(big, ModelConfig(discrepancy=True))
    # the exact model unless asked for sampling
    assert "e_ds" in build_model(big, ModelConfig(law="error")).named_vars
    wide = big.log_e_us.copy()
    wide[0] = big.groups["log_e_ref"][0] - 1.01 * ss.D_MAX
    big.log_e_us = wide
    assert not ss.use_summary_stats(big, ModelConfig(law="error"))
    with pytest.raises(ValueError, match="D_MAX"):
        ss.use_summary_stats(big, ModelConfig(summary_stats=True))


def test_config_field_validation_and_hash():
    with pytest.raises(ValueError, match="summary_stats"):
        ModelConfig(summary_stats="yes")
    with pytest.raises(ValueError, match="summary_stats=True needs"):
        ModelConfig(summary_stats=True, likelihood="frontier")
    with pytest.raises(ValueError, match="summary_stats=True needs"):
        ModelConfig(summary_stats=True, effects=("family",))
    c = ModelConfig(summary_stats=False, law="error")
    assert ModelConfig.from_dict(c.to_dict()) == c
    # not part of the structure hash: same posterior; and configs saved before the field
    # existed (no key: the default) load with the hash they were saved with
    assert c.structure_hash() == ModelConfig(law="error").structure_hash()
    old = ModelConfig(law="error").to_dict()
    # as written before summary_stats, the odds law and its extrapolation layer existed
    from scale_transfer.config import ODDS_PARAMS

    for key in ("summary_stats", "law", "extrapolation"):
        del old[key]
    odds = {f"{p}_{part}" for p in ODDS_PARAMS for part in ("mu", "sigma")}
    old["priors"] = {k: v for k, v in old["priors"].items() if k not in odds}
    old_hash = hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()[:16]
    assert ModelConfig.from_dict(old) == ModelConfig(law="error")
    assert ModelConfig.from_dict(old).structure_hash() == old_hash


def test_fit_saved_without_the_field_loads(tmp_path):
    from scale_transfer.posterior import Posterior

    df = _random_data(np.random.default_rng(8), (10, 12))
    cfg = ModelConfig(law="error")
    fd = prepare_data(df, cfg)
    shape = (("chain", "draw", "group"), np.full((1, 2, 2), 0.5))
    post = xr.Dataset({v: shape for v in ("k", "alpha", "e_ir")})
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((1, 2), bool))})
    dt = xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})
    diag = sampling.Diagnostics(1.0, 400.0, 400.0, 0, 0, 2, 1)
    sc = sampling.SamplerConfig()
    p = Posterior(dt, cfg, sc, fd.groups, fd.frame, diag, fd.data_hash())
    path = p.save(tmp_path / "fit.nc")
    with xr.open_datatree(path) as f:
        saved = f.load()
    old = json.loads(saved.attrs["model_config"])
    del old["summary_stats"]  # as written before the field existed
    saved.attrs["model_config"] = json.dumps(old)
    saved.to_netcdf(tmp_path / "old.nc")
    loaded = Posterior.load(tmp_path / "old.nc", config=ModelConfig(law="error"))
    assert loaded.config == ModelConfig(law="error")


@pytest.mark.slow
def test_fit_with_and_without_stats_agree():
    from scale_transfer.posterior import fit

    df = simulate("jft-25shot", 300, 0).data
    kw = dict(draws=300, tune=300, chains=2, seed=1, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sampling.ConvergenceWarning)
        a = fit(df, ModelConfig(summary_stats=True), **kw)
        b = fit(df, ModelConfig(summary_stats=False, law="error"), **kw)
    import arviz as az

    for var in ("k", "alpha", "e_ir", "sigma"):
        sa = az.summary(a.dt, var_names=[var], kind="all")
        sb = az.summary(b.dt, var_names=[var], kind="all")
        diff = np.abs(sa["mean"].to_numpy() - sb["mean"].to_numpy())
        err = np.hypot(sa["mcse_mean"].to_numpy(), sb["mcse_mean"].to_numpy())
        assert np.all(diff < 5 * err + 1e-6), (var, diff, err)
