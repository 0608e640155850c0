"""Plots of the simulated study: files are written, are PNGs of sane size, and reflect the inputs."""

import struct

import numpy as np
import polars as pl
import pytest

from scaling.fit import backtest, isoflop
from scaling.forecast import compute_optimal_forecast
from scaling.plots import (isoflop_profiles, plot_isoflop, plot_loss_vs_compute, plot_mixture_heldout,
                           plot_predicted_vs_actual)
from scaling.simulate import write_example_data

PNG = b"\x89PNG\r\n\x1a\n"


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG, f"{path} is not a PNG"
    w, h = struct.unpack(">II", data[16:24])
    return len(data), w, h


def _check(path, min_bytes=20_000):
    n, w, h = _png_size(path)
    assert n > min_bytes and 500 <= w <= 3000 and 400 <= h <= 3000, (n, w, h)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    planted = write_example_data(out, seed=0)
    ck = pl.read_csv(out / "checkpoints.csv")
    meta = {r["run"]: r for r in planted["runs"]}
    N, D, L, R = [], [], [], []
    for p in sorted((out / "wandb").glob("*.csv")):
        d = pl.read_csv(p, infer_schema_length=0).filter(pl.col("train/loss") != "")
        L += d["train/loss"].cast(pl.Float64).to_list()
        D += d["throughput/total_tokens"].cast(pl.Float64).to_list()
        N += [meta[p.stem]["params"]] * d.height
        R += [p.stem] * d.height
    for p in sorted((out / "jsonl").glob("*.jsonl")):
        d = pl.read_ndjson(p)
        L += d["loss"].cast(pl.Float64).to_list()
        D += d["tokens"].cast(pl.Float64).to_list()
        N += [meta[p.stem]["params"]] * d.height
        R += [p.stem] * d.height
    curves = {k: np.asarray(v) for k, v in zip("NDLR", (N, D, L, R))}
    return out, planted, ck, curves


def test_loss_vs_compute_with_frontier_and_holdout(study, tmp_path):
    _, _, ck, curves = study
    X = {"params": ck["params"].to_numpy().astype(float), "tokens": ck["tokens"].to_numpy().astype(float)}
    y = ck["final_loss"].to_numpy()
    C = 6 * X["params"] * X["tokens"]
    bt = backtest("chinchilla", X, y, ck["model"].to_list(), C, n_resamples=100)
    held = np.isin(ck["model"].to_numpy(), bt.holdout_runs)
    frontier = compute_optimal_forecast(bt.fit, bt.bootstrap, max_observed_flops=float(C[~held].max()),
                                        budgets=np.geomspace(C.min(), 1000 * C.max(), 25))
    runs = curves["R"]
    curve_list = [(6 * curves["N"][runs == r] * curves["D"][runs == r], curves["L"][runs == r])
                  for r in np.unique(runs)]
    path = plot_loss_vs_compute(tmp_path / "frontier.png", flops=C, loss=y, heldout=held, curves=curve_list,
                                frontier=frontier.rows, max_observed_flops=float(C[~held].max()),
                                title="Simulated study: loss vs compute")
    assert path == tmp_path / "frontier.png"
    _check(path)
    with pytest.raises(ValueError, match="expected 30 held-out flags"):
        plot_loss_vs_compute(tmp_path / "x.png", flops=C, loss=y, heldout=held[:3])


def test_isoflop_profiles_and_minima(study, tmp_path):
    _, planted, _, c = study
    keep = c["D"] > 0
    res = isoflop(c["N"][keep], c["D"][keep], c["L"][keep], c["R"][keep], n_resamples=50)
    a1, a2 = res.approach1, res.approach2
    print(f"\nisoFLOP on the simulated curves: approach 1 a={a1.a:.3f} {a1.params_opt.interval}, "
          f"approach 2 a={a2.a:.3f} {a2.params_opt.interval} ({len(a2.points)} budgets); "
          f"planted a={planted['compute_optimal']['a']:.4f}")
    budgets = [p["flops"] for p in a2.points]
    profiles = isoflop_profiles(c["N"][keep], c["D"][keep], c["L"][keep], c["R"][keep], budgets=budgets)
    assert [p["flops"] for p in profiles] == budgets
    assert all(p["params"].size >= 3 for p in profiles)
    path = plot_isoflop(tmp_path / "isoflop.png", profiles, minima=a2.points, title="Simulated study: isoFLOP profiles")
    _check(path)


def test_predicted_vs_actual(study, tmp_path):
    _, _, ck, _ = study
    X = {"params": ck["params"].to_numpy().astype(float), "tokens": ck["tokens"].to_numpy().astype(float)}
    X["flops"] = 6 * X["params"] * X["tokens"]
    y = ck["final_loss"].to_numpy()
    rows = []
    for law in ("chinchilla", "power_law_flops"):
        bt = backtest(law, X, y, ck["model"].to_list(), X["flops"], n_resamples=50, fraction=0.3)
        rows += [{**r, "law": law} for r in bt.rows]
    path = plot_predicted_vs_actual(tmp_path / "backtest.png", actual=[r["actual"] for r in rows],
                                    predicted=[r["predicted"] for r in rows], ci_low=[r["ci_low"] for r in rows],
                                    ci_high=[r["ci_high"] for r in rows], laws=[r["law"] for r in rows],
                                    target_label="final loss (nats/token)")
    _check(path)


def test_mixture_heldout(study, tmp_path):
    out, planted, _, _ = study
    mix = planted["mixture"]
    w = pl.read_csv(out / "mixture" / "test_weights.csv")
    losses = pl.read_csv(out / "mixture" / "test_losses.csv")
    actual, predicted = {}, {}
    for d in mix["target_domains"]:
        t = np.array([mix["t"][d][j] for j in mix["train_domains"]])
        r = w.select(mix["train_domains"]).to_numpy()
        predicted[d] = mix["c"][d] + mix["k"][d] * np.exp(r @ t)  # the planted law (Ye et al. 2024)
        actual[d] = losses[f"{d}_loss"].to_numpy()
    path = plot_mixture_heldout(tmp_path / "mixing.png", actual=actual, predicted=predicted,
                                title="Simulated mixtures: planted law on held-out mixtures")
    _check(path)
    with pytest.raises(ValueError, match="expected a .png path"):
        plot_mixture_heldout(tmp_path / "m.pdf", actual=actual, predicted=predicted)
