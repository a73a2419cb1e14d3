"""Execute the notebooks in notebooks/ at full size and store them with their outputs.

Each notebook runs with papermill (kernel ``python3``, working directory ``notebooks/``,
the defaults of its parameters cell) into a temporary file. When it succeeds, its outputs
and execution counts are copied into the stored notebook; the stored notebook's metadata
and cell metadata are kept as they are, so papermill's timestamps and durations never reach
the repository and a rerun changes only what the notebook shows. The notebook's metadata
gets the SHA-256 of the code that produced the outputs (``scale_transfer.code_sha256``):
tests/test_notebooks.py compares it with the stored code to catch code edited without a
rerun. A notebook that fails is
left as it was, and the command exits 1 after the others have run.

Usage, from the repository root (``make notebooks`` runs the first line)::

    .venv/bin/python tools/run_notebooks.py
    .venv/bin/python tools/run_notebooks.py notebooks/02_model_zoo.ipynb

Progress (which notebook, elapsed time) goes to stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import papermill

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _code(nb: nbformat.NotebookNode) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def code_digest(nb: nbformat.NotebookNode) -> str:
    """SHA-256 of a notebook's code cells: stored with the outputs, the code they came from."""
    return hashlib.sha256(json.dumps(_code(nb)).encode()).hexdigest()


def store_outputs(path: Path, executed: nbformat.NotebookNode, sources: list[str]) -> None:
    """Copy the executed notebook's outputs into the notebook stored at ``path``.

    ``sources`` are the code cells that were executed. The stored file is read again, so
    prose edited while the notebook ran is kept; code edited meanwhile is refused.
    """
    stored = nbformat.read(path, as_version=4)
    if _code(stored) != sources:
        raise RuntimeError(f"{path.name}: its code changed while it ran; run it again")
    runs = [c for c in executed.cells if c.cell_type == "code"]
    for cell, run in zip((c for c in stored.cells if c.cell_type == "code"), runs, strict=True):
        cell.outputs = run.outputs
        cell.execution_count = run.execution_count
    stored.metadata["scale_transfer"] = {"code_sha256": code_digest(stored)}
    nbformat.validate(stored)
    tmp = path.with_name(f".{path.name}.tmp")
    nbformat.write(stored, tmp)
    tmp.replace(path)


def run(path: Path, timeout: float | None) -> float:
    """Execute one notebook and store its outputs; return the seconds it took."""
    sources = _code(nbformat.read(path, as_version=4))
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="notebook_") as tmp:
        out = Path(tmp) / path.name
        papermill.execute_notebook(
            str(path),
            str(out),
            kernel_name="python3",
            cwd=str(path.parent),
            progress_bar=True,
            execution_timeout=timeout,
        )
        executed = nbformat.read(out, as_version=4)
    store_outputs(path, executed, sources)
    return time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    """Run the notebooks named on the command line (default: all); 1 if one failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "notebooks", nargs="*", type=Path, help="notebooks to run (default: all in notebooks/)"
    )
    parser.add_argument(
        "--cell-timeout", type=float, default=None, help="seconds one cell may run (default: none)"
    )
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(NOTEBOOKS.glob("*.ipynb"))
    failed = []
    total = time.monotonic()
    for i, path in enumerate(paths, 1):
        path = path.resolve()
        print(f"[{i}/{len(paths)}] {path.name}: running", file=sys.stderr, flush=True)
        try:
            seconds = run(path, args.cell_timeout)
        except Exception as exc:  # report it, run the others
            failed.append(path.name)
            print(
                f"[{i}/{len(paths)}] {path.name}: FAILED, left as it was\n{exc}",
                file=sys.stderr,
                flush=True,
            )
            continue
        size = path.stat().st_size / 1e6
        print(
            f"[{i}/{len(paths)}] {path.name}: done in {seconds / 60:.1f} min, "
            f"stored with its outputs ({size:.2f} MB)",
            file=sys.stderr,
            flush=True,
        )
    print(
        f"{len(paths) - len(failed)} of {len(paths)} notebooks in "
        f"{(time.monotonic() - total) / 60:.1f} min"
        + (f"; failed: {', '.join(failed)}" if failed else ""),
        file=sys.stderr,
        flush=True,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
