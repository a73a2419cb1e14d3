"""Reports: self-contained HTML, Markdown twin, tables that match the posterior, no overwrite."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pandas as pd
import pytest
from test_plots import fake_lsq, fake_posterior, fake_truth

from scale_transfer.cli import main
from scale_transfer.posterior import NEW_TASK, Posterior
from scale_transfer.report import (
    EXTRAPOLATION_US,
    FIGURES,
    asymptote_table,
    report_paths,
    write_report,
)
from scale_transfer.sampling import ConvergenceWarning


@pytest.fixture(scope="module")
def post() -> Posterior:
    return fake_posterior()


@pytest.fixture(scope="module")
def written(post, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("report")
    return write_report(post, out, prob=0.9, lsq=fake_lsq(post), truth=fake_truth(post))


def html_row(html: str, first_cell: str) -> list[str]:
    """Cells of the HTML table rows whose first cell is ``first_cell`` (all such rows)."""
    cells = []
    for row in re.findall(r"<tr>(.*?)</tr>", html, flags=re.S):
        tds = [re.sub(r"<.*?>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
        if tds and tds[0] == first_cell:
            cells.append(tds)
    return cells


def md_rows(md: str, first_cell: str) -> list[list[str]]:
    return [
        [c.strip() for c in line.strip("|").split("|")]
        for line in md.splitlines()
        if line.startswith(f"| {first_cell} |")
    ]


def test_files_written(written):
    assert set(written) == {"html", "md", *FIGURES}
    for name in FIGURES:
        assert written[name].read_bytes()[:4] == b"\x89PNG"
    assert written == report_paths(written["html"].parent)


def test_html_is_self_contained(written):
    html = written["html"].read_text()
    assert html.startswith("<!DOCTYPE html>")
    srcs = re.findall(r'src="([^"]*)"', html)
    assert len(srcs) == len(FIGURES)
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<link" not in html and "<script" not in html
    assert "http://" not in html and "https://" not in html
    assert "url(" not in html
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert hrefs and all(h.startswith("#") for h in hrefs)


def test_markdown_links_figures_next_to_it(written):
    md = written["md"].read_text()
    for name in FIGURES:
        assert f"]({name}.png)" in md
    assert "data:image" not in md


def test_asymptote_table_matches_summary(post, written):
    html, md = written["html"].read_text(), written["md"].read_text()
    summ = post.summary(prob=0.9)
    assert list(summ["task"])[-1] == NEW_TASK
    for row in summ.itertuples():
        want = [f"{v:.4f}" for v in (row.median, row.mean, row.sd, row.lower, row.upper)]
        # asymptote rows: task, n, 5 statistics, 4 least-squares and 2 truth columns
        got_html = [r for r in html_row(html, row.task) if len(r) == 13]
        got_md = [r for r in md_rows(md, row.task) if len(r) == 13]
        assert len(got_html) == len(got_md) == 1
        got_html, got_md = got_html[0], got_md[0]
        for got in (got_html, got_md):
            assert got[1] == str(row.n)
            assert got[2:7] == want
    # the interval is named with its kind and probability
    assert "4. Asymptotes (1 - e_IR), 90% equal-tailed credible interval" in html
    assert "lower (90% ETI)" in html and "upper (90% ETI)" in md


def test_asymptote_table_with_baselines(post):
    tab = asymptote_table(post, 0.9, lsq=fake_lsq(post), truth=fake_truth(post))
    summ = post.summary(0.9)
    pd.testing.assert_series_equal(tab["median"], summ["median"])
    assert set(tab.columns) >= {"lsq", "lsq lower", "lsq upper", "truth", "truth inside"}
    assert tab["interval"].eq("90% equal-tailed credible interval").all()
    assert tab["truth inside"].iloc[-1] is None  # no truth for an unseen task


def test_extrapolation_table_matches_predict(post, written):
    html = written["html"].read_text()
    curve = post.predict(list(EXTRAPOLATION_US), prob=0.9, kind="curve")
    new = post.predict(list(EXTRAPOLATION_US), prob=0.9, kind="new-model")
    for task in post.groups["task"]:
        rows = [r for r in html_row(html, task) if len(r) == 10]  # extrapolation rows
        assert [r[1] for r in rows] == ["0.70", "0.80", "0.90", "1.00"]
        c = curve[curve.task == task]
        n = new[new.task == task]
        for r, (_, cr), (_, nr) in zip(rows, c.iterrows(), n.iterrows(), strict=True):
            assert r[3] == "yes"  # fake data stop at US 0.6: all extrapolated
            assert r[4:7] == [f"{cr[k]:.4f}" for k in ("mean", "lower", "upper")]
            assert r[8:10] == [f"{nr[k]:.4f}" for k in ("lower", "upper")]
    assert "curve lower (90% ETI)" in html and "new model upper (90% ETI)" in html


def test_sections_and_verdict(post, written):
    html, md = written["html"].read_text(), written["md"].read_text()
    for text in ("1. Data", "2. Model and priors", "3. Convergence", "5. Extrapolation"):
        assert text in html and text in md
    assert "Converged." in html and "NOT CONVERGED" not in html
    for name, spec in post.config.full_priors.items():
        assert name in md and spec["dist"] in md
    assert "jft-25shot" in md  # the setting


def test_not_converged_is_loud(tmp_path):
    bad = fake_posterior(("pets", "dtd"), n_draw=50, ok=False)
    paths = write_report(
        bad, tmp_path, prob=0.8, interval_kind="hdi", figures=["forest_asymptotes"]
    )
    html, md = paths["html"].read_text(), paths["md"].read_text()
    assert 'class="verdict bad"' in html
    assert html.count("NOT CONVERGED") >= 2  # at the top and in the diagnostics section
    assert md.count("**WARNING: NOT CONVERGED") == 2
    assert "R-hat 1.310" in md
    assert "80% highest-density credible interval" in html and "lower (80% HDI)" in md


def test_refuses_to_overwrite(post, written):
    before = {k: p.read_bytes() for k, p in written.items()}
    with pytest.raises(FileExistsError, match="overwrite"):
        write_report(post, written["html"].parent)
    assert {k: p.read_bytes() for k, p in written.items()} == before
    # one existing file is enough to refuse
    other = written["html"].parent.parent / "only_md"
    other.mkdir()
    (other / "report.md").write_text("mine")
    with pytest.raises(FileExistsError):
        write_report(post, other)
    assert (other / "report.md").read_text() == "mine"
    assert not (other / "report.html").exists()


def test_overwrite_true_replaces(post, tmp_path):
    small = fake_posterior(("pets",), n_draw=40)
    few = ["forest_asymptotes", "rank"]
    write_report(small, tmp_path, title="first", figures=few)
    paths = write_report(small, tmp_path, title="second", figures=few, overwrite=True)
    assert set(paths) == {"html", "md", *few}
    html = paths["html"].read_text()
    assert "<h1>second</h1>" in html and html.count("<img") == 2
    with pytest.raises(ValueError, match="unknown figure"):
        write_report(small, tmp_path / "x", figures=["nope"])


# ----------------------------------------------------------------------------- CLI
@pytest.mark.filterwarnings("ignore::scale_transfer.sampling.ConvergenceWarning")
def test_cli_demo_and_report(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--n-models", "200", "--draws", "100", "--tune", "100"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        main([*args, "--chains", "2", "--seed", "1"])
    text = capsys.readouterr().out
    for i in range(1, 6):
        assert f"[{i}/5]" in text
    assert "done in" in text and "asymptote 1 - e_IR" in text
    for name in ("fit.nc", "data.csv", "truth.csv", "report.html", "report.md"):
        assert (out / name).exists(), name
    html = (out / "report.html").read_text()
    assert "truth inside" in html and "lsq" in html  # truth and least squares shown
    # a second run refuses before doing any work
    with pytest.raises(SystemExit) as exc:
        main([*args, "--chains", "2"])
    assert exc.value.code == 2
    assert "--overwrite" in capsys.readouterr().err

    # report from the saved fit, into a new folder, then refused there
    rep = tmp_path / "rep"
    main(["report", str(out / "fit.nc"), "--out", str(rep), "--no-lsq", "--prob", "0.8"])
    text = capsys.readouterr().out
    assert "wrote" in text and (rep / "report.html").exists()
    assert "80% equal-tailed credible interval" in (rep / "report.md").read_text()
    with pytest.raises(SystemExit) as exc:
        main(["report", str(out / "fit.nc"), "--out", str(rep)])
    assert exc.value.code == 2
    # a truth file with the asymptotes only (the check accepts it; the report must too)
    asym = tmp_path / "asym.csv"
    pd.read_csv(out / "truth.csv")[["setting", "task", "asymptote"]].to_csv(asym, index=False)
    rep2 = tmp_path / "rep2"
    main(["report", str(out / "fit.nc"), "--out", str(rep2), "--no-lsq", "--truth", str(asym)])
    assert "truth inside" in (rep2 / "report.md").read_text()


def test_notes_follow_the_fit(tmp_path):
    import dataclasses

    p = fake_posterior(("pets", "dtd"), n_draw=50)
    lsq = fake_lsq(p).assign(target="hull")
    md = write_report(p, tmp_path / "a", lsq=lsq)["md"].read_text()
    assert "'(new task)' is an unseen task" in md and "fitted to the hull" in md
    assert "level effects" not in md
    indep = dataclasses.replace(p.config, pooling="independent")
    p2 = Posterior(p.dt, indep, p.sampler, p.groups, p.data, p.diagnostics, p.data_hash)
    md = write_report(p2, tmp_path / "b")["md"].read_text()
    assert "'(new task)' is an unseen task" not in md and "an unseen task." not in md
