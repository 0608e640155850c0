"""Backtest summaries, law ranking and recommended forecasts, on real backtests of the simulated study."""

import polars as pl
import pytest

from scaling.fit import backtest
from scaling.forecast import (compute_optimal_forecast, mark_recommended, markdown_table, severe_flags,
                              summarize_backtests)
from scaling.simulate import write_example_data


@pytest.fixture(scope="module")
def backtests(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    write_example_data(out, seed=0)
    ck = pl.read_csv(out / "checkpoints.csv")
    X = {"params": ck["params"].to_numpy().astype(float), "tokens": ck["tokens"].to_numpy().astype(float)}
    y = ck["final_loss"].to_numpy()
    runs = ck["model"].to_list()
    C = 6 * X["params"] * X["tokens"]
    res = {}
    for law in ("chinchilla", "power_law_flops"):
        Xl = {**X, "flops": C}
        res[law] = backtest(law, Xl, y, runs, C, n_resamples=100)
    return res, X, y, C


def _rows(res):
    rows = []
    for law, bt in res.items():
        rows += [{"study": "sim", "group_name": "", "law": law, "target": "loss", **r} for r in bt.rows]
    return rows


def test_rank_by_held_out_error(backtests):
    res, *_ = backtests
    summary = summarize_backtests(_rows(res))
    print("\n" + markdown_table(summary, ["law", "n_heldout", "mean_abs_rel_error", "max_abs_rel_error",
                                         "coverage", "rank", "verdict"],
                                formats={"mean_abs_rel_error": ".2%", "max_abs_rel_error": ".2%", "coverage": ".2f"}))
    assert [s["rank"] for s in summary] == [1, 2]
    errs = {s["law"]: s["mean_abs_rel_error"] for s in summary}
    for law, bt in res.items():
        assert errs[law] == pytest.approx(bt.mean_abs_rel_error, rel=1e-12)
        s = next(s for s in summary if s["law"] == law)
        assert s["n_heldout"] == len(bt.rows) and s["coverage"] == pytest.approx(bt.coverage)
    best = min(errs, key=errs.get)
    assert summary[0]["law"] == best and summary[0]["verdict"] == "best"
    assert summary[0]["study"] == "sim" and summary[0]["group_name"] == ""


def test_flagged_fit_is_demoted_whatever_its_error(backtests):
    res, *_ = backtests
    rows = _rows(res)
    summary = summarize_backtests(rows)
    best = summary[0]["law"]
    demoted = summarize_backtests(rows, fit_flags={best: ["not_converged", "few_points"]})
    top = demoted[0]
    assert top["law"] != best and top["rank"] == 1
    flagged = next(s for s in demoted if s["law"] == best)
    assert flagged["rank"] == 2 and flagged["verdict"] == "poor (fit flagged: not_converged)"
    assert severe_flags(["at_bound:E", "exponent_implausible:alpha"]) == ["exponent_implausible:alpha"]


def test_verdict_poor_when_far_worse_or_uncovered():
    rows = [{"law": "good", "target": "loss", "actual": 2.0, "predicted": 2.02, "covered": True},
            {"law": "bad", "target": "loss", "actual": 2.0, "predicted": 2.4, "covered": True},
            {"law": "narrow", "target": "loss", "actual": 2.0, "predicted": 2.021, "covered": False}]
    s = {r["law"]: r for r in summarize_backtests(rows)}
    assert s["good"]["verdict"] == "best"
    assert s["bad"]["verdict"].startswith("poor (mean error 20.0% vs best 1.0%")
    assert s["narrow"]["verdict"] == "poor (interval covers 0% of held-out points)"
    assert "study" not in s["good"]


def test_recommended_marks_the_best_law(backtests):
    res, X, y, C = backtests
    summary = summarize_backtests(_rows(res))
    fc = compute_optimal_forecast(res["chinchilla"].fit, max_observed_flops=float(C.max()), n_budgets=3)
    rows = [{"study": "sim", "group_name": "", **r} for r in fc]
    rows.append({**rows[0], "law": "power_law_flops"})
    marked = mark_recommended(rows, summary)
    best = summary[0]["law"]
    assert [r["recommended"] for r in marked] == [r["law"] == best for r in rows]
    other = mark_recommended([{**rows[0], "group_name": "other"}], summary)
    assert other[0]["recommended"] is False
