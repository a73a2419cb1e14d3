"""The benchmark: JSON fields, derived ratios and targets, the CLI, and sampler behaviour."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from scale_transfer.studies.bench import (
    CASES,
    TARGETS,
    BenchConfig,
    format_table,
    machine_info,
    naive_model,
    run_benchmark,
    versions,
)
from scale_transfer.studies.bench_cases import FRONTIER_ONLY
from scale_transfer.studies.bench_table import check_targets, derive_ratios

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmark.md"
TOP = {"machine", "versions", "command", "config", "records", "ratios", "targets", "complete"}
MACHINE = {"cores", "cpu_model", "memory_bytes", "python", "platform"}
VERSIONS = {"scale_transfer", "pymc", "pytensor", "nutpie", "numpy", "arviz"}
RECORD = {
    "case",
    "method",
    "likelihood",
    "fit",
    "wall_seconds",
    "compile_seconds",
    "sample_seconds",
    "compile_cache_warm",
    "draws",
    "chains",
    "min_ess_bulk",
    "min_ess_tail",
    "max_rhat",
    "divergences",
    "max_depth_hits",
    "mean_tree_depth",
    "step_size",
    "ess_per_second",
    "peak_rss_bytes",
    "cpu_seconds",
}


def _documented() -> set[str]:
    return set(re.findall(r"`([a-z_0-9]+)`", DOC.read_text()))


def _check_fields(result: dict) -> None:
    assert TOP <= set(result)
    assert MACHINE <= set(result["machine"])
    assert VERSIONS <= set(result["versions"])
    assert result["records"]
    for r in result["records"]:
        assert RECORD <= set(r), RECORD - set(r)
    doc = _documented()
    keys = set(result) | set(result["machine"]) | set(result["versions"])
    for group in ("records", "ratios", "targets"):
        for item in result[group]:
            keys |= set(item)
    assert keys <= doc, f"fields missing from docs/benchmark.md: {sorted(keys - doc)}"


def _rec(case, method, lik, fit="cold", wall=10.0, ess=1000.0, cache=False, **kw):
    base = {
        "case": case,
        "method": method,
        "likelihood": lik,
        "fit": fit,
        "wall_seconds": wall,
        "compile_seconds": 0.0 if cache else 5.0,
        "sample_seconds": wall - (0.0 if cache else 5.0),
        "compile_cache_warm": cache,
        "draws": 1000,
        "chains": 4,
        "min_ess_bulk": ess,
        "min_ess_tail": ess,
        "max_rhat": 1.0,
        "divergences": 0,
        "max_depth_hits": 0,
        "mean_tree_depth": 4.0,
        "step_size": 0.1,
        "grad_evals": 100,
        "peak_rss_bytes": 2**29,
        "cpu_seconds": wall * 1.5,
        "load_average": 1.0,
    }
    return base | kw


def test_ratios_and_targets_from_known_records():
    recs = [
        _rec("paper-hull", "lsq-bootstrap", "least-squares", wall=4.0, ess=float("nan")),
        _rec("paper-hull", "bayes", "gaussian", wall=20.0, ess=2000.0),
        _rec("paper-hull", "bayes", "gaussian", fit="warm", wall=2.0, ess=2000.0, cache=True),
        _rec("paper-hull", "naive-pymc", "gaussian", wall=100.0, ess=100.0, divergences=3),
    ]
    ratios = derive_ratios(recs)
    by = {(q["ratio"], q["fit"]): q["value"] for q in ratios}
    assert by[("bayes_wall/bootstrap_wall", "cold")] == pytest.approx(5.0)
    assert by[("bayes_wall/bootstrap_wall", "warm")] == pytest.approx(0.5)
    # naive: 1 s per ESS; Bayes cold: 0.01 s per ESS -> 100x
    assert by[("naive_wall_per_ess/bayes_wall_per_ess", "cold")] == pytest.approx(100.0)
    # a warm fit is compared on sampling alone (naive: 95 s / 100; warm: 2 s / 2000)
    assert ("naive_wall_per_ess/bayes_wall_per_ess", "warm") not in by
    assert by[("naive_sample_per_ess/bayes_sample_per_ess", "warm")] == pytest.approx(950.0)
    targets = check_targets(recs, ratios)
    got = {(t["target"], t["fit"]): t["passed"] for t in targets}
    assert got[("min_ess_bulk", "cold")] and got[("max_rhat", "cold")]
    assert not got[("wall_vs_bootstrap_s", "cold")]  # 20 s > 4 s
    assert got[("wall_vs_bootstrap_s", "warm")]  # 2 s <= 4 s
    assert got[("hull_warm_wall_s", "warm")]
    assert got[("naive_speedup", "cold")] and got[("peak_rss_gib", "cold")]
    # the naive run itself is not held to the targets
    assert all(t["likelihood"] != "least-squares" for t in targets)


def test_speed_targets_by_fit():
    """A later process's first fit within 2x the bootstrap, a warm refit within 1x."""
    recs = [
        _rec("timm", "lsq-bootstrap", "least-squares", wall=2.0, ess=float("nan")),
        _rec("timm", "bayes", "gaussian", fit="first", wall=30.0),
        _rec("timm", "bayes", "gaussian", fit="cold", wall=3.9, compile_cache_loaded=True),
        _rec("timm", "bayes", "gaussian", fit="warm", wall=2.1, cache=True),
    ]
    targets = check_targets(recs, derive_ratios(recs))
    got = {(t["target"], t["fit"]): t["passed"] for t in targets}
    assert got[("wall_vs_bootstrap_s", "cold")]  # 3.9 <= 2 x 2.0
    assert not got[("wall_vs_bootstrap_s", "warm")]  # 2.1 > 1 x 2.0
    assert ("wall_vs_bootstrap_s", "first") not in got  # recorded, not held to a target
    assert got[("min_ess_bulk", "first")] and got[("min_ess_bulk", "cold")]
    note = next(t["note"] for t in targets if t["fit"] == "cold" and "wall" in t["target"])
    assert "loaded from the package cache" in note


def test_plan_runs_the_frontier_at_paper_scale_through_paper_top():
    from scale_transfer.studies.bench import _plan

    plan = _plan(BenchConfig(timm_dir="x"))
    for top in ("timm-top", "paper-top"):  # the frontier fits that `fit` runs: frontier only
        assert (top, "bayes", "frontier") in plan
        assert not [p for p in plan if p[0] == top and p[2] != "frontier"]
        assert not BenchConfig(timm_dir="x").warm_for(top)
    # the frontier on all points (paper-all: over 20 minutes) and on the hull only when named
    for case in ("paper-hull", "timm", "paper-all"):
        assert (case, "bayes", "frontier") not in plan
        assert (case, "bayes", "gaussian") in plan
        named = _plan(BenchConfig(timm_dir="x", cases=(case,), frontier_cases=(case,)))
        assert (case, "bayes", "frontier") in named
    assert plan[-2:] == [("timm-top", "bayes", "frontier"), ("paper-top", "bayes", "frontier")]
    assert "timm-top" not in BenchConfig().cases  # no timm folder: no timm case
    assert BenchConfig().warm_for("paper-all")
    recs = [_rec("paper-top", "bayes", "frontier", fit="first", wall=130.0)]
    got = {t["target"]: t["passed"] for t in check_targets(recs, derive_ratios(recs))}
    assert got["top_wall_s"] is False  # 130 s > 2 minutes


def test_every_json_field_is_documented():
    recs = [
        _rec("paper-hull", "lsq-bootstrap", "least-squares", wall=4.0, ess=float("nan")),
        _rec("paper-hull", "bayes", "gaussian", fit="first", wall=20.0, ess=2000.0),
        _rec("paper-hull", "bayes", "gaussian", wall=20.0, ess=2000.0),
        _rec("paper-hull", "bayes", "gaussian", fit="warm", wall=2.0, cache=True),
        _rec("paper-hull", "naive-pymc", "gaussian", wall=100.0, ess=100.0),
    ]
    recs = [
        r | {"compile_cache": "empty", "compile_cache_loaded": False}
        if r["method"] == "bayes"
        else r
        for r in recs
    ]
    extra = {
        "converged": True,
        "n_points": 10,
        "n_groups": 8,
        "import_seconds": 1.0,
        "rss_before_fit_bytes": 1,
        "ess_per_second": 1.0,
    }
    recs = [r | extra for r in recs]
    ratios = derive_ratios(recs)
    machine = machine_info() | {"load_average_end": [0, 0, 0]}
    result = {
        "machine": machine,
        "versions": versions(),
        "command": "x",
        "config": {"at_target_settings": False},
        "targets_thresholds": TARGETS,
        "records": recs,
        "ratios": ratios,
        "targets": check_targets(recs, ratios),
        "complete": True,
        "total_seconds": 1.0,
    }
    _check_fields(result)
    doc = _documented()
    from dataclasses import asdict

    assert set(asdict(BenchConfig())) <= doc
    assert {t["target"] for t in result["targets"]} <= doc


def test_format_table_says_pass_fail_and_incomplete():
    recs = [
        _rec("paper-all", "lsq-bootstrap", "least-squares", wall=30.0, ess=float("nan")),
        _rec("paper-all", "bayes", "frontier", wall=300.0, ess=500.0, max_rhat=1.02),
    ]
    q = derive_ratios(recs)
    for r in recs:
        r["ess_per_second"] = r["min_ess_bulk"] / r["wall_seconds"]
    res = {
        "records": recs,
        "ratios": q,
        "targets": check_targets(recs, q),
        "machine": {
            "cores": 2,
            "cpu_model": "x",
            "memory_bytes": 2**34,
            "python": "3",
            "load_average_start": [1, 1, 1],
        },
        "config": {"at_target_settings": True},
        "complete": False,
    }
    text = format_table(res)
    assert "FAIL" in text and "PASS" in text and "INCOMPLETE" in text
    assert "paper-all" in text and "frontier" in text


def test_config_validation():
    with pytest.raises(ValueError, match="unknown case"):
        BenchConfig(cases=("nope",))
    with pytest.raises(ValueError, match="likelihood"):
        BenchConfig(likelihoods=("student",))
    with pytest.raises(ValueError, match="warm_refit"):
        BenchConfig(warm_refit="sometimes")
    with pytest.raises(ValueError, match="numba_cache"):
        BenchConfig(numba_cache="warm")
    with pytest.raises(ValueError, match="compile_cache"):
        BenchConfig(compile_cache="some")
    # a Gaussian fit runs first from an empty package cache, then in a later process
    assert BenchConfig().package_cache_runs("gaussian") == ("empty", "filled")
    assert BenchConfig().package_cache_runs("frontier") == ("empty",)
    assert BenchConfig(compile_cache="empty").package_cache_runs("gaussian") == ("empty",)
    assert BenchConfig(compile_cache="user").package_cache_runs("gaussian") == ("user",)
    # no timm folder: the timm case is dropped, not failed
    assert "timm" not in BenchConfig().cases
    assert "timm" in BenchConfig(timm_dir="x").cases
    q = BenchConfig.quick_config(chains=3)
    assert q.quick and q.chains == 3 and q.n_models == 300 and not q.at_target_settings
    assert BenchConfig(naive_draws=200).naive_tune == 200
    # draws unset: each fit's own default (TOP_DRAWS for a top fit), as `fit` draws
    from scale_transfer.config import DEFAULT_DRAWS, TOP_DRAWS, ModelConfig
    from scale_transfer.sampling import resolve_tuning

    sc = BenchConfig().sampler_config()
    assert sc.draws == "auto" and BenchConfig().at_target_settings
    assert resolve_tuning(sc, ModelConfig(target="top", likelihood="frontier")).draws == TOP_DRAWS
    assert resolve_tuning(sc, ModelConfig(target="hull")).draws == DEFAULT_DRAWS
    assert BenchConfig().naive_draws == 1000
    assert BenchConfig(draws=300).sampler_config().draws == 300


def test_naive_model_is_the_plain_transcription():
    from scale_transfer.model import ModelConfig, prepare_data
    from scale_transfer.simulate import simulate

    fd = prepare_data(simulate("jft-25shot", 60, 0).data, ModelConfig(target="hull"))
    m = naive_model(fd)
    names = {v.name for v in m.free_RVs}
    assert {"log_k_z", "log_alpha_z", "logit_e_ir_z", "sigma"} <= names  # non-centred
    assert {"k", "alpha", "e_ir"} <= {v.name for v in m.deterministics}
    assert np.isfinite(m.compile_logp()(m.initial_point()))


def test_cli_refuses_existing_file_and_unknown_case(tmp_path, capsys):
    from scale_transfer.cli import main

    out = tmp_path / "b.json"
    out.write_text("{}")
    with pytest.raises(SystemExit) as e:
        main(["bench", "--out", str(out), "--quick"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["bench", "--out", str(tmp_path / "c.json"), "--quick", "--case", "nope"])
    assert e.value.code == 2
    assert "unknown case" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_hull_case_end_to_end(tmp_path, capsys):
    """One case, one likelihood, through the CLI: child processes, warm refit, JSON fields."""
    from scale_transfer.cli import main

    out = tmp_path / "bench.json"
    main(
        [
            "bench",
            "--out",
            str(out),
            "--quick",
            "--case",
            "paper-hull",
            "--likelihood",
            "gaussian",
            "--n-boot",
            "20",
        ]
    )
    result = json.loads(out.read_text())
    assert result["complete"] is True
    _check_fields(result)
    fits = {(r["method"], r["fit"]): r for r in result["records"]}
    first, cold = fits[("bayes", "first")], fits[("bayes", "cold")]
    warm = fits[("bayes", "warm")]
    assert not cold["compile_cache_warm"] and warm["compile_cache_warm"]
    assert warm["compile_seconds"] < cold["compile_seconds"]
    # --compile-cache both (default): the first child compiles and stores the model; the
    # later one loads it from the package cache
    assert first["compile_cache"] == "empty" and not first["compile_cache_loaded"]
    assert cold["compile_cache"] == "filled" and cold["compile_cache_loaded"]
    assert cold["compile_seconds"] < first["compile_seconds"]
    # --numba-cache fresh (default): every child starts from an empty PyTensor disk cache;
    # the first fills it, the later one (its model loaded) and the warm refit add nothing
    assert first["numba_cache"] == "fresh" and first["numba_cache_files_before"] == 0
    assert first["numba_cache_new_files"] > 0 and cold["numba_cache_files_before"] == 0
    assert cold["numba_cache_new_files"] == 0 and warm["numba_cache_new_files"] == 0
    assert cold["peak_rss_bytes"] > 50 * 2**20  # a real child process with PyMC loaded
    assert fits[("lsq-bootstrap", "cold")]["draws"] == 20
    text = capsys.readouterr().out
    assert "targets:" in text and "wrote" in text


@pytest.mark.slow
def test_quick_mode_every_case_end_to_end(tmp_path, timm_dir):
    out = tmp_path / "bench.json"
    # the user's numba disk cache: this test is about every case's plumbing; compiling
    # each child from an empty cache (the default, checked in the hull test) adds minutes
    cfg = BenchConfig.quick_config(timm_dir=str(timm_dir), with_naive=True, numba_cache="shared")
    result = run_benchmark(out, cfg, command="test", log=lambda line: None)
    _check_fields(result)
    got = {(r["case"], r["method"], r["likelihood"]) for r in result["records"]}
    for case in CASES:
        if case in FRONTIER_ONLY:  # the frontier fit only
            assert {g for g in got if g[0] == case} == {(case, "bayes", "frontier")}
            continue
        assert (case, "bayes", "gaussian") in got
        assert (case, "bayes", "frontier") not in got  # only where named
        assert (case, "naive-pymc", "gaussian") in got
        assert (case, "lsq-bootstrap", "least-squares") in got
    names = {q["ratio"] for q in result["ratios"]}
    assert "naive_wall_per_ess/bayes_wall_per_ess" in names
    assert "bayes_wall/bootstrap_wall" in names


@pytest.mark.filterwarnings("ignore::scale_transfer.sampling.ConvergenceWarning")
def test_default_sampler_keeps_small_hull_fits_cheap():
    """Default sampler settings on a small hull fit: shallow trees, (almost) no divergences.

    Measured (300 models, hull points, 2 chains x 300 draws, seeds 0-3, centred as
    ``centered="auto"`` does for hull fits): mean tree depth 6.25-6.69, no max-depth hits,
    0-1 divergences of 600. Non-centred, the same fit has depth 9.4 and a third of its
    transitions at the maximum depth, so this test fails if the centring rule regresses.
    """
    from scale_transfer.posterior import fit
    from scale_transfer.simulate import simulate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        post = fit(
            simulate("jft-25shot", 300, 0).data,
            target="hull",
            draws=300,
            tune=300,
            chains=2,
            progress=False,
        )
    ss = post.dt["sample_stats"]
    n = ss["diverging"].size
    assert float(ss["depth"].mean()) < 8.0
    assert int(ss["maxdepth_reached"].sum()) <= 0.01 * n
    assert int(ss["diverging"].sum()) <= 0.01 * n
