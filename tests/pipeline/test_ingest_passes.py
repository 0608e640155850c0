"""The one-pass ingest: a plain CSV log lands raw and its parsed rows in one scan, and normalizing from those
parsed rows gives exactly what parsing the landed raw text again gives, bad rows and errors included."""

from __future__ import annotations

import polars as pl
import pytest

from scaling.errors import ScalingError, SourceError
from scaling.normalize.points import _keys_increase, normalize_source
from scaling.spec import load_study
from warehouse.ingest import begin_ingest, land_pending
from warehouse.raw import land_source, read_parsed, read_raw

STUDY = """
[study]
name = "passes"
[[sources]]
name = "logs"
kind = "training_logs"
location = "log.csv"
format = "csv"
run = "run"
on_error = "{on_error}"
[sources.columns]
step = "_step"
tokens = "tokens"
learning_rate = "lr"
[sources.metrics]
loss = "train/loss"
eval_loss = "eval/loss"
[sources.defaults]
params = 1000000
{extra}
"""

HEADER = "run,_step,tokens,lr,train/loss,eval/loss\n"


def _rows(run: str, steps, eval_every: int = 3) -> list[str]:
    return [f"{run},{s},{s * 1000},{min(s, 4) * 1e-3 if s < 8 else 1e-3:g},{10 / s:.4f},"
            f"{f'{11 / s:.4f}' if s % eval_every == 0 else ''}\n" for s in steps]


CLEAN = _rows("a", range(1, 11)) + _rows("b", range(1, 9))
CASES = {
    "clean": CLEAN,
    # runs interleaved: no streaming order proof, every key is hashed
    "interleaved": [r for pair in zip(_rows("a", range(1, 9)), _rows("b", range(1, 9))) for r in pair],
    "bad_number_nan_negative": [*CLEAN[:2], "a,3,3000,0.003,abc,\n", "a,4,4000,0.004,nan,\n",
                                "a,5,5000,0.004,-0.5,1.5\n", "a,6,6000,0.004,-inf,2.0\n", *CLEAN[6:]],
    "duplicated_steps": [*CLEAN[:5], CLEAN[2], *CLEAN[5:12], CLEAN[11], *CLEAN[12:]],
    "missing_tokens_bad_step_empty_run": [*CLEAN[:3], "a,4,,0.004,2.5,\n", "a,4.5,4500,0.004,2.4,\n",
                                          ",7,7000,0.004,2.3,\n", *CLEAN[4:]],
}


def _land(tmp_path, lines: list[str], on_error: str, extra: str = ""):
    (tmp_path / "log.csv").write_text(HEADER + "".join(lines))
    (tmp_path / "passes.toml").write_text(STUDY.format(on_error=on_error, extra=extra))
    spec = load_study(tmp_path / "passes.toml")
    src, lake = spec.sources[0], tmp_path / "lake"
    staged = begin_ingest(lake, spec.name)
    landed = land_source(spec, src, lake, tmp_path / "dl", staged=staged)
    land_pending(staged, {src.name: landed.manifest}, expect=("normalized",))
    return spec, src, lake


def _normalized(spec, src, lake, tmp_path, parsed):
    try:
        result = normalize_source(read_raw(lake, spec.name, src.name, lazy=True), src, spec, spill_dir=tmp_path,
                                  parsed=parsed)
    except ScalingError as exc:
        return str(exc)
    try:
        points = result.points.collect().sort("file", "row", "metric")
    finally:
        result.cleanup()
    return points, result.quarantine.sort(pl.all()), result.run_metadata


@pytest.mark.parametrize("on_error", ["fail", "quarantine"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_parsed_while_landing_equals_parsing_the_raw_text(tmp_path, case, on_error):
    spec, src, lake = _land(tmp_path, CASES[case], on_error)
    parsed = read_parsed(lake, spec.name, src)
    assert parsed is not None, "a plain CSV log is parsed in the same pass that lands it"
    # raw keeps every cell as the text it was, each row with its line
    raw = read_raw(lake, spec.name, src.name)
    text = pl.read_csv(tmp_path / "log.csv", infer_schema=False)
    assert raw.select(text.columns).equals(text, null_equal=True)
    assert raw["_row"].to_list() == list(range(2, text.height + 2)) and set(raw["_file"]) == {"log.csv"}
    one_pass = _normalized(spec, src, lake, tmp_path, parsed)
    again = _normalized(spec, src, lake, tmp_path, None)
    if isinstance(again, str):
        assert on_error == "fail" and case != "clean" and case != "interleaved"
        assert one_pass == again and "study 'passes'" in again and "line " in again and "column " in again
        return
    assert not isinstance(one_pass, str)
    for a, b in zip(one_pass, again):
        assert a.schema == b.schema and a.equals(b, null_equal=True)
    points, quarantine, _ = one_pass
    assert points.height > 0 and (quarantine.height == 0) == (case in ("clean", "interleaved"))


def test_points_of_a_clean_log(tmp_path):
    spec, src, lake = _land(tmp_path, CASES["clean"], "fail")
    points, quarantine, _ = _normalized(spec, src, lake, tmp_path, read_parsed(lake, spec.name, src))
    assert quarantine.height == 0
    assert points.height == 18 + 3 + 2  # every train loss, and the eval loss of steps 3, 6, 9 and 3, 6
    final = points.filter(pl.col("is_final")).sort("run", "metric")
    assert final.select("run", "metric", "step").rows() == [("a", "eval_loss", 9), ("a", "loss", 10),
                                                            ("b", "eval_loss", 6), ("b", "loss", 8)]
    # a's learning rate peaks at step 4, drops to a third of it from step 8: cooldown there, not before
    a = points.filter((pl.col("run") == "a") & (pl.col("metric") == "loss")).sort("step")
    assert a["checkpoint"].to_list() == ["mid"] * 7 + ["cooldown"] * 2 + ["end"]
    assert a["flops"].to_list() == [6.0 * 1e6 * s * 1000 for s in range(1, 11)]


def test_negative_infinite_loss_is_quarantined_once(tmp_path):
    """-inf is both non-finite and negative: it used to crash quarantine (an empty second set of bad rows)."""
    lines = [*CLEAN[:4], "a,5,5000,0.004,-inf,\n", *CLEAN[5:]]
    spec, src, lake = _land(tmp_path, lines, "quarantine")
    points, quarantine, _ = _normalized(spec, src, lake, tmp_path, read_parsed(lake, spec.name, src))
    assert quarantine.select("row", "column").rows() == [(6, "train/loss")]
    assert "expected a finite value for loss, got -inf" in quarantine["reason"][0]
    assert points.height == 22 and 6 not in points.filter(pl.col("metric") == "loss")["row"].to_list()


def test_duplicated_step_names_each_metrics_column(tmp_path):
    """A repeated line repeats the train and the eval loss: each set-aside point names its own column."""
    lines = [*CLEAN[:3], CLEAN[2], *CLEAN[3:]]  # a's step 3, which logs both losses, twice
    spec, src, lake = _land(tmp_path, lines, "quarantine")
    _, quarantine, _ = _normalized(spec, src, lake, tmp_path, read_parsed(lake, spec.name, src))
    assert sorted(quarantine.select("row", "column").rows()) == [(5, "eval/loss"), (5, "train/loss")]
    assert all("duplicated step 3 for run 'a'" in r and "first seen at line/row 4" in r for r in quarantine["reason"])


@pytest.mark.parametrize("runs,keys,proven", [
    (["a", "a", "b", "b"], [1.0, 2.0, 1.0, 2.0], True),
    (["a", "a", "b", "b"], [1.0, 1.0, 1.0, 2.0], False),  # a repeated key
    (["a", "b", "a", "b"], [1.0, 1.0, 2.0, 2.0], False),  # interleaved runs: not one block each
    (["a", "a", "a"], [1.0, 3.0, 2.0], False),  # out of order
    (["a", "a"], [1.0, None], False),  # a null key beside another
    (["a", "a"], [float("nan"), 2.0], False),
    (["a", "a"], [-0.0, 0.0], False),  # one key when grouped
    (["a", "b"], [None, 1.0], True),  # a single point per run and metric cannot repeat
])
def test_streaming_order_check_proves_keys_unique_only_when_they_are(runs, keys, proven):
    frame = pl.LazyFrame({"_run": runs, "metric": ["loss"] * len(runs), "_key": keys},
                         schema={"_run": pl.Utf8, "metric": pl.Utf8, "_key": pl.Float64})
    blocks, unordered = frame.select(_keys_increase(pl.col("_key"))).collect(engine="streaming").row(0)
    groups = len(set(runs))
    assert (unordered == 0 and blocks == groups) == proven
    if proven:
        assert frame.collect().select(pl.struct("_run", "metric", "_key").is_unique().all()).item()


def test_ragged_lines_whose_fields_add_up_are_still_found(tmp_path):
    """One line short of a field and another with one too many: the total count of delimiters matches the
    header's, and the error still names the first bad line."""
    lines = [*CLEAN[:3], "a,4,4000,0.004,2.5\n", "a,5,5000,0.004,2.0,,\n", *CLEAN[5:]]
    with pytest.raises(SourceError) as info:
        _land(tmp_path, lines, "fail")
    assert info.value.where.file == "log.csv" and info.value.where.line == 5


MEASURE_NORMALIZE = r"""
import json, resource, sys
from pathlib import Path
from scaling.simulate import write_large_training_log
from scaling.spec import load_study
from scaling.normalize.points import normalize_source
from warehouse.ingest import begin_ingest, ingest_part, land_pending
from warehouse.raw import land_source, read_parsed, read_raw
from warehouse.tables import POINTS
folder = Path(sys.argv[1])
write_large_training_log(folder / "log.csv", int(sys.argv[2]), seed=0)
spec = load_study(folder / "passes.toml")
src, lake = spec.sources[0], folder / "lake"
staged = begin_ingest(lake, spec.name)
land_pending(staged, {src.name: land_source(spec, src, lake, folder / "dl", force=True, staged=staged).manifest},
             expect=("normalized",))
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
landed = peak()
with ingest_part(lake, spec.name, "normalized") as part:
    result = normalize_source(read_raw(lake, spec.name, src.name, lazy=True), src, spec, spill_dir=folder,
                              parsed=read_parsed(lake, spec.name, src))
    part.sink("points", POINTS.conform(result.points))
    result.cleanup()
print(json.dumps({"landed_mb": landed, "normalized_mb": peak()}))
"""


def test_normalizing_a_large_log_holds_none_of_it_in_memory(tmp_path):
    """Normalizing streams: after landing a 6-million-row log, normalizing it and writing its 6.6 million
    points raise the process's peak memory by less than 50 MB. (The check that keys increase, run beside
    an aggregate, or over a scan the engine shared between the metrics' branches, held every point: about
    22 bytes a point.)"""
    import json
    import subprocess
    import sys

    from helpers_paths import REPO

    (tmp_path / "passes.toml").write_text(STUDY.format(on_error="fail", extra="").replace(
        'tokens = "tokens"', 'tokens = "throughput/total_tokens"').replace('"lr"', '"optim/lr"')
        .replace('"eval/loss"', '"eval/web/loss"'))  # the columns of `write_large_training_log`
    done = subprocess.run([sys.executable, "-c", MEASURE_NORMALIZE, str(tmp_path), "6000000"], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["normalized_mb"] - got["landed_mb"] < 50, got
