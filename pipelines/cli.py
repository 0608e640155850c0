"""The `scaling` command: run the main job, query the catalog, open the UI.

    scaling run [--study NAME ...]      materialize every asset of every study (the main job)
    scaling sql "SELECT ... FROM runs"  query the DuckDB catalog (read-only)
    scaling studies                     list the studies and validate their files
    scaling ui                          start the Dagster UI over the same instance and warehouse
    scaling init DIR [--out FILE]       write a study file for a folder of logs or results

``--warehouse DIR`` and ``--studies DIR`` (or SCALING_WAREHOUSE / SCALING_STUDIES) relocate the
warehouse and the studies folder. Study files read only inside the studies folder and the data
roots: ``--data-root DIR`` (repeatable) adds to SCALING_DATA_ROOTS. Runs are recorded in DAGSTER_HOME, by default a folder inside
the warehouse, so the UI shows what the command did.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _configure(args: argparse.Namespace) -> Path:
    if getattr(args, "warehouse", None):
        os.environ["SCALING_WAREHOUSE"] = str(Path(args.warehouse).resolve())
    if getattr(args, "studies", None):
        os.environ["SCALING_STUDIES"] = str(Path(args.studies).resolve())
    if getattr(args, "data_root", None):
        given = [str(Path(d).expanduser().resolve()) for d in args.data_root]
        before = [d for d in os.environ.get("SCALING_DATA_ROOTS", "").split(os.pathsep) if d]
        os.environ["SCALING_DATA_ROOTS"] = os.pathsep.join(before + given)
    from warehouse.config import warehouse_root

    root = warehouse_root()
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(root / "dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    if not settings.exists():
        # two cores: automation may want a run per study at once; queue them two at a time
        settings.write_text("telemetry:\n  enabled: false\nconcurrency:\n  runs:\n    max_concurrent_runs: 2\n")
    return root


def _cmd_studies(args: argparse.Namespace) -> int:
    _configure(args)
    from scaling.errors import ScalingError
    from scaling.spec import discover_studies, load_study
    from warehouse.config import studies_dir

    folder = studies_dir()
    status = 0
    from warehouse.config import data_roots

    for path in discover_studies(folder):
        try:
            spec = load_study(path, data_roots=data_roots())
            print(f"{spec.name:<24} {len(spec.sources)} sources  {path.name}")
        except ScalingError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 2
    return status


def _cmd_init(args: argparse.Namespace) -> int:
    from scaling.errors import ScalingError
    from scaling.init_study import init_study

    try:
        print(init_study(args.folder, args.out))
    except ScalingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    root = _configure(args)
    from pipelines.progress import run_studies

    if args.dask_scheduler or args.dask_workers is not None:
        args.executor = "dask"
    return run_studies(root, only=args.study, quiet=args.quiet, parallel=args.parallel,
                       multiprocess=args.multiprocess, summary=not args.no_summary, quick=args.quick,
                       force=args.force, executor=args.executor, dask_scheduler=args.dask_scheduler,
                       dask_workers=args.dask_workers or 2)


def _cmd_sql(args: argparse.Namespace) -> int:
    _configure(args)
    import duckdb

    from warehouse.catalog import open_catalog
    from warehouse.config import paths

    p = paths()
    catalog = p.catalog
    if not catalog.exists() and not p.lake.is_dir():
        print(f"error: no catalog yet at {catalog}; run `scaling run` first", file=sys.stderr)
        return 2
    con = open_catalog(catalog, p.lake)
    try:
        rel = con.sql(args.query)
        if rel is None:
            return 0
        if args.csv:
            rel.pl().write_csv(sys.stdout)
        else:
            rel.show(max_rows=args.max_rows, max_width=200)
    except duckdb.Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        con.close()
    return 0


def _cmd_ui(args: argparse.Namespace) -> int:
    _configure(args)
    os.execvp("dagster", ["dagster", "dev", "-m", "pipelines.definitions", "-p", str(args.port)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scaling", description="Neural scaling-law studies on Dagster and DuckDB.")
    parser.add_argument("--warehouse", help="warehouse folder (default: SCALING_WAREHOUSE or .warehouse in the checkout)")
    parser.add_argument("--studies", help="studies folder (default: SCALING_STUDIES or studies/ in the checkout)")
    parser.add_argument("--data-root", action="append", metavar="DIR",
                        help="a folder study files may read besides the studies folder (repeatable; "
                             "adds to SCALING_DATA_ROOTS)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="materialize every asset of every study (the main job)")
    run.add_argument("--study", action="append", help="only this study (repeatable)")
    run.add_argument("--quiet", action="store_true", help="print only the summary")
    run.add_argument("--parallel", type=int, default=1, metavar="N",
                     help="run N studies at once, in N worker processes")
    run.add_argument("--multiprocess", action="store_true",
                     help="run each study's steps in subprocesses (Dagster's multiprocess executor)")
    run.add_argument("--quick", action="store_true",
                     help="a first look: 100 bootstrap refits per fit and 50 per backtest (not recorded as done)")
    run.add_argument("--force", action="store_true", help="run every step, even those with nothing stale")
    run.add_argument("--executor", choices=("in_process", "dask"), default="in_process",
                     help="where steps run: this process (default) or a Dask cluster (dagster-dask)")
    run.add_argument("--dask-workers", type=int, metavar="N",
                     help="with --executor dask: start a local Dask cluster of N worker processes (default 2)")
    run.add_argument("--dask-scheduler", metavar="ADDRESS",
                     help="with --executor dask: use the existing Dask scheduler at ADDRESS (tcp://HOST:PORT)")
    run.add_argument("--no-summary", action="store_true", help=argparse.SUPPRESS)
    run.set_defaults(func=_cmd_run)
    sql = sub.add_parser("sql", help="run a query on the DuckDB catalog (read-only)")
    sql.add_argument("query")
    sql.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    sql.add_argument("--max-rows", type=int, default=40)
    sql.set_defaults(func=_cmd_sql)
    studies = sub.add_parser("studies", help="list and validate the study files")
    studies.set_defaults(func=_cmd_studies)
    ui = sub.add_parser("ui", help="start the Dagster UI (dagster dev) over this warehouse")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(func=_cmd_ui)
    init = sub.add_parser("init", help="write a study file for a folder of logs or results")
    init.add_argument("folder")
    init.add_argument("--out", help="study file to write (default: FOLDER/study.toml)")
    init.set_defaults(func=_cmd_init)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
