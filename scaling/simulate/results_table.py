"""A small published-results study: a table of final losses from the Chinchilla law, and its study file.

The loss of a model with N parameters trained on D tokens is Hoffmann et al. 2022's fit,
L(N, D) = 1.69 + offset + 406.4 / N^0.34 + 410.7 / D^0.28, optionally times a seeded log-normal
noise exp(eps), eps ~ Normal(0, noise). Tests and benchmarks use it as a study that runs in seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SIZES = (1e7, 3e7, 1e8, 3e8)
TOKENS_PER_PARAM = (5, 20, 80)

_FITS = """
[[fits]]
law = "{law}"
target = "loss"
n_resamples = {n_resamples}
"""


def source_block(name: str, location: str, *, kind: str = "checkpoint_results", run: str = "run",
                 params: str = "N", tokens: str = "D", metrics: str = 'loss = "loss"', labels: dict | None = None,
                 final: bool | None = None, extra: str = "") -> str:
    """A `[[sources]]` block for a CSV table: `run`, `params` and `tokens` name its columns, `metrics` is
    the body of `[sources.metrics]`, `labels` are the runs' labels, `extra` more source keys. Results
    (`kind`) are all final unless `final` is False; training logs give each row as a point of a curve."""
    final = kind == "checkpoint_results" if final is None else final
    text = (f'\n[[sources]]\nname = "{name}"\nkind = "{kind}"\nlocation = "{location}"\nformat = "csv"\n'
            f'run = "{run}"\n' + ('final = "all"\n' if final else "") + extra
            + f'[sources.columns]\nparams = "{params}"\ntokens = "{tokens}"\n[sources.metrics]\n{metrics}\n')
    if labels:
        text += "[sources.defaults]\nlabels = { " + ", ".join(f'{k} = "{v}"' for k, v in labels.items()) + " }\n"
    return text


def results_rows(offset: float = 0.0, *, sizes=SIZES, tokens_per_param=TOKENS_PER_PARAM, noise: float = 0.0,
                 seed: int = 0) -> list[str]:
    """CSV lines (header first) of `model,params,tokens,loss`, one model per size x tokens per parameter."""
    rng = np.random.default_rng(seed)
    rows = ["model,params,tokens,loss"]
    for n in sizes:
        for k in tokens_per_param:
            d = n * k
            loss = (1.69 + offset + 406.4 / n**0.34 + 410.7 / d**0.28) * float(np.exp(rng.normal(0.0, noise)))
            rows.append(f"m{int(n)}-{k},{n:g},{d:g},{loss:.5f}")
    return rows


def write_results_csv(path: Path, offset: float = 0.0, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(results_rows(offset, **kw)) + "\n")
    return path


def results_study(name: str, *, location: str | None = None, description: str | None = None,
                  law: str | None = "chinchilla", n_resamples: int = 40, backtest_resamples: int | None = 20,
                  source_extra: str = "", extra: str = "", study_keys: str = "") -> str:
    """The study file of a results table at `location` (default ``data/<name>.csv``); `law` None: no fit,
    `backtest_resamples` None: the fitter's default.

    `study_keys` adds keys to ``[study]``, `source_extra` to the source (before its column map), and
    `extra` appends text at the end."""
    head = f'[study]\n{study_keys}description = "{description or f"{name}: a small results table"}"\n'
    text = head + source_block("table", location or f"data/{name}.csv", run="model", params="params",
                               tokens="tokens", final=False, extra=source_extra)
    if law is not None:
        text += _FITS.format(law=law, n_resamples=n_resamples)
        if backtest_resamples is not None:
            text += f"backtest_resamples = {backtest_resamples}\n"
    return text + (extra + "\n" if extra else "")


def write_results_study(folder: Path, name: str, offset: float = 0.0, *, data: str | None = None,
                        with_data: bool = True, tokens_per_param=TOKENS_PER_PARAM, noise: float = 0.0, seed: int = 0,
                        **study) -> Path:
    """Write ``<folder>/<name>.toml`` and its table (at `data`, relative to `folder`, default the
    study's location, a ``*`` in it read as ``results``); the table's keywords go to `results_rows`,
    the rest to `results_study`. Returns the study file."""
    data = data or study.get("location") or f"data/{name}.csv"
    if with_data:
        write_results_csv(folder / data.replace("*", "results"), offset, tokens_per_param=tokens_per_param,
                          noise=noise, seed=seed)
    study.setdefault("location", data)
    path = folder / f"{name}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(results_study(name, **study))
    return path


def write_grouped_results_study(folder: Path, name: str, offsets: dict[str, float] | None = None, *,
                                n_resamples: int = 40, backtest_resamples: int = 20, noise: float = 0.0,
                                seed: int = 0) -> Path:
    """Write a grouped study: one results table per arm (``offsets``: arm -> offset, default two arms
    ``a`` and ``b`` 0.1 nats apart), each a source labelled ``arm``, grouped by it, with one fit
    and a named target run forecast per arm. Run names start with the arm; each arm's table has its
    own `noise` draw (seeds `seed`, `seed` + 1, ...). Returns the study file."""
    offsets = {"a": 0.0, "b": 0.1} if offsets is None else offsets
    sources = []
    for i, (arm, offset) in enumerate(offsets.items()):
        rows = results_rows(offset, noise=noise, seed=seed + i)
        table = folder / "data" / name / f"{arm}.csv"
        table.parent.mkdir(parents=True, exist_ok=True)
        table.write_text("\n".join([rows[0]] + [f"{arm}-{r}" for r in rows[1:]]) + "\n")
        sources.append(source_block(arm, f"data/{name}/{arm}.csv", run="model", params="params", tokens="tokens",
                                    labels={"arm": arm}))
    text = (f'[study]\ngroup_by = ["arm"]\ndescription = "{name}: two arms of a small results table"\n'
            + "".join(sources) + _FITS.format(law="chinchilla", n_resamples=n_resamples)
            + f"backtest_resamples = {backtest_resamples}\n"
            + '\n[forecasts]\nn_budgets = 3\ntargets = [{ name = "1B-20x", params = 1e9, tokens = 2e10 }]\n')
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path
