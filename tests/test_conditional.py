"""Conditional prediction: a new model's other tasks given its measured accuracy on some."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from scale_transfer.cli import main
from scale_transfer.conditional import (
    conditional_draws,
    parse_given,
    read_given_csv,
    residual_correlation,
)
from scale_transfer.odds import logit
from scale_transfer.posterior import Posterior, fit

pytestmark = pytest.mark.filterwarnings("ignore::scale_transfer.sampling.ConvergenceWarning")

#: per task: a, alpha, asymptote c, scatter sd in logit units
TRUTH = {"t1": (0.5, 1.2, 0.9, 0.3), "t2": (-0.5, 0.8, 0.97, 0.4), "t3": (0.0, 1.5, 0.8, 0.3)}
#: share of each task's scatter that is the model's own effect, common to all tasks
SHARED = 0.9
SAMPLER = dict(draws=200, tune=300, chains=2, seed=3, progress=False)


def law(task, us):
    a, alpha, c, _ = TRUTH[task]
    return logit(c * expit(a + alpha * logit(us)))


def shared_effect_data(n=80, seed=0):
    """Models on three tasks whose scatter is mostly a per-model effect shared by the tasks."""
    rng = np.random.default_rng(seed)
    us = rng.uniform(0.3, 0.85, n)
    effect = rng.standard_normal(n)
    rows = []
    for task, (*_, sd) in TRUTH.items():
        own = np.sqrt(1 - SHARED**2) * rng.standard_normal(n)
        y = law(task, us) + sd * (SHARED * effect + own)
        rows.append(pd.DataFrame({"model": [f"m{i:03d}" for i in range(n)], "task": task,
                                  "us_acc": us, "ds_acc": expit(y)}))  # fmt: skip
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def post():
    return fit(shared_effect_data(), law="odds", **SAMPLER)


def test_correlation_is_recovered_and_shrunk(post):
    r = residual_correlation(post)
    assert list(r.index) == ["t1", "t2", "t3"]
    off = r.to_numpy()[~np.eye(3, dtype=bool)]
    assert np.all(off > 0.6) and np.all(off < 0.9)
    raw = r.attrs["raw"].to_numpy()[~np.eye(3, dtype=bool)]
    assert np.all(np.abs(off) < np.abs(raw))  # shrunk toward 0
    assert (r.attrs["shared"].to_numpy() == 80).all()
    assert np.all(np.linalg.eigvalsh(r.to_numpy()) > 0)


def test_conditioning_narrows_and_moves_toward_the_truth(post):
    # new models far above (and below) the curve on every task: their effect is +-2 sd
    rng = np.random.default_rng(7)
    us = np.array([0.6, 0.7, 0.8, 0.6, 0.7, 0.8])
    effect = np.array([2.0, 2.0, 2.0, -2.0, -2.0, -2.0])
    truth = {}
    for task, (*_, sd) in TRUTH.items():
        own = np.sqrt(1 - SHARED**2) * rng.standard_normal(len(us))
        truth[task] = expit(law(task, us) + sd * (SHARED * effect + own))
    plain = post.predict(us, kind="new-model", prob=0.9)
    cond = post.predict(us, prob=0.9, given={"t1": truth["t1"]})
    assert set(cond["kind"]) == {"conditional"} and set(cond["task"]) == {"t2", "t3"}
    assert cond["given"].str.startswith("t1=").all()
    for task in ("t2", "t3"):
        p, c = plain[plain.task == task], cond[cond.task == task]
        # widths on the logit scale, where the scatter lives: in accuracy a band that moves
        # toward 0.5 widens by location alone (|d acc / d logit| is largest there)
        width_c = logit(c.upper) - logit(c.lower)
        width_p = logit(p.upper) - logit(p.lower)
        ratio = width_c / width_p  # measured 0.64-0.87 (seed 3)
        assert np.all(ratio < 0.95) and ratio.mean() < 0.85, (task, ratio)
        err_p = np.abs(p["mean"].to_numpy() - truth[task])
        err_c = np.abs(c["mean"].to_numpy() - truth[task])
        assert np.all(err_c < err_p), (task, err_c, err_p)
    # one given value for every new model; a given value at the curve changes little
    mid = post.predict([0.7], kind="new-model")
    at_curve = post.predict([0.7], given={"t1": float(expit(law("t1", np.array([0.7])))[0])})
    moved = at_curve.set_index("task")["mean"] - mid.set_index("task")["mean"].loc[["t2", "t3"]]
    assert np.all(np.abs(moved) < 0.03)


def test_beyond_the_data_the_band_correlation_is_used(post):
    from scale_transfer.extrapolation import CORR_PREFIX, drift_correlation

    r = drift_correlation(post.drift)
    assert r is not None and np.all(r[~np.eye(3, dtype=bool)] > 0.3)  # learned in the band
    us = np.array([0.95, 0.97])  # beyond every group's data
    cond, _ = conditional_draws(post, us, {"t1": [0.99, 0.99]}, seed=2)
    plain, _ = conditional_draws(post, us, np.full((3, 2), np.nan), seed=2)
    assert np.all(cond[:, 1:].mean(0) > plain[:, 1:].mean(0))  # pulled up with t1
    # uncorrelated in the band: a given task says nothing about the others beyond the data
    kept = post.drift
    post.drift = kept.assign(**{f"{CORR_PREFIX}{j}": np.eye(3)[:, j] for j in range(3)})
    try:
        alone, _ = conditional_draws(post, us, {"t1": [0.99, 0.99]}, seed=2)
    finally:
        post.drift = kept
    np.testing.assert_allclose(alone[:, 1:], plain[:, 1:])


def test_draws_per_group_us_and_not_measured(post):
    us = np.array([[0.6, 0.7], [0.6, 0.7], [0.65, 0.75]])  # t3 has its own US accuracy
    draws, mask = conditional_draws(post, us, {"t1": [0.5, None]}, seed=1)
    assert draws.shape[1:] == (3, 2)
    assert mask.tolist() == [[True, False], [False, False], [False, False]]
    assert np.all(draws[:, 0, 0] == 0.5)
    plain = post.predict_draws(np.array([0.7]), kind="new-model", seed=1)[:, :, 0]
    # the second model was measured on nothing: its predictive is the unconditional one
    np.testing.assert_allclose(draws[:, :2, 1].std(0), plain[:, :2].std(0), rtol=0.1)


def test_unknown_and_bad_given_are_refused(post):
    with pytest.raises(ValueError, match=r"no task 'sketch' \(its tasks: t1, t2, t3\)"):
        post.predict([0.7], given={"sketch": 0.4})
    with pytest.raises(ValueError, match="85% is 0.85"):
        post.predict([0.7], given={"t1": 85})
    with pytest.raises(ValueError, match="2 values for 3 new model"):
        post.predict([0.6, 0.7, 0.8], given={"t1": [0.4, 0.5]})
    with pytest.raises(ValueError, match="effects"):
        post.predict([0.7], given={"t1": 0.4}, effects={"family": "x"})
    with pytest.raises(ValueError, match="TASK=ACC"):
        parse_given(["t1"])
    assert parse_given(["t1=0.4,0.5"], 2) == {"t1": [0.4, 0.5]}
    assert parse_given(["t1=0.4"], 2) == {"t1": [0.4, 0.4]}


def test_paper_law_gaussian_fit_predicts_conditionally():
    data = shared_effect_data(n=60, seed=1)
    post = fit(data, **SAMPLER)
    r = residual_correlation(post)
    assert r.loc["t1", "t2"] > 0.4
    cond = post.predict([0.7], given={"t1": 0.5})
    assert len(cond) == 2 and cond["lower"].lt(cond["upper"]).all()


def test_cli_given_round_trip(post, tmp_path, capsys):
    model = tmp_path / "m.nc"
    post.save(model)
    out = tmp_path / "p.csv"
    main(["predict", str(model), "--us-acc", "0.6", "0.7", "--given", "t1=0.5,0.6",
          "--given", "t3=0.4", "--out", str(out)])  # fmt: skip
    p = pd.read_csv(out)
    assert list(p["task"]) == ["t2", "t2"] and set(p["kind"]) == {"conditional"}
    assert list(p["given"]) == ["t1=0.5, t3=0.4", "t1=0.6, t3=0.4"]
    api = post.predict([0.6, 0.7], given={"t1": [0.5, 0.6], "t3": 0.4})
    np.testing.assert_allclose(p["mean"], api["mean"], rtol=1e-9)
    # one row per new model in a CSV; an empty cell: not measured on that task
    rows = tmp_path / "new.csv"
    rows.write_text("us_acc,t1,t3\n0.6,0.5,0.4\n0.7,,0.45\n")
    assert read_given_csv(rows)[1]["t1"][1] != read_given_csv(rows)[1]["t1"][1]  # NaN
    out2 = tmp_path / "p2.csv"
    main(["predict", str(model), "--given-csv", str(rows), "--out", str(out2)])
    p2 = pd.read_csv(out2)
    assert list(p2["task"]) == ["t2", "t1", "t2"]  # per new model, then task
    np.testing.assert_allclose(p2["mean"].iloc[0], p["mean"].iloc[0], rtol=1e-9)
    capsys.readouterr()
    bad = tmp_path / "bad.csv"
    bad.write_text("us_acc,t1\n0.6,41\n")
    for args, says in (
        (["--us-acc", "0.7", "--given", "sketch=0.4"], "no task 'sketch'"),
        (["--us-acc", "0.7", "--given", "t1"], "TASK=ACC"),
        (["--us-acc", "0.7", "--given", "t1=0.4", "--kind", "hull"], "not with --kind hull"),
        (["--given", "t1=0.4"], "needs --us-acc"),
        (["--given-csv", str(bad)], "column 't1' is not an accuracy"),
        (["--given-csv", str(rows), "--us-acc", "0.7"], "no --us-acc or --given"),
    ):
        with pytest.raises(SystemExit) as e:
            main(["predict", str(model), *args])
        err = capsys.readouterr().err
        assert e.value.code == 2 and says in err, (args, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert isinstance(Posterior.load(model), Posterior)
