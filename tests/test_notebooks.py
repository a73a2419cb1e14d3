"""The notebooks run end to end (papermill, small parameters) and show what they promise.

They are stored with the outputs of a full-size run (``make notebooks``, which runs
tools/run_notebooks.py). The tests check that those outputs are not stale: they come from
the stored code (a digest of it is stored with them), from one run top to bottom, and a
fresh run with small draws gives the same cells with the same kinds of output (text, tables,
figures) as the stored notebook.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

papermill = pytest.importorskip("papermill")
nbformat = pytest.importorskip("nbformat")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SMALL = {"draws": 100, "tune": 100, "chains": 2, "n_boot": 50}
RERUN = "run `make notebooks` (tools/run_notebooks.py) and commit the notebooks"


def _runner():
    spec = importlib.util.spec_from_file_location("run_notebooks", ROOT / "tools/run_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(name: str, tmp_path: Path, **parameters) -> nbformat.NotebookNode:
    out = tmp_path / name
    papermill.execute_notebook(
        str(NOTEBOOKS / name),
        str(out),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(NOTEBOOKS),
        progress_bar=False,
    )
    return nbformat.read(out, as_version=4)


def outputs(nb) -> tuple[str, int]:
    """All text output, and the number of images."""
    text, images = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text.append(out.get("text", ""))
            data = out.get("data", {})
            text.append(data.get("text/plain", ""))
            images += "image/png" in data
    return "\n".join(text), images


def output_kinds(cell) -> set[str]:
    """What a code cell shows: stdout text, displays, results, errors, and PNG figures.

    Text on stderr (warnings, which depend on the number of draws) does not count.
    """
    kinds = set()
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            if out.name == "stdout":
                kinds.add("stream")
            continue
        kinds.add(out.output_type)
        if "image/png" in out.get("data", {}):
            kinds.add("image/png")
    return kinds


def check_stored(name: str, fresh: nbformat.NotebookNode) -> None:
    """The stored notebook has the cells of a fresh run, each with the same kinds of output."""
    stored = nbformat.read(NOTEBOOKS / name, as_version=4)
    cells = [c for c in fresh.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    problems = []
    if len(cells) != len(stored.cells):
        problems.append(f"{len(stored.cells)} cells stored, {len(cells)} in a fresh run")
    for i, (new, old) in enumerate(zip(cells, stored.cells, strict=False)):
        if (new.cell_type, new.source) != (old.cell_type, old.source):
            problems.append(f"cell {i}: its source differs from the stored cell's")
        elif new.cell_type == "code" and output_kinds(new) != output_kinds(old):
            problems.append(
                f"cell {i}: stored outputs {sorted(output_kinds(old)) or 'none'}, "
                f"a fresh run gives {sorted(output_kinds(new)) or 'none'}"
            )
    assert not problems, f"{name}: stored outputs are stale: {'; '.join(problems)}; {RERUN}"


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_is_stored_with_the_outputs_of_its_code(path):
    nb = nbformat.read(path, as_version=4)
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert "parameters" in first_code.metadata.get("tags", []), path.name
    for name in ("draws", "tune"):  # stored at full size: at least 1000 of each
        value = re.search(rf"^{name} = (\d+)", first_code.source, re.MULTILINE)
        assert value and int(value.group(1)) >= 1000, f"{path.name}: {name}"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    counts = [c.execution_count for c in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"{path.name}: execution counts {counts}: the stored outputs do not come from one run "
        f"top to bottom; {RERUN}"
    )
    stored = nb.metadata.get("scale_transfer", {}).get("code_sha256")
    assert stored == _runner().code_digest(nb), (
        f"{path.name}: its code was edited after its outputs were stored; {RERUN}"
    )
    assert any("image/png" in output_kinds(c) for c in code), f"{path.name}: no figure stored"
    errors = [i for i, c in enumerate(nb.cells) if "error" in output_kinds(c)]
    assert not errors, f"{path.name}: cells {errors} stored with an error; {RERUN}"


def test_paper_figures_notebook(tmp_path):
    nb = run("01_paper_figures.ipynb", tmp_path, n_models=300, **SMALL)
    text, images = outputs(nb)
    assert images >= 5  # Figure A (hull, zoom, all) and two forests
    assert "truth inside credible interval" in text
    assert "(new task)" in text
    assert "hull:" in text and " all:" in text  # both verdicts printed
    check_stored("01_paper_figures.ipynb", nb)


def test_model_zoo_notebook(tmp_path, timm_dir):
    nb = run("02_model_zoo.ipynb", tmp_path, timm_dir=str(timm_dir), max_models=300, **SMALL)
    text, images = outputs(nb)
    assert images >= 4  # Figure A, zoom, forest, predictive check
    for task in ("imagenetv2", "sketch", "real", "imagenet-r", "imagenet-a"):
        assert task in text
    assert "gain vs best today" in text
    check_stored("02_model_zoo.ipynb", nb)


def test_validation_notebook(tmp_path, timm_dir):
    small = {"draws": 100, "tune": 100, "chains": 2, "methods": ["lsq", "default"]}
    nb = run("03_validation.ipynb", tmp_path, timm_dir=str(timm_dir), **small)
    text, images = outputs(nb)
    assert images >= 3  # residuals, the validation figure, held-out predictions
    assert "coverage_90" in text and "crps" in text
    assert "lsq" in text and "default" in text
    check_stored("03_validation.ipynb", nb)


def test_figure_b_notebook(tmp_path):
    # a tiny live study, then the committed default study (docs/study_default)
    small = {"draws": 50, "tune": 50, "n_models": 200, "sizes": [100], "repeats": 2}
    nb = run("04_figure_b.ipynb", tmp_path, workers=0, **small)
    text, images = outputs(nb)
    assert images >= 2  # the live study's figure and the full study's
    assert "8 fits in" in text  # 1 size x 2 repeats x 2 targets x 2 methods
    assert "part 2 skipped" not in text
    assert "hull prediction error below all-points in" in text
    assert "hull_cover90" in text and "bayes-frontier" in text
    check_stored("04_figure_b.ipynb", nb)


def test_a_stale_notebook_is_named_with_its_cell(tmp_path):
    """The staleness check itself: an edited cell and a lost figure are both reported."""
    name = "01_paper_figures.ipynb"
    fresh = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [i for i, c in enumerate(fresh.cells) if c.cell_type == "code"]
    fresh.cells[code[1]].source += "\nprint('new')"
    figure = next(i for i in code if "image/png" in output_kinds(fresh.cells[i]))
    fresh.cells[figure].outputs = []
    with pytest.raises(AssertionError) as err:
        check_stored(name, fresh)
    message = str(err.value)
    assert name in message and "make notebooks" in message
    assert f"cell {code[1]}: its source differs" in message
    assert f"cell {figure}: stored outputs ['display_data', 'image/png'], a fresh run" in message
