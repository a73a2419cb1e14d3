"""scale-transfer: Bayesian analysis of how pre-training scale transfers downstream.

The law (Abnar et al., 2022): ``e_ds = k * e_us**alpha + e_ir`` with ``e = 1 - accuracy``;
``1 - e_ir`` is the asymptote, the downstream accuracy left at 100% upstream accuracy.
"""

from scale_transfer.config import VERSION as __version__  # noqa: E402
from scale_transfer.config import ModelConfig, SamplerConfig  # noqa: E402
from scale_transfer.convergence import ConvergenceError, ConvergenceWarning  # noqa: E402
from scale_transfer.data import DataError, read_tidy, validate  # noqa: E402
from scale_transfer.fitting import fit  # noqa: E402
from scale_transfer.hull import hull_points, mark_hull, upper_hull  # noqa: E402
from scale_transfer.law import ds_acc, e_ds  # noqa: E402
from scale_transfer.lsq import fit_lsq, fit_lsq_frame  # noqa: E402
from scale_transfer.model import FewHullPointsWarning  # noqa: E402
from scale_transfer.posterior import Posterior  # noqa: E402
from scale_transfer.sampling import SamplingTimeout  # noqa: E402
from scale_transfer.simulate import simulate  # noqa: E402
from scale_transfer.suffstats import SummaryStatsWarning  # noqa: E402
from scale_transfer.zoo import load_scaling_benchmark, load_timm  # noqa: E402

__all__ = [
    "ConvergenceError",
    "ConvergenceWarning",
    "DataError",
    "FewHullPointsWarning",
    "ModelConfig",
    "Posterior",
    "SamplerConfig",
    "SamplingTimeout",
    "SummaryStatsWarning",
    "__version__",
    "ds_acc",
    "e_ds",
    "fit",
    "fit_lsq",
    "fit_lsq_frame",
    "hull_points",
    "load_scaling_benchmark",
    "load_timm",
    "mark_hull",
    "read_tidy",
    "simulate",
    "upper_hull",
    "validate",
]
