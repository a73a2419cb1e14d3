"""The product speaks of itself: no line or file name says how the project was built.

Runs ``tools/check_process_words.py`` on each area (fast: a text scan, no fitting).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "check_process_words", ROOT / "tools" / "check_process_words.py"
)
check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check)


@pytest.mark.parametrize("area", sorted(check.AREAS))
def test_no_process_words(area):
    found = check.hits(area)
    assert not found, "process words (history belongs in CHANGELOG.md):\n" + "\n".join(found)


def test_the_check_finds_what_it_should(tmp_path):
    assert check.WORDS.search("measured in " + "session" + " 7")
    assert check.WORDS.search("as the " + "helper" + " agent found")
    assert check.WORDS.search("issue 3's acceptance run")
    assert check.NAME.search("bench_s7_auto.json") and check.NAME.search("gpu_session6")
    assert not check.WORDS.search(check.ALLOWED.sub("", '@pytest.fixture(scope="session")'))
    assert not check.NAME.search("summary.csv")
