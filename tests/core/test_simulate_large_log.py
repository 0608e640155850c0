"""The large training-log writer: exact row counts, W&B-style columns, deterministic."""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl
import pytest

from scaling.simulate import write_large_training_log
from scaling.simulate.large_log import CHUNK_ROWS

COLUMNS = ["run", "_step", "throughput/total_tokens", "optim/lr", "train/loss", "eval/web/loss"]


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("n_rows,n_runs", [(1, None), (997, 7), (12_345, None), (CHUNK_ROWS + 3, 5)])
def test_writes_exactly_n_rows(tmp_path, n_rows, n_runs):
    path = tmp_path / "log.csv"
    write_large_training_log(path, n_rows, n_runs=n_runs)
    with path.open("rb") as f:
        lines = sum(1 for _ in f)
    assert lines == n_rows + 1
    df = pl.read_csv(path)
    assert df.columns == COLUMNS and df.height == n_rows
    if n_runs is not None:
        assert df["run"].n_unique() == n_runs


def test_rows_look_like_a_training_log(tmp_path):
    path = tmp_path / "log.csv"
    write_large_training_log(path, 30_001, n_runs=3, seed=5)
    assert path.read_text().splitlines()[0] == ",".join(COLUMNS)
    df = pl.read_csv(path)
    per_run = df.group_by("run").agg(
        pl.len().alias("rows"),
        pl.col("_step").min().alias("first"),
        pl.col("_step").max().alias("last"),
        (pl.col("throughput/total_tokens") / pl.col("_step")).n_unique().alias("batch_sizes"),
        (pl.col("throughput/total_tokens") % pl.col("_step")).max().alias("remainder"),
        pl.col("eval/web/loss").count().alias("evals"),
    ).sort("run")
    assert per_run["rows"].sum() == 30_001 and per_run.height == 3
    assert (per_run["first"] == 1).all() and (per_run["last"] == per_run["rows"]).all()
    assert (per_run["batch_sizes"] == 1).all() and (per_run["remainder"] == 0).all()
    assert ((per_run["evals"] >= per_run["rows"] // 10) & (per_run["evals"] <= per_run["rows"] // 10 + 1)).all()
    for run in per_run["run"]:
        one = df.filter(pl.col("run") == run)
        loss = one["train/loss"].to_numpy()
        assert loss[: len(loss) // 10].mean() > loss[-len(loss) // 10 :].mean()
        assert np.all(loss > 0) and np.all(loss <= np.log(50304) * 1.05)
        lr = one["optim/lr"].to_numpy()
        assert lr.argmax() < len(lr) // 50 and lr[-1] == pytest.approx(0.1 * lr.max(), rel=1e-3)


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    for name, seed in (("a.csv", 0), ("b.csv", 0), ("c.csv", 1)):
        write_large_training_log(tmp_path / name, 5_000, seed=seed)
    assert _sha(tmp_path / "a.csv") == _sha(tmp_path / "b.csv") != _sha(tmp_path / "c.csv")


def test_parquet_holds_the_same_rows_as_csv(tmp_path):
    write_large_training_log(tmp_path / "log.csv", 20_000, n_runs=4)
    write_large_training_log(tmp_path / "log.parquet", 20_000, n_runs=4, fmt="parquet")
    csv, parquet = pl.read_csv(tmp_path / "log.csv"), pl.read_parquet(tmp_path / "log.parquet")
    assert parquet.columns == COLUMNS and parquet.height == 20_000
    assert csv.select("run", "_step", "throughput/total_tokens").equals(
        parquet.select("run", "_step", "throughput/total_tokens")
    )
    np.testing.assert_allclose(csv["train/loss"], parquet["train/loss"].cast(pl.Float64), rtol=1e-6)


@pytest.mark.parametrize("kwargs,message", [
    ({"n_rows": 0}, "n_rows"),
    ({"n_rows": 10, "fmt": "xlsx"}, "fmt"),
    ({"n_rows": 10, "n_runs": 11}, "n_runs"),
])
def test_bad_arguments_are_refused(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        write_large_training_log(tmp_path / "log.csv", **kwargs)
