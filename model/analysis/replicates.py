"""The report's "Is the gain more than selection?" section of one statistics folder: seeds as replicates (95 %
t-intervals of the selected cells), paired tests and the probability of improvement against the baseline, the
expected best of n draws per treatment (budgets matched), and, when the baseline has several seeds, the paper's
baseline rule beside the matched one (`model.analysis.statistics.select`).

Reads what `model.analysis.outputs` wrote (statistics.json, intervals.md, paired_tests.md, expected_best.png, the
`<rule>_baseline/` sub-folder); computes nothing.
"""
import shutil
from pathlib import Path

import pandas as pd

from model.analysis import statistics_file
from model.analysis.figures.plotting import slug
from model.analysis.statistics import BASELINE_RULES, can_reject, natural_key
from model.analysis.tables import to_markdown
from model.analysis.treatments import BASELINE, LABELS, treatment_key

RULE_NAMES = {"paper": "paper's rule (regulariser = its best weight by validation, baseline = mean over its seeds)",
              "matched": "matched budget (every treatment = expected test accuracy of its validation-best of n draws, "
                         "one n per network)"}


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


def side_by_side(primary: dict, alternative: dict) -> pd.DataFrame:
    """Per treatment and rule: mean rank, and the paired test's median difference and Holm-adjusted p."""
    rows = {}
    for st in (primary, alternative):
        rule = st.get("baseline_selection", "paper")
        for t in st["treatments"]:
            row = rows.setdefault(LABELS.get(t, t), {"_key": treatment_key(t)})
            if st.get("average_ranks"):  # one network: no ranks
                row[f"rank, {rule}"] = st["average_ranks"][t]
            test = st.get("paired_tests", {}).get(t)
            if test:
                row[f"median Δ vs ∅, {rule}"] = test["median_difference"]
                floor = test.get("min_attainable_p")
                row[f"p_holm, {rule}"] = (f"{test['p_holm']:.4f}" if test["p_holm"] is not None and (
                    floor is None or can_reject(floor, st["alpha"])) else "–" if test["p_holm"] is None
                    else "cannot reject")
    table = pd.DataFrame.from_dict(rows, orient="index").sort_values("_key").drop(columns="_key")
    table.index.name = "treatment"
    return table


def baseline_scores(primary: dict, alternative: dict) -> pd.DataFrame:
    """The baseline's test accuracy per network under each rule (the matched one with its budget n)."""
    out = {}
    for st in (primary, alternative):
        rule = st.get("baseline_selection", "paper")
        for net, cells in st["selected"].items():
            cell = cells.get(BASELINE)
            if cell:
                text = f"{cell['test_accuracy']:.3f}"
                if "test_ci95" in cell and None not in cell["test_ci95"]:
                    text += " [{:.3f}, {:.3f}]".format(*cell["test_ci95"])
                if "budget" in cell:
                    text += f" (best of {cell['budget']})"
                out.setdefault(net, {})[RULE_NAMES[rule]] = text
    table = pd.DataFrame.from_dict(out, orient="index")
    table = table.reindex(sorted(table.index, key=natural_key))
    table.index.name = "network"
    return table


def section(folder: Path, out_dir: Path | None = None) -> str:
    """Markdown for one statistics folder; empty when it has neither intervals, paired tests nor expected-best
    curves. out_dir: where the report is written (expected_best.png is copied there as `best_of_n_<name>.png`)."""
    folder = Path(folder)
    st, _ = statistics_file.read(folder)
    rule = st.get("baseline_selection", "paper")
    lines = [f"### Is the gain more than selection? ({folder.name})", "",
             f"Baseline: {RULE_NAMES[rule]}."]
    figure = folder / "expected_best.png"
    if figure.exists() and out_dir is not None:
        target = Path(out_dir) / f"best_of_n_{slug(folder.name)}.png"
        shutil.copyfile(figure, target)
        lines += ["", "Budgets matched (Dodge et al. 2019): the expected test accuracy of the validation-best of n "
                  "draws, for n = 1..N (a regulariser's draws are its weights, each the mean over seeds; the "
                  "baseline's are its seeds; N in the legend), mean over the networks. Compare treatments at one n: "
                  "the paper's rule compares a regulariser's best of N weights with the baseline at n = 1 (its mean); "
                  "the matched rule scores every treatment at the smallest N of the network "
                  "(`expected_best.csv` holds every value).", "", f"![Expected best of n, {folder.name}]"
                  f"({target.name})"]
    intervals, paired = _read(folder / "intervals.md"), _read(folder / "paired_tests.md")
    if intervals:
        lines += ["", "Selected cells' mean test accuracy over seeds with its 95 % Student-t interval "
                  "(mean ± t₀.₉₇₅,ₙ₋₁·s/√n: few seeds, unknown spread):", "", intervals]
    if paired:
        lines += ["", "Each treatment against the baseline, Wilcoxon signed-rank over networks × shared seeds "
                  "(differences = treatment − baseline; p_holm: Holm-adjusted over this block's treatments; "
                  "\"cannot reject\": with m non-zero differences the smallest possible two-sided p is 2/2^m, above "
                  "α when m < 6 at α = 0.05, so no p is shown; p – : every difference is 0, the treatment's runs "
                  "equal the baseline's), and the probability of improvement P(treatment > ∅): per network the "
                  "chance that a run of the treatment (its selected weight) beats a run of ∅ (ties count ½), the "
                  "mean over networks, with a 95 % stratified-bootstrap interval (seeds resampled within each "
                  "network; rliable's definition):", "", paired]
    others = [folder / f"{r}_baseline" for r in BASELINE_RULES if (folder / f"{r}_baseline/statistics.json").exists()]
    if others:
        alt, _ = statistics_file.read(others[0])
        lines += ["", "Both baseline rules side by side: the baseline's score per network, then ranks and paired "
                  "tests. A gain that vanishes under the matched rule is what choosing among more draws than the "
                  "baseline gives on its own.", "", to_markdown(baseline_scores(st, alt)), "",
                  to_markdown(side_by_side(st, alt), digits=4)]
    if not (intervals or paired or others or figure.exists()):
        return ""
    return "\n".join(lines) + "\n"
