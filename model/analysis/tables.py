"""Tables of one analysis as CSV, Markdown and LaTeX (booktabs), with the paper's emphasis rules.

Accuracy table: rows = treatments, columns = networks, 3 decimals, best per network in bold (like Table 1; ties
at 3 decimals are all bold). Nemenyi table: p-values below α in bold. Paper comparison: reproduced next to Table 1.
This module formats; it must not compute statistics or draw.
"""
from pathlib import Path

import numpy as np
import pandas as pd

from model import atomic
from model.analysis.paper import TABLE1
from model.analysis.statistics import Analysis, can_reject, natural_key
from model.analysis.treatments import LABELS, LABELS_LATEX, treatment_key


def _cell(value, digits: int) -> str:
    return "–" if value is None or (isinstance(value, float) and np.isnan(value)) else (
        f"{value:.{digits}f}" if isinstance(value, (float, np.floating)) else str(value))


def to_markdown(table: pd.DataFrame, bold: pd.DataFrame | None = None, digits: int = 3) -> str:
    """GitHub Markdown; `bold` is a same-shape boolean frame (None: nothing bold)."""
    head = "| " + " | ".join([str(table.index.name or "")] + [str(c) for c in table.columns]) + " |"
    lines = [head, "|" + "---|" * (len(table.columns) + 1)]
    for i, (name, row) in enumerate(table.iterrows()):
        cells = [_cell(v, digits) for v in row]
        if bold is not None:
            cells = [f"**{c}**" if bold.iloc[i, j] else c for j, c in enumerate(cells)]
        lines.append("| " + " | ".join([str(name)] + cells) + " |")
    return "\n".join(lines) + "\n"


def _tex(text) -> str:
    return str(text).replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("&", r"\&").replace("%", r"\%")


def to_latex(table: pd.DataFrame, bold: pd.DataFrame | None = None, digits: int = 3,
             row_labels: dict | None = None) -> str:
    """A booktabs `tabular` (needs \\usepackage{booktabs}); row_labels maps index values to LaTeX labels."""
    row_labels = row_labels or {}
    out = [r"\begin{tabular}{l" + "r" * len(table.columns) + "}", r"\toprule",
           " & ".join([_tex(table.index.name or "")] + [_tex(c) for c in table.columns]) + r" \\", r"\midrule"]
    for i, (name, row) in enumerate(table.iterrows()):
        cells = [_cell(v, digits) for v in row]
        if bold is not None:
            cells = [rf"\textbf{{{c}}}" if bold.iloc[i, j] else c for j, c in enumerate(cells)]
        out.append(" & ".join([row_labels.get(name, _tex(name))] + cells) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(out) + "\n"


def accuracy_table(analysis: Analysis) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(test accuracies with rows = treatment ids, columns = networks; bold mask = best per network at 3 d.p.)"""
    table = analysis.matrix.T.copy()
    table.index.name = "treatment"
    rounded = table.round(3)
    return table, rounded.eq(rounded.max(axis=0), axis=1)


def nemenyi_table(analysis: Analysis) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(Nemenyi p-values, treatment × treatment; bold mask = p < α off the diagonal)"""
    p = analysis.nemenyi_p.copy()
    p.index.name = "treatment"
    return p, (p < analysis.alpha) & ~pd.DataFrame(np.eye(len(p), dtype=bool), index=p.index, columns=p.columns)


def ranks_table(analysis: Analysis) -> pd.DataFrame:
    """Mean rank per treatment (1 = best), best first."""
    ranks = analysis.average_ranks.sort_values(kind="stable").to_frame("average_rank")
    ranks.index.name = "treatment"
    return ranks


def paper_comparison(analysis: Analysis) -> pd.DataFrame | None:
    """Reproduced vs Table 1 for the networks and treatments both hold: rows (network, treatment); None if none."""
    rows = [(net, t, TABLE1[net][t], analysis.matrix.loc[net, t])
            for net in sorted(set(analysis.matrix.index) & set(TABLE1), key=natural_key)
            for t in sorted(set(analysis.matrix.columns) & set(TABLE1[net]), key=treatment_key)]
    if not rows:
        return None
    frame = pd.DataFrame(rows, columns=["network", "treatment", "paper", "reproduced"])
    frame["difference"] = frame["reproduced"] - frame["paper"]
    return frame.set_index(["network", "treatment"])


def paper_caption(rule: str) -> str:
    """What the Table 1 comparison's reproduced numbers are, per baseline rule."""
    return ("reproduced under the matched rule: every cell, ∅ included, the expected test accuracy of the "
            "validation-best of n draws at one n per network; the paper's numbers use its own rule"
            if rule == "matched" else
            "reproduced under the paper's rule: a regulariser's best weight by validation, ∅ the mean over its seeds")


def paper_side_by_side(comparison: pd.DataFrame) -> pd.DataFrame:
    """Rows = treatments (paper labels), columns = networks, cells `reproduced (paper)` to 3 decimals."""
    cells = comparison.apply(lambda r: f"{r['reproduced']:.3f} ({r['paper']:.3f})", axis=1).unstack("network")
    cells = cells.reindex(index=sorted(cells.index, key=treatment_key), columns=sorted(cells.columns, key=natural_key))
    cells.index.name = "treatment"
    return labelled(cells)


def intervals_table(analysis: Analysis) -> pd.DataFrame | None:
    """Rows = treatments, columns = networks, cells `mean [low, high]` of the selected cell's test accuracy over its
    seeds (the 95 % t-interval, `model.analysis.statistics.t_interval`; the mean alone for one seed); None when no
    selected cell has more than one seed, or when the cells are expected bests (the matched rule: no interval over
    seeds)."""
    sel = analysis.selected
    if not (sel["n_seeds"] > 1).any() or sel["budget"].notna().any():
        return None
    text = sel.apply(lambda r: f"{r['test_accuracy']:.3f} [{r['test_ci_low']:.3f}, {r['test_ci_high']:.3f}] "
                               f"(n={int(r['n_seeds'])})" if r["n_seeds"] > 1 else
                     f"{r['test_accuracy']:.3f} (n=1)", axis=1)
    table = sel.assign(text=text).pivot(index="treatment", columns="network", values="text")
    table = table.reindex(index=sorted(table.index, key=treatment_key), columns=sorted(table.columns, key=natural_key))
    table.index.name = "treatment"
    return table


def paired_table(analysis: Analysis) -> pd.DataFrame | None:
    """The paired tests against the baseline (`model.analysis.statistics.paired_tests`), one row per treatment (the
    CSV's columns as computed)."""
    if analysis.paired is None or analysis.paired.empty:
        return None
    return analysis.paired.set_index("treatment")


def paired_shown(paired: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """`paired_table` for reading: counts as integers; p and p_holm as text, `cannot reject (m < …)` where the test's
    smallest attainable p exceeds α (its p would only look like evidence); the probability of improvement with its
    interval as `0.62 [0.41, 0.80]`."""
    out = pd.DataFrame(index=paired.index)
    out["n_pairs"] = paired["n_pairs"].astype(int).astype(str)
    out["n_networks"] = paired["n_networks"].astype(int).astype(str)
    out["median_difference"] = paired["median_difference"]
    for col in ("p", "p_holm"):
        out[col] = [f"{row[col]:.4f}" if can_reject(row["min_attainable_p"], alpha) else
                    "–" if np.isnan(row["min_attainable_p"]) else
                    f"cannot reject (smallest p {row['min_attainable_p']:.3g} > α)"
                    for _, row in paired.iterrows()]
    out["P(treatment > ∅) [95 %]"] = [
        "–" if np.isnan(r["p_improvement"]) else
        f"{r['p_improvement']:.2f} [{r['p_improvement_low']:.2f}, {r['p_improvement_high']:.2f}]"
        for _, r in paired.iterrows()]
    return out


def labelled(table: pd.DataFrame, columns: bool = False) -> pd.DataFrame:
    """The same table with treatment ids in the index (and, with `columns`, in the columns) replaced by the paper's
    labels (`∅`, `T1`, ...)."""
    out = table.rename(index=lambda t: LABELS.get(t, t))
    return out.rename(columns=lambda t: LABELS.get(t, t)) if columns else out


def selected_accuracy_table(selected: dict) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Test accuracy of each selected cell with its spread, from statistics.json's `selected`
    ({network: {treatment: {test_accuracy, test_std, n_seeds, ...}}}).

    Returns (cells as text, rows = treatment labels, columns = networks: `0.953 ± 0.004` when the cell has more
    than one seed, else `0.953`; under the matched rule (cells with a `budget`) `0.953 (best of 3)`, an expectation
    with no spread; bold mask = best mean per network at 3 d.p.; what the values are, in words)."""
    networks = sorted(selected, key=natural_key)
    treatments = sorted({t for cells in selected.values() for t in cells}, key=treatment_key)
    mean = pd.DataFrame({n: {t: selected[n].get(t, {}).get("test_accuracy") for t in treatments} for n in networks},
                        dtype=float).reindex(index=treatments, columns=networks)
    seeds = sorted({c["n_seeds"] for cells in selected.values() for c in cells.values()})

    def cell(net, t):
        c = selected[net].get(t)
        if c is None or c.get("test_accuracy") is None:
            return "–"
        text = f"{c['test_accuracy']:.3f}"
        if "budget" in c:
            return text + f" (best of {c['budget']})"
        if c["n_seeds"] > 1 and c.get("test_std") is not None:
            text += f" ± {c['test_std']:.3f}"
        return text + (f" (n = {c['n_seeds']})" if len(seeds) > 1 else "")

    table = pd.DataFrame({n: [cell(n, t) for t in treatments] for n in networks}, index=treatments)
    rounded = mean.round(3)
    bold = rounded.eq(rounded.max(axis=0), axis=1)
    table.index.name = "treatment"
    matched = any("budget" in c for cells in selected.values() for c in cells.values())
    words = ("expected test accuracy of the validation-best of n draws, no spread" if matched else
             "1 seed per cell, so no spread" if seeds == [1] else
             f"mean ± standard deviation over {seeds[0]} seeds" if len(seeds) == 1 else
             "mean ± standard deviation over n seeds; 1 seed: no spread")
    return labelled(table), bold, words


def nemenyi_from_json(p: dict, alpha: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """statistics.json's `nemenyi_p` ({a: {b: p}}) as a labelled treatment × treatment table and its bold mask
    (p < α off the diagonal)."""
    order = sorted(p, key=treatment_key)
    table = pd.DataFrame(p, dtype=float).reindex(index=order, columns=order)
    bold = (table < alpha) & ~pd.DataFrame(np.eye(len(order), dtype=bool), index=order, columns=order)
    table.index.name = "treatment"
    return labelled(table, columns=True), bold


def _latex_symbols(text: str) -> str:
    """α and > of the readable tables' cells as LaTeX math (pdflatex has no text glyph for them)."""
    return text.replace(">", "$>$").replace("α", r"$\alpha$")


def write_all(analysis: Analysis, out_dir: str | Path) -> list[Path]:
    """Write accuracies, nemenyi_p and average_ranks (.csv/.md/.tex), selected.csv, intervals (when a selected cell
    has several seeds) and paired_tests (.csv/.md/.tex) and, when Table 1 overlaps, paper_comparison (.csv/.md)
    into out_dir; return the paths."""
    out_dir = Path(out_dir)
    paths = []
    made = {"accuracies": accuracy_table(analysis)}
    if analysis.average_ranks is not None:  # one network: no ranks, no Nemenyi
        made |= {"nemenyi_p": nemenyi_table(analysis), "average_ranks": (ranks_table(analysis), None)}
    for name, (table, bold) in made.items():
        paths.append(atomic.write_text(out_dir / f"{name}.csv", table.to_csv()))
        md = to_markdown(labelled(table, columns=name == "nemenyi_p"), bold)
        paths.append(atomic.write_text(out_dir / f"{name}.md", md))
        paths.append(atomic.write_text(out_dir / f"{name}.tex", to_latex(table, bold,
                                                                         row_labels=LABELS_LATEX)))
    paths.append(atomic.write_text(out_dir / "selected.csv", analysis.selected.to_csv(index=False)))
    for name, table in (("intervals", intervals_table(analysis)), ("paired_tests", paired_table(analysis))):
        if table is not None:
            paths.append(atomic.write_text(out_dir / f"{name}.csv", table.to_csv()))
            shown = paired_shown(table, analysis.alpha) if name == "paired_tests" else table
            paths.append(atomic.write_text(out_dir / f"{name}.md", to_markdown(labelled(shown), digits=4)))
            tex = shown.rename(columns={"P(treatment > ∅) [95 %]": "P(improvement) [95 %]"}).map(
                lambda v: _latex_symbols(v) if isinstance(v, str) else v)
            paths.append(atomic.write_text(out_dir / f"{name}.tex", to_latex(tex, digits=4,
                                                                              row_labels=LABELS_LATEX)))
    comparison = paper_comparison(analysis)
    if comparison is not None:
        paths.append(atomic.write_text(out_dir / "paper_comparison.csv", comparison.to_csv()))
        paths.append(atomic.write_text(out_dir / "paper_comparison.md", f"Baseline rule: "
                                       f"{paper_caption(analysis.baseline_rule)}.\n\n"
                                       + to_markdown(paper_side_by_side(comparison))))
    return paths
