"""What NP and DGP say: measures per regulariser and weight, and Kendall's τ with the generalisation gap.

Input is the tidy measures CSV of `scripts/measure.py` (`model.measures.table.COLUMNS`); the gap of a network is
train − test accuracy (fractions). `measures_section` returns the report's Markdown section and writes its figures.
Reads CSVs and writes PNGs only; must not compute measures or train.
"""
import math
from pathlib import Path

import numpy as np
import pandas as pd

from model.analysis.plotting import pyplot, save_png
from model.analysis.tables import to_markdown
from model.measures.compute import CHANNEL_MAX
from model.measures.table import read as read_measures

NETWORK_MEASURES = ("np_mean_normalised", "np_total", "dgp_normalised", "dgp")  # one value per network
FIGURE_MEASURES = ("np_mean_normalised", "dgp_normalised")
LABELS = {"np_mean_normalised": "NP (mean normalised)", "np_total": "NP (sum over layers)",
          "dgp_normalised": "DGP (normalised)", "dgp": "DGP"}


def wide(measures: pd.DataFrame) -> pd.DataFrame:
    """One row per network/run: identity, accuracies, `gap` = train − test accuracy, one column per network measure."""
    net = measures[measures["layer"] == ""]
    ident = ["run_id", "source", "block", "network", "regulariser", "weight", "seed", "train_accuracy",
             "test_accuracy"]
    out = net.pivot_table(index="run_id", columns="measure", values="value", aggfunc="first")
    out = net.drop_duplicates("run_id")[ident].set_index("run_id").join(out).reset_index()
    out["gap"] = out["train_accuracy"] - out["test_accuracy"]
    return out


def with_accuracies(measures: pd.DataFrame, accuracies: pd.DataFrame) -> pd.DataFrame:
    """Take train/test accuracies of runs from the accuracies table (matched by task id) where it has them."""
    if "task_id" not in accuracies or "train_accuracy" not in accuracies:
        return measures
    acc = accuracies.set_index("task_id")[["train_accuracy", "test_accuracy"]]
    out = measures.copy()
    hit = out["run_id"].isin(acc.index) & (out["source"] == "run")
    for col in ("train_accuracy", "test_accuracy"):
        out.loc[hit, col] = out.loc[hit, "run_id"].map(acc[col]).astype(float)
    return out


def per_regulariser(measures: pd.DataFrame) -> pd.DataFrame:
    """Trained runs: mean, std and count over seeds of each network measure, per block, regulariser and weight."""
    runs = wide(measures[measures["source"] == "run"])
    cols = [m for m in NETWORK_MEASURES if m in runs] + ["gap"]
    if runs.empty:
        return pd.DataFrame(columns=["block", "regulariser", "weight", "n"])
    grouped = runs.groupby(["block", "regulariser", "weight"])
    table = grouped[cols].agg(["mean", "std"])
    table.columns = [f"{m}_{stat}" for m, stat in table.columns]
    table["n"] = grouped.size()
    return table.reset_index()


def kendall(measures: pd.DataFrame) -> pd.DataFrame:
    """Kendall's τ-b (and two-sided p) between each network measure and the gap, per population.

    Populations: the original PGDL networks per task (`pgdl: <task>`; gaps of different tasks are not comparable),
    our trained runs per block (`runs: <block>`) and, when there are several blocks, all runs together
    (`runs: all`). τ is NaN with fewer than 3 networks or a constant column.
    """
    from scipy.stats import kendalltau

    table = wide(measures)
    pgdl = table[table["source"] == "pgdl"]
    groups = [(f"pgdl: {task}", g) for task, g in pgdl.groupby(pgdl["network"].str.split("/").str[1])]
    runs = table[table["source"] == "run"]
    groups += [(f"runs: {block}", g) for block, g in runs.groupby("block")]
    if runs["block"].nunique() > 1:
        groups.append(("runs: all", runs))
    rows = []
    for name, g in groups:
        for m in NETWORK_MEASURES:
            if g.empty or m not in g:
                continue
            ok = g[[m, "gap"]].dropna()
            tau = p = math.nan
            if len(ok) >= 3 and ok[m].nunique() > 1 and ok["gap"].nunique() > 1:
                res = kendalltau(ok[m], ok["gap"])
                tau, p = float(res.statistic), float(res.pvalue)
            rows.append(dict(population=name, measure=m, n=len(ok), tau=tau, p=p))
    return pd.DataFrame(rows, columns=["population", "measure", "n", "tau", "p"])


def measures_section(measures_csv: str | Path, accuracies_csv: str | Path | None, out_dir: str | Path) -> str:
    """The report's Markdown section on NP and DGP; figures are written to `out_dir` and linked by file name
    (so the report that includes this section lives in `out_dir`).

    accuracies_csv: the accuracies table (`model.analysis.accuracies`); where it has `task_id` and `train_accuracy`,
    the runs' accuracies are taken from it, otherwise those recorded with the measures (the runs' DONE.json) are used.
    """
    measures = read_measures(measures_csv)
    if accuracies_csv is not None:
        from model.analysis.accuracies import read

        measures = with_accuracies(measures, read(accuracies_csv))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table, taus = per_regulariser(measures), kendall(measures)
    counts = wide(measures)["source"].value_counts()
    lines = [
        "## Neural persistence and deep graph persistence",
        "",
        "Neural persistence (NP; Rieck et al., 2019) and deep graph persistence (DGP; Girrbach et al., 2023) of the "
        "final weights, computed as in their reference code: NP is the 2-norm of the 0-dimensional persistence "
        "diagram of each layer's superlevel filtration (|w| over the network's largest |w|; maximum spanning tree "
        "plus the essential point), divided by sqrt(n_in + n_out − 1) and averaged over layers; DGP standardises "
        "each layer, composes the layers by the max–min (bottleneck-path) product and takes the normalised NP of "
        "the composed input × output matrix. Biases are left out. Conv2D layers, absent from both reference codes, "
        f"use our `{CHANNEL_MAX}` extension: one vertex per channel, edge weight the largest |w| over the kernel taps "
        "(for DGP, a Dense layer after a Flatten is reduced to channels the same way). The generalisation gap is "
        "train − test accuracy.",
        "",
        f"Networks measured: {int(counts.get('run', 0))} trained runs, {int(counts.get('pgdl', 0))} PGDL models.",
        "",
    ]
    if not table.empty:
        lines += ["### Measures per regulariser and weight (mean ± std over seeds)", "", _regulariser_markdown(table),
                  "", f"![NP and DGP per regulariser and weight]({_plot_by_weight(measures, out_dir).name})", ""]
    lines += ["### Kendall's τ between each measure and the generalisation gap", ""]
    if taus.empty:
        lines += ["No network measured.", ""]
    else:
        lines += [_markdown(taus.assign(measure=taus["measure"].map(LABELS), tau=taus["tau"].map(_num),
                                        p=taus["p"].map(_num))),
                  "τ > 0: networks with a larger measure have a larger gap. With few networks (PGDL: 8 in the paper's "
                  "selection) |τ| must be large to mean anything; p is the two-sided p-value of τ-b.", "",
                  f"![Measures against the generalisation gap]({_plot_vs_gap(measures, out_dir).name})", ""]
    return "\n".join(lines)


def _regulariser_markdown(table: pd.DataFrame) -> str:
    cols = {m: f"{m}_mean" for m in NETWORK_MEASURES + ("gap",) if f"{m}_mean" in table}
    out = table[["block", "regulariser", "weight", "n"]].copy()
    for m, col in cols.items():
        out[LABELS.get(m, m)] = [f"{a:.4f} ± {b:.4f}" if np.isfinite(b) else f"{a:.4f}"
                                 for a, b in zip(table[col], table[f"{m}_std"])]
    out["weight"] = out["weight"].map(lambda w: f"{w:g}")
    return _markdown(out)


def _markdown(frame: pd.DataFrame) -> str:
    """Markdown of a frame of already formatted cells, its first column as row labels."""
    return to_markdown(frame.set_index(frame.columns[0]))


def _num(x: float) -> str:
    return "—" if not np.isfinite(x) else f"{x:.3f}"


def _plot_by_weight(measures: pd.DataFrame, out_dir: Path) -> Path:
    """Per block (rows) and measure (columns): mean ± std over seeds against the weight, one line per regulariser."""
    plt = pyplot()
    runs = wide(measures[measures["source"] == "run"])
    blocks = sorted(runs["block"].unique())
    fig, axes = plt.subplots(len(blocks), len(FIGURE_MEASURES), figsize=(5 * len(FIGURE_MEASURES), 3.2 * len(blocks)),
                             squeeze=False)
    for ax_row, block in zip(axes, blocks):
        b = runs[runs["block"] == block]
        for ax, m in zip(ax_row, FIGURE_MEASURES):
            for reg, g in b.groupby("regulariser"):
                s = g.groupby("weight")[m].agg(["mean", "std"]).reset_index()
                if reg == "none":  # the unregularised baseline, drawn across the weight axis
                    ax.axhline(s["mean"].mean(), color="grey", linestyle="--", label="none")
                    continue
                ax.errorbar(s["weight"], s["mean"], yerr=s["std"].fillna(0), marker="o", capsize=3, label=reg)
            ax.set_xscale("symlog", linthresh=_linthresh(b["weight"]))
            ax.set(xlabel="regulariser weight", ylabel=LABELS[m], title=f"{block}: {LABELS[m]}")
            ax.legend(fontsize="small")
    fig.tight_layout()
    return save_png(fig, out_dir / "measures_by_weight.png")


def _linthresh(weights: pd.Series) -> float:
    positive = weights[weights > 0]
    return float(positive.min()) if not positive.empty else 1.0


def _plot_vs_gap(measures: pd.DataFrame, out_dir: Path) -> Path:
    """Scatter of each network measure against the gap, PGDL models and each block of runs in their own colour."""
    plt = pyplot()
    table = wide(measures)
    task = table["network"].str.split("/").str[1]
    table["population"] = np.where(table["source"] == "pgdl", "PGDL " + task, "runs: " + table["block"].astype(str))
    fig, axes = plt.subplots(1, len(FIGURE_MEASURES), figsize=(5 * len(FIGURE_MEASURES), 3.6), squeeze=False)
    for ax, m in zip(axes[0], FIGURE_MEASURES):
        for name, g in table.groupby("population"):
            ax.scatter(g[m], g["gap"], s=18, label=name)
        ax.set(xlabel=LABELS[m], ylabel="train − test accuracy")
        ax.legend(fontsize="small")
    fig.tight_layout()
    return save_png(fig, out_dir / "measures_vs_gap.png")
