"""Render a :class:`~scale_transfer.report.document.Document` as Markdown.

The Markdown twin of the HTML page: the same sections, text and tables, the figures as
PNG files beside it. Every piece of text is escaped, so that a task or model name such as
``a|b``, ``*x*`` or ``<y>`` shows as written instead of breaking a table or turning into
markup.
"""

from __future__ import annotations

import re

import pandas as pd

from scale_transfer.report.document import Block, Document, Figure, Verdict

__all__ = ["escape_md", "render_markdown", "table_md", "verdict_md"]

_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def escape_md(text: object) -> str:
    r"""Escape Markdown's special characters (``\\ ` * _ [ ] < > | #``); newlines to spaces."""
    return _SPECIAL.sub(r"\\\1", str(text)).replace("\r", " ").replace("\n", " ")


def table_md(df: pd.DataFrame) -> str:
    """Return a table of strings as a Markdown (GitHub) table, every cell escaped."""
    head = "| " + " | ".join(escape_md(c) for c in df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = [
        "| " + " | ".join(escape_md(v) for v in row) + " |" for row in df.itertuples(index=False)
    ]
    return "\n".join([head, sep, *body])


def verdict_md(v: Verdict) -> str:
    """Return the verdict as a block quote."""
    if v.ok:
        return f"> **{v.head}** {escape_md(v.text)}"
    reasons = "\n".join(f"> - {escape_md(r)}" for r in v.reasons)
    return f"> **{escape_md(v.head)}**\n>\n> {escape_md(v.numbers)}.\n>\n{reasons}"


def _figure_md(name: str, fig: Figure) -> str:
    return f"![{name}]({fig.filename})\n\n*{escape_md(fig.caption)}*"


def _block(doc: Document, b: Block) -> str:
    render = {
        "p": lambda: escape_md(b.payload),
        "note": lambda: escape_md(b.payload),
        "answer": lambda: f"> {escape_md(b.payload)}",
        "table": lambda: table_md(doc.tables[b.payload]),
        "verdict": lambda: verdict_md(doc.verdict),
        "figure": lambda: _figure_md(b.payload, doc.figures[b.payload]),
    }
    if b.kind not in render:
        raise ValueError(f"unknown block kind {b.kind!r}")
    return render[b.kind]()


def render_markdown(doc: Document) -> str:
    """Return the report as Markdown."""
    lines = [f"# {escape_md(doc.title)}", "", escape_md(doc.meta), ""]
    if not doc.verdict.ok:  # the head and numbers here; what failed in the convergence section
        v = doc.verdict
        lines += [f"> **{escape_md(v.head)}** {escape_md(v.numbers)}.", ""]
    for section in doc.sections:
        lines += [f"## {escape_md(section.heading)}", ""]
        for b in section.blocks:
            lines += [_block(doc, b), ""]
    return "\n".join(lines)
