"""Figures of a fitted model: Figure A with credible bands, the asymptote forest, and checks.

Every function returns a :class:`matplotlib.figure.Figure` (never shows it) and names the kind
and probability of every interval it draws in its legend or title. The figures read only a
:class:`~scale_transfer.posterior.Posterior` (plus, optionally, the least-squares baseline of
:func:`scale_transfer.lsq.fit_lsq_frame` and the true parameters of a simulation), except
:func:`prior_predictive_plot`, which builds the model from a config and data.
"""

from scale_transfer.plots.checks import ppc_plot, prior_predictive_plot, trace_or_rank_plot
from scale_transfer.plots.common import inner_prob_for, interval_label, task_row
from scale_transfer.plots.figure_a import figure_a, forest_asymptotes

__all__ = [
    "figure_a",
    "forest_asymptotes",
    "inner_prob_for",
    "interval_label",
    "ppc_plot",
    "prior_predictive_plot",
    "task_row",
    "trace_or_rank_plot",
]
