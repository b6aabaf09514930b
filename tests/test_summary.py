"""The report's summary sentences on hand-made statistics: not significant, significant (with and without a separated
pair), missing cells, low regulariser activity, collapsed runs, the power wording and the links."""
import pandas as pd
import pytest

from model.analysis import activity_table as activity
from model.analysis import summary
from model.analysis.statistics import critical_difference

TREATMENTS = ["none", "t1", "t2", "l1", "l2", "corr", "decov"]


def statistics(p_id: float, nemenyi: dict | None = None, n: int = 3, seeds: int = 1, weight: float = 0.01) -> dict:
    """A statistics.json object for n networks × the 7 treatments; ranks 1..7 in TREATMENTS order."""
    k = len(TREATMENTS)
    p = {a: {b: 1.0 if a == b else 0.9 for b in TREATMENTS} for a in TREATMENTS}
    for (a, b), v in (nemenyi or {}).items():
        p[a][b] = p[b][a] = v
    cell = lambda t: {"weight": 0.0 if t == "none" else weight, "val_accuracy": 0.9, "test_accuracy": 0.9,  # noqa: E731
                      "val_std": None, "test_std": None, "n_seeds": seeds}
    return {"n_networks": n, "treatments": TREATMENTS,
            "average_ranks": {t: float(i + 1) for i, t in enumerate(TREATMENTS)},
            "friedman": {"chi2": 5.1, "chi2_p": 0.53, "iman_davenport_f": 0.72, "iman_davenport_p": p_id},
            "nemenyi_p": p, "critical_difference": critical_difference(k, n, 0.05), "alpha": 0.05,
            "selected": {f"digits/{i}": {t: cell(t) for t in TREATMENTS} for i in range(n)}}


def accuracies(rows: list[tuple]) -> pd.DataFrame:
    """Accuracies frame from (network, regulariser, weight, seed, test_accuracy[, activity]) tuples."""
    cols = ["network", "regulariser", "weight", "seed", "test_accuracy", "reg_applied_fraction"]
    frame = pd.DataFrame([r + (None,) * (6 - len(r)) for r in rows], columns=cols)
    frame["block"] = "digits"
    frame["val_accuracy"] = frame["test_accuracy"]
    return frame


HEALTHY = accuracies([(f"digits/{i}", t, 0.0 if t == "none" else 0.01, 0, 0.95) for i in range(3) for t in TREATMENTS])
ANCHORS = {"analysis:digits": "digits", "runs": "runs", "accuracy_vs_weight": "accuracy-against-weight"}


def test_not_significant_says_so_and_that_three_networks_have_almost_no_power():
    st = statistics(p_id=0.66)
    text = summary.analysis_summary("digits", st, {}, HEALTHY, ANCHORS)
    assert text.startswith("**[digits](#digits).** No significant difference among the 7 treatments: the "
                           "Iman–Davenport test does not reject equal mean ranks at α = 0.05 (Iman–Davenport F = "
                           "0.72, p = 0.66; Friedman χ² = 5.1, p = 0.53).")
    assert "So no treatment can be called better than another here; best mean rank ∅ (1.00), worst DeCov (7.00)." \
        in text
    # 3 networks × 7 treatments: CD 5.20 of the 6-rank range
    assert "Power: 3 networks × 7 treatments give a critical difference of 5.20 mean ranks, 87% of the rank range " \
           "1–7: only a treatment nearly always first against one nearly always last could be separated, so the " \
           "test has almost no power; each cell is 1 seed (no spread over seeds)." in text
    assert "Missing" not in text and "collapsed" not in text and "acted" not in text


def test_significant_names_the_separated_pairs_best_first():
    st = statistics(p_id=0.001, nemenyi={("none", "decov"): 0.003, ("t1", "l2"): 0.04}, n=30, seeds=3)
    text = summary.analysis_summary("digits", st, {}, HEALTHY, ANCHORS)
    assert "The treatments do not all rank alike: the Iman–Davenport test rejects equal mean ranks of the 7 " \
           "treatments at α = 0.05 (Iman–Davenport F = 0.72, p = 0.001;" in text
    assert "Nemenyi separates 2 pairs: ∅ over DeCov (p = 0.003) and T1 over ℓ2 (p = 0.04);" in text
    cd = critical_difference(7, 30, 0.05)
    assert f"critical difference of {cd:.2f} mean ranks, {cd / 6:.0%} of the rank range 1–7; cells hold 3 seeds." \
        in text


def test_significant_omnibus_without_a_separated_pair():
    text = summary.pairs_sentence(statistics(p_id=0.02))
    assert text.startswith("But no pair differs by the critical difference (Nemenyi), so the data do not say which")


def test_no_power_at_all_when_the_cd_exceeds_the_rank_range():
    assert "wider than the whole rank range, so no pair can ever be separated: Nemenyi cannot reject at 2 " \
           "networks, the test has no power" in \
        summary.power_sentence(statistics(p_id=0.5, n=2))


def test_missing_cells_are_named_with_a_link_to_the_runs():
    det = {"dropped_networks": {"digits/3": ["t1", "corr"]}}
    text = summary.analysis_summary("digits", statistics(p_id=0.66), det, HEALTHY, ANCHORS)
    assert "Missing cells: 1 network left out of the test, digits/3 (lacks T1, C) ([runs](#runs))." in text
    body = summary.summary_markdown([("digits", statistics(p_id=0.66), det)], HEALTHY, 4, ANCHORS)
    assert body.endswith("**4 runs did not finish** and are left out ([runs](#runs)).\n")


def test_low_activity_of_selected_cells_is_flagged_and_others_are_not():
    rows = [(f"digits/{i}", t, 0.0 if t == "none" else 0.01, 0, 0.95, None if t == "none" else 1.0)
            for i in range(3) for t in TREATMENTS]
    frame = accuracies(rows)
    hit = lambda net, t, w: (frame["network"] == net) & (frame["regulariser"] == t) & (frame["weight"] == w)  # noqa: E731
    frame.loc[hit("digits/0", "t1", 0.01), "reg_applied_fraction"] = 0.0
    frame.loc[hit("digits/2", "corr", 0.01), "reg_applied_fraction"] = 0.49
    frame.loc[hit("digits/1", "t2", 0.01), "reg_applied_fraction"] = 0.5  # not below one half
    # an unselected weight with no activity is not the summary's business
    frame = pd.concat([frame, accuracies([("digits/1", "t1", 1.0, 0, 0.94, 0.0)])], ignore_index=True)
    st = statistics(p_id=0.66)
    low = activity.flagged_cells(frame, st["selected"])
    assert sorted((net, t) for net, t, _, _ in low) == [("digits/0", "t1"), ("digits/2", "corr")]
    text = summary.analysis_summary("digits", st, {}, frame, {**ANCHORS, "activity": "did-the-regulariser-act"})
    assert "The regulariser acted in fewer than half of its steps in 2 selected cells: T1 on digits/0 (0%) and C on " \
           "digits/2 (49%); those rows compare the baseline with itself ([activity](#did-the-regulariser-act))." in text
    # without the activity section the column is named instead of a link
    assert "(column `reg_applied_fraction` of the accuracies)" in summary.analysis_summary("digits", st, {}, frame,
                                                                                            ANCHORS)


def test_without_an_activity_column_nothing_is_flagged():
    frame = HEALTHY.drop(columns="reg_applied_fraction")
    assert activity.COLUMN not in frame
    assert activity.cell_activity(frame).empty


def test_collapsed_runs_are_named_and_whether_they_enter_the_ranks():
    frame = pd.concat([HEALTHY, accuracies([("digits/0", "l1", 1.0, 0, 0.15)])], ignore_index=True)
    st = statistics(p_id=0.66)
    text = summary.analysis_summary("digits", st, {}, frame, ANCHORS)
    assert ("1 run collapsed (test accuracy below 0.5 × the median of its network's runs): ℓ1 ω = 1 on digits/0 "
            "(0.15); not selected, so it only distorts the plots ([accuracy against weight]"
            "(#accuracy-against-weight)).") in text
    st["selected"]["digits/0"]["l1"]["weight"] = 1.0
    assert "(0.15); selected, so it is in the ranks" in summary.analysis_summary("digits", st, {}, frame, ANCHORS)


@pytest.mark.parametrize("seeds, words", [({1}, "1 seed per point, so no error bars"),
                                          ({3}, "mean over 3 seeds (bars: standard deviation over seeds)"),
                                          ({2, 5}, "mean over 2–5 seeds")])
def test_seed_wording_of_the_figures(seeds, words):
    from model.analysis.report import _seed_words

    assert _seed_words(seeds).startswith(words)


def test_seed_wording_of_the_accuracy_table():
    from model.analysis.tables import selected_accuracy_table

    one = statistics(p_id=0.5)["selected"]
    table, bold, words = selected_accuracy_table(one)
    assert words == "1 seed per cell, so no spread" and table.loc["T1", "digits/0"] == "0.900"
    three = statistics(p_id=0.5, seeds=3)["selected"]
    three["digits/0"]["t1"]["test_std"] = 0.0123
    table, bold, words = selected_accuracy_table(three)
    assert words == "mean ± standard deviation over 3 seeds" and table.loc["T1", "digits/0"] == "0.900 ± 0.012"
    assert bold.to_numpy().all()  # every cell ties at 0.900
