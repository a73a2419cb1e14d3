"""A fit of all points with its frontier fit: whose asymptote is reported, saved and loaded."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from scale_transfer.cli import main
from scale_transfer.fitfile import FitFileError
from scale_transfer.posterior import Posterior, fit
from scale_transfer.simulate import simulate

pytestmark = pytest.mark.filterwarnings("ignore::scale_transfer.sampling.ConvergenceWarning")

SAMPLER = dict(draws=60, tune=60, chains=2, seed=1, progress=False)


@pytest.fixture(scope="module")
def sim():
    return simulate("jft-25shot", n_models=200, seed=4)


@pytest.fixture(scope="module")
def post(sim):
    return fit(sim.data, law="error", frontier=True, **SAMPLER)


def test_the_frontier_fit_gives_the_asymptotes(post):
    front = post.frontier
    assert front is not None and front.config.target == "top"
    assert front.config.likelihood == "frontier"
    assert list(front.group_labels) == list(post.group_labels)
    s = post.summary(prob=0.9)
    own = post.summary(prob=0.9, estimand="own")
    assert set(s["estimand"]) == {"frontier"} and set(own["estimand"]) == {"typical model"}
    # the frontier fit's numbers, on the points it kept (the best of each US bin)
    pd.testing.assert_frame_equal(s, front.summary(prob=0.9))
    assert (s["n"].iloc[:8] < own["n"].iloc[:8]).all()
    # its convergence is reported with the other fits behind this one
    assert list(post.refits["refit"]) == ["frontier"]
    assert post.refits["points"].iloc[0] == int(front.groups["n"].sum())


def test_saved_and_loaded_with_its_frontier_fit(post, tmp_path):
    path = post.save(tmp_path / "fit.nc")
    back = Posterior.load(path)
    assert back.frontier is not None and back.frontier.config == post.frontier.config
    pd.testing.assert_frame_equal(back.summary(), post.summary())
    pd.testing.assert_frame_equal(back.summary(estimand="own"), post.summary(estimand="own"))
    # an edited draw of the frontier fit is refused, naming the file and the group
    with xr.open_datatree(path) as f:
        dt = f.load()
    e_ir = dt["frontier/posterior"]["e_ir"]
    dt["frontier/posterior"]["e_ir"] = e_ir.copy(data=np.asarray(e_ir.values) * 0.9)
    edited = tmp_path / "edited.nc"
    dt.to_netcdf(edited)
    with pytest.raises(FitFileError, match=r"edited.nc, group 'frontier'.*checksum"):
        Posterior.load(edited)


def test_whose_asymptote_is_asked_for_by_name(post, sim):
    with pytest.raises(ValueError, match="estimand must be"):
        post.summary(estimand="best")
    alone = Posterior(*(getattr(post, a) for a in ("dt", "config", "sampler", "groups", "data",
                                                   "diagnostics", "data_hash")))  # fmt: skip
    assert set(alone.summary()["estimand"]) == {"typical model"}
    with pytest.raises(ValueError, match="carries no frontier fit"):
        alone.summary(estimand="frontier")
    # a fit of the frontier is its own frontier; it gets no second one
    hull = fit(sim.data, target="hull", frontier=True, **SAMPLER)
    assert hull.frontier is None and set(hull.summary(estimand="frontier")["estimand"]) == {
        "frontier"
    }
    with pytest.raises(ValueError, match="frontier must be"):
        fit(sim.data, frontier="yes", **SAMPLER)


def test_cli_fit_adds_the_frontier_fit_and_summary_and_report_give_it(sim, tmp_path, capsys):
    data = tmp_path / "data.csv"
    sim.data.to_csv(data, index=False)
    model = tmp_path / "m.nc"
    small = ["--draws", "60", "--tune", "60", "--chains", "2", "--no-progress"]
    main(["fit", str(data), "--out", str(model), "--law", "error", *small])
    captured = capsys.readouterr()
    assert "frontier (for the asymptotes)" in captured.err
    assert "frontier fit (" in captured.out  # its convergence verdict
    main(["summary", str(model), "--out", str(tmp_path / "s.csv")])
    s = pd.read_csv(tmp_path / "s.csv")
    assert set(s["estimand"]) == {"frontier"}
    assert "the frontier (the best models' curve" in capsys.readouterr().err
    main(["summary", str(model), "--estimand", "own", "--out", str(tmp_path / "own.csv")])
    assert set(pd.read_csv(tmp_path / "own.csv")["estimand"]) == {"typical model"}
    main(["report", str(model), "--out", str(tmp_path / "rep"), "--no-lsq"])
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "second fit to the same data, of the frontier" in md
    assert "Calibration of these asymptote intervals" in md
    # --no-frontier: the fit's own asymptote; --frontier on a hull fit: refused
    main(["fit", str(data), "--out", str(tmp_path / "n.nc"), "--law", "error", "--no-frontier",
          *small])  # fmt: skip
    assert Posterior.load(tmp_path / "n.nc").frontier is None
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["fit", str(data), "--out", str(tmp_path / "h.nc"), "--target", "hull",
              "--frontier", *small])  # fmt: skip
    assert exc.value.code == 2 and "estimates the frontier itself" in capsys.readouterr().err
