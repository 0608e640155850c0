"""The example study: deterministic, well-formed, and its planted laws recoverable by hand."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from scaling.simulate import SIMULATOR_VERSION, write_example_data

VOCAB = 50304
N_RUNS = 30


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("example")
    return root, write_example_data(root, seed=0)


@pytest.fixture(scope="module")
def runs(study) -> pl.DataFrame:
    return pl.read_csv(study[0] / "runs.csv")


@pytest.fixture(scope="module")
def logs(study, runs) -> dict[str, pl.DataFrame]:
    """Every run's log in one shape: step, tokens, lr, loss, web, code, books (nulls where not logged)."""
    root, _ = study
    out = {}
    for run in runs["run"]:
        wandb, jsonl = root / "wandb" / f"{run}.csv", root / "jsonl" / f"{run}.jsonl"
        assert wandb.is_file() != jsonl.is_file(), run
        if wandb.is_file():
            df = pl.read_csv(wandb).select(
                pl.col("_step").alias("step"), pl.col("throughput/total_tokens").alias("tokens"),
                pl.col("optim/lr").alias("lr"), pl.col("train/loss").alias("loss"),
                pl.col("eval/web/loss").alias("web"), pl.col("eval/code/loss").alias("code"),
                pl.col("eval/books/loss").alias("books"),
            )
        else:
            df = pl.read_ndjson(jsonl)
            assert (df["run"] == run).all()
            df = df.select("step", "tokens", "lr", "loss", web="eval_web_loss", code="eval_code_loss",
                           books="eval_books_loss")
        out[run] = df
    return out


def _chinchilla(c: dict, n, d):
    return c["E"] + c["A"] / np.asarray(n, float) ** c["alpha"] + c["B"] / np.asarray(d, float) ** c["beta"]


def _spread_ok(residuals: np.ndarray, sigma: float) -> None:
    """Residuals look like Normal(0, sigma): mean within 4 standard errors, std within [0.6, 1.5] sigma."""
    n = len(residuals)
    assert abs(residuals.mean()) < 4 * sigma / math.sqrt(n), (residuals.mean(), sigma, n)
    assert 0.6 * sigma < residuals.std(ddof=1) < 1.5 * sigma, (residuals.std(ddof=1), sigma, n)


# --- determinism and idempotence -------------------------------------------------------------

def test_same_seed_gives_identical_bytes_and_other_seed_differs(study, tmp_path):
    root, _ = study
    write_example_data(tmp_path / "again", seed=0)
    write_example_data(tmp_path / "other", seed=1)
    first, again, other = _digests(root), _digests(tmp_path / "again"), _digests(tmp_path / "other")
    assert first == again
    assert set(other) == set(first)
    for name in ("checkpoints.csv", "PLANTED.json", "mixture/train_losses.csv", "wandb/sim-19M-5x.csv"):
        assert other[name] != first[name], name


def test_existing_study_with_same_seed_is_left_alone(tmp_path):
    planted = write_example_data(tmp_path, seed=3)
    checkpoints = tmp_path / "checkpoints.csv"
    checkpoints.write_text("edited\n")
    assert write_example_data(tmp_path, seed=3) == planted
    assert checkpoints.read_text() == "edited\n"
    rewritten = write_example_data(tmp_path, seed=4)
    assert rewritten["seed"] == 4 and json.loads((tmp_path / "PLANTED.json").read_text())["seed"] == 4
    assert checkpoints.read_text().startswith("model,params,tokens,training_flops,final_loss")



def test_planted_json_is_what_was_returned(study):
    root, planted = study
    assert json.loads((root / "PLANTED.json").read_text()) == planted
    assert planted["seed"] == 0 and planted["simulator_version"] == SIMULATOR_VERSION


# --- the sweep's structure ---------------------------------------------------------------------

def test_runs_table_architectures_are_consistent(runs):
    assert runs.height == N_RUNS and runs["run"].n_unique() == N_RUNS
    for row in runs.iter_rows(named=True):
        non_embedding = 12 * row["n_layer"] * row["d_model"] ** 2
        assert row["non_embedding_params"] == non_embedding
        assert row["params"] == non_embedding + VOCAB * row["d_model"]
        assert row["vocab_size"] == VOCAB and row["seq_len"] == 2048 and row["bytes_per_token"] == 4.2
        assert row["batch_tokens"] % 2048 == 0
    sizes = sorted(runs["params"].unique())
    assert len(sizes) == 6 and 1.5e7 < sizes[0] < 2.5e7 and 0.9e9 < sizes[-1] < 1.1e9
    assert runs["batch_tokens"].min() == 262_144 and runs["batch_tokens"].max() == 2_097_152
    assert set(runs["schedule"]) == {"cosine", "wsd"}
    assert 5 <= (runs["schedule"] == "wsd").sum() <= 15


def test_half_the_runs_in_each_log_format_with_both_token_spellings(study):
    root, _ = study
    wandb, jsonl = sorted((root / "wandb").glob("*.csv")), sorted((root / "jsonl").glob("*.jsonl"))
    assert len(wandb) == len(jsonl) == N_RUNS // 2
    spellings = {f.read_text().splitlines()[1].rsplit(",", 1)[1].endswith(".0") for f in wandb}
    assert spellings == {True, False}
    header = wandb[0].read_text().splitlines()[0].split(",")
    assert header == ["_step", "_runtime", "_timestamp", "train/loss", "eval/web/loss", "eval/code/loss",
                      "eval/books/loss", "optim/lr", "throughput/total_tokens"]


def test_tokens_are_step_times_batch_and_logs_have_50_to_200_rows(runs, logs):
    for row in runs.iter_rows(named=True):
        df = logs[row["run"]]
        assert 50 <= df.height <= 201, (row["run"], df.height)
        assert (df["tokens"].cast(pl.Int64) == df["step"] * row["batch_tokens"]).all()
        assert df["step"][-1] == row["total_steps"]
        steps = df["step"].to_numpy()
        assert (np.diff(steps) > 0).all()


def test_learning_rate_column_follows_the_schedule(runs, logs):
    for row in runs.iter_rows(named=True):
        df = logs[row["run"]]
        s = df["step"].to_numpy().astype(float)
        peak, warm, total = row["peak_lr"], row["warmup_steps"], row["total_steps"]
        if row["schedule"] == "cosine":
            p = np.clip((s - warm) / (total - warm), 0, 1)
            after = peak * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * p)))
        else:
            decay_start = total - round(0.2 * total)
            after = np.where(s <= decay_start, peak, peak * (total - s) / (total - decay_start))
        expected = np.where(s <= warm, peak * s / warm, after)
        # JSON-lines logs hold 6 significant digits (up to 5e-6 relative); W&B float32
        np.testing.assert_allclose(df["lr"].to_numpy(), expected, rtol=6e-6, atol=1e-12, err_msg=row["run"])


# --- the planted laws, recovered by hand --------------------------------------------------------

def test_final_points_follow_the_planted_chinchilla_law(study, runs, logs):
    _, planted = study
    c, noise = planted["chinchilla"], planted["noise"]
    by_run = {r["run"]: r for r in planted["runs"]}
    law = _chinchilla(c, runs["params"].to_numpy(), [logs[r]["tokens"][-1] for r in runs["run"]])
    final = np.array([logs[r]["loss"][-1] for r in runs["run"]])
    draws = np.array([by_run[r]["final_loss_noise_log"] + by_run[r]["final_train_loss_logged_noise_log"]
                      for r in runs["run"]])
    # With the recorded noise removed the logged value is the formula (float32 / 5-decimal logs).
    np.testing.assert_allclose(final / np.exp(draws), law, rtol=3e-6)
    # And the noise is what was promised: run-level 0.3% and step-level 0.3%.
    _spread_ok(np.log(final / law), math.hypot(noise["final_loss"], noise["train_step"]))


def test_published_final_losses_and_flops(study):
    root, planted = study
    table = pl.read_csv(root / "checkpoints.csv")
    assert table.height == N_RUNS
    law = _chinchilla(planted["chinchilla"], table["params"].to_numpy(), table["tokens"].to_numpy())
    _spread_ok(np.log(table["final_loss"].to_numpy() / law), planted["noise"]["final_loss"])
    np.testing.assert_allclose(table["training_flops"], 6.0 * table["params"] * table["tokens"], rtol=5e-5)


def _annealing_curve(row: dict, planted_run: dict, c: dict) -> np.ndarray:
    """The Tissue et al. 2024 law at every step, recomputed step by step from the published schedule."""
    warm, total = row["warmup_steps"], row["total_steps"]
    decay_start = total - round(0.2 * total)
    anneal = planted_run["annealing"]
    s1 = s2 = m = 0.0
    prev = 1.0
    out = np.empty(total)
    for i in range(1, total + 1):
        if i <= warm:
            eta = i / warm
        elif row["schedule"] == "cosine":
            eta = 0.1 + 0.45 * (1 + math.cos(math.pi * (i - warm) / (total - warm)))
        else:
            eta = 1.0 if i <= decay_start else (total - i) / (total - decay_start)
        s1 += eta
        if i > warm:
            m = 0.999 * m + (prev - eta)
            s2 += m
        prev = eta
        out[i - 1] = anneal["L0"] + anneal["A"] * (s1 * row["batch_tokens"]) ** -c["beta"] - anneal["C"] * s2
    return np.minimum(out * math.exp(planted_run["final_loss_noise_log"]), math.log(VOCAB))


@pytest.fixture(scope="module")
def clean_curves(study, runs) -> dict[str, np.ndarray]:
    _, planted = study
    by_run = {r["run"]: r for r in planted["runs"]}
    return {row["run"]: _annealing_curve(row, by_run[row["run"]], planted["chinchilla"])
            for row in runs.iter_rows(named=True)}


def test_curves_follow_the_annealing_law_and_end_on_the_final_value(study, runs, logs, clean_curves):
    _, planted = study
    c = planted["chinchilla"]
    residuals = []
    for planted_run in planted["runs"]:
        curve = clean_curves[planted_run["run"]]
        anneal = planted_run["annealing"]
        assert anneal["L0"] == pytest.approx(c["E"] + c["A"] / planted_run["params"] ** c["alpha"])
        assert anneal["A"] == pytest.approx(1.15 * c["B"]) and anneal["C"] > 0
        assert curve[-1] == pytest.approx(planted_run["final_loss"], rel=1e-9)
        df = logs[planted_run["run"]]
        residuals.append(np.log(df["loss"].to_numpy() / curve[df["step"].to_numpy() - 1]))
    _spread_ok(np.concatenate(residuals), planted["noise"]["train_step"])


def test_curves_are_monotone_up_to_noise(logs, clean_curves):
    for run, df in logs.items():
        curve = clean_curves[run]
        assert (np.diff(curve) <= 1e-12).all(), run
        loss = df["loss"].to_numpy()
        quarters = [loss[int(q * (len(loss) - 1))] for q in (0.25, 0.5, 0.75, 1.0)]
        assert quarters == sorted(quarters, reverse=True), run
        assert loss[-1] < 1.02 * loss.min(), run


def test_eval_sets_are_planted_transfers_of_the_train_loss(study, logs, clean_curves):
    _, planted = study
    e = planted["chinchilla"]["E"]
    for column, name in (("web", "eval/web/loss"), ("code", "eval/code/loss"), ("books", "eval/books/loss")):
        t = planted["evals"][name]
        residuals = []
        for run, df in logs.items():
            logged = df.filter(pl.col(column).is_not_null())
            clean = clean_curves[run][logged["step"].to_numpy() - 1]
            expected = np.minimum(t["K"] * (clean - e) ** t["kappa"] + t["E_y"], math.log(VOCAB))
            residuals.append(np.log(logged[column].to_numpy() / expected))
            assert df[column][-1] is not None, run
        _spread_ok(np.concatenate(residuals), planted["noise"]["eval_step"])


def test_wandb_exports_log_evals_on_every_other_row(study):
    root, _ = study
    for path in (root / "wandb").glob("*.csv"):
        df = pl.read_csv(path)
        present = df["eval/web/loss"].is_not_null()
        assert 0.4 < present.mean() < 0.65, path.name
        assert (present == df["eval/code/loss"].is_not_null()).all()
        assert df["train/loss"].null_count() == 0


def test_task_accuracies_follow_the_planted_sigmoid_of_bits_per_byte(study):
    root, planted = study
    table = pl.read_csv(root / "checkpoints.csv")
    e = planted["chinchilla"]["E"]
    for name, t in planted["tasks"].items():
        bpb, acc = table[f"bpb_{name}"].to_numpy(), table[f"acc_{name}"].to_numpy()
        expected_bpb = t["K"] * (table["final_loss"].to_numpy() - e) ** t["kappa"] + t["E_bpb"]
        _spread_ok(np.log(bpb / expected_bpb), planted["noise"]["task_bpb"])
        expected_acc = t["floor"] + (t["ceiling"] - t["floor"]) / (1 + np.exp(t["k"] * (bpb - t["bpb0"])))
        _spread_ok(acc - expected_acc, planted["noise"]["task_acc"])
        assert ((acc >= 0) & (acc <= 1)).all()
    assert table["acc_taskA"].max() - table["acc_taskA"].min() > 0.3


def test_compute_optimal_allocation_minimises_the_planted_law(study):
    _, planted = study
    c = planted["chinchilla"]
    assert planted["compute_optimal"]["a"] == pytest.approx(c["beta"] / (c["alpha"] + c["beta"]))
    assert planted["compute_optimal"]["b"] == pytest.approx(c["alpha"] / (c["alpha"] + c["beta"]))
    for run in planted["runs"]:
        opt, flops = run["compute_optimal"], run["training_flops"]
        assert (opt["a"], opt["b"]) == (planted["compute_optimal"]["a"], planted["compute_optimal"]["b"])
        assert 6 * opt["params"] * opt["tokens"] == pytest.approx(flops, rel=1e-9)
        n = opt["params"] * np.exp(np.linspace(-0.5, 0.5, 2001))
        losses = _chinchilla(c, n, flops / (6 * n))
        assert abs(np.log(n[losses.argmin()] / opt["params"])) <= 0.5 / 1000 + 1e-12


def test_planted_values_are_not_a_published_fit(study):
    c = study[1]["chinchilla"]
    published = [(1.8172, 477.84, 2143.86, 0.34731, 0.36718), (1.69, 406.4, 410.7, 0.34, 0.28)]
    for e, a, b, alpha, beta in published:
        assert (c["E"], c["A"], c["B"], c["alpha"], c["beta"]) != (e, a, b, alpha, beta)
        assert abs(c["beta"] - beta) > 0.01 or abs(c["B"] - b) > 50


# --- the mixture experiment ---------------------------------------------------------------------

def _mixing_law(weights: np.ndarray, mixture: dict) -> np.ndarray:
    targets, domains = mixture["target_domains"], mixture["train_domains"]
    t = np.array([[mixture["t"][i][j] for j in domains] for i in targets])
    c = np.array([mixture["c"][i] for i in targets])
    k = np.array([mixture["k"][i] for i in targets])
    return c + k * np.exp(weights @ t.T)


@pytest.mark.parametrize("split,rows", [("train", 120), ("test", 40)])
def test_mixture_files_round_like_regmix_and_follow_the_planted_law(study, split, rows):
    root, planted = study
    mixture = planted["mixture"]
    weights = pl.read_csv(root / "mixture" / f"{split}_weights.csv")
    losses = pl.read_csv(root / "mixture" / f"{split}_losses.csv")
    assert weights.columns == ["index", *mixture["train_domains"]]
    assert losses.columns == ["index", *mixture["loss_columns"]]
    assert weights.height == losses.height == rows
    assert weights["index"].to_list() == losses["index"].to_list() == list(range(1, rows + 1))
    w = weights.drop("index").to_numpy()
    assert ((w >= 0) & (w <= 1)).all()
    np.testing.assert_array_equal(np.round(w * 1000), w * 1000)
    sums = w.sum(axis=1)
    assert ((sums >= 0.996 - 1e-9) & (sums <= 1.004 + 1e-9)).all()
    assert (w == 0).any()  # sparse rows, as Dirichlet draws with small concentration give
    residuals = np.log(losses.drop("index").to_numpy() / _mixing_law(w, mixture))
    _spread_ok(residuals.ravel(), mixture["noise_sigma_log"])


def test_planted_optimal_mixture_beats_every_other_mixture(study):
    mixture = study[1]["mixture"]
    best = np.array([mixture["optimal_mixture"][d] for d in mixture["train_domains"]])
    assert best.min() >= 0 and best.sum() == pytest.approx(1.0, abs=1e-12)
    best_loss = _mixing_law(best, mixture).mean()
    assert best_loss == pytest.approx(mixture["optimal_mean_loss"], rel=1e-12)
    rng = np.random.default_rng(12345)
    others = np.vstack([rng.dirichlet(np.full(len(best), a), 20_000) for a in (0.2, 1.0, 5.0)])
    assert best_loss <= _mixing_law(others, mixture).mean(axis=1).min() + 1e-12
