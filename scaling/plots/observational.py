"""Observational scaling laws (Ruan et al. 2024): capability against compute per family, and the
sigmoid link from capability to the target with the held-out models."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps

from .style import HELDOUT_COLOR, as_array, new_figure, save

MAX_FAMILIES = 8  # families drawn in colour (the ones with most models); the others in grey


def plot_observational(path, *, flops, capability, families, split, index, actual, floor: float = 0.0,
                       ceiling: float = 1.0, maps: dict | None = None, title: str = "Observational scaling law",
                       target_label: str = "target", explained: float | None = None):
    """Write a PNG and return its path.

    Left: each model's first principal component (capability) against its training compute, one colour
    per family (the ``MAX_FAMILIES`` largest), with each family's own fitted map (``maps``: family ->
    (slope per ln compute, intercept)); held-out models have a red edge. Right: the target against the
    link's index w·P + b, with the fitted sigmoid floor + (ceiling - floor)·sigmoid(index); fitted models
    filled, held-out models red. split: "fitted", "held_out" or anything else (shown hollow, grey).
    """
    C = as_array(flops, "flops")
    n = C.size
    pc1 = as_array(capability, "capability", n)
    z = as_array(index, "index", n)
    y = as_array(actual, "actual", n)
    fam = [str(f) for f in families]
    split = np.asarray(split).astype(str)
    if len(fam) != n or split.size != n:
        raise ValueError(f"expected {n} families and splits, got {len(fam)} and {split.size}")
    counts = {f: fam.count(f) for f in dict.fromkeys(fam)}
    top = sorted(counts, key=lambda f: (-counts[f], f))[:MAX_FAMILIES]
    palette = [colormaps["tab10"](i) for i in range(10) if i != 3]  # tab10's red marks held-out models
    color = {f: palette[i % len(palette)] for i, f in enumerate(top)}
    fig, axes = new_figure(12.0, 5.0, 1, 2)
    ax, bx = axes[0]
    has_c = np.isfinite(C) & (C > 0)
    for f in list(top) + ["other families"]:
        m = np.array([(x == f) if f != "other families" else (x not in color) for x in fam]) & has_c
        if not m.any():
            continue
        c = color.get(f, "0.6")
        held = m & (split == "held_out")
        ax.scatter(C[m & ~held], pc1[m & ~held], s=22, color=c, label=f, alpha=0.85)
        ax.scatter(C[held], pc1[held], s=30, facecolor=c, edgecolor=HELDOUT_COLOR, linewidth=1.5)
        if maps and f in maps and f in color:
            slope, icpt = maps[f]
            xs = np.geomspace(C[m].min(), C[m].max(), 20)
            ax.plot(xs, slope * np.log(xs) + icpt, color=c, lw=1.2)
    ax.scatter([], [], s=30, facecolor="white", edgecolor=HELDOUT_COLOR, linewidth=1.5, label="held out")
    ax.set_xscale("log")
    ax.set_xlabel("training compute (FLOPs)")
    ax.set_ylabel("capability: principal component 1"
                  + (f" ({explained:.0%} of variance)" if explained is not None else ""))
    ax.set_title("capability vs compute, per family")
    ax.grid(True, alpha=0.25)
    ax.legend(fontsize=7, loc="upper left", ncol=2)
    ok = np.isfinite(z) & np.isfinite(y)
    fitted, held = ok & (split == "fitted"), ok & (split == "held_out")
    other = ok & ~fitted & ~held
    bx.scatter(z[fitted], y[fitted], s=20, color="#1f77b4", alpha=0.8, label="fitted (at or below the cut-off)")
    bx.scatter(z[held], y[held], s=26, color=HELDOUT_COLOR, alpha=0.9, label="held out (above the cut-off)")
    if other.any():
        bx.scatter(z[other], y[other], s=20, facecolor="none", edgecolor="0.5", label="not fitted")
    if ok.any():
        zs = np.linspace(z[ok].min() - 0.5, z[ok].max() + 0.5, 200)
        bx.plot(zs, floor + (ceiling - floor) * 0.5 * (1 + np.tanh(0.5 * zs)), color="black", lw=1.2,
                label="sigmoid link")
    bx.set_xlabel("link index w·P + b (from the benchmark scores)")
    bx.set_ylabel(target_label)
    bx.set_title(f"{target_label} from capabilities")
    bx.grid(True, alpha=0.25)
    bx.legend(fontsize=8, loc="upper left")
    fig.suptitle(title)
    return save(fig, path)
