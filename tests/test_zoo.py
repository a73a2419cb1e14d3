"""Tests of the public zoo loaders on the shared data and on small copies of it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scale_transfer.data import DataError, read_tidy
from scale_transfer.zoo import (
    BENCHMARK_ENV,
    TIMM_ENV,
    TIMM_TASKS,
    ZooData,
    load_scaling_benchmark,
    load_timm,
)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
TIMM_DIR = Path(os.environ.get(TIMM_ENV) or SHARED / "timm-results")
BENCHMARK_CSV = Path(
    os.environ.get(BENCHMARK_ENV) or SHARED / "scaling-benchmark" / "benchmark.vision.csv"
)

needs_timm = pytest.mark.skipif(
    not (TIMM_DIR / "results-imagenet.csv").is_file(),
    reason=f"shared timm results not found at {TIMM_DIR} (set {TIMM_ENV})",
)
needs_benchmark = pytest.mark.skipif(
    not BENCHMARK_CSV.is_file(),
    reason=f"shared scaling benchmark not found at {BENCHMARK_CSV} (set {BENCHMARK_ENV})",
)

DUPLICATE = "convnext_atto.d2_in1k"  # evaluated at 224 and 288
BIG = "eva_giant_patch14_336.m30m_ft_in22k_in1k"  # param_count "1,013.01"


# --------------------------------------------------------------------------- timm


@pytest.fixture(scope="module")
def timm() -> ZooData:
    if not (TIMM_DIR / "results-imagenet.csv").is_file():
        pytest.skip(f"shared timm results not found at {TIMM_DIR}")
    return load_timm(TIMM_DIR)


@needs_timm
def test_timm_rows_and_tasks(timm):
    counts = timm.data.groupby("task").size().to_dict()
    assert counts == {
        "imagenetv2": 1556,
        "sketch": 1556,
        "real": 1556,
        "imagenet-r": 1556,
        "imagenet-a": 1555,
    }
    assert timm.data["model"].nunique() == 1556
    assert list(timm.data["setting"].unique()) == ["in1k"]


@needs_timm
def test_timm_passes_read_tidy_and_fractions(timm):
    again = read_tidy(timm.data)  # default min_points
    assert len(again) == len(timm.data)
    for col in ("us_acc", "ds_acc"):
        assert timm.data[col].between(0, 1).all()
    # the 200-class clean subsets are easier than the full validation set
    r = timm.data[timm.data.task == "imagenet-r"]
    assert (r["us_file"] == "results-imagenet-r-clean.csv").all()
    assert r["us_acc"].median() > timm.data.loc[timm.data.task == "real", "us_acc"].median()


@needs_timm
def test_timm_duplicate_names_get_img_size(timm):
    d = timm.data[timm.data.task == "imagenetv2"]
    rows = d[d["name"] == DUPLICATE].set_index("model")
    assert sorted(rows.index) == [f"{DUPLICATE}@224", f"{DUPLICATE}@288"]
    assert rows.loc[f"{DUPLICATE}@288", "us_acc"] == pytest.approx(0.77016)
    assert rows.loc[f"{DUPLICATE}@224", "us_acc"] == pytest.approx(0.75672)
    assert (d["model"] == d["name"] + "@" + d["img_size"].astype(str)).all()


@needs_timm
def test_timm_params_family_and_extra_data(timm):
    d = timm.data[timm.data.task == "sketch"].set_index("model")
    assert d.loc[f"{BIG}@336", "params"] == pytest.approx(1013.01e6)
    assert d["params"].notna().all()
    assert d.loc[f"{DUPLICATE}@224", "family"] == "convnext"
    assert d.loc["tf_efficientnet_b4.ns_jft_in1k@380", "family"] == "efficientnet"
    assert d.loc["tf_efficientnet_b4.ns_jft_in1k@380", "extra_data"]
    assert not d.loc[f"{DUPLICATE}@224", "extra_data"]
    assert d.loc[f"{BIG}@336", "extra_data"]


@needs_timm
def test_timm_pretrain_metadata(timm):
    d = timm.data[timm.data.task == "sketch"].set_index("model")
    assert d.loc["resnet50.a1_in1k@288", "pretrain"] == "in1k"
    # older metadata says in1k for the architecture, the tag says JFT: left out
    assert pd.isna(d.loc["tf_efficientnet_b4.ns_jft_in1k@380", "pretrain"])
    known = d["pretrain"].dropna()
    assert set(known) <= {"in1k", "in1k-dist", "in1k-ap", "in1k-adv", "in21k", "in21k-selfsl"}
    assert not d.loc[known.index][known.str.startswith("in1k")]["extra_data"].any()


@needs_timm
def test_timm_unjoined(timm):
    u = timm.unjoined
    assert list(u.columns) == ["file", "model", "task", "reason", "detail"]
    files = u[u.file != "model_metadata-in1k.csv"].set_index("model")
    assert len(files) == 2
    assert files.loc["resmlp_24_224.fb_dino@224", "file"] == "results-imagenet-a.csv"
    assert files.loc["resmlp_24_224.fb_dino@224", "reason"] == "not in the upstream file"
    assert files.loc["resnet50.tv_in1k@224", "file"] == "results-imagenet-a-clean.csv"
    assert (files["task"] == "imagenet-a").all()
    meta = u[u.file == "model_metadata-in1k.csv"].reason.value_counts().to_dict()
    assert meta == {
        "matches no architecture name": 127,
        "pretrain contradicts the weights tag; set to NaN": 55,
    }
    text = str(timm)
    assert "7779 rows" in text and "unjoined: 184" in text


@needs_timm
def test_timm_task_subset_and_default_folder(monkeypatch):
    monkeypatch.delenv(TIMM_ENV, raising=False)
    monkeypatch.chdir(REPO)
    zoo = load_timm(tasks=["imagenetv2"], metadata=False)
    assert set(zoo.data.task) == {"imagenetv2"} and len(zoo.data) == 1556
    assert "pretrain" not in zoo.data.columns
    with pytest.raises(ValueError, match="unknown timm task"):
        load_timm(TIMM_DIR, tasks=["imagenet-c"])
    one = load_timm(tasks="imagenetv2", metadata=False)  # one name, not its letters
    assert set(one.data.task) == {"imagenetv2"}


def _trim(src: Path, dst: Path, names: list[str]) -> None:
    df = pd.read_csv(src, dtype=str)
    df[df["model"].isin(names)].to_csv(dst, index=False)


@needs_timm
def test_timm_user_folder(tmp_path, monkeypatch):
    names = [
        BIG,
        DUPLICATE,
        "resnet50.a1_in1k",
        "vit_base_patch16_224.augreg_in1k",
        "tf_efficientnet_b4.ns_jft_in1k",
    ]
    for f in ("results-imagenet.csv", "results-sketch.csv", "model_metadata-in1k.csv"):
        if f.startswith("model_"):
            (tmp_path / f).write_text("model,pretrain\nresnet50,in1k\ntf_efficientnet_b4,in1k\n")
        else:
            _trim(TIMM_DIR / f, tmp_path / f, names)
    assert '"1,013.01"' in (tmp_path / "results-imagenet.csv").read_text()
    zoo = load_timm(tmp_path, tasks=["sketch"])
    d = zoo.data.set_index("model")
    assert len(d) == 7  # 5 names, two of them at two resolutions
    assert d.loc[f"{BIG}@336", "params"] == pytest.approx(1.01301e9)
    assert d.loc["resnet50.a1_in1k@288", "pretrain"] == "in1k"
    assert pd.isna(d.loc["tf_efficientnet_b4.ns_jft_in1k@380", "pretrain"])
    assert zoo.unjoined.reason.tolist() == ["pretrain contradicts the weights tag; set to NaN"]
    # the environment variable points the default at the same folder
    monkeypatch.setenv(TIMM_ENV, str(tmp_path))
    assert len(load_timm(tasks=["sketch"]).data) == 7


@needs_timm
def test_timm_missing_files(tmp_path):
    _trim(TIMM_DIR / "results-imagenet.csv", tmp_path / "results-imagenet.csv", [BIG])
    with pytest.raises(DataError, match=r"results-sketch\.csv: no such file.*sketch"):
        load_timm(tmp_path, tasks=["sketch"], metadata=False)
    with pytest.raises(DataError, match=r"results-imagenet-r-clean\.csv"):
        load_timm(tmp_path, tasks=["imagenet-r"], metadata=False)
    _trim(TIMM_DIR / "results-sketch.csv", tmp_path / "results-sketch.csv", [BIG])
    with pytest.raises(DataError, match=r"model_metadata-in1k\.csv.*metadata=False"):
        load_timm(tmp_path, tasks=["sketch"])
    with pytest.raises(DataError, match="no such folder"):
        load_timm(tmp_path / "nowhere")


def test_timm_bad_values_name_file_and_row(tmp_path):
    header = "model,img_size,top1,top1_err,top5,top5_err,param_count,crop_pct,interpolation\n"
    good = 'a.x_in1k,224,80.0,20.0,95.0,5.0,"1,013.01",0.9,bicubic\n'
    (tmp_path / "results-imagenet.csv").write_text(header + good)
    (tmp_path / "results-sketch.csv").write_text(header + good + "b.y_in1k,224,,,,,5.0,0.9,x\n")
    zoo = load_timm(tmp_path, tasks=["sketch"], metadata=False)
    assert zoo.data["params"].iloc[0] == pytest.approx(1.01301e9)
    assert zoo.data["us_acc"].iloc[0] == pytest.approx(0.8)
    dropped = zoo.unjoined[zoo.unjoined.reason == "missing values; row dropped"]
    assert dropped[["file", "model"]].values.tolist() == [["results-sketch.csv", "b.y_in1k"]]
    (tmp_path / "results-sketch.csv").write_text(header + good + "b.y_in1k,224,8o,,,,5.0,0.9,x\n")
    with pytest.raises(DataError, match=r"results-sketch\.csv: column 'top1'.*line 3"):
        load_timm(tmp_path, tasks=["sketch"], metadata=False)
    (tmp_path / "results-sketch.csv").write_text(header + good + good)
    with pytest.raises(DataError, match=r"results-sketch\.csv: duplicate.*lines 2, 3"):
        load_timm(tmp_path, tasks=["sketch"], metadata=False)


def test_timm_tasks_table():
    assert set(TIMM_TASKS) == {"imagenetv2", "sketch", "real", "imagenet-r", "imagenet-a"}


# ---------------------------------------------------------------- scaling benchmark


@pytest.fixture(scope="module")
def bench() -> ZooData:
    if not BENCHMARK_CSV.is_file():
        pytest.skip(f"shared scaling benchmark not found at {BENCHMARK_CSV}")
    return load_scaling_benchmark(BENCHMARK_CSV)


@needs_benchmark
def test_benchmark_rows_tasks_settings(bench):
    d = bench.data
    counts = d.groupby(["setting", "task"]).size().to_dict()
    assert counts == {
        ("jft-5shot", "bird"): 1381,
        ("jft-5shot", "cifar100"): 1468,
        ("jft-5shot", "caltech101"): 408,
        ("jft-5shot", "imagenet"): 1411,
        ("jft-10shot", "bird"): 1579,
        ("jft-10shot", "cifar100"): 1755,
        ("jft-10shot", "caltech101"): 297,
        ("jft-10shot", "imagenet"): 1672,
        ("jft-25shot", "bird"): 1522,
        ("jft-25shot", "cifar100"): 1572,
        ("jft-25shot", "caltech101"): 255,
    }
    assert "inet_25" not in set(d["benchmark_task"])  # the upstream task
    assert len(read_tidy(d)) == 13320
    for col in ("us_acc", "ds_acc"):
        assert d[col].between(0, 1).all()
    assert set(d["family"]) == {"vit", "bit", "mix"}
    assert d.loc[d.model.str.startswith("ViT/B/16@"), "params"].eq(110e6).all()


@needs_benchmark
def test_benchmark_exact_matches_and_training_flag(bench):
    raw = pd.read_csv(BENCHMARK_CSV)
    up = raw[raw.Task == "inet_25"].set_index(["Model", "Seen Examples"])["Loss"]
    d = bench.data[~bench.data.us_interpolated]
    run = d["model"].str.split("@").str[0]
    expected = 1 - up.loc[list(zip(run, d["seen_examples"], strict=True))].to_numpy()
    np.testing.assert_allclose(d["us_acc"], expected)
    assert 0.3 < bench.data["us_interpolated"].mean() < 0.7
    # Training marks the early points used to fit curves; held-out points come later
    b = bench.data.assign(run=bench.data.model.str.split("@").str[0])
    for _, g in b.groupby(["run", "benchmark_task"]):
        if g.training.any() and (~g.training).any():
            assert (
                g.loc[g.training, "seen_examples"].max() < g.loc[~g.training, "seen_examples"].min()
            )


@needs_benchmark
def test_benchmark_unjoined_and_shots(bench):
    u = bench.unjoined
    assert len(u) == 3699
    assert set(u.reason) == {"outside the run's upstream range; not extrapolated"}
    assert "unjoined: 3699" in str(bench)
    five = load_scaling_benchmark(BENCHMARK_CSV, shots=5)
    assert set(five.data.setting) == {"jft-5shot"}
    assert len(five.data) == 1381 + 1468 + 408 + 1411
    with pytest.raises(DataError, match="no upstream task 'inet_50'"):
        load_scaling_benchmark(BENCHMARK_CSV, upstream_task="inet_50")


def _bench_csv(path: Path, rows: list[tuple]) -> Path:
    df = pd.DataFrame(rows, columns=["Task", "Model", "Seen Examples", "Loss", "Training"])
    df.insert(0, "Domain", "IC")
    df.to_csv(path, index=False)
    return path


def test_benchmark_interpolation_user_path(tmp_path, monkeypatch):
    csv = _bench_csv(
        tmp_path / "bench.csv",
        [
            ("inet_25", "ViT/T/1", 10.0, 0.9, 1),
            ("inet_25", "ViT/T/1", 100.0, 0.5, 1),
            ("inet_25", "ViT/T/1", 1000.0, 0.3, 0),
            ("bird_5", "ViT/T/1", 10.0, 0.95, 1),  # exact
            ("bird_5", "ViT/T/1", 10**1.5, 0.9, 1),  # halfway in log
            ("bird_5", "ViT/T/1", 500.0, 0.8, 0),
            ("bird_5", "ViT/T/1", 5.0, 0.99, 1),  # before the upstream range
            ("bird_5", "ViT/T/1", 2000.0, 0.7, 0),  # after it
        ],
    )
    monkeypatch.setenv(BENCHMARK_ENV, str(csv))
    zoo = load_scaling_benchmark()
    d = zoo.data.set_index("model")
    assert list(d.index) == ["ViT/T/1@10", "ViT/T/1@32", "ViT/T/1@500"]
    assert d["us_acc"].tolist() == pytest.approx(
        [0.1, 0.3, 1 - (0.5 + (0.3 - 0.5) * np.log(5) / np.log(10))]
    )
    assert d["us_interpolated"].tolist() == [False, True, True]
    assert d["training"].tolist() == [True, True, False]
    assert set(d["setting"]) == {"jft-5shot"} and set(d["task"]) == {"bird"}
    assert np.isnan(d["params"]).all()
    assert sorted(zoo.unjoined["model"]) == ["ViT/T/1@2000", "ViT/T/1@5"]
    assert (zoo.unjoined["detail"] == "inet_25 of ViT/T/1 spans [10, 1000] seen examples").all()


def test_benchmark_bad_input(tmp_path):
    with pytest.raises(DataError, match=r"missing\.csv: no such file"):
        load_scaling_benchmark(tmp_path / "missing.csv")
    csv = _bench_csv(tmp_path / "b.csv", [("inet_25", "M", 10.0, 1.5, 1)])
    with pytest.raises(DataError, match=r"b\.csv: column 'Loss' is outside \[0, 1\] at line 2"):
        load_scaling_benchmark(csv)
    csv = _bench_csv(tmp_path / "b.csv", [("inet25", "M", 10.0, 0.5, 1)])
    with pytest.raises(DataError, match=r"column 'Task' is not '<dataset>_<shots>' at line 2"):
        load_scaling_benchmark(csv)
    # rows of other domains are dropped first; the error still names the file's line
    df = pd.read_csv(_bench_csv(tmp_path / "b.csv", [("x_1", "M", 10.0, 0.5, 1)] * 2))
    df.loc[0, "Domain"] = "NLP"
    df.loc[1, "Task"] = "inet25"
    df.to_csv(csv, index=False)
    with pytest.raises(DataError, match=r"column 'Task' is not '<dataset>_<shots>' at line 3"):
        load_scaling_benchmark(csv)
    csv = _bench_csv(tmp_path / "b.csv", [("inet_25", "M", 10.0, 0.5, 1)])
    with pytest.raises(DataError, match="no downstream task"):
        load_scaling_benchmark(csv)


def test_a_loaders_result_goes_straight_into_the_api(tmp_path, timm):
    from scale_transfer import fit_lsq_frame, validate
    from scale_transfer.zoo import load_dataset

    pd.testing.assert_frame_equal(read_tidy(timm), read_tidy(timm.data))
    assert validate(timm).n_rows == len(timm.data)
    one = timm.data[timm.data.task == "sketch"]
    small = load_timm(TIMM_DIR, tasks="sketch")
    got = fit_lsq_frame(small, n_boot=0)
    assert got["n"].tolist() == [len(one)]
    # the benchmark's CSV given by its path (not only through 'benchmark' and the env var)
    csv = _bench_csv(
        tmp_path / "bench.csv",
        [("inet_25", "M", 10.0, 0.9, 1), ("inet_25", "M", 100.0, 0.5, 1)]
        + [("bird_5", "M", s, 0.8, 1) for s in (10.0, 30.0, 60.0, 100.0)],
    )
    df = load_dataset(csv)
    assert set(df["task"]) == {"bird"} and len(df) == 4 and "run" in df


@pytest.mark.slow
def test_timm_fit_converges_where_least_squares_hits_its_bound(timm):
    """The paper's law on timm converges (4 x 2000 as tools/timm_fit.py) and
    its intervals are not degenerate where the bootstrap collapses to e_IR = 0."""
    from scale_transfer import fit, fit_lsq_frame

    post = fit(timm, target="all", law="error", draws=2000, tune=2000, progress=False)
    d = post.diagnostics
    assert d.max_rhat <= 1.01 and d.divergences == 0, d.verdict()
    lsq = fit_lsq_frame(timm, n_boot=200).set_index("task")
    s = post.summary(prob=0.9).set_index("task")
    at_bound = lsq.index[lsq["at_bound"]]
    assert len(at_bound) >= 3
    for task in at_bound:
        assert lsq.loc[task, "asymptote_upper"] - lsq.loc[task, "asymptote_lower"] < 1e-9
        assert s.loc[task, "upper"] - s.loc[task, "lower"] > 1e-4  # not degenerate
