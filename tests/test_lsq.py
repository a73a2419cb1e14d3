import numpy as np
import pandas as pd
import pytest

from scale_transfer.law import ds_acc
from scale_transfer.lsq import (
    BOUNDS,
    FRAME_COLUMNS,
    LsqFit,
    fit_lsq,
    fit_lsq_frame,
    lsq_interval,
    predict_lsq,
)
from scale_transfer.lsq import bootstrap as lsq_bootstrap
from scale_transfer.simulate import simulate


@pytest.mark.parametrize(
    ("k", "alpha", "e_ir"),
    [(0.87, 9.7, 0.041), (0.57, 3.8, 0.099), (0.41, 4.0, 0.202), (0.5, 0.7, 0.3)],
)
def test_recovers_noiseless_law(k, alpha, e_ir):
    us = np.linspace(0.0, 0.9, 40)
    fit = fit_lsq(us, ds_acc(us, k, alpha, e_ir))
    assert isinstance(fit, LsqFit) and fit.converged
    assert (fit.k, fit.alpha, fit.e_ir) == pytest.approx((k, alpha, e_ir), rel=1e-5, abs=1e-7)
    assert fit.asymptote == pytest.approx(1 - e_ir, abs=1e-7)
    assert fit.rss < 1e-16 and fit.n == 40 and not fit.at_bound


def test_bounds_respected_and_at_bound_flag():
    us = np.linspace(0.1, 0.95, 30)
    # "accuracies" above what e_ir >= 0 allows: e_ir would be -0.1
    fit = fit_lsq(us, 1 - (0.6 * (1 - us) ** 2 - 0.1))
    assert fit.e_ir == 0.0 and fit.at_bound and fit.asymptote == 1.0
    # a step pushes k to its upper bound
    fit = fit_lsq(us, np.where(us < 0.12, 0.3, 0.8))
    assert fit.k == pytest.approx(BOUNDS["k"][1])
    for name in ("k", "alpha", "e_ir"):
        lo, hi = BOUNDS[name]
        assert lo <= getattr(fit, name) <= hi
    with pytest.raises(ValueError, match="at least 3"):
        fit_lsq([0.1, 0.2], [0.3, 0.4])


def test_predict_and_interval():
    fit = LsqFit(
        k=0.5, alpha=3.0, e_ir=0.1, asymptote=0.9, rss=1.0, n=10, sigma=0.02, converged=True
    )
    us = np.array([0.0, 0.3, 0.9])
    np.testing.assert_allclose(predict_lsq(fit, us), ds_acc(us, 0.5, 3.0, 0.1))
    row = pd.Series(fit.to_dict())
    center, lower, upper = lsq_interval(row, us, prob=0.9)
    np.testing.assert_allclose(center, predict_lsq(row, us))
    np.testing.assert_allclose(upper - center, 1.6448536 * 0.02, rtol=1e-6)
    np.testing.assert_allclose(center - lower, 1.6448536 * 0.02, rtol=1e-6)
    wide = lsq_interval(fit, us, prob=0.99)
    assert np.all(wide[1] < lower) and np.all(wide[2] > upper)
    with pytest.raises(ValueError, match="prob"):
        lsq_interval(fit, us, prob=1.0)


@pytest.fixture(scope="module")
def small():
    data = simulate("jft-25shot", n_models=400, seed=2).data
    return data[data.task.isin(["pets", "dtd"])]


@pytest.mark.parametrize("target", ["all", "hull"])
def test_fit_frame(small, target):
    out = fit_lsq_frame(small, target=target, n_boot=100, prob=0.9, seed=0)
    assert list(out.columns) == FRAME_COLUMNS
    assert list(out.task) == ["pets", "dtd"] and (out.setting == "jft-25shot").all()
    assert (out.target == target).all() and (out.at_bound.dtype == bool)
    assert (out.asymptote_lower <= out.asymptote).all()
    assert (out.asymptote <= out.asymptote_upper).all()
    assert (out.asymptote_upper - out.asymptote_lower < 0.1).all()
    for row in out.itertuples():
        pts = small[small.task == row.task]
        if target == "all":
            assert row.n == len(pts)
        else:
            assert 3 <= row.n < 50
    again = fit_lsq_frame(small, target=target, n_boot=100, prob=0.9, seed=0)
    pd.testing.assert_frame_equal(out, again)
    none = fit_lsq_frame(small, target=target, n_boot=0)
    assert none.asymptote_lower.isna().all()
    pd.testing.assert_series_equal(none.asymptote, out.asymptote)


def test_hull_points_resampling_and_errors(small):
    out = fit_lsq_frame(small, target="hull", n_boot=60, hull_resample="hull")
    assert (out.asymptote_lower <= out.asymptote_upper).all()
    with pytest.raises(ValueError, match="target"):
        fit_lsq_frame(small, target="best")
    with pytest.raises(ValueError, match="prob"):
        fit_lsq_frame(small, prob=0.0)


def test_batched_refit_matches_least_squares(small):
    pets = small[small.task == "pets"]
    us, ds = pets.us_acc.to_numpy(), pets.ds_acc.to_numpy()
    fit = fit_lsq(us, ds)
    counts = lsq_bootstrap._multinomial_counts(np.random.default_rng(0), us.size, 4)
    w = np.vstack([np.ones(us.size), counts])
    theta = lsq_bootstrap._refit_batch(1 - us, 1 - ds, w, np.array([0.5, 2.0, 0.2]))
    np.testing.assert_allclose(theta[0], [fit.k, fit.alpha, fit.e_ir], rtol=1e-4)
    for b in range(1, 5):
        rep = np.repeat(np.arange(us.size), w[b].astype(int))
        ref = fit_lsq(us[rep], ds[rep])
        assert 1 - theta[b, 2] == pytest.approx(ref.asymptote, abs=1e-5)


def test_too_few_hull_points_give_nan_row():
    df = pd.DataFrame(
        {
            "model": list("abcde") * 2,
            "task": ["up"] * 5 + ["flat"] * 5,
            "us_acc": [0.1, 0.2, 0.3, 0.4, 0.5] * 2,
            "ds_acc": [0.2, 0.4, 0.5, 0.55, 0.58] + [0.9, 0.5, 0.4, 0.3, 0.2],
        }
    )
    out = fit_lsq_frame(df, target="hull", n_boot=20).set_index("task")
    assert out.loc["up", "n"] == 5 and np.isfinite(out.loc["up", "asymptote"])
    assert out.loc["flat", "n"] == 1 and np.isnan(out.loc["flat", ["k", "asymptote_lower"]]).all()
    assert out.loc["up", "setting"] == "default"


def test_fit_frame_checks_its_input(small):
    from scale_transfer.data import DataError

    with pytest.raises(DataError, match="missing column.*ds_acc"):
        fit_lsq_frame(small.drop(columns="ds_acc"), n_boot=0)
    pct = small.assign(us_acc=small.us_acc * 100, ds_acc=small.ds_acc * 100)
    with pytest.raises(DataError, match="'us_acc' is not an accuracy.*look like percent"):
        fit_lsq_frame(pct, n_boot=0)
    assert fit_lsq_frame(small, n_boot=20, prob=0.8).attrs["prob"] == 0.8  # reports label it
