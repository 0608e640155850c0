"""JSON lines, JSON, lm-eval results, text logs, Parquet and TensorBoard on real files."""

from __future__ import annotations

import json
import re

import polars as pl
import pytest

from scaling.errors import SourceError, SpecError
from scaling.sources import FORMATS, read_file, read_file_with_stats

# --- JSON lines -------------------------------------------------------------------------


def test_gemstone_jsonl_keeps_json_types(shared_data):
    for path in sorted((shared_data / "gemstone" / "wandb_dfs").glob("*.jsonl")):
        frame = read_file(path, "jsonl")
        raw = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        assert frame.height == len(raw)
        assert frame["_row"].to_list() == list(range(1, len(raw) + 1))
        for name, value in raw[-1].items():
            assert frame[name][-1] == value
    hot = read_file(shared_data / "gemstone" / "wandb_dfs" / "wandb_df_for_fitting_hot.jsonl", "jsonl")
    assert hot.height == 220
    assert hot.schema["tokens"] == pl.Int64 and hot.schema["final_loss"] == pl.Float64
    assert hot.schema["run_name"] == pl.Utf8


@pytest.mark.parametrize(
    "name, rows",
    [("hot", 220), ("cool_end", 199), ("cool_begin", 199), ("slim_chinchilla", 28),
     ("hot_sampled_like_chinchilla", 24), ("hot_100b+_477", 3850)],  # row counts stated in SOURCE.md
)
def test_gemstone_jsonl_row_counts(shared_data, name, rows):
    frame = read_file(shared_data / "gemstone" / "wandb_dfs" / f"wandb_df_for_fitting_{name}.jsonl", "jsonl")
    assert frame.height == rows


def test_bad_jsonl_line_is_named(shared_data, tmp_path):
    lines = (shared_data / "gemstone" / "wandb_dfs" / "wandb_df_for_fitting_hot.jsonl").read_text().splitlines()
    lines[9] = lines[9][:-5]
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join(lines) + "\n")
    with pytest.raises(SourceError, match="invalid JSON") as err:
        read_file(broken, "jsonl", label="wandb/broken.jsonl")
    assert err.value.where.line == 10 and err.value.where.file == "wandb/broken.jsonl"


def test_jsonl_mixed_kinds_nested_values_and_empty_file(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"step": 1, "loss": 2, "cfg": {"lr": 0.1}}\n\n{"step": 2, "loss": 1.5, "tags": [1, 2]}\n')
    frame = read_file(path, "jsonl")
    assert frame.schema["loss"] == pl.Float64 and frame["loss"].to_list() == [2.0, 1.5]
    assert frame["cfg"].to_list() == ['{"lr":0.1}', None]
    assert frame["tags"].to_list() == [None, "[1,2]"]
    assert frame["_row"].to_list() == [1, 3]
    path.write_text('{"step": 1, "loss": 2.5}\n{"step": 2, "loss": "nan?"}\n')
    with pytest.raises(SourceError, match=r"expected a number \(as at line 1\), got 'nan\?'") as err:
        read_file(path, "jsonl")
    assert err.value.where.line == 2 and err.value.where.column == "loss"
    path.write_text("")
    with pytest.raises(SourceError, match="no data rows"):
        read_file(path, "jsonl")


# --- JSON documents -----------------------------------------------------------------------


def test_json_object_of_column_arrays(shared_data):
    path = shared_data / "gemstone" / "our_val_loss_data.json"
    frame = read_file(path, "json")
    raw = json.loads(path.read_text())
    assert frame.height == len(raw["hf_name"])
    for name, values in raw.items():
        assert frame[name].to_list() == values


def test_json_pandas_column_objects(shared_data):
    path = next(iter(sorted((shared_data / "gemstone" / "parameters").rglob("approach_3_parameters_*hot.json"))))
    raw = json.loads(path.read_text())
    frame = read_file(path, "json")
    assert frame["_index"].to_list() == list(raw["loss"])
    assert json.loads(frame["exponents"][0]) == raw["exponents"]["0"]
    assert frame["irreducible_error"][0] == raw["irreducible_error"]["0"]


def test_json_array_of_records_and_bad_shapes(tmp_path):
    path = tmp_path / "records.json"
    path.write_text('[{"n": 1, "loss": 3.0}, {"n": 2, "loss": 2.5}]')
    assert read_file(path, "json").select("n", "loss", "_row").rows() == [(1, 3.0, 1), (2, 2.5, 2)]
    path.write_text('{"a": [1, 2], "b": [1]}')
    with pytest.raises(SourceError, match="column has 1 values, but column 'a' has 2") as err:
        read_file(path, "json")
    assert err.value.where.column == "b"
    path.write_text("42")
    with pytest.raises(SourceError, match="expected an array of records"):
        read_file(path, "json")


# --- lm-eval-harness results --------------------------------------------------------------

STANDARD = r"(?P<size>[^_]+?)(?:-5shot)?_step(?P<step>\d+)\.json"


def _core_rows(shared_data, model, subset, step):
    core = read_file(shared_data / "pythia_evals" / "pythia_v1_evals_core.csv", "csv")
    return core.filter(
        (pl.col("model") == model) & (pl.col("subset") == subset) & (pl.col("step") == str(step))
    )


@pytest.mark.parametrize(
    "relative, model, subset, shots",
    [
        ("pythia-160m/five-shot/160m-5shot_step3000.json", "pythia-160m", "five-shot", 5),
        ("pythia-160m/zero-shot/160m_step143000.json", "pythia-160m", "zero-shot", 0),
    ],
)
def test_lm_eval_standard_folders_match_the_flattened_table(shared_data, relative, model, subset, shots):
    path = shared_data / "pythia_evals" / "raw_lm_eval_json" / relative
    frame = read_file(path, "lm_eval", options={"filename_pattern": STANDARD}, label=relative)
    step = int(re.search(r"step(\d+)", relative).group(1))
    assert frame["size"].unique().to_list() == ["160m"]
    assert frame["step"].unique().to_list() == [str(step)]
    assert frame["num_fewshot"].unique().to_list() == [shots]
    raw = json.loads(path.read_text())["results"]
    assert frame.height == sum(1 for metrics in raw.values() for k in metrics if not k.endswith("_stderr"))
    assert frame.columns[:2] == ["size", "step"] and frame.columns[-2:] == ["_file", "_row"]
    _check_against_core(frame, _core_rows(shared_data, model, subset, step))


def test_lm_eval_batch_size_ablation(shared_data):
    relative = "pythia-410m-0.5MtokBS/410m-0.5MtokBS_step412000.json"
    path = shared_data / "pythia_evals" / "raw_lm_eval_json" / relative
    pattern = r"(?P<model>[^/]+)/(?P<size>[^_/]+)_step(?P<step>\d+)\.json"
    frame = read_file(path, "lm_eval", options={"filename_pattern": pattern}, label=relative)
    groups = frame.select("model", "size", "step").unique().rows()
    assert groups == [("pythia-410m-0.5MtokBS", "410m-0.5MtokBS", "412000")]
    assert frame["num_fewshot"].unique().to_list() == [5]
    _check_against_core(frame, _core_rows(shared_data, "pythia-410m-0.5MtokBS", "root", 412000))


def _check_against_core(frame, core):
    assert core.height > 0
    by_key = {(t, m): (v, s) for t, m, v, s in frame.select("task", "metric", "value", "stderr").rows()}
    for task, metric, value, stderr in core.select("task", "metric", "value", "stderr").rows():
        if task == "mmlu_avg":
            mmlu = frame.filter(pl.col("task").str.starts_with("hendrycksTest-") & (pl.col("metric") == metric))
            assert mmlu.height == 57
            assert mmlu["value"].mean() == pytest.approx(float(value), rel=1e-12)
            continue
        assert by_key[(task, metric)][0] == float(value)
        if stderr:
            assert by_key[(task, metric)][1] == float(stderr)


def test_lm_eval_file_name_must_match_the_pattern(shared_data):
    path = shared_data / "pythia_evals" / "raw_lm_eval_json" / "pythia-160m" / "zero-shot" / "160m_step3000.json"
    pattern = r"(?P<size>.+)-5shot_step(?P<step>\d+)\.json"
    with pytest.raises(SourceError, match="file name does not match filename_pattern") as err:
        read_file(path, "lm_eval", options={"filename_pattern": pattern}, label="zero-shot/160m_step3000.json")
    assert err.value.where.file == "zero-shot/160m_step3000.json"
    assert pattern in str(err.value)


def test_lm_eval_newer_layout_and_bad_values(tmp_path):
    path = tmp_path / "results.json"
    document = {
        "results": {
            "arc_easy": {
                "alias": "arc_easy",
                "acc,none": 0.7,
                "acc_stderr,none": 0.01,
                "acc_norm,none": 0.6,
                "acc_norm_stderr,none": "N/A",
            }
        },
        "n-shot": {"arc_easy": 0},
        "config": {"model": "hf", "batch_size": "auto"},
    }
    path.write_text(json.dumps(document))
    frame = read_file(path, "lm_eval")
    assert frame.select("task", "metric", "filter", "value", "stderr", "num_fewshot").rows() == [
        ("arc_easy", "acc", "none", 0.7, 0.01, 0),
        ("arc_easy", "acc_norm", "none", 0.6, None, 0),
    ]
    assert frame["config_batch_size"].to_list() == ["auto", "auto"]
    document["results"]["arc_easy"]["acc,none"] = "high"
    path.write_text(json.dumps(document))
    with pytest.raises(SourceError, match="task 'arc_easy': expected a number, got 'high'"):
        read_file(path, "lm_eval")
    with pytest.raises(SpecError, match="taken by a column"):
        read_file(path, "lm_eval", options={"filename_pattern": r"(?P<task>.+)\.json"})


# --- text logs ------------------------------------------------------------------------------

MODDED = [
    r"^step:(?P<step>\d+)/(?P<steps>\d+) train_loss:(?P<train_loss>\S+) train_time:(?P<train_time_ms>\d+)ms",
    r"^step:(?P<step>\d+)/(?P<steps>\d+) val_loss:(?P<val_loss>\S+) train_time:(?P<train_time_ms>\d+)ms",
]
LLMC = [r"^s:(?P<step>\d+) trl:(?P<train_loss>\S+)$", r"^s:(?P<step>\d+) tel:(?P<val_loss>\S+)$"]


@pytest.mark.parametrize(
    "run, steps, final_val_loss",
    [
        ("Optimizers_adam", 5100, "3.3406"),
        ("Optimizers_shampoo", 5100, "3.2858"),
        ("Optimizers_soap", 5100, "3.2752"),
        ("Optimizers_muon", 5100, "3.2760"),
        ("ScaleUp1B", 20344, "2.7737"),
    ],
)
def test_modded_nanogpt_logs(shared_data, run, steps, final_val_loss):
    (path,) = (shared_data / "nanogpt_speedrun_logs").glob(f"*_{run}_*.log")
    result = read_file_with_stats(path, "text", options={"patterns": MODDED})
    frame = result.frame
    train = frame.filter(pl.col("_pattern") == 0)
    val = frame.filter(pl.col("_pattern") == 1)
    assert train["step"].cast(pl.Int64).to_list() == list(range(1, steps + 1))
    assert val["val_loss"][-1] == final_val_loss and val["step"][-1] == str(steps)
    assert val["step"].cast(pl.Int64).to_list()[:-1] == list(range(0, steps, 125))[: val.height - 1]
    assert frame["steps"].unique().to_list() == [str(steps)]
    lines = path.read_text().splitlines()
    assert frame.height + result.lines_skipped == len(lines)
    last = frame.row(-1, named=True)
    assert lines[last["_row"] - 1].startswith(f"step:{steps}/{steps} val_loss:{final_val_loss}")


def test_llmc_log(shared_data):
    path = shared_data / "nanogpt_speedrun_logs" / "2024-06-06_AdamW_llmc_format.log"
    result = read_file_with_stats(path, "text", options={"patterns": LLMC})
    lines = path.read_text().splitlines()
    frame = result.frame
    assert frame.height == sum(1 for line in lines if line.startswith("s:"))
    train = frame.filter(pl.col("_pattern") == 0)["step"].cast(pl.Int64).to_list()
    assert train == list(range(0, len(train)))
    val = frame.filter(pl.col("_pattern") == 1)
    assert val["step"][0] == "0" and val["val_loss"][0] == lines[0].split("tel:")[1]
    assert set(val["step"].cast(pl.Int64)) <= set(train) | {len(train)}
    for row in frame.sample(50, seed=1).iter_rows(named=True):
        assert lines[row["_row"] - 1].startswith(f"s:{row['step']} ")


def test_text_pattern_errors(shared_data, tmp_path):
    path = shared_data / "nanogpt_speedrun_logs" / "2024-06-06_AdamW_llmc_format.log"
    with pytest.raises(SpecError, match="no named groups"):
        read_file(path, "text", options={"pattern": r"^s:(\d+) trl:(\S+)"})
    with pytest.raises(SpecError, match="not a valid regex"):
        read_file(path, "text", options={"pattern": r"^s:(?P<step>\d+"})
    with pytest.raises(SpecError, match="exactly one of"):
        read_file(path, "text", options={})
    with pytest.raises(SourceError, match="no line matches") as err:
        read_file(path, "text", options={"pattern": r"^step:(?P<step>\d+)"}, label="adamw.log")
    assert err.value.where.file == "adamw.log"


# --- Parquet, TensorBoard, registry --------------------------------------------------------


def test_parquet_light_eval(shared_data):
    path = shared_data / "gemstone" / "benchmarks" / "light_eval_df.parquet"
    frame = read_file(path, "parquet")
    stored = pl.read_parquet(path)
    assert frame.height == stored.height == 770
    assert frame.drop("_file", "_row").equals(stored)
    assert frame["_row"].to_list() == list(range(1, 771))


def test_tensorboard_scalars_both_encodings(tmp_path):
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary import Writer
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = Writer(str(tmp_path / "new"))
    for step, loss in enumerate([3.5, 3.25, 3.0]):
        writer.add_scalar("train/loss", loss, step=step * 10, wall_time=1000.0 + step)
    writer.close()
    legacy = EventFileWriter(str(tmp_path / "old"))
    for step in range(2):
        scalar = summary_pb2.Summary.Value(tag="lr", simple_value=0.5 * (step + 1))
        histogram = summary_pb2.Summary.Value(tag="weights", histo=summary_pb2.HistogramProto(min=0, max=1, num=3))
        summary = summary_pb2.Summary(value=[scalar, histogram])
        legacy.add_event(event_pb2.Event(wall_time=2000.0 + step, step=step, summary=summary))
    legacy.close()

    (new_file,) = (tmp_path / "new").iterdir()
    new = read_file_with_stats(new_file, "tensorboard")
    assert new.frame.select("tag", "step", "wall_time", "value").rows() == [
        ("train/loss", 0, 1000.0, 3.5),
        ("train/loss", 10, 1001.0, 3.25),
        ("train/loss", 20, 1002.0, 3.0),
    ]
    assert new.records_skipped == 0 and new.frame["_row"].to_list() == [1, 2, 3]
    (old_file,) = (tmp_path / "old").iterdir()
    old = read_file_with_stats(old_file, "tensorboard")
    assert old.frame.select("tag", "step", "value").rows() == [("lr", 0, 0.5), ("lr", 1, 1.0)]
    assert old.records_skipped == 2


def test_tensorboard_rejects_other_files(shared_data):
    with pytest.raises(SourceError, match="TensorBoard event file"):
        read_file(shared_data / "chinchilla_epoch" / "svg_extracted_data.csv", "tensorboard")


def test_format_registry(shared_data):
    assert set(FORMATS) == {"csv", "jsonl", "json", "lm_eval", "text", "parquet", "tensorboard"}
    with pytest.raises(SpecError, match="unknown format 'xlsx'"):
        read_file(shared_data / "chinchilla_epoch" / "svg_extracted_data.csv", "xlsx")
    with pytest.raises(SpecError, match="unknown option"):
        read_file(shared_data / "gemstone" / "benchmarks" / "light_eval_df.parquet", "parquet", options={"columns": []})


# --- encodings ------------------------------------------------------------------------------


def test_jsonl_and_text_logs_in_latin1_read_with_the_encoding_option(tmp_path):
    """Like CSV, JSON lines and text logs take ``encoding``; without it a latin-1 byte is a located error."""
    jsonl = tmp_path / "runs.jsonl"
    jsonl.write_bytes('{"run": "caf\u00e9", "loss": 3.5}\n\n{"run": "na\u00efve", "loss": 3.25}\n'.encode("latin-1"))
    with pytest.raises(SourceError, match=r"line 1: not valid UTF-8.*options\.encoding") as err:
        read_file(jsonl, "jsonl")
    assert err.value.where.file == "runs.jsonl"
    frame = read_file(jsonl, "jsonl", options={"encoding": "latin-1"})
    assert frame.select("run", "loss", "_row").rows() == [("caf\u00e9", 3.5, 1), ("na\u00efve", 3.25, 3)]

    log = tmp_path / "train.log"
    log.write_bytes("step 1 loss 3.5 \u00b5s\nnoise \u00e9\nstep 2 loss 3.25 \u00b5s\n".encode("latin-1"))
    pattern = r"step (?P<step>\d+) loss (?P<loss>\S+) (?P<unit>\S+)"
    with pytest.raises(SourceError, match=r"line 1: not valid UTF-8.*options\.encoding"):
        read_file(log, "text", options={"pattern": pattern})
    frame = read_file(log, "text", options={"pattern": pattern, "encoding": "latin-1"})
    assert frame.select("step", "loss", "unit", "_row").rows() == [("1", "3.5", "\u00b5s", 1), ("2", "3.25", "\u00b5s", 3)]

    for fmt, options in (("jsonl", {}), ("text", {"pattern": pattern})):
        with pytest.raises(SpecError, match="unknown encoding 'klingon'"):
            read_file(log, fmt, options={**options, "encoding": "klingon"})
        with pytest.raises(SpecError, match="one byte per newline"):  # lines are split on the byte \n
            read_file(log, fmt, options={**options, "encoding": "utf-16"})
