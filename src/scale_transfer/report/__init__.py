"""Reports of a fitted model: one self-contained HTML file and its Markdown twin.

:func:`write_report` writes ``report.html`` (figures embedded as base64 PNG, no external
file, script or style; a print style sheet included) and ``report.md`` (the same text and
tables, with the figures as PNG files beside it). The report leads with the answer: per
task the asymptote with its interval and what more pre-training would buy; then Figure A
and the forest plot, the extrapolation, the self-check and the convergence verdict (loud
when the sampler did not converge); then the data, the model, the priors it uses and the
sampler settings. Every interval is named with its kind and probability.
"""

from scale_transfer.report.core import build_document, report_paths, write_report
from scale_transfer.report.figures import FIGURES
from scale_transfer.report.tables import (
    EXTRAPOLATION_US,
    asymptote_table,
    data_table,
    extrapolation_table,
    priors_used,
)

__all__ = [
    "EXTRAPOLATION_US",
    "FIGURES",
    "asymptote_table",
    "build_document",
    "data_table",
    "extrapolation_table",
    "priors_used",
    "report_paths",
    "write_report",
]
