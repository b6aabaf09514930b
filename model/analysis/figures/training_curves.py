"""Training curves of one network at each treatment's selected weight: train/validation accuracy and train
cross-entropy per epoch for every treatment (★ at the kept epoch; the legend below them), and the regulariser term R
per regulariser on its own axis (at most `plotting.PANELS_PER_ROW` per row, the page's width).

Curves that coincide must stay visible: the baseline is drawn last, thicker and dashed, so a treatment whose curves
equal the baseline's (a regulariser that never acted) shows through the dashes; each such treatment also carries its
own marker at staggered epochs (several identical treatments do not hide each other), and its legend entry says
"identical to ∅". A regulariser-term panel whose term never reached the update (applied in 0 % of the steps) is
hatched and says so: R was computed, not applied."""
from pathlib import Path

import numpy as np
import pandas as pd

from model.analysis.figures import plotting
from model.analysis.treatments import BASELINE, colour, label, treatment_gid

CURVES = ("accuracy", "val_accuracy", "ce")  # history.csv columns drawn for every treatment, where present
CURVE_TITLES = {"accuracy": "train accuracy", "val_accuracy": "validation accuracy", "ce": "train cross-entropy"}
REG = "reg"  # history.csv column of the unweighted regulariser term, drawn per regulariser on its own axis
SAME_MARKERS = ("o", "s", "^", "D", "v", "P")  # markers of curves identical to the baseline's, staggered


def identical_to_baseline(histories: dict, columns: list) -> set:
    """The treatments whose `columns` curves equal the baseline's at every epoch (to float32 rounding)."""
    if BASELINE not in histories:
        return set()
    base = histories[BASELINE][0]
    out = set()
    for t, (hist, _) in histories.items():
        shared = [c for c in columns if c in hist and c in base]
        if t == BASELINE or not shared or len(hist) != len(base):
            continue
        a = hist[shared].to_numpy(dtype=float)
        b = base[shared].to_numpy(dtype=float)
        if np.allclose(a, b, rtol=1e-6, atol=1e-7, equal_nan=True):
            out.add(t)
    return out


def plot(histories: dict, network: str, out_dir: Path, applied: dict | None = None) -> Path | None:
    """Top row: `CURVES` (one panel each, one line per treatment, ★ at the kept epoch; the baseline last, thick and
    dashed; "identical to ∅" in the legend for a treatment whose curves equal it); bottom row: the regulariser term
    `REG` per regularised treatment on its own axis, hatched and labelled "never applied" when `applied[t]` (the
    fraction of its steps whose regulariser gradient reached the update) is 0. histories: treatment -> (history
    frame, kept epoch or None). Returns the PNG path, or None when no history has a column to draw."""
    applied = applied or {}
    columns = [c for c in CURVES if any(c in h for h, _ in histories.values())]
    regs = [t for t, (h, _) in histories.items() if t != BASELINE and REG in h]
    if not columns and not regs:
        return None
    plt = plotting.pyplot()
    from matplotlib.ticker import MaxNLocator

    reg_rows, reg_columns = plotting.grid(len(regs))
    rows = 1 + (reg_rows if regs else 0)
    fig = plt.figure(figsize=(plotting.PAGE_INCHES, 2.8 * rows + 1.0), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=(1.3, reg_rows)) if regs else (fig, None)
    axes = top.subplots(1, max(1, len(columns)), squeeze=False)[0]
    same = identical_to_baseline(histories, columns)
    same_order = [t for t in histories if t in same]
    order = sorted(histories, key=lambda t: t == BASELINE)  # the baseline last, on top
    for ax, col in zip(axes, columns):
        for t in order:
            hist, kept = histories[t]
            if col not in hist:
                continue
            base = t == BASELINE
            marks = {}
            if t in same:  # its own marker, at every len(same)-th epoch from its position: none hides another
                j = same_order.index(t)
                marks = dict(marker=SAME_MARKERS[j % len(SAME_MARKERS)], ms=5, markevery=(j, len(same_order)))
            ax.plot(hist["epoch"], hist[col], lw=2.2 if base else 1.2, ls=(0, (4, 3)) if base else "-",
                    color=colour(t), label=label(t) + (" (identical to ∅)" if t in same else ""),
                    gid=treatment_gid(t), zorder=3 if base else 2, **marks)
            at = hist[hist["epoch"] == kept]
            if not at.empty:
                ax.plot(at["epoch"], at[col], marker="*", ms=9, ls="none", color=colour(t), mec="black", mew=0.4,
                        gid=treatment_gid(t))
        ax.set_title(CURVE_TITLES.get(col, col))
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
    if columns:
        handles, labels = axes[0].get_legend_handles_labels()
        top.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 7), frameon=False,
                   title="★ kept epoch")
    if regs:
        reg_axes = bottom.subplots(reg_rows, reg_columns, squeeze=False).ravel()
        for ax in reg_axes[len(regs):]:
            ax.set_visible(False)
        for ax, t in zip(reg_axes, regs):
            hist, kept = histories[t]
            ax.plot(hist["epoch"], hist[REG], lw=1.2, color=colour(t), gid=treatment_gid(t))
            if kept is not None:
                ax.axvline(kept, color=colour(t), ls=":", lw=1, gid=treatment_gid(t))
            never = applied.get(t) is not None and not pd.isna(applied[t]) and float(applied[t]) == 0.0
            if never:  # R was computed every step but its gradient never reached the update
                ax.set_facecolor("0.93")
                ax.text(0.5, 0.5, "never applied\n(0 % of steps)", transform=ax.transAxes, ha="center",
                        va="center", color="0.25", weight="bold", gid=f"never_applied:{t}")
            ax.set_title(f"R of {label(t)}" + (" (not applied)" if never else ""), color=colour(t), weight="bold")
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
        bottom.suptitle("regulariser term R (unweighted; own axis per regulariser)")
    fig.suptitle(f"{network}: training at the selected weights")
    return plotting.save_png(fig, out_dir / f"curves_{plotting.slug(network)}.png")
