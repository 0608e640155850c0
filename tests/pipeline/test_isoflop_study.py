"""Chinchilla approaches 1 and 2 as study-level fits, through real materializations: planted arms
(per-group exponents, optima, forecasts and plots) and Epoch's digitised Chinchilla runs."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from helpers import query, run_study
from scaling.simulate.results_table import source_block

ARMS = {"a": {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37},
        "b": {"E": 1.7, "A": 300.0, "B": 3000.0, "alpha": 0.30, "beta": 0.40}}
BUDGETS = [1e18, 1e19, 1e20, 1e21, 1e22]


def _optimum(p):
    G = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / (p["alpha"] + p["beta"]))
    return G, p["beta"] / (p["alpha"] + p["beta"])


ENVELOPE_FILTER = "flops < 3e21"  # the envelope fits the budgets up to 1e21
TARGET = (4e10, 4e11)  # N, D of the target run `a-target` (C = 9.6e22, about 9x the largest fitted run)


def _write_grid(path, p, seed, target=None):
    """An IsoFLOP grid: 9 sizes around the planted optimum per budget, runs ending within 3% of it;
    ``target``: (N, D) of one more run, `<stem>-target`, that the study forecasts."""
    rng = np.random.default_rng(seed)
    G, a = _optimum(p)
    rows = []
    for c in BUDGETS:
        for n in G * (c / 6) ** a * np.geomspace(0.2, 5, 9):
            d = c / (6 * n) * (1 + rng.uniform(-0.03, 0.03))
            loss = (p["E"] + p["A"] * n ** -p["alpha"] + p["B"] * d ** -p["beta"]) * np.exp(0.003 * rng.standard_normal())
            rows.append({"run": f"{path.stem}-{len(rows)}", "N": n, "D": d, "loss": loss})
    if target is not None:
        n, d = target
        rows.append({"run": f"{path.stem}-target", "N": n, "D": d,
                     "loss": p["E"] + p["A"] * n ** -p["alpha"] + p["B"] * d ** -p["beta"]})
    pl.DataFrame(rows).write_csv(path)


@pytest.fixture(scope="module")
def arms(tmp_path_factory):
    root = tmp_path_factory.mktemp("isoflop_arms")
    studies, warehouse = root / "studies", root / "warehouse"
    studies.mkdir()
    for i, (arm, p) in enumerate(ARMS.items()):
        _write_grid(studies / f"{arm}.csv", p, seed=i, target=TARGET if arm == "a" else None)
    sources = "".join(source_block(a, f"{a}.csv", labels={"arm": a}) for a in ARMS)
    (studies / "arms.toml").write_text('[study]\ngroup_by = ["arm"]\n' + sources + f'''
[[fits]]
law = "isoflop"
target = "loss"
budgets = "data"
n_resamples = 200

[[fits]]
law = "envelope"
target = "loss"
n_resamples = 100
filter = "{ENVELOPE_FILTER}"

[forecasts]
n_budgets = 2
factor = 10
targets = [{{ name = "target", params = {TARGET[0]:g}, tokens = {TARGET[1]:g}, actual_run = "a-target" }}]
''')
    run_study(studies, warehouse, "arms")
    return warehouse


def test_isoflop_exponents_per_arm_recover_the_planted_ones(arms):
    fits = query(arms, "SELECT * FROM law_fits WHERE study = 'arms' AND law = 'isoflop'")
    assert sorted(fits["group_name"].unique().to_list()) == ["arm=a", "arm=b"]
    for arm, p in ARMS.items():
        rows = {r["parameter"]: r for r in fits.filter(pl.col("group_name") == f"arm={arm}").iter_rows(named=True)}
        assert set(rows) == {"a_params_exponent", "b_tokens_exponent", "params_coefficient", "tokens_coefficient"}
        G, a = _optimum(p)
        b = p["alpha"] / (p["alpha"] + p["beta"])  # planted D_opt ∝ C^b
        est = rows["a_params_exponent"]
        # measured: a 0.5073 (planted 0.5139) and 0.5718 (0.5714); b 0.4927 (0.4861) and 0.4282 (0.4286)
        assert est["estimate"] == pytest.approx({"a": 0.5073, "b": 0.5718}[arm], abs=5e-5)
        assert est["ci_low"] < a < est["ci_high"]
        tok = rows["b_tokens_exponent"]
        assert tok["estimate"] == pytest.approx({"a": 0.4927, "b": 0.4282}[arm], abs=5e-5)
        assert tok["ci_low"] < b < tok["ci_high"]
        assert est["converged"] and est["n_runs"] == 45 and est["flags"] == ""
        k = rows["params_coefficient"]
        assert k["ci_low"] < k["estimate"] < k["ci_high"]
        assert '"budget_source": "data"' in est["settings"]


def test_per_budget_optima_and_compute_optimal_forecasts_with_intervals(arms):
    opt = query(arms, "SELECT * FROM isoflop_optima WHERE study = 'arms' AND law = 'isoflop' ORDER BY group_name, flops")
    assert opt.height == 10
    assert np.allclose(opt["flops"].to_numpy(), BUDGETS * 2, rtol=0.03)
    for arm, p in ARMS.items():
        G, a = _optimum(p)
        sub = opt.filter(pl.col("group_name") == f"arm={arm}")
        truth = G * (sub["flops"].to_numpy() / 6) ** a
        assert np.all(np.abs(np.log(sub["params"].to_numpy() / truth)) < 0.15)
        assert ((sub["params_ci_low"] <= sub["params"]) & (sub["params"] <= sub["params_ci_high"])).all()
        assert ((sub["loss_ci_low"] <= sub["loss"]) & (sub["loss"] <= sub["loss_ci_high"])).all()
    env = query(arms, "SELECT count(*) AS n FROM isoflop_optima WHERE law = 'envelope'")
    assert env["n"][0] > 0
    fc = query(arms, "SELECT * FROM forecasts WHERE study = 'arms' AND law = 'isoflop' ORDER BY group_name, flops")
    assert fc.height == 4 and (fc["kind"] == "compute_optimal").all()
    assert ((fc["params_ci_low"] < fc["params"]) & (fc["params"] < fc["params_ci_high"])).all()
    assert ((fc["tokens_ci_low"] < fc["tokens"]) & (fc["tokens"] < fc["tokens_ci_high"])).all()
    assert fc["tokens_per_param"].to_numpy() == pytest.approx((fc["tokens"] / fc["params"]).to_numpy())
    fits = query(arms, "SELECT group_name, estimate FROM law_fits WHERE law = 'isoflop' "
                       "AND parameter = 'params_coefficient' ORDER BY group_name")
    expo = query(arms, "SELECT group_name, estimate FROM law_fits WHERE law = 'isoflop' "
                       "AND parameter = 'a_params_exponent' ORDER BY group_name")
    C = fc["flops"].to_numpy().reshape(2, 2)  # each arm's grid
    want = fits["estimate"].to_numpy()[:, None] * C ** expo["estimate"].to_numpy()[:, None]
    assert fc["params"].to_numpy() == pytest.approx(want.ravel(), rel=1e-9)


def test_isoflop_grids_and_extrapolation_start_from_the_fitted_runs(arms):
    """The target run (9.6e22 FLOPs, above every fitted run) and the runs the envelope's filter drops
    enter neither fit nor the largest fitted compute the budget grid and `extrapolation` start from."""
    fits = query(arms, "SELECT DISTINCT law, group_name, n_runs FROM law_fits WHERE study = 'arms' ORDER BY ALL")
    assert fits.rows() == [("envelope", "arm=a", 36), ("envelope", "arm=b", 36),
                           ("isoflop", "arm=a", 45), ("isoflop", "arm=b", 45)]
    runs = query(arms, "SELECT run, group_name, 6 * params * tokens AS c FROM runs WHERE study = 'arms'")
    target_c = runs.filter(pl.col("run") == "a-target")["c"][0]
    assert runs.height == 91 and target_c > 8 * runs.filter(pl.col("run") != "a-target")["c"].max()
    fc = query(arms, "SELECT law, group_name, flops, extrapolation FROM forecasts WHERE study = 'arms' "
                     "AND kind = 'compute_optimal' ORDER BY law, group_name, flops")
    assert fc.height == 8
    for (law, group), sub in fc.group_by("law", "group_name", maintain_order=True):
        fitted = runs.filter((pl.col("group_name") == group) & (pl.col("run") != "a-target"))
        if law == "envelope":  # the envelope's filter: budgets up to 1e21
            fitted = fitted.filter(pl.col("c") < 3e21)
        max_fitted = float(fitted["c"].max())
        assert max_fitted < 1.1e22 if law == "isoflop" else max_fitted < 1.1e21
        np.testing.assert_allclose(sub["flops"].to_numpy(), [max_fitted, 10 * max_fitted], rtol=1e-9)
        np.testing.assert_allclose(sub["extrapolation"].to_numpy(), [1.0, 10.0], rtol=1e-9)


def test_isoflop_plot_per_arm(arms):
    folder = arms / "plots" / "arms"
    assert (folder / "isoflop_loss__arm=a.png").stat().st_size > 10_000
    assert (folder / "isoflop_loss__arm=b.png").stat().st_size > 10_000


@pytest.mark.slow
def test_chinchilla_study_approach2_beside_approach3(tmp_path, shared_data):
    """The shipped chinchilla_epoch study: approach 2 at the paper's nine budgets (Hoffmann et al.
    2022 report a = 0.49, b = 0.51) beside the approach-3 fit."""
    from helpers import copy_study

    studies, warehouse = tmp_path / "studies", tmp_path / "warehouse"
    copy_study("chinchilla_epoch", studies, public=True, shared=shared_data)
    run_study(studies, warehouse, "chinchilla_epoch")
    rows = {(r["law"], r["parameter"]): r for r in query(
        warehouse, "SELECT * FROM law_fits WHERE study = 'chinchilla_epoch'").iter_rows(named=True)}
    a2 = rows[("isoflop", "a_params_exponent")]
    assert a2["estimate"] == pytest.approx(0.5164, abs=5e-5) and abs(a2["estimate"] - 0.49) < 0.04
    assert rows[("isoflop", "b_tokens_exponent")]["estimate"] == pytest.approx(0.4865, abs=5e-5)
    assert a2["ci_low"] < a2["estimate"] < a2["ci_high"] and a2["n_runs"] == 240
    a3 = rows[("chinchilla", "a_params_exponent")]
    assert abs(a3["estimate"] - a2["estimate"]) < 0.04
    opt = query(warehouse, "SELECT * FROM isoflop_optima WHERE study = 'chinchilla_epoch'")
    assert opt.height == 9
    fc = query(warehouse, "SELECT DISTINCT law FROM forecasts WHERE kind = 'compute_optimal' ORDER BY law")
    assert {"chinchilla", "isoflop"} <= set(fc["law"].to_list())


def test_isoflop_grid_with_its_settings_in_columns(tmp_path, arms):
    """An IsoFLOP grid published as one table: each row a run, the settings it varies (data set, schedule)
    in columns, sizes in millions and tokens in billions, no run id. The study names the settings as group
    labels and scales the units; no file is converted first. Each setting's optimum matches its own arm."""
    studies, warehouse = tmp_path / "studies", tmp_path / "warehouse"
    studies.mkdir()
    frames = []
    for i, (arm, p) in enumerate(ARMS.items()):
        _write_grid(tmp_path / f"{arm}.csv", p, seed=i)
        g = pl.read_csv(tmp_path / f"{arm}.csv")
        frames.append(pl.DataFrame({
            "Dataset": ["web" if arm == "a" else "code"] * g.height, "LR schedule": ["cosine"] * g.height,
            "Budget": [f"{c:.0e}" for c in np.repeat(BUDGETS, 9)],
            "Params (M)": (g["N"] / 1e6).round(6), "Tokens (B)": (g["D"] / 1e9).round(9), "Final loss": g["loss"]}))
    pl.concat(frames).write_csv(studies / "grid.csv")
    (studies / "grid.toml").write_text('''
[study]
group_by = ["dataset", "schedule"]

[[sources]]
name = "grid"
kind = "checkpoint_results"
location = "grid.csv"
format = "csv"
final = "all"
run = "{Dataset}-{LR schedule}-{Budget}-{Params (M)}M"
labels = { dataset = "Dataset", schedule = "LR schedule" }
scale = { params = 1e6, tokens = 1e9 }
[sources.columns]
params = "Params (M)"
tokens = "Tokens (B)"
[sources.metrics]
loss = "Final loss"

[[fits]]
law = "isoflop"
target = "loss"
budgets = "data"
n_resamples = 200
''')
    run_study(studies, warehouse, "grid")
    runs = query(warehouse, "SELECT run, group_name, params, tokens FROM runs ORDER BY run")
    assert runs.height == 90 and set(runs["group_name"]) == {"dataset=code,schedule=cosine",
                                                            "dataset=web,schedule=cosine"}
    web = pl.read_csv(tmp_path / "a.csv")
    first = runs.filter(pl.col("run") == f"web-cosine-1e+18-{web['N'][0] / 1e6:.6f}".rstrip("0").rstrip(".") + "M")
    assert first.height == 1 and first["params"][0] == pytest.approx(round(web["N"][0] / 1e6, 6) * 1e6, rel=1e-12)
    fits = query(warehouse, "SELECT group_name, estimate, ci_low, ci_high, n_runs, flags FROM law_fits "
                            "WHERE law = 'isoflop' AND parameter = 'a_params_exponent' ORDER BY group_name")
    for arm, dataset in (("b", "code"), ("a", "web")):
        row = fits.filter(pl.col("group_name") == f"dataset={dataset},schedule=cosine").row(0, named=True)
        a = _optimum(ARMS[arm])[1]
        assert row["ci_low"] < a < row["ci_high"] and row["estimate"] == pytest.approx(a, abs=0.02)
        assert row["n_runs"] == 45 and row["flags"] == ""
    # the same exponents as the arms written one file each (the same runs, to a parameter and a token)
    per_file = query(arms, "SELECT group_name, estimate FROM law_fits WHERE law = 'isoflop' "
                           "AND parameter = 'a_params_exponent' ORDER BY group_name")
    assert fits["estimate"].to_numpy() == pytest.approx(per_file["estimate"].to_numpy()[::-1], abs=1e-6)
