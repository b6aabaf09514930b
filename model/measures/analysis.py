"""What NP and DGP say: measures per regulariser and weight, and Kendall's τ with the generalisation gap.

Input is the tidy measures CSV of `scripts/measure.py` (`model.measures.table.COLUMNS`); the gap of a network is
train − test accuracy (fractions). `measures_section` returns the report's Markdown section and writes its figures
(regularisers in their colours and paper labels, `model.analysis.style`). A run is `collapsed` when its test accuracy
is below COLLAPSE_FRACTION × the median of its network's runs (`model.analysis.summary`); such runs are marked in the
figures and τ is also given without them. Reads CSVs and writes PNGs only; must not compute measures or train.
"""
import math
from pathlib import Path

import numpy as np
import pandas as pd

from model.analysis.figures.plotting import pyplot, save_png
from model.analysis.statistics import treatment_key
from model.analysis.style import colour, label, treatment_gid
from model.analysis.summary import COLLAPSE_FRACTION
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
    runs = out["source"] == "run"
    median = out[runs].groupby("network")["test_accuracy"].transform("median")
    out["collapsed"] = False
    out.loc[runs, "collapsed"] = out.loc[runs, "test_accuracy"] < COLLAPSE_FRACTION * median
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
    (`runs: all`); where some runs collapsed, each runs population again without them (`..., collapsed left out`).
    τ is NaN with fewer than 3 networks or a constant column.
    """
    from scipy.stats import kendalltau

    table = wide(measures)
    pgdl = table[table["source"] == "pgdl"]
    groups = [(f"pgdl: {task}", g) for task, g in pgdl.groupby(pgdl["network"].str.split("/").str[1])]
    runs = table[table["source"] == "run"]
    groups += [(f"runs: {block}", g) for block, g in runs.groupby("block")]
    if runs["block"].nunique() > 1:
        groups.append(("runs: all", runs))
    groups += [(f"{name}, collapsed left out", g[~g["collapsed"]]) for name, g in list(groups)
               if name.startswith("runs") and g["collapsed"].any()]
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
        "final weights, following their definitions: NP is the 2-norm of the 0-dimensional persistence "
        "diagram of each layer's superlevel filtration (|w| over the network's largest |w|; maximum spanning tree "
        "plus the essential point), divided by sqrt(n_in + n_out − 1) and averaged over layers; DGP standardises "
        "each layer, composes the layers by the max–min (bottleneck-path) product and takes the normalised NP of "
        "the composed input × output matrix. NP variant: biases left out (kernels only, as the DGP reference code "
        "does); Rieck et al.'s reference code instead folds each layer's bias in as one more input neuron "
        "(`include_bias=True` in `model.measures.compute.neural_persistence`); that changes the values (on the "
        "39 digits demo runs by 0–23 % on the network NP, median 0.3 %). Conv2D layers, absent from both reference "
        "codes, "
        f"use our `{CHANNEL_MAX}` extension: one vertex per channel, edge weight the largest |w| over the kernel taps "
        "(for DGP, a Dense layer after a Flatten is reduced to channels the same way). The generalisation gap is "
        "train − test accuracy.",
        "",
        f"Networks measured: {int(counts.get('run', 0))} trained runs, {int(counts.get('pgdl', 0))} PGDL models.",
        "",
    ]
    if not table.empty:
        lines += ["### Measures per regulariser and weight", "", "Mean ± standard deviation over the n runs of each "
                  "row (its networks × seeds; a single run has no spread).", "", _regulariser_markdown(table),
                  "", f"![NP and DGP per regulariser and weight]({_plot_by_weight(measures, out_dir).name})", ""]
    lines += ["### Kendall's τ between each measure and the generalisation gap", ""]
    if taus.empty:
        lines += ["No network measured.", ""]
    else:
        lines += [_markdown(taus.assign(measure=taus["measure"].map(LABELS), tau=taus["tau"].map(_num),
                                        p=taus["p"].map(_num))),
                  "τ > 0: networks with a larger measure have a larger gap. With few networks (PGDL: 8 in the paper's "
                  "selection) |τ| must be large to mean anything; p is the two-sided p-value of τ-b. Collapsed runs "
                  f"(test accuracy below {COLLAPSE_FRACTION:g} × their network's median) have near-chance accuracy "
                  "and a gap near 0 whatever their weights: they can make τ alone, hence the rows without them.", "",
                  f"![Measures against the generalisation gap]({_plot_vs_gap(measures, out_dir, taus).name})", ""]
    return "\n".join(lines)


def _regulariser_markdown(table: pd.DataFrame) -> str:
    cols = {m: f"{m}_mean" for m in NETWORK_MEASURES + ("gap",) if f"{m}_mean" in table}
    rank = {t: i for i, t in enumerate(sorted(table["regulariser"].unique(), key=treatment_key))}
    table = table.sort_values(["block", "regulariser", "weight"],
                              key=lambda col: col.map(rank) if col.name == "regulariser" else col)
    out = table[["block", "regulariser", "weight", "n"]].copy()
    out["regulariser"] = out["regulariser"].map(label)
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
    """Per block (rows) and measure (columns): mean ± std over the runs (networks × seeds) against the weight, one
    line per regulariser in its colour; the baseline as a black dashed line."""
    plt = pyplot()
    runs = wide(measures[measures["source"] == "run"])
    blocks = sorted(runs["block"].unique())
    fig, axes = plt.subplots(len(blocks), len(FIGURE_MEASURES), figsize=(5 * len(FIGURE_MEASURES), 3.2 * len(blocks)),
                             squeeze=False)
    for ax_row, block in zip(axes, blocks):
        b = runs[runs["block"] == block]
        for ax, m in zip(ax_row, FIGURE_MEASURES):
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
            ax.set(xlabel="regulariser weight ω (points side by side around each weight)", ylabel=LABELS[m])
            ax.set_title(f"{block}: {LABELS[m]}\nmean ± std over the runs (networks × seeds)", fontsize=10)
            ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    return save_png(fig, out_dir / "measures_by_weight.png")


def _linthresh(weights: pd.Series) -> float:
    positive = weights[weights > 0]
    return float(positive.min()) if not positive.empty else 1.0


def _tau_text(taus: pd.DataFrame, measure: str) -> str:
    """One line per population: `name: τ = 0.12 (p = 0.3, n = 39)`."""
    rows = taus[taus["measure"] == measure]
    return "\n".join(f"{r.population}: τ = {_num(r.tau)} (p = {_num(r.p)}, n = {r.n})" for r in rows.itertuples())


def _plot_vs_gap(measures: pd.DataFrame, out_dir: Path, taus: pd.DataFrame | None = None) -> Path:
    """Scatter of each network measure against the gap: trained runs coloured by regulariser (collapsed runs as ×),
    PGDL models as grey triangles (one shade per task); Kendall's τ of each population printed in the panel."""
    plt = pyplot()
    table = wide(measures)
    taus = kendall(measures) if taus is None else taus
    fig, axes = plt.subplots(1, len(FIGURE_MEASURES), figsize=(5.6 * len(FIGURE_MEASURES), 4.4), squeeze=False)
    pgdl = table[table["source"] == "pgdl"]
    runs = table[table["source"] == "run"]
    for ax, m in zip(axes[0], FIGURE_MEASURES):
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
        ax.text(0.02, 0.98, _tau_text(taus, m), transform=ax.transAxes, va="top", fontsize=7,
                bbox=dict(facecolor="white", alpha=0.8, edgecolor="0.8"))
        ax.set(xlabel=LABELS[m], ylabel="generalisation gap (train − test accuracy)")
        ax.legend(fontsize="x-small", loc="lower right", ncol=2)
    fig.tight_layout()
    return save_png(fig, out_dir / "measures_vs_gap.png")
