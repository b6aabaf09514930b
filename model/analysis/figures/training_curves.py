"""Training curves of one network at each treatment's selected weight: train/validation accuracy and train
cross-entropy per epoch for every treatment (★ at the kept epoch; the legend below them), and the regulariser term R
per regulariser on its own axis (at most `plotting.PANELS_PER_ROW` per row, the page's width)."""
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

    reg_rows, reg_columns = plotting.grid(len(regs))
    rows = 1 + (reg_rows if regs else 0)
    fig = plt.figure(figsize=(plotting.PAGE_INCHES, 2.8 * rows + 1.0), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=(1.3, reg_rows)) if regs else (fig, None)
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
            ax.set_title(f"R of {label(t)}", color=colour(t), weight="bold")
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
        bottom.suptitle("regulariser term R (unweighted; own axis per regulariser)")
    fig.suptitle(f"{network}: training at the selected weights")
    return plotting.save_png(fig, out_dir / f"curves_{plotting.slug(network)}.png")
