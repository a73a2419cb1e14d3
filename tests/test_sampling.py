"""Chain starts (least-squares values, their place in the flat vector), adaptation, time limit."""

import warnings

import numpy as np
import pytest
import xarray as xr

from scale_transfer.model import ModelConfig, build_model, prepare_data
from scale_transfer.sampling import (
    INIT_JITTER,
    LOW_RANK_MAX_EFFECTS,
    ConvergenceWarning,
    SamplerConfig,
    _compiled_with_layout,
    _initial_point_fn,
    check_convergence,
    effect_level_parameters,
    lsq_start,
    resolve_adaptation,
    resolve_target_accept,
    sample,
)
from scale_transfer.simulate import simulate


@pytest.fixture(scope="module")
def sim():
    return simulate("jft-25shot", 300, 0)


@pytest.mark.parametrize("pooling", ["hierarchical", "independent", "complete"])
def test_lsq_start_names_are_model_variables(sim, pooling: str) -> None:
    config = ModelConfig(target="hull", pooling=pooling, likelihood="frontier")
    fd = prepare_data(sim.data, config)
    start = lsq_start(fd, config)
    names = {rv.name for rv in build_model(fd, config).free_RVs}
    assert start and set(start) <= names
    assert all(np.isfinite(np.asarray(v)).all() for v in start.values())


@pytest.mark.parametrize("pooling", ["hierarchical", "independent"])
def test_anchored_top_start_names_the_model_variables_and_keeps_the_law(
    pooling: str, monkeypatch
) -> None:
    # a top fit samples its law through the frontier at the best models: the start names
    # those variables and maps back to the least-squares law of the direct start
    from scipy import special

    from scale_transfer import sampling
    from scale_transfer.model import uses_anchor

    config = ModelConfig(target="top", likelihood="frontier", pooling=pooling)
    fd = prepare_data(simulate("jft-25shot", 300, 0).data, config)
    assert uses_anchor(config, fd)
    start = lsq_start(fd, config)
    assert set(start) <= {rv.name for rv in build_model(fd, config).free_RVs}
    monkeypatch.setattr(sampling, "uses_anchor", lambda config, fd: False)
    direct = lsq_start(fd, config)
    dim = "group" if pooling == "independent" else "task"
    best = special.expit(start[f"logit_frontier_best_{dim}"])
    e_ir = best * special.expit(start[f"logit_e_ir_share_{dim}"])
    at_ref = best + np.exp(start[f"log_frontier_rise_{dim}"])  # the frontier at log_e_ref
    level = np.log(at_ref - e_ir)
    np.testing.assert_allclose(level, direct[f"log_level_{dim}"], rtol=1e-6)
    alpha = np.log((at_ref - e_ir) / (best - e_ir)) / (
        fd.groups["log_e_ref"] - fd.groups["log_e_best"]
    )
    np.testing.assert_allclose(np.log(alpha), direct[f"log_alpha_{dim}"], rtol=1e-6)
    np.testing.assert_allclose(special.logit(e_ir), direct[f"logit_e_ir_{dim}"], rtol=1e-6)


def test_lsq_start_is_near_the_hull_truth(sim) -> None:
    config = ModelConfig(target="hull")
    fd = prepare_data(sim.data, config)
    start = lsq_start(fd, config)
    e_ir = 1.0 / (1.0 + np.exp(-start["logit_e_ir_task"]))
    np.testing.assert_allclose(e_ir, sim.truth["e_ir"], atol=0.03)


def test_initial_point_puts_the_start_in_the_flat_vector(sim) -> None:
    config = ModelConfig(target="hull")
    fd = prepare_data(sim.data, config)
    compiled, layout, _ = _compiled_with_layout(fd, config, "numba")
    start = lsq_start(fd, config)
    fn = _initial_point_fn(compiled.initial_point_func, layout, start)
    x1, x2 = fn(1), fn(2)
    assert x1.shape == (compiled.n_dim,)
    slots = {name: (sl, pair) for name, sl, _, pair in layout}
    sl, pair = slots["sigma"]
    assert pair[0] is np.log
    assert np.all(np.abs(x1[sl] - np.log(start["sigma"])) <= INIT_JITTER)
    sl, _ = slots["logit_e_ir_task"]
    assert np.all(np.abs(x1[sl] - start["logit_e_ir_task"]) <= INIT_JITTER)
    assert not np.allclose(x1, x2)  # chains start apart


def test_frontier_top_start_sets_the_gap_within_the_jitter(sim) -> None:
    # the gap's shape (logit scale) and power (log above its lower bound -1) start at 0.5,
    # jittered like the other starts: PyMC's default start jitters them by +-1, and a
    # chain started at a power of 4 stalled in tuning with a collapsed step size
    config = ModelConfig(target="top", likelihood="frontier")
    fd = prepare_data(sim.data, config)
    start = lsq_start(fd, config)
    assert np.all(start["gap"] > 2 * start["sigma"])  # well beyond the noise
    compiled, layout, _ = _compiled_with_layout(fd, config, "numba")
    slots = {name: (sl, pair) for name, sl, _, pair in layout}
    for seed in range(5):
        x = _initial_point_fn(compiled.initial_point_func, layout, start)(seed)
        for name in ("gap_shape", "gap_power"):
            sl, (forward, backward) = slots[name]
            assert np.all(np.abs(x[sl] - forward(start[name])) <= INIT_JITTER)
            np.testing.assert_allclose(backward(forward(start[name])), start[name])
        power = slots["gap_power"][1][1](x[slots["gap_power"][0]])
        assert np.all((power > 0.1) & (power < 1.1))


def test_adaptation_auto_is_diag_for_odds_effects_of_many_levels(sim) -> None:
    """Many named levels make the low-rank adaptation slow: the odds law then gets diag."""
    df = sim.data
    n_groups = df["task"].nunique()
    levels = LOW_RANK_MAX_EFFECTS // n_groups + 1  # one level too many
    sc = SamplerConfig()
    for n, want in ((levels - 1, "low_rank"), (levels, "diag")):
        data = df.assign(family=[f"f{i % n}" for i in range(len(df))], extra=df.index % 2 == 0)
        config = ModelConfig(law="odds", effects=("family", "extra"))
        fd = prepare_data(data, config)
        assert effect_level_parameters(fd) == n * n_groups  # the True/False column not counted
        assert resolve_adaptation(sc, config, fd).adaptation == want
        # the paper's law keeps its own rule, and without data the odds law is low_rank
        assert (
            resolve_adaptation(sc, ModelConfig(law="error", effects=("family",)), fd).adaptation
            == "diag"
        )
        assert resolve_adaptation(sc, config).adaptation == "low_rank"


def test_init_option(sim) -> None:
    config = ModelConfig(target="hull")
    fd = prepare_data(sim.data, config)
    with pytest.raises(ValueError, match="init must be"):
        sample(fd, config, SamplerConfig(draws=10, tune=10, chains=1, init="map", progress=False))


def test_adaptation_auto_resolves_by_likelihood_and_law() -> None:
    sc = SamplerConfig()
    assert sc.adaptation == "auto"
    for config, want in (
        (ModelConfig(likelihood="frontier"), "low_rank"),
        (ModelConfig(), "low_rank"),  # the odds law
        (ModelConfig(law="error"), "diag"),
        (ModelConfig(likelihood="student_t"), "diag"),
    ):
        got = resolve_adaptation(sc, config)
        assert got.adaptation == want
        assert got.draws == sc.draws  # the rest is kept
    chosen = SamplerConfig(adaptation="diag")
    assert resolve_adaptation(chosen, ModelConfig(likelihood="frontier")) is chosen
    with pytest.raises(ValueError, match="adaptation must be"):
        SamplerConfig(adaptation="dense")


def test_draws_tune_and_depth_auto_resolve_by_target() -> None:
    from scale_transfer.config import (
        DEFAULT_DRAWS,
        DEFAULT_MAX_DEPTH,
        DEFAULT_TUNE,
        TOP_DRAWS,
        TOP_MAX_DEPTH,
        TOP_TUNE,
    )
    from scale_transfer.sampling import resolve_tuning

    auto = SamplerConfig()
    assert (auto.draws, auto.tune, auto.max_depth) == ("auto", "auto", "auto")
    top = resolve_tuning(auto, ModelConfig(target="top", likelihood="frontier"))
    assert (top.draws, top.tune, top.max_depth) == (TOP_DRAWS, TOP_TUNE, TOP_MAX_DEPTH)
    other = resolve_tuning(auto, ModelConfig())
    assert (other.draws, other.tune, other.max_depth) == (
        DEFAULT_DRAWS, DEFAULT_TUNE, DEFAULT_MAX_DEPTH
    )  # fmt: skip
    chosen = SamplerConfig(draws=200, tune=100, max_depth=6)
    assert resolve_tuning(chosen, ModelConfig(target="top", likelihood="frontier")) == chosen
    with pytest.raises(ValueError, match="draws must be a whole number"):
        SamplerConfig(draws="many")


def test_sampler_sizes_are_checked() -> None:
    for bad in (
        {"draws": 0},
        {"chains": 0},
        {"tune": -5},
        {"draws": 2.5},
        {"chains": True},
        {"cores": 0},  # nutpie waited forever
        {"seed": -1},
        {"seed": 1.5},
    ):
        with pytest.raises(ValueError, match=f"{next(iter(bad))} must be a whole number"):
            SamplerConfig(**bad)
    with pytest.raises(ValueError, match="sampler must be one of"):
        SamplerConfig(sampler="stan")
    assert SamplerConfig(draws=np.int64(10), tune=0, chains=1).draws == 10  # numpy ints pass


def test_numpyro_without_jax_says_what_to_install(monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "jax" else real(name, *a)
    )
    with pytest.raises(ValueError, match=r"needs jax.*pip install 'scale-transfer\[jax\]'"):
        SamplerConfig(sampler="numpyro")
    SamplerConfig()  # nutpie needs neither


@pytest.mark.filterwarnings("ignore::scale_transfer.sampling.ConvergenceWarning")
def test_time_limit_stops_sampling_and_leaves_short_fits_alone(sim) -> None:
    import time

    from scale_transfer.sampling import SamplingTimeout

    config = ModelConfig(target="hull")
    fd = prepare_data(sim.data, config)
    quick = {"tune": 100, "chains": 2, "progress": False}
    sample(fd, config, SamplerConfig(draws=10, **quick))  # compile outside the timed part
    t0 = time.perf_counter()
    with pytest.raises(SamplingTimeout, match="time_limit") as stopped:
        sample(fd, config, SamplerConfig(draws=10**6, time_limit=0.3, **quick))
    # the message says what each chain was doing when it was stopped
    assert "chain 0:" in str(stopped.value) and "step size" in str(stopped.value)
    assert time.perf_counter() - t0 < 30  # stopped, not run to the end (minutes)
    dt, diag = sample(fd, config, SamplerConfig(draws=50, time_limit=120, **quick))
    assert dt["posterior"].sizes["draw"] == 50 and diag.chains == 2
    with pytest.raises(ValueError, match="time_limit"):
        SamplerConfig(time_limit=0)


def test_target_accept_auto_is_higher_for_statistics_and_frontier(sim) -> None:
    """300 models: 300 points per task, so all-points Gaussian fits use the statistics."""
    auto = SamplerConfig()
    assert auto.target_accept == "auto"

    def resolved(sc: SamplerConfig, **model) -> float:
        config = ModelConfig(**({"law": "error"} | model))
        return resolve_target_accept(sc, prepare_data(sim.data, config), config).target_accept

    assert resolved(auto, target="all") == 0.99  # Gaussian from sufficient statistics
    assert resolved(auto, target="all", summary_stats=False) == 0.95
    assert resolved(auto, target="hull") == 0.95  # a few points per task: per-point model
    assert resolved(auto, target="all", likelihood="student_t") == 0.95
    assert resolved(auto, target="all", likelihood="frontier") == 0.99
    assert resolved(SamplerConfig(sampler="numpyro"), likelihood="frontier") == 0.99
    assert resolved(SamplerConfig(sampler="numpyro"), target="all") == 0.95
    assert resolved(SamplerConfig(target_accept=0.9), target="all") == 0.9  # as asked
    for bad in (0.0, 1.0, "high"):
        with pytest.raises(ValueError, match="target_accept"):
            SamplerConfig(target_accept=bad)


def test_divergence_advice_depends_on_target_accept():
    """Raising target_accept is advised only while it is below 0.99."""
    rng = np.random.default_rng(3)
    dims = ("chain", "draw", "group")
    post = xr.Dataset({v: (dims, rng.normal(size=(4, 200, 2))) for v in ("k", "alpha")})
    div = np.zeros((4, 200), bool)
    div[0, 3] = True
    stats = xr.Dataset({"diverging": (dims[:2], div)})
    dt = xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        low = check_convergence(dt, target_accept=0.95)
        high = check_convergence(dt, target_accept=0.99)
        unknown = check_convergence(dt)
    assert low.divergences == high.divergences == 1
    assert "raise target_accept (now 0.95) to 0.99" in low.verdict()
    assert "raise target_accept" not in high.verdict()
    assert "already 0.99" in high.verdict()
    assert "raise target_accept to 0.99" in unknown.verdict()
    with pytest.warns(ConvergenceWarning) as caught:
        check_convergence(dt)
    assert caught[0].filename == __file__  # the caller's line, not the package's
