"""Render a :class:`~scale_transfer.report.document.Document` as one self-contained HTML file.

The page is ``templates/report.html`` (style sheet included, a print style sheet among it)
with the title, navigation and body substituted; figures are embedded as base64 PNG, so
the file needs nothing beside it: no external file, script, font or style.
"""

from __future__ import annotations

import base64
import html
from importlib import resources
from string import Template

import pandas as pd

from scale_transfer.report.document import Block, Document, Verdict

__all__ = ["render_html", "table_html", "verdict_html"]


def _template() -> Template:
    text = resources.files("scale_transfer.report").joinpath("templates/report.html")
    return Template(text.read_text(encoding="utf-8"))


def table_html(df: pd.DataFrame) -> str:
    """Return a table of strings as HTML (every cell and header escaped)."""
    body = df.to_html(index=False, escape=True, border=0, classes="table")
    return f'<div class="scroll">{body}</div>'


def verdict_html(v: Verdict) -> str:
    """Return the verdict box: green when converged, loud red when not."""
    if v.ok:
        return f'<div class="verdict ok"><strong>{v.head}</strong> {html.escape(v.text)}</div>'
    items = "".join(f"<li>{html.escape(r)}</li>" for r in v.reasons)
    return (
        f'<div class="verdict bad"><strong>{html.escape(v.head)}</strong>'
        f"<p>{html.escape(v.numbers)}.</p><ul>{items}</ul></div>"
    )


def _block(doc: Document, b: Block) -> str:
    if b.kind in ("p", "note", "answer"):
        cls = "" if b.kind == "p" else f' class="{b.kind}"'
        return f"<p{cls}>{html.escape(b.payload)}</p>"
    if b.kind == "table":
        return table_html(doc.tables[b.payload])
    if b.kind == "verdict":
        return verdict_html(doc.verdict)
    if b.kind == "figure":
        fig = doc.figures[b.payload]
        b64 = base64.b64encode(fig.png).decode("ascii")
        name = html.escape(b.payload)
        return (
            f'<figure id="{name}"><img alt="{name}" src="data:image/png;base64,{b64}">'
            f"<figcaption>{html.escape(fig.caption)}</figcaption></figure>"
        )
    raise ValueError(f"unknown block kind {b.kind!r}")


def _banner(v: Verdict) -> str:
    """Return the warning put above everything when the fit did not converge."""
    return (
        f'<div class="verdict bad"><strong>{html.escape(v.head)}</strong> '
        f'{html.escape(v.numbers)}. <a href="#convergence">What failed and what to do</a>.</div>'
    )


def render_html(doc: Document) -> str:
    """Return the report as one HTML page."""
    parts = []
    if not doc.verdict.ok:  # a fit that did not converge says so before anything else
        parts.append(_banner(doc.verdict))
    for section in doc.sections:
        parts.append(f'<section id="{html.escape(section.sid)}">')
        parts.append(f"<h2>{html.escape(section.heading)}</h2>")
        parts += [_block(doc, b) for b in section.blocks]
        parts.append("</section>")
    nav = " ".join(
        f'<a href="#{html.escape(s.sid)}">{html.escape(s.heading.split(",")[0])}</a>'
        for s in doc.sections
    )
    return _template().substitute(
        title=html.escape(doc.title),
        meta=html.escape(doc.meta),
        nav=nav,
        body="\n".join(parts),
    )
