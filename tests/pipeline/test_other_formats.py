"""Parquet and TensorBoard sources through a real materialization."""

from __future__ import annotations

import pytest

from helpers import query, run_study
from scaling.simulate import write_large_training_log

STUDY = """
[study]
name = "formats"

[[sources]]
name = "pq"
kind = "training_logs"
location = "logs.parquet"
format = "parquet"
run = "run"
[sources.columns]
step = "_step"
tokens = "throughput/total_tokens"
learning_rate = "optim/lr"
[sources.metrics]
loss = "train/loss"
[sources.defaults]
params = 124000000

[[sources]]
name = "tb"
kind = "training_logs"
location = "tb/events.*"
format = "tensorboard"
layout = "long"
run = "tb-run"
[sources.columns]
step = "step"
metric = "tag"
value = "value"
[sources.defaults]
params = 124000000
batch_tokens = 524288
"""


def test_parquet_and_tensorboard_sources(tmp_path):
    from tensorboard.summary import Writer

    studies = tmp_path / "studies"
    studies.mkdir()
    write_large_training_log(studies / "logs.parquet", 20_000, seed=3, fmt="parquet", n_runs=4)
    writer = Writer(str(studies / "tb"))
    for step in range(1, 51):
        writer.add_scalar("train/loss", 4.0 / step**0.1, step=step * 10)
    writer.close()
    (studies / "formats.toml").write_text(STUDY)
    run_study(studies, tmp_path / "w", "formats", selection=["raw_sources", "runs", "points", "quarantine"])
    runs = query(tmp_path / "w", "SELECT source, count(*) AS n FROM runs GROUP BY source ORDER BY source")
    assert runs.rows() == [("pq", 4), ("tb", 1)]
    tb = query(tmp_path / "w", "SELECT step, tokens, value FROM points WHERE source = 'tb' ORDER BY step")
    assert tb.height == 50 and tb["tokens"][0] == 10 * 524288
    assert tb["value"][-1] == pytest.approx(4.0 / 50**0.1, rel=1e-6)
    pq = query(tmp_path / "w", "SELECT count(*) AS n FROM points WHERE source = 'pq'")
    assert pq["n"][0] == 20_000
