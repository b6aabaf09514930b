"""The report's "Did the regulariser act?" section: per block, whether, how strongly and at what cost to the neurons
each grid cell's regulariser acted; flagged cells named.

Per run, from the accuracies CSV (DONE.json's `regulariser_activity`, `model.runs.activity_record`):
`reg_applied_fraction` (the fraction of its training steps in which the regulariser's gradient reached the update),
‖ω∇R‖/‖∇CE‖ over its measured steps (`reg_grad_ratio_median`, `_min`, `_max`, `_under_1pct`, `_mean`) and the mean
number of constant sampled neurons per batch (`reg_constant_neurons`). Per cell (network, regulariser, weight):
activity = the mean over its seeds; the ratio's median = the median of the runs' medians, its range = the smallest
minimum to the largest maximum, the share of measured steps under 1 % = the mean over seeds (runs recorded before
these keys: the mean ratio, marked "mean", and no range); constant neurons = the mean over seeds.
Three flags, each from `model.runs.activity_record` (one threshold, one source):
- *inactive*: activity under `ACTED_THRESHOLD` (its accuracy then says little about the regulariser);
- *negligible*: it acted, but ‖ω∇R‖ was under `SMALL_RATIO` of ‖∇CE‖ on most measured steps
  (`activity_record.negligible`): in effect the baseline;
- *killing neurons*: its constant neurons per batch reached `KILLING_FACTOR` × the reference's
  (`activity_record.kills_neurons`). The reference is the network's baseline when its runs record constant neurons
  (runs at ω = 0 do not today: they compute no regulariser), else the lowest weight of the same regulariser on that
  network (never flagged itself), and the text says which.
The baseline and runs recorded before the accounting have no activity and are left out. This module formats; it
computes no statistics.
"""
import numpy as np
import pandas as pd

from model.analysis.statistics import natural_key
from model.analysis.tables import to_markdown
from model.analysis.treatments import BASELINE, LABELS, treatment_key
from model.runs.activity_record import ACTED_THRESHOLD, KILLING_FACTOR, SMALL_RATIO, kills_neurons, negligible

COLUMN = "reg_applied_fraction"
RATIO = ("reg_grad_ratio_median", "reg_grad_ratio_min", "reg_grad_ratio_max", "reg_grad_ratio_under_1pct",
         "reg_grad_ratio_mean")
CONSTANT = "reg_constant_neurons"
CELL_COLUMNS = ["network", "regulariser", "weight", "activity", "n_seeds", "ratio_median", "ratio_from", "ratio_min",
                "ratio_max", "under_small", "inactive", "negligible", "constant", "constant_reference",
                "reference_kind", "killing"]


def _numeric(frame: pd.DataFrame, columns) -> pd.DataFrame:
    out = frame.copy()
    for col in columns:
        out[col] = pd.to_numeric(out[col], errors="coerce") if col in out else np.nan
    return out


def _ratio(runs: pd.DataFrame) -> pd.Series:
    """One cell's ratio summary (runs: its seeds): median of the medians or, for older runs, the mean."""
    medians, means = runs["reg_grad_ratio_median"], runs["reg_grad_ratio_mean"]
    if medians.notna().all() and len(medians):
        value, source = float(medians.median()), "median"
    elif means.notna().any():
        value, source = float(means.mean()), "mean"
    else:
        value, source = np.nan, None
    under = runs["reg_grad_ratio_under_1pct"]
    return pd.Series({"ratio_median": value, "ratio_from": source,
                      "ratio_min": runs["reg_grad_ratio_min"].min() if source == "median" else np.nan,
                      "ratio_max": runs["reg_grad_ratio_max"].max() if source == "median" else np.nan,
                      "under_small": float(under.mean()) if under.notna().all() and len(under) else np.nan,
                      "mean_ratio": float(means.mean()) if means.notna().any() else np.nan})


def cell_activity(frame: pd.DataFrame) -> pd.DataFrame:
    """Per regularised cell: `CELL_COLUMNS` (activity = mean applied fraction over seeds; ratio summary; the three
    flags; constant neurons, the reference they are compared with and its kind, "baseline" or "lowest ω")."""
    if COLUMN not in frame:
        return pd.DataFrame(columns=CELL_COLUMNS)
    data = _numeric(frame, (COLUMN, *RATIO, CONSTANT))
    runs = data[(data["regulariser"] != BASELINE) & (data["weight"] > 0) & data[COLUMN].notna()]
    if runs.empty:
        return pd.DataFrame(columns=CELL_COLUMNS)
    keys = ["network", "regulariser", "weight"]
    cells = (runs.groupby(keys, sort=True)
             .agg(activity=(COLUMN, "mean"), n_seeds=("seed", "nunique"), constant=(CONSTANT, "mean")).reset_index())
    ratios = runs.groupby(keys, sort=True)[list(RATIO)].apply(_ratio).reset_index()
    cells = cells.merge(ratios, on=keys)
    cells["inactive"] = cells["activity"] < ACTED_THRESHOLD
    cells["negligible"] = [not inactive and bool(negligible(None if np.isnan(u) else u, None if np.isnan(m) else m))
                           for inactive, u, m in zip(cells["inactive"], cells["under_small"], cells["mean_ratio"])]
    baseline = data[((data["regulariser"] == BASELINE) | (data["weight"] == 0)) & data[CONSTANT].notna()]
    baseline = baseline.groupby("network")[CONSTANT].mean()
    reference, kind = [], []
    for row in cells.itertuples():
        if row.network in baseline.index:
            reference.append(float(baseline[row.network]))
            kind.append("baseline")
            continue
        same = cells[(cells["network"] == row.network) & (cells["regulariser"] == row.regulariser)]
        lowest = same.loc[same["weight"].idxmin()]
        own = np.isclose(lowest["weight"], row.weight)
        reference.append(np.nan if own else float(lowest["constant"]))
        kind.append(None if own else "lowest ω")
    cells["constant_reference"], cells["reference_kind"] = reference, kind
    cells["killing"] = [bool(np.isfinite(c) and np.isfinite(r) and kills_neurons(c, r))
                        for c, r in zip(cells["constant"], cells["constant_reference"])]
    return cells[CELL_COLUMNS]


def _selected(cells: pd.DataFrame, selected: dict) -> pd.DataFrame:
    """The rows of `cells` that are selected cells (statistics.json's `selected`: network -> treatment ->
    {weight, ...}), in network then treatment order."""
    picked = []
    for network in sorted(selected, key=natural_key):
        for treatment, cell in sorted(selected[network].items(), key=lambda kv: treatment_key(kv[0])):
            match = cells[(cells["network"] == network) & (cells["regulariser"] == treatment)
                          & np.isclose(cells["weight"].astype(float), float(cell["weight"] or 0.0))]
            picked.append(match)
    return pd.concat(picked) if picked else cells.iloc[:0]


def flagged_cells(frame: pd.DataFrame, selected: dict) -> list[tuple]:
    """The selected cells whose activity is under the threshold, as (network, treatment, weight, activity)."""
    rows = _selected(cell_activity(frame), selected)
    return [(r.network, r.regulariser, float(r.weight), float(r.activity)) for r in rows.itertuples() if r.inactive]


def negligible_cells(frame: pd.DataFrame, selected: dict) -> list[tuple]:
    """The selected cells whose regulariser acted negligibly, as (network, treatment, weight, ratio median)."""
    rows = _selected(cell_activity(frame), selected)
    return [(r.network, r.regulariser, float(r.weight), float(r.ratio_median)) for r in rows.itertuples()
            if r.negligible]


def killing_cells(frame: pd.DataFrame, selected: dict) -> list[tuple]:
    """The selected cells whose regulariser kills neurons, as (network, treatment, weight, constant neurons,
    reference, reference kind)."""
    rows = _selected(cell_activity(frame), selected)
    return [(r.network, r.regulariser, float(r.weight), float(r.constant), float(r.constant_reference),
             r.reference_kind) for r in rows.itertuples() if r.killing]


def _cells(found: list[tuple], text, sep=": ") -> str:
    return ", ".join(f"{c[0]} {LABELS.get(c[1], c[1])} (ω = {c[2]:g}{sep}{text(c)})" for c in found)


def top_line(frame: pd.DataFrame, selected_by_analysis: dict) -> list[str]:
    """Lines for the head of the report, one per flag that a selected cell of any analysis carries, else nothing."""
    def gather(find):
        return sorted({c for selected in selected_by_analysis.values() for c in find(frame, selected)},
                      key=lambda c: (natural_key(c[0]), treatment_key(c[1]), c[2]))

    lines = []
    inactive, weak, killing = gather(flagged_cells), gather(negligible_cells), gather(killing_cells)
    if inactive:
        lines.append(f"**Warning: in {len(inactive)} selected cell(s) the regulariser acted in fewer than "
                     f"{100 * ACTED_THRESHOLD:.0f} % of the training steps** "
                     f"({_cells(inactive, lambda c: f'{100 * c[3]:.0f} %')}); their accuracies say little about the "
                     "regulariser. See \"Did the regulariser act?\".")
    if weak:
        lines.append(f"**Warning: in {len(weak)} selected cell(s) the regulariser's effect was negligible**: "
                     f"‖ω∇R‖ under {100 * SMALL_RATIO:g} % of ‖∇CE‖ on most steps "
                     f"({_cells(weak, lambda c: f'median {c[3]:.2g}')}); they are in effect the baseline. "
                     "See \"Did the regulariser act?\".")
    if killing:
        lines.append(f"**Warning: in {len(killing)} selected cell(s) the regulariser is killing neurons**: "
                     f"constant neurons per batch ≥ {KILLING_FACTOR:g}× the reference's "
                     f"({_cells(killing, lambda c: f'{c[3]:.1f} against {c[4]:.1f}, {c[5]}')}). "
                     "See \"Did the regulariser act?\".")
    return [line for text in lines for line in (text, "")]


def _ratio_text(r) -> str:
    if pd.isna(r.ratio_from):
        return "–"
    text = (f"{r.ratio_median:.2g} [{r.ratio_min:.2g}, {r.ratio_max:.2g}]" if r.ratio_from == "median"
            else f"{r.ratio_median:.2g} (mean)")
    return f"**{text} negligible**" if r.negligible else text


def _constant_text(r) -> str:
    if not np.isfinite(r.constant):
        return "–"
    if not np.isfinite(r.constant_reference):
        return f"{r.constant:.1f}"
    text = f"{r.constant:.1f} ({r.constant / r.constant_reference:.1f}×)" if r.constant_reference > 0 else \
        f"{r.constant:.1f} (reference 0)"
    return f"**{text} killing**" if r.killing else text


def section(frame: pd.DataFrame, selected: dict, name: str) -> str:
    """Markdown for one analysis: three cells × networks tables (rows regulariser and weight; the selected weight
    marked "*"): the % of steps in which the regulariser's gradient was applied (mean over seeds; under the threshold
    in bold with "!"), ‖ω∇R‖/‖∇CE‖ (median [min, max]; negligible in bold) and the constant sampled neurons per batch
    (× the reference; killing in bold); then the flagged selected cells named."""
    networks = set(selected)
    cells = cell_activity(frame[frame["network"].isin(networks)])
    lines = [f"### Did the regulariser act? ({name})", ""]
    if cells.empty:
        return "\n".join(lines + ["No run of this analysis records its regulariser's activity (runs from before "
                                  "the accounting, or no regularised run).", ""])
    chosen = {(net, t, float(c["weight"] or 0.0)) for net, ts in selected.items() for t, c in ts.items()}
    cells["row"] = cells.apply(lambda r: f"{LABELS.get(r['regulariser'], r['regulariser'])} "
                                         f"ω = {r['weight']:g}", axis=1)
    cells["star"] = cells.apply(lambda r: "*" if any(c[0] == r["network"] and c[1] == r["regulariser"]
                                                     and np.isclose(c[2], r["weight"]) for c in chosen) else "", axis=1)
    cells["acted"] = cells.apply(
        lambda r: ("**{:.0f} %!**" if r["inactive"] else "{:.0f} %").format(100 * r["activity"]), axis=1)
    cells["ratio"] = [_ratio_text(r) for r in cells.itertuples()]
    cells["dead"] = [_constant_text(r) for r in cells.itertuples()]
    order = cells.sort_values(["regulariser", "weight"], key=lambda col: col.map(treatment_key)
                              if col.name == "regulariser" else col)["row"].drop_duplicates()
    columns = sorted(cells["network"].unique(), key=natural_key)

    def table(values):
        cells["text"] = cells[values] + cells["star"]
        out = cells.pivot(index="row", columns="network", values="text").reindex(index=list(order),
                                                                                   columns=columns).fillna("–")
        out.index.name = "cell"
        return to_markdown(out)

    kinds = sorted({k for k in cells["reference_kind"].dropna()})
    lines += [f"Per cell the % of training steps in which the regulariser's gradient reached the update (mean over "
              f"seeds; `model.runs.activity_record`); under {100 * ACTED_THRESHOLD:.0f} % in bold with \"!\" "
              f"({int(cells['inactive'].sum())} of {len(cells)} cells); * = the selected weight. The runs' "
              "`history.csv` says per epoch why (zeroed by the dead-neuron or zero-length-bar policy, non-finite, "
              "skipped).", "", table("acted"),
              f"How strongly: ‖ω∇R‖/‖∇CE‖ (global gradient norms) over the measured steps, median [min, max] over "
              f"the cell's runs; **negligible** when under {100 * SMALL_RATIO:g} % on most steps "
              f"({int(cells['negligible'].sum())} cells): such a cell is in effect the baseline.", "",
              table("ratio"),
              f"Constant neurons among the sampled ones, mean per batch, and × the reference: the baseline's when "
              f"its runs record it, else the regulariser's lowest weight on that network (here: "
              f"{' and '.join(kinds) if kinds else 'none'}); **killing** at ≥ {KILLING_FACTOR:g}× and at least one "
              f"neuron more ({int(cells['killing'].sum())} cells).", "", table("dead")]
    for found, what, text in (
            (flagged_cells(frame, selected), f"under {100 * ACTED_THRESHOLD:.0f} %", lambda c: f"{100 * c[3]:.0f} %"),
            (negligible_cells(frame, selected), "negligible", lambda c: f"median {c[3]:.2g}"),
            (killing_cells(frame, selected), "killing neurons",
             lambda c: f"{c[3]:.1f} constant neurons against {c[4]:.1f}, {c[5]}")):
        if found:
            lines += [f"Selected cells {what}: {_cells(found, text, ', ')}.", ""]
    return "\n".join(lines)
