"""What is stale: per study, which steps must run again, from recorded input hashes.

A step's input hash (``warehouse.inputs``) is

    sha256(step, code version, the study-file fields the step reads,
           [raw_sources: sha256 and size of every file each source reads],
           input hashes of the upstream steps)

so a changed source file re-runs its study's ``raw_sources`` and everything below it, a changed
``[fits]`` table re-runs ``fits`` and ``forecasts`` only, and a changed line of code re-runs the
steps whose modules import it (directly or not). The code version of a step is the sha256 of the
source of every module of this project the step's asset module imports, transitively (read from
the files, not from what happens to be imported), plus the versions of the numerical libraries.
The same code versions are set on the Dagster assets, so the UI flags assets whose code changed
since they were materialized, and ``raw_sources`` reports its landed files' digest as its data
version, so the UI flags everything below a re-ingested study as stale until it runs.

Nothing here imports Dagster: `scaling run` decides that nothing changed without paying for it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from scaling.errors import ScalingError
from scaling.spec import StudySpec
from warehouse import inputs
from warehouse.config import WarehousePaths

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("scaling", "warehouse", "assets", "pipelines")
LIBRARIES = ("numpy", "scipy", "polars", "duckdb", "pyarrow", "dagster")

# Study-file fields read only below normalization; every other field is an input of ingest.
_DOWNSTREAM_FIELDS = ("description", "raw", "fits", "forecasts", "mixing", "checks", "observational")
_ALL_FIELDS = tuple(f.name for f in dataclasses.fields(StudySpec))
_INGEST_FIELDS = tuple(f for f in _ALL_FIELDS if f not in _DOWNSTREAM_FIELDS and f != "path")


# import statements anywhere in a module (nested ones too: a lazy import is still a dependency)
_IMPORT = re.compile(r"^[ \t]*import[ \t]+([\w., \t]+)", re.M)
_FROM = re.compile(r"^[ \t]*from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#]*)", re.M)


@dataclass(frozen=True)
class Step:
    """One op of the main job: its asset module, upstream steps, lake tables and study-file fields."""

    name: str
    module: str
    upstream: tuple[str, ...]
    tables: tuple[str, ...]
    fields: tuple[str, ...]


# The main job's ops in dependency order (tests check this against the Dagster definitions).
STEPS: dict[str, Step] = {s.name: s for s in (
    Step("raw_sources", "assets.raw", (), ("raw",), ("name", "sources", "simulate")),
    Step("normalized", "assets.normalized", ("raw_sources",), ("runs", "points", "quarantine"), _INGEST_FIELDS),
    Step("mixture_points", "assets.mixture_points", ("raw_sources",), ("mixture_points",), _INGEST_FIELDS),
    # below the ingest, a step waits for both of its parts: the last of them commits it
    Step("fits", "assets.fits", ("normalized", "mixture_points"), ("law_fits", "backtests", "law_draws", "isoflop_optima",
                                                  "observational_components", "observational_families",
                                                  "observational_models"),
         ("name", "fits", "checks", "observational")),
    # forecasts also read `[crossovers]`, which only the study's raw table holds
    Step("forecasts", "assets.forecasts", ("normalized", "fits"), ("forecasts", "backtest_summary", "crossovers"),
         ("name", "forecasts", "flops_convention", "raw")),
    Step("mixing", "assets.mixing", ("normalized", "mixture_points"),
         ("mixing_laws", "optimal_mixtures", "mixing_scores", "mixture_predictions"), ("name", "mixing")),
)}


def _module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for f in (base.with_suffix(".py"), base / "__init__.py"):
        if f.is_file():
            return f
    return None


@lru_cache(maxsize=None)
def _imports(name: str, file: Path) -> tuple[frozenset[str], frozenset[str]]:
    """Modules of this project that `file` (module `name`) imports anywhere in its body, and the
    packages above them (whose ``__init__`` runs on import; hashed, not followed)."""
    package = name if file.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    text = file.read_text()
    for m in _IMPORT.finditer(text):
        found.update(n.split(" as ")[0].strip() for n in m.group(1).split(","))
    for m in _FROM.finditer(text):
        dots, mod = re.match(r"(\.*)(.*)", m.group(1)).groups()
        if dots:
            parts = package.split(".")
            base = ".".join(parts[:len(parts) - len(dots) + 1])
            mod = f"{base}.{mod}" if mod else base
        found.add(mod)
        names = m.group(2).strip("() \n").replace("\\", "")
        found.update(f"{mod}.{n.split(' as ')[0].strip()}" for n in names.split(",") if n.strip())
    follow, parents = set(), set()
    for mod in found:
        parts = mod.split(".")
        if parts[0] not in PACKAGES:
            continue
        if _module_file(mod):
            follow.add(mod)
        parents.update(".".join(parts[:i]) for i in range(1, len(parts)) if _module_file(".".join(parts[:i])))
    return frozenset(follow), frozenset(parents)


@lru_cache(maxsize=None)
def module_closure(module: str) -> tuple[str, ...]:
    """`module`, every project module it imports, transitively, and their packages, sorted."""
    seen, parents, todo = set(), set(), [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        f = _module_file(name)
        if f is not None:
            follow, above = _imports(name, f)
            todo.extend(set(follow) - seen)
            parents |= above
    return tuple(sorted(n for n in seen | parents if _module_file(n)))


@lru_cache(maxsize=None)
def _library_versions() -> dict[str, str]:
    out = {}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "absent"
    return out


@lru_cache(maxsize=None)
def code_version(step: str) -> str:
    """sha256 of the source of every project module the step's asset module imports, and library versions."""
    h = hashlib.sha256()
    for name in module_closure(STEPS[step].module):
        f = _module_file(name)
        h.update(f.relative_to(ROOT).as_posix().encode() + b"\x00" + f.read_bytes() + b"\x00")
    h.update(repr(sorted(_library_versions().items())).encode())
    return h.hexdigest()[:16]


def _spec_fields(spec: StudySpec, fields: tuple[str, ...]) -> dict:
    return {f: (dataclasses.asdict(getattr(spec, f)) if dataclasses.is_dataclass(getattr(spec, f))
                else [dataclasses.asdict(s) if dataclasses.is_dataclass(s) else s for s in getattr(spec, f)]
                if isinstance(getattr(spec, f), tuple) else getattr(spec, f)) for f in fields}


def source_digests(spec: StudySpec, paths: WarehousePaths) -> dict:
    """sha256 and size of every file each source reads (its data and its metadata table)."""
    from warehouse.raw import resolve_metadata, resolve_source

    out = {}
    for src in spec.sources:
        files = resolve_source(spec, src, paths.downloads)
        if src.metadata:
            files["metadata"] = resolve_metadata(spec, src, paths.downloads)
        out[src.name] = {role: [[f.label, f.sha256, f.size] for f in fs] for role, fs in files.items()}
    return out


def step_hashes(spec: StudySpec, paths: WarehousePaths) -> dict[str, str | None]:
    """The current input hash of every step of the study (None: cannot be known before running,
    e.g. a simulated study whose files are not written yet, or an unreachable source)."""
    try:
        digests = source_digests(spec, paths)
    except (ScalingError, OSError):
        digests = None
    out: dict[str, str | None] = {}
    for name, step in STEPS.items():
        ups = [out[u] for u in step.upstream]
        if any(u is None for u in ups) or (name == "raw_sources" and digests is None):
            out[name] = None
            continue
        out[name] = inputs.digest(name, code_version(name), _spec_fields(spec, step.fields),
                                  digests if name == "raw_sources" else None, ups)
    return out


@dataclass
class StudyPlan:
    study: str
    hashes: dict[str, str | None]
    stale: list[str]

    @property
    def up_to_date(self) -> bool:
        return not self.stale


def plan_study(spec: StudySpec, paths: WarehousePaths) -> StudyPlan:
    """Which steps of the study must run: those whose input hash differs from the recorded one,
    whose outputs changed since, or below such a step."""
    hashes = step_hashes(spec, paths)
    stale: list[str] = []
    for name, step in STEPS.items():
        if any(u in stale for u in step.upstream) or not inputs.is_current(
                paths.lake, spec.name, name, hashes[name], step.tables):
            stale.append(name)
    return StudyPlan(spec.name, hashes, stale)


def record_steps(spec: StudySpec, paths: WarehousePaths, done: list[str], plan: StudyPlan) -> None:
    """Record the steps that succeeded in a run. The hashes are recomputed after the run, so a
    source that changed while the run read it is recorded as it is now only if the step's own
    hash from before the run agrees; otherwise the step stays stale and runs again next time."""
    after = step_hashes(spec, paths)
    for name in done:
        h = plan.hashes.get(name)
        if h is None or after.get(name) != h:
            # e.g. a simulated study's files were written by this run: record what it read now
            h = after.get(name) if plan.hashes.get(name) is None else None
        if h is None:
            inputs.drop_record(paths.lake, spec.name, name)
        else:
            inputs.write_record(paths.lake, spec.name, name, h, STEPS[name].tables)
