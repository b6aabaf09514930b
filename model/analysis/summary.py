"""The report's opening summary: per analysis three or four sentences written from its numbers, then the warnings.

Each analysis (a block, or `combined`) gets: the Friedman result in words, following its exact (permutation) p
when statistics.json has it (the Iman–Davenport p for statistics written before it), with the smallest p the test
can reach at its size; which treatments the Nemenyi test separates (or none); the test's power (networks,
treatments, critical difference as a share of the rank range, seeds per cell); the paired tests against the
baseline (Holm-adjusted p, or that the test cannot reject at its number of pairs; the probability of improvement
with its interval). With one network (no ranks) the paired tests over its seeds are the verdict. Then what
undermines it (networks left out for missing cells, selected cells where the
regulariser barely acted, collapsed runs). Inputs are the contents of statistics.json / details.json
(`model.analysis.outputs`) and the accuracies frame (`model.analysis.accuracies`); links point at the report's
section anchors. This module writes sentences; it must not compute statistics beyond reading them back
(a mean over seeds, a threshold).
"""
import numpy as np
import pandas as pd

from model.analysis import activity_table
from model.analysis.statistics import can_reject, natural_key
from model.analysis.treatments import BASELINE, COLLAPSE_FRACTION, collapsed, label, treatment_key

RULE_WORDS = {"paper": "the paper's rule (a regulariser's best weight by validation, ∅ the mean over its seeds)",
              "matched": "the matched rule (every treatment's expected validation-best of n draws, one n per "
                         "network)"}


def _p(x) -> str:
    return "∞" if x is None else f"{x:.2g}" if x < 0.01 else f"{x:.2f}"


def _link(text: str, anchor: str | None) -> str:
    return f"[{text}](#{anchor})" if anchor else text


def _names(items: list[str], limit: int = 4) -> str:
    """`a, b and c`, or `a, b, c, d and 3 more`."""
    if len(items) > limit:
        items = items[:limit] + [f"{len(items) - limit} more"]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def ranked(st: dict) -> bool:
    """Whether the analysis has ranks (2 or more networks); with one network it compares over seeds."""
    return st.get("friedman") is not None


def _exact_words(fr: dict) -> str:
    """`exact p = 0.17, by enumeration` or `p = 0.03, Monte Carlo over 20000 seeded permutations`."""
    how = ("by enumeration of every ordering" if fr["exact_method"] == "enumeration" else
           f"Monte Carlo over {fr['exact_draws']} permutations, seed {fr['exact_seed']}")
    return f"exact p = {_p(fr['exact_p'])}, {how}"


def test_sentence(st: dict) -> str:
    """The Friedman result in words, with its numbers: the exact p first (when recorded), then the approximations."""
    if not ranked(st):
        return one_network_sentence(st)
    fr, alpha, k, n = st["friedman"], st["alpha"], len(st["treatments"]), st["n_networks"]
    approx = (f"Iman–Davenport F = {fr['iman_davenport_f']:.3g}, p = {_p(fr['iman_davenport_p'])}; "
              f"Friedman χ² = {fr['chi2']:.3g}, p = {_p(fr['chi2_p'])}" if fr["iman_davenport_f"] is not None
              else f"every network ranks the treatments identically; Iman–Davenport F undefined; Friedman χ² = "
                   f"{fr['chi2']:.3g}, χ² approximation p = {_p(fr['chi2_p'])}")
    if "exact_p" in fr:
        name, numbers = "Friedman's exact test", f"{_exact_words(fr)}; {approx}"
    else:
        name, numbers = "the Iman–Davenport test", approx
    floor = fr.get("exact_min_p")
    reach = (f" With {n} networks × {k} treatments its smallest possible p is {_p(floor)}, above α: it cannot "
             "reject whatever the data." if floor is not None and floor > alpha else "")
    if significant(st):
        return f"The treatments do not all rank alike: {name} rejects equal mean ranks of the {k} " \
               f"treatments at α = {alpha:g} ({numbers})."
    return f"No significant difference among the {k} treatments: {name} does not reject equal " \
           f"mean ranks at α = {alpha:g} ({numbers}).{reach}"


def one_network_sentence(st: dict) -> str:
    """One network: why there are no ranks, and what compares the treatments instead."""
    seeds = sorted({cell["n_seeds"] for cells in st["selected"].values() for cell in cells.values()})
    seed_text = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}"
    return (f"One network ({next(iter(st['selected']))}), {len(st['treatments'])} treatments, {seed_text} seeds "
            "per cell: ranks, Friedman's test and the CD diagram need at least 2 networks, so the treatments are "
            "compared with the baseline over the seeds, paired by seed (below); these speak for this network only.")


def significant(st: dict) -> bool:
    """Whether the omnibus Friedman test rejects at the analysis's α (its exact p; the Iman–Davenport p for
    statistics.json written before the exact test). Never with one network (no ranks)."""
    if not ranked(st):
        return False
    fr = st["friedman"]
    p = fr["exact_p"] if "exact_p" in fr else fr["iman_davenport_p"]
    return p is not None and p <= st["alpha"]


def differing_pairs(st: dict) -> list[tuple[str, str, float]]:
    """(better, worse, p) for every pair with Nemenyi p < α, better = lower mean rank; most significant first."""
    ranks, p, alpha = st["average_ranks"], st["nemenyi_p"], st["alpha"]
    ts = sorted(st["treatments"], key=treatment_key)
    pairs = []
    for i, a in enumerate(ts):
        for b in ts[i + 1:]:
            if p[a][b] is not None and p[a][b] < alpha:
                better, worse = (a, b) if ranks[a] <= ranks[b] else (b, a)
                pairs.append((better, worse, p[a][b]))
    return sorted(pairs, key=lambda x: x[2])


def pairs_sentence(st: dict) -> str:
    """Which treatments the Nemenyi test separates (only read when the omnibus test rejects), and the rank extremes;
    nothing with one network."""
    if not ranked(st):
        return ""
    ranks = st["average_ranks"]
    order = sorted(ranks, key=lambda t: (ranks[t], treatment_key(t)))
    extremes = f"best mean rank {label(order[0])} ({ranks[order[0]]:.2f}), worst {label(order[-1])} " \
               f"({ranks[order[-1]]:.2f})"
    if not significant(st):
        return f"So no treatment can be called better than another here; {extremes}."
    pairs = differing_pairs(st)
    if not pairs:
        return f"But no pair differs by the critical difference (Nemenyi), so the data do not say which ones differ; " \
               f"{extremes}."
    said = [f"{label(a)} over {label(b)} (p = {_p(p)})" for a, b, p in pairs]
    return f"Nemenyi separates {len(pairs)} pair{'s' if len(pairs) > 1 else ''}: {_names(said)}; {extremes}."


def power_sentence(st: dict) -> str:
    """Networks, treatments, the critical difference against the rank range 1..k, and the seeds per cell (nothing
    with one network: the paired sentence says how many pairs there are)."""
    if not ranked(st):
        return ""
    n, k, cd = st["n_networks"], len(st["treatments"]), st["critical_difference"]
    share = cd / (k - 1)
    seeds = sorted({cell["n_seeds"] for cells in st["selected"].values() for cell in cells.values()})
    seed_text = ("each cell is 1 seed (no spread over seeds)" if seeds == [1] else
                 f"cells hold {seeds[0]} seeds" if len(seeds) == 1 else f"cells hold {seeds[0]}–{seeds[-1]} seeds")
    head = f"Power: {n} networks × {k} treatments give a critical difference of {cd:.2f} mean ranks"
    if share > 1:
        verdict = ("wider than the whole rank range, so no pair can ever be separated: Nemenyi cannot reject at "
                   f"{n} networks, the test has no power")
    elif share >= 0.75:
        verdict = (f"{share:.0%} of the rank range 1–{k}: only a treatment nearly always first against one nearly "
                   "always last could be separated, so the test has almost no power")
    elif share >= 0.5:
        verdict = f"{share:.0%} of the rank range 1–{k}: only large, consistent rank gaps can be detected"
    else:
        verdict = f"{share:.0%} of the rank range 1–{k}"
    return f"{head}, {verdict}; {seed_text}."


def paired_sentence(st: dict) -> str:
    """Each treatment against the baseline: Holm-adjusted Wilcoxon p (or that it cannot reject at its number of
    pairs) and the probability of improvement with its 95 % interval; names the baseline rule."""
    tests = st.get("paired_tests") or {}
    if not tests:
        return ""
    alpha = st["alpha"]
    said = []
    for t in sorted(tests, key=treatment_key):
        test = tests[t]
        if test.get("min_attainable_p") is not None and not can_reject(test["min_attainable_p"], alpha):
            verdict = f"cannot reject at {test['n_pairs']} pair{'s' if test['n_pairs'] != 1 else ''} (smallest " \
                      f"possible p {_p(test['min_attainable_p'])})"
        elif test.get("p_holm") is None:
            verdict = "every difference 0"
        else:
            verdict = f"p_holm = {test['p_holm']:.3g} over {test['n_pairs']} pairs"
        poi = test.get("p_improvement")
        if poi is not None:
            low, high = test["p_improvement_ci95"]
            verdict += f", P({label(t)} > {label(BASELINE)}) = {poi:.2f} [{low:.2f}, {high:.2f}]"
        said.append(f"{label(t)} {verdict}")
    rule = RULE_WORDS.get(st.get("baseline_selection", "paper"), st.get("baseline_selection"))
    return (f"Against the baseline {label(BASELINE)} under {rule}, Wilcoxon signed-rank over networks × seeds "
            f"(Holm) and the probability of improvement with its 95 % bootstrap interval: {'; '.join(said)}.")


def collapsed_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """Finished runs whose test accuracy is below COLLAPSE_FRACTION × the median test accuracy of their network's
    runs (a diverged or dead network, not a weak one). Columns: network, regulariser, weight, seed, test_accuracy."""
    out = frame[collapsed(frame)]
    return out[["network", "regulariser", "weight", "seed", "test_accuracy"]].reset_index(drop=True)


def warning_sentences(st: dict, det: dict, frame: pd.DataFrame, anchors: dict) -> list[str]:
    """What undermines one analysis: networks left out, selected cells with low activity, a negligible one or one
    killing neurons (`model.analysis.activity_table`), collapsed runs."""
    out = []
    dropped = det.get("dropped_networks") or {}
    if dropped:
        named = [f"{net} (lacks {', '.join(label(t) for t in ts)})" for net, ts in
                 sorted(dropped.items(), key=lambda kv: natural_key(kv[0]))]
        out.append(f"Missing cells: {len(dropped)} network{'s' if len(dropped) > 1 else ''} left out of the test, "
                   f"{_names(named)} ({_link('runs', anchors.get('runs'))}).")
    nets = set(st["selected"])
    low = activity_table.flagged_cells(frame[frame["network"].isin(nets)], st["selected"])
    if low:
        named = [f"{label(treatment)} on {network} ({share:.0%})" for network, treatment, _, share in low]
        where = (_link("activity", anchors["activity"]) if anchors.get("activity")
                 else f"column `{activity_table.COLUMN}` of the accuracies")
        out.append(f"The regulariser acted in fewer than half of its steps in {len(low)} selected "
                   f"cell{'s' if len(low) > 1 else ''}: {_names(named)}; those rows compare the baseline with itself "
                   f"({where}).")
    weak = activity_table.negligible_cells(frame[frame["network"].isin(nets)], st["selected"])
    if weak:
        named = [f"{label(treatment)} on {network} (median {ratio:.2g})" for network, treatment, _, ratio in weak]
        out.append(f"The regulariser's gradient was under 1 % of the CE gradient on most steps in {len(weak)} selected "
                   f"cell{'s' if len(weak) > 1 else ''}: {_names(named)}; negligible, in effect the baseline "
                   f"({_link('activity', anchors.get('activity'))}).")
    killing = activity_table.killing_cells(frame[frame["network"].isin(nets)], st["selected"])
    if killing:
        named = [f"{label(c[1])} on {c[0]} ({c[3]:.1f} constant neurons per batch against {c[4]:.1f}, {c[5]})"
                 for c in killing]
        plural = "s" if len(killing) > 1 else ""
        out.append(f"The regulariser is killing neurons in {len(killing)} selected cell{plural}: {_names(named)} "
                   f"({_link('activity', anchors.get('activity'))}).")
    collapsed = collapsed_runs(frame[frame["network"].isin(nets)])
    if not collapsed.empty:
        picked = [r for r in collapsed.itertuples() if (sel := st["selected"].get(r.network, {}).get(r.regulariser))
                  and sel["weight"] is not None and np.isclose(sel["weight"], r.weight)]
        named = [f"{label(r.regulariser)} ω = {r.weight:g} on {r.network} ({r.test_accuracy:.2f})"
                 for r in collapsed.itertuples()]
        one = len(collapsed) == 1
        where = (("selected, so it is in the ranks" if one else f"{len(picked)} of them selected, so in the ranks")
                 if picked else "not selected, so it only distorts the plots" if one
                 else "none selected, so they only distort the plots")
        out.append(f"{len(collapsed)} run{'s' if len(collapsed) > 1 else ''} collapsed (test accuracy below "
                   f"{COLLAPSE_FRACTION:g} × the median of its network's runs): {_names(named)}; {where} "
                   f"({_link('accuracy against weight', anchors.get('accuracy_vs_weight'))}).")
    return out


def analysis_summary(name: str, st: dict, det: dict, frame: pd.DataFrame, anchors: dict) -> str:
    """One paragraph (the linked analysis name, the test, the pairs, the power), then its warnings as a list."""
    sentences = [test_sentence(st), pairs_sentence(st), power_sentence(st), paired_sentence(st)]
    text = f"**{_link(name, anchors.get('analysis:' + name))}.** " + " ".join(s for s in sentences if s)
    warnings = warning_sentences(st, det, frame, anchors)
    return text + "".join(f"\n\n- ⚠ {w}" if i == 0 else f"\n- ⚠ {w}" for i, w in enumerate(warnings))


def summary_markdown(analyses: list[tuple[str, dict, dict]], frame: pd.DataFrame, n_incomplete: int,
                     anchors: dict) -> str:
    """The summary's body: one paragraph per analysis (blocks, then `combined`), then the runs that did not finish.

    analyses: (name, statistics.json, details.json); anchors: `analysis:<name>`, `runs`, `activity`,
    `accuracy_vs_weight` -> heading anchors (a missing key gives plain text)."""
    paragraphs = [analysis_summary(name, st, det, frame, anchors) for name, st, det in analyses]
    if n_incomplete:
        paragraphs.append(f"**{n_incomplete} run{'s' if n_incomplete > 1 else ''} did not finish** and "
                          f"{'are' if n_incomplete > 1 else 'is'} left out ({_link('runs', anchors.get('runs'))}).")
    return "\n\n".join(paragraphs) + "\n"
