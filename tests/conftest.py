"""Shared test set-up: headless matplotlib, the ``--run-slow`` option, shared data paths."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SCALE_TRANSFER_SHARED", ROOT.parent / "shared"))
TIMM = SHARED / "data" / "timm-results"
BENCHMARK = SHARED / "data" / "scaling-benchmark" / "benchmark.vision.csv"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow", action="store_true", default=False, help="also run tests marked slow"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def timm_dir() -> Path:
    if not TIMM.exists():
        pytest.skip(f"shared timm data not found at {TIMM}")
    return TIMM


@pytest.fixture(scope="session")
def benchmark_csv() -> Path:
    if not BENCHMARK.exists():
        pytest.skip(f"shared scaling benchmark not found at {BENCHMARK}")
    return BENCHMARK
