"""A study's report as one self-contained HTML page (plots embedded as base64 PNG) and as Markdown.

Pure rendering: `StudyReport` holds the tables (polars frames, as read from the catalog) and the
plots (PNG bytes); `render_html` and `render_markdown` turn it into text. Nothing here reads
storage; `warehouse.report_data` fills a `StudyReport`, `pipelines.reports` writes the files.
"""

from __future__ import annotations

from .model import StudyReport
from .render import format_value, markdown_table, render_html, render_index, render_markdown

__all__ = ["StudyReport", "format_value", "markdown_table", "render_html", "render_index", "render_markdown"]
