"""TensorBoard event files: scalar summaries as rows ``tag, step, wall_time, value``.

Read with tensorboard's own event-file reader (no TensorFlow needed). Both encodings of a
scalar are taken: the legacy ``simple_value`` and the newer tensor-encoded scalar (plugin
``scalars``, a one-element numeric tensor). Other summaries (histograms, images, text) are
not rows; their count is `ReadResult.records_skipped`. ``step`` and ``wall_time`` are those
of the event; ``value`` is Float64 (float32 values are widened exactly). ``_row`` numbers
the scalars 1, 2, ... in file order. No options.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from scaling.errors import SourceError
from scaling.sources.options import check_options
from scaling.sources.result import ReadResult, with_provenance

OPTIONS: dict = {}
_SCHEMA = {"tag": pl.Utf8, "step": pl.Int64, "wall_time": pl.Float64, "value": pl.Float64}


def read(path: Path, options: Mapping[str, Any] | None = None, label: str | None = None) -> ReadResult:
    check_options("tensorboard", options, OPTIONS)
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
    from tensorboard.util import tensor_util

    label = label or Path(path).name
    rows: list[tuple] = []
    skipped = 0
    events = 0
    try:
        for event in LegacyEventFileLoader(str(path)).Load():
            events += 1
            if event.WhichOneof("what") != "summary":
                continue
            for value in event.summary.value:
                kind = value.WhichOneof("value")
                if kind == "simple_value":
                    rows.append((value.tag, event.step, event.wall_time, float(value.simple_value)))
                elif kind == "tensor" and _is_scalar(value):
                    number = tensor_util.make_ndarray(value.tensor).reshape(-1)[0]
                    rows.append((value.tag, event.step, event.wall_time, float(number)))
                else:
                    skipped += 1
    except Exception as exc:  # the reader raises protobuf and OS errors of several kinds
        raise SourceError(f"cannot read as a TensorBoard event file: {exc}", file=label) from None
    if not rows:
        what = f"{events} events, {skipped} non-scalar values" if events else "no events"
        raise SourceError(f"no scalar summaries found ({what}): is this a TensorBoard event file?", file=label)
    frame = pl.DataFrame(rows, schema=_SCHEMA, orient="row")
    return ReadResult(with_provenance(frame, label), records_skipped=skipped)


def _is_scalar(value) -> bool:
    plugin = value.metadata.plugin_data.plugin_name
    tensor = value.tensor
    if plugin not in ("scalars", ""):
        return False
    size = 1
    for dim in tensor.tensor_shape.dim:
        size *= dim.size
    numeric = tensor.dtype in _NUMERIC_DTYPES
    return numeric and size == 1


# DataType enum values (tensorflow/core/framework/types.proto): float, double, int32, uint8,
# int16, int8, int64, bfloat16, uint16, half, uint32, uint64.
_NUMERIC_DTYPES = frozenset({1, 2, 3, 4, 5, 6, 9, 14, 17, 19, 22, 23})
