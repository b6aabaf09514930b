"""The report's "Did the regulariser act?" section: per block, every grid cell's activity, cells under 50 % flagged.

Activity of a run = `reg_applied_fraction` of the accuracies CSV (DONE.json's `regulariser_activity.applied_fraction`:
the fraction of its training steps in which the regulariser's gradient reached the update,
`model.runs.activity_record`);
of a cell (network, regulariser, weight) = the mean over its seeds. A cell is flagged when its activity is under
`model.runs.activity_record.ACTED_THRESHOLD`: its accuracy then says little about the regulariser. The baseline and runs
recorded before the accounting have no activity and are left out. This module formats; it computes no statistics.
"""
import numpy as np
import pandas as pd

from model.analysis.statistics import natural_key
from model.analysis.tables import to_markdown
from model.analysis.treatments import BASELINE, LABELS, treatment_key
from model.runs.activity_record import ACTED_THRESHOLD

COLUMN = "reg_applied_fraction"


def cell_activity(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean activity over seeds per regularised cell: columns network, regulariser, weight, activity, n_seeds."""
    if COLUMN not in frame:
        return pd.DataFrame(columns=["network", "regulariser", "weight", "activity", "n_seeds"])
    runs = frame[(frame["regulariser"] != BASELINE) & (frame["weight"] > 0)].copy()
    runs[COLUMN] = pd.to_numeric(runs[COLUMN], errors="coerce")
    runs = runs[runs[COLUMN].notna()]
    return (runs.groupby(["network", "regulariser", "weight"], sort=True)
            .agg(activity=(COLUMN, "mean"), n_seeds=("seed", "nunique")).reset_index())


def flagged_cells(frame: pd.DataFrame, selected: dict) -> list[tuple]:
    """The selected cells (statistics.json's `selected`: network -> treatment -> {weight, ...}) whose activity is
    under the threshold, as (network, treatment, weight, activity), sorted."""
    cells = cell_activity(frame)
    out = []
    for network in sorted(selected, key=natural_key):
        for treatment, cell in sorted(selected[network].items(), key=lambda kv: treatment_key(kv[0])):
            match = cells[(cells["network"] == network) & (cells["regulariser"] == treatment)
                          & np.isclose(cells["weight"], float(cell["weight"] or 0.0))]
            if not match.empty and match["activity"].iloc[0] < ACTED_THRESHOLD:
                out.append((network, treatment, float(cell["weight"]), float(match["activity"].iloc[0])))
    return out


def top_line(frame: pd.DataFrame, selected_by_analysis: dict) -> list[str]:
    """One line for the head of the report when a selected cell of any analysis is flagged, else nothing."""
    flagged = sorted({c for selected in selected_by_analysis.values() for c in flagged_cells(frame, selected)},
                     key=lambda c: (natural_key(c[0]), treatment_key(c[1])))
    if not flagged:
        return []
    cells = ", ".join(f"{net} {LABELS.get(t, t)} (ω = {w:g}: {100 * a:.0f} %)" for net, t, w, a in flagged)
    return [f"**Warning: in {len(flagged)} selected cell(s) the regulariser acted in fewer than "
            f"{100 * ACTED_THRESHOLD:.0f} % of the training steps** ({cells}); their accuracies say little about the "
            "regulariser. See \"Did the regulariser act?\".", ""]


def section(frame: pd.DataFrame, selected: dict, name: str) -> str:
    """Markdown: the cells × activity table of one analysis (rows regulariser and weight, columns networks; values
    the % of steps in which the regulariser's gradient was applied, mean over seeds; under the threshold in bold
    with "!"; the selected weight marked "*"), and the flagged selected cells named."""
    networks = set(selected)
    cells = cell_activity(frame[frame["network"].isin(networks)])
    lines = [f"### Did the regulariser act? ({name})", ""]
    if cells.empty:
        return "\n".join(lines + ["No run of this analysis records its regulariser's activity (runs from before "
                                  "the accounting, or no regularised run).", ""])
    chosen = {(net, t, float(c["weight"] or 0.0)) for net, ts in selected.items() for t, c in ts.items()}
    cells["row"] = cells.apply(lambda r: f"{LABELS.get(r['regulariser'], r['regulariser'])} "
                                         f"ω = {r['weight']:g}", axis=1)
    cells["text"] = cells.apply(
        lambda r: ("**{:.0f} %!**" if r["activity"] < ACTED_THRESHOLD else "{:.0f} %").format(100 * r["activity"])
        + ("*" if any(c[0] == r["network"] and c[1] == r["regulariser"] and np.isclose(c[2], r["weight"])
                      for c in chosen) else ""), axis=1)
    order = cells.sort_values(["regulariser", "weight"], key=lambda col: col.map(treatment_key)
                              if col.name == "regulariser" else col)["row"].drop_duplicates()
    table = cells.pivot(index="row", columns="network", values="text").reindex(
        index=list(order), columns=sorted(cells["network"].unique(), key=natural_key)).fillna("–")
    table.index.name = "cell"
    flagged = flagged_cells(frame, selected)
    n_under = int((cells["activity"] < ACTED_THRESHOLD).sum())
    lines += [f"Per cell the % of training steps in which the regulariser's gradient reached the update (mean over "
              f"seeds; `model.runs.activity_record`); under {100 * ACTED_THRESHOLD:.0f} % in bold with \"!\" "
              f"({n_under} of {len(cells)} cells); * = the selected weight. The runs' `history.csv` says per epoch "
              "why (zeroed by the dead-neuron or zero-length-bar policy, non-finite, skipped).", "",
              to_markdown(table)]
    if flagged:
        lines += [f"Selected cells under {100 * ACTED_THRESHOLD:.0f} %: " + ", ".join(
            f"{net} {LABELS.get(t, t)} (ω = {w:g}, {100 * a:.0f} %)" for net, t, w, a in flagged)
            + ".", ""]
    return "\n".join(lines)
