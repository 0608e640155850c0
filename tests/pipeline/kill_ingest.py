"""Run a study's ingest (raw_sources, runs/points/quarantine, mixture_points) and SIGKILL this process
just before its n-th rename or removal of a file inside the lake (n = 0: never).

    python kill_ingest.py STUDIES WAREHOUSE STUDY N

Prints ``ops=<count>`` when it ran to the end, so a caller learns how many kill points there are.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[2])]

studies, warehouse, study, n = Path(sys.argv[1]), Path(sys.argv[2]).resolve(), sys.argv[3], int(sys.argv[4])
count = 0
trace = []
_replace, _unlink = os.replace, os.unlink


def _point(path) -> None:
    global count
    if isinstance(path, (str, os.PathLike)) and str(Path(path).resolve()).startswith(str(warehouse / "lake")):
        count += 1
        trace.append(str(Path(path).relative_to(warehouse / "lake")))
        if count == n:
            os.kill(os.getpid(), signal.SIGKILL)


def replace(src, dst, *a, **k):
    _point(dst)
    return _replace(src, dst, *a, **k)


def unlink(path, *a, **k):
    if k.get("dir_fd") is None and os.path.lexists(path):  # removing a missing file changes nothing
        _point(path)
    return _unlink(path, *a, **k)


os.replace, os.unlink = replace, unlink

from dagster import AssetSelection  # noqa: E402

from helpers import run_study  # noqa: E402

INGEST = AssetSelection.assets("raw_sources", "runs", "points", "quarantine", "mixture_points")
run_study(studies, warehouse, study, selection=INGEST)
print("\n".join(trace), file=sys.stderr)
print(f"ops={count}", flush=True)
