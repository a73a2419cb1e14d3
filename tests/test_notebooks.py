"""The notebooks run end to end (papermill, small parameters) and show what they promise."""

from __future__ import annotations

from pathlib import Path

import pytest

papermill = pytest.importorskip("papermill")
nbformat = pytest.importorskip("nbformat")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SMALL = {"draws": 100, "tune": 100, "chains": 2, "n_boot": 50}


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


def test_notebooks_have_a_parameters_cell():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        first_code = next(c for c in nb.cells if c.cell_type == "code")
        assert "parameters" in first_code.metadata.get("tags", []), path.name
        assert "draws = 1000" in first_code.source and "tune = 1000" in first_code.source
        assert nb.metadata["kernelspec"]["name"] == "python3"
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_paper_figures_notebook(tmp_path):
    nb = run("01_paper_figures.ipynb", tmp_path, n_models=300, **SMALL)
    text, images = outputs(nb)
    assert images >= 5  # Figure A (hull, zoom, all) and two forests
    assert "truth inside credible interval" in text
    assert "(new task)" in text
    assert "hull:" in text and " all:" in text  # both verdicts printed


def test_model_zoo_notebook(tmp_path, timm_dir):
    nb = run("02_model_zoo.ipynb", tmp_path, timm_dir=str(timm_dir), max_models=300, **SMALL)
    text, images = outputs(nb)
    assert images >= 4  # Figure A, zoom, forest, predictive check
    for task in ("imagenetv2", "sketch", "real", "imagenet-r", "imagenet-a"):
        assert task in text
    assert "gain vs best today" in text


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
