"""Training curves of one network at each treatment's selected weight: train/validation accuracy and train
cross-entropy per epoch for every treatment (★ at the kept epoch), and the regulariser term R per regulariser on its
own axis."""
from pathlib import Path

from model.analysis.figures import plotting
from model.analysis.treatments import BASELINE, colour, label, treatment_gid

CURVES = ("accuracy", "val_accuracy", "ce")  # history.csv columns drawn for every treatment, where present
CURVE_TITLES = {"accuracy": "train accuracy", "val_accuracy": "validation accuracy", "ce": "train cross-entropy"}
REG = "reg"  # history.csv column of the unweighted regulariser term, drawn per regulariser on its own axis


def plot(histories: dict, network: str, out_dir: Path) -> Path | None:
    """Top row: `CURVES` (one panel each, one line per treatment, ★ at the kept epoch); bottom row: the regulariser
    term `REG` per regularised treatment on its own axis. histories: treatment -> (history frame, kept epoch or None).
    Returns the PNG path, or None when no history has a column to draw."""
    columns = [c for c in CURVES if any(c in h for h, _ in histories.values())]
    regs = [t for t, (h, _) in histories.items() if t != BASELINE and REG in h]
    if not columns and not regs:
        return None
    plt = plotting.pyplot()
    from matplotlib.ticker import MaxNLocator

    fig = plt.figure(figsize=(max(3.0 * len(columns), 2.2 * len(regs)), 5.2 if regs else 2.7), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=(1.15, 1)) if regs else (fig, None)
    axes = top.subplots(1, max(1, len(columns)), squeeze=False)[0]
    for ax, col in zip(axes, columns):
        for t, (hist, kept) in histories.items():
            if col not in hist:
                continue
            ax.plot(hist["epoch"], hist[col], lw=1.2, color=colour(t), label=label(t), gid=treatment_gid(t))
            at = hist[hist["epoch"] == kept]
            if not at.empty:
                ax.plot(at["epoch"], at[col], marker="*", ms=9, ls="none", color=colour(t), mec="black", mew=0.4,
                        gid=treatment_gid(t))
        ax.set_title(CURVE_TITLES.get(col, col), fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=7)
    if columns:
        axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5), title="★ kept epoch",
                        title_fontsize=7)
    if regs:
        reg_axes = bottom.subplots(1, len(regs), squeeze=False)[0]
        for ax, t in zip(reg_axes, regs):
            hist, kept = histories[t]
            ax.plot(hist["epoch"], hist[REG], lw=1.2, color=colour(t), gid=treatment_gid(t))
            if kept is not None:
                ax.axvline(kept, color=colour(t), ls=":", lw=1, gid=treatment_gid(t))
            ax.set_title(f"R of {label(t)}", fontsize=9, color=colour(t), weight="bold")
            ax.set_xlabel("epoch", fontsize=8)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.tick_params(labelsize=7)
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
        bottom.suptitle("regulariser term R (unweighted; own axis per regulariser)", fontsize=8)
    fig.suptitle(f"{network}: training at the selected weights", fontsize=10)
    return plotting.save_png(fig, out_dir / f"curves_{plotting.slug(network)}.png")
