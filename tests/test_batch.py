"""The JAX batch path (``scale_transfer.studies.batch``): one model, its diagnostics, many fits."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

pytest.importorskip("jax")
pytest.importorskip("numpyro")

from scale_transfer import ModelConfig, fit, simulate  # noqa: E402
from scale_transfer.config import SamplerConfig  # noqa: E402
from scale_transfer.model import prepare_data  # noqa: E402
from scale_transfer.sampling import check_convergence  # noqa: E402
from scale_transfer.studies.batch import batch_diagnostics, fit_batch, symbolic_model  # noqa: E402


@pytest.fixture(scope="module")
def subsets() -> list[pd.DataFrame]:
    df = simulate("jft-25shot", 300, 0).data
    models = df["model"].unique()
    rng = np.random.default_rng(0)
    return [df[df["model"].isin(rng.choice(models, 150, replace=False))] for _ in range(2)]


@pytest.mark.parametrize("likelihood", ["gaussian", "student_t", "frontier"])
def test_jax_logp_is_the_pymc_models_and_padding_is_masked(subsets, likelihood):
    from pymc.sampling.jax import get_jaxified_graph

    cfg = ModelConfig(target="all", likelihood=likelihood, law="error")
    fd = prepare_data(subsets[0], cfg)
    sym = symbolic_model(fd, cfg)
    model = sym["model"]
    point = model.initial_point()
    rng = np.random.default_rng(1)
    point = {k: v + rng.normal(0, 0.1, np.shape(v)) for k, v in point.items()}
    expected = model.compile_logp()(point)
    f = get_jaxified_graph(
        inputs=[*sym["values"], *sym["data_in"], sym["mask"]], outputs=[sym["logp"]]
    )
    vals = [point[v.name] for v in sym["values"]]
    ref = fd.groups["log_e_ref"].to_numpy(float)
    n, pad = len(fd.e_ds), 7
    x = np.r_[fd.log_e_us, np.full(pad, -1.0)]
    y = np.r_[fd.e_ds, np.full(pad, 0.9)]
    g = np.r_[fd.group_idx, np.zeros(pad)].astype(fd.group_idx.dtype)
    got = float(f(*vals, fd.log_e_us, fd.e_ds, fd.group_idx, ref, np.ones(n))[0])
    padded = float(f(*vals, x, y, g, ref, np.r_[np.ones(n), np.zeros(pad)])[0])
    unmasked = float(f(*vals, x, y, g, ref, np.ones(n + pad))[0])
    assert got == pytest.approx(expected, rel=1e-10)
    assert padded == pytest.approx(expected, rel=1e-10)
    assert abs(unmasked - expected) > 1.0  # the padded points would count without the mask


def test_batch_diagnostics_equal_check_convergence_per_fit():
    rng = np.random.default_rng(2)
    shape = (3, 2, 150, 4)  # fit, chain, draw, group
    drift = np.array([0.0, 0.05, 0.6])[:, None, None, None] * np.array([0, 1])[None, :, None, None]
    walk = np.cumsum(rng.normal(0, 0.3, shape), axis=2) * np.array([0, 0, 1])[:, None, None, None]
    dims = ("fit", "chain", "draw", "group")
    post = xr.Dataset(
        {v: (dims, rng.normal(size=shape) + drift + walk) for v in ("k", "alpha", "e_ir", "sigma")}
    )
    div = np.zeros(shape[:3], bool)
    div[1, 0, :5] = True
    depth = rng.integers(3, 8, shape[:3]).astype(float)
    stats = xr.Dataset({"diverging": (dims[:3], div), "tree_depth": (dims[:3], depth)})
    table = batch_diagnostics(post, stats)
    assert list(table["divergences"]) == [0, 5, 0]
    for i in range(3):
        dt = xr.DataTree.from_dict(
            {"posterior": post.isel(fit=i, drop=True), "sample_stats": stats.isel(fit=i, drop=True)}
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d = check_convergence(dt)
        row = table.iloc[i]
        assert row["max_rhat"] == pytest.approx(d.max_rhat)
        assert row["min_ess_bulk"] == pytest.approx(d.min_ess_bulk)
        assert row["min_ess_tail"] == pytest.approx(d.min_ess_tail)
        assert bool(row["converged"]) == d.ok
    assert not table["converged"].iloc[2]  # the drifting, wandering fit fails


def test_fit_batch_refuses_mismatched_groups_and_short_padding(subsets):
    other = subsets[1][subsets[1]["task"] != "pets"]
    with pytest.raises(ValueError, match="same groups"):
        fit_batch([subsets[0], other], ModelConfig(target="hull"))
    with pytest.raises(ValueError, match="pad_to"):
        fit_batch(subsets, ModelConfig(target="hull", centered=True), pad_to=5)
    with pytest.raises(ValueError, match="target='top'"):  # cuts and anchors per data set
        fit_batch(subsets, ModelConfig(target="top", likelihood="frontier"))


@pytest.mark.slow
def test_fit_batch_agrees_with_the_nutpie_fit(subsets):
    cfg = ModelConfig(target="hull", centered=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit_batch(subsets, cfg, SamplerConfig(draws=400, tune=400, chains=2, progress=False))
        ref = fit(subsets[1], cfg, draws=1000, tune=1000, chains=2, progress=False)
    assert res.posterior["asymptote"].sizes == {"fit": 2, "chain": 2, "draw": 400, "group": 8}
    table = res.asymptotes(0.9)
    assert list(table.columns) == [
        "fit", "setting", "task", "mean", "lower", "upper", "prob", "interval"
    ]  # fmt: skip
    assert (table["lower"] <= table["mean"]).all() and (table["mean"] <= table["upper"]).all()
    mine = table[table["fit"] == 1].set_index("task")
    theirs = ref.summary(prob=0.9).set_index("task").loc[mine.index]
    # the same posterior (up to Monte Carlo error): means well inside each other's intervals
    width = theirs["upper"] - theirs["lower"]
    assert ((mine["mean"] - theirs["mean"]).abs() < 0.15 * width + 0.002).all()
    assert ((mine["upper"] - mine["lower"]) / width).between(0.7, 1.4).all()
    assert res.diagnostics["divergences"].sum() < 0.02 * 2 * 2 * 400
    # a second batch of the same shape reuses the compiled program
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc = SamplerConfig(draws=400, tune=400, chains=2, seed=1, progress=False)
        again = fit_batch(subsets, cfg, sc)
    assert again.timings["jit_cached"] and not res.timings["jit_cached"]


@pytest.mark.slow
def test_numpyro_sampler_runs_the_same_model(subsets, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="pymc")  # as PyMC sets it outside pytest
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        post = fit(subsets[0], target="hull", sampler="numpyro", draws=300, tune=300,
                   chains=2, progress=False)  # fmt: skip
    assert "NUTS[numpyro]" not in caplog.text  # progress=False is quiet, as with nutpie
    assert post.dt["posterior"].sizes["chain"] == 2
    assert post.diagnostics.divergences < 0.05 * 600
    s = post.summary(prob=0.9)
    assert s["upper"].gt(s["lower"]).all()
