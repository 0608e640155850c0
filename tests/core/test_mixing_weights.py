"""Mixture-weight validation: rounding is renormalized and flagged, real errors name the run."""

import numpy as np
import pytest

from scaling.errors import SourceError
from scaling.mixing import read_mixture_runs, validate_weights

DOMAINS = ["web", "code", "books"]


def test_rounded_rows_are_renormalized_and_flagged():
    w = np.array([[0.5, 0.3, 0.2], [0.333, 0.333, 0.333], [0.4, 0.4, 0.203]])
    out, flags = validate_weights(w, ["a", "b", "c"], domains=DOMAINS)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-15)
    np.testing.assert_allclose(out[1], [1 / 3] * 3)
    assert [(f.row, f.run) for f in flags] == [(1, "b"), (2, "c")]
    assert flags[1].total == pytest.approx(1.003)
    assert np.shares_memory(out, w) is False


def test_sum_far_from_one_names_the_run():
    w = np.array([[0.5, 0.3, 0.2], [0.5, 0.3, 0.1]])
    with pytest.raises(SourceError, match=r"row 1: run 'ckpt-7': mixture weights sum to 0.9, expected 1 within 0.01"):
        validate_weights(w, ["ckpt-3", "ckpt-7"], domains=DOMAINS)
    # a looser tolerance accepts it, renormalized
    out, flags = validate_weights(w, ["ckpt-3", "ckpt-7"], tol=0.2)
    assert flags[0].run == "ckpt-7" and out[1, 0] == pytest.approx(0.5 / 0.9)


def test_negative_and_missing_weights_name_run_and_domain():
    with pytest.raises(SourceError, match=r"row 0, column 'code': run 'r1': expected a non-negative mixture weight"):
        validate_weights([[0.6, -0.1, 0.5]], ["r1"], domains=DOMAINS)
    with pytest.raises(SourceError, match=r"column 'books': run 'r2': expected a finite mixture weight, got nan"):
        validate_weights([[0.5, 0.5, 0.0], [0.5, 0.5, np.nan]], ["r1", "r2"], domains=DOMAINS)
    with pytest.raises(SourceError, match="expected 2 run ids"):
        validate_weights([[1.0, 0, 0], [0, 1.0, 0]], ["only-one"])


def test_regmix_rows_are_rounded_and_get_flagged(shared_data):
    data = shared_data / "regmix" / "data"
    runs = read_mixture_runs(data / "train_mixture_1m.csv", data / "train_pile_loss_1m.csv")
    totals = runs.weights.sum(axis=1)
    assert totals.min() >= 0.996 - 1e-9 and totals.max() <= 1.003 + 1e-9  # as SOURCE.md states
    out, flags = validate_weights(runs.weights, runs.run_ids, domains=runs.domains)
    assert len(flags) == int(np.sum(np.abs(totals - 1) > 1e-12)) > 0
    assert {f.run for f in flags} <= set(runs.run_ids)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-12)
