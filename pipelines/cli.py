"""The `scaling` command: run the main job, write reports, query the catalog, open the UI.

    scaling run [--study NAME ...]      materialize every asset of every study (the main job)
    scaling report [STUDY ...]          write each study's HTML and Markdown report from the warehouse
                                        (default: every study in it that has a study file)
    scaling sql "SELECT ... FROM runs"  query the DuckDB catalog (read-only)
    scaling studies                     list the studies: description, sources, last materialized
    scaling ui                          start the Dagster UI (`dg dev`) over the same instance and warehouse
    scaling init DIR [--out FILE]       write a study file for a folder of logs or results

``--warehouse DIR`` and ``--studies DIR`` (or SCALING_WAREHOUSE / SCALING_STUDIES) relocate the
warehouse and the studies folder, and ``--data-root DIR`` (repeatable; adds to SCALING_DATA_ROOTS)
names a folder study files may read besides the studies folder; they are accepted before or after
the subcommand. Runs are recorded in DAGSTER_HOME, by default a folder inside the warehouse, so the
UI shows what the command did.

Adding an option to a command is one decorator: ``run``'s options are passed on to
``pipelines.progress.run_studies`` by name, so ``@click.option("--quick", is_flag=True, help=...)``
above ``run`` reaches ``run_studies(quick=...)``.
"""

from __future__ import annotations

import os
import shutil
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import click


def _set_env(name: str):
    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value:  # a folder, or an object-store URL (s3://bucket/prefix) taken as given
            os.environ[name] = value if "://" in value else str(Path(value).expanduser().resolve())
    return callback


def _add_data_roots(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> None:
    if value:
        given = [str(Path(d).expanduser().resolve()) for d in value]
        before = [d for d in os.environ.get("SCALING_DATA_ROOTS", "").split(os.pathsep) if d]
        os.environ["SCALING_DATA_ROOTS"] = os.pathsep.join(before + [g for g in given if g not in before])


def location_options(f):
    """--warehouse, --studies and --data-root, on the group and on every subcommand (so before or after it)."""
    f = click.option("--data-root", metavar="DIR", multiple=True, expose_value=False, callback=_add_data_roots,
                     help="a folder study files may read besides the studies folder (repeatable; adds to "
                          "SCALING_DATA_ROOTS)")(f)
    f = click.option("--studies", metavar="DIR", expose_value=False, callback=_set_env("SCALING_STUDIES"),
                     help="folder of study files (default: SCALING_STUDIES, else studies/ in the checkout)")(f)
    f = click.option("--warehouse", metavar="DIR", expose_value=False, callback=_set_env("SCALING_WAREHOUSE"),
                     help="warehouse folder, or s3://bucket/prefix (default: SCALING_WAREHOUSE, else .warehouse in the "
                          "checkout)")(f)
    return f


def _configure() -> Path:
    """The warehouse root, with DAGSTER_HOME defaulting to a folder inside it."""
    from scaling.errors import StorageError
    from warehouse.config import warehouse_root

    try:
        root = warehouse_root()
    except StorageError as exc:  # e.g. an object-store URL of an unsupported kind
        raise click.ClickException(str(exc)) from None
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(root / "dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    if not settings.exists():
        # two cores: automation may want a run per study at once; queue them two at a time
        settings.write_text("telemetry:\n  enabled: false\nconcurrency:\n  runs:\n    max_concurrent_runs: 2\n")
    return root


def _study_files():
    """The studies folder read once: valid studies by name, and each invalid file's problem."""
    from pipelines.resources import Warehouse

    return Warehouse().scan()


def _check_studies(names: tuple[str, ...] | list[str] | None, param_hint: str) -> list[str]:
    """The named studies (all valid ones when none are named); an unknown name lists the available
    ones. Invalid study files are not an error here: `scaling run` reports them and runs the others."""
    from warehouse.config import studies_dir

    found = _study_files()
    files = found.files
    unknown = [n for n in names or () if n not in files and f"{n}.toml" not in found.invalid]
    if unknown:
        raise click.BadParameter(
            f"no study named {', '.join(map(repr, unknown))} in {studies_dir()}; available: "
            f"{', '.join(sorted(files)) or '(none)'}", param_hint=param_hint)
    return list(names) if names else sorted(files)


def _version() -> str:
    try:
        return version("scaling-studies")
    except PackageNotFoundError:
        return "unknown"


class Commands(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # in the order they are defined: the order a newcomer uses them


@click.group(cls=Commands, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", prog_name="scaling")
@location_options
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Neural scaling-law studies on Dagster and DuckDB: ingest training logs, fit laws with
    intervals, forecast, and report."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@cli.command()
@click.option("--study", "only", multiple=True, metavar="NAME", help="only this study (repeatable; default: all)")
@click.option("--quiet", is_flag=True, help="print only the summary")
@click.option("--parallel", type=click.IntRange(min=1), default=1, show_default=True, metavar="N",
              help="run N studies at once, each in its own process with the multiprocess executor")
@click.option("--multiprocess", is_flag=True,
              help="run each study's steps in subprocesses (Dagster's multiprocess executor)")
@click.option("--quick", is_flag=True,
              help="a first look: 100 bootstrap refits per fit and 50 per backtest (not recorded as done)")
@click.option("--force", is_flag=True, help="run every step, even those with nothing stale")
@click.option("--executor", type=click.Choice(["in_process", "dask"]), default="in_process", show_default=True,
              help="where steps run: this process (or --parallel workers), or a Dask cluster (dagster-dask)")
@click.option("--dask-workers", type=click.IntRange(min=1), metavar="N",
              help="with --executor dask: start a local Dask cluster of N worker processes (default 2)")
@click.option("--dask-scheduler", metavar="ADDRESS",
              help="with --executor dask: use the existing Dask scheduler at ADDRESS (tcp://HOST:PORT)")
@click.option("--no-report", is_flag=True, help="do not write the HTML/Markdown reports after the run")
@click.option("--no-summary", is_flag=True, hidden=True, help="print no summary (used for child processes)")
@location_options
def run(only: tuple[str, ...], no_report: bool, dask_workers: int | None, **options) -> None:
    """Run the stale steps of every study (the main job; nothing when nothing changed), then write the
    reports of the studies whose results changed."""
    root = _configure()
    names = _check_studies(only, "--study")
    from pipelines.progress import run_studies

    if options["dask_scheduler"] or dask_workers is not None:
        options["executor"] = "dask"
    status = run_studies(root, only=list(only) or None, summary=not options["no_summary"],
                         dask_workers=dask_workers or 2,
                         **{k: v for k, v in options.items() if k != "no_summary"})
    if not no_report and not options["no_summary"]:
        from pipelines.reports import stale_reports, write_reports
        from scaling.errors import ScalingError

        try:  # the reports of studies whose tables, plots or file changed (`scaling report` rewrites all)
            written = write_reports(root, stale_reports(root, names))
        except ScalingError as exc:  # e.g. a read-only warehouse: one line, and the run did not succeed
            click.echo(f"error: {exc}", err=True)
            written, status = [], 1
        if written:
            click.echo(f"  reports: {written[0].parent / 'index.html'}  (one HTML and one Markdown file per study;"
                       f" `scaling report` rewrites them)")
    sys.exit(status)


@cli.command()
@click.argument("study", nargs=-1, metavar="[STUDY]...")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="write the reports here (default: <warehouse>/reports)")
@location_options
def report(study: tuple[str, ...], out: Path | None) -> None:
    """Write a self-contained HTML report and a Markdown report per study: data, fitted laws with
    intervals and flags, backtests, forecasts, mixtures, plots. Without a STUDY, every study in the
    warehouse that has a study file in the studies folder.

    STUDY: a study name (repeatable; default: every study in the warehouse that has a study file)."""
    root = _configure()
    names = _check_studies(study, "STUDY") if study else None
    from pipelines.reports import reportable_studies, write_reports
    from scaling.errors import ScalingError
    from warehouse.config import paths, studies_dir
    from warehouse.objectstore import store_for

    # an object-store warehouse's catalog is built from the store when the reports are written
    if not paths().catalog.exists() and store_for(paths().lake) is None:
        raise click.ClickException(f"no catalog yet at {paths().catalog}; run `scaling run` first")
    if names is None:
        names, orphans = reportable_studies(root)
        if not names:
            raise click.ClickException(
                f"no study in the warehouse has a study file in {studies_dir()}"
                + (f" (in the warehouse: {', '.join(orphans)})" if orphans else " (the warehouse holds no study)"))
    try:
        written = write_reports(root, names, out=out)
    except ScalingError as exc:  # e.g. a read-only folder: one line, no traceback
        raise click.ClickException(str(exc)) from None
    for path in written:
        click.echo(str(path))


@cli.command()
@click.argument("query")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "markdown"]), default="table",
              show_default=True, help="output format (table fits the terminal's width)")
@click.option("--csv", "as_csv", is_flag=True, help="same as --format csv")
@click.option("--max-rows", type=click.IntRange(min=1), default=40, show_default=True,
              help="rows shown in table format")
@location_options
def sql(query: str, fmt: str, as_csv: bool, max_rows: int) -> None:
    """Run a read-only SQL query on the DuckDB catalog.

    QUERY: the SQL, e.g. "SELECT * FROM runs LIMIT 5" (tables: see docs/tables.md)."""
    _configure()
    import duckdb

    from warehouse.config import paths
    from warehouse.objectstore import store_for

    catalog = paths().catalog
    if not catalog.exists() and store_for(paths().lake) is None:  # a store's catalog is read from the store
        raise click.ClickException(f"no catalog yet at {catalog}; run `scaling run` first")
    fmt = "csv" if as_csv else fmt
    from warehouse.catalog import open_catalog

    con = open_catalog(catalog, paths().lake)
    try:
        rel = con.sql(query)
        if rel is None:
            return
        if fmt == "table":
            # a terminal's width (COLUMNS first, as shutil reads it); piped, COLUMNS or no limit
            width = shutil.get_terminal_size().columns if sys.stdout.isatty() else \
                int(os.environ.get("COLUMNS", 0) or 0)
            rel.show(max_rows=max_rows, max_width=max(width, 40) if width else 10_000)
            return
        frame = rel.pl()
        if fmt == "csv":
            click.echo(frame.write_csv(), nl=False)
        elif fmt == "json":
            click.echo(frame.write_json())
        else:
            from scaling.report import markdown_table

            click.echo(markdown_table(frame, limit=None))
    except duckdb.Error as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        con.close()


@cli.command()
@location_options
def studies() -> None:
    """List the studies: description, whether each source's files resolve, and when the study was
    last materialized. Exits with 2 when a study file is invalid."""
    _configure()
    from pipelines.study_status import study_status

    from warehouse.config import studies_dir

    status = 0
    for row in study_status(studies_dir()):
        if row.error:
            click.echo(f"error: {row.error}", err=True)
            status = 2
            continue
        click.echo(f"{row.name}  ({row.file})")
        if row.description:
            click.echo(f"    {row.description}")
        for line in row.sources:
            click.echo(f"    source {line}")
        click.echo(f"    last materialized: {row.last_materialized or 'never'}")
    sys.exit(status)


@cli.command()
@click.option("--port", "-p", type=int, default=3000, show_default=True, help="port of the web server")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="interface to listen on (0.0.0.0 to reach it from other machines)")
@location_options
def ui(port: int, host: str) -> None:
    """Start the Dagster UI (`dg dev`) over this warehouse and its Dagster instance."""
    _configure()
    dg = _dg()
    os.execv(dg, [dg, "dev", "-m", "pipelines.definitions", "--host", host, "--port", str(port)])


def _dg() -> str:
    """The `dg` command of this Python (beside its interpreter, as in a virtualenv that is not
    activated), else the one on PATH."""
    beside = Path(sys.executable).parent / "dg"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("dg")
    if found is None:
        raise click.ClickException(f"no `dg` next to {sys.executable} or on PATH; `scaling ui` runs `dg dev` "
                                   "(pip install dagster-dg-cli)")
    return found


@cli.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="where to write the study file (default: FOLDER/study.toml)")
def init(folder: Path, out: Path | None) -> None:
    """Write a study file for a folder of logs or results: it runs as written where the data allows, with
    comments where a value is needed.

    FOLDER: the folder to inspect (W&B CSV exports, JSON lines, lm-eval JSON, Parquet, CSV tables)."""
    from scaling.errors import ScalingError
    from scaling.init_study import init_study

    try:
        click.echo(init_study(folder, out))
    except ScalingError as exc:
        raise click.ClickException(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `scaling` console script; returns the exit status."""
    try:
        cli.main(args=argv, prog_name="scaling", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("Aborted!", err=True)
        return 1
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
