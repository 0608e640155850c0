"""CSV reading on real W&B exports and published result tables, and on broken copies."""

from __future__ import annotations

import shutil

import polars as pl
import pytest

from scaling.errors import SourceError, SpecError
from scaling.sources import iter_csv_batches, read_file, resolve_location


def _lines(path):
    return path.read_text().splitlines(keepends=True)


def test_ladder_exports_keep_every_row_and_column(shared_data, tmp_path):
    runs = shared_data / "olmo_ladder" / "ladder-runs"
    files = resolve_location("ladder-runs/*.csv", base_dir=runs.parent, cache_dir=tmp_path)
    assert len(files) == len(list(runs.glob("*.csv")))
    for f in files:
        frame = read_file(f.path, "csv", label=f.label)
        lines = _lines(f.path)
        header = lines[0].rstrip("\r\n").split(",")
        assert frame.columns == header + ["_file", "_row"]
        assert frame.height == len(lines) - 1
        assert frame["_row"].to_list() == list(range(2, len(lines) + 1))
        assert frame["_file"].unique().to_list() == [f.label]
        assert all(frame.schema[c] == pl.Utf8 for c in header)
        # Every field comes back exactly as written (empty fields as null).
        last = lines[-1].rstrip("\r\n").split(",")
        assert [v if v is not None else "" for v in frame.row(-1)[: len(header)]] == last


def test_ladder_token_counts_keep_their_formatting(shared_data):
    runs = shared_data / "olmo_ladder" / "ladder-runs"
    as_int = read_file(runs / "190M-1xC-rerun.csv", "csv")["throughput/total_tokens"]
    as_float = read_file(runs / "190M-1xC.csv", "csv")["throughput/total_tokens"]
    assert as_int[-1] == "3812622336"
    assert as_float[-1] == "3812622336.0"
    # One file mixes both spellings; each value stays as written.
    mixed = read_file(runs / "3B-0.5xC.csv", "csv")["throughput/total_tokens"]
    assert mixed.str.ends_with(".0").any() and not mixed.str.ends_with(".0").all()
    raw = [line.split(",")[mixed_index(runs / "3B-0.5xC.csv")] for line in _lines(runs / "3B-0.5xC.csv")[1:]]
    assert mixed.to_list() == raw


def mixed_index(path):
    return _lines(path)[0].rstrip("\r\n").split(",").index("throughput/total_tokens")


def test_7b_target_files_have_no_token_column(shared_data):
    runs = shared_data / "olmo_ladder" / "ladder-runs"
    full = read_file(runs / "peteish7_eval_full.csv", "csv")
    assert "throughput/total_tokens" not in full.columns
    assert {"_step", "batch_size_in_tokens"} <= set(full.columns)
    assert full.width - 2 == 114
    anneal = read_file(runs / "peteish7_eval_anneal.csv", "csv")
    assert anneal.height == 1 and "_step" not in anneal.columns


def test_published_result_tables(shared_data):
    chinchilla = read_file(shared_data / "chinchilla_epoch" / "svg_extracted_data.csv", "csv")
    assert chinchilla.height == 245
    assert chinchilla.columns[:7] == ["x", "y", "color", "Model Size", "Training FLOP", "hex_color", "loss"]
    assert chinchilla["loss"].cast(pl.Float64).max() > 4.9  # the high-loss points Epoch drops are kept

    pythia = read_file(shared_data / "pythia_evals" / "pythia_v1_evals_core.csv", "csv")
    assert pythia.height == 11190
    assert pythia.columns[:8] == ["model", "subset", "num_fewshot", "step", "task", "metric", "value", "stderr"]


@pytest.mark.parametrize("name, rows", [("train_mixture_1m", 512), ("test_mixture_1m", 256), ("test_mixture_60m", 256)])
def test_regmix_mixtures(shared_data, name, rows):
    mixture = read_file(shared_data / "regmix" / "data" / f"{name}.csv", "csv")
    assert mixture.height == rows
    domains = [c for c in mixture.columns if c.startswith("train_the_pile_")]
    assert len(domains) == 17
    totals = mixture.select(pl.sum_horizontal(pl.col(domains).cast(pl.Float64))).to_series()
    assert totals.min() >= 0.996 - 1e-9 and totals.max() <= 1.003 + 1e-9  # 3-decimal rounding, as documented


def test_regmix_losses_join_on_index(shared_data):
    data = shared_data / "regmix" / "data"
    mixture = read_file(data / "train_mixture_1m.csv", "csv")
    loss = read_file(data / "train_pile_loss_1m.csv", "csv")
    assert sorted(mixture["index"].to_list()) == sorted(loss["index"].to_list())
    assert len([c for c in loss.columns if c.endswith("_val_loss")]) == 13


def test_malformed_line_in_a_real_export_is_named(shared_data, tmp_path):
    source = shared_data / "olmo_ladder" / "ladder-runs" / "190M-1xC.csv"
    lines = _lines(source)
    fields = lines[16].rstrip("\n").split(",")
    lines[16] = ",".join(fields[:-2]) + "\n"  # line 17 loses two fields
    broken = tmp_path / "broken.csv"
    broken.write_text("".join(lines))
    with pytest.raises(SourceError) as err:
        read_file(broken, "csv", label="ladder-runs/broken.csv")
    assert err.value.where.line == 17
    assert err.value.where.file == "ladder-runs/broken.csv"
    assert f"expected {len(fields)} fields (as in the header), found {len(fields) - 2}" in str(err.value)
    assert len(fields) == 97


def test_extra_field_and_unterminated_quote_are_named(tmp_path):
    extra = tmp_path / "extra.csv"
    extra.write_text("a,b,c\n1,2,3\n4,5,6,7\n")
    with pytest.raises(SourceError, match="expected 3 fields .*found 4") as err:
        read_file(extra, "csv")
    assert err.value.where.line == 3
    quote = tmp_path / "quote.csv"
    quote.write_text('a,b,c\n1,2,3\n4,"5,6\n7,8,9\n')
    with pytest.raises(SourceError, match="unterminated quoted field") as err:
        read_file(quote, "csv")
    assert err.value.where.line == 3


def test_empty_and_header_only_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(SourceError, match="file is empty"):
        read_file(empty, "csv")
    header = tmp_path / "header.csv"
    header.write_text("step,loss\n")
    with pytest.raises(SourceError, match="no data rows"):
        read_file(header, "csv")


def test_duplicate_and_reserved_header_names(tmp_path):
    dup = tmp_path / "dup.csv"
    dup.write_text("step,loss,loss\n1,2,3\n")
    with pytest.raises(SourceError, match="duplicate column name 'loss' \\(columns 2 and 3\\)"):
        read_file(dup, "csv")
    reserved = tmp_path / "reserved.csv"
    reserved.write_text("step,_row\n1,2\n")
    with pytest.raises(SourceError, match="reserved"):
        read_file(reserved, "csv")


def test_line_numbers_with_quoted_newlines_comments_and_blank_lines(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text('# exported by hand\nrun,note,loss\na,"two\nlines",3.1\n\nb,plain,\n# done\nc,"x,y",2.9\n')
    frame = read_file(path, "csv", options={"comment": "#"})
    assert frame.select("run", "note", "loss", "_row").rows() == [
        ("a", "two\nlines", "3.1", 3),
        ("b", "plain", None, 6),
        ("c", "x,y", "2.9", 8),
    ]
    batches = list(iter_csv_batches(path, 1, options={"comment": "#"}))
    assert pl.concat(batches).equals(frame)


def test_delimiter_option_and_bad_options(shared_data, tmp_path):
    source = shared_data / "chinchilla_epoch" / "svg_extracted_data.csv"
    tabbed = tmp_path / "tabbed.tsv"
    tabbed.write_text(source.read_text().replace(",", "\t"))
    assert read_file(tabbed, "csv", options={"delimiter": "\t"}).drop("_file").equals(
        read_file(source, "csv").drop("_file")
    )
    with pytest.raises(SpecError, match="unknown option 'sep'"):
        read_file(source, "csv", options={"sep": ";"})
    with pytest.raises(SpecError, match="one character"):
        read_file(source, "csv", options={"delimiter": ";;"})


def test_streaming_matches_whole_file_read(shared_data, tmp_path):
    source = shared_data / "olmo_ladder" / "ladder-runs" / "3B-1xC-rerun.csv"
    whole = read_file(source, "csv", label="3B")
    batches = list(iter_csv_batches(source, 50, label="3B"))
    assert [b.height for b in batches] == [50, 50, 50, 50, 2]
    assert pl.concat(batches).equals(whole)


def test_streaming_reports_a_late_bad_line(shared_data, tmp_path):
    source = shared_data / "chinchilla_epoch" / "svg_extracted_data.csv"
    lines = _lines(source)
    lines[200] = lines[200].replace(",", ",,", 1)
    broken = tmp_path / "late.csv"
    broken.write_text("".join(lines))
    with pytest.raises(SourceError, match="expected 7 fields .*found 8") as err:
        for _ in iter_csv_batches(shutil.copy(broken, tmp_path / "late2.csv"), 64):
            pass
    assert err.value.where.line == 201
