"""A study's figures from its tables: one per target and group, named and captioned with both, and the
downstream figure when forecasts of observed runs exist."""

from __future__ import annotations

import numpy as np
import polars as pl

from scaling.plan.study_figures import study_figures


def _tables():
    rows, runs = [], []
    for group in ("arch=a", "arch=b"):
        for n in (1e7, 3e7, 1e8):
            for k in (5, 20, 80):
                run = f"{group}-{n:g}-{k}"
                d = n * k
                loss = 1.7 + 400 / n**0.34 + 400 / d**0.28
                runs.append({"run": run, "group_name": group, "params": n})
                rows.append({"run": run, "group_name": group, "metric": "loss", "unit": "nats", "value": loss,
                             "loss_nats": loss, "flops": 6 * n * d, "tokens": d, "is_final": True})
    points, runs = pl.DataFrame(rows), pl.DataFrame(runs)
    grid = np.geomspace(4e19, 4e22, 5)
    fc = []
    for group in ("arch=a", "arch=b"):
        for law, shift in (("chinchilla", 0.0), ("kaplan", -0.1)):
            for c in grid:
                fc.append({"group_name": group, "law": law, "target": "loss", "kind": "compute_optimal", "name": "",
                           "flops": c, "params": (c / 120) ** 0.5, "params_ci_low": (c / 150) ** 0.5,
                           "params_ci_high": (c / 100) ** 0.5, "tokens": (c * 20 / 6) ** 0.5,
                           "tokens_ci_low": (c * 15 / 6) ** 0.5, "tokens_ci_high": (c * 25 / 6) ** 0.5,
                           "predicted": 2.0 + shift, "ci_low": 1.9 + shift, "ci_high": 2.1 + shift, "actual": None})
    fc.append({"group_name": "arch=a", "law": "chinchilla", "target": "acc_task", "kind": "downstream",
               "name": "big", "flops": 1e21, "predicted": 0.61, "ci_low": 0.55, "ci_high": 0.66, "actual": 0.6})
    forecasts = pl.DataFrame(fc, infer_schema_length=None)
    backtests = pl.DataFrame({"group_name": ["arch=a"] * 2, "law": ["chinchilla"] * 2, "target": ["loss"] * 2,
                              "run": ["arch=a-1e+08-80", "arch=a-1e+08-20"], "actual": [2.4, 2.6],
                              "predicted": [2.41, 2.58], "ci_low": [2.3, 2.5], "ci_high": [2.5, 2.7]})
    ranking = pl.DataFrame({"group_name": ["arch=a", "arch=a"], "target": ["loss", "loss"], "rank": [2, 1],
                            "law": ["chinchilla", "kaplan"]})
    return points, runs, forecasts, backtests, ranking


def test_figures_per_target_and_group_with_captions(tmp_path):
    points, runs, forecasts, backtests, ranking = _tables()
    (tmp_path / "frontier_stale.png").write_bytes(b"old")  # a figure of a group that has gone
    figures = study_figures(tmp_path, "toy", points, runs, forecasts, backtests, ranking)
    names = [f.name for f in figures]
    assert names == ["frontier_loss__arch=a", "allocation_loss__arch=a", "frontier_loss__arch=b",
                     "allocation_loss__arch=b", "backtests_loss__arch=a", "downstream_accuracy__arch=a"]
    assert sorted(p.stem for p in tmp_path.glob("*.png")) == sorted(names)
    for f in figures:
        assert f.path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "study toy" in f.caption
        assert ("group arch=b" if f.name.endswith("arch=b") else "group arch=a") in f.caption
