"""List lines and file names of the product that speak of how it was built, not of what it is.

Usage:
    .venv/bin/python tools/check_process_words.py [AREA ...]   # default: every area

Scans README.md, docs/, src/, tests/, notebooks/, tools/ and models/README.md for numbered
work periods ("session 7", "sessions"), references to who built it ("helper agent", "for the
lead") or to tracker numbers ("issue 3"), and file names carrying such numbers
(``bench_s7.json``). History belongs in CHANGELOG.md, which is not scanned. Exits 1 and
prints ``path:line: text`` for every hit; ``tests/test_repo_hygiene.py`` runs it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AREAS = {
    "readme": ["README.md", "models/README.md"],
    "docs": ["docs"],
    "src": ["src"],
    "tests": ["tests"],
    "notebooks": ["notebooks"],
    "tools": ["tools"],
}
SUFFIXES = {".md", ".py", ".ipynb", ".txt", ".csv", ".json", ".toml", ".cfg", ".html", ".j2"}
SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}
# pytest's fixture scope is the one technical "session" the product uses
ALLOWED = re.compile(r"""scope\s*=\s*["']session["']""")
WORDS = re.compile(
    r"\bsessions?\b"  # numbered work periods ("session 7", "sessions 1-2")
    r"|\bhelpers?\s+agents?\b|\(helper\)"  # who did the work
    r"|\bfor the lead\b|\bthe lead's\b"
    r"|\bissue\s*#?\d+"  # tracker numbers
    r"|\bwork period\b",
    re.IGNORECASE,
)
NAME = re.compile(r"(_s\d+(_|\.|$)|session\d*|_helper_agent)", re.IGNORECASE)
SELF = {Path(__file__).resolve(), (ROOT / "tests" / "test_repo_hygiene.py").resolve()}


def files(area: str) -> list[Path]:
    """Return the text files of an area (build outputs and caches left out)."""
    out = []
    for rel in AREAS[area]:
        p = ROOT / rel
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            for f in sorted(p.rglob("*")):
                parts = set(f.relative_to(ROOT).parts)
                if parts & SKIP_DIRS or any(x.endswith(".egg-info") for x in parts):
                    continue
                if f.is_file():
                    out.append(f)
    return out


def hits(area: str) -> list[str]:
    """``path:line: text`` of each process word, and ``path: file name`` of each bad name."""
    found = []
    for f in files(area):
        rel = f.relative_to(ROOT).as_posix()
        if NAME.search(f.name):
            found.append(f"{rel}: file name")
        if f.resolve() in SELF or f.suffix not in SUFFIXES:
            continue
        try:
            text = f.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for i, line in enumerate(text.splitlines(), 1):
            if WORDS.search(ALLOWED.sub("", line)):
                found.append(f"{rel}:{i}: {line.strip()[:160]}")
    return found


def main(argv: list[str]) -> int:
    """Print every hit of the named areas (all by default); 1 if any."""
    found = [h for a in (argv or list(AREAS)) for h in hits(a)]
    print("\n".join(found) if found else "no process words found")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
