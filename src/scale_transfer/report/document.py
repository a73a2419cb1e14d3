"""A report as data: sections of text, tables and figures, rendered to HTML or Markdown.

The text here is plain (no markup): each renderer escapes it for its own format, so a task
or model name can hold any character.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

__all__ = ["Block", "Document", "Figure", "Section", "Verdict"]

BlockKind = Literal["p", "answer", "note", "table", "figure", "verdict"]


@dataclass(frozen=True)
class Block:
    """One piece of a section.

    A paragraph (``p``, ``answer``, ``note``: the text), or a table, figure or the verdict
    (the name of the document's table or figure).
    """

    kind: BlockKind
    payload: str = ""


@dataclass(frozen=True)
class Section:
    """A titled section: ``sid`` is its anchor."""

    sid: str
    heading: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Figure:
    """A figure: PNG bytes, the file name beside the Markdown, and its caption."""

    png: bytes
    filename: str
    caption: str


@dataclass(frozen=True)
class Verdict:
    """The convergence verdict: ``ok``, its one-line text, and the failed checks if not."""

    ok: bool
    text: str
    numbers: str = ""
    reasons: tuple[str, ...] = ()

    @property
    def head(self) -> str:
        """Return the verdict's first words."""
        if self.ok:
            return "Converged."
        return "WARNING: NOT CONVERGED: the intervals in this report are not reliable."


@dataclass
class Document:
    """A whole report: its title, a line of provenance, and its sections.

    ``tables`` hold formatted strings (what is shown); ``figures`` the rendered figures.
    """

    title: str
    meta: str
    verdict: Verdict
    sections: list[Section] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
