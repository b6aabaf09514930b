"""The report's "Is the gain more than selection?" section of one statistics folder: seeds as replicates (95 %
t-intervals of the selected cells), paired tests against the baseline, and, when the baseline has several seeds,
the paper's baseline rule beside the selection-matched one (`model.analysis.statistics.select`).

Reads what `model.analysis.outputs` wrote (statistics.json, intervals.md, paired_tests.md, the `<rule>_baseline/`
sub-folder); computes nothing.
"""
import json
from pathlib import Path

import pandas as pd

from model.analysis.statistics import BASELINE_RULES, natural_key
from model.analysis.tables import to_markdown
from model.analysis.treatments import BASELINE, LABELS, treatment_key

RULE_NAMES = {"paper": "paper's rule (baseline = mean over its seeds)",
              "matched": "matched (baseline = its best-validation seed)"}


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


def side_by_side(primary: dict, alternative: dict) -> pd.DataFrame:
    """Per treatment and rule: mean rank, and the paired test's median difference and Holm-adjusted p."""
    rows = {}
    for st in (primary, alternative):
        rule = st.get("baseline_selection", "paper")
        for t in st["treatments"]:
            row = rows.setdefault(LABELS.get(t, t), {"_key": treatment_key(t)})
            row[f"rank, {rule}"] = st["average_ranks"][t]
            test = st.get("paired_tests", {}).get(t)
            if test:
                row[f"median Δ vs ∅, {rule}"] = test["median_difference"]
                row[f"p_holm, {rule}"] = test["p_holm"]
    table = pd.DataFrame.from_dict(rows, orient="index").sort_values("_key").drop(columns="_key")
    table.index.name = "treatment"
    return table


def baseline_scores(primary: dict, alternative: dict) -> pd.DataFrame:
    """The baseline's test accuracy per network under each rule (the matched one with its selected seed)."""
    out = {}
    for st in (primary, alternative):
        rule = st.get("baseline_selection", "paper")
        for net, cells in st["selected"].items():
            cell = cells.get(BASELINE)
            if cell:
                text = f"{cell['test_accuracy']:.3f}"
                if "test_ci95" in cell and None not in cell["test_ci95"]:
                    text += " [{:.3f}, {:.3f}]".format(*cell["test_ci95"])
                if "seed" in cell:
                    text += f" (seed {cell['seed']})"
                out.setdefault(net, {})[RULE_NAMES[rule]] = text
    table = pd.DataFrame.from_dict(out, orient="index")
    table = table.reindex(sorted(table.index, key=natural_key))
    table.index.name = "network"
    return table


def section(folder: Path) -> str:
    """Markdown for one statistics folder; empty when it has neither intervals nor paired tests."""
    folder = Path(folder)
    st = json.loads((folder / "statistics.json").read_text())
    rule = st.get("baseline_selection", "paper")
    lines = [f"### Is the gain more than selection? ({folder.name})", "",
             f"Baseline: {RULE_NAMES[rule]}."]
    intervals, paired = _read(folder / "intervals.md"), _read(folder / "paired_tests.md")
    if intervals:
        lines += ["", "Selected cells' mean test accuracy over seeds with its 95 % Student-t interval "
                  "(mean ± t₀.₉₇₅,ₙ₋₁·s/√n: few seeds, unknown spread):", "", intervals]
    if paired:
        lines += ["", "Each treatment against the baseline, Wilcoxon signed-rank over networks × shared seeds "
                  "(differences = treatment − baseline; p_holm: Holm-adjusted over this block's treatments; "
                  "p – : every difference is 0, the treatment's runs equal the baseline's):", "",
                  paired]
    others = [folder / f"{r}_baseline" for r in BASELINE_RULES if (folder / f"{r}_baseline/statistics.json").exists()]
    if others:
        alt = json.loads((others[0] / "statistics.json").read_text())
        lines += ["", "Both baseline rules side by side: the baseline's score per network, then ranks and paired "
                  "tests. A gain that vanishes under the matched rule is what selecting the best of several runs "
                  "gives on its own.", "", to_markdown(baseline_scores(st, alt)), "",
                  to_markdown(side_by_side(st, alt), digits=4)]
    if not (intervals or paired or others):
        return ""
    return "\n".join(lines) + "\n"
