"""The warehouse on an S3-compatible object store: a local working copy, and one pointer per study as commit point.

``SCALING_WAREHOUSE=s3://bucket/prefix`` puts the warehouse in a bucket (the endpoint, credentials and region
come from the standard ``AWS_*`` variables, so MinIO, R2 and other S3-compatible stores work). Object stores
have no rename, so the lake's rename-based switch (`warehouse.ingest`) becomes write-new-then-switch:

- every partition file a commit switches in is uploaded first, under a key no other version uses
  (``lake/<table>/study=<s>/[source=<x>/]<ingest id>.parquet``);
- then the study's pointer ``lake/_state/study=<s>/head.json`` is PUT: it lists the current key of every
  partition of the study, the commit record, the pending ingest, the plots and the steps' input records.
  That one PUT is the commit point. It is conditional (``If-Match`` on the pointer's ETag, ``If-None-Match``
  for a new one), so two steps of a study committing at once on different machines never lose each
  other's tables: the loser re-reads the pointer and applies its change again;
- the versions a switch replaced are deleted once they have been retired for `grace_seconds` (readers
  that read the previous pointer can still read them), and objects no pointer lists (uploads of a run
  killed before its switch) are deleted once a day old, when the study's next ingest starts.

A reader that follows the pointers (`scaling sql`, `pointer_files`) therefore never sees a half-written
partition, and a run killed at any point leaves the previous pointer, so the previous tables.

Every step works on a local *working copy* of the warehouse (a folder laid out like a local warehouse,
``SCALING_WAREHOUSE_CACHE``, by default under the user's cache folder), exactly as on a local warehouse:
`pull` makes a study's working copy equal to its pointer before a step runs (downloading only the files
whose key changed), and `warehouse.ingest` publishes every commit as above before switching the working
copy. A step on another process or machine thus starts from the committed state of the store. The
working copy's ``origin.json`` names the store it mirrors; a folder without one is a plain local warehouse
and nothing here runs for it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import shutil
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from fsspec.asyn import sync

from scaling.errors import StorageError
from warehouse.lake import atomic_write_json, inside_folder, inside_lake, read_manifest, remove_partition

ORIGIN = "origin.json"  # in the working copy's root: the store it mirrors
POINTER = "head.json"
SYNCED = "synced.json"  # in a study's state folder: which store keys the working copy holds
FORMAT = 1
SCHEMES = ("s3",)


def is_store_url(value: str | os.PathLike | None) -> bool:
    return isinstance(value, str) and "://" in value


def parse_url(url: str) -> tuple[str, str]:
    """(bucket, prefix) of ``s3://bucket/prefix``; anything else is a clear error."""
    scheme, _, rest = url.partition("://")
    if scheme not in SCHEMES:
        raise StorageError(f"SCALING_WAREHOUSE={url!r}: only s3:// object stores are supported (S3-compatible "
                           "stores such as MinIO or R2 through AWS_ENDPOINT_URL); a local warehouse is a folder path")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise StorageError(f"SCALING_WAREHOUSE={url!r}: expected s3://bucket/prefix")
    return bucket, prefix.strip("/")


def working_copy(url: str) -> Path:
    """The local working copy of the warehouse at `url` (created, and bound to `url`, on first use)."""
    bucket, prefix = parse_url(url)
    url = f"s3://{bucket}/{prefix}".rstrip("/")
    given = os.environ.get("SCALING_WAREHOUSE_CACHE")
    if given:
        root = Path(given).expanduser().resolve()
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        root = (base / "scaling-studies" / "warehouses" / hashlib.sha256(url.encode()).hexdigest()[:16]).resolve()
    origin = read_manifest(root / ORIGIN)
    if origin is None:
        atomic_write_json({"url": url}, root / ORIGIN)
    elif origin.get("url") != url:
        raise StorageError(f"the working copy {root} mirrors {origin.get('url')}, not {url}; set "
                           "SCALING_WAREHOUSE_CACHE to another folder")
    return root


_STORES: dict[tuple[Path, int], "Store | None"] = {}


def store_for(lake: Path) -> "Store | None":
    """The object store a lake folder is the working copy of, or None for a plain local warehouse."""
    key = (Path(lake), os.getpid())  # a forked process opens its own client
    if key not in _STORES:
        origin = read_manifest(Path(lake).parent / ORIGIN)
        _STORES[key] = Store(origin["url"]) if origin and origin.get("url") else None
    return _STORES[key]


def grace_seconds() -> float:
    """How long a replaced version stays readable after the switch (readers of the previous pointer)."""
    return float(os.environ.get("SCALING_WAREHOUSE_GRACE", 300))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _precondition_failed(exc: BaseException) -> bool:
    """A conditional PUT lost the race (412), or the store saw two at once (409 on AWS)."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    code = getattr(cause, "response", {}).get("Error", {}).get("Code")
    return code in ("PreconditionFailed", "ConditionalRequestConflict")


class Store:
    """A warehouse's bucket and prefix, through s3fs (fsspec): objects, and the studies' pointers."""

    def __init__(self, url: str):
        import s3fs

        self.url = url
        self.bucket, self.prefix = parse_url(url)
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        self.fs = s3fs.S3FileSystem(use_listings_cache=False, skip_instance_cache=True,
                                    client_kwargs={"endpoint_url": endpoint} if endpoint else {})

    # --- objects -------------------------------------------------------------------------------------

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def path(self, rel: str) -> str:
        """``bucket/prefix/rel``, as s3fs names an object."""
        return f"{self.bucket}/{self.key(rel)}"

    def uri(self, rel: str) -> str:
        return f"s3://{self.path(rel)}"

    def _error(self, what: str, exc: BaseException) -> StorageError:
        return StorageError(f"object store {self.url}: cannot {what}: {type(exc).__name__}: {exc}")

    def upload(self, local: Path, rel: str) -> None:
        try:
            self.fs.put_file(str(local), self.path(rel))
        except OSError as exc:
            raise self._error(f"upload {rel}", exc) from None

    def download(self, rel: str, local: Path) -> None:
        """Fetch an object into `local` through a temporary file beside it (a reader never sees half of it)."""
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{local.name}.{uuid.uuid4().hex}.tmp")
        try:
            self.fs.get_file(self.path(rel), str(tmp))
            os.replace(tmp, local)
        except OSError as exc:
            raise self._error(f"download {rel}", exc) from None
        finally:
            tmp.unlink(missing_ok=True)

    def delete(self, rels: list[str]) -> None:
        if rels:
            try:
                self.fs.rm([self.path(r) for r in rels])
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise self._error("delete old versions", exc) from None

    def listing(self, rel: str) -> dict[str, dict]:
        """Every object under `rel` (relative key -> its info, with ``LastModified``)."""
        base = self.path(rel).rstrip("/")
        try:
            found = self.fs.find(base, detail=True)
        except FileNotFoundError:
            return {}
        cut = len(self.path("")) if self.prefix else len(self.bucket) + 1
        return {p[cut:].lstrip("/"): info for p, info in found.items()}

    # --- pointers ------------------------------------------------------------------------------------

    @staticmethod
    def pointer_rel(study: str) -> str:
        return f"lake/_state/study={study}/{POINTER}"

    def read_pointer(self, study: str) -> tuple[dict | None, str | None]:
        """The study's pointer and its ETag (None, None when the study has none)."""

        async def get():
            resp = await self.fs._call_s3("get_object", Bucket=self.bucket, Key=self.key(self.pointer_rel(study)))
            async with resp["Body"] as body:
                return await body.read(), resp["ETag"]

        try:
            data, etag = sync(self.fs.loop, get)
        except FileNotFoundError:
            return None, None
        except OSError as exc:
            raise self._error(f"read the pointer of study {study!r}", exc) from None
        return json.loads(data), etag

    def update(self, study: str, change: Callable[[dict], dict]) -> dict:
        """Apply `change` to the study's pointer and PUT it only if nobody else did in between; on a lost
        race re-read and apply again. `change` gets a copy and may raise to abort. Returns the new pointer."""
        for attempt in range(50):
            current, etag = self.read_pointer(study)
            new = change(copy.deepcopy(current) if current else empty_pointer(study))
            new["updated_at"] = _now()
            body = json.dumps(new, indent=1, sort_keys=True, default=str).encode()
            condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            try:
                sync(self.fs.loop, self.fs._call_s3, "put_object", Bucket=self.bucket,
                     Key=self.key(self.pointer_rel(study)), Body=body, ContentType="application/json", **condition)
                return new
            except OSError as exc:
                if not _precondition_failed(exc):
                    raise self._error(f"switch the pointer of study {study!r}", exc) from None
            time.sleep(random.uniform(0.05, 0.2) * min(attempt + 1, 10))
        raise StorageError(f"object store {self.url}: the pointer of study {study!r} kept changing; gave up")

    def delete_pointer(self, study: str) -> None:
        self.delete([self.pointer_rel(study)])

    def studies(self) -> list[str]:
        """Every study with a pointer."""
        try:
            names = self.fs.ls(self.path("lake/_state"), detail=False)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise self._error("list the studies", exc) from None
        studies = [n.rstrip("/").rsplit("/", 1)[-1] for n in names]
        return sorted(s[len("study="):] for s in studies if s.startswith("study="))


def empty_pointer(study: str) -> dict:
    return {"format": FORMAT, "study": study, "commit": {}, "files": {}, "pending": None, "plots": {},
            "inputs": {}, "retired": []}


def data_key(target: str, version: str) -> str:
    """The key of one version of a partition file: its folder in the lake and the version's id."""
    folder = target.rsplit("/", 1)[0]
    return f"lake/{folder}/{version}.parquet"


def _retire(ptr: dict, old: dict | None, new: dict | None) -> None:
    if old and (new is None or old["key"] != new["key"]):
        ptr["retired"].append([old["key"], time.time()])


def _collect(ptr: dict) -> list[str]:
    """Remove from `ptr` the retired versions past their grace period; return their keys (to delete)."""
    limit = time.time() - grace_seconds()
    due = [k for k, t in ptr["retired"] if t <= limit]
    ptr["retired"] = [[k, t] for k, t in ptr["retired"] if t > limit]
    live = {e["key"] for e in ptr["files"].values()} | {e["key"] for e in ptr["plots"].values()}
    return [k for k in due if k not in live]


# --- publishing the working copy's changes ---------------------------------------------------------------

def upload_staged(store: Store, lake: Path, study: str, ingest: str, ops: dict[str, str | None]) -> dict:
    """Upload every staged file of `ops` (partition -> staged file, or None to remove) under its version's
    key; returns partition -> pointer entry (or None)."""
    out = {}
    for target, staged in sorted(ops.items()):
        if staged is None:
            out[target] = None
            continue
        f = inside_lake(lake, lake / staged)
        st = f.stat()
        key = data_key(target, ingest)
        store.upload(f, key)
        out[target] = {"key": key, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "ingest": ingest}
    return out


def _switch(ptr: dict, entries: dict[str, dict | None]) -> None:
    for target, entry in entries.items():
        _retire(ptr, ptr["files"].get(target), entry)
        if entry is None:
            ptr["files"].pop(target, None)
        else:
            ptr["files"][target] = entry


def commit(store: Store, lake: Path, study: str, ingest: str, entries: dict[str, dict | None],
           extra: dict[str, Any]) -> dict:
    """Switch `entries` (already uploaded) into the study's pointer with the commit record's `extra`."""
    doomed: list[str] = []

    def change(ptr: dict) -> dict:
        _switch(ptr, entries)
        ptr["commit"] = {**ptr["commit"], **extra, "ingest": ingest, "committed_at": _now()}
        doomed[:] = _collect(ptr)
        return ptr

    ptr = store.update(study, change)
    store.delete(doomed)
    mirror(store, lake, study, ptr)
    return ptr


def begin_pending(store: Store, lake: Path, study: str) -> None:
    """A new ingest starts: forget any earlier pending one, and delete objects no pointer lists that a
    killed run left a day or more ago."""
    from warehouse.ingest import STALE_SECONDS

    def change(ptr: dict) -> dict:
        ptr["pending"] = None
        return ptr

    ptr = store.update(study, change)
    sweep(store, study, ptr, older_than=STALE_SECONDS)
    mirror(store, lake, study, ptr)


def set_pending(store: Store, lake: Path, study: str, record: dict, entries: dict[str, dict | None]) -> None:
    """Record the landed raw sources as the study's pending ingest."""
    def change(ptr: dict) -> dict:
        ptr["pending"] = {**{k: v for k, v in record.items() if k != "ops"}, "ops": entries}
        return ptr

    mirror(store, lake, study, store.update(study, change))


def add_part(store: Store, lake: Path, study: str, ingest: str, part: str, entries: dict[str, dict | None],
             parts_default: tuple[str, ...]) -> bool:
    """Add one step's staged tables to the pending ingest; the last expected part switches the whole ingest
    in. Returns whether this call committed it."""
    doomed: list[str] = []
    done = [False]

    def change(ptr: dict) -> dict:
        pending = ptr.get("pending")
        if not pending or pending["ingest"] != ingest:
            raise RuntimeError(f"study {study!r}: a newer ingest started while {part} ran; its tables were "
                               "not committed")
        pending["ops"].update(entries)
        pending["parts"] = sorted(set(pending["parts"]) | {part})
        done[0] = set(pending.get("expect", parts_default)) <= set(pending["parts"])
        if done[0]:
            _switch(ptr, pending["ops"])
            extra = {"raw": pending["raw"], **({"file": pending["file"]} if pending.get("file") else {})}
            ptr["commit"] = {**ptr["commit"], **extra, "ingest": ingest, "committed_at": _now()}
            ptr["pending"] = None
            doomed[:] = _collect(ptr)
        return ptr

    ptr = store.update(study, change)
    store.delete(doomed)
    mirror(store, lake, study, ptr)
    return done[0]


def put_record(lake: Path, study: str, step: str, record: dict | None) -> None:
    """Publish (or with None remove) a step's input record (`warehouse.inputs`)."""
    store = store_for(lake)
    if store is None:
        return

    def change(ptr: dict) -> dict:
        if record is None:
            ptr["inputs"].pop(step, None)
        else:
            ptr["inputs"][step] = record
        return ptr

    store.update(study, change)


def publish_plots(root: Path, study: str) -> None:
    """Upload the study's plots this working copy changed (new versions under fresh keys) and switch them
    into the pointer; plots it removed leave the pointer."""
    lake = root / "lake"
    store = store_for(lake)
    if store is None:
        return
    from warehouse.ingest import state_dir, study_lock

    folder = root / "plots" / study
    with study_lock(lake, study):
        synced = _synced(lake, study)
        known = synced["plots"]
        local = {f.name: f for f in sorted(folder.glob("*.png"))} if folder.is_dir() else {}
        changes: dict[str, dict | None] = {}
        for name, f in local.items():
            st = f.stat()
            if known.get(name) and (known[name]["size"], known[name]["mtime_ns"]) == (st.st_size, st.st_mtime_ns):
                continue
            key = f"plots/{study}/{f.stem}.{uuid.uuid4().hex[:12]}.png"
            store.upload(f, key)
            changes[name] = {"key": key, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        for name in known:
            if name not in local:
                changes[name] = None
        if not changes:
            return
        doomed: list[str] = []

        def change(ptr: dict) -> dict:
            for name, entry in changes.items():
                _retire(ptr, ptr["plots"].get(name), entry)
                if entry is None:
                    ptr["plots"].pop(name, None)
                else:
                    ptr["plots"][name] = entry
            doomed[:] = _collect(ptr)
            return ptr

        store.update(study, change)
        store.delete(doomed)
        for name, entry in changes.items():
            if entry is None:
                known.pop(name, None)
            else:
                known[name] = entry
        atomic_write_json(synced, state_dir(lake, study) / SYNCED)


def remove(store: Store, lake: Path, study: str) -> None:
    """Remove a study from the store: its pointer first (readers stop seeing it), then its objects."""
    from warehouse.tables import TABLES

    store.delete_pointer(study)
    keys = []
    for folder in [*TABLES, "raw"]:
        keys += list(store.listing(f"lake/{folder}/study={study}"))
    keys += list(store.listing(f"plots/{study}"))
    store.delete(keys)


def sweep(store: Store, study: str, ptr: dict, older_than: float) -> list[str]:
    """Delete the study's objects that its pointer does not list (uploads of killed runs) and that are
    older than `older_than` seconds (younger ones may belong to a run about to switch them in)."""
    from warehouse.tables import TABLES

    live = {e["key"] for e in ptr["files"].values()} | {e["key"] for e in ptr["plots"].values()}
    live |= {k for k, _ in ptr["retired"]}
    if ptr.get("pending"):
        live |= {e["key"] for e in ptr["pending"]["ops"].values() if e}
    limit = time.time() - older_than
    doomed = []
    for folder in [*[f"lake/{t}/study={study}" for t in [*TABLES, "raw"]], f"plots/{study}"]:
        for key, info in store.listing(folder).items():
            when = info.get("LastModified")
            stamp = when.timestamp() if hasattr(when, "timestamp") else 0.0
            if key not in live and stamp <= limit:
                doomed.append(key)
    store.delete(doomed)
    return doomed


# --- the working copy -----------------------------------------------------------------------------------

def _synced(lake: Path, study: str) -> dict:
    from warehouse.ingest import state_dir

    found = read_manifest(state_dir(lake, study) / SYNCED) or {}
    return {"files": found.get("files", {}), "plots": found.get("plots", {})}


def _local_partitions(lake: Path, study: str) -> list[str]:
    from warehouse.ingest import STATE

    return sorted(f.relative_to(lake).as_posix() for f in lake.glob(f"*/study={study}/**/data.parquet")
                  if f.relative_to(lake).parts[0] != STATE)


def _place(store: Store, lake: Path, study: str, target: str, entry: dict, dest: Path) -> None:
    """Put the version `entry` of a partition at `dest`: this copy's own staged file when it has it, else
    a download; with the writer's modification time, so input records' fingerprints agree everywhere."""
    from warehouse.ingest import state_dir

    staged = state_dir(lake, study) / "staging" / entry.get("ingest", "") / target
    dest.parent.mkdir(parents=True, exist_ok=True)
    if entry.get("ingest") and staged.is_file() and staged.stat().st_size == entry["size"]:
        os.replace(staged, dest)
    else:
        store.download(entry["key"], dest)
    os.utime(dest, ns=(entry["mtime_ns"], entry["mtime_ns"]))


def mirror(store: Store, lake: Path, study: str, ptr: dict | None) -> None:
    """Make the study's working copy what `ptr` says (caller holds the study lock): its partitions, commit
    record, pending ingest (with its staged files), input records and plots. Plots this copy changed and
    has not published yet are left alone."""
    from warehouse.ingest import state_dir
    from warehouse.inputs import RECORDS

    ptr = ptr or empty_pointer(study)
    state = state_dir(lake, study)
    synced = _synced(lake, study)
    for target, entry in ptr["files"].items():
        dest = inside_lake(lake, lake / target)
        if synced["files"].get(target) == entry["key"] and dest.is_file() and dest.stat().st_size == entry["size"]:
            continue
        _place(store, lake, study, target, entry, dest)
        synced["files"][target] = entry["key"]
    for target in _local_partitions(lake, study):
        if target not in ptr["files"]:
            remove_partition(lake, target)
    synced["files"] = {t: k for t, k in synced["files"].items() if t in ptr["files"]}

    if ptr["commit"]:
        atomic_write_json(ptr["commit"], state / "commit.json")
    else:
        (state / "commit.json").unlink(missing_ok=True)
    pending = ptr.get("pending")
    if pending:
        ops = {}
        for target, entry in pending["ops"].items():
            if entry is None:
                ops[target] = None
                continue
            staged = state / "staging" / pending["ingest"] / target
            ops[target] = staged.relative_to(lake).as_posix()
            if not (staged.is_file() and staged.stat().st_size == entry["size"]):
                store.download(entry["key"], inside_lake(lake, staged))
                os.utime(staged, ns=(entry["mtime_ns"], entry["mtime_ns"]))
        atomic_write_json({**pending, "ops": ops}, state / "pending.json")
    else:
        (state / "pending.json").unlink(missing_ok=True)
    staging = state / "staging"
    ingests = {pending["ingest"]} if pending else set()
    for folder in (staging.iterdir() if staging.is_dir() else []):
        # staging folders of switched ingests (this copy adopted their files); others may be running here
        if folder.name not in ingests and folder.name == ptr["commit"].get("ingest"):
            shutil.rmtree(folder, ignore_errors=True)

    # plot and step names come from the pointer: each file they name must stay in the study's folder of them
    records = lake / RECORDS / f"study={study}"
    for step, record in ptr["inputs"].items():
        f = inside_folder(records, records / f"{step}.json", f"the input records of study {study!r}")
        if read_manifest(f) != record:
            atomic_write_json(record, f)
    for f in (records.glob("*.json") if records.is_dir() else []):
        if f.stem not in ptr["inputs"]:
            f.unlink(missing_ok=True)

    plots = lake.parent / "plots" / study
    for name, entry in ptr["plots"].items():
        f = inside_folder(plots, plots / name, f"the plots of study {study!r}")
        known = synced["plots"].get(name)
        if known and known["key"] == entry["key"] and f.is_file():
            continue
        if f.is_file() and not (known and (known["size"], known["mtime_ns"]) == (f.stat().st_size,
                                                                                 f.stat().st_mtime_ns)):
            continue  # written here and not yet published: its writer publishes it
        store.download(entry["key"], f)
        os.utime(f, ns=(entry["mtime_ns"], entry["mtime_ns"]))
        synced["plots"][name] = entry
    for name, known in list(synced["plots"].items()):
        if name in ptr["plots"]:
            continue
        f = inside_folder(plots, plots / name, f"the plots of study {study!r}")
        if f.is_file() and (known["size"], known["mtime_ns"]) == (f.stat().st_size, f.stat().st_mtime_ns):
            f.unlink()
        synced["plots"].pop(name)
    atomic_write_json(synced, state / SYNCED)


def pull(lake: Path, study: str) -> bool:
    """Bring the study's working copy up to its pointer in the store (a no-op for a local warehouse).
    Returns whether the lake is a working copy of a store."""
    store = store_for(lake)
    if store is None:
        return False
    from warehouse.ingest import study_lock

    ptr, _ = store.read_pointer(study)
    with study_lock(lake, study):
        mirror(store, lake, study, ptr)
    return True


def pull_all(lake: Path) -> list[str]:
    """Pull every study of the store, and drop from the working copy the studies the store no longer has.
    Returns the store's studies (none for a local warehouse)."""
    store = store_for(lake)
    if store is None:
        return []
    from warehouse.ingest import STATE, state_dir
    from warehouse.inputs import RECORDS

    studies = store.studies()
    for study in studies:
        pull(lake, study)
    for state in sorted((lake / STATE).glob("study=*")):
        name = state.name[len("study="):]
        if name in studies or not (state / SYNCED).exists():
            continue
        for d in lake.glob(f"*/study={name}"):  # removed from the store by another machine
            if d.parts[-2] not in (STATE, RECORDS):
                shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(lake / RECORDS / f"study={name}", ignore_errors=True)
        shutil.rmtree(state_dir(lake, name), ignore_errors=True)
    return studies


def pointer_files(store: Store) -> dict[str, list[str]]:
    """For every table folder of the lake (``raw`` too), the URIs of the current partition files of every
    study, read from one consistent read of each study's pointer."""
    out: dict[str, list[str]] = {}
    for study in store.studies():
        ptr, _ = store.read_pointer(study)
        for target, entry in sorted((ptr or {}).get("files", {}).items()):
            out.setdefault(target.split("/", 1)[0], []).append(store.uri(entry["key"]))
    return out


def publish_files(root: Path, files: list[Path]) -> None:
    """Upload files of the working copy outside the lake (reports) to the same place in the store, each
    whole (one PUT per object: a reader gets the previous or the new file)."""
    store = store_for(root / "lake")
    if store is None:
        return
    for f in files:
        store.upload(f, f.relative_to(root).as_posix())


def read_only_filesystem(store: Store):
    """An fsspec filesystem over the store that DuckDB can read through and never write through."""
    import s3fs

    class ReadOnlyS3(s3fs.S3FileSystem):
        def _open(self, path, mode="rb", **kwargs):
            if mode != "rb":
                raise PermissionError(f"the warehouse store is read-only here: cannot open {path} for writing")
            return super()._open(path, mode=mode, **kwargs)

        def rm(self, *args, **kwargs):
            raise PermissionError("the warehouse store is read-only here")

        def mkdir(self, *args, **kwargs):
            raise PermissionError("the warehouse store is read-only here")

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return ReadOnlyS3(use_listings_cache=False, skip_instance_cache=True,
                      client_kwargs={"endpoint_url": endpoint} if endpoint else {})
