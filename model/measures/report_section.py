"""The report's section on what NP and DGP say: measures per regulariser and weight, and Kendall's τ with the
generalisation gap. `section` plugs into `model.analysis.report.build(extra_sections=...)`.

Input is the tidy measures CSV of `scripts/measure.py` (`model.measures.measures_table.COLUMNS`); the gap of a
network is train − test accuracy (fractions). `measures_section` returns the Markdown section and writes its figures
(`model.analysis.figures.measures`). A run is `collapsed` by the rule of `model.analysis.treatments`; such runs are
marked in the figures and τ is also given without them. Reads CSVs and writes PNGs only; must not compute measures
or train.
"""
import math
from pathlib import Path

import numpy as np
import pandas as pd

from model.analysis.accuracies import read as read_accuracies
from model.analysis.figures import measures as figures
from model.analysis.tables import to_markdown
from model.analysis.treatments import COLLAPSE_FRACTION, collapsed, label, treatment_key
from model.measures.compute import CHANNEL_MAX
from model.measures.measures_table import read as read_measures

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
    out["collapsed"] = False
    out.loc[runs, "collapsed"] = collapsed(out[runs])
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
        # treatment names are the statistics' to check (the report has, or the user opted out with
        # --allow-unknown-treatments): here the accuracies only supply each run's gap
        measures = with_accuracies(measures, read_accuracies(accuracies_csv, allow_unknown_treatments=True))
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
        by_weight = figures.by_weight(wide(measures[measures["source"] == "run"]), FIGURE_MEASURES, LABELS, out_dir)
        lines += ["### Measures per regulariser and weight", "", "Mean ± standard deviation over the n runs of each "
                  "row (its networks × seeds; a single run has no spread).", "", _regulariser_markdown(table),
                  "", f"![NP and DGP per regulariser and weight]({by_weight.name})", ""]
    lines += ["### Kendall's τ between each measure and the generalisation gap", ""]
    if taus.empty:
        lines += ["No network measured.", ""]
    else:
        vs_gap = figures.vs_gap(wide(measures), taus, FIGURE_MEASURES, LABELS, out_dir)
        lines += [_markdown(taus.assign(measure=taus["measure"].map(LABELS), tau=taus["tau"].map(_num),
                                        p=taus["p"].map(_num))),
                  "τ > 0: networks with a larger measure have a larger gap. With few networks (PGDL: 8 in the paper's "
                  "selection) |τ| must be large to mean anything; p is the two-sided p-value of τ-b. Collapsed runs "
                  f"(test accuracy below {COLLAPSE_FRACTION:g} × their network's median) have near-chance accuracy "
                  "and a gap near 0 whatever their weights: they can make τ alone, hence the rows without them.", "",
                  f"![Measures against the generalisation gap]({vs_gap.name})", ""]
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


def section(inp) -> list[str]:
    """The report section (`model.analysis.report.Inputs -> Markdown lines`): nothing without a measures CSV (the one
    given, or `measures.csv` beside the accuracies)."""
    path = inp.measures_csv or inp.accuracies_csv.with_name("measures.csv")
    return [measures_section(path, inp.accuracies_csv, inp.out_dir), ""] if path.exists() else []
