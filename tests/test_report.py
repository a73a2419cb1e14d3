"""Reports: self-contained HTML, Markdown twin, tables that match the posterior, no overwrite."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_plots import fake_lsq, fake_posterior, fake_truth

from scale_transfer.cli import main
from scale_transfer.posterior import NEW_TASK, Posterior
from scale_transfer.report import (
    EXTRAPOLATION_US,
    FIGURES,
    asymptote_table,
    extrapolation_table,
    priors_used,
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


def section(text: str, sid: str) -> str:
    """The HTML of one section of the report, by its id."""
    m = re.search(rf'<section id="{sid}">(.*?)</section>', text, flags=re.S)
    assert m, sid
    return m.group(1)


def md_section(md: str, heading_start: str) -> str:
    """The Markdown of one section, from its heading to the next."""
    parts = re.split(r"^## ", md, flags=re.M)
    hits = [p for p in parts if p.startswith(heading_start)]
    assert len(hits) == 1, heading_start
    return hits[0]


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
        got_html = html_row(section(html, "answer"), row.task)
        got_md = md_rows(md_section(md, "1. Answer"), row.task)
        assert len(got_html) == len(got_md) == 1
        got_html, got_md = got_html[0], got_md[0]
        for got in (got_html, got_md):
            assert len(got) == 12  # task, n, 5 statistics, lsq and bounds, truth, inside
            assert got[1] == str(row.n)
            assert got[2:7] == want
    # the interval is named with its kind and probability
    assert "2. Figure A and the asymptotes, 90% ETI" in html
    assert "lower (90% ETI)" in html and "upper (90% ETI)" in md


def test_asymptote_table_with_baselines(post):
    tab = asymptote_table(post, 0.9, lsq=fake_lsq(post), truth=fake_truth(post))
    summ = post.summary(0.9)
    pd.testing.assert_series_equal(tab["median"], summ["median"])
    assert set(tab.columns) >= {"lsq", "lsq lower", "lsq upper", "truth", "truth inside"}
    assert tab["interval"].eq("90% equal-tailed credible interval").all()
    assert tab["truth inside"].iloc[-1] is None  # no truth for an unseen task


def test_extrapolation_table_matches_predict(post, written):
    html = section(written["html"].read_text(), "extrapolation")
    curve = post.predict(list(EXTRAPOLATION_US), prob=0.9, kind="curve")
    new = post.predict(list(EXTRAPOLATION_US), prob=0.9, kind="new-model")
    for task in post.groups["task"]:
        rows = html_row(html, task)
        assert [r[1] for r in rows] == ["0.70", "0.80", "0.90", "1.00"]
        assert all(len(r) == 13 for r in rows)
        c = curve[curve.task == task]
        n = new[new.task == task]
        for r, (_, cr), (_, nr) in zip(rows, c.iterrows(), n.iterrows(), strict=True):
            assert r[3] == "yes"  # fake data stop at US 0.6: all extrapolated
            assert r[4:7] == [f"{cr[k]:.4f}" for k in ("mean", "lower", "upper")]
            assert r[11:13] == [f"{nr[k]:.4f}" for k in ("lower", "upper")]
    for col in ("curve lower", "gain upper", "new model upper"):
        assert f"{col} (90% ETI)" in html


def test_gain_is_the_rise_above_the_best_observed(post):
    tab = extrapolation_table(post, (0.5, 0.9), 0.9)
    g = 0  # first task
    task = post.groups["task"].iloc[g]
    us_max = post.data.loc[post.data.task == task, "us_acc"].max()
    x = post.predict_draws(np.array([0.9, us_max]), kind="curve")[:, g, :]
    row = tab[(tab.task == task) & (tab.us_acc == 0.9)].iloc[0]
    assert row["gain median"] == pytest.approx(np.median(x[:, 0] - x[:, 1]))
    assert row["gain lower"] < row["gain median"] < row["gain upper"]
    # not beyond the data: no gain
    assert tab[tab.us_acc == 0.5]["gain median"].isna().all()


SECTIONS = (
    "1. Answer",
    "2. Figure A and the asymptotes",
    "3. What more pre-training buys",
    "4. Extrapolation self-check",
    "5. Convergence",
    "6. Details: data",
    "7. Details: model and priors",
    "8. Details: sampler settings",
)


def test_sections_in_order_and_verdict(post, written):
    html, md = written["html"].read_text(), written["md"].read_text()
    for text in (html, md):
        at = [text.index(head) for head in SECTIONS]
        assert at == sorted(at)
    # the answer leads, Figure A and the forest plot follow it
    assert html.index("Asymptote (1 - e_IR, the DS accuracy") < html.index('id="figure_a"')
    assert html.index('id="figure_a"') < html.index('id="forest_asymptotes"')
    assert html.index('id="forest_asymptotes"') < html.index('id="data"')
    assert "Converged." in html and "NOT CONVERGED" not in html
    assert "jft-25shot" in md  # the setting
    assert "no extrapolation self-check" in section(html, "self-check")


def test_answer_names_interval_and_whose_asymptote(post, written):
    answer = section(written["html"].read_text(), "answer")
    summ = post.summary(prob=0.9)
    assert "90% equal-tailed credible interval" in answer
    assert "of the frontier (the best models" in answer  # a hull fit
    for row in summ.itertuples():
        assert f"{row.task} {row.median:.3f} [{row.lower:.3f}, {row.upper:.3f}]" in answer
    assert "to US accuracy 0.7 / 0.8 / 0.9 / 1 " in answer  # what more pre-training buys
    extra = extrapolation_table(post, EXTRAPOLATION_US, 0.9)
    pets = extra[extra.task == "pets"]["gain median"]
    assert "pets " + " / ".join(f"{g:+.3f}" for g in pets) not in answer  # after its asymptote
    assert ", " + " / ".join(f"{g:+.3f}" for g in pets) + ";" in answer


def test_only_the_priors_the_model_uses(post, written):
    md = written["md"].read_text()
    priors = md_section(md, "7. Details")
    used = priors_used(post.config)
    assert "sigma" in used and "gap" not in used and "bad_share" not in used
    for name, spec in post.config.full_priors.items():
        shown = f"| {name.replace('_', chr(92) + '_')} | {spec['dist']}(" in priors
        assert shown == (name in used), name


def test_priors_used_follow_the_config(post):
    import dataclasses

    cfg = post.config
    frontier = dataclasses.replace(cfg, likelihood="frontier")
    assert {"noise", "gap", "bad_share"} <= set(priors_used(frontier))
    assert "sigma" not in priors_used(frontier)
    assert "nu" in priors_used(dataclasses.replace(cfg, likelihood="student_t"))
    complete = priors_used(dataclasses.replace(cfg, pooling="complete"))
    assert "log_alpha_mu" in complete and "log_alpha_sigma" not in complete


def test_self_check_shown_when_given(post, tmp_path):
    check = pd.DataFrame({"interval": ["50%", "90%"], "coverage": [0.48, 0.88]})
    paths = write_report(post, tmp_path, self_check=check, figures=["forest_asymptotes"])
    html = section(paths["html"].read_text(), "self-check")
    assert "no extrapolation self-check" not in html
    assert html_row(html, "90%") == [["90%", "0.8800"]]


def test_names_are_escaped(tmp_path):
    base = fake_posterior(("pets", "dtd"), n_draw=40)
    weird = {"pets": "a|b*c_d", "dtd": "<x>[y]`z`"}
    groups = base.groups.assign(task=base.groups["task"].map(weird))
    data = base.data.assign(task=base.data["task"].map(weird))
    p = Posterior(base.dt, base.config, base.sampler, groups, data, base.diagnostics, "x")
    paths = write_report(p, tmp_path, title="t <i>|", figures=["forest_asymptotes"])
    html, md = paths["html"].read_text(), paths["md"].read_text()
    assert "<x>" not in html and "&lt;x&gt;[y]`z`" in html and "<i>" not in html
    assert "a\\|b\\*c\\_d" in md and "\\<x\\>\\[y\\]\\`z\\`" in md
    rows = [line for line in md.splitlines() if line.startswith("| a")]
    # a table row keeps its cells: the escaped | does not split them
    assert rows and len(re.split(r"(?<!\\)\|", rows[0].strip().strip("|"))) == 7
    assert "# t \\<i\\>\\|" in md


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


def test_the_odds_law_report_cautions_about_its_asymptote():
    from scale_transfer.config import ModelConfig
    from scale_transfer.report.text import calibration_note

    assert "held 12% of the true asymptotes" in calibration_note(ModelConfig(law="odds"))
    assert "Caution" not in calibration_note(ModelConfig(law="error"))
    top = calibration_note(ModelConfig(target="top", likelihood="frontier"))
    # the calibrated estimate: its measured coverage, no caution, tied to convergence
    assert "Caution" not in top and "of 160" in top and "converged" in top
