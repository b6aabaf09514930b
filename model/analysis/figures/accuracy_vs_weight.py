"""Accuracy against the regulariser weight, one PNG per network: validation and test accuracy (mean ± std over
seeds) per regulariser panel (at most `plotting.PANELS_PER_ROW` per row, the page's width), the baseline as black
lines with its spread over seeds as grey bands (mean ± std; a baseline whose seeds spread from 0.26 to 0.72 must not
look like one number), collapsed points as markers on the lower edge; one legend below the panels."""
from pathlib import Path

import pandas as pd

from model.analysis.figures import plotting
from model.analysis.treatments import BASELINE, COLLAPSE_FRACTION, colour, label, treatment_gid, treatment_key


def plot(frame: pd.DataFrame, network: str, out_dir: Path) -> Path:
    """Mean (± std over seeds) validation and test accuracy against the weight, one panel per regulariser in its
    colour, each panel on its own y axis zoomed on the points that did not collapse; the baseline as black lines
    (its mean over seeds) with a grey band of ± one standard deviation over its seeds when it has several.
    Returns the PNG path."""
    plt = plotting.pyplot()
    runs_ = frame[frame["network"] == network]
    regs = sorted((r for r in runs_["regulariser"].unique() if r != BASELINE), key=treatment_key)
    base = runs_[runs_["regulariser"] == BASELINE]
    floor = COLLAPSE_FRACTION * float(runs_["test_accuracy"].median())
    from matplotlib.lines import Line2D

    rows, columns = plotting.grid(len(regs))
    fig, axes = plt.subplots(rows, columns, figsize=(plotting.PAGE_INCHES, 2.9 * rows + 0.9), squeeze=False,
                             layout="constrained")
    axes = axes.ravel()
    for ax in axes[len(regs):]:
        ax.set_visible(False)
    for ax, reg in zip(axes, regs):
        cell = runs_[(runs_["regulariser"] == reg) & (runs_["weight"] > 0)]
        agg = cell.groupby("weight")[["val_accuracy", "test_accuracy"]].agg(["mean", "std", "count"])
        spread = {col: float(base[col].std()) if base[col].count() > 1 else 0.0
                  for col in ("val_accuracy", "test_accuracy")}
        shown = [] if base.empty else [base[col].mean() + sign * spread[col] for col in spread for sign in (-1, 1)]
        for col, style, face in (("val_accuracy", "o-", colour(reg)), ("test_accuracy", "s--", "white")):
            mean, std = agg[(col, "mean")], agg[(col, "std")].fillna(0.0)
            ok = mean >= floor
            ax.errorbar(agg.index[ok], mean[ok], yerr=std[ok] if (agg[(col, "count")] > 1).any() else None,
                        fmt=style, ms=5, lw=1.4, capsize=2, color=colour(reg), mfc=face, gid=treatment_gid(reg))
            shown += list(mean[ok] - std[ok]) + list(mean[ok] + std[ok])
        lo, hi = (min(shown), max(shown)) if shown else (0.0, 1.0)
        pad = max(0.01, 0.08 * (hi - lo))
        ax.set_ylim(lo - pad, hi + pad)
        for w in agg.index:  # collapsed: a marker on the lower edge per accuracy, one label with the values
            low = [(col, agg.loc[w, (col, "mean")]) for col in ("val_accuracy", "test_accuracy")
                   if agg.loc[w, (col, "mean")] < floor]
            for col, _ in low:
                ax.plot([w], [lo - pad], marker="v", ms=7, color=colour(reg), clip_on=False, gid=treatment_gid(reg),
                        mfc=colour(reg) if col == "val_accuracy" else "white")
            if low:
                ax.annotate("\n".join(f"{col.split('_')[0]} {v:.2f}" for col, v in low), (w, lo - pad),
                            xytext=(0, 7), textcoords="offset points", ha="center", va="bottom",
                            fontsize=plotting.TEXT_PT - 1, color=colour(reg))
        ax.margins(x=0.12)
        if not base.empty:
            for col, style, shade in (("val_accuracy", ":", "0.85"), ("test_accuracy", "-.", "0.75")):
                mean = base[col].mean()
                ax.axhline(mean, color=colour(BASELINE), ls=style, lw=1, gid=treatment_gid(BASELINE))
                if spread[col] > 0:
                    ax.axhspan(mean - spread[col], mean + spread[col], color=shade, alpha=0.45, lw=0, zorder=0,
                               gid=f"baseline_band:{col}")
        n = int(agg[("val_accuracy", "count")].max()) if not agg.empty else 0
        n_base = int(base["seed"].nunique()) if not base.empty else 0
        ax.text(0.02, 0.02, ("1 seed: no spread" if n == 1 else f"± std, {n} seeds")
                + (f"; grey: ∅ ± std, {n_base} seeds" if n_base > 1 else ""), transform=ax.transAxes,
                fontsize=plotting.TEXT_PT - 1, color="0.35", va="bottom")
        ax.set_xscale("log")
        ax.set_title(label(reg), color=colour(reg), weight="bold")
        ax.set_xlabel("weight ω")
    for row in range(rows):
        axes[row * columns].set_ylabel("accuracy")
    key = [Line2D([], [], color="0.3", marker="o", ls="-", label="validation"),
           Line2D([], [], color="0.3", marker="s", mfc="white", ls="--", label="test"),
           Line2D([], [], color=colour(BASELINE), ls=":", label=f"{label(BASELINE)} validation"),
           Line2D([], [], color=colour(BASELINE), ls="-.", label=f"{label(BASELINE)} test")]
    fig.legend(handles=key, loc="outside lower center", ncol=4, frameon=False)
    fig.suptitle(network)
    return plotting.save_png(fig, out_dir / f"acc_vs_weight_{plotting.slug(network)}.png")
