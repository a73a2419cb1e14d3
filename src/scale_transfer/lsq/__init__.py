"""Least squares, the paper's method: the baseline the Bayesian model is compared with.

The law ``e_ds = k * e_us**alpha + e_ir`` is fitted by bounded non-linear least squares in
error space (residuals ``k * e_us**alpha + e_ir - e_ds``; the same as in accuracy space),
with bounds ``k`` in [1e-6, 10], ``alpha`` in [1e-3, 50] and ``e_ir`` in [0, 1).

The law is linear in ``(k, e_ir)`` once ``alpha`` is fixed, so the residual sum of squares
profiled over ``alpha`` has a closed form (a two-parameter least-squares problem in a box).
:func:`fit_lsq` scans that profile on a fine grid of ``alpha`` and starts
:func:`scipy.optimize.least_squares` (with the analytic Jacobian) from its minimum and from a
few log-spaced values of ``alpha``; the best solution wins.

:func:`fit_lsq_frame` adds a percentile bootstrap interval on the asymptote ``1 - e_ir``. Its
refits are vectorised over the resamples: the same profile scan (one matrix product for all
resamples, on a coarse grid of ``alpha`` plus the full-data ``alpha``, with ``(k, e_ir)`` in
closed form), then a batched, bound-constrained Levenberg-Marquardt polish (numpy) from the
best point of that scan. About 7 s for 8 tasks x 3,000 points x 1,000 resamples (all points),
2 s for the hull target, on two shared cores.

Bootstrap scheme for the hull target: each resample draws the *models* (all points of the
task, with replacement), recomputes the upper hull of the resample and refits the law to it.
The hull is a statistic of the whole sample, so this is the bootstrap of the estimator the
paper uses; resampling the hull points themselves would treat them as independent draws
around the curve and ignore which models happened to be sampled. Caveat: the hull of a
resample lies on or below the hull of the data, so this bootstrap's distribution tends to
sit below the point estimate (the hull is an extreme-value statistic, for which the bootstrap
is known to be biased): read the interval as sampling variability, not as coverage of the
true asymptote. ``hull_resample="hull"``
resamples the hull points instead.
"""

from scale_transfer.lsq.bootstrap import fit_lsq_frame
from scale_transfer.lsq.fit import BOUNDS, FRAME_COLUMNS, LsqFit, fit_lsq, lsq_interval, predict_lsq

__all__ = [
    "BOUNDS",
    "FRAME_COLUMNS",
    "LsqFit",
    "fit_lsq",
    "fit_lsq_frame",
    "lsq_interval",
    "predict_lsq",
]
