"""One report page per sweep, report.md with its PNGs and report.html beside it, from its accuracies CSV, its
statistics folder and its run folders.

The page is a list of sections (`SECTIONS`), each a small function `Inputs -> list of Markdown lines` (empty: the
section is left out): title and inputs; summary (`model.analysis.summary`); runs (finished, not finished);
provenance (`model.analysis.provenance_block`); per analysis (each block, then `combined`) the tests, CD diagram, ranks,
accuracy table with spread, Nemenyi p-values, selected weights and Table 1 beside the reproduced numbers; accuracy
against weight per network; training curves at the selected weights; and, when a measures CSV exists, the section
`model.measures.analysis` writes. Every treatment has one colour and one label (`model.analysis.style`). This module
arranges and plots; it must not compute statistics (they are read from statistics.json).
"""
import json
import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from model import atomic
from model.analysis import accuracies, activity_table, html, provenance_block, replicates, summary, tables
from model.analysis.figures.plotting import pyplot, save_png
from model.analysis.statistics import BASELINE, natural_key, treatment_key
from model.analysis.style import colour, label, treatment_gid
from model.csv_input import read_csv
from model.errors import DataError
from model.runs import run_folder

log = logging.getLogger(__name__)

REPORT = "report.md"
HTML = "report.html"
# Section titles other sections link to (their anchors are `html.anchor(title)`).
SUMMARY, RUNS, ACC_VS_WEIGHT, CURVES_TITLE = "Summary", "Runs", "Accuracy against weight", "Training curves"
ACTIVITY = "Did the regulariser act?"  # the activity section's title; the summary links to it when the page has it
CURVES = ("accuracy", "val_accuracy", "ce")  # history.csv columns drawn for every treatment, where present
CURVE_TITLES = {"accuracy": "train accuracy", "val_accuracy": "validation accuracy", "ce": "train cross-entropy"}
REG = "reg"  # history.csv column of the unweighted regulariser term, drawn per regulariser on its own axis


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")


def _read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


@dataclass(frozen=True)
class AnalysisFolder:
    """One statistics folder: its name (block or `combined`), path, statistics.json and details.json."""

    name: str
    folder: Path
    st: dict
    det: dict


@dataclass
class Inputs:
    """What every section reads. frame: the accuracies (`model.analysis.accuracies.read`); incomplete: unfinished
    runs (task_id, status, detail) or None; analyses: blocks, then `combined`."""

    title: str
    accuracies_csv: Path
    statistics_dir: Path
    out_dir: Path
    frame: pd.DataFrame
    incomplete: pd.DataFrame | None
    analyses: list
    measures_csv: Path | None = None
    titles: set = field(default_factory=set)  # level-2 titles of the sections present (filled while building)


def _seed_words(n_seeds: set) -> str:
    """`1 seed per point (no spread)`, `mean over 3 seeds (bars: standard deviation over seeds)`, or a range."""
    n = sorted(n_seeds)
    if n == [1]:
        return "1 seed per point, so no error bars (no spread to show)"
    seeds = f"{n[0]} seeds" if len(n) == 1 else f"{n[0]}–{n[-1]} seeds"
    return f"mean over {seeds} (bars: standard deviation over seeds)"


# ------------------------------------------------------------------------------------------------ sections

def header_section(inp: Inputs) -> list[str]:
    frame = inp.frame
    regs = ", ".join(label(r) for r in sorted(frame["regulariser"].unique(), key=treatment_key))
    return [f"# {inp.title}", "", *activity_table.top_line(frame, {a.name: a.st["selected"] for a in inp.analyses}),
            f"Accuracies: `{inp.accuracies_csv}` ({len(frame)} finished runs, "
            f"{frame['network'].nunique()} networks, treatments {regs}). Statistics: `{inp.statistics_dir}`.", ""]


def summary_section(inp: Inputs) -> list[str]:
    anchors = {"runs": html.anchor(RUNS), "accuracy_vs_weight": html.anchor(ACC_VS_WEIGHT)}
    anchors |= {f"analysis:{a.name}": html.anchor(a.name) for a in inp.analyses}
    if ACTIVITY in inp.titles:
        anchors["activity"] = html.anchor(ACTIVITY)
    n_incomplete = 0 if inp.incomplete is None else len(inp.incomplete)
    body = summary.summary_markdown([(a.name, a.st, a.det) for a in inp.analyses], inp.frame, n_incomplete, anchors)
    return [f"## {SUMMARY}", "", body]


def runs_section(inp: Inputs) -> list[str]:
    frame = inp.frame
    per_weight = frame.groupby(["network", "regulariser", "weight"])["seed"].nunique()
    lo, hi = int(per_weight.min()), int(per_weight.max())
    seeds = f"{lo} seed{'s' if lo > 1 else ''}" if lo == hi else f"{lo}–{hi} seeds"
    lines = [f"## {RUNS}", "", f"{len(frame)} finished runs: {frame['network'].nunique()} networks, "
             f"{frame.groupby(['network', 'regulariser']).ngroups} (network, treatment) cells, {seeds} per weight.",
             "", "Selection: per network and regulariser the weight with the best mean validation accuracy, scored "
             "by its mean test accuracy; the baseline has no weight to choose, a structural advantage for the "
             "regularised rows.", ""]
    if inp.incomplete is not None and not inp.incomplete.empty:
        n = len(inp.incomplete)
        lines += [f"**{n} run{'s' if n > 1 else ''} not finished** (left out):", "",
                  tables.to_markdown(inp.incomplete.set_index("task_id")), ""]
    elif inp.incomplete is not None:
        lines += ["Every expected run finished.", ""]
    return lines


def provenance_section(inp: Inputs) -> list[str]:
    """The provenance block (commits, devices, versions the runs recorded):
    `model.analysis.provenance_block.provenance_section(accuracies frame) -> Markdown`."""
    return [provenance_block.provenance_section(inp.frame), ""]


def analysis_sections(inp: Inputs) -> list[str]:
    lines = []
    for a in inp.analyses:
        lines += [analysis_section(a, inp.out_dir), "", replicates.section(a.folder)]
    return lines


def activity_section(inp: Inputs) -> list[str]:
    """Per analysis, the cells × activity table (`model.analysis.activity_table`); nothing when no run records it."""
    if activity_table.cell_activity(inp.frame).empty:
        return []
    lines = [f"## {ACTIVITY}", ""]
    for a in inp.analyses:
        lines += [activity_table.section(inp.frame, a.st["selected"], a.name), ""]
    return lines


def analysis_section(a: AnalysisFolder, out_dir: Path) -> str:
    """Markdown for one statistics folder (statistics.json, details.json, paper_comparison.md, cd_diagram.png)."""
    st, det, name = a.st, a.det, a.name
    fr = st["friedman"]
    fmt = lambda v: "∞" if v is None else f"{v:.4g}"  # noqa: E731 (None stands for +inf in statistics.json)
    lines = [f"## {name}", "",
             f"{st['n_networks']} networks × {len(st['treatments'])} treatments, α = {st['alpha']}. "
             f"Friedman χ² = {fmt(fr['chi2'])} (p = {fmt(fr['chi2_p'])}); Iman–Davenport F = "
             f"{fmt(fr['iman_davenport_f'])} (p = {fmt(fr['iman_davenport_p'])}). Nemenyi critical difference "
             f"{st['critical_difference']:.3f} mean ranks (q_α = {det.get('q_alpha', float('nan')):.3f}); p-values "
             f"{det.get('nemenyi_p_variant', 'uncapped')}.", ""]
    groups = det.get("groups", [])
    if groups:
        lines += ["Groups not significantly different: "
                  + "; ".join("{" + ", ".join(label(t) for t in g) + "}" for g in groups) + ".", ""]
    if det.get("dropped_networks"):
        lines += ["Left out (a treatment is missing): " + ", ".join(
            f"{net} (lacks {', '.join(label(t) for t in ts)})" for net, ts in det["dropped_networks"].items()) + ".",
            ""]
    if (a.folder / "cd_diagram.png").exists():
        target = out_dir / f"cd_{_slug(name)}.png"
        shutil.copyfile(a.folder / "cd_diagram.png", target)
        lines += [f"![Critical-difference diagram, {name}]({target.name})", ""]
    ranks = pd.Series(st["average_ranks"]).sort_values(kind="stable").to_frame("average rank")
    ranks.index = [label(t) for t in ranks.index]
    ranks.index.name = "treatment"
    lines += [f"### Average ranks over the {st['n_networks']} networks (1 = best)", "",
              tables.to_markdown(ranks, digits=2)]
    table, bold, words = tables.selected_accuracy_table(st["selected"])
    lines += [f"### Test accuracy at the selected weight ({words}; best per network in bold)", "",
              tables.to_markdown(table, bold)]
    p, pbold = tables.nemenyi_from_json(st["nemenyi_p"], st["alpha"])
    lines += ["### Nemenyi p-values (below α in bold)", "", tables.to_markdown(p, pbold)]
    comparison = _read_text(a.folder / "paper_comparison.md")
    if comparison:
        lines += ["### Reproduced beside the paper's Table 1 (paper in parentheses)", "", comparison]
    weights = pd.DataFrame({net: {t: cell["weight"] for t, cell in cells.items()}
                            for net, cells in st["selected"].items()})
    weights = weights.reindex(sorted(weights.index, key=treatment_key))
    weights.index = [label(t) for t in weights.index]
    lines += ["### Selected weights (best mean validation accuracy)", "",
              tables.to_markdown(weights.map(lambda w: f"{w:g}"))]
    return "\n".join(lines)


def accuracy_vs_weight_section(inp: Inputs) -> list[str]:
    seeds = set(inp.frame.groupby(["network", "regulariser", "weight"])["seed"].nunique())
    lines = [f"## {ACC_VS_WEIGHT}", "", f"Validation (solid, filled) and test (dashed, open) accuracy against the "
             f"weight, {_seed_words(seeds)}; black lines: the baseline ∅ (dotted validation, dash-dot test). Each "
             f"panel has its own accuracy axis; a point below {summary.COLLAPSE_FRACTION:g} × its network's median "
             "test accuracy (a collapsed run) is drawn as ▼ on the panel's lower edge with its value, so the axis "
             "stays zoomed on the rest.", ""]
    for network in sorted(inp.frame["network"].unique(), key=natural_key):
        path = plot_accuracy_vs_weight(inp.frame, network, inp.out_dir)
        lines += [f"![Accuracy against weight, {network}]({path.name})", ""]
    return lines


def training_curves_section(inp: Inputs) -> list[str]:
    if "run_dir" not in inp.frame:
        return []
    selected = inp.analyses[-1].st["selected"]
    lines = [f"## {CURVES_TITLE}", "", "Per epoch, at each treatment's selected weight, seed "
             f"{int(inp.frame['seed'].min())} (the lowest seed of each cell). Top: train accuracy, validation "
             "accuracy and train cross-entropy for every treatment; ★ marks the kept epoch (whose weights were "
             "evaluated: the best validation epoch when restored, else the last). Bottom: the regulariser's "
             "unweighted term R, one panel per regulariser on its own axis (their scales differ by orders of "
             "magnitude), the kept epoch as a dotted line.", ""]
    for network in sorted(selected, key=natural_key):
        sub = inp.frame[inp.frame["network"] == network]
        path = plot_training_curves(_histories(sub, selected[network]), network, inp.out_dir)
        lines += [f"![Training curves, {network}]({path.name})", ""] if path else [f"{network}: no history.csv.", ""]
    return lines


def measures_section(inp: Inputs) -> list[str]:
    """The optional NP/DGP section: `model.measures.analysis.measures_section(measures_csv, accuracies_csv,
    out_dir) -> Markdown` when a measures CSV exists (given, or `measures.csv` beside the accuracies)."""
    path = inp.measures_csv or inp.accuracies_csv.with_name("measures.csv")
    if not path.exists():
        return []
    try:
        from model.measures.analysis import measures_section as section
    except ImportError as err:
        log.warning("measures CSV %s found but model.measures.analysis is unavailable: %s", path, err)
        return [f"Measures CSV `{path}` found, but its analysis could not be loaded ({err}).", ""]
    return [section(path, inp.accuracies_csv, inp.out_dir), ""]


# The page, in order. The summary is built last (it links to the sections present) but placed second.
SECTIONS = (header_section, summary_section, runs_section, provenance_section, analysis_sections, activity_section,
            accuracy_vs_weight_section, training_curves_section, measures_section)


# ------------------------------------------------------------------------------------------------ figures

def _collapse_threshold(frame: pd.DataFrame, network: str) -> float:
    return summary.COLLAPSE_FRACTION * float(frame.loc[frame["network"] == network, "test_accuracy"].median())


def plot_accuracy_vs_weight(frame: pd.DataFrame, network: str, out_dir: Path) -> Path:
    """Mean (± std over seeds) validation and test accuracy against the weight, one panel per regulariser in its
    colour, each panel on its own y axis zoomed on the points that did not collapse; the baseline as black lines.
    Returns the PNG path."""
    plt = pyplot()
    runs_ = frame[frame["network"] == network]
    regs = sorted((r for r in runs_["regulariser"].unique() if r != BASELINE), key=treatment_key)
    base = runs_[runs_["regulariser"] == BASELINE]
    floor = _collapse_threshold(frame, network)
    fig, axes = plt.subplots(1, max(1, len(regs)), figsize=(2.5 * max(1, len(regs)), 2.7), squeeze=False,
                             layout="constrained")
    for ax, reg in zip(axes[0], regs):
        cell = runs_[(runs_["regulariser"] == reg) & (runs_["weight"] > 0)]
        agg = cell.groupby("weight")[["val_accuracy", "test_accuracy"]].agg(["mean", "std", "count"])
        shown = [] if base.empty else [base["val_accuracy"].mean(), base["test_accuracy"].mean()]
        for col, style, face in (("val_accuracy", "o-", colour(reg)), ("test_accuracy", "s--", "white")):
            mean, std = agg[(col, "mean")], agg[(col, "std")].fillna(0.0)
            ok = mean >= floor
            ax.errorbar(agg.index[ok], mean[ok], yerr=std[ok] if (agg[(col, "count")] > 1).any() else None,
                        fmt=style, ms=4, lw=1.2, capsize=2, color=colour(reg), mfc=face, gid=treatment_gid(reg),
                        label=col.split("_")[0])
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
                            xytext=(0, 7), textcoords="offset points", ha="center", va="bottom", fontsize=6.5,
                            color=colour(reg))
        ax.margins(x=0.12)
        if not base.empty:
            for col, style in (("val_accuracy", ":"), ("test_accuracy", "-.")):
                ax.axhline(base[col].mean(), color=colour(BASELINE), ls=style, lw=1, gid=treatment_gid(BASELINE))
        n = int(agg[("val_accuracy", "count")].max()) if not agg.empty else 0
        ax.text(0.02, 0.02, "1 seed: no spread" if n == 1 else f"± std, {n} seeds", transform=ax.transAxes,
                fontsize=6.5, color="0.35", va="bottom")
        ax.set_xscale("log")
        ax.set_title(label(reg), fontsize=10, color=colour(reg), weight="bold")
        ax.set_xlabel("weight ω", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("accuracy", fontsize=8)
    axes[0][0].legend(fontsize=7, title="black: ∅", title_fontsize=6, loc="best")
    fig.suptitle(network, fontsize=10)
    return save_png(fig, out_dir / f"acc_vs_weight_{_slug(network)}.png")


def plot_training_curves(histories: dict, network: str, out_dir: Path) -> Path | None:
    """Top row: `CURVES` (one panel each, one line per treatment, ★ at the kept epoch); bottom row: the regulariser
    term `REG` per regularised treatment on its own axis. histories: treatment -> (history frame, kept epoch or None).
    Returns the PNG path, or None when no history has a column to draw."""
    columns = [c for c in CURVES if any(c in h for h, _ in histories.values())]
    regs = [t for t, (h, _) in histories.items() if t != BASELINE and REG in h]
    if not columns and not regs:
        return None
    plt = pyplot()
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
    return save_png(fig, out_dir / f"curves_{_slug(network)}.png")


def _histories(frame: pd.DataFrame, selected: dict) -> dict:
    """treatment -> (history.csv frame, kept epoch) of the lowest seed at the selected weight (runs without a
    history.csv are skipped). The kept epoch is DONE.json's `kept_epoch`, else the CSV's `best_epoch`, else None.

    frame: one network's accuracies; its `run_dir` column (written by `model.analysis.accuracies.collect`) locates
    the runs."""
    out = {}
    for treatment, cell in sorted(selected.items(), key=lambda kv: treatment_key(kv[0])):
        match = frame[(frame["regulariser"] == treatment) & np.isclose(frame["weight"], cell["weight"])]
        if match.empty:
            continue
        row = match.sort_values("seed").iloc[0]
        run = Path(str(row["run_dir"]))
        if not (run / run_folder.HISTORY).exists():
            continue
        done = run_folder.read_done(run) or {}
        kept = done.get("kept_epoch", row.get("best_epoch"))
        try:
            kept = int(kept) if kept is not None and not pd.isna(kept) else None
            out[treatment] = (pd.read_csv(run / run_folder.HISTORY), kept)
        except (OSError, TypeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            log.warning("%s: cannot be read (%s); its training curves are left out", run, err)
    return out


# ------------------------------------------------------------------------------------------------ building

def _statistics_folders(statistics_dir: Path) -> list[Path]:
    """Each block's folder, then `combined`; with a single block only `combined` (the same analysis)."""
    folders = sorted((p.parent for p in statistics_dir.glob("*/statistics.json")),
                     key=lambda p: (p.name == "combined", natural_key(p.name)))
    return folders[-1:] if len(folders) == 2 and folders[-1].name == "combined" else folders


def read_inputs(accuracies_csv, statistics_dir, out_dir, measures_csv=None, title: str = "Report") -> Inputs:
    """Read and check everything the sections need (DataError naming the file when something is missing)."""
    accuracies_csv, statistics_dir, out_dir = Path(accuracies_csv), Path(statistics_dir), Path(out_dir)
    frame = accuracies.read(accuracies_csv)
    folders = _statistics_folders(statistics_dir)
    if not folders:
        raise DataError(f"{statistics_dir}: no <block>/statistics.json; run extract_statistics.py first")
    analyses = [AnalysisFolder(f.name, f, json.loads((f / "statistics.json").read_text()),
                               json.loads(_read_text(f / "details.json") or "{}")) for f in folders]
    if measures_csv and not Path(measures_csv).exists():
        raise DataError(f"{measures_csv}: no such measures CSV")
    incomplete_csv = accuracies_csv.with_name(accuracies_csv.stem + ".incomplete.csv")
    incomplete = (read_csv(incomplete_csv, accuracies.INCOMPLETE_COLUMNS, "list of unfinished runs")
                  if incomplete_csv.exists() and incomplete_csv.stat().st_size else None)
    return Inputs(title=title, accuracies_csv=accuracies_csv, statistics_dir=statistics_dir, out_dir=out_dir,
                  frame=frame, incomplete=incomplete, analyses=analyses,
                  measures_csv=Path(measures_csv) if measures_csv else None)


def build(accuracies_csv: str | Path, statistics_dir: str | Path, out_dir: str | Path, measures_csv=None,
          title: str = "Report", force: bool = False) -> Path:
    """Write `<out_dir>/report.md`, its PNGs and the self-contained `<out_dir>/report.html`; return report.md's path.

    Training curves come from each run's history.csv, found through the CSV's `run_dir` column (skipped when the
    CSV has none). measures_csv: NP/DGP measures (default: `measures.csv` beside the accuracies CSV, if it exists).
    """
    out_dir = Path(out_dir)
    report = out_dir / REPORT
    if report.exists() and not force:
        raise DataError(f"{report}: already exists; pass --force to overwrite it")
    inp = read_inputs(accuracies_csv, statistics_dir, out_dir, measures_csv, title)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = {}
    for section in SECTIONS:  # the summary links to the others, so it is written once they are known
        if section is not summary_section:
            parts[section] = section(inp)
            inp.titles |= {line[3:] for line in parts[section] for line in line.splitlines()
                           if line.startswith("## ")}
    parts[summary_section] = summary_section(inp)
    text = "\n".join(line for section in SECTIONS for line in parts[section]).rstrip() + "\n"
    atomic.write_text(report, text)
    html.write(report, out_dir / HTML, title=title)
    log.info("report: %s (and %s)", report, HTML)
    return report
