"""The fits step of a study, timed outside Dagster: the same core calls the `fits` asset makes.

Setup (not timed): the study's `raw_sources`, `runs` and `points` are materialized once into a
temporary warehouse (or ``--warehouse DIR`` reuses one). Timed, each run from the same inputs:
``plan_fits`` -> ``scan_table`` of the metrics the fits use -> ``fit_study`` (per law and group: the
global fit, the bootstrap refits, the interval calibration's rollouts, the backtest and rollout
cut-offs with their own refits), which is the work of the asset before it writes its tables and plots.

``--groups G`` (G > 1) also times a study of G groups: the same points G times over, each copy a
group of its own with its losses moved by a seeded 0.3% log-normal scatter, so every group is a
distinct fit of the same size; the time per group is compared with the one-group study's.

Each timed run reports its wall time and the CPU time of its process (the machine's other load
stretches the first, hardly the second). Baseline: ``--baseline REF`` times the same work with the fitting stack (`scaling/fit`,
`scaling/laws`) of git revision REF in a fresh process on the same inputs, alternating with ours.
``--profile`` prints a cProfile summary of one run (the functions with the most cumulative time).

Usage: python benchmarks/bench_fits_step.py [--study example_sweep] [--repeats 5] [--groups 15]
       [--baseline REF] [--warehouse DIR] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SCALING_SHARED_DATA", REPO.parent / "shared" / "data"))


def prepare(study: str, warehouse: Path) -> Path:
    """Materialize the study's inputs of the fits step (raw_sources, runs, points) into ``warehouse``."""
    from dagster import AssetKey, AssetSelection, DagsterInstance, load_assets_from_modules, materialize

    from assets import ASSET_MODULES
    from pipelines.resources import Warehouse

    studies = warehouse / "studies"
    src = REPO / "studies" / f"{study}.toml"
    public = not src.exists()
    if public:
        src = REPO / "studies" / "public" / f"{study}.toml"
    studies.mkdir(parents=True, exist_ok=True)
    text = src.read_text()
    if public:
        text = text.replace("../../../shared/data", str(SHARED))
    (studies / f"{study}.toml").write_text(text)
    if (warehouse / "lake" / "points").exists():
        return studies
    keys = [AssetKey(k) for k in ("raw_sources", "runs", "points", "quarantine")]
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("study", [study])
        materialize(load_assets_from_modules(ASSET_MODULES), partition_key=study, instance=instance,
                    selection=AssetSelection.assets(*keys),
                    resources={"warehouse": Warehouse(root=str(warehouse), studies=str(studies),
                                                      data_roots=[str(SHARED)])})
    return studies


def inputs(study: str, warehouse: Path, studies: Path):
    """What the fits asset reads: the study spec, its metric units and its runs."""
    from pipelines.resources import Warehouse
    from warehouse.lake import metric_units, read_table

    w = Warehouse(root=str(warehouse), studies=str(studies), data_roots=[str(SHARED)])
    spec = w.load(study)
    lake = w.paths.lake
    return spec, lake, metric_units(lake, spec.name), read_table(lake, "runs", spec.name)


def fits_step(spec, lake, metrics, runs, groups: int = 1, seed: int = 0):
    """The fits asset's core work; returns (group fits, failures)."""
    from scaling.plan.fits import plan_fits
    from scaling.plan.run import fit_study
    from scaling.plan.scope import study_scope
    from warehouse.lake import scan_table

    plans = plan_fits(spec, metrics, runs)
    points = scan_table(lake, "points", spec.name, {m for f in plans for m in (f.target, f.x_metric) if m})
    if groups > 1:
        points, runs = replicate(points, runs, groups, seed)
    return fit_study(spec.name, plans, points, runs, study_scope(spec.forecasts))


def replicate(points: pl.DataFrame, runs: pl.DataFrame, groups: int, seed: int):
    """``groups`` copies of the study, each its own group (runs renamed), losses scattered 0.3%."""
    rng = np.random.default_rng(seed)
    pts, rns = [], []
    for g in range(groups):
        noise = np.exp(rng.normal(0.0, 0.003, points.height)) if g else np.ones(points.height)
        name = f"copy={g}"
        pts.append(points.with_columns(group_name=pl.lit(name), run=pl.col("run") + f"@{g}",
                                       value=pl.col("value") * noise, loss_nats=pl.col("loss_nats") * noise))
        rns.append(runs.with_columns(run=pl.col("run") + f"@{g}", group_name=pl.lit(name))
                   if "group_name" in runs.columns else runs.with_columns(run=pl.col("run") + f"@{g}"))
    return pl.concat(pts), pl.concat(rns)


def summary(results) -> dict:
    """Per law: objective and the parameters, and the refits done (for comparing two stacks)."""
    out = {}
    for g in results:
        key = f"{g.fit.law.name}/{g.plan.target}/{g.data.group}"
        out[key] = {"objective": g.fit.objective, "params": g.fit.params,
                    "restarts": g.boot.restarts if g.boot else None,
                    "intervals": {n: list(g.boot.interval(n)) for n in g.boot.param_names} if g.boot else {},
                    "backtest": [[r["predicted"], r["ci_low"], r["ci_high"]] for r in g.backtest_rows]}
    return out


def child(args) -> None:
    """One timed run in this process (the ``--baseline`` side runs this with another stack on its path)."""
    spec, lake, metrics, runs = inputs(args.study, Path(args.warehouse), Path(args.warehouse) / "studies")
    t, c = time.perf_counter(), time.process_time()
    results, failures = fits_step(spec, lake, metrics, runs, groups=args.groups)
    took, cpu = time.perf_counter() - t, time.process_time() - c
    print(json.dumps({"seconds": took, "cpu_seconds": cpu, "failures": [f.message for f in failures], "summary": summary(results)},
                     default=float))


def run_child(study: str, warehouse: Path, groups: int, path: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(path)}
    out = subprocess.run([sys.executable, str(path / "benchmarks" / "bench_fits_step.py"), "--child",
                          "--study", study, "--warehouse", str(warehouse), "--groups", str(groups)],
                         env=env, capture_output=True, text=True, cwd=path)
    if out.returncode != 0:
        raise SystemExit(f"timed run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def baseline_tree(ref: str, into: Path) -> Path:
    """This checkout with `scaling/fit` and `scaling/laws` (and this script) as of ``ref``."""
    tree = into / "baseline"
    shutil.copytree(REPO, tree, ignore=shutil.ignore_patterns(".git", ".warehouse*", "__pycache__", "_simulated"))
    for part in ("scaling/fit", "scaling/laws"):
        shutil.rmtree(tree / part)
        (tree / part).mkdir(parents=True)
        archive = subprocess.run(["git", "archive", ref, part], cwd=REPO, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    shutil.copy(Path(__file__), tree / "benchmarks" / "bench_fits_step.py")
    return tree


def compare(ours: dict, base: dict) -> list[str]:
    """Largest relative differences of objectives and parameters between the two stacks."""
    lines = []
    for key, o in ours.items():
        b = base.get(key)
        if b is None:
            lines.append(f"  {key}: not in the baseline's results")
            continue
        rel = abs(o["objective"] - b["objective"]) / max(abs(b["objective"]), 1e-300)
        prel = max(abs(o["params"][k] - b["params"][k]) / max(abs(b["params"][k]), 1e-12) for k in o["params"])
        ends = [(x, z) for n in o["intervals"] for x, z in zip(o["intervals"][n], b["intervals"].get(n, [np.nan] * 2))]
        ends += [(x, z) for ro, rb in zip(o["backtest"], b["backtest"]) for x, z in zip(ro, rb)]
        irel = max((abs(x - z) / max(abs(z), 1e-12) for x, z in ends), default=0.0)
        lines.append(f"  {key}: objective {o['objective']:.7e} vs {b['objective']:.7e} (rel {rel:.1e}); "
                     f"largest relative difference: parameters {prel:.1e}, interval ends and backtest predictions "
                     f"{irel:.1e} ({len(o['backtest'])} vs {len(b['backtest'])} backtest rows); "
                     f"restarts {o['restarts']} vs {b['restarts']}")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", default="example_sweep")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--groups", type=int, default=1)
    ap.add_argument("--group-repeats", type=int, default=1)
    ap.add_argument("--baseline", default=None, help="a git revision whose fitting stack is the baseline")
    ap.add_argument("--warehouse", default=None)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)

    tmp = Path(tempfile.mkdtemp(prefix="bench_fits_"))
    try:
        warehouse = Path(args.warehouse) if args.warehouse else tmp / "warehouse"
        prepare(args.study, warehouse)
        print(f"study {args.study}: inputs in {'the given warehouse' if args.warehouse else 'a temporary warehouse'}")
        load_before = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
        print(f"load before: {load_before[0]:.2f}, {load_before[1]:.2f}, {load_before[2]:.2f} (1, 5, 15 min) "
              f"on {os.cpu_count()} cores")
        base_tree = baseline_tree(args.baseline, tmp) if args.baseline else None
        ours, base = [], []
        res_o = res_b = None
        for _ in range(args.repeats):  # alternating, each in a fresh process
            res_o = run_child(args.study, warehouse, 1, REPO)
            ours.append((res_o["seconds"], res_o["cpu_seconds"]))
            if base_tree is not None:
                res_b = run_child(args.study, warehouse, 1, base_tree)
                base.append((res_b["seconds"], res_b["cpu_seconds"]))
        med, cpu = (statistics.median(x) for x in zip(*ours))
        laws = sorted(res_o["summary"])
        print(f"fits step, {len(laws)} fits ({', '.join(laws)}), failures {len(res_o['failures'])}")
        print(f"ours: median of {len(ours)}: {med:.2f} s wall (min {min(o[0] for o in ours):.2f}, "
              f"max {max(o[0] for o in ours):.2f}), {cpu:.2f} s CPU of the process; "
              f"runs {', '.join(f'{w:.2f}' for w, _ in ours)}")
        results = [f"RESULT bench=fits_step study={args.study} groups=1 repeats={len(ours)} median_s={med:.3f} "
                   f"cpu_s={cpu:.3f}"]
        if base:
            bmed, bcpu = (statistics.median(x) for x in zip(*base))
            print(f"baseline ({args.baseline}): median of {len(base)}: {bmed:.2f} s wall "
                  f"(min {min(b[0] for b in base):.2f}, max {max(b[0] for b in base):.2f}), {bcpu:.2f} s CPU; "
                  f"ratio baseline / ours = {bmed / med:.1f}x wall, {bcpu / cpu:.1f}x CPU")
            print("results, ours vs baseline:")
            print("\n".join(compare(res_o["summary"], res_b["summary"])))
            results[-1] += (f" baseline={args.baseline} baseline_median_s={bmed:.3f} baseline_cpu_s={bcpu:.3f} "
                            f"speedup={bmed / med:.2f} cpu_speedup={bcpu / cpu:.2f}")
        if args.groups > 1:
            many = [run_child(args.study, warehouse, args.groups, REPO) for _ in range(args.group_repeats)]
            gmed = statistics.median(r["seconds"] for r in many)
            gcpu = statistics.median(r["cpu_seconds"] for r in many)
            print(f"ours, {args.groups} groups: median of {len(many)}: {gmed:.1f} s wall = {gmed / args.groups:.2f} s per "
                  f"group ({gmed / args.groups / med:.2f}x the one-group study's wall time); {gcpu:.1f} s CPU = "
                  f"{gcpu / args.groups:.2f} s per group ({gcpu / args.groups / cpu:.2f}x its CPU time)")
            results.append(f"RESULT bench=fits_step study={args.study} groups={args.groups} repeats={len(many)} "
                           f"median_s={gmed:.2f} per_group_s={gmed / args.groups:.3f} "
                           f"per_group_vs_one_group={gmed / args.groups / med:.2f} cpu_s={gcpu:.2f} "
                           f"cpu_per_group_vs_one_group={gcpu / args.groups / cpu:.2f}")
        if args.profile:
            spec, lake, metrics, runs = inputs(args.study, warehouse, warehouse / "studies")
            prof = cProfile.Profile()
            prof.runcall(fits_step, spec, lake, metrics, runs)
            pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
        load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
        print(f"load after: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f} (1, 5, 15 min)")
        for line in results:
            print(f"{line} load1_before={load_before[0]:.2f} load1_after={load[0]:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
