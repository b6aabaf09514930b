"""The measures section's two figures: NP/DGP per regulariser and weight, and each measure against the
generalisation gap (Kendall's τ in each panel)."""
from pathlib import Path

import numpy as np
import pandas as pd

from model.analysis.figures import plotting
from model.analysis.treatments import colour, label, treatment_gid, treatment_key


def _num(x: float) -> str:
    return "—" if not np.isfinite(x) else f"{x:.3f}"


def by_weight(runs: pd.DataFrame, measures: tuple, labels: dict, out_dir: Path) -> Path:
    """Per block (rows) and measure (columns): mean ± std over the runs (networks × seeds) against the weight, one
    line per regulariser in its colour; the baseline as a black dashed line.

    runs: one row per trained run (block, regulariser, weight, one column per measure); measures: the columns to
    draw; labels: measure -> axis label."""
    plt = plotting.pyplot()
    blocks = sorted(runs["block"].unique())
    fig, axes = plt.subplots(len(blocks), len(measures), figsize=(plotting.PAGE_INCHES, 3.6 * len(blocks) + 1.0),
                             squeeze=False, layout="constrained")
    for ax_row, block in zip(axes, blocks):
        b = runs[runs["block"] == block]
        for ax, m in zip(ax_row, measures):
            regs = [r for r in sorted(b["regulariser"].unique(), key=treatment_key) if r != "none"]
            for reg in sorted(b["regulariser"].unique(), key=treatment_key):
                s = b[b["regulariser"] == reg].groupby("weight")[m].agg(["mean", "std"]).reset_index()
                if reg == "none":  # the unregularised baseline, drawn across the weight axis
                    ax.axhline(s["mean"].mean(), color=colour(reg), linestyle="--", label=label(reg),
                               gid=treatment_gid(reg))
                    continue
                dodge = 10 ** (0.03 * (regs.index(reg) - (len(regs) - 1) / 2))  # side by side, not on one x
                ax.errorbar(s["weight"] * dodge, s["mean"], yerr=s["std"].fillna(0), marker="o", ms=4, capsize=2,
                            lw=1.2, label=label(reg), color=colour(reg), gid=treatment_gid(reg))
            ax.set_xscale("symlog", linthresh=_linthresh(b["weight"]))
            ax.set(xlabel="regulariser weight ω", ylabel=labels[m])
            ax.set_title(f"{block}: {labels[m]}")
    _legend_below(fig, axes, "mean ± std over the runs (networks × seeds); points side by side around each weight")
    return plotting.save_png(fig, out_dir / "measures_by_weight.png")


def _legend_below(fig, axes, title: str) -> None:
    """One legend for the whole figure, below the panels (off the data): every label any panel has, once."""
    seen = {}
    for ax in axes.ravel():
        for handle, text in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(text, handle)
    fig.legend(list(seen.values()), list(seen), loc="outside lower center", ncol=min(len(seen), 4), frameon=False,
               title=title)


def _linthresh(weights: pd.Series) -> float:
    positive = weights[weights > 0]
    return float(positive.min()) if not positive.empty else 1.0


def _tau_text(taus: pd.DataFrame, measure: str) -> str:
    """One line per population: `name: τ = 0.12 (p = 0.3, n = 39)`."""
    rows = taus[taus["measure"] == measure]
    return "\n".join(f"{r.population}: τ = {_num(r.tau)} (p = {_num(r.p)}, n = {r.n})" for r in rows.itertuples())


def vs_gap(table: pd.DataFrame, taus: pd.DataFrame, measures: tuple, labels: dict, out_dir: Path) -> Path:
    """Scatter of each network measure against the gap: trained runs coloured by regulariser (collapsed runs as ×),
    PGDL models as grey triangles (one shade per task); Kendall's τ of each population printed in the panel.

    table: one row per network (source `run` or `pgdl`, regulariser, `collapsed`, `gap`, one column per measure);
    taus: population, measure, n, tau, p."""
    plt = plotting.pyplot()
    fig, axes = plt.subplots(1, len(measures), figsize=(plotting.PAGE_INCHES, 5.6), squeeze=False,
                             layout="constrained")
    pgdl = table[table["source"] == "pgdl"]
    runs = table[table["source"] == "run"]
    for ax, m in zip(axes[0], measures):
        for i, (task, g) in enumerate(pgdl.groupby(pgdl["network"].str.split("/").str[1])):
            ax.scatter(g[m], g["gap"], s=22, marker="^", color=str(0.3 + 0.25 * (i % 3)), label=f"PGDL {task}")
        for reg in sorted(runs["regulariser"].unique(), key=treatment_key):
            g = runs[runs["regulariser"] == reg]
            ok, bad = g[~g["collapsed"]], g[g["collapsed"]]
            ax.scatter(ok[m], ok["gap"], s=20, color=colour(reg), label=label(reg), gid=treatment_gid(reg),
                       edgecolor="white", linewidth=0.4)
            if not bad.empty:
                ax.scatter(bad[m], bad["gap"], s=40, marker="x", color=colour(reg), gid=treatment_gid(reg),
                           label=f"{label(reg)} collapsed")
        ax.set_title(_tau_text(taus, m), fontsize=plotting.TEXT_PT - 1, loc="left")
        ax.set(xlabel=labels[m], ylabel="gap (train − test accuracy)")
    _legend_below(fig, axes, "")
    return plotting.save_png(fig, out_dir / "measures_vs_gap.png")
