"""Run a study's ingest into an object-store warehouse and SIGKILL this process just before its n-th write
to the store (an object upload, a pointer PUT or a delete; n = 0: never).

    python kill_publish.py STUDIES WAREHOUSE_URL STUDY N

The store's endpoint and credentials come from the AWS_* variables and the working copy from
SCALING_WAREHOUSE_CACHE. Prints ``ops=<count>`` when it ran to the end, and the writes it made (one per
line, on stderr), so a caller learns the kill points.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[2])]

import s3fs  # noqa: E402

studies, url, study, n = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
WRITES = {"put_object", "create_multipart_upload", "upload_part", "complete_multipart_upload", "delete_object",
          "delete_objects", "copy_object"}
count = 0
trace = []
_call_s3 = s3fs.S3FileSystem._call_s3


async def call_s3(self, method, *args, **kwargs):
    global count
    if method in WRITES:
        count += 1
        trace.append(f"{method} {kwargs.get('Key', '')}".rstrip())
        if count == n:
            os.kill(os.getpid(), signal.SIGKILL)
    return await _call_s3(self, method, *args, **kwargs)


s3fs.S3FileSystem._call_s3 = call_s3

from dagster import AssetSelection  # noqa: E402

from helpers import run_study  # noqa: E402

INGEST = AssetSelection.assets("raw_sources", "runs", "points", "quarantine", "mixture_points")
run_study(studies, url, study, selection=INGEST)
print("\n".join(trace), file=sys.stderr)
print(f"ops={count}", flush=True)
