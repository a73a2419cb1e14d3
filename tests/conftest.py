"""Shared test set-up: headless matplotlib, the ``--run-slow`` option, shared data paths."""

from __future__ import annotations

import os
import signal
import time
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


#: Minutes of a test run after which slow tests are skipped (``--run-slow`` runs them
#: while this budget allows, so that CI ends within its time limit); override with the
#: environment variable ``SCALE_TRANSFER_SLOW_BUDGET_MIN``.
SLOW_BUDGET_MIN = float(os.environ.get("SCALE_TRANSFER_SLOW_BUDGET_MIN", "35"))
_SESSION_START = time.monotonic()


def pytest_runtest_setup(item: pytest.Item) -> None:
    spent = (time.monotonic() - _SESSION_START) / 60.0
    if "slow" in item.keywords and spent > SLOW_BUDGET_MIN:
        pytest.skip(
            f"slow-test budget spent ({spent:.0f} of {SLOW_BUDGET_MIN:g} min; "
            "SCALE_TRANSFER_SLOW_BUDGET_MIN raises it)"
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def default_sigint_handler():
    """Give every test Python's own Ctrl-C handler (KeyboardInterrupt).

    Some library used by an earlier test of the run can leave another SIGINT handler
    behind (seen in a full run: the interrupt tests then waited for a fit that nothing
    stopped); a user's process starts with the default, which is what the tests check.
    """
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield


@pytest.fixture(scope="session", autouse=True)
def compiled_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keep the test run's compiled models in a folder of its own, not the user's cache.

    Set before any fit (and inherited by the child processes tests start); a run that
    names ``SCALE_TRANSFER_CACHE_DIR`` itself keeps it.
    """
    from scale_transfer.compile_cache import CACHE_DIR_ENV

    if CACHE_DIR_ENV not in os.environ:
        os.environ[CACHE_DIR_ENV] = str(tmp_path_factory.mktemp("compiled-models"))
    return Path(os.environ[CACHE_DIR_ENV])


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
