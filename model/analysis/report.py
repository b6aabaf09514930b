"""One Markdown + PNG report page per sweep, from its accuracies CSV, its statistics folder and its run folders.

Sections: runs (finished / not finished), per analysis (each block, then `combined`) the tests, CD diagram, ranks,
accuracy table (best per network in bold), Nemenyi p-values, selected weights, and Table 1 beside the reproduced
numbers where the networks are the paper's; accuracy against weight per network and regulariser; training curves
(each run's history.csv) at the selected weights; and, when a measures CSV exists, the section `model.measures.analysis`
writes. This module arranges and plots; it must not compute statistics (they are read from statistics.json).
"""
import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from model import atomic
from model.analysis import accuracies
from model.analysis.paper import TREATMENT_LABELS
from model.analysis.plotting import pyplot, save_png
from model.analysis.statistics import BASELINE, natural_key, treatment_key
from model.analysis.tables import to_markdown
from model.csv_input import read_csv
from model.errors import DataError
from model.runs import run_folder

log = logging.getLogger(__name__)

REPORT = "report.md"
CURVES = ("accuracy", "val_accuracy", "ce", "reg")  # history.csv columns plotted, where present


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")


def _label(treatment: str) -> str:
    return TREATMENT_LABELS.get(treatment, treatment)


def _read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


def analysis_section(folder: Path, out_dir: Path) -> str:
    """Markdown for one statistics folder (statistics.json, details.json, tables, cd_diagram.png)."""
    st = json.loads((folder / "statistics.json").read_text())
    det = json.loads(_read_text(folder / "details.json") or "{}")
    name = folder.name
    fr = st["friedman"]
    fmt = lambda v: "∞" if v is None else f"{v:.4g}"  # noqa: E731 (None stands for +inf in statistics.json)
    lines = [f"## {name}", "",
             f"{st['n_networks']} networks × {len(st['treatments'])} treatments, α = {st['alpha']}. "
             f"Friedman χ² = {fmt(fr['chi2'])} (p = {fmt(fr['chi2_p'])}); Iman–Davenport F = "
             f"{fmt(fr['iman_davenport_f'])} (p = {fmt(fr['iman_davenport_p'])}). Nemenyi critical difference "
             f"{st['critical_difference']:.3f} (q_α = {det.get('q_alpha', float('nan')):.3f}); p-values "
             f"{det.get('nemenyi_p_variant', 'uncapped')}.", ""]
    groups = det.get("groups", [])
    if groups:
        lines += ["Groups not significantly different: "
                  + "; ".join("{" + ", ".join(_label(t) for t in g) + "}" for g in groups) + ".", ""]
    if det.get("dropped_networks"):
        lines += ["Left out (a treatment is missing): " + ", ".join(
            f"{net} (lacks {', '.join(ts)})" for net, ts in det["dropped_networks"].items()) + ".", ""]
    if (folder / "cd_diagram.png").exists():
        target = out_dir / f"cd_{_slug(name)}.png"
        shutil.copyfile(folder / "cd_diagram.png", target)
        lines += [f"![Critical-difference diagram, {name}]({target.name})", ""]
    for title, file in (("Average ranks (1 = best)", "average_ranks.md"),
                        ("Test accuracy at the selected weight (best per network in bold)", "accuracies.md"),
                        ("Nemenyi p-values (below α in bold)", "nemenyi_p.md"),
                        ("Reproduced beside the paper's Table 1 (paper in parentheses)", "paper_comparison.md")):
        text = _read_text(folder / file)
        if text:
            lines += [f"### {title}", "", text]
    weights = pd.DataFrame({net: {t: cell["weight"] for t, cell in cells.items()}
                            for net, cells in st["selected"].items()})
    weights = weights.reindex(sorted(weights.index, key=treatment_key))
    weights.index = [_label(t) for t in weights.index]
    lines += ["### Selected weights (best mean validation accuracy)", "",
              to_markdown(weights.map(lambda w: f"{w:g}"))]
    return "\n".join(lines)


def plot_accuracy_vs_weight(frame: pd.DataFrame, network: str, out_dir: Path) -> Path:
    """Mean (± std over seeds) validation and test accuracy against the weight, one panel per regulariser,
    the baseline as horizontal lines. Returns the PNG path."""
    plt = pyplot()
    runs_ = frame[frame["network"] == network]
    regs = sorted((r for r in runs_["regulariser"].unique() if r != BASELINE), key=treatment_key)
    base = runs_[runs_["regulariser"] == BASELINE]
    fig, axes = plt.subplots(1, max(1, len(regs)), figsize=(2.6 * max(1, len(regs)), 2.6), sharey=True,
                             squeeze=False, layout="constrained")
    for ax, reg in zip(axes[0], regs):
        cell = runs_[(runs_["regulariser"] == reg) & (runs_["weight"] > 0)]
        agg = cell.groupby("weight")[["val_accuracy", "test_accuracy"]].agg(["mean", "std"]).fillna(0.0)
        for col, style in (("val_accuracy", "o-"), ("test_accuracy", "s--")):
            ax.errorbar(agg.index, agg[(col, "mean")], yerr=agg[(col, "std")], fmt=style, ms=3, lw=1,
                        capsize=2, label=col.split("_")[0])
        for col, style in (("val_accuracy", ":"), ("test_accuracy", "-.")):
            if not base.empty:
                ax.axhline(base[col].mean(), color="grey", ls=style, lw=1)
        ax.set_xscale("log")
        ax.set_title(_label(reg), fontsize=9)
        ax.set_xlabel("weight", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("accuracy", fontsize=8)
    axes[0][0].legend(fontsize=7, title="grey: baseline", title_fontsize=6)
    fig.suptitle(network, fontsize=10)
    return save_png(fig, out_dir / f"acc_vs_weight_{_slug(network)}.png")


def plot_training_curves(histories: dict, network: str, out_dir: Path) -> Path | None:
    """Per-epoch curves of `CURVES` (one panel each), one line per treatment; histories: treatment -> frame."""
    columns = [c for c in CURVES if any(c in h for h in histories.values())]
    if not columns:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(columns), figsize=(2.8 * len(columns), 2.6), squeeze=False,
                             layout="constrained")
    for ax, col in zip(axes[0], columns):
        for treatment, hist in histories.items():
            if col in hist:
                ax.plot(hist["epoch"], hist[col], lw=1, label=_label(treatment))
        ax.set_title(col, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"{network} (selected weight, first seed)", fontsize=10)
    return save_png(fig, out_dir / f"curves_{_slug(network)}.png")


def _histories(frame: pd.DataFrame, selected: dict) -> dict:
    """treatment -> history.csv frame of the first seed at the selected weight (runs without one are skipped).

    frame: one network's accuracies; its `run_dir` column (written by `model.analysis.accuracies.collect`) locates the
    runs."""
    out = {}
    for treatment, cell in sorted(selected.items(), key=lambda kv: treatment_key(kv[0])):
        match = frame[(frame["regulariser"] == treatment) & np.isclose(frame["weight"], cell["weight"])]
        if match.empty:
            continue
        path = Path(str(match.sort_values("seed")["run_dir"].iloc[0])) / run_folder.HISTORY
        if path.exists():
            out[treatment] = pd.read_csv(path)
    return out


def _statistics_folders(statistics_dir: Path) -> list[Path]:
    """Each block's folder, then `combined`; with a single block only `combined` (the same analysis)."""
    folders = sorted((p.parent for p in statistics_dir.glob("*/statistics.json")),
                     key=lambda p: (p.name == "combined", natural_key(p.name)))
    return folders[-1:] if len(folders) == 2 and folders[-1].name == "combined" else folders


def build(accuracies_csv: str | Path, statistics_dir: str | Path, out_dir: str | Path, measures_csv=None,
          title: str = "Report", force: bool = False) -> Path:
    """Write `<out_dir>/report.md` and its PNGs; return the report's path.

    Training curves come from each run's history.csv, found through the CSV's `run_dir` column (skipped when the
    CSV has none). measures_csv: NP/DGP measures (default: `measures.csv` beside the accuracies CSV, if it exists).
    """
    accuracies_csv, statistics_dir, out_dir = Path(accuracies_csv), Path(statistics_dir), Path(out_dir)
    report = out_dir / REPORT
    if report.exists() and not force:
        raise DataError(f"{report}: already exists; pass --force to overwrite it")
    frame = accuracies.read(accuracies_csv)
    folders = _statistics_folders(statistics_dir)
    if not folders:
        raise DataError(f"{statistics_dir}: no <block>/statistics.json; run extract_statistics.py first")
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title}", "", f"Accuracies: `{accuracies_csv}` ({len(frame)} finished runs, "
             f"{frame['network'].nunique()} networks, regularisers "
             f"{', '.join(sorted(frame['regulariser'].unique(), key=treatment_key))}). Statistics: "
             f"`{statistics_dir}`.", "",
             "Selection: per network and regulariser the weight with the best mean validation accuracy, scored by "
             "its mean test accuracy; the baseline has no weight to choose, a structural advantage for the "
             "regularised rows.", ""]
    incomplete_csv = accuracies_csv.with_name(accuracies_csv.stem + ".incomplete.csv")
    incomplete = (read_csv(incomplete_csv, accuracies.INCOMPLETE_COLUMNS, "list of unfinished runs")
                  if incomplete_csv.exists() and incomplete_csv.stat().st_size else None)
    if incomplete is not None and not incomplete.empty:
        lines += [f"**{len(incomplete)} runs not finished** (left out):", "",
                  to_markdown(incomplete.set_index("task_id")), ""]
    for folder in folders:
        lines += [analysis_section(folder, out_dir), ""]
    combined = json.loads((folders[-1] / "statistics.json").read_text())["selected"]
    lines += ["## Accuracy against weight", "", "Mean over seeds (bars: standard deviation); grey lines: baseline "
              "(dotted validation, dash-dot test).", ""]
    for network in sorted(frame["network"].unique(), key=natural_key):
        path = plot_accuracy_vs_weight(frame, network, out_dir)
        lines += [f"![{network}]({path.name})", ""]
    if "run_dir" in frame:
        lines += ["## Training curves", ""]
        for network in sorted(combined, key=natural_key):
            sub = frame[frame["network"] == network]
            path = plot_training_curves(_histories(sub, combined[network]), network, out_dir)
            lines += [f"![training curves {network}]({path.name})", ""] if path else [f"{network}: no history.csv.",
                                                                                      ""]
    lines += _measures_section(measures_csv, accuracies_csv, out_dir)
    atomic.write_text(report, "\n".join(lines).rstrip() + "\n")
    log.info("report: %s", report)
    return report


def _measures_section(measures_csv, accuracies_csv: Path, out_dir: Path) -> list[str]:
    """The optional NP/DGP section: `model.measures.analysis.measures_section(measures_csv, accuracies_csv,
    out_dir) -> Markdown` when a measures CSV exists (given, or `measures.csv` beside the accuracies)."""
    path = Path(measures_csv) if measures_csv else accuracies_csv.with_name("measures.csv")
    if not path.exists():
        if measures_csv:
            raise DataError(f"{path}: no such measures CSV")
        return []
    try:
        from model.measures.analysis import measures_section
    except ImportError as err:
        log.warning("measures CSV %s found but model.measures.analysis is unavailable: %s", path, err)
        return [f"Measures CSV `{path}` found, but its analysis could not be loaded ({err}).", ""]
    return [measures_section(path, accuracies_csv, out_dir), ""]
