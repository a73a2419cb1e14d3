import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from scale_transfer.cli import main
from scale_transfer.posterior import Posterior


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "scale_transfer.cli", *map(str, args)],
        capture_output=True,
        text=True,
    )


def test_validate_good_and_bad(tmp_path):
    good = tmp_path / "g.csv"
    r = run("simulate", "--n-models", 50, "--out", good)
    assert r.returncode == 0, r.stderr
    r = run("validate", good)
    assert r.returncode == 0 and "ok" in r.stdout
    df = pd.read_csv(good)
    df.loc[7, "ds_acc"] = 3.0
    bad = tmp_path / "b.csv"
    df.to_csv(bad, index=False)
    r = run("validate", bad)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0  # one line, no traceback
    assert "b.csv" in r.stderr and "'ds_acc'" in r.stderr and "line 9" in r.stderr


def test_simulate_refuses_overwrite(tmp_path):
    out = tmp_path / "d.csv"
    out.write_text("mine")
    r = run("simulate", "--out", out)
    assert r.returncode == 2 and "exists" in r.stderr
    assert out.read_text() == "mine"


def test_help_teaches():
    r = run("--help")
    assert r.returncode == 0
    for cmd in ("validate", "simulate", "fit", "summary", "predict"):
        assert cmd in r.stdout


@pytest.mark.filterwarnings("ignore::scale_transfer.sampling.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore:predict_hull on a hull-points")  # a quick hull fit
def test_fit_summary_predict_end_to_end(tmp_path, capsys):
    data, truth = tmp_path / "d.csv", tmp_path / "t.csv"
    main(["simulate", "--n-models", "200", "--out", str(data), "--truth", str(truth)])
    assert list(pd.read_csv(truth).columns[:5]) == ["task", "k", "alpha", "e_ir", "asymptote"]
    model = tmp_path / "m.nc"
    args = ["fit", str(data), "--target", "hull", "--out", str(model), "--draws", "100"]
    main(
        args
        + ["--tune", "100", "--chains", "2", "--no-progress", "--adaptation", "low_rank"]
        + ["--centered", "yes", "--target-accept", "0.9"]
    )
    assert model.exists()
    saved = Posterior.load(model)
    assert saved.sampler.adaptation == "low_rank"  # the choices are saved
    assert saved.sampler.target_accept == 0.9 and saved.config.centered is True
    s_csv = tmp_path / "s.csv"
    capsys.readouterr()
    main(["summary", str(model), "--prob", "0.9", "--out", str(s_csv)])
    assert "asymptote of the frontier (the best models: the upper hull" in capsys.readouterr().err
    s = pd.read_csv(s_csv)
    assert list(s.columns[:6]) == ["task", "mean", "lower", "upper", "prob", "interval_kind"]
    p_csv = tmp_path / "p.csv"
    main(
        [
            "predict",
            str(model),
            "--us-acc",
            "0.7",
            "0.8",
            "1.0",
            "--kind",
            "new-model",
            "--out",
            str(p_csv),
        ]
    )
    p = pd.read_csv(p_csv)
    assert list(p.columns[:5]) == ["task", "us_acc", "mean", "lower", "upper"]
    assert sorted(p.us_acc.unique()) == [0.7, 0.8, 1.0]
    # the best of a set of new models (predictive upper hull): more models reach higher
    h_csv, h10, h_many = tmp_path / "h.csv", tmp_path / "h10.csv", tmp_path / "many.csv"
    pd.DataFrame({"us_acc": np.linspace(0.5, 0.75, 200)}).to_csv(h_many, index=False)
    hull = ["predict", str(model), "--us-acc", "0.75", "--kind", "hull"]
    main(hull + ["--models-us-acc", *[f"{v:.3f}" for v in np.linspace(0.5, 0.75, 10)],
                 "--out", str(h10)])  # fmt: skip
    main(hull + ["--models-csv", str(h_many), "--out", str(h_csv)])
    few, many = pd.read_csv(h10), pd.read_csv(h_csv)
    assert list(many.columns[:5]) == ["task", "us_acc", "mean", "lower", "upper"]
    assert set(many["kind"]) == {"hull"} and len(many) == len(few) == 8
    assert (many["mean"].to_numpy() >= few["mean"].to_numpy()).all()
    assert many["mean"].sum() > few["mean"].sum()
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"us_acc": [0.5, 0.7, 71.0]}).to_csv(bad, index=False)
    with pytest.raises(SystemExit) as e:
        main(hull + ["--models-csv", str(bad)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    # the third data row, counted as read_tidy counts rows (header excluded)
    assert "bad.csv" in err and "'us_acc'" in err and "line 4 " in err and "71.0" in err
    with pytest.raises(SystemExit) as e:
        main(hull)  # no new models given
    assert e.value.code == 2 and "--models-us-acc or --models-csv" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(args)  # exists: refused
    assert e.value.code == 2
    assert set(p["interval_kind"]) == {"eti"}  # the column name summary uses
    # bad values that once gave a traceback, a NaN table or a silently different answer
    for bad_args, says in (
        (["summary", str(model), "--prob", "0.9", "0.5"], "unexpected extra argument"),
        (["predict", str(model), "--us-acc", "nan"], "us_acc must be in [0, 1]"),
        (["predict", str(model), "--us-acc", "85"], "85% is 0.85"),
        (["summary", str(model), "--var", "bogus"], "var must be one of"),
        (["summary", str(model), "--out", str(tmp_path)], "is a folder"),
        (["summary", str(data)], "is not a scale-transfer fit"),
        (hull + ["--models-us-acc", "0.5", "--models-csv", str(h_many)], "give the new models"),
    ):
        with pytest.raises(SystemExit) as e:
            main(bad_args)
        err = capsys.readouterr().err
        assert e.value.code == 2 and says in err, (bad_args, err)
        assert "Traceback" not in err
    truncated = tmp_path / "trunc.nc"
    truncated.write_bytes(model.read_bytes()[:5000])
    with pytest.raises(SystemExit) as e:
        main(["summary", str(truncated)])
    assert e.value.code == 2 and "trunc.nc is not a scale-transfer fit" in capsys.readouterr().err


def test_multi_value_options_expand():
    from scale_transfer.cli import expand_multi_values as expand

    assert expand(["predict", "m.nc", "--us-acc", "0.7", "0.8", "--prob", "0.9"]) == [
        "predict",
        "m.nc",
        "--us-acc",
        "0.7",
        "--us-acc",
        "0.8",
        "--prob",
        "0.9",
    ]
    assert expand(["predict", "--us-acc", "0.7", "m.nc"]) == ["predict", "--us-acc", "0.7", "m.nc"]
    # "=" and commas, as --methods takes them
    want = ["predict", "m.nc", "--us-acc", "0.7", "--us-acc", "0.8", "--us-acc", "1"]
    assert expand(["predict", "m.nc", "--us-acc=0.7,0.8", "1"]) == want
    assert expand(["predict", "m.nc", "--us-acc", "0.7", "0.8,1"]) == want
    assert expand(["fit", "a,b.csv", "--out", "x,y.nc"]) == ["fit", "a,b.csv", "--out", "x,y.nc"]
    got = expand(["study", "--setting", "a", "b", "--methods", "lsq", "bayes", "--out", "d"])
    assert got == [
        "study",
        "--setting",
        "a",
        "--setting",
        "b",
        "--methods",
        "lsq",
        "--methods",
        "bayes",
        "--out",
        "d",
    ]


def test_usage_errors_are_one_message_not_a_traceback(tmp_path):
    """typer raises its own copy of click's exceptions; they must still end as usage errors."""
    for args, says in (
        (["fit", "d.csv"], "Missing option '--out'"),
        (["fit", "d.csv", "--out", "x.nc", "--target", "bogus"], "'bogus' is not one of"),
        (["predict", "m.nc", "--us-acc", "0.9", "--kind", "invalid"], "'invalid' is not one of"),
        (["summary", "m.nc", "--no-such-option"], "No such option"),
    ):
        r = run(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert says in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
    r = run()  # no command: the help, not a traceback
    assert "Traceback" not in r.stderr and "Commands" in r.stdout + r.stderr


def test_outputs_are_checked_before_the_work(tmp_path, capsys):
    data = tmp_path / "d.csv"
    main(["simulate", "--n-models", "50", "--out", str(data), "--truth", str(tmp_path / "t/t.csv")])
    assert (tmp_path / "t" / "t.csv").exists()  # --truth's folder is created, as --out's
    a_dir = tmp_path / "adir"
    a_dir.mkdir()
    for args, says in (
        (["fit", str(data), "--out", str(a_dir), "--overwrite"], "is a folder"),
        (["fit", str(data), "--out", str(data / "x.nc")], "is a file, not a folder"),
        (["fit", str(data), "--out", str(tmp_path / "x.nc"), "--draws", "0"], "draws must be"),
        (["fit", str(data), "--out", str(tmp_path / "x.nc"), "--chains", "0"], "chains must be"),
        (["fit", str(data), "--out", str(tmp_path / "x.nc"), "--tune", "-5"], "tune must be"),
        (["demo", "--out", str(data)], "is a file, not a folder"),
        (["demo", "--out", str(tmp_path / "r"), "--prob", "1.5"], "--prob must be in (0, 1)"),
        (["bench", "--out", str(tmp_path / "b.json"), "--case", "timm"], "needs the timm"),
        (["bench", "--out", str(tmp_path / "b.json"), "--timm", str(a_dir / "no")], "no such"),
    ):
        with pytest.raises(SystemExit) as e:
            main(args)
        err = capsys.readouterr().err
        assert e.value.code == 2 and says in err, (args, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "d.csv", "t"]  # nothing left
    assert list(a_dir.iterdir()) == []


@pytest.mark.filterwarnings("ignore::scale_transfer.sampling.ConvergenceWarning")
@pytest.mark.filterwarnings("always::UserWarning")  # shown as the CLI shows it, not raised
def test_fit_with_effects_and_predict_a_level(tmp_path, capsys):
    from scale_transfer.simulate import simulate

    d = simulate("jft-25shot", 120, 0).data
    d = d[d.task.isin(["pets", "cars"])]
    data, model = tmp_path / "d.csv", tmp_path / "m.nc"
    d.to_csv(data, index=False)
    main(["fit", str(data), "--out", str(model), "--effects", "family", "--draws", "30",
          "--tune", "30", "--chains", "1", "--no-progress"])  # fmt: skip
    assert Posterior.load(model).config.effects == ("family",)
    capsys.readouterr()
    main(["predict", str(model), "--us-acc", "0.9", "--effect", "family=ViT"])
    assert "pets" in capsys.readouterr().out
    main(["predict", str(model), "--us-acc", "0.9", "--effect", "family=vit"])  # a typo
    assert "warning: effects: family level(s) 'vit' not among the fitted" in (
        capsys.readouterr().err
    )
    for bad, says in (
        (["--effect", "family"], "COLUMN=LEVEL"),
        (["--effect", "famly=ViT"], "no effect column"),
    ):
        with pytest.raises(SystemExit) as e:
            main(["predict", str(model), "--us-acc", "0.9", *bad])
        assert e.value.code == 2 and says in capsys.readouterr().err


def test_fit_and_validate_read_a_timm_folder(timm_dir, tmp_path, capsys):
    main(["validate", str(timm_dir)])
    out = capsys.readouterr().out
    assert "ok" in out and "imagenet" in out
    with pytest.raises(SystemExit) as e:
        main(["validate", str(timm_dir), "--percent"])
    assert e.value.code == 2 and "zoo loaders convert percent" in capsys.readouterr().err
