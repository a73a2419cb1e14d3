"""The held-out validation's figure: calibration, squared error and CRPS per method."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scale_transfer.studies.validation_scores import ALL_GROUP, prob_label

if TYPE_CHECKING:
    from scale_transfer.studies.validation import ValidationResult

__all__ = ["plot_validation"]


def _group_labels(table: pd.DataFrame) -> pd.Series:
    """``task``, or ``setting/task`` when the table holds several settings."""
    tab = table[table["task"] != ALL_GROUP]
    if tab["setting"].nunique() > 1:
        return tab["setting"].astype(str) + "/" + tab["task"].astype(str)
    return tab["task"].astype(str)


def plot_validation(result: ValidationResult, title: str | None = None):  # noqa: ANN201
    """Coverage against nominal probability per method; squared error and CRPS by method.

    Parameters
    ----------
    result : ValidationResult
        From :func:`validate_extrapolation`.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Left: coverage of the held-out models by the equal-tailed predictive intervals
        (all tasks pooled, one line per method; small marks: single tasks of the method).
        Middle and right: mean squared error of the predicted DS accuracy and mean CRPS,
        per method (bar: all tasks pooled; marks: single tasks), log scale.
    """
    import matplotlib.pyplot as plt

    pooled = result.pooled()
    methods = list(pooled["method"])
    colors = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(methods)}
    tab = result.table[result.table["task"] != ALL_GROUP].copy()
    tab["label"] = _group_labels(result.table)
    labels = list(dict.fromkeys(tab["label"]))
    markers = dict(zip(labels, "os^vD<>phX*P8H+x1234", strict=False))
    fig, axes = plt.subplots(
        1, 3, figsize=(14, 4.6), gridspec_kw={"width_ratios": [1.1, 1, 1]}, layout="constrained"
    )
    ax = axes[0]
    probs = np.array(result.probs)
    lo = max(0.0, float(probs.min()) - 0.1)  # the levels scored, not an empty 0-0.4
    ax.plot([lo, 1], [lo, 1], color="0.5", ls="--", lw=1, label="nominal")
    span = 0.012 * (len(methods) - 1)
    for i, m in enumerate(methods):
        r = pooled.iloc[i]
        cov = [r[f"coverage_{prob_label(p)}"] for p in probs]
        dx = -span / 2 + 0.012 * i  # methods side by side: identical results stay visible
        ax.plot(probs + dx, cov, marker="o", color=colors[m], label=m, lw=2)
        sub = tab[tab["method"] == m]
        for p in probs:
            ax.scatter(np.full(len(sub), p + dx), sub[f"coverage_{prob_label(p)}"], s=9,
                       color=colors[m], alpha=0.45, lw=0)  # fmt: skip
    ax.set_xlim(lo, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xticks(probs, [f"{p:.0%}" for p in probs], fontsize=8)
    ax.set_xlabel("nominal probability of the predictive interval (equal-tailed)")
    ax.set_ylabel("share of held-out models inside")
    ax.set_title("Calibration (line: all tasks; dots: single tasks)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    x = np.arange(len(methods))
    for ax, col, name in (
        (axes[1], "mse", "Mean squared error of DS accuracy"),
        (axes[2], "crps", "CRPS of DS accuracy (lower is better)"),
    ):
        ax.bar(x, pooled[col].to_numpy(), color=[colors[m] for m in methods], alpha=0.35,
               label="all tasks")  # fmt: skip
        for j, lab in enumerate(labels):
            sub = tab[tab["label"] == lab].set_index("method").reindex(methods)
            off = (j - (len(labels) - 1) / 2) * min(0.07, 0.7 / max(len(labels), 1))
            ax.scatter(x + off, sub[col], s=14, marker=markers.get(lab, "o"), color="0.15",
                       label=lab, zorder=3)  # fmt: skip
        ax.set_xticks(x, methods, rotation=40, ha="right", rotation_mode="anchor")
        ax.set_yscale("log")
        ax.set_title(name, fontsize=10)
        ax.grid(axis="y", color="0.9", lw=0.6, which="both")
        ax.set_axisbelow(True)
    axes[2].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), title="task",
                   title_fontsize=8)  # fmt: skip
    meta = result.meta
    rule = (f"top {meta['top']:.0%} of US accuracy per task" if meta.get("above") is None
            else f"US accuracy > {meta['above']}")  # fmt: skip
    title = title if title is not None else meta.get("data")
    fig.suptitle(
        (f"{title}: " if title else "") + f"held-out {meta.get('n_heldout', '?')} models ({rule}); "
        f"MCMC {meta.get('chains')} x {meta.get('draws')} draws",
        fontsize=11,
    )
    return fig
