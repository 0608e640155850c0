"""Accuracy targets rise with compute: a loss law on them is refused with the laws that fit, and the
rising sigmoid in compute recovers a planted one through a real materialization."""

from __future__ import annotations

import numpy as np
import polars as pl

from helpers import query, run_study
from scaling.simulate.results_table import source_block

TRUE = {"floor": 0.25, "ceiling": 0.8, "k": 0.6, "C0": 1e21}


def _write(studies, law):
    rng = np.random.default_rng(5)
    N = np.repeat(np.geomspace(2e7, 3e9, 8), 4)
    D = N * np.tile(np.array([5.0, 20.0, 80.0, 300.0]), 8)
    C = 6 * N * D
    acc = TRUE["floor"] + (TRUE["ceiling"] - TRUE["floor"]) / (1 + np.exp(-TRUE["k"] * np.log(C / TRUE["C0"])))
    acc = acc + rng.normal(0, 0.004, acc.size)
    pl.DataFrame({"run": [f"m{i}" for i in range(N.size)], "N": N, "D": D, "acc": acc}).write_csv(studies / "acc.csv")
    (studies / "acc.toml").write_text(source_block("table", "acc.csv", metrics='acc = { column = "acc", unit = "accuracy" }')
                                      + f'''
[[fits]]
law = "{law}"
target = "acc"
n_resamples = 100

[forecasts]
budgets = [1e23]
''')


def test_a_loss_law_on_an_accuracy_is_refused_with_the_laws_that_fit(tmp_path):
    studies = tmp_path / "studies"
    studies.mkdir()
    _write(studies, "power_law_flops")
    result = run_study(studies, tmp_path / "warehouse", "acc", raise_on_error=False)
    assert not result.success
    text = " ".join(str(e.event_specific_data) for e in result.all_events if e.is_failure)
    assert "is an accuracy, which rises with scale" in text and "accuracy_sigmoid_flops" in text


def test_rising_sigmoid_in_compute_recovers_a_planted_accuracy_curve(tmp_path):
    studies = tmp_path / "studies"
    studies.mkdir()
    _write(studies, "accuracy_sigmoid_flops")
    w = tmp_path / "warehouse"
    run_study(studies, w, "acc")
    p = {r["parameter"]: r for r in query(w, "SELECT * FROM law_fits WHERE study = 'acc'").iter_rows(named=True)}
    assert p["k"]["converged"]
    assert p["ceiling"]["ci_low"] < TRUE["ceiling"] < p["ceiling"]["ci_high"]
    # measured (0.4% noise on 32 runs): k 0.5981 [0.5666, 0.6362] and C0 1.038e21 [8.0e20, 1.2e21] (planted
    # 0.6 and 1e21), each interval holding the planted value
    assert round(p["k"]["estimate"], 4) == 0.5981 and p["k"]["ci_low"] < TRUE["k"] < p["k"]["ci_high"]
    assert f'{np.exp(p["log_C0"]["estimate"]):.3e}' == "1.038e+21"
    assert p["log_C0"]["ci_low"] < np.log(TRUE["C0"]) < p["log_C0"]["ci_high"]
    assert p["floor"]["ci_low"] < TRUE["floor"] < p["floor"]["ci_high"]
    fc = query(w, "SELECT * FROM forecasts WHERE study = 'acc' AND kind = 'compute_optimal'").row(0, named=True)
    truth = TRUE["floor"] + (TRUE["ceiling"] - TRUE["floor"]) / (1 + np.exp(-TRUE["k"] * np.log(1e23 / TRUE["C0"])))
    assert fc["ci_low"] < truth < fc["ci_high"] and fc["predicted"] > fc["ci_low"]
    # the law is meant for accuracies: no `law_not_for_metric`, and it is recommended where it ranks best
    best = query(w, "SELECT law FROM backtest_summary WHERE study = 'acc' AND rank = 1")["law"].to_list()
    assert best == ["accuracy_sigmoid_flops"]
    rows = query(w, "SELECT warnings, recommended FROM forecasts WHERE study = 'acc' "
                    "AND law = 'accuracy_sigmoid_flops'")
    assert rows.height >= 1
    assert not any("law_not_for_metric" in (x or "") for x in rows["warnings"].to_list())
    assert rows["recommended"].all()
