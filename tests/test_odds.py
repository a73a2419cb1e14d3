"""The odds-space law, its drift layer (leave-future-out) and the extrapolation self-check."""

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from scale_transfer.config import ModelConfig
from scale_transfer.convergence import ConvergenceWarning
from scale_transfer.extrapolation import (
    CAP,
    DRIFT_SD,
    apply_drift,
    band_split,
    drift_correlation,
    drift_rate,
    fitted_rows,
    refit,
    refit_verdicts,
)
from scale_transfer.odds import logit, logit_mean
from scale_transfer.posterior import Posterior, fit
from scale_transfer.selfcheck import ALL, LEVELS, crps_draws, score_table

pytestmark = pytest.mark.filterwarnings("ignore::scale_transfer.sampling.ConvergenceWarning")

#: per task: a, alpha, asymptote c, scatter sd in logit units
TRUTH = {"t1": (0.5, 1.2, 0.9, 0.15), "t2": (-0.5, 0.8, 0.97, 0.2), "t3": (0.0, 1.5, 0.8, 0.1)}
KICK = 1.5  # the top eighth of each task sits above the law by this much per logit beyond


def odds_data(n=60, seed=0, kick=KICK):
    """Points of the odds law; above the 7/8 quantile of logit US they drift upwards."""
    rng = np.random.default_rng(seed)
    rows = []
    for task, (a, alpha, c, sd) in TRUTH.items():
        us = np.sort(rng.uniform(0.3, 0.85, n))
        x = logit(us)
        hinge = np.maximum(x - np.quantile(x, 7 / 8), 0.0)
        y = logit(c * expit(a + alpha * x)) + kick * hinge + sd * rng.standard_normal(n)
        rows.append(pd.DataFrame({"model": [f"m{i:03d}" for i in range(n)], "task": task,
                                  "us_acc": us, "ds_acc": expit(y)}))  # fmt: skip
    return pd.concat(rows, ignore_index=True)


SAMPLER = dict(draws=200, tune=300, chains=2, seed=3, progress=False)


@pytest.fixture(scope="module")
def plain():
    return fit(odds_data(kick=0.0), law="odds", extrapolation="none", **SAMPLER)


@pytest.fixture(scope="module")
def lfo():
    return fit(odds_data(), law="odds", extrapolation="lfo", **SAMPLER)


def test_law_is_stable_and_matches_its_definition():
    x = np.linspace(-4, 6, 9)
    direct = logit(0.9 * expit(0.3 + 1.2 * x))
    np.testing.assert_allclose(logit_mean(0.3, 1.2, logit(0.9), x), direct, atol=1e-9)
    # near c -> 1 the law is logit-linear, without cancellation
    np.testing.assert_allclose(logit_mean(0.0, 1.0, 40.0, np.array([30.0])), [30.0], atol=1e-3)
    # per-group asymptotes indexed by each point's group: the same curve
    g = np.array([0, 1, 1, 0, 2, 2, 1, 0, 2])
    logit_c = logit(np.array([0.9, 0.97, 0.8]))
    by_point = logit_mean(0.3, 1.2, logit_c[g], x)
    np.testing.assert_allclose(logit_mean(0.3, 1.2, logit_c, x, index=g), by_point, rtol=1e-12)


def test_config_refuses_what_the_odds_law_lacks_and_keeps_old_hashes():
    with pytest.raises(ValueError, match="law"):
        ModelConfig(law="power")
    with pytest.raises(ValueError, match="gaussian"):
        ModelConfig(law="odds", likelihood="student_t")
    with pytest.raises(ValueError, match="needs law='odds'"):
        fit(odds_data(), law="error", extrapolation="lfo", **SAMPLER)
    # the paper's law keeps its hash; the drift layer is not part of the sampled model
    assert (
        ModelConfig(extrapolation="lfo", law="odds").structure_hash()
        == ModelConfig(law="odds").structure_hash()
    )
    assert ModelConfig(law="error").structure_hash() != ModelConfig(law="odds").structure_hash()
    # the default: the odds law with its drift layer for plain Gaussian fits of all points,
    # the paper's law for the rest; a saved config without a law is the paper's
    assert (ModelConfig().law, ModelConfig().extrapolation) == ("odds", "lfo")
    for other in ({"target": "hull"}, {"likelihood": "frontier"}, {"effects": ("family",)}):
        assert (ModelConfig(**other).law, ModelConfig(**other).extrapolation) == ("error", "none")
    old = ModelConfig(law="error").to_dict()
    del old["law"], old["extrapolation"]
    assert ModelConfig.from_dict(old) == ModelConfig(law="error")


def test_odds_fit_recovers_the_law_and_predicts(plain):
    s = plain.summary(prob=0.9)
    # the asymptote is sampled as headroom above each task's own curve: no unseen-task row
    assert list(s.task) == list(TRUTH)
    assert np.all((s["lower"] > 0) & (s["upper"] <= 1))
    us = np.array([0.4, 0.6, 0.8])
    mean_curve = plain.predict_draws(us, "curve").mean(0)
    for g, (a, alpha, c, _) in enumerate(TRUTH.values()):
        np.testing.assert_allclose(mean_curve[g], c * expit(a + alpha * logit(us)), atol=0.03)
    alpha = plain.summary(var="alpha").set_index("task")
    assert alpha.loc["t3", "mean"] > alpha.loc["t2", "mean"]
    curve = plain.predict_draws([0.5, 0.9], "curve")
    new = plain.predict_draws([0.5, 0.9], "new-model")
    assert curve.shape == new.shape == (400, 3, 2)
    assert np.all(curve < plain.draws("asymptote")[..., None] + 1e-12)  # below the asymptote
    assert np.all(new.std(0) > curve.std(0))  # the scatter widens the new-model draws
    assert plain.drift is None and plain.self_check is None


def test_band_split_takes_the_top_ninth_per_task():
    data = odds_data().assign(setting="s")
    rest, band, sizes = band_split(data)
    assert sizes == {("s", t): 7 for t in TRUTH}  # ceil(60 / 9)
    for task in TRUTH:
        assert band[band.task == task].us_acc.min() >= rest[rest.task == task].us_acc.max()


def test_apply_drift_shifts_beyond_the_data_only_and_caps_the_shift():
    drift = pd.DataFrame({"group": ["g"], "x_max": [1.0], "reach": [0.5], "beta": [2.0],
                          "kappa2": [4.0], "var_beta": [0.0]})  # fmt: skip
    x = np.array([0.0, 1.0, 1.25, 3.0])
    mu, sd = np.zeros((1, 1, 4)), np.ones((1, 1, 4))
    loc, scale = apply_drift(drift, ["g"], x, mu, sd)
    # inside: as fitted; at the edge: kappa only; beyond: beta d, capped at beta * reach
    np.testing.assert_allclose(loc[0, 0], [0.0, 0.0, 0.5, 2.0 * CAP * 0.5])
    np.testing.assert_allclose(scale[0, 0], [1.0, 2.0, np.sqrt(4 + 0.25), np.sqrt(4 + 16)])
    # a negative drift moves the other way
    loc2, _ = apply_drift(drift.assign(beta=-2.0), ["g"], x, mu, sd)
    np.testing.assert_allclose(loc2[0, 0], -loc[0, 0])


def test_the_headroom_is_each_groups_own_the_rest_pooled():
    from scale_transfer.model import build_model, prepare_data

    cfg = ModelConfig(law="odds", extrapolation="none")
    model = build_model(prepare_data(odds_data(), cfg), cfg)
    free = {rv.name for rv in model.free_RVs}
    assert "log_headroom_group" in free and "log_headroom_mu" not in model.named_vars
    assert {"odds_ref_mu", "odds_ref_sigma", "log_scatter_mu"} <= free


def test_the_drift_uncertainty_is_pooled_over_the_groups():
    # g2's band showed no drift; beyond the data it still gets the groups' drift rate
    drift = pd.DataFrame({"group": ["g1", "g2"], "n_band": [5, 5], "x_max": [1.0, 1.0],
                          "reach": [0.5, 0.5], "beta": [2.0, 0.0], "kappa2": [1.0, 1.0],
                          "var_beta": [0.0, 0.0], "beta_z": [4.0, 0.0]})  # fmt: skip
    tau = drift_rate(drift)
    assert tau == pytest.approx(DRIFT_SD * np.sqrt(8.0))
    x = np.array([0.5, 1.0, 2.0])
    mu, sd = np.zeros((1, 2, 3)), np.full((1, 2, 3), 0.5)
    loc, scale = apply_drift(drift, ["g1", "g2"], x, mu, sd)
    want = np.sqrt(0.25 + (tau * 0.5 * np.array([0.0, 0.0, 1.0])) ** 2)
    for g in (0, 1):  # the same width for both: the rate is the groups', in scatter units
        np.testing.assert_allclose(scale[0, g], [0.5, *want[1:]])
    np.testing.assert_allclose(loc[0, 1], 0.0)  # no shift where the band showed none
    assert drift_correlation(drift) is None  # a table without the band's correlation


def test_the_drift_rate_of_each_draw_follows_its_student_t_predictive():
    # tau is estimated from G = 2 groups' drifts: with an rng each posterior draw gets
    # tau / sqrt(chi2_2 / 2) per group, one rate for all of the group's x beyond the data
    from scipy import stats

    drift = pd.DataFrame({"group": ["g1", "g2"], "n_band": [5, 5], "x_max": [1.0, 1.0],
                          "reach": [0.5, 0.5], "beta": [2.0, 0.0], "kappa2": [1.0, 1.0],
                          "var_beta": [0.0, 0.0], "beta_z": [4.0, 0.0]})  # fmt: skip
    tau, n = drift_rate(drift), 40_000
    x = np.array([2.0, 3.0])  # d = 1 and 2
    mu, sd = np.zeros((n, 2, 2)), np.full((n, 2, 2), 0.5)
    _, scale = apply_drift(drift, ["g1", "g2"], x, mu, sd, rng=np.random.default_rng(0))
    rate = np.sqrt(scale**2 - 0.25) / (0.5 * np.array([1.0, 2.0]))
    np.testing.assert_allclose(rate[..., 0], rate[..., 1])  # one rate per draw and group
    assert np.corrcoef(rate[:, 0, 0], rate[:, 1, 0])[0, 1] == pytest.approx(0.0, abs=0.03)
    # a new drift beta_new = rate * N(0, 1) is Student-t with 2 degrees of freedom, scale tau
    beta_new = rate[:, 0, 0] * np.random.default_rng(1).standard_normal(n)
    for q in (0.75, 0.95):
        want = tau * stats.t.ppf(q, df=2)
        assert np.quantile(beta_new, q) == pytest.approx(want, rel=0.05)
    # without an rng: the Gaussian with rate tau (conditional prediction's)
    _, plain = apply_drift(drift, ["g1", "g2"], x, mu[:1], sd[:1])
    np.testing.assert_allclose(plain[0, 0], np.sqrt(0.25 + (tau * 0.5 * np.array([1, 2])) ** 2))


def test_lfo_learns_an_upward_drift_and_carries_it_beyond_the_data(lfo):
    d = lfo.drift.set_index("group")
    assert list(d.index) == list(TRUTH)
    assert (d["beta"] > 0).all()  # the band sits above the inner fit
    assert (d["reach"] > 0).all() and (d["kappa2"] > 0).all()
    us_max = lfo.data.groupby("task")["us_acc"].max()
    far = float(expit(logit(us_max.max()) + 1.0))
    inside = float(lfo.data.us_acc.median())
    layered = lfo.predict_draws([inside, far], "new-model", seed=1)
    lfo_drift, lfo.drift = lfo.drift, None
    try:
        bare = lfo.predict_draws([inside, far], "new-model", seed=1)
    finally:
        lfo.drift = lfo_drift
    np.testing.assert_array_equal(layered[..., 0], bare[..., 0])  # inside: as fitted
    # the band's residual correlation across groups: a correlation matrix
    r = drift_correlation(lfo.drift)
    assert r.shape == (3, 3) and np.allclose(np.diag(r), 1.0) and np.allclose(r, r.T)
    assert np.all(np.linalg.eigvalsh(r) > 0) and np.all(np.abs(r) < 1 + 1e-12)
    # beyond: shifted up (in logit: the median moves with it) and wider
    assert np.all(np.median(layered[..., 1], 0) > np.median(bare[..., 1], 0))
    assert np.all(np.ptp(logit(layered[..., 1]), 0) > np.ptp(logit(bare[..., 1]), 0))


def test_self_check_table(lfo):
    t = lfo.self_check
    cols = ["task", "setting", "n", *(f"cov{round(p * 100)}" for p in LEVELS), "crps", "mse",
            "bias", "width90"]  # fmt: skip
    assert list(t.columns) == cols
    assert list(t.task) == [*TRUTH, ALL]
    assert t.set_index("task").loc[ALL, "n"] == 21
    cov = t[[f"cov{round(p * 100)}" for p in LEVELS]].to_numpy()
    assert np.all((cov >= 0) & (cov <= 1)) and np.all(np.diff(cov, axis=1) >= 0)
    assert (t.crps > 0).all() and (t.mse > 0).all() and (t.width90 > 0).all()


def test_refits_convergence_is_kept(lfo):
    r = lfo.refits
    assert list(r.refit) == ["drift layer", "self-check"]
    # the refits drop each group's top band, then the next one: fewer points each time
    n = int(lfo.groups["n"].sum())
    assert n > r.points.iloc[0] > r.points.iloc[1] > 0
    assert (r.max_rhat >= 1.0).all() and (r.min_ess_bulk > 0).all() and (r.seconds > 0).all()
    assert (r.ok == (r.failed == "")).all()
    lines = refit_verdicts(r)
    assert len(lines) == 2 and lines[0].startswith("drift layer refit (")


def test_a_refit_that_fails_its_check_fails_the_report_verdict(lfo, monkeypatch):
    from scale_transfer.report.core import _verdict

    bad = lfo.refits.copy()
    bad.loc[1, ["ok", "max_rhat", "failed"]] = [False, 1.05, "R-hat 1.050 > 1.01 at x."]
    monkeypatch.setattr(lfo, "refits", bad)
    v = _verdict(lfo)
    assert not v.ok and "self-check refit: NOT CONVERGED (max R-hat 1.050" in v.numbers
    assert any("R-hat 1.050 > 1.01 at x." in reason for reason in v.reasons)
    assert "NOT CONVERGED" in refit_verdicts(bad)[1]


def test_a_refit_that_fails_warns_naming_the_refit(lfo):
    # one draw per chain cannot pass the checks: the warning says which refit failed
    post = copy.copy(lfo)
    post.sampler = dataclasses.replace(lfo.sampler, draws=5, tune=5, strict=False)
    with pytest.warns(ConvergenceWarning, match="the drift layer's refit .* did not converge"):
        refit(post, fitted_rows(lfo), "drift layer")


def test_save_and_load_keep_the_drift_layer_and_the_self_check(lfo, tmp_path):
    path = lfo.save(tmp_path / "odds.nc")
    back = Posterior.load(path)
    assert back.config == lfo.config
    pd.testing.assert_frame_equal(back.drift, lfo.drift, check_dtype=False)
    pd.testing.assert_frame_equal(back.self_check, lfo.self_check, check_dtype=False)
    pd.testing.assert_frame_equal(back.refits, lfo.refits, check_dtype=False)
    np.testing.assert_allclose(
        back.predict_draws([0.95], "new-model"), lfo.predict_draws([0.95], "new-model")
    )


def test_crps_of_draws():
    rng = np.random.default_rng(0)
    draws = rng.standard_normal((4000, 1))
    # CRPS of a standard normal at 0: 2 phi(0) - 1 - 2 * 0 ... = (sqrt(2) - 1) / sqrt(pi)
    np.testing.assert_allclose(crps_draws(draws, np.zeros(1)), (np.sqrt(2) - 1) / np.sqrt(np.pi),
                               atol=0.01)  # fmt: skip
    pts = pd.DataFrame({"setting": "s", "task": ["a", "a", "b"], "ds_acc": [0.5, 0.6, 0.7],
                        "pred": [0.5, 0.5, 0.8], "crps": 0.1, **{f"in{round(p * 100)}": 1.0
                        for p in LEVELS}, "w90": 0.2})  # fmt: skip
    t = score_table(pts).set_index("task")
    np.testing.assert_allclose(t.loc[ALL, "bias"], 0.0, atol=1e-12)
    np.testing.assert_allclose(t.loc["a", "mse"], 0.005)


@pytest.mark.slow
def test_effects_in_the_odds_law_shift_a_kind_of_model_and_reach_the_drift_layer():
    # "robust" models sit 0.8 logits above the law, and are most of each task's top
    d = odds_data(kick=0.0)
    rng = np.random.default_rng(1)
    rank = d.groupby("task")["us_acc"].rank(pct=True).to_numpy()
    d["robust"] = rng.uniform(size=len(d)) < 0.1 + 0.8 * rank**3
    d.loc[d["robust"], "ds_acc"] = expit(logit(d.loc[d["robust"], "ds_acc"]) + 0.8)
    d["family"] = rng.choice(["f1", "f2", "f3", "f4"], len(d))  # no effect of its own
    post = fit(d, law="odds", extrapolation="lfo", effects=("robust", "family"), **SAMPLER)
    assert (post.config.law, post.config.effects) == ("odds", ("robust", "family"))
    for part in ("odds_level", "log_alpha", "log_scatter"):
        assert post.draws(f"effect_robust_{part}").shape == (400, 2, 3)
    assert post.draws("effect_family_odds_level").shape == (400, 4, 3)
    assert "effect_family_log_alpha" not in post.dt["posterior"]  # named levels: level only
    lift = post.draws("effect_robust_odds_level")[:, 1]  # (draws, group): True against False
    assert np.all(np.median(lift, axis=0) > 0.4)
    us = np.array([0.6, 0.95])
    plain = post.predict_draws(us, "new-model", effects={"robust": False, "family": "f1"})
    robust = post.predict_draws(us, "new-model", effects={"robust": True, "family": "f1"})
    assert np.all(np.median(robust, 0) > np.median(plain, 0))
    with pytest.warns(UserWarning, match="'f9' not among the fitted levels"):
        new = post.predict_draws(us, "new-model", effects={"robust": False, "family": "f9"})
    assert new.std(0).mean() > plain.std(0).mean()  # an unseen level adds its spread
    # the drift layer and the self-check scored the band's models with their own levels
    assert post.drift is not None and post.self_check is not None
    assert np.all(np.abs(post.drift["beta"]) < 1.5)  # no drift left once "robust" is known
    with pytest.raises(ValueError, match="without effects"):
        post.predict([0.7], given={"t1": 0.4})


def test_a_column_of_sparse_levels_shifts_only_the_odds_curves_level():
    from scale_transfer.model import build_model, prepare_data

    d = odds_data(n=40, kick=0.0)
    d["family"] = "f" + (d["model"].str[1:].astype(int) // 2).astype(str)  # 2 points per cell
    d["extra"] = d["us_acc"] > 0.6  # a boolean column: plenty of points in each cell
    config = ModelConfig(law="odds", effects=("family", "extra"))
    names = set(build_model(prepare_data(d, config), config).named_vars)
    assert {"effect_family_odds_level", "effect_extra_odds_level"} <= names
    assert {"effect_extra_log_alpha", "effect_extra_log_scatter"} <= names
    assert not {"effect_family_log_alpha", "effect_family_log_scatter"} & names
    # the paper's law keeps its level and exponent effects for every column
    paper = ModelConfig(law="error", effects=("family",))
    names = set(build_model(prepare_data(d, paper), paper).named_vars)
    assert {"effect_family_log_level", "effect_family_log_alpha"} <= names


@pytest.mark.parametrize("law", ["odds", "error"])
def test_a_column_of_few_rich_levels_sums_to_zero_in_each_group(law):
    import pymc as pm

    from scale_transfer.model import EFFECT_CENTERED_MIN, build_model, prepare_data

    d = odds_data(n=60, kick=0.0)
    d["run"] = "r" + (d["model"].str[1:].astype(int) % 3).astype(str)  # 20 points per cell
    config = ModelConfig(law=law, effects=("run",))
    assert d.groupby(["run", "task"]).size().min() >= EFFECT_CENTERED_MIN
    model = build_model(prepare_data(d, config), config)
    part = "odds_level" if law == "odds" else "log_level"
    name = f"effect_run_{part}"
    assert isinstance(
        model[f"{name}_zerosum"].owner.op, pm.distributions.multivariate.ZeroSumNormalRV
    )
    draws = pm.draw(model[name], draws=50, random_seed=1)  # (draw, level, group)
    assert draws.shape == (50, 3, 3)
    np.testing.assert_allclose(draws.sum(axis=1), 0.0, atol=1e-9)
    assert draws.std() > 0.1  # not all zero: each level still moves its group's curve
    # sparse cells keep the non-centred effect, which does not sum to zero
    sparse = d.assign(run="r" + d["model"].str[1:])  # one point per cell
    names = set(build_model(prepare_data(sparse, config), config).named_vars)
    assert f"{name}_z" in names and f"{name}_zerosum" not in names
