"""Pythia (checkpoint results, lm-eval-harness): forecast pythia-12b's final LAMBADA accuracy from
the smaller standard models' checkpoints, two steps: (N, D) -> log perplexity -> accuracy."""

import numpy as np
import polars as pl
import pytest

from scaling.forecast import downstream_forecast, fit_two_step

SMALLER = ["pythia-70m", "pythia-160m", "pythia-410m", "pythia-1b-bf16", "pythia-1.4b", "pythia-2.8b", "pythia-6.9b"]
TARGET = "pythia-12b"
FINAL_STEP = 143000
STEP1_MIN_STEP = 13000  # early checkpoints (ppl ~3.6e6 at step 0) are not on a scaling curve
STEP2_MIN_STEP = 1000


@pytest.fixture(scope="module")
def lambada(shared_data):
    root = shared_data / "pythia_evals"
    models = pl.read_csv(root / "pythia_models.csv")
    evals = pl.read_csv(root / "pythia_v1_evals_core.csv")
    z = evals.filter((pl.col("subset") == "zero-shot") & (pl.col("task") == "lambada_openai")
                     & pl.col("model").is_in(SMALLER + [TARGET]))
    wide = z.pivot(on="metric", index=["model", "step"], values="value").join(
        models.select("model", "params_nonembedding", "tokens_per_step"), on="model")
    return wide.with_columns((pl.col("step") * pl.col("tokens_per_step")).cast(pl.Float64).alias("tokens"),
                             pl.col("params_nonembedding").cast(pl.Float64).alias("params"),
                             pl.col("ppl").log().alias("log_ppl"))


@pytest.mark.slow
def test_pythia_12b_lambada_accuracy(lambada):
    train = lambada.filter(pl.col("model") != TARGET)
    s1 = train.filter(pl.col("step") >= STEP1_MIN_STEP)
    s2 = train.filter(pl.col("step") >= STEP2_MIN_STEP)
    ts = fit_two_step({"params": s1["params"].to_numpy(), "tokens": s1["tokens"].to_numpy()}, s1["log_ppl"].to_numpy(),
                      s2["log_ppl"].to_numpy(), s2["acc"].to_numpy(), runs=s1["model"].to_list(),
                      step2_runs=s2["model"].to_list(), n_resamples=200)
    tgt = lambada.filter((pl.col("model") == TARGET) & (pl.col("step") == FINAL_STEP)).row(0, named=True)
    largest = train.filter(pl.col("step") == FINAL_STEP).sort("params").row(-1, named=True)
    fc = downstream_forecast(ts, [{"name": TARGET, "params": tgt["params"], "tokens": tgt["tokens"], "actual": tgt["acc"]}],
                             target="lambada_openai acc", max_observed_flops=6 * largest["params"] * largest["tokens"])
    r, loss = fc[0], fc.settings["step1_loss"][0]
    ppl_err = (loss["loss"] - tgt["log_ppl"]) / tgt["log_ppl"]
    print(f"\npythia-12b LAMBADA: log ppl predicted {loss['loss']:.4f} [{loss['ci_low']:.4f}, {loss['ci_high']:.4f}] "
          f"actual {tgt['log_ppl']:.4f} ({ppl_err:+.2%}); accuracy predicted {r['predicted']:.4f} "
          f"[{r['ci_low']:.4f}, {r['ci_high']:.4f}] actual {tgt['acc']:.4f} ({r['rel_error']:+.2%}); "
          f"pythia-6.9b final accuracy {largest['acc']:.4f}; step 2 {ts.step2}")
    assert r["kind"] == "downstream" and r["extrapolation"] == pytest.approx(tgt["params"] / largest["params"])
    assert loss["ci_low"] < tgt["log_ppl"] < loss["ci_high"]
    assert r["ci_low"] <= r["predicted"] <= r["ci_high"]
    assert np.isfinite(r["rel_error"])
