"""Study-file expressions: only row-wise column expressions pass, and they evaluate as written."""

import polars as pl
import pytest

from scaling.errors import SpecError
from scaling.expressions import parse_column_expression
from scaling.spec import load_study


FRAME = pl.DataFrame({"run": ["a", "peteish7", "b_rerun", "c"], "flops": [1e22, 1e22, 1e20, 1e19],
                      "x": [1, 2, 1, 3]})


@pytest.mark.parametrize("text, runs", [
    ("run NOT LIKE 'peteish%' AND run NOT LIKE '%rerun'", ["a", "c"]),
    ("flops >= 1e21", ["a", "peteish7"]),
    ("log10(flops) > 21", ["a", "peteish7"]),
    ("log(flops) >= 20", ["a", "peteish7", "b_rerun"]),
    ("ln(flops) < 46", ["c"]),
    ("x IN (1, 3) AND NOT (run = 'a')", ["b_rerun", "c"]),
    ("x BETWEEN 2 AND 3", ["peteish7", "c"]),
    ("CASE WHEN x = 1 THEN flops ELSE 0 END > 1e21", ["a"]),
    ("abs(x - 2) = 1 AND greatest(x, 2) = 3", ["c"]),
])
def test_allowed_expressions_evaluate_as_written(text, runs):
    expr = parse_column_expression(text, field="filter")
    assert FRAME.filter(expr.to_polars())["run"].to_list() == runs


@pytest.mark.parametrize("text, says", [
    ("x IN (SELECT * FROM read_csv('/etc/passwd'))", "a subquery is not allowed"),
    ("(SELECT count(*) FROM read_csv('/etc/passwd')) > 0", "a subquery is not allowed"),
    ("read_csv('/etc/passwd') IS NULL", "function 'READ_CSV' is not allowed"),
    ("getenv('HOME') = 'x'", "function 'getenv' is not allowed"),
    ("x = 1; DROP TABLE raw", "expected one expression, got 2 statements"),
    ("t.x = 1", "qualified column 't.x'"),
    ("*", "'*' is not allowed"),
    ("x ==== 1", "cannot parse expression"),
    ("", "got an empty string"),
    ("x" * 3000, "at most 2000"),
])
def test_rejected_expressions_say_what_and_where(text, says):
    with pytest.raises(SpecError) as err:
        parse_column_expression(text, field="fits[0].filter", study="s")
    message = str(err.value)
    assert says in message
    assert message.startswith("study 's', field 'fits[0].filter': ")
    assert "root:" not in message  # nothing was read


def test_unknown_columns_are_named_with_the_known_ones():
    with pytest.raises(SpecError, match=r"reads unknown column\(s\) \['y'\]; known columns: \['run', 'x'\]"):
        parse_column_expression("y > 1 AND x = 2", field="filter", columns={"run", "x"})


def test_a_study_file_with_a_file_reading_filter_is_rejected_at_load(tmp_path):
    text = """
[[sources]]
name = "logs"
kind = "training_logs"
location = "logs/*.csv"
format = "csv"
filter = "run IN (SELECT column0 FROM read_csv('/etc/passwd'))"
[sources.columns]
step = "step"
[sources.metrics]
loss = "loss"
"""
    (tmp_path / "toy.toml").write_text(text)
    with pytest.raises(SpecError, match="source 'logs', field 'filter': a subquery is not allowed"):
        load_study(tmp_path / "toy.toml")


def test_row_wise_mean_is_arithmetic_and_null_when_an_argument_is():
    import polars as pl

    expr = parse_column_expression('1 - mean("mmlu/a", b, c * 2)', field="computed.x.expr")
    assert expr.columns == frozenset({"mmlu/a", "b", "c"})
    frame = pl.DataFrame({"mmlu/a": [0.25, 0.5], "b": [0.5, None], "c": [0.125, 0.1]})
    assert frame.select(expr.to_polars().alias("v"))["v"].to_list() == [1 - (0.25 + 0.5 + 0.25) / 3, None]
