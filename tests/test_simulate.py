import numpy as np
import pandas as pd
import pytest

from scale_transfer.data import read_tidy
from scale_transfer.hull import hull_points
from scale_transfer.law import ds_acc
from scale_transfer.lsq import fit_lsq
from scale_transfer.simulate import SETTINGS, TASKS, Simulation, simulate, true_params

COLUMNS = ["model", "task", "us_acc", "ds_acc", "upstream", "shots", "params", "family"]
PAPER_HULL = {  # PAPER.md, hull columns, JFT 25-shot
    "pets": (0.87, 9.7, 0.041),
    "cifar100": (0.57, 3.8, 0.099),
    "imagenet": (0.80, 3.2, 0.124),
    "cars": (0.93, 10.2, 0.049),
    "col_hist": (0.03, 12.0, 0.114),
    "dtd": (0.41, 4.0, 0.202),
    "caltech": (0.33, 8.5, 0.059),
    "uc_merced": (0.15, 6.2, 0.033),
}


@pytest.fixture(scope="module")
def jft():
    return simulate("jft-25shot", n_models=3000, seed=0)


@pytest.mark.parametrize("setting", SETTINGS)
def test_every_setting_gives_valid_tidy_data(setting):
    sim = simulate(setting, n_models=300, seed=1)
    assert isinstance(sim, Simulation) and sim.setting == setting
    d = sim.data
    assert list(d.columns) == COLUMNS
    assert len(d) == 300 * len(TASKS)
    assert d.model.nunique() == 300
    assert set(d.task) == set(TASKS)
    assert not d.isna().any().any()
    for col in ("us_acc", "ds_acc"):
        assert d[col].between(0.0, 1.0).all()
    assert (d.params >= 3e7 - 1).all() and (d.params <= 1.5e10 + 1).all()
    assert set(d.family) <= {"ViT", "MLP-Mixer", "ResNet"}
    upstream, shots = setting.split("-")
    assert (d.upstream == upstream).all() and (d.shots == int(shots[:-4])).all()
    tidy = read_tidy(d)
    assert (tidy.setting == setting).all()
    assert list(sim.truth.columns) == ["setting", "task", "k", "alpha", "e_ir", "asymptote"]
    assert list(sim.truth.task) == list(TASKS)


def test_true_parameters():
    truth = true_params()
    assert len(truth) == len(SETTINGS) * len(TASKS)
    assert (truth.k > 0).all() and (truth.alpha > 1).all()
    assert (truth.e_ir > 0).all() and (truth.k + truth.e_ir <= 1).all()
    np.testing.assert_allclose(truth.asymptote, 1 - truth.e_ir)
    jft = truth[truth.setting == "jft-25shot"].set_index("task")
    for task, (k, alpha, e_ir) in PAPER_HULL.items():
        assert tuple(jft.loc[task, ["k", "alpha", "e_ir"]]) == pytest.approx((k, alpha, e_ir))
    wide = truth.pivot(index="task", columns="setting", values="e_ir")
    assert (wide["jft-1shot"] > wide["jft-25shot"]).all()
    assert (wide["in21k-1shot"] > wide["in21k-25shot"]).all()
    with pytest.raises(ValueError, match="unknown setting"):
        true_params("jft-5shot")


def test_deterministic_by_seed():
    a = simulate("jft-1shot", n_models=200, seed=7)
    b = simulate("jft-1shot", n_models=200, seed=7)
    c = simulate("jft-1shot", n_models=200, seed=8)
    pd.testing.assert_frame_equal(a.data, b.data)
    assert not np.allclose(a.data.ds_acc, c.data.ds_acc)
    # the models of an upstream dataset are shared by its two shot settings
    d = simulate("jft-25shot", n_models=200, seed=7)
    pd.testing.assert_series_equal(a.data.us_acc, d.data.us_acc)
    assert not np.allclose(a.data.ds_acc, d.data.ds_acc)
    assert len(simulate("in21k-1shot", n_models=20, seed=None).data) == 20 * len(TASKS)


def test_upstream_ranges_and_families(jft):
    in21k = simulate("in21k-25shot", n_models=3000, seed=0).data
    assert 0.5 < jft.data.us_acc.max() <= 0.6
    assert 0.8 < in21k.us_acc.max() <= 0.9
    assert in21k.us_acc.median() > jft.data.us_acc.median()
    per_model = jft.data.drop_duplicates("model")
    share = per_model.family.value_counts(normalize=True)
    assert 0.4 < share["ViT"] < 0.6 and 0.4 < share["MLP-Mixer"] < 0.6
    assert 5 <= (per_model.family == "ResNet").sum() <= 30
    assert (per_model.params > 3e9).mean() < 0.1
    assert per_model.model.str.fullmatch(r"(vit|mixer|resnet)-\d{6}").all()
    # US accuracy grows with size
    assert np.corrcoef(np.log(per_model.params), per_model.us_acc)[0, 1] > 0.3


def test_points_fall_under_the_frontier(jft):
    d = jft.data.merge(jft.truth, on="task")
    gap = ds_acc(d.us_acc, d.k, d.alpha, d.e_ir) - d.ds_acc
    assert (gap > -0.015).all()  # noise only (sd 0.003)
    assert 0.01 < gap.median() < 0.06
    assert 0.02 < (gap > 0.1).mean() < 0.1  # a few far under it


def test_hull_fit_recovers_the_true_frontier(jft):
    hull = hull_points(jft.data)
    for row in jft.truth.itertuples():
        pts = hull[hull.task == row.task]
        fit = fit_lsq(pts.us_acc, pts.ds_acc)
        us = jft.data.loc[jft.data.task == row.task, "us_acc"]
        grid = np.quantile(us, [0.05, 0.25, 0.5, 0.75, 0.95, 1.0])
        curve = ds_acc(grid, fit.k, fit.alpha, fit.e_ir)
        np.testing.assert_allclose(curve, ds_acc(grid, row.k, row.alpha, row.e_ir), atol=0.015)
        # where the frontier is flat at the largest US accuracy, the data pin the asymptote
        pinned = row.k * (1 - us.max()) ** row.alpha < 0.01
        assert fit.asymptote == pytest.approx(row.asymptote, abs=0.02 if pinned else 0.05)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown setting"):
        simulate("jft")
    with pytest.raises(ValueError, match="n_models"):
        simulate(n_models=0)
    with pytest.raises(ValueError, match="seed"):
        simulate(seed=-1)


def test_n_models_must_be_whole():
    with pytest.raises(ValueError, match="n_models must be a whole number"):
        simulate(n_models=2.7)
    assert simulate(n_models=20.0, seed=1).data["model"].nunique() == 20
