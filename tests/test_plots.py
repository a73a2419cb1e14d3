"""Figures: content checks on a fake posterior with known values, and one real tiny fit."""

from __future__ import annotations

import io
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from scale_transfer import plots
from scale_transfer.hull import mark_hull
from scale_transfer.law import ds_acc
from scale_transfer.model import ModelConfig
from scale_transfer.plots import common as plot_common
from scale_transfer.posterior import NEW_TASK, Posterior
from scale_transfer.sampling import ConvergenceWarning, Diagnostics, SamplerConfig

TRUE = {
    "pets": (0.87, 9.7, 0.041),
    "cifar100": (0.57, 3.8, 0.099),
    "imagenet": (0.80, 3.2, 0.124),
    "cars": (0.93, 10.2, 0.049),
    "dtd": (0.41, 4.0, 0.202),
    "caltech": (0.33, 8.5, 0.059),
}


def fake_posterior(
    tasks: tuple[str, ...] = ("pets", "cifar100", "imagenet", "cars", "dtd"),
    *,
    n_chain: int = 2,
    n_draw: int = 200,
    n_models: int = 60,
    seed: int = 0,
    ok: bool = True,
    params: bool = True,
    target: str = "hull",
) -> Posterior:
    """A Posterior around known values: draws of k, alpha, e_ir near ``TRUE``; no sampling."""
    rng = np.random.default_rng(seed)
    setting = "jft-25shot"
    us = rng.uniform(0.02, 0.6, n_models)
    size = 10 ** rng.uniform(7.5, 10, n_models)
    frames = []
    for t in tasks:
        k, a, e = TRUE[t]
        ds = ds_acc(us, k, a, e) - rng.exponential(0.03, n_models)
        frames.append(
            pd.DataFrame(
                {
                    "model": [f"m{i:03d}" for i in range(n_models)],
                    "task": t,
                    "us_acc": us,
                    "ds_acc": np.clip(ds, 0, 1),
                    "setting": setting,
                    "params": size,
                }
            )
        )
    data = mark_hull(pd.concat(frames, ignore_index=True))
    data["used"] = data["on_hull"] if target == "hull" else True
    if not params:
        data = data.drop(columns="params")
    groups = pd.DataFrame({"setting": setting, "task": list(tasks)})
    groups["n"] = [int(data.loc[data.task == t, "used"].sum()) for t in tasks]
    groups["log_e_ref"] = float(np.log(1 - us).mean())

    shape = (n_chain, n_draw, len(tasks))
    truth = np.array([TRUE[t] for t in tasks])
    k = truth[:, 0] * np.exp(0.05 * rng.standard_normal(shape))
    alpha = truth[:, 1] * np.exp(0.05 * rng.standard_normal(shape))
    e_ir = np.clip(truth[:, 2] + 0.01 * rng.standard_normal(shape), 1e-4, 0.99)
    sigma = 0.01 * np.exp(0.1 * rng.standard_normal(shape))
    gdims, sdims = ("chain", "draw", "group"), ("chain", "draw")
    scalar = {
        "logit_e_ir_mu": -2.3 + 0.1 * rng.standard_normal(shape[:2]),
        "logit_e_ir_sigma": 0.5 * np.exp(0.1 * rng.standard_normal(shape[:2])),
        "log_alpha_mu": 1.8 + 0.1 * rng.standard_normal(shape[:2]),
        "log_alpha_sigma": 0.4 * np.exp(0.1 * rng.standard_normal(shape[:2])),
        "log_level_mu": -2.5 + 0.1 * rng.standard_normal(shape[:2]),
        "log_level_sigma": 0.5 * np.exp(0.1 * rng.standard_normal(shape[:2])),
    }
    ds_post = xr.Dataset(
        {
            "k": (gdims, k),
            "alpha": (gdims, alpha),
            "e_ir": (gdims, e_ir),
            "asymptote": (gdims, 1 - e_ir),
            "sigma": (gdims, sigma),
            **{name: (sdims, v) for name, v in scalar.items()},
        },
        coords={"chain": np.arange(n_chain), "draw": np.arange(n_draw), "group": list(tasks)},
    )
    stats = xr.Dataset(
        {"diverging": (sdims, np.zeros(shape[:2], bool))},
        coords={"chain": np.arange(n_chain), "draw": np.arange(n_draw)},
    )
    dt = xr.DataTree()
    dt["posterior"] = xr.DataTree(ds_post)
    dt["sample_stats"] = xr.DataTree(stats)
    diag = Diagnostics(
        max_rhat=1.003 if ok else 1.31,
        min_ess_bulk=800.0 if ok else 12.0,
        min_ess_tail=700.0 if ok else 15.0,
        divergences=0 if ok else 7,
        max_depth_hits=0,
        draws=n_draw,
        chains=n_chain,
        failed=[] if ok else ["R-hat 1.310 > 1.01 at alpha[pets]: run longer.", "7 divergent"],
    )
    config = ModelConfig(target=target, law="error")  # draws of the paper's law
    sampler = SamplerConfig(draws=n_draw, tune=n_draw, chains=n_chain, progress=False)
    return Posterior(dt, config, sampler, groups, data, diag, "fake")


def fake_lsq(post: Posterior) -> pd.DataFrame:
    rows = []
    for t in post.groups["task"]:
        k, a, e = TRUE[t]
        rows.append(
            {
                "setting": "jft-25shot",
                "task": t,
                "k": k * 1.02,
                "alpha": a,
                "e_ir": e + 0.005,
                "asymptote": 1 - e - 0.005,
                "asymptote_lower": 1 - e - 0.01,
                "asymptote_upper": 1 - e,
            }
        )
    return pd.DataFrame(rows)


def fake_truth(post: Posterior) -> pd.DataFrame:
    rows = [
        {"setting": "jft-25shot", "task": t, "k": k, "alpha": a, "e_ir": e, "asymptote": 1 - e}
        for t, (k, a, e) in TRUE.items()
        if t in set(post.groups["task"])
    ]
    return pd.DataFrame(rows)


def legend_texts(fig) -> str:
    texts = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    texts += [
        t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()
    ]
    return " | ".join(texts)


def panels(fig, names) -> list:
    """Axes whose title starts with one of the group names (not colourbars)."""
    return [ax for ax in fig.axes if ax.get_title().split("\n")[0].split(":")[0] in set(names)]


def render(fig) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    assert buf.getvalue()[:4] == b"\x89PNG"
    plt.close(fig)


@pytest.fixture(scope="module")
def post() -> Posterior:
    return fake_posterior()


# ------------------------------------------------------------------------- figure A
def test_figure_a_panels_labels_and_legend(post):
    fig = plots.figure_a(post, prob=0.9)
    tasks = list(post.groups["task"])
    axes = panels(fig, tasks)
    assert len(axes) == len(tasks) == 5
    assert [ax.get_title().split("\n")[0] for ax in axes] == tasks
    # 4 columns: the 5th panel is alone on the second row
    assert axes[0].get_ylabel() == "DS accuracy" and axes[4].get_ylabel() == "DS accuracy"
    assert axes[1].get_ylabel() == ""
    for ax in axes[1:]:  # panels with no panel below them
        assert ax.get_xlabel() == "US accuracy"
    assert axes[0].get_xlabel() == ""  # the panel below it (5th) carries the label
    text = legend_texts(fig)
    assert "90% equal-tailed credible band" in text
    assert "90% equal-tailed credible interval" in text
    assert "upper-hull points" in text
    assert "least squares" not in text
    # colourbar for parameter counts
    assert any("parameters" in ax.get_ylabel() for ax in fig.axes if ax not in axes)
    render(fig)


def test_figure_a_asymptote_line_at_posterior_median(post):
    fig = plots.figure_a(post, prob=0.9)
    med = np.median(post.draws("asymptote"), axis=0)
    summ = post.summary(0.9)
    for g, ax in enumerate(panels(fig, post.groups["task"])):
        hlines = [
            ln
            for ln in ax.get_lines()
            if ln.get_color() == plot_common.C_ASYM and len(set(np.asarray(ln.get_ydata()))) == 1
        ]
        assert len(hlines) == 1
        assert hlines[0].get_ydata()[0] == pytest.approx(med[g])
        # the interval band of the asymptote spans the summary's bounds
        lo, hi = summ.loc[g, "lower"], summ.loc[g, "upper"]
        assert f"[{lo:.3f}, {hi:.3f}]" in ax.get_title()
    plt.close(fig)


def test_figure_a_extrapolation_is_dashed_and_shaded(post):
    fig = plots.figure_a(post, extrapolate_to=0.95)
    for g, ax in enumerate(panels(fig, post.groups["task"])):
        task = post.groups["task"][g]
        us_max = post.data.loc[post.data.task == task, "us_acc"].max()
        curves = [ln for ln in ax.get_lines() if ln.get_color() == plot_common.C_CURVE]
        solid = [ln for ln in curves if ln.get_linestyle() == "-"]
        dashed = [ln for ln in curves if ln.get_linestyle() == "--"]
        assert len(solid) == 1 and len(dashed) == 1
        assert max(solid[0].get_xdata()) == pytest.approx(us_max)
        assert min(dashed[0].get_xdata()) == pytest.approx(us_max)
        assert max(dashed[0].get_xdata()) == pytest.approx(0.95)
        # the median curve over the data is the median of the law over the draws
        x = np.asarray(solid[0].get_xdata())[[0, -1]]
        k, a, e = (post.draws(v)[:, g] for v in ("k", "alpha", "e_ir"))
        want = np.median(ds_acc(x[None, :], k[:, None], a[:, None], e[:, None]), axis=0)
        np.testing.assert_allclose(np.asarray(solid[0].get_ydata())[[0, -1]], want)
        # a shaded rectangle starts at the largest observed US accuracy
        spans = [
            p for p in ax.patches if hasattr(p, "get_x") and p.get_x() == pytest.approx(us_max)
        ]
        assert spans
    assert "beyond the largest observed US accuracy" in legend_texts(fig)
    plt.close(fig)


def test_figure_a_lsq_truth_hdi_and_zoom(post):
    fig = plots.figure_a(
        post, prob=0.8, lsq=fake_lsq(post), truth=fake_truth(post), interval_kind="hdi", zoom=True
    )
    text = legend_texts(fig)
    assert "80% highest-density credible band" in text
    assert "least squares fit" in text and "true law" in text
    for ax in panels(fig, post.groups["task"]):
        assert any(ln.get_linestyle() == "-." for ln in ax.get_lines())
        assert any(ln.get_color() == plot_common.C_TRUTH for ln in ax.get_lines())
    assert "zoom" in fig._suptitle.get_text()
    render(fig)


@pytest.mark.parametrize("tasks", [("pets",), tuple(TRUE)])
def test_figure_a_any_number_of_tasks(tasks):
    p = fake_posterior(tasks, n_draw=50)
    fig = plots.figure_a(p)
    assert len(panels(fig, tasks)) == len(tasks)
    render(fig)


def test_figure_a_without_params_column():
    p = fake_posterior(("pets", "dtd"), n_draw=50, params=False, target="all")
    fig = plots.figure_a(p)
    assert not any("parameters" in ax.get_ylabel() for ax in fig.axes)
    assert "models" in legend_texts(fig)
    render(fig)


def test_interval_label():
    assert plots.interval_label(0.9) == "90% equal-tailed credible interval"
    assert plots.interval_label(0.975, "hdi", "band") == "97.5% highest-density band"
    with pytest.raises(ValueError, match="interval kind"):
        plots.interval_label(0.9, "xyz")


# -------------------------------------------------------------------------- forest
def test_forest_rows_medians_and_legend(post):
    lsq, truth = fake_lsq(post), fake_truth(post)
    fig = plots.forest_asymptotes(post, prob=0.9, lsq=lsq, truth=truth)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [*post.groups["task"], NEW_TASK]
    summ = post.summary(0.9)
    medians = [
        ln.get_xdata()[0]
        for ln in ax.get_lines()
        if ln.get_marker() == "o" and ln.get_markerfacecolor() == "white"
    ]
    np.testing.assert_allclose(medians, summ["median"])
    crosses = [ln.get_xdata()[0] for ln in ax.get_lines() if ln.get_marker() == "x"]
    np.testing.assert_allclose(crosses, lsq["asymptote"])
    diamonds = [ln.get_xdata()[0] for ln in ax.get_lines() if ln.get_marker() == "D"]
    np.testing.assert_allclose(diamonds, truth["asymptote"])
    text = legend_texts(fig)
    assert "90% equal-tailed credible interval" in text
    assert "50% equal-tailed credible interval" in text
    assert "unseen task" in text
    assert "90% percentile bootstrap interval" in text
    assert "true asymptote" in text
    assert "asymptote" in ax.get_xlabel()
    render(fig)


# -------------------------------------------------------------------------- checks
def test_ppc_plot(post):
    fig = plots.ppc_plot(post, prob=0.9)
    tasks = list(post.groups["task"])
    axes = panels(fig, tasks)
    assert len(axes) == len(tasks)
    assert all("% in outer" in ax.get_title() for ax in axes)
    assert "90% equal-tailed predictive band" in legend_texts(fig)
    assert "expect about 90%" in fig._suptitle.get_text()
    render(fig)


def test_rank_plot(post):
    fig = plots.trace_or_rank_plot(post)
    panels = [ax for ax in fig.axes if ax.get_lines()]
    assert len(panels) == 3 * len(post.groups)  # one per variable and task
    n_chains = post.dt["posterior"].sizes["chain"]
    assert all(len(ax.get_lines()) >= n_chains for ax in panels)  # a line per chain
    title = fig._suptitle.get_text()
    assert "R-hat" in title and all(v in title for v in ("k ", "alpha ", "e_ir "))
    render(fig)


def test_prior_predictive_plot(post):
    fig = plots.prior_predictive_plot(post.config, post.data, draws=100)
    title = fig._suptitle.get_text()
    assert "of prior curves stay in [0, 1]" in title
    assert "100% increase with US accuracy" in title  # k, alpha > 0: always increasing
    assert fig.axes[0].get_xlabel() == "US accuracy"
    render(fig)


# -------------------------------------------------------------------- real tiny fit
@pytest.fixture(scope="module")
def tiny_fit() -> Posterior:
    from scale_transfer import fit, simulate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit(
            simulate("jft-25shot", 300, 0).data,
            target="hull",
            draws=200,
            tune=200,
            chains=2,
            progress=False,
        )


def test_all_figures_from_a_real_fit(tiny_fit):
    tasks = list(tiny_fit.groups["task"])
    fig = plots.figure_a(tiny_fit)
    assert len(panels(fig, tasks)) == 8
    render(fig)
    fig = plots.forest_asymptotes(tiny_fit)
    assert len(fig.axes[0].get_yticklabels()) == 9
    render(fig)
    render(plots.ppc_plot(tiny_fit))
    render(plots.trace_or_rank_plot(tiny_fit))


# ------------------------------------------------------------ tables given by the user
def test_truth_with_only_asymptotes_or_only_the_law(post):
    truth = fake_truth(post)
    only_asym = truth[["setting", "task", "asymptote"]]
    fig = plots.figure_a(post, truth=only_asym)  # no true curve to draw, no KeyError
    assert not any(
        ln.get_color() == plot_common.C_TRUTH for ax in fig.axes for ln in ax.get_lines()
    )
    plt.close(fig)
    only_law = truth.drop(columns="asymptote")  # the asymptote is 1 - e_ir
    fig = plots.forest_asymptotes(post, truth=only_law)
    diamonds = [ln.get_xdata()[0] for ln in fig.axes[0].get_lines() if ln.get_marker() == "D"]
    np.testing.assert_allclose(diamonds, 1 - truth["e_ir"])
    plt.close(fig)


def test_a_table_of_other_settings_is_not_matched_silently(post):
    truth = fake_truth(post)
    two = pd.concat([truth, truth.assign(setting="in21k-1shot", asymptote=0.5)])
    row = plots.task_row(two, "jft-25shot", "pets")  # the group's own setting
    assert row["asymptote"] == truth.set_index("task").loc["pets", "asymptote"]
    with pytest.raises(ValueError, match="2 rows for task 'pets'.*no 'setting' column"):
        plots.task_row(two.drop(columns="setting"), "jft-25shot", "pets")
    with pytest.raises(ValueError, match="settings in21k-1shot, jft-25shot"):
        plots.task_row(two, "in21k-25shot", "pets")
    # one row of another setting: no match, unless the fit has no settings ("default")
    assert plots.task_row(truth, "in21k-1shot", "pets") is None
    assert plots.task_row(truth, "default", "pets") is not None


def test_forest_labels_the_lsq_interval_it_was_given_and_nests_its_bars(post):
    lsq = fake_lsq(post)
    lsq.attrs["prob"] = 0.8  # as fit_lsq_frame(..., prob=0.8) records it
    fig = plots.forest_asymptotes(post, lsq=lsq)
    assert "80% percentile bootstrap interval" in legend_texts(fig)
    plt.close(fig)
    fig = plots.forest_asymptotes(post, prob=0.3)  # the inner bar follows: 15%
    assert "15% equal-tailed credible interval" in legend_texts(fig)
    plt.close(fig)
    with pytest.raises(ValueError, match="inner_prob < prob"):
        plots.forest_asymptotes(post, prob=0.3, inner_prob=0.5)
    with pytest.raises(ValueError, match="inner_prob < prob"):
        plots.ppc_plot(post, prob=0.5, inner_prob=0.9)
    with pytest.raises(ValueError, match="no 'group' dimension"):
        plots.trace_or_rank_plot(post, var_names=("log_alpha_mu",))
