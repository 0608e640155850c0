"""Tied parameters, rescaled inputs and the over-training law from a study file, through a real
materialization, with forecasts indexed by model size and tokens per parameter."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from helpers import query, run_study
from scaling.simulate.results_table import source_block

TRUE = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.34, "beta": 0.34}


@pytest.fixture(scope="module")
def tied(tmp_path_factory):
    root = tmp_path_factory.mktemp("tied")
    studies, warehouse = root / "studies", root / "warehouse"
    studies.mkdir()
    rng = np.random.default_rng(7)
    N = np.repeat(np.geomspace(5e7, 3e9, 6), 6)
    D = N * np.tile(np.geomspace(5, 500, 6), 6)  # 5 to 500 tokens per parameter: over-trained runs too
    L = (TRUE["E"] + TRUE["A"] * N ** -TRUE["alpha"] + TRUE["B"] * D ** -TRUE["beta"]) * np.exp(rng.normal(0, 2e-3, N.size))
    pl.DataFrame({"run": [f"r{i}" for i in range(N.size)], "N": N, "D": D, "loss": L}).write_csv(studies / "grid.csv")
    (studies / "tied.toml").write_text(source_block("grid", "grid.csv") + '''
[[fits]]
law = "chinchilla"
target = "loss"
n_resamples = 60
holdout_fraction = 0

[[fits]]
law = "chinchilla"
target = "loss"
tie = { beta = "alpha" }
n_resamples = 60
holdout_fraction = 0

[[fits]]
law = "chinchilla"
target = "loss"
scale = { params = 1e6, tokens = 1e9 }
n_resamples = 60
holdout_fraction = 0

[[fits]]
law = "overtraining"
target = "loss"
n_resamples = 60
holdout_fraction = 0

[forecasts]
budgets = [1e22]
targets = [ { name = "1B x M=640", params = 1e9, tokens_per_param = 640 } ]
''')
    run_study(studies, warehouse, "tied")
    return warehouse


def _params(w, law):
    rows = query(w, "SELECT * FROM law_fits WHERE study = 'tied' AND law = ?", [law])
    return {r["parameter"]: r for r in rows.iter_rows(named=True)}


def test_tied_exponent_has_one_value_and_one_interval(tied):
    p = _params(tied, "chinchilla[beta=alpha]")
    assert p["beta"]["estimate"] == p["alpha"]["estimate"]
    assert (p["beta"]["ci_low"], p["beta"]["ci_high"]) == (p["alpha"]["ci_low"], p["alpha"]["ci_high"])
    assert p["alpha"]["ci_low"] < TRUE["alpha"] < p["alpha"]["ci_high"]
    assert p["a_params_exponent"]["estimate"] == pytest.approx(0.5)
    assert '"tie": {"beta": "alpha"}' in p["alpha"]["settings"]
    draws = query(tied, "SELECT parameter, count(*) AS n FROM law_draws WHERE law = 'chinchilla[beta=alpha]' "
                        "GROUP BY parameter ORDER BY parameter")
    assert draws["parameter"].to_list() == ["A", "B", "E", "alpha", "beta"] and draws["n"].n_unique() == 1


def test_rescaled_fit_reports_scaled_coefficients_and_forecasts_the_same(tied):
    plain, scaled = _params(tied, "chinchilla"), _params(tied, "chinchilla[params/1e+06,tokens/1e+09]")
    for k in ("E", "alpha", "beta"):
        assert scaled[k]["estimate"] == pytest.approx(plain[k]["estimate"], rel=1e-3)
    assert scaled["A"]["estimate"] == pytest.approx(plain["A"]["estimate"] * 1e6 ** -plain["alpha"]["estimate"],
                                                    rel=1e-2)
    fc = query(tied, "SELECT law, kind, params, tokens, predicted FROM forecasts WHERE study = 'tied' "
                     "AND law IN ('chinchilla', 'chinchilla[params/1e+06,tokens/1e+09]') ORDER BY kind, law")
    a, b = fc.filter(pl.col("kind") == "compute_optimal").iter_rows(named=True)
    assert a["predicted"] == pytest.approx(b["predicted"], rel=1e-3)
    assert a["params"] == pytest.approx(b["params"], rel=2e-2)


def test_overtraining_law_forecasts_a_target_indexed_by_size_and_tokens_per_param(tied):
    ot, tie = _params(tied, "overtraining"), _params(tied, "chinchilla[beta=alpha]")
    assert 2 * ot["eta"]["estimate"] == pytest.approx(tie["alpha"]["estimate"], rel=2e-3)
    assert ot["eta"]["ci_low"] < TRUE["alpha"] / 2 < ot["eta"]["ci_high"]
    row = query(tied, "SELECT * FROM forecasts WHERE law = 'overtraining' AND kind = 'target_run'").row(0, named=True)
    assert row["name"] == "1B x M=640" and row["tokens"] == pytest.approx(6.4e11)
    truth = TRUE["E"] + TRUE["A"] * 1e9 ** -TRUE["alpha"] + TRUE["B"] * 6.4e11 ** -TRUE["beta"]
    assert row["ci_low"] < truth < row["ci_high"]
    assert row["predicted"] == pytest.approx(truth, rel=5e-3)
