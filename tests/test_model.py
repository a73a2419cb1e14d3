import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest

from scale_transfer.model import DEFAULT_PRIORS, ModelConfig, build_model, prepare_data
from scale_transfer.simulate import simulate


@pytest.fixture(scope="module")
def sim():
    return simulate("jft-25shot", 200, 0)


def test_config_validation_and_roundtrip():
    with pytest.raises(ValueError, match="target must be one of"):
        ModelConfig(target="best")
    with pytest.raises(ValueError, match="unknown prior"):
        ModelConfig(priors={"nope": {"dist": "Normal"}})
    c = ModelConfig(likelihood="frontier", priors={"sigma": {"dist": "HalfNormal", "sigma": 0.02}})
    c2 = ModelConfig.from_dict(c.to_dict())
    assert c2.structure_hash() == c.structure_hash()
    assert c2.full_priors["sigma"]["sigma"] == 0.02
    assert c2.full_priors["gap"] == DEFAULT_PRIORS["gap"]
    assert ModelConfig(target="hull").structure_hash() != ModelConfig().structure_hash()


def test_prepare_data_hull_and_groups(sim):
    fd_all = prepare_data(sim.data, ModelConfig())
    fd_hull = prepare_data(sim.data, ModelConfig(target="hull"))
    assert len(fd_all.e_ds) == len(sim.data)
    assert len(fd_hull.e_ds) == fd_all.frame["on_hull"].sum() < len(sim.data)
    assert list(fd_all.groups.task) == list(sim.truth.task)
    assert np.allclose(fd_all.e_ds, 1 - sim.data.ds_acc.to_numpy())
    assert fd_all.data_hash() != fd_hull.data_hash()


@pytest.mark.parametrize(
    ("target", "likelihood"),
    [("all", "gaussian"), ("all", "student_t"), ("all", "frontier"), ("top", "frontier")],
)
@pytest.mark.parametrize("pooling", ["hierarchical", "independent", "complete"])
def test_model_builds_with_finite_logp(sim, target, likelihood, pooling):
    cfg = ModelConfig(target=target, likelihood=likelihood, pooling=pooling)
    m = build_model(prepare_data(sim.data, cfg), cfg)
    assert set(m.coords["group"]) == set(sim.truth.task)
    logp = m.compile_logp()(m.initial_point())
    assert np.isfinite(logp)
    for name in ("k", "alpha", "e_ir", "asymptote"):
        assert name in m.named_vars


def test_by_setting_level():
    import pandas as pd

    d = pd.concat([simulate(s, 100, 0).data for s in ("jft-25shot", "jft-1shot")])
    cfg = ModelConfig(by_setting=True, law="error")
    m = build_model(prepare_data(d, cfg), cfg)
    assert len(m.coords["group"]) == 16 and len(m.coords["task"]) == 8
    assert "log_level_setting" in m.named_vars
    assert np.isfinite(m.compile_logp()(m.initial_point()))


def test_exgaussian_logp_matches_scipy():
    from scipy.stats import exponnorm

    from scale_transfer.likelihoods import exgaussian_logp

    x = np.array([-0.2, -0.01, 0.0, 0.003, 0.05, 0.4, 2.0])
    mu, sigma, nu = 0.01, 0.004, 0.03
    ours = exgaussian_logp(x, mu, sigma, nu).eval()
    ref = exponnorm.logpdf(x, nu / sigma, loc=mu, scale=sigma)
    finite = np.isfinite(ref)
    np.testing.assert_allclose(ours[finite], ref[finite], rtol=1e-6, atol=1e-8)
    # far into the left tail scipy underflows; ours stays finite and decreasing
    assert np.all(np.isfinite(ours)) and ours[0] < ours[1]


def test_exgaussian_logp_is_smooth_where_its_two_forms_meet() -> None:
    """The erfcx form and the exponential's closed form agree, with their gradients, at z = 8."""
    import pytensor
    import pytensor.tensor as pt

    from scale_transfer.likelihoods import EXG_Z_SWITCH, exgaussian_logp

    mu, sigma, nu = 0.01, 0.004, 0.03
    x = pt.dvector("x")
    lp = exgaussian_logp(x, mu, sigma, nu)
    f = pytensor.function([x], [lp, pt.grad(lp.sum(), x)])
    at = mu + sigma * (EXG_Z_SWITCH + sigma / nu)  # the value where z = 8
    step = 2e-10
    value, grad = f(np.array([at - step / 2, at + step / 2]))
    # no jump: the change across the switch is the slope times the step
    assert abs(value[1] - value[0] - grad[0] * step) < 1e-12
    np.testing.assert_allclose(grad[0], grad[1], rtol=1e-9)
    assert grad[1] == pytest.approx(-1.0 / nu, rel=1e-12)  # the exponential's slope


@pytest.mark.parametrize("w", [1e-6, 0.1, 0.3, 0.44])
def test_hypoexp_gaussian_logp_matches_a_numerical_convolution(w: float) -> None:
    from scipy import integrate, stats

    from scale_transfer.likelihoods import hypoexp_gaussian_logp

    mu, sigma, nu = 0.01, 0.004, 0.03
    x = np.array([-0.005, 0.008, 0.012, 0.03, 0.1])

    def gap_pdf(g: float) -> float:
        if w < 1e-3:  # the limit w -> 0: one exponential part
            return stats.expon.pdf(g, scale=nu)
        a, b = 1 / ((1 - w) * nu), 1 / (w * nu)
        return a * b / (b - a) * (np.exp(-a * g) - np.exp(-b * g))

    ref = [
        integrate.quad(
            lambda g, v=v: gap_pdf(g) * stats.norm.pdf(v - mu - g, 0, sigma),
            0,
            1,
            points=[max(v - mu, 0.0)],
            limit=200,
        )[0]  # fmt: skip
        for v in x
    ]
    ours = hypoexp_gaussian_logp(x, mu, sigma, nu, w).eval()
    np.testing.assert_allclose(ours, np.log(ref), rtol=1e-5)


def test_frontier_logp_is_a_density() -> None:
    from scale_transfer.likelihoods import frontier_logp

    grid = np.linspace(-0.05, 1.5, 40001)
    lp = frontier_logp(grid, 0.02, 0.004, 0.03, 0.3, 0.05, 0.25).eval()
    assert np.all(np.isfinite(lp))
    np.testing.assert_allclose(np.trapezoid(np.exp(lp), grid), 1.0, atol=2e-3)


def test_prior_predictive_curves_stay_in_unit_interval_and_increase(sim):
    """Default priors: curves increase in US accuracy everywhere, and stay in [0, 1] from
    US accuracy 0.3 (JFT's models mostly sit in 0.2-0.6) up to 1.0 for >= 90% of draws.

    Over the whole range [0, 1] the fraction is lower (~0.7, see docs/model.md): with a large
    alpha the law extrapolated to US accuracy 0 exceeds error 1 far below the data.
    """
    cfg = ModelConfig(law="error")
    m = build_model(prepare_data(sim.data, cfg), cfg)
    with m:
        pp = pm.sample_prior_predictive(draws=500, random_seed=1, var_names=["k", "alpha", "e_ir"])
    prior = pp["prior"]
    k = prior["k"].values.reshape(-1)
    a = prior["alpha"].values.reshape(-1)
    e = prior["e_ir"].values.reshape(-1)
    us = np.linspace(0.3, 1, 15)
    acc = 1 - (k[:, None] * (1 - us[None]) ** a[:, None] + e[:, None])
    assert np.all(np.diff(acc, axis=1) >= -1e-12)  # increasing in US accuracy
    inside = np.mean(np.all((acc >= 0) & (acc <= 1), axis=1))
    assert inside > 0.9, inside


def test_prior_overrides_are_merged_and_checked():
    # a partial override changes the default distribution's parameters
    assert ModelConfig(priors={"sigma": {"sigma": 0.02}}).priors["sigma"] == {
        "dist": "HalfNormal",
        "sigma": 0.02,
    }
    for bad, says in (
        ({"sigma": {"dist": "HalfNormall"}}, "unknown distribution 'HalfNormall'"),
        ({"sigma": 0.02}, "must be a dict"),
        ({"sigma": {"sigma": -1}}, "sigma must be positive"),
        ({"sigma": {"dist": "HalfNormal", "sigma": 0.1, "bogus": 3}}, "no parameter"),
        ({"nope": {"dist": "Normal"}}, "unknown prior"),
    ):
        with pytest.raises(ValueError, match=says):
            ModelConfig(priors=bad)
    assert ModelConfig().structure_hash() == ModelConfig(priors=DEFAULT_PRIORS).structure_hash()


def test_data_with_a_setting_column_is_validated_too(sim):
    from scale_transfer.data import DataError

    df = sim.data.assign(setting="x")
    df.loc[5, "us_acc"] = 55.0
    with pytest.raises(DataError, match=r"'us_acc' is outside \[0, 1\] at row with index 5"):
        prepare_data(df, ModelConfig())
    with pytest.raises(DataError, match="duplicate"):
        prepare_data(pd.concat([sim.data, sim.data.iloc[[3]]]), ModelConfig())


def test_a_hull_with_fewer_points_than_parameters_is_warned_about(sim):
    import warnings

    from scale_transfer.model import FewHullPointsWarning

    df = sim.data[sim.data.task.isin(["pets", "cars"])].copy()
    # pets: the model with the least upstream accuracy is also the best: a hull of 1 point
    pets = df.task == "pets"
    first = df.loc[pets, "us_acc"].idxmin()
    df.loc[first, "ds_acc"] = 0.999
    with pytest.warns(FewHullPointsWarning, match=r"in pets: 1\. .*population level") as rec:
        fd = prepare_data(df, ModelConfig(target="hull"))
    assert rec[0].filename == __file__  # points at the user's line, not the package's
    assert fd.groups.set_index("task").loc["pets", "n"] == 1
    with pytest.warns(FewHullPointsWarning, match="from the priors"):
        prepare_data(df, ModelConfig(target="hull", pooling="independent"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prepare_data(df, ModelConfig(target="all"))
        prepare_data(df, ModelConfig(target="hull", pooling="complete"))
        prepare_data(sim.data, ModelConfig(target="hull"))


def test_frontier_top_logp_gradient_is_that_of_its_formula() -> None:
    """The written-out gradient equals automatic differentiation of density minus log CDF,
    on every side of the switches: the noise's closed forms (z >= 8 past the gap's mode,
    cut 26 sd or more above the frontier) and points far above and below the frontier."""
    import pytensor

    from scale_transfer.likelihoods import (
        frontier_top_logp,
        hypoexp_gaussian_logcdf,
        hypoexp_gaussian_logp,
    )

    rng = np.random.default_rng(1)
    n = 20000
    mu = rng.uniform(0.01, 0.5, n)
    sigma = np.exp(rng.uniform(np.log(1e-4), np.log(0.05), n))
    nu = np.exp(rng.uniform(np.log(1e-4), np.log(0.2), n))
    w = rng.uniform(0.001, 0.449, n)
    value = mu + rng.normal(0, 1, n) * sigma * rng.choice([1, 5, 30], n)
    value += rng.exponential(nu) * rng.choice([0, 1, 10], n)
    cut = np.maximum(value, mu + rng.choice([-3, 0.5, 3, 40, 200], n) * sigma)
    cut += rng.exponential(0.01, n)
    xs = [pt.dvector(name) for name in ("value", "mu", "sigma", "nu", "w", "cut")]
    ref = hypoexp_gaussian_logp(*xs[:5]) - hypoexp_gaussian_logcdf(xs[5] - xs[1], *xs[2:5])
    outs = []
    for logp in (frontier_top_logp(*xs), ref):
        fn = pytensor.function(xs, [logp, *pt.grad(logp.sum(), xs[1:5])], mode="NUMBA")
        outs.append(fn(value, mu, sigma, nu, w, cut))
    z = (value - mu) / sigma - sigma / ((1 - w) * nu)
    x = (cut - mu) / sigma
    assert 0.2 < (z >= 8).mean() < 0.8 and 0.2 < (x >= 26).mean() < 0.8  # both sides tested
    np.testing.assert_allclose(outs[0][0], outs[1][0], rtol=1e-10, atol=1e-9)
    # both lose digits to cancellation hundreds of noise sds below the frontier
    ok = z > -100
    assert ok.mean() > 0.95
    for ours, autodiff in zip(outs[0][1:], outs[1][1:], strict=True):
        atol = 1e-9 * np.abs(autodiff).max()
        np.testing.assert_allclose(ours[ok], autodiff[ok], rtol=1e-6, atol=atol)


@pytest.mark.parametrize("w", [0.1, 0.3, 0.44])
def test_hypoexp_gaussian_logcdf_matches_the_integral_of_its_density(w: float) -> None:
    from scale_transfer.likelihoods import hypoexp_gaussian_logcdf, hypoexp_gaussian_logp

    sigma, nu = 0.004, 0.03
    grid = np.linspace(-0.06, 0.5, 200001)
    x = pt.dvector("x")
    pdf = np.exp(hypoexp_gaussian_logp(x, 0.0, sigma, nu, w).eval({x: grid}))
    cdf = np.concatenate([[0.0], np.cumsum((pdf[1:] + pdf[:-1]) / 2 * np.diff(grid))])
    t = np.array([-0.012, -0.004, 0.0, 0.005, 0.02, 0.08, 0.3])
    ours = np.exp(hypoexp_gaussian_logcdf(t, sigma, nu, w).eval())
    np.testing.assert_allclose(ours, np.interp(t, grid, cdf), rtol=2e-4, atol=1e-9)
    # far above the frontier the CDF is tiny but its log stays finite and ordered
    far = hypoexp_gaussian_logcdf(np.array([-0.05, -0.03]), sigma, nu, w).eval()
    assert np.all(np.isfinite(far)) and far[0] < far[1] < -20


@pytest.mark.parametrize(("sigma", "nu", "w"), [(0.0026, 0.02, 0.3), (0.004, 0.5, 0.05)])
def test_hypoexp_gaussian_logcdf_stays_exact_far_above_the_frontier(sigma, nu, w) -> None:
    """Against quadrature of ``E_gap[Phi((t - gap)/sigma)]`` in log space, from 200 noise sd
    below the frontier to 200 above: no floor (the log CDF was stuck at log(1e-300) below
    -37 sd, a wall in the density of a kept point that the frontier passes above), no seam
    at the switch to the closed form (26 sd), and a finite gradient everywhere."""
    from scipy import integrate, special

    from scale_transfer.likelihoods import hypoexp_gaussian_logcdf

    rate_a, rate_b = 1 / ((1 - w) * nu), 1 / (w * nu)

    def reference(t: float) -> float:
        base = special.log_ndtr(t / sigma)

        def f(g: float) -> float:
            gap = rate_a * rate_b / (rate_b - rate_a) * (np.exp(-rate_a * g) - np.exp(-rate_b * g))
            return gap * np.exp(special.log_ndtr((t - g) / sigma) - base)

        top = max(t, 0) + 80 * nu + 60 * sigma
        brk = [min(nu, top / 2), max(t, 0) + sigma, min(top / 4, max(t, 0) + 10 * sigma)]
        v, _ = integrate.quad(f, 0, top, limit=2000, epsabs=0, epsrel=1e-12, points=brk)
        return base + np.log(v)

    xs = np.array([-200, -60, -38, -37, -36, -10, 0, 5, 25.9, 26.1, 60, 200.0])
    ours = hypoexp_gaussian_logcdf(xs * sigma, sigma, nu, w).eval()
    np.testing.assert_allclose(ours, [reference(x * sigma) for x in xs], rtol=0, atol=1e-7)
    t = pt.dvector("t")
    grad = pytensor.grad(hypoexp_gaussian_logcdf(t, sigma, nu, w).sum(), t)
    slope = grad.eval({t: np.linspace(-300, 300, 601) * sigma})
    assert np.all(np.isfinite(slope)) and np.all(slope > 0)  # a CDF rises


def test_frontier_top_logp_is_a_density_below_its_cut_and_draws_stay_below() -> None:
    from scale_transfer.likelihoods import frontier_top_logp, frontier_top_random

    mu, sigma, nu, w, cut = 0.02, 0.004, 0.03, 0.3, 0.03
    grid = np.linspace(-0.05, cut, 40001)
    x = pt.dvector("x")
    lp = frontier_top_logp(x, mu, sigma, nu, w, cut).eval({x: grid})
    np.testing.assert_allclose(np.trapezoid(np.exp(lp), grid), 1.0, atol=1e-4)
    draws = frontier_top_random(mu, sigma, nu, w, cut, rng=1, size=20000)
    assert np.all(draws < cut)
    # the draws follow the truncated density: compare their mean with the density's
    mean = np.trapezoid(grid * np.exp(lp), grid)
    assert abs(draws.mean() - mean) < 4 * draws.std() / np.sqrt(draws.size)


def test_select_top_keeps_the_best_share_of_each_us_bin_with_a_separating_cut(sim) -> None:
    from scale_transfer.model import prepare_data, select_top

    df = sim.data.assign(setting="s").reset_index(drop=True)
    keep, cut = select_top(df, share=0.2, n_bins=5)
    assert 0.2 <= keep.mean() <= 0.3
    e_ds = 1 - df["ds_acc"].to_numpy()
    assert np.all(e_ds[keep] < cut[keep]) and np.all(np.isnan(cut[~keep]))
    for task, rows in df.groupby("task").indices.items():
        order = rows[np.argsort(df["us_acc"].to_numpy()[rows], kind="stable")]
        for part in np.array_split(order, 5):
            kept, dropped = part[keep[part]], part[~keep[part]]
            assert len(np.unique(cut[kept])) == 1, task  # one cut per bin ...
            assert np.all(e_ds[dropped] >= cut[kept][0])  # ... above every kept point only
    # ties at the edge are all kept or all dropped: never split by the cut
    tied = df.copy()
    tied["ds_acc"] = np.round(tied["ds_acc"], 2)
    keep_t, cut_t = select_top(tied, share=0.2, n_bins=5)
    e_t = 1 - tied["ds_acc"].to_numpy()
    for c in np.unique(cut_t[keep_t]):
        same_bin = keep_t & (cut_t == c)
        assert not np.any(np.isclose(e_t[same_bin], c))
    fd = prepare_data(sim.data, ModelConfig(target="top", likelihood="frontier"))
    assert fd.e_ds_cut is not None and len(fd.e_ds_cut) == len(fd.e_ds)
    assert np.all(fd.e_ds < fd.e_ds_cut)
    with pytest.raises(ValueError, match="target='top' needs likelihood='frontier'"):
        ModelConfig(target="top")


@pytest.mark.parametrize("pooling", ["hierarchical", "independent"])
def test_anchored_top_law_has_the_posterior_of_the_law_it_reparametrizes(pooling) -> None:
    # a top fit samples each law through the frontier's error at the best models, its rise
    # to the low end of the US range and the irreducible share; its log density must be the
    # direct parametrization's plus the log Jacobian of the map at every point (here taken
    # by finite differences of the map, not from the model's formula)
    from scipy import special

    from scale_transfer.model import uses_anchor

    config = ModelConfig(target="top", likelihood="frontier", pooling=pooling)
    fd = prepare_data(simulate("jft-25shot", 300, 0).data, config)  # 60 points per task
    assert uses_anchor(config, fd)
    new, old = build_model(fd, config), build_model(fd, config, for_prior=True)
    dim = "group" if pooling == "independent" else "task"
    names = [f"logit_frontier_best_{dim}", f"log_frontier_rise_{dim}", f"logit_e_ir_share_{dim}"]
    assert set(names) <= set(new.named_vars)
    assert f"logit_e_ir_{dim}" in {v.name for v in old.free_RVs}
    new_logp, old_logp = new.compile_logp(), old.compile_logp()
    x_best, x_ref = fd.groups["log_e_best"].to_numpy(float), fd.groups["log_e_ref"].to_numpy(float)

    def to_direct(q):  # (logit f, log d, logit u) -> (log_level, log_alpha, logit_e_ir)
        f, d, u = special.expit(q[0]), np.exp(q[1]), special.expit(q[2])
        e_ir, r = u * f, (1 - u) * f
        alpha = np.log1p(d / r) / (x_ref - x_best)
        return np.array([np.log(r + d), np.log(alpha), special.logit(e_ir)])

    rng = np.random.default_rng(0)
    for _ in range(3):
        point = {k: v + rng.normal(0.0, 0.3, np.shape(v)) for k, v in old.initial_point().items()}
        level, e_ir = point[f"log_level_{dim}"], special.expit(point[f"logit_e_ir_{dim}"])
        alpha = np.exp(point[f"log_alpha_{dim}"])
        best = e_ir + np.exp(level + alpha * (x_best - x_ref))
        assert np.all(best < 1)
        q = np.array([special.logit(best), np.log(np.exp(level) + e_ir - best),
                      special.logit(e_ir / best)])  # fmt: skip
        np.testing.assert_allclose(to_direct(q), [level, np.log(alpha), special.logit(e_ir)])
        h, jac = 1e-6, np.zeros((len(best), 3, 3))
        for j in range(3):
            step = np.zeros_like(q)
            step[j] = h
            jac[:, :, j] = ((to_direct(q + step) - to_direct(q - step)) / (2 * h)).T
        jacobian = np.sum(np.log(np.abs(np.linalg.det(jac))))
        direct = (f"log_level_{dim}", f"log_alpha_{dim}", f"logit_e_ir_{dim}")
        anchored = {k: v for k, v in point.items() if k not in direct}
        anchored.update(zip(names, q, strict=True))
        np.testing.assert_allclose(new_logp(anchored), old_logp(point) + jacobian, rtol=1e-8)


def test_top_fits_with_setting_offsets_keep_the_direct_law() -> None:
    from scale_transfer.model import uses_anchor

    data = pd.concat(
        [simulate(s, 300, 0).data.assign(setting=s) for s in ("jft-25shot", "in21k-1shot")]
    )
    config = ModelConfig(target="top", likelihood="frontier", by_setting=True)
    fd = prepare_data(data, config)
    assert not uses_anchor(config, fd)
    assert "logit_e_ir_task" in {v.name for v in build_model(fd, config).free_RVs}
