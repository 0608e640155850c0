"""Arms compared by scaling: where two groups' fitted laws cross, with an interval, and which arm
is better at named budgets, through a real materialization of planted arms."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from helpers import query, run_study
from scaling.simulate.results_table import source_block
from scaling.laws import LAWS, compute_optimal

ARMS = {"a": {"E": 2.0, "A": 400.0, "B": 400.0, "alpha": 0.3, "beta": 0.3},   # better at small compute
        "b": {"E": 1.6, "A": 800.0, "B": 800.0, "alpha": 0.3, "beta": 0.3}}   # better at large compute


def _optimal_loss(p, C):
    n, d = compute_optimal(p, C)
    return LAWS["chinchilla"].predict(p, {"params": n, "tokens": d})


def _true_crossing():
    C = np.geomspace(1e20, 1e24, 20001)
    d = _optimal_loss(ARMS["a"], C) - _optimal_loss(ARMS["b"], C)
    return float(C[np.flatnonzero(np.sign(d[:-1]) != np.sign(d[1:]))[0]])


@pytest.fixture(scope="module")
def arms(tmp_path_factory):
    root = tmp_path_factory.mktemp("crossovers")
    studies, warehouse = root / "studies", root / "warehouse"
    studies.mkdir()
    rng = np.random.default_rng(11)
    sources = []
    for arm, p in ARMS.items():
        N = np.repeat(np.geomspace(5e7, 3e9, 6), 6)
        D = N * np.tile(np.geomspace(5, 100, 6), 6)
        L = LAWS["chinchilla"].predict(p, {"params": N, "tokens": D}) * np.exp(rng.normal(0, 2e-3, N.size))
        pl.DataFrame({"run": [f"{arm}{i}" for i in range(N.size)], "N": N, "D": D, "loss": L}).write_csv(
            studies / f"{arm}.csv")
        sources.append(source_block(arm, f"{arm}.csv", labels={"optimizer": arm}))
    (studies / "arms.toml").write_text('[study]\ngroup_by = ["optimizer"]\n' + "".join(sources) + '''
[[fits]]
law = "chinchilla"
target = "loss"
n_resamples = 200
holdout_fraction = 0

[crossovers]
budgets = [1e19, 1e24]
''')
    run_study(studies, warehouse, "arms")
    return warehouse


def test_crossover_compute_with_an_interval_that_holds_the_planted_one(arms):
    row = query(arms, "SELECT * FROM crossovers WHERE study = 'arms' AND kind = 'crossover'").row(0, named=True)
    assert (row["group_a"], row["group_b"], row["law"]) == ("optimizer=a", "optimizer=b", "chinchilla")
    truth = _true_crossing()
    assert truth == pytest.approx(6.08e22, rel=0.01)
    assert row["flops_ci_low"] < truth < row["flops_ci_high"]
    assert row["flops_ci_low"] < row["flops"] < row["flops_ci_high"]
    assert abs(np.log10(row["flops"] / truth)) < 0.5
    assert row["p_cross"] > 0.9 and row["n_draws"] == 200
    assert row["note"] == "optimizer=a better below, optimizer=b better above"


def test_probability_each_arm_is_better_at_named_budgets(arms):
    rows = query(arms, "SELECT * FROM crossovers WHERE study = 'arms' AND kind = 'budget' ORDER BY flops")
    assert rows["flops"].to_list() == [1e19, 1e24]
    small, large = rows.iter_rows(named=True)
    assert small["p_a_better"] > 0.99 and large["p_a_better"] < 0.01
    for r, c in ((small, 1e19), (large, 1e24)):
        assert r["predicted_a"] == pytest.approx(float(_optimal_loss(ARMS["a"], np.array([c]))[0]), rel=0.02)
        assert r["predicted_b"] == pytest.approx(float(_optimal_loss(ARMS["b"], np.array([c]))[0]), rel=0.02)


def test_arms_that_do_not_cross_say_so():
    """Arm b shifted down everywhere: no crossing in range, and arm b leads throughout."""
    from scaling.fit import fit_law
    from scaling.plan.crossovers import crossover_rows

    N = np.repeat(np.geomspace(5e7, 3e9, 5), 5)
    D = N * np.tile(np.geomspace(5, 100, 5), 5)
    fits = {}
    for arm, E in (("arm=a", 2.0), ("arm=b", 1.8)):
        y = LAWS["chinchilla"].predict({**ARMS["a"], "E": E}, {"params": N, "tokens": D})
        fits[(arm, "chinchilla", "loss")] = (fit_law("chinchilla", {"params": N, "tokens": D}, y), None)
    points = pl.DataFrame({"flops": 6 * N * D, "is_final": [True] * N.size})
    (row,) = crossover_rows("s", {}, fits, points)
    assert row["flops"] is None and row["note"] == "none in range: arm=b better throughout"


def test_isoflop_profiles_are_drawn_per_arm(tmp_path):
    """Training curves of two arms without an isoflop fit: the forecasts layer draws one isoFLOP
    plot per group, not one over both arms."""
    studies, warehouse = tmp_path / "studies", tmp_path / "warehouse"
    studies.mkdir()
    sources = []
    for arm, p in ARMS.items():
        rows = []
        for i, n in enumerate(np.geomspace(3e7, 3e9, 10)):
            for d in np.geomspace(2e8, 2e11, 25):
                rows.append({"run": f"{arm}{i}", "N": n, "D": d,
                             "loss": float(LAWS["chinchilla"].predict(p, {"params": np.array([n]),
                                                                          "tokens": np.array([d])})[0])})
        pl.DataFrame(rows).write_csv(studies / f"{arm}.csv")
        sources.append(source_block(arm, f"{arm}.csv", labels={"optimizer": arm}, kind="training_logs"))
    (studies / "curves.toml").write_text('[study]\ngroup_by = ["optimizer"]\n' + "".join(sources) + '''
[[fits]]
law = "chinchilla"
target = "loss"
points = "all"
n_resamples = 10
holdout_fraction = 0
''')
    run_study(studies, warehouse, "curves")
    folder = warehouse / "plots" / "curves"
    assert (folder / "isoflop_loss__optimizer=a.png").exists() and (folder / "isoflop_loss__optimizer=b.png").exists()
    assert not (folder / "isoflop_loss.png").exists()
