"""A fast generator of a large W&B-style training log, for ingest benchmarks.

Rows are produced in chunks of vectorised numpy and written with pyarrow, so memory stays
bounded (one chunk) at any row count. Runs are consecutive blocks of rows; within a run
every step is logged, tokens = step * batch_tokens, the LR follows warmup + cosine to 10%,
and the loss is a Chinchilla-form curve in tokens,
L = E + A/N**alpha + B/tokens**beta (planted values), times 0.3% log-normal noise.
`eval/web/loss` is logged on every 10th step of a run and blank elsewhere.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from scaling.simulate import planted as P
from scaling.simulate.sweep import transfer

COLUMNS = ("run", "_step", "throughput/total_tokens", "optim/lr", "train/loss", "eval/web/loss")
CHUNK_ROWS = 1 << 20
ROWS_PER_RUN = 50_000
EVAL_EVERY = 10
_STREAM_LARGE = 4
_BATCHES = np.array([262_144, 524_288, 1_048_576, 2_097_152])

SCHEMA = pa.schema([
    ("run", pa.string()),
    ("_step", pa.int64()),
    ("throughput/total_tokens", pa.int64()),
    ("optim/lr", pa.float32()),
    ("train/loss", pa.float32()),
    ("eval/web/loss", pa.float32()),
])


def _run_table(n_runs: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([seed, _STREAM_LARGE])
    params = np.exp(rng.uniform(math.log(2e7), math.log(1e9), n_runs))
    return {
        "params": params,
        "batch": _BATCHES[np.minimum(np.log2(params / 2e7).astype(int) // 2, len(_BATCHES) - 1)],
        "peak": P.PEAK_LR_AT_20M * (params / 2e7) ** P.PEAK_LR_EXPONENT,
    }


def _chunk(start: int, stop: int, rows_per_run: int, runs: dict, names: pa.Array, n_rows: int, seed: int) -> pa.Table:
    g = np.arange(start, stop, dtype=np.int64)
    run = g // rows_per_run
    step = g - run * rows_per_run + 1
    run_steps = np.minimum(rows_per_run, n_rows - run * rows_per_run)
    batch = runs["batch"][run]
    tokens = step * batch
    warmup = np.maximum(1, run_steps // 100)
    progress = np.clip((step - warmup) / np.maximum(run_steps - warmup, 1), 0.0, 1.0)
    cosine = P.COSINE_FINAL_RATIO + (1 - P.COSINE_FINAL_RATIO) * 0.5 * (1 + np.cos(np.pi * progress))
    lr = runs["peak"][run] * np.where(step <= warmup, step / warmup, cosine)
    c = P.CHINCHILLA
    clean = np.minimum(
        c["E"] + c["A"] / runs["params"][run] ** c["alpha"] + c["B"] / tokens.astype(np.float64) ** c["beta"],
        P.uniform_loss(),
    )
    rng = np.random.default_rng([seed, _STREAM_LARGE, start])
    loss = clean * np.exp(rng.normal(0.0, P.NOISE["train_step"], len(g)))
    web = P.EVALS["eval/web/loss"]
    eval_loss = np.minimum(transfer(clean, web["K"], web["kappa"], web["E_y"]), P.uniform_loss()).astype(np.float32)
    logged = (step % EVAL_EVERY == 0) | (step == run_steps)
    return pa.table(
        [
            pa.DictionaryArray.from_arrays(pa.array(run.astype(np.int32)), names).cast(pa.string()),
            pa.array(step),
            pa.array(tokens),
            pa.array(lr.astype(np.float32)),
            pa.array(loss.astype(np.float32)),
            pa.array(eval_loss, mask=~logged),
        ],
        schema=SCHEMA,
    )


def write_large_training_log(
    path: Path, n_rows: int, *, seed: int = 0, fmt: str = "csv", n_runs: int | None = None
) -> None:
    """Write `n_rows` rows of a W&B-style training log to `path` as "csv" or "parquet".

    Columns: run, _step, throughput/total_tokens, optim/lr, train/loss, eval/web/loss.
    `n_runs` defaults to one run per 50,000 rows. Deterministic given the seed.
    """
    if n_rows < 1:
        raise ValueError(f"n_rows must be at least 1, got {n_rows}")
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be 'csv' or 'parquet', got {fmt!r}")
    n_runs = n_runs if n_runs is not None else max(1, math.ceil(n_rows / ROWS_PER_RUN))
    if not 1 <= n_runs <= n_rows:
        raise ValueError(f"n_runs must be between 1 and n_rows={n_rows}, got {n_runs}")
    rows_per_run = math.ceil(n_rows / n_runs)
    n_runs = math.ceil(n_rows / rows_per_run)
    runs = _run_table(n_runs, seed)
    names = pa.array([f"run-{i:05d}" for i in range(n_runs)])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as sink:
        if fmt == "csv":
            sink.write((",".join(COLUMNS) + "\n").encode())  # unquoted, as W&B exports it
            options = pacsv.WriteOptions(include_header=False, quoting_style="none")
            writer = pacsv.CSVWriter(sink, SCHEMA, write_options=options)
        else:
            writer = pq.ParquetWriter(sink, SCHEMA)
        with writer:
            for start in range(0, n_rows, CHUNK_ROWS):
                stop = min(start + CHUNK_ROWS, n_rows)
                writer.write_table(_chunk(start, stop, rows_per_run, runs, names, n_rows, seed))
