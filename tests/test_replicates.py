"""Is the gain more than selection? The matched rule (expected best of n at one n), t-intervals over seeds and paired
tests, on hand-made CSVs against hand computations and scipy; and one seed per cell still gives the statistics of
before (plus what came later: the exact Friedman p, the rule's name, the seed, the paired tests)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats as ss

from model.analysis import outputs, replicates
from model.analysis import statistics as stats

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"


def test_one_seed_per_cell_gives_exactly_the_statistics_of_before(tmp_path):
    """tests/data/one_seed_statistics.json was written by the code before seeds were replicates, on the same CSV."""
    before = json.loads((DATA / "one_seed_statistics.json").read_text())
    outputs.extract(DATA / "one_seed_accuracies.csv", tmp_path)
    for name, old in before.items():
        new = json.loads((tmp_path / name / "statistics.json").read_text())
        fr, old_fr = new.pop("friedman"), old.pop("friedman")
        assert {k: fr[k] for k in old_fr} == old_fr, name  # the approximations, exactly
        assert set(fr) - set(old_fr) == {"exact_p", "exact_method", "exact_draws", "exact_seed", "exact_min_p"}
        assert {k: new[k] for k in old} == old, name  # every number of before, exactly
        # the additions: the tests against the baseline, the rule's name (always written now) and the seed
        assert set(new) - set(old) == {"paired_tests", "baseline_selection", "seed"}
        assert new["baseline_selection"] == "paper"
        assert not (tmp_path / name / "matched_baseline").exists()  # one baseline seed: nothing to match


def seeded_frame():
    """2 networks; the baseline over 4 seeds; t1 at weights 0.01 and 0.1 over the same 4 seeds; l2 at one seed."""
    base = {"a": ([0.70, 0.80, 0.75, 0.60], [0.68, 0.79, 0.74, 0.61]),   # val, test per seed 0..3
            "b": ([0.50, 0.55, 0.55, 0.40], [0.52, 0.50, 0.58, 0.45])}
    t1 = {("a", 0.01): ([0.71, 0.72, 0.73, 0.74], [0.70, 0.71, 0.72, 0.73]),
          ("a", 0.1): ([0.76, 0.77, 0.78, 0.79], [0.75, 0.80, 0.77, 0.78]),
          ("b", 0.01): ([0.60, 0.60, 0.60, 0.60], [0.59, 0.58, 0.57, 0.56]),
          ("b", 0.1): ([0.50, 0.50, 0.50, 0.50], [0.50, 0.50, 0.50, 0.50])}
    rows = []
    for net, (val, test) in base.items():
        rows += [("none", net, 0.0, s, v, t) for s, (v, t) in enumerate(zip(val, test))]
        rows.append(("l2", net, 0.1, 0, 0.9 if net == "a" else 0.3, 0.85 if net == "a" else 0.35))
    for (net, w), (val, test) in t1.items():
        rows += [("t1", net, w, s, v, t) for s, (v, t) in enumerate(zip(val, test))]
    return pd.DataFrame([{"block": "digits", "network": f"digits/{n}", "regulariser": r, "weight": w, "seed": s,
                          "val_accuracy": v, "test_accuracy": t} for r, n, w, s, v, t in rows])


def cell(selected, network, treatment):
    return selected.set_index(["network", "treatment"]).loc[(network, treatment)]


def test_matched_rule_scores_every_treatment_at_one_budget():
    """`matched` used to give the baseline the best of its 4 seeds against t1's best of 2 weights; now every
    treatment is scored by its expected best of n draws at one n per network (here 1: l2 has one weight)."""
    frame = seeded_frame()
    paper, matched = stats.select(frame), stats.select(frame, baseline_rule="matched")
    a, b = cell(paper, "digits/a", "none"), cell(paper, "digits/b", "none")
    assert a["test_accuracy"] == pytest.approx(np.mean([0.68, 0.79, 0.74, 0.61])) and a["n_seeds"] == 4
    assert np.isnan(a["budget"]) and b["test_accuracy"] == pytest.approx(np.mean([0.52, 0.50, 0.58, 0.45]))
    for net in ("digits/a", "digits/b"):
        assert set(matched[matched["network"] == net]["budget"]) == {1}
    # n = 1: the expected best of one draw is the mean over draws (the baseline's seeds, t1's two weights)
    assert cell(matched, "digits/a", "none")["test_accuracy"] == pytest.approx(a["test_accuracy"])
    assert cell(matched, "digits/a", "t1")["test_accuracy"] == pytest.approx(
        np.mean([np.mean([0.70, 0.71, 0.72, 0.73]), np.mean([0.75, 0.80, 0.77, 0.78])]))
    assert cell(matched, "digits/a", "t1")["weight"] == 0.1  # the weight shown: the paper's rule's pick
    # without l2 the budget is 2 (t1 has 2 weights, the baseline 4 seeds): t1's expected best of 2 with replacement
    # is P(weight 0.1 drawn at least once) = 3/4 → its test mean, else weight 0.01's
    no_l2 = stats.select(frame[frame["regulariser"] != "l2"], baseline_rule="matched")
    t1 = cell(no_l2, "digits/a", "t1")
    assert t1["budget"] == 2 and t1["test_accuracy"] == pytest.approx(0.75 * 0.775 + 0.25 * 0.715)
    # the baseline's expected best of 2 of its 4 seeds, sorted by validation 0.60, 0.70, 0.75, 0.80:
    # P(max = i-th) = (i/4)^2 − ((i−1)/4)^2 = 1/16, 3/16, 5/16, 7/16 over tests 0.61, 0.68, 0.74, 0.79
    by_hand = (1 * 0.61 + 3 * 0.68 + 5 * 0.74 + 7 * 0.79) / 16
    assert cell(no_l2, "digits/a", "none")["test_accuracy"] == pytest.approx(by_hand)


def test_t_interval_of_a_cell_matches_scipy():
    selected = stats.select(seeded_frame())
    c = cell(selected, "digits/a", "t1")  # weight 0.1, test over 4 seeds
    x = np.array([0.75, 0.80, 0.77, 0.78])
    low, high = ss.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=ss.sem(x))
    assert (c["test_ci_low"], c["test_ci_high"]) == pytest.approx((low, high), rel=1e-12)
    half = 3.182446305284263 * x.std(ddof=1) / 2  # by hand: t_{0.975, 3} · s / √4
    assert c["test_ci_high"] - c["test_accuracy"] == pytest.approx(half, rel=1e-9)
    assert np.isnan(cell(selected, "digits/a", "l2")["test_ci_low"])  # one seed: no interval


def test_paired_tests_match_scipy_wilcoxon_and_holm_by_hand():
    frame = seeded_frame()
    paired = stats.paired_tests(frame, stats.select(frame)).set_index("treatment")
    # t1 against the paper's baseline: pairs per network and shared seed (weights 0.1 on a, 0.01 on b)
    d_t1 = np.array([0.75 - 0.68, 0.80 - 0.79, 0.77 - 0.74, 0.78 - 0.61, 0.59 - 0.52, 0.58 - 0.50, 0.57 - 0.58,
                     0.56 - 0.45])
    ref = ss.wilcoxon(d_t1)
    assert paired.loc["t1", "n_pairs"] == 8 and paired.loc["t1", "n_networks"] == 2
    assert paired.loc["t1", "p"] == pytest.approx(ref.pvalue) and paired.loc["t1", "statistic"] == ref.statistic
    assert paired.loc["t1", "median_difference"] == pytest.approx(np.median(d_t1))
    # l2 ran seed 0 only: pairs (network, seed 0)
    d_l2 = np.array([0.85 - 0.68, 0.35 - 0.52])
    assert paired.loc["l2", "n_pairs"] == 2 and paired.loc["l2", "p"] == pytest.approx(ss.wilcoxon(d_l2).pvalue)
    p = {t: paired.loc[t, "p"] for t in ("t1", "l2")}
    small, big = sorted(p, key=p.get)
    assert paired.loc[small, "p_holm"] == pytest.approx(min(1, 2 * p[small]))
    assert paired.loc[big, "p_holm"] == pytest.approx(max(min(1, 2 * p[small]), p[big]))
    # under the matched rule (expected best of n = 1 draws): one pair of cell scores per network
    selected = stats.select(frame, baseline_rule="matched")
    matched = stats.paired_tests(frame, selected).set_index("treatment")
    d = np.array([cell(selected, n, "t1")["test_accuracy"] - cell(selected, n, "none")["test_accuracy"]
                  for n in ("digits/a", "digits/b")])
    assert matched.loc["t1", "n_pairs"] == 2
    assert matched.loc["t1", "mean_difference"] == pytest.approx(d.mean())
    assert matched.loc["t1", "p"] == pytest.approx(ss.wilcoxon(d).pvalue)
    # 2 non-zero differences: the smallest two-sided p is 2/2^2 = 0.5, so the test cannot reject at α = 0.05
    assert matched.loc["t1", "min_attainable_p"] == 0.5 and not stats.can_reject(0.5, 0.05)
    assert paired.loc["t1", "min_attainable_p"] == 2 / 2 ** 8 and stats.can_reject(2 / 2 ** 8, 0.05)


def test_holm_by_hand():
    np.testing.assert_allclose(stats.holm(np.array([0.01, 0.04, 0.03, np.nan])), [0.03, 0.06, 0.06, np.nan])


def test_extract_writes_both_rules_and_the_report_section_shows_them(tmp_path):
    csv = tmp_path / "accuracies.csv"
    seeded_frame().to_csv(csv, index=False)
    cmd = [sys.executable, str(ROOT / "extract_statistics.py"), "--accuracies", str(csv), "--out", str(tmp_path / "s"),
           "--baseline", "matched"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    st = json.loads((tmp_path / "s/combined/statistics.json").read_text())
    assert st["baseline_selection"] == "matched" and st["selected"]["digits/a"]["none"]["budget"] == 1
    paper = json.loads((tmp_path / "s/combined/paper_baseline/statistics.json").read_text())
    assert paper["baseline_selection"] == "paper" and paper["selected"]["digits/a"]["none"]["n_seeds"] == 4
    ci = paper["selected"]["digits/a"]["t1"]["test_ci95"]
    assert ci == pytest.approx(list(ss.t.interval(0.95, 3, loc=0.775, scale=ss.sem([0.75, 0.80, 0.77, 0.78]))))
    assert paper["paired_tests"]["t1"]["n_pairs"] == 8 and st["paired_tests"]["t1"]["n_pairs"] == 2
    # intervals over seeds only under the paper's rule (a matched cell is an expectation, not a mean over seeds)
    assert (tmp_path / "s/combined/paired_tests.md").exists() and not (tmp_path / "s/combined/intervals.md").exists()
    assert (tmp_path / "s/combined/paper_baseline/intervals.md").exists()
    text = replicates.section(tmp_path / "s/combined")
    assert "Both baseline rules side by side" in text and "0.705 (best of 1)" in text
    assert "0.705 [" in text  # the paper rule's baseline of digits/a: the mean over 4 seeds with its interval
    bad = subprocess.run(cmd[:-1] + ["best"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "--baseline" in bad.stderr
