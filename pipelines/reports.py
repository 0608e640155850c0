"""`scaling report`: write each study's report from the warehouse.

Layout (default ``<warehouse>/reports``)::

    index.html                 links to every study's report
    <study>.html               self-contained: tables and plots (base64 PNG) in one file
    <study>.md                 the same in Markdown, with its plots beside it
    plots/<study>/<plot>.png

Every file is written aside and renamed into place, so a reader never sees half a report. In an
object-store warehouse the reports are also uploaded to ``reports/`` in the store (one PUT per file).
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

from scaling.report import render_html, render_index, render_markdown
from warehouse import objectstore
from warehouse.catalog import ensure_catalog
from warehouse.config import paths as warehouse_paths
from warehouse.lake import _storage_error
from warehouse.ingest import lake_studies
from warehouse.report_data import read_study_report, report_dir


def _write(path: Path, data: str | bytes) -> Path:
    """Write a report file aside and rename it into place; a read-only or full folder is a `StorageError`."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise _storage_error(exc, path) from None
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
    return path


def _description(study: str) -> str:
    from pipelines.resources import Warehouse

    try:
        return Warehouse().load(study).description
    except Exception:  # the report is still useful when the study file has since gone or broken
        return ""


def stale_reports(root: Path, studies: list[str]) -> list[str]:
    """The studies whose report is missing or older than what it shows: the study's tables in the lake,
    its plots, or its study file (`scaling run` rewrites only these; `scaling report` rewrites all). An
    object-store warehouse's working copy says nothing of the store's state: all of its studies."""
    from pipelines.resources import Warehouse

    p = warehouse_paths(root)
    if objectstore.store_for(p.lake) is not None:
        return list(studies)
    files = Warehouse().scan().files
    out = report_dir(p)
    stale = []
    for study in studies:
        html, md = out / f"{study}.html", out / f"{study}.md"
        if not (html.exists() and md.exists()):
            stale.append(study)
            continue
        shown = [*p.lake.glob(f"*/study={study}/**/*.parquet"), *(p.plots / study).glob("*.png")]
        if study in files:
            shown.append(files[study])
        written = min(html.stat().st_mtime_ns, md.stat().st_mtime_ns)
        if any(f.stat().st_mtime_ns >= written for f in shown if f.exists()):
            stale.append(study)
    return stale


def reportable_studies(root: Path) -> tuple[list[str], list[str]]:
    """The studies in the warehouse that have a study file in the studies folder, and those that have
    none (reported by name, not written). An object-store warehouse is read at its committed state."""
    from pipelines.resources import Warehouse

    p = warehouse_paths(root)
    if objectstore.store_for(p.lake) is not None:
        objectstore.pull_all(p.lake)
    files = Warehouse().scan().files
    stored = list(lake_studies(p.lake))
    return [s for s in stored if s in files], [s for s in stored if s not in files]


def write_reports(root: Path, studies: list[str], out: Path | None = None) -> list[Path]:
    """Write the HTML and Markdown report of each study; return the HTML paths (index last)."""
    p = warehouse_paths(root)
    store = objectstore.store_for(p.lake)
    if store is not None:  # an object-store warehouse: report its committed state, plots included
        objectstore.pull_all(p.lake)
        ensure_catalog(p.catalog, p.lake)
    if not p.catalog.exists():
        return []
    publish = store is not None and out is None  # the reports go to the store too, beside its lake
    out = Path(out) if out is not None else report_dir(p)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    written, entries = [], []
    for study in studies:
        report = read_study_report(p, study, _description(study))
        report.generated = stamp
        plot_dir = out / "plots" / study
        if plot_dir.is_dir():
            for old in plot_dir.glob("*.png"):
                if old.stem not in report.plots:
                    old.unlink()
        for stem, png in report.plots.items():
            _write(plot_dir / f"{stem}.png", png)
        _write(out / f"{study}.md", render_markdown(report, lambda stem, s=study: f"plots/{s}/{stem}.png"))
        written.append(_write(out / f"{study}.html", render_html(report)))
        entries.append((study, report.description, f"{study}.html", f"{study}.md"))
    existing = {e[0] for e in entries}
    for other in sorted(out.glob("*.html")):  # keep links to reports of studies not rewritten this time
        if other.stem != "index" and other.stem not in existing and (out / f"{other.stem}.md").exists():
            entries.append((other.stem, "", other.name, f"{other.stem}.md"))
    written.append(_write(out / "index.html", render_index(sorted(entries))))
    if publish:
        objectstore.publish_files(p.root, sorted(f for f in out.rglob("*") if f.is_file() and f.name != "index.html"
                                         and not f.name.startswith("."))
                                  + [out / "index.html"])
    return written
