"""Tests of the held-out validation protocol (scale_transfer.studies.validation)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from scale_transfer.cli import main
from scale_transfer.config import SamplerConfig
from scale_transfer.selfcheck import crps_draws
from scale_transfer.simulate import simulate
from scale_transfer.studies.validation import (
    ALL_GROUP,
    calibration_tolerance,
    crps_normal,
    holdout_split,
    resolve_methods,
    validate_extrapolation,
)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "03_validation.ipynb"


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    d = simulate("jft-25shot", 150, 0).data
    return d[d["task"].isin(["pets", "cifar100", "imagenet"])].reset_index(drop=True)


# ----------------------------------------------------------------------------- scores
@pytest.mark.parametrize(("y", "mu", "sigma"), [(0.0, 0.0, 1.0), (1.3, 0.2, 0.5), (-2.0, 1.0, 2.0)])
def test_crps_normal_matches_its_integral_definition(y: float, mu: float, sigma: float) -> None:
    # CRPS = int (F(x) - 1{x >= y})^2 dx
    def sq(x: float) -> float:
        return (stats.norm.cdf(x, mu, sigma) - (x >= y)) ** 2

    lo, hi = mu - 12 * sigma, mu + 12 * sigma
    val = integrate.quad(sq, lo, y, limit=200)[0] + integrate.quad(sq, y, hi, limit=200)[0]
    assert crps_normal(y, mu, sigma) == pytest.approx(val, rel=1e-6)


def test_crps_normal_known_value_at_the_mean() -> None:
    # at y = mu: sigma * (2 phi(0) - 1/sqrt(pi)) = sigma * (sqrt(2) - 1) / sqrt(pi)
    assert crps_normal(0.0, 0.0, 2.0) == pytest.approx(2 * (math.sqrt(2) - 1) / math.sqrt(math.pi))


def test_crps_draws_is_exact_for_the_empirical_distribution() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(7, 3))
    y = np.array([0.1, -0.5, 2.0])
    brute = np.abs(x - y).mean(0) - 0.5 * np.abs(x[:, None, :] - x[None, :, :]).mean((0, 1))
    np.testing.assert_allclose(crps_draws(x, y), brute, rtol=1e-12)


def test_crps_draws_converges_to_the_normal_closed_form() -> None:
    rng = np.random.default_rng(2)
    y = np.array([0.0, 0.7, -1.5])
    x = rng.normal(0.2, 0.8, size=(40_000, 3))
    np.testing.assert_allclose(crps_draws(x, y), crps_normal(y, 0.2, 0.8), rtol=0.02)


# ------------------------------------------------------------------------------ split
def test_holdout_top_fraction_per_task(small: pd.DataFrame) -> None:
    train, test = holdout_split(small, top=0.1)
    assert len(train) + len(test) == len(small)
    assert not set(train.index) & set(test.index)
    for task, g in small.groupby("task"):
        te, tr = test[test.task == task], train[train.task == task]
        assert len(te) == math.ceil(0.1 * len(g))
        assert te["us_acc"].min() >= tr["us_acc"].max()


def test_holdout_above_threshold(small: pd.DataFrame) -> None:
    cut = float(small["us_acc"].quantile(0.8))
    train, test = holdout_split(small, top=None, above=cut)
    assert (test["us_acc"] > cut).all() and (train["us_acc"] <= cut).all()
    assert len(test) == int((small["us_acc"] > cut).sum())


@pytest.mark.parametrize("kw", [{"top": 0.0}, {"top": 1.5}, {"above": -1.0}, {"above": 2.0}])
def test_holdout_rejects_bad_rules(small: pd.DataFrame, kw: dict) -> None:
    with pytest.raises(ValueError):
        holdout_split(small, **({"top": 0.1} | kw))


def test_resolve_methods() -> None:
    assert resolve_methods("default") == ["lsq", "logit", "default", "effects"]
    every = resolve_methods("all")
    assert {"lsq_hull", "logit", "effects", "odds"} <= set(every)
    assert resolve_methods("lsq, hull") == ["lsq", "hull"]
    with pytest.raises(ValueError, match="unknown method"):
        resolve_methods("nope")


# --------------------------------------------------------------------------- protocol
def test_lsq_only_protocol(small: pd.DataFrame) -> None:
    res = validate_extrapolation(small, options=["lsq", "lsq_hull"], probs=(0.5, 0.9))
    tab = res.table
    assert set(tab["method"]) == {"lsq", "lsq_hull"}
    assert (tab.loc[tab.task == ALL_GROUP, "n_heldout"] == len(holdout_split(small)[1])).all()
    assert ((tab["coverage_90"] >= tab["coverage_50"]) & (tab["width_90"] > tab["width_50"])).all()
    assert set(res.fits["method"]) == {"lsq", "lsq_hull"}
    verdicts = dict(line.split(": ", 1) for line in res.verdicts())
    pooled = res.pooled().set_index("method")
    for method, text in verdicts.items():
        cov90 = pooled.loc[method, "coverage_90"]
        assert text.startswith("calibrated") == (
            abs(cov90 - 0.9) <= 0.05 and abs(pooled.loc[method, "coverage_50"] - 0.5) <= 0.10
        )
    assert "least squares" in verdicts["lsq_hull"]


def test_default_scores_four_levels_and_their_coverage_error(small: pd.DataFrame) -> None:
    res = validate_extrapolation(small, options=["lsq", "logit"])
    assert res.probs == (0.5, 0.8, 0.9, 0.95)
    tab = res.table
    for c in ("50", "80", "90", "95"):
        assert {f"coverage_{c}", f"width_{c}"} <= set(tab.columns)
    want = np.mean([(tab[f"coverage_{round(100 * p)}"] - p) ** 2 for p in res.probs], axis=0)
    np.testing.assert_allclose(tab["coverage_mse"], want)
    assert set(tab.loc[tab.task == ALL_GROUP, "method"]) == {"lsq", "logit"}
    assert res.fits.set_index("method").loc["logit", "kind"] == "logit least squares"


def test_logit_baseline_is_the_t_prediction_interval_of_a_logit_line() -> None:
    from scipy.special import expit, logit

    from scale_transfer.studies.validation_methods import logit_method

    rng = np.random.default_rng(3)
    us = np.sort(rng.uniform(0.3, 0.9, 400))
    ds = expit(-0.5 + 1.2 * logit(us) + rng.normal(0, 0.2, us.size))
    d = pd.DataFrame({"model": [f"m{i}" for i in range(us.size)], "task": "t",
                      "setting": "default", "us_acc": us, "ds_acc": ds})  # fmt: skip
    train, test = d.iloc[:360], d.iloc[360:]
    pts, _ = logit_method("logit", train, test, (0.5, 0.9))
    # the line and its spread are right: the intervals hold about what they say
    assert 0.8 <= np.mean((pts["ds_acc"] >= pts["lower_90"]) & (pts["ds_acc"] <= pts["upper_90"]))
    x = logit(test["us_acc"].to_numpy())
    np.testing.assert_allclose(logit(pts["pred"]), -0.5 + 1.2 * x, atol=0.1)
    # with a known line and spread, the width is the t interval's, mapped through the sigmoid
    center = logit(pts["pred"].to_numpy())
    half = logit(pts["upper_90"].to_numpy()) - center
    np.testing.assert_allclose(center - logit(pts["lower_90"].to_numpy()), half)
    np.testing.assert_allclose(half, stats.norm.ppf(0.95) * 0.2, rtol=0.15)
    assert (pts["crps"] > 0).all() and (pts["crps"] < 0.1).all()


@pytest.mark.filterwarnings("ignore::scale_transfer.sampling.ConvergenceWarning")
def test_odds_method_is_the_odds_law_with_its_drift_layer(small: pd.DataFrame) -> None:
    res = validate_extrapolation(
        small, options=["odds"], sampler=SamplerConfig(draws=60, tune=60, chains=2, progress=False)
    )
    fit = res.fits.iloc[0]
    assert (fit["law"], fit["extrapolation"]) == ("odds", "lfo")
    assert np.isfinite(res.table[["mse", "crps", "coverage_mse"]].to_numpy()).all()


def test_calibration_tolerance() -> None:
    assert calibration_tolerance(0.9) == pytest.approx(0.05)
    assert calibration_tolerance(0.5) == pytest.approx(0.10)


def test_lsq_hull_skips_a_task_with_two_hull_points() -> None:
    rng = np.random.default_rng(0)
    us = np.sort(rng.uniform(0.2, 0.8, 60))
    lo, hi = us[0], us[-7]  # the top 6 (10%) are held out
    curved = 1 - (0.8 * (1 - us) ** 2 + 0.05) - rng.exponential(0.02, 60)
    line = 0.1 + 0.8 * us - 0.5 * np.clip((us - lo) * (hi - us), 0, None)  # hull: 2 points
    models = [f"m{i}" for i in range(60)]
    d = pd.concat(
        [pd.DataFrame({"model": models, "task": t, "us_acc": us, "ds_acc": y})
         for t, y in (("curved", curved), ("line", line))],
        ignore_index=True,
    )  # fmt: skip
    res = validate_extrapolation(d, options=["lsq_hull"])
    assert res.fits.loc[0, "skipped"] == "default/line"
    assert set(res.table["task"]) == {"curved", ALL_GROUP}


@pytest.mark.filterwarnings("ignore::scale_transfer.sampling.ConvergenceWarning")
def test_quick_protocol_run(small: pd.DataFrame, tmp_path: Path) -> None:
    res = validate_extrapolation(
        small,
        options=["lsq", "default"],
        probs=(0.5, 0.9),
        sampler=SamplerConfig(draws=100, tune=150, chains=2, progress=False),
    )
    tab = res.table
    expected = ["method", "setting", "task", "n_train", "n_heldout", "mse", "bias",
                "coverage_50", "width_50", "coverage_90", "width_90", "crps"]  # fmt: skip
    assert all(c in tab.columns for c in expected)
    assert set(tab["method"]) == {"lsq", "default"}
    assert (tab.groupby("method").size() == 4).all()  # 3 tasks + pooled row
    for c in ("coverage_50", "coverage_90"):
        assert tab[c].between(0, 1).all()
    assert (tab[["mse", "crps", "width_50", "width_90"]] >= 0).all().all()
    assert np.isfinite(tab[["mse", "crps"]].to_numpy()).all()
    pts = res.points
    assert (pts["lower_90"] <= pts["upper_90"]).all()
    assert {"converged", "max_rhat", "divergences"} <= set(res.fits.columns)
    # the default's drift layer comes from a refit: its convergence is in the fits table
    default = res.fits.set_index("method").loc["default"]
    assert default["refits_max_rhat"] >= 1.0 and default["refits_min_ess_bulk"] > 0
    paths = res.save(tmp_path)
    assert all(p.exists() for p in paths)
    with pytest.raises(FileExistsError):
        res.save(tmp_path)


def test_cli_validate_extrapolation(
    small: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    csv = tmp_path / "d.csv"
    small.drop(columns=["setting"], errors="ignore").to_csv(csv, index=False)
    out = tmp_path / "val"
    args = ["validate-extrapolation", str(csv), "--out", str(out), "--options", "lsq",
            "--holdout-top", "0.2", "--prob", "0.5", "0.8"]  # fmt: skip
    main(args)
    tab = pd.read_csv(out / "validation.csv")
    assert {"coverage_50", "coverage_80", "width_80"} <= set(tab.columns)
    assert (out / "validation.png").exists()
    assert "(all)" not in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2
    assert "exists" in capsys.readouterr().err


# ---------------------------------------------------------------------- model effects
@pytest.mark.filterwarnings("ignore::scale_transfer.sampling.ConvergenceWarning")
def test_effects_option_predicts_known_and_new_levels(small: pd.DataFrame) -> None:
    from scale_transfer.posterior import fit

    d = small.copy()
    d["kind"] = np.where(d["model"].str.startswith("vit"), "a", "b")
    post = fit(d, effects=("kind",), draws=100, tune=150, chains=2, progress=False)
    assert post.config.effects == ("kind",)
    assert "effect_kind_log_level" in post.dt["posterior"]
    us = np.array([0.4, 0.5])
    known = post.predict_draws(us, "new-model", effects={"kind": "a"})
    with pytest.warns(UserWarning, match="'zzz' not among the fitted levels"):
        new = post.predict_draws(us, "new-model", effects={"kind": "zzz"})
    assert known.shape == new.shape == (200, 3, 2)
    assert new.std(0).mean() > known.std(0).mean()  # an unseen level adds its spread
    curve = post.predict(us, kind="curve", effects={"kind": ["a", "b"]})
    assert len(curve) == 6


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::scale_transfer.sampling.ConvergenceWarning")
def test_discrepancy_option_adds_a_smooth_term(small: pd.DataFrame) -> None:
    from scale_transfer.model import discrepancy_basis
    from scale_transfer.posterior import fit

    post = fit(small, discrepancy=True, draws=100, tune=150, chains=2, progress=False)
    coef = post.draws("discrepancy_coef")
    assert coef.shape == (200, 3, 8)
    us = np.array([0.3, 0.6, 0.99])
    curve = post.predict_draws(us, "curve")
    law = post.predict_draws(us, "curve") + np.einsum(
        "sgb,ub->sgu", coef, discrepancy_basis(np.log(1 - us))
    )
    k, a, e = post.draws("k"), post.draws("alpha"), post.draws("e_ir")
    np.testing.assert_allclose(law, 1 - (k[..., None] * (1 - us) ** a[..., None] + e[..., None]))
    assert np.isfinite(curve).all()
    # figure A draws what predict gives: the law plus the discrepancy
    import matplotlib.pyplot as plt

    from scale_transfer.plots import figure_a
    from scale_transfer.plots.common import C_CURVE

    fig = figure_a(post)
    line = next(ln for ln in fig.axes[0].lines if ln.get_color() == C_CURVE)
    x = np.asarray(line.get_xdata())
    want = np.median(post.predict_draws(x, "curve")[:, 0, :], axis=0)
    np.testing.assert_allclose(line.get_ydata(), want)
    assert "law + discrepancy" in " ".join(t.get_text() for t in fig.legends[0].get_texts())
    plt.close(fig)


def test_discrepancy_basis_approximates_the_kernel() -> None:
    from scale_transfer.model import DISCREPANCY_ELL, discrepancy_basis

    x = np.linspace(np.log(1e-3), 0.0, 200)
    phi = discrepancy_basis(x)
    k = np.exp(-0.5 * (x[:, None] - x[None, :]) ** 2 / DISCREPANCY_ELL**2)
    np.testing.assert_allclose(phi @ phi.T, k, atol=0.03)


# --------------------------------------------------------------------------- notebook
@pytest.mark.slow
def test_notebook_runs_with_tiny_parameters(timm_dir: Path, tmp_path: Path) -> None:
    papermill = pytest.importorskip("papermill")
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(tmp_path / "out.ipynb"),
        parameters={
            "draws": 30,
            "tune": 60,
            "chains": 1,
            "tasks": ["imagenetv2", "sketch"],
            "timm_dir": str(timm_dir),
        },
        cwd=str(ROOT / "notebooks"),
        kernel_name="python3",
        progress_bar=False,
    )


def test_load_dataset_reads_percent_files(tmp_path: Path, small: pd.DataFrame) -> None:
    from scale_transfer.data import DataError
    from scale_transfer.zoo import load_dataset

    pct = small.assign(us_acc=small.us_acc * 100, ds_acc=small.ds_acc * 100)
    pct.to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(DataError, match="look like percent"):
        load_dataset(tmp_path / "p.csv")
    got = load_dataset(tmp_path / "p.csv", percent=True)
    np.testing.assert_allclose(got["ds_acc"], small["ds_acc"])
