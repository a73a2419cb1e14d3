"""Checks of a fit: posterior predictive bands, rank plots, prior predictive curves."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from scale_transfer.config import DEFAULT_KIND, DEFAULT_PROB
from scale_transfer.law import ds_acc
from scale_transfer.plots.common import (
    C_ASYM,
    C_BAND,
    C_CURVE,
    check_nested,
    group_rows,
    interval_label,
    label_outer,
    panel_grid,
)
from scale_transfer.posterior import interval

if TYPE_CHECKING:
    from scale_transfer.model import ModelConfig
    from scale_transfer.posterior import Posterior

__all__ = ["ppc_plot", "prior_predictive_plot", "trace_or_rank_plot"]


# ------------------------------------------------------------------------- checks
def _predictive_bounds(
    post: Posterior,
    us: np.ndarray,
    probs: Sequence[float],
    interval_kind: str,
    max_elements: int = 4_000_000,
) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """New-model predictive intervals at ``us`` for every group: ``prob -> (lo, hi)``.

    Each of ``lo``, ``hi`` is ``(n_groups, len(us))``; computed in chunks of ``us`` to bound
    memory.
    """
    n_draws = post.draws("sigma").shape[0]
    n_groups = len(post.groups)
    step = max(1, max_elements // max(1, n_draws * n_groups))
    out = {p: (np.empty((n_groups, us.size)), np.empty((n_groups, us.size))) for p in probs}
    for c, start in enumerate(range(0, us.size, step)):
        sl = slice(start, start + step)
        x = post.predict_draws(us[sl], kind="new-model", seed=c)
        for p in probs:
            lo, hi = interval(x, p, interval_kind)
            out[p][0][:, sl], out[p][1][:, sl] = lo, hi
    return out


def ppc_plot(
    post: Posterior,
    *,
    prob: float = DEFAULT_PROB,
    inner_prob: float | None = None,
    interval_kind: str = DEFAULT_KIND,
    ncols: int = 4,
    n_grid: int = 80,
) -> Figure:
    """Posterior predictive check: fitted points against a new model's predictive interval.

    One panel per task: the ``prob`` and ``inner_prob`` predictive bands of the DS accuracy of
    a new model (the law plus the likelihood's model-level scatter) over the US range of the
    fitted points, the fitted points on top, and in the title the share of fitted points
    inside each band (about ``prob`` and ``inner_prob`` if the model fits).

    Parameters
    ----------
    post : Posterior
        The fit.
    prob, inner_prob : float
        Probabilities of the outer and inner bands (``inner_prob < prob``; default
        :func:`inner_prob_for`).
    interval_kind : {"eti", "hdi"}
        Interval kind.
    ncols : int
        Panels per row.
    n_grid : int
        Points of the bands.

    Returns
    -------
    matplotlib.figure.Figure
    """
    inner_prob = check_nested(prob, inner_prob)
    groups = group_rows(post)
    data = post.data
    used = data[data["used"].astype(bool)] if "used" in data else data
    us_unique, inv = np.unique(used["us_acc"].to_numpy(float), return_inverse=True)
    gkey = {(s, t): g for g, _, s, t in groups}
    gi = np.array(
        [gkey.get((str(s), str(t)), -1) for s, t in zip(used["setting"], used["task"], strict=True)]
    )
    bounds = _predictive_bounds(post, us_unique, (prob, inner_prob), interval_kind)
    ds_all = used["ds_acc"].to_numpy(float)
    inside: dict[float, np.ndarray] = {}
    for p, (lo, hi) in bounds.items():
        ok = gi >= 0
        vals = np.zeros(len(used), dtype=bool)
        vals[ok] = (ds_all[ok] >= lo[gi[ok], inv[ok]]) & (ds_all[ok] <= hi[gi[ok], inv[ok]])
        inside[p] = vals
    fig, axes, flat, ncols = panel_grid(len(groups), ncols, (3.4, 2.7), extra_h=0.6)
    for ax, (g, label, _setting, _task) in zip(flat, groups, strict=True):
        m = gi == g
        us, ds = used["us_acc"].to_numpy(float)[m], ds_all[m]
        grid = np.linspace(us.min(), us.max(), n_grid)
        gb = _predictive_bounds(post, grid, (prob, inner_prob), interval_kind)
        ax.fill_between(grid, gb[prob][0][g], gb[prob][1][g], color=C_BAND, alpha=0.25, lw=0)
        ax.fill_between(
            grid, gb[inner_prob][0][g], gb[inner_prob][1][g], color=C_BAND, alpha=0.45, lw=0
        )
        out = ~inside[prob][m]
        ax.scatter(us[~out], ds[~out], s=9, color="black", zorder=3, linewidths=0)
        ax.scatter(us[out], ds[out], s=14, color="#d7301f", zorder=4, linewidths=0)
        ax.set_title(
            f"{label}: {inside[prob][m].mean():.0%} in outer, {inside[inner_prob][m].mean():.0%} "
            f"in inner band (n={m.sum()})",
            fontsize=8.5,
        )
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3, linewidth=0.5)
    label_outer(flat, ncols, "US accuracy", "DS accuracy")
    handles = [
        Patch(
            color=C_BAND, alpha=0.25, label=interval_label(prob, interval_kind, "predictive band")
        ),
        Patch(
            color=C_BAND,
            alpha=0.45,
            label=interval_label(inner_prob, interval_kind, "predictive band"),
        ),
        Line2D([], [], marker="o", ls="", color="black", label="fitted point inside outer band"),
        Line2D([], [], marker="o", ls="", color="#d7301f", label="fitted point outside outer band"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=8)
    total = inside[prob].mean()
    fig.suptitle(
        f"Posterior predictive check: DS accuracy of a new model vs the fitted points "
        f"({total:.0%} of all fitted points inside the {100 * prob:g}% band, expect about "
        f"{100 * prob:g}%)",
        fontsize=10,
    )
    return fig


def trace_or_rank_plot(
    post: Posterior,
    *,
    var_names: Sequence[str] = ("k", "alpha", "e_ir"),
) -> Figure:
    """Rank plots per chain of the per-task parameters, drawn by arviz-plots.

    :func:`arviz_plots.plot_rank`: for each variable and task, the difference between each
    chain's empirical CDF of fractional ranks (all chains ranked together) and the uniform
    CDF, with a simultaneous envelope (Säilynoja et al. 2022). Lines that stay inside the
    envelope mean the chains agree. The title gives each variable's largest rank-normalized
    split R-hat.

    Parameters
    ----------
    post : Posterior
        The fit.
    var_names : sequence of str
        Per-group variables to show.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import arviz as az
    import arviz_plots as azp

    ds = post.dt["posterior"].to_dataset()
    names = [v for v in var_names if v in ds.data_vars]
    if not names:
        raise ValueError(f"none of {list(var_names)} is in the posterior")
    scalar = [v for v in names if "group" not in ds[v].dims]
    if scalar:
        raise ValueError(
            f"trace_or_rank_plot draws per-group variables; {', '.join(scalar)} "
            "has no 'group' dimension (plot it with arviz_plots.plot_rank)"
        )
    rhat = az.rhat(ds[names])
    worst = ", ".join(f"{v} {float(rhat[v].max()):.3f}" for v in names)
    n_panels = len(names) * ds.sizes["group"]
    ncols = min(4, n_panels)
    nrows = -(-n_panels // ncols)
    pc = azp.plot_rank(
        post.dt,
        var_names=names,
        backend="matplotlib",
        col_wrap=ncols,
        figure_kwargs={"figsize": (3.3 * ncols, 2.3 * nrows + 0.6), "layout": "constrained"},
    )
    fig = pc.viz["figure"]
    fig = fig.item() if hasattr(fig, "item") else fig
    n_chain, n_draw = ds.sizes["chain"], ds.sizes["draw"]
    fig.suptitle(
        f"Rank plots ({n_chain} chains x {n_draw} draws): each chain's ECDF of fractional "
        f"ranks minus the uniform, inside the envelope when the chains agree. Largest R-hat: "
        f"{worst}",
        fontsize=10,
    )
    return fig


def _prior_asymptote(ax, asym: np.ndarray) -> None:  # noqa: ANN001
    """Histogram of the prior's asymptote draws, titled with its 90% equal-tailed interval."""
    ax.hist(asym, bins=40, range=(0, 1), color=C_ASYM, alpha=0.7)
    lo, hi = interval(asym, DEFAULT_PROB, DEFAULT_KIND)
    ax.set_title(
        f"prior of the asymptote\n90% equal-tailed interval [{lo:.2f}, {hi:.2f}]", fontsize=9
    )
    ax.set_xlabel("asymptote 1 - e_IR")
    ax.set_ylabel("prior draws")


def _prior_legend(ax) -> None:  # noqa: ANN001
    """Legend of the prior curves' panel."""
    ax.legend(
        handles=[
            Line2D([], [], color=C_CURVE, label="prior curve in [0, 1], increasing"),
            Line2D([], [], color="#d7301f", label="prior curve leaving [0, 1]"),
            Patch(color=C_BAND, alpha=0.15, label="US range of the fitted points"),
            Line2D([], [], marker="o", ls="", color="0.45", label="fitted points"),
        ],
        fontsize=8,
        loc="lower right",
    )


def _prior_curves(
    model: Any, fd: Any, config: ModelConfig, draws: int, seed: int
) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray]:
    """Prior draws of each group's curve, as a function of US accuracy, and of the asymptote.

    The curve function returns ``(draws x groups, n_us)``; for the odds law each group's
    curve is taken around its own reference point (the data's mean logit US accuracy).
    """
    import pymc as pm

    odds = getattr(config, "law", "error") == "odds"
    names = ["k", "alpha", "e_ir"]
    if odds:
        names = ["odds_level_group", "alpha", "logit_asymptote_group"]
    pm_log = logging.getLogger("pymc")
    level = pm_log.level
    pm_log.setLevel(logging.WARNING)  # no "Sampling: [...]" line
    try:
        prior = pm.sample_prior_predictive(
            draws=draws, model=model, var_names=names, random_seed=seed
        )["prior"]
    finally:
        pm_log.setLevel(level)
    a, b, c = (np.asarray(prior[v].values, dtype=float).reshape(-1) for v in names)
    if not odds:
        return (lambda us: ds_acc(us[None, :], a[:, None], b[:, None], c[:, None])), 1.0 - c
    from scipy.special import expit

    from scale_transfer.odds import logit, logit_mean

    n_groups = len(fd.groups)
    x_ref = np.tile(fd.groups["logit_us_ref"].to_numpy(float), a.size // n_groups)

    def curves(us: np.ndarray) -> np.ndarray:
        xc = logit(us)[None, :] - x_ref[:, None]
        return expit(logit_mean(a[:, None], b[:, None], c[:, None], xc))

    return curves, expit(c)


def prior_predictive_plot(
    config: ModelConfig,
    data: pd.DataFrame,
    *,
    draws: int = 500,
    seed: int = 0,
    n_curves: int = 150,
) -> Figure:
    """Curves of the law drawn from the prior, over US accuracy from 0 to 1.

    Samples ``k``, ``alpha`` and ``e_ir`` from the prior of the model built on ``data``
    (the reference upstream error, which sets the scale of ``k``, depends on the data; for
    the odds law its level, exponent and asymptote around each group's reference), and
    draws a subset of the implied curves with the data behind them. The title gives the
    share of prior curves that stay in [0, 1] and increase with US accuracy.

    Parameters
    ----------
    config : ModelConfig
        Model structure and priors.
    data : pandas.DataFrame
        Tidy data (as given to :func:`scale_transfer.posterior.fit`).
    draws : int
        Prior draws.
    seed : int
        Random seed.
    n_curves : int
        Curves drawn.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from scale_transfer.model import build_model, prepare_data

    fd = prepare_data(data, config)
    model = build_model(fd, config, for_prior=True)
    curves, asymptote = _prior_curves(model, fd, config, draws, seed)
    grid = np.linspace(0.0, 1.0, 101)
    acc = curves(grid)
    in_range = np.all((acc >= 0) & (acc <= 1), axis=1)
    increasing = np.all(np.diff(acc, axis=1) >= -1e-12, axis=1)
    used = fd.used
    us_lo, us_hi = float(used["us_acc"].min()), float(used["us_acc"].max())
    dgrid = np.linspace(us_lo, us_hi, 51)
    dacc = curves(dgrid)
    in_data_range = np.all((dacc >= 0) & (dacc <= 1), axis=1)
    good = in_range & increasing
    rng = np.random.default_rng(seed)
    pick = rng.choice(acc.shape[0], size=min(n_curves, acc.shape[0]), replace=False)
    fig, (ax, ax2) = plt.subplots(
        1, 2, figsize=(11, 4.6), layout="constrained", gridspec_kw={"width_ratios": [2, 1]}
    )
    ax.axhspan(1.0, 2.0, color="0.9", zorder=0, lw=0)
    ax.axhspan(-2.0, 0.0, color="0.9", zorder=0, lw=0)
    ax.axvspan(us_lo, us_hi, color=C_BAND, alpha=0.08, zorder=0, lw=0)
    ax.scatter(used["us_acc"], used["ds_acc"], s=5, color="0.45", alpha=0.5, lw=0, zorder=3)
    for i in pick:
        ax.plot(grid, acc[i], color=C_CURVE if good[i] else "#d7301f", alpha=0.25, lw=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.3, 1.1)
    ax.set_xlabel("US accuracy")
    ax.set_ylabel("DS accuracy (axis cut at -0.3)")
    _prior_legend(ax)
    n_groups = len(fd.groups)
    ax.set_title(
        f"{len(pick)} of {acc.shape[0]} prior curves ({acc.shape[0] // max(n_groups, 1)} draws "
        f"x {n_groups} tasks)",
        fontsize=9,
    )
    _prior_asymptote(ax2, asymptote)
    fig.suptitle(
        f"Prior predictive ({config.target} target, {config.pooling} pooling)\n"
        f"{in_range.mean():.0%} of prior curves stay in [0, 1] for US accuracy 0-1 "
        f"({in_data_range.mean():.0%} over the data's US range), "
        f"{increasing.mean():.0%} increase with US accuracy",
        fontsize=10,
    )
    return fig
