"""Rendering helpers shared by the magics: HTML and plain-text tables, masking, errors.

Every object a magic shows has ``_repr_html_`` (JupyterLab) and ``__repr__`` (terminal IPython,
nbval's text comparison); both go through :class:`Masker` so no password reaches the output.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Sequence

from stackmagic.config.settings import MASK, is_secret
from stackmagic.errors import StackError

_ASSIGNMENT = re.compile(r"^(\s*(?:export\s+)?([A-Za-z_][\w.-]*)\s*=\s*)(.*)$")
_STYLE = "border-collapse:collapse;font-family:monospace;font-size:12px"
_CELL = "padding:2px 8px;text-align:left;border-bottom:1px solid #ddd"


class MagicError(StackError):
    """A user-caused failure of a magic: IPython shows the message, not a traceback."""

    def _render_traceback_(self) -> list[str]:
        return ["\x1b[31m" + line + "\x1b[0m" if i == 0 else line
                for i, line in enumerate(str(self).splitlines() or [""])]


class Masker:
    """Replaces the values of secret settings (passwords, secrets, tokens) wherever they appear."""

    def __init__(self, settings: object = None):
        values = getattr(settings, "items", lambda: [])()
        self.secrets = sorted({v for k, v in values if is_secret(k) and v and len(v) >= 4},
                              key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text


def mask_text(text: str) -> str:
    """A localrc / local.conf with the value of every secret assignment replaced by ``********``."""
    out = []
    for line in text.splitlines():
        match = _ASSIGNMENT.match(line)
        if match and is_secret(match.group(2)) and not line.lstrip().startswith("#"):
            line = match.group(1) + MASK
        out.append(line)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def seconds(value: float | None) -> str:
    """``3.2 s`` / ``4 min 10 s``; ``-`` for None."""
    if value is None:
        return "-"
    return f"{value:.1f} s" if value < 120 else f"{value // 60:.0f} min {value % 60:.0f} s"


def width(text: str) -> int:
    """Columns ``text`` takes in a terminal: East Asian wide characters (Japanese) take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, columns: int) -> str:
    return text + " " * (columns - width(text))


def text_table(headers: Sequence[str], rows: Iterable[Sequence[object]], title: str = "") -> str:
    """A plain-text table with aligned columns (Japanese counted as two columns a character)."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([width(h)] + [width(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = [title] if title else []
    lines.append("  ".join(_pad(h, w) for h, w in zip(headers, widths)).rstrip())
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(_pad(c, w) for c, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)


def html_table(headers: Sequence[str], rows: Iterable[Sequence[object]], title: str = "",
               raw_columns: frozenset[int] = frozenset()) -> str:
    """An HTML table; cells are escaped except in ``raw_columns`` (already HTML)."""
    head = "".join(f'<th style="{_CELL}">{html.escape(h)}</th>' for h in headers)
    body = "".join(
        "<tr>" + "".join(f'<td style="{_CELL}">{c if i in raw_columns else html.escape(str(c))}</td>'
                         for i, c in enumerate(row)) + "</tr>"
        for row in rows)
    caption = f"<caption style='text-align:left;font-weight:bold'>{html.escape(title)}</caption>" if title else ""
    return f'<table style="{_STYLE}">{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def badge(text: str, colour: str) -> str:
    """A coloured word for HTML tables."""
    return f'<span style="color:{colour};font-weight:bold">{html.escape(text)}</span>'


def pre(lines: Iterable[str], colour: str = "") -> str:
    """Lines as an HTML ``<pre>`` block."""
    style = f' style="color:{colour}"' if colour else ""
    return f"<pre{style}>" + html.escape("\n".join(lines)) + "</pre>"
