"""The report page: figures, tables and notes in sections, written as one self-contained ``report.html``
(figures embedded as base64 PNG, a small inline stylesheet, no script, nothing fetched) plus the figures as
separate PNG files in ``report_files/``."""

from __future__ import annotations

import base64
import html
import json
import os
import struct
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence, Union

from ..config import atomic_write_bytes, atomic_write_text

__all__ = ["Figure", "Table", "Note", "Section", "Page", "render_html", "write_page", "png_size",
           "REPORT_FILE", "FILES_DIR"]

REPORT_FILE = "report.html"
FILES_DIR = "report_files"
_INDEX = "index.json"  # the figures this package wrote into FILES_DIR (only those are ever replaced or removed)


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG image")
    return struct.unpack(">II", data[16:24])


@dataclass
class Figure:
    """One figure: ``name`` is its file stem in ``report_files/``; ``caption`` says how to read it."""

    name: str
    title: str
    caption: str
    png: bytes

    @property
    def size(self) -> tuple[int, int]:
        return png_size(self.png)


@dataclass
class Table:
    title: str
    header: Sequence[str]
    rows: Sequence[Sequence]
    caption: str = ""
    collapsed: bool = False  # inside a <details> element (long evidence tables)


@dataclass
class Note:
    text: str
    kind: str = "info"  # info | warn


@dataclass
class Section:
    title: str
    items: list = field(default_factory=list)


@dataclass
class Page:
    title: str
    source: str
    kind: str
    sections: list[Section] = field(default_factory=list)

    def figures(self) -> list[Figure]:
        return [it for s in self.sections for it in s.items if isinstance(it, Figure)]


_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0 auto;max-width:1180px;padding:18px 28px;
color:#1d232b;background:#fff;line-height:1.45}
h1{font-size:1.55em;margin:.2em 0 .1em}h2{font-size:1.2em;margin:1.6em 0 .5em;border-bottom:2px solid #dde3ea;
padding-bottom:.2em}h3{font-size:1em;margin:1em 0 .3em}
.meta{color:#5b6675;font-size:.88em}.meta code{font-size:.95em}
figure{margin:.8em 0 1.4em}figure img{max-width:100%;height:auto;border:1px solid #e3e7ec}
figcaption{color:#3b4654;font-size:.9em;margin-top:.25em}figcaption b{color:#1d232b}
table{border-collapse:collapse;font-size:.86em;margin:.3em 0 1em}th,td{border:1px solid #d5dbe2;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#f1f4f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
.cap{color:#5b6675;font-size:.86em;margin:-.6em 0 1em}
.note{padding:8px 12px;border-left:4px solid #4a90d9;background:#f2f7fd;margin:.6em 0;font-size:.92em}
.note.warn{border-color:#e0a100;background:#fff8e5}
details summary{cursor:pointer;color:#34506e;font-size:.9em}
nav{font-size:.88em;margin:.4em 0 0}nav a{margin-right:1em;color:#2b62a3;text-decoration:none}
"""


def _cell(v) -> tuple[str, bool]:
    if v is None:
        return "–", False
    if isinstance(v, bool):
        return ("yes" if v else "no"), False
    if isinstance(v, int):
        return f"{v:,}", True
    if isinstance(v, float):
        return (f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"), True
    return html.escape(str(v)), False


def _anchor(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")


def _render_item(it) -> str:
    if isinstance(it, Figure):
        w, h = it.size
        b64 = base64.b64encode(it.png).decode("ascii")
        return (f'<figure id="fig-{html.escape(it.name)}"><img src="data:image/png;base64,{b64}" width="{w}" '
                f'height="{h}" alt="{html.escape(it.title)}"><figcaption><b>{html.escape(it.title)}.</b> '
                f'{html.escape(it.caption)} <span class="meta">({FILES_DIR}/{html.escape(it.name)}.png)</span>'
                f'</figcaption></figure>')
    if isinstance(it, Table):
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in it.header)
        body = []
        for row in it.rows:
            cells = []
            for v in row:
                text, num = _cell(v)
                cells.append(f'<td class="num">{text}</td>' if num else f"<td>{text}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        cap = f'<p class="cap">{html.escape(it.caption)}</p>' if it.caption else ""
        if it.collapsed:
            return f"<details><summary>{html.escape(it.title)}</summary>{table}{cap}</details>"
        return f"<h3>{html.escape(it.title)}</h3>{table}{cap}"
    if isinstance(it, Note):
        return f'<div class="note {"warn" if it.kind == "warn" else ""}">{html.escape(it.text)}</div>'
    raise TypeError(f"unknown report item {type(it).__name__}")


def render_html(page: Page) -> str:
    """The whole page as one HTML string (nothing external: opens from disk without a network)."""
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    nav = " ".join(f'<a href="#{_anchor(s.title)}">{html.escape(s.title)}</a>' for s in page.sections)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{html.escape(page.title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(page.title)}</h1>",
             f'<div class="meta">{html.escape(page.kind)} report of <code>{html.escape(page.source)}</code> · '
             f"written {when} by <code>nlp-cv-tricks report</code></div>", f"<nav>{nav}</nav>"]
    for s in page.sections:
        parts.append(f'<h2 id="{_anchor(s.title)}">{html.escape(s.title)}</h2>')
        parts.extend(_render_item(it) for it in s.items)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_page(page: Page, out_dir: Union[str, os.PathLike]) -> dict:
    """Write ``report.html`` and ``report_files/<name>.png`` into ``out_dir`` (each atomically). Figures a previous
    report of this package wrote there and this one does not are removed; no other file is touched.
    Returns ``{"html": path, "figures": [paths]}``."""
    out = Path(out_dir)
    files = out / FILES_DIR
    names = [f.name for f in page.figures()]
    if len(set(names)) != len(names):
        raise ValueError(f"figure names repeat: {names}")
    before = _read_index(files)
    paths = [atomic_write_bytes(files / f"{f.name}.png", f.png) for f in page.figures()]
    html_path = atomic_write_text(out / REPORT_FILE, render_html(page))
    for stale in sorted(set(before) - {f"{n}.png" for n in names}):
        p = files / stale
        if p.is_file() and p.parent == files:
            p.unlink()
    atomic_write_text(files / _INDEX, json.dumps({"written_by": "nlp-cv-tricks report",
                                                   "figures": [f"{n}.png" for n in names]}, indent=1) + "\n")
    return {"html": str(html_path), "figures": [str(p) for p in paths]}


def _read_index(files: Path) -> list[str]:
    try:
        data = json.loads((files / _INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [n for n in data.get("figures", []) if isinstance(n, str) and "/" not in n and n.endswith(".png")]

