"""One report page per sweep, report.md with its PNGs and report.html beside it, from its accuracies CSV, its
statistics folder and its run folders.

The page is a list of sections (`SECTIONS`), each a small function `Inputs -> list of Markdown lines` (empty: the
section is left out): title and inputs; summary (`model.analysis.summary`); runs (finished, not finished);
provenance (`model.analysis.provenance_block`); per analysis (each block, then `combined`) the tests, CD diagram,
ranks, accuracy table with spread, Nemenyi p-values, selected weights and Table 1 beside the reproduced numbers;
accuracy against weight per network; training curves at the selected weights; then any sections the caller plugs
in (`build(extra_sections=...)`: `scripts/make_report.py` adds the NP/DGP section of
`model.measures.report_section`). Every treatment has one colour and one label (`model.analysis.treatments`); the
figures are drawn by `model.analysis.figures`. This module arranges sections; it must not compute statistics (they
are read from statistics.json).
"""
import io
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from model import atomic
from model.analysis import (
    accuracies,
    activity_table,
    html,
    provenance_block,
    replicates,
    statistics_file,
    summary,
    tables,
)
from model.analysis.figures import accuracy_vs_weight, plotting, training_curves
from model.analysis.statistics import natural_key
from model.analysis.treatments import COLLAPSE_FRACTION, label, treatment_key
from model.csv_input import read_csv
from model.errors import DataError
from model.runs import run_folder

log = logging.getLogger(__name__)

REPORT = "report.md"
HTML = "report.html"
# Section titles other sections link to (their anchors are `html.anchor(title)`).
SUMMARY, RUNS, ACC_VS_WEIGHT, CURVES_TITLE = "Summary", "Runs", "Accuracy against weight", "Training curves"
ACTIVITY = "Did the regulariser act?"  # the activity section's title; the summary links to it when the page has it


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
             "", selection_words(inp.analyses[-1].st.get("baseline_selection", "paper")), ""]
    if inp.incomplete is not None and not inp.incomplete.empty:
        n = len(inp.incomplete)
        lines += [f"**{n} run{'s' if n > 1 else ''} not finished** (left out):", "",
                  tables.to_markdown(inp.incomplete.set_index("task_id")), ""]
    elif inp.incomplete is not None:
        lines += ["Every expected run finished.", ""]
    return lines


def selection_words(rule: str) -> str:
    """The selection rule of the statistics, in a sentence (the runs section and every baseline number name it)."""
    if rule == "matched":
        return ("Selection (`--baseline matched`): on each network every treatment, the baseline ∅ included, is "
                "scored by the expected test accuracy of the validation-best of n draws (Dodge et al. 2019; a "
                "regulariser's draws are its weights, ∅'s its seeds), n = the fewest draws any treatment has there, "
                "so every treatment chooses among as many; the weight shown is the best by validation.")
    return ("Selection (the paper's rule, `--baseline paper`): per network and regulariser the weight with the best "
            "mean validation accuracy, scored by its mean test accuracy; the baseline ∅ is the mean over its seeds. "
            "A regulariser thus picks the best of its weights while ∅ picks nothing (best of W against best of 1), "
            "an advantage for the regularised rows: \"Is the gain more than selection?\" compares them at equal "
            "budgets.")


def provenance_section(inp: Inputs) -> list[str]:
    """The provenance block (commits, devices, versions the runs recorded):
    `model.analysis.provenance_block.provenance_section(accuracies frame) -> Markdown`."""
    return [provenance_block.provenance_section(inp.frame), ""]


def analysis_sections(inp: Inputs) -> list[str]:
    lines = []
    for a in inp.analyses:
        lines += [analysis_section(a, inp.out_dir), "", replicates.section(a.folder, inp.out_dir)]
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
    rule = st.get("baseline_selection", "paper")
    table, bold, words = tables.selected_accuracy_table(st["selected"])
    what = "Test accuracy, expected best of n" if rule == "matched" else "Test accuracy at the selected weight"
    heading = f"### {what} ({words}; best per network in bold; baseline: {replicates.RULE_NAMES[rule]})"
    if st.get("friedman") is None:  # one network: no ranks, Friedman, Nemenyi or CD
        return "\n".join([f"## {name}", "", f"1 network × {len(st['treatments'])} treatments, α = {st['alpha']}: "
                          "no ranks, Friedman test or CD diagram (they need at least 2 networks); the treatments are "
                          "compared with the baseline over the seeds, paired by seed (below).", "", heading, "",
                          tables.to_markdown(table, bold), _weights_table(st)])
    fr = st["friedman"]
    fmt = lambda v: "undefined" if v is None else f"{v:.4g}"  # noqa: E731 (None: F undefined, identical rankings)
    exact = (f"Friedman exact p = {fmt(fr['exact_p'])} ({fr['exact_method']}"
             + (f", {fr['exact_draws']} permutations, seed {fr['exact_seed']}" if fr["exact_method"] == "monte carlo"
                else "") + f"; the verdict follows it; smallest possible p at this size {fmt(fr['exact_min_p'])}); "
             if "exact_p" in fr else "")
    lines = [f"## {name}", "",
             f"{st['n_networks']} networks × {len(st['treatments'])} treatments, α = {st['alpha']}. {exact}"
             f"Friedman χ² = {fmt(fr['chi2'])} (χ² approximation p = {fmt(fr['chi2_p'])}); Iman–Davenport F = "
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
        target = out_dir / f"cd_{plotting.slug(name)}.png"
        shutil.copyfile(a.folder / "cd_diagram.png", target)
        lines += [f"![Critical-difference diagram, {name}]({target.name})", ""]
    ranks = pd.Series(st["average_ranks"]).sort_values(kind="stable").to_frame("average rank")
    ranks.index = [label(t) for t in ranks.index]
    ranks.index.name = "treatment"
    lines += [f"### Average ranks over the {st['n_networks']} networks (1 = best)", "",
              tables.to_markdown(ranks, digits=2)]
    lines += [heading, "", tables.to_markdown(table, bold)]
    p, pbold = tables.nemenyi_from_json(st["nemenyi_p"], st["alpha"])
    lines += ["### Nemenyi p-values (below α in bold)", "", tables.to_markdown(p, pbold)]
    comparison = _read_text(a.folder / "paper_comparison.md")
    if comparison:
        lines += [f"### Reproduced beside the paper's Table 1 (paper in parentheses; baseline: "
                  f"{replicates.RULE_NAMES[rule]})", "", comparison]
    lines.append(_weights_table(st))
    return "\n".join(lines)


def _weights_table(st: dict) -> str:
    """The selected weights, treatments × networks."""
    weights = pd.DataFrame({net: {t: cell["weight"] for t, cell in cells.items()}
                            for net, cells in st["selected"].items()})
    weights = weights.reindex(sorted(weights.index, key=treatment_key))
    weights.index = [label(t) for t in weights.index]
    return "\n".join(["### Selected weights (best mean validation accuracy)", "",
                      tables.to_markdown(weights.map(lambda w: f"{w:g}"))])


def accuracy_vs_weight_section(inp: Inputs) -> list[str]:
    seeds = set(inp.frame.groupby(["network", "regulariser", "weight"])["seed"].nunique())
    lines = [f"## {ACC_VS_WEIGHT}", "", f"Validation (solid, filled) and test (dashed, open) accuracy against the "
             f"weight, {_seed_words(seeds)}; black lines: the baseline ∅ (dotted validation, dash-dot test; mean over "
             "its seeds), grey bands: ∅'s mean ± standard deviation over its seeds when it has several. Each "
             f"panel has its own accuracy axis; a point below {COLLAPSE_FRACTION:g} × its network's median "
             "test accuracy (a collapsed run) is drawn as ▼ on the panel's lower edge with its value, so the axis "
             "stays zoomed on the rest.", ""]
    for network in sorted(inp.frame["network"].unique(), key=natural_key):
        path = accuracy_vs_weight.plot(inp.frame, network, inp.out_dir)
        lines += [f"![Accuracy against weight, {network}]({path.name})", ""]
    return lines


def training_curves_section(inp: Inputs) -> list[str]:
    if "run_dir" not in inp.frame:
        return []
    selected = inp.analyses[-1].st["selected"]
    lines = [f"## {CURVES_TITLE}", "", "Per epoch, at each treatment's selected weight, seed "
             f"{int(inp.frame['seed'].min())} (the lowest seed of each cell). Top: train accuracy, validation "
             "accuracy and train cross-entropy for every treatment; ★ marks the kept epoch (whose weights were "
             "evaluated: the best validation epoch when restored, else the last); ∅ is drawn last, thick and dashed, "
             "so a treatment whose curves equal it shows through the dashes, with its own marker, and is labelled "
             "\"identical to ∅\". "
             "Bottom: the regulariser's unweighted term R, one panel per regulariser on its own axis (their scales "
             "differ by orders of magnitude), the kept epoch as a dotted line; a grey panel \"never applied\": R was "
             "computed but its gradient reached the update in 0 % of the steps.", ""]
    for network in sorted(selected, key=natural_key):
        sub = inp.frame[inp.frame["network"] == network]
        histories, applied = _histories(sub, selected[network])
        path = training_curves.plot(histories, network, inp.out_dir, applied=applied)
        lines += [f"![Training curves, {network}]({path.name})", ""] if path else [f"{network}: no history.csv.", ""]
    return lines


# The page, in order. The summary is built last (it links to the sections present) but placed second.
SECTIONS = (header_section, summary_section, runs_section, provenance_section, analysis_sections, activity_section,
            accuracy_vs_weight_section, training_curves_section)


def _histories(frame: pd.DataFrame, selected: dict) -> tuple[dict, dict]:
    """(treatment -> (history.csv frame, kept epoch), treatment -> applied fraction or None) of the lowest seed at
    the selected weight (runs without a history.csv are skipped). The kept epoch is DONE.json's `kept_epoch`, else
    the CSV's `best_epoch`, else None. The applied fraction is DONE.json's `regulariser_activity.applied_fraction`,
    else the mean of history.csv's per-epoch `reg_applied`, else None (not recorded).

    frame: one network's accuracies; its `run_dir` column (written by `model.analysis.accuracies.collect`) locates
    the runs."""
    out, applied = {}, {}
    for treatment, cell in sorted(selected.items(), key=lambda kv: treatment_key(kv[0])):
        match = frame[(frame["regulariser"] == treatment) & np.isclose(frame["weight"], cell["weight"])]
        if match.empty:
            continue
        row = match.sort_values("seed").iloc[0]
        run = Path(str(row["run_dir"]))
        data = run_folder.read_regular(run / run_folder.HISTORY)  # a fifo or a folder of that name: none
        if data is None:
            continue
        done = run_folder.read_done(run) or {}
        kept = done.get("kept_epoch", row.get("best_epoch"))
        try:
            kept = int(kept) if isinstance(kept, (int, float)) and not isinstance(kept, bool) and np.isfinite(kept) \
                else None
            out[treatment] = (_numeric(pd.read_csv(io.BytesIO(data))), kept)
        except (OverflowError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            log.warning("%s: cannot be read (%s); its training curves are left out", run / run_folder.HISTORY, err)
            continue
        activity = done.get("regulariser_activity")
        fraction = activity.get("applied_fraction") if isinstance(activity, dict) else None
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not np.isfinite(fraction):
            fraction = None  # not recorded, or not a number
        if fraction is None and "reg_applied" in out[treatment][0]:
            fraction = float(pd.to_numeric(out[treatment][0]["reg_applied"], errors="coerce").mean())
        applied[treatment] = fraction
    return out, applied


def _numeric(history: pd.DataFrame) -> pd.DataFrame:
    """history.csv (written by another process, any content) as numbers: text and ±inf become NaN (not drawn)."""
    return history.apply(pd.to_numeric, errors="coerce").replace([np.inf, -np.inf], np.nan)


# ------------------------------------------------------------------------------------------------ building

def _statistics_folders(statistics_dir: Path) -> list[Path]:
    """Each block's folder, then `combined`; with a single block only `combined` (the same analysis)."""
    folders = sorted((p.parent for p in statistics_dir.glob("*/statistics.json")),
                     key=lambda p: (p.name == "combined", natural_key(p.name)))
    return folders[-1:] if len(folders) == 2 and folders[-1].name == "combined" else folders


def read_inputs(accuracies_csv, statistics_dir, out_dir, measures_csv=None, title: str = "Report",
                allow_unknown_treatments: bool = False) -> Inputs:
    """Read and check everything the sections need (DataError naming the file when something is missing or
    damaged, when the CSV's runs cannot be found, or when a regulariser is not a registry id, unless
    `allow_unknown_treatments`)."""
    accuracies_csv, statistics_dir, out_dir = Path(accuracies_csv), Path(statistics_dir), Path(out_dir)
    frame = accuracies.read(accuracies_csv, allow_unknown_treatments)
    if "run_dir" in frame:
        lost = [run for run in frame["run_dir"] if run is not None and not Path(run).is_dir()]
        if lost:
            raise DataError(f"{accuracies_csv}: run_dir {lost[0]} is not a folder ({len(lost)} of {len(frame)} runs "
                            "not found; run_dir is read relative to the CSV's own folder): keep the CSV where "
                            "collect_accuracies.py wrote it, beside its runs, or collect again")
    folders = _statistics_folders(statistics_dir)
    if not folders:
        raise DataError(f"{statistics_dir}: no <block>/statistics.json; run extract_statistics.py first")
    analyses = [AnalysisFolder(f.name, f, *statistics_file.read(f)) for f in folders]
    if measures_csv and not Path(measures_csv).exists():
        raise DataError(f"{measures_csv}: no such measures CSV")
    incomplete_csv = accuracies_csv.with_name(accuracies_csv.stem + ".incomplete.csv")
    incomplete = (read_csv(incomplete_csv, accuracies.INCOMPLETE_COLUMNS, "list of unfinished runs")
                  if incomplete_csv.exists() and incomplete_csv.stat().st_size else None)
    return Inputs(title=title, accuracies_csv=accuracies_csv, statistics_dir=statistics_dir, out_dir=out_dir,
                  frame=frame, incomplete=incomplete, analyses=analyses,
                  measures_csv=Path(measures_csv) if measures_csv else None)


def build(accuracies_csv: str | Path, statistics_dir: str | Path, out_dir: str | Path, measures_csv=None,
          title: str = "Report", force: bool = False, extra_sections: tuple = (),
          allow_unknown_treatments: bool = False) -> Path:
    """Write `<out_dir>/report.md`, its PNGs and the self-contained `<out_dir>/report.html`; return report.md's path.

    Training curves come from each run's history.csv, found through the CSV's `run_dir` column (skipped when the
    CSV has none). measures_csv: NP/DGP measures, read by a plugged-in section (default: `measures.csv` beside the
    accuracies CSV, if it exists). extra_sections: more `Inputs -> Markdown lines` sections, placed last.
    """
    out_dir = Path(out_dir)
    report = out_dir / REPORT
    if report.exists() and not force:
        raise DataError(f"{report}: already exists; pass --force to overwrite it")
    inp = read_inputs(accuracies_csv, statistics_dir, out_dir, measures_csv, title, allow_unknown_treatments)
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = SECTIONS + tuple(extra_sections)
    parts = {}
    for section in sections:  # the summary links to the others, so it is written once they are known
        if section is not summary_section:
            parts[section] = section(inp)
            inp.titles |= {line[3:] for line in parts[section] for line in line.splitlines()
                           if line.startswith("## ")}
    parts[summary_section] = summary_section(inp)
    text = "\n".join(line for section in sections for line in parts[section]).rstrip() + "\n"
    atomic.write_text(report, text)
    html.write(report, out_dir / HTML, title=title)
    log.info("report: %s (and %s)", report, HTML)
    return report
