"""A verdict that is right at any size: Friedman's exact p against brute-force
enumeration and the closed forms of identical rankings; a hand-made CSV of two identical rankings does not reject;
one network gives statistics and a report (both commands run as a user runs them); the expected best of n against a
hand computation and allentune's `samplemax`; the probability of improvement against a hand count and scipy's
Mann-Whitney U; the training-curve figure shows identical curves and a never-applied term."""
import itertools
import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats as ss
from matplotlib.legend import Legend

from model.analysis import expected_max, friedman_exact, improvement, summary
from model.analysis import statistics as stats
from model.analysis.figures import plotting, training_curves

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------ exact Friedman

@pytest.mark.parametrize("n, k, p", [(2, 3, Fraction(1, 6)), (2, 2, Fraction(1, 2)), (3, 2, Fraction(1, 4)),
                                     (4, 2, Fraction(1, 8)), (3, 3, Fraction(1, 36))])
def test_identical_rankings_have_the_exact_p_of_their_size(n, k, p):
    """Every network ranks alike: k! of the (k!)^n equally likely outcomes reach the maximum, p = (k!)^(1−n)."""
    matrix = np.tile(np.linspace(0.95, 0.90, k), (n, 1))
    exact = friedman_exact.exact_p(matrix)
    assert exact.method == "enumeration" and exact.p == pytest.approx(float(p), abs=1e-15)
    assert friedman_exact.min_p(n, k) == pytest.approx(float(p), abs=1e-15)


def _brute_force(matrix: np.ndarray) -> float:
    """P(S ≥ S_obs) over every one of the (k!)^n orderings of the rows of average ranks (ties kept in the row)."""
    ranks = friedman_exact.rank_rows(matrix)
    observed = friedman_exact.statistic(ranks)
    hits = total = 0
    for rows in itertools.product(*[list(itertools.permutations(r)) for r in ranks]):
        total += 1
        hits += friedman_exact.statistic(np.array(rows)) >= observed - 1e-9
    return hits / total


@pytest.mark.parametrize("matrix", [
    [[0.9, 0.8, 0.7], [0.7, 0.9, 0.8], [0.9, 0.7, 0.8]],
    [[0.9, 0.9, 0.7], [0.9, 0.8, 0.8], [0.6, 0.8, 0.7]],  # ties: average ranks, the same in statistic and test
    [[0.5, 0.5, 0.5, 0.4], [0.9, 0.8, 0.7, 0.6], [0.6, 0.7, 0.8, 0.9]],
])
def test_enumeration_equals_brute_force_with_and_without_ties(matrix):
    matrix = np.array(matrix)
    assert friedman_exact.exact_p(matrix).p == pytest.approx(_brute_force(matrix), abs=1e-12)
    # the statistic the test orders by is Friedman's χ² (an increasing function of S at fixed n, k)
    n, k = matrix.shape
    chi2 = stats.friedman(stats.average_ranks(pd.DataFrame(matrix)).to_numpy(), n).chi2
    s = friedman_exact.statistic(friedman_exact.rank_rows(matrix))
    assert chi2 == pytest.approx(12 * s / (n * k * (k + 1)) - 3 * n * (k + 1))


def test_monte_carlo_is_seeded_never_zero_and_near_the_exact_p(monkeypatch):
    matrix = np.array([[0.9, 0.8, 0.7, 0.6]] * 3 + [[0.6, 0.7, 0.9, 0.8]])
    exact = friedman_exact.exact_p(matrix)
    monkeypatch.setattr(friedman_exact, "MAX_WORK", 0)  # force the Monte-Carlo branch
    a, b = friedman_exact.exact_p(matrix, seed=3, draws=4000), friedman_exact.exact_p(matrix, seed=3, draws=4000)
    assert a == b and a.method == "monte carlo" and a.draws == 4000 and a.seed == 3
    assert a.p == pytest.approx(exact.p, abs=0.01)
    identical = friedman_exact.exact_p(np.tile([0.9, 0.8, 0.7, 0.6], (6, 1)), draws=1000)
    assert identical.p == pytest.approx(1 / 1001)  # no draw reaches the maximum: (1 + 0) / (1 + draws), not 0


def _tidy(rows):
    return pd.DataFrame(rows, columns=["block", "network", "regulariser", "weight", "seed", "val_accuracy",
                                       "test_accuracy"])


def _run(script, *args):
    return subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT)


def test_identical_rankings_on_two_networks_do_not_reject(tmp_path):
    """The issue's case: T1 0.9497 vs 0.9495 ranked alike on 2 networks × 3 treatments: F was ∞ with p = 0 and the
    summary said "rejects"; the exact p is 1/6 and the summary does not reject."""
    rows = [("digits", f"digits/{i}", t, 0.0 if t == "none" else 0.01, 0, 0.95, acc)
            for i in (0, 1) for t, acc in (("t1", 0.9497), ("t2", 0.9496), ("none", 0.9495))]
    _tidy(rows).to_csv(tmp_path / "acc.csv", index=False)
    done = _run("extract_statistics.py", tmp_path / "acc.csv", "--out", tmp_path / "s")
    assert done.returncode == 0, done.stderr
    st = json.loads((tmp_path / "s/combined/statistics.json").read_text())
    fr = st["friedman"]
    assert fr["exact_p"] == pytest.approx(1 / 6) and fr["exact_method"] == "enumeration"
    assert fr["iman_davenport_f"] is None and fr["iman_davenport_p"] is None  # never ∞, never p = 0
    assert fr["chi2"] == pytest.approx(4.0) and fr["chi2_p"] == pytest.approx(np.exp(-2))  # the approximation
    assert not summary.significant(st)
    text = summary.test_sentence(st)
    assert "Friedman's exact test does not reject" in text and "exact p = 0.17, by enumeration" in text
    assert "smallest possible p is 0.17, above α: it cannot reject whatever the data" in text
    details = json.loads((tmp_path / "s/combined/details.json").read_text())
    assert details["groups"] == [["t1", "t2", "none"]]  # one group: the verdict follows the exact p


def test_one_network_with_seeds_gives_statistics_and_a_report(tmp_path):
    """One network × 3 treatments × 6 seeds (the common first experiment): both commands succeed; no ranks; the
    treatments are compared over seeds, paired by seed."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(6):
        rows.append(("digits", "digits/0", "none", 0.0, seed, 0.90 + 0.01 * rng.random(), 0.90 + 0.01 * seed))
        for w in (0.01, 0.1):
            rows.append(("digits", "digits/0", "t1", w, seed, 0.8 + w, 0.92 + 0.01 * seed + w / 10))
            rows.append(("digits", "digits/0", "l2", w, seed, 0.90 - w, 0.90 + 0.01 * seed - 0.001))
    _tidy(rows).to_csv(tmp_path / "acc.csv", index=False)
    done = _run("extract_statistics.py", tmp_path / "acc.csv", "--out", tmp_path / "s")
    assert done.returncode == 0, done.stderr
    st = json.loads((tmp_path / "s/combined/statistics.json").read_text())
    assert st["n_networks"] == 1 and st["average_ranks"] is None and st["friedman"] is None
    t1, l2 = st["paired_tests"]["t1"], st["paired_tests"]["l2"]
    d = [(0.92 + 0.01 * seed + 0.01) - (0.90 + 0.01 * seed) for seed in range(6)]  # t1 at ω = 0.1, by seed
    assert t1["n_pairs"] == 6 and t1["p"] == pytest.approx(ss.wilcoxon(d).pvalue)
    assert t1["median_difference"] == pytest.approx(0.03)
    assert t1["min_attainable_p"] == pytest.approx(2 / 2 ** 6) and t1["p_improvement"] > 0.5
    assert l2["p_improvement"] < 0.5
    assert not (tmp_path / "s/combined/cd_diagram.png").exists()
    assert (tmp_path / "s/combined/expected_best.csv").exists()
    done = _run("scripts/make_report.py", "--accuracies", tmp_path / "acc.csv", "--statistics", tmp_path / "s",
                "--out", tmp_path / "r")
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "r/report.md").read_text()
    assert "One network (digits/0), 3 treatments, 6 seeds per cell" in text
    assert "T1 p_holm = " in text and "P(T1 > ∅) = " in text
    assert "1 network × 3 treatments" in text and "![Expected best of n, combined]" in text


# ------------------------------------------------------------------------------------------ expected best of n

def _samplemax(validation, test):
    """allentune's samplemax (Dodge et al. 2019), for test accuracies ordered by validation: for n = 1..N,
    Σ_i ((i/N)^n − ((i−1)/N)^n) · test_(i)."""
    order = np.argsort(validation)
    values = [test[i] for i in order]
    big_n = len(values)
    out = []
    for n in range(1, big_n + 1):
        pdfs = [(i / big_n) ** n - ((i - 1) / big_n) ** n for i in range(1, big_n + 1)]
        out.append(sum(v * p for v, p in zip(values, pdfs)))
    return out


def test_expected_best_equals_the_hand_computation_and_samplemax():
    val, test = [0.3, 0.1, 0.2], [0.9, 0.5, 0.7]
    # by hand, draws sorted by validation: tests 0.5, 0.7, 0.9
    # n = 1: the mean, 0.7; n = 2: P(max = i-th) = 1/9, 3/9, 5/9 → (0.5 + 2.1 + 4.5)/9 = 7.1/9;
    # n = 3: 1/27, 7/27, 19/27 → (0.5 + 4.9 + 17.1)/27 = 22.5/27
    by_hand = [0.7, 7.1 / 9, 22.5 / 27]
    ours = [expected_max.expected_best(val, test, n)[1] for n in (1, 2, 3)]
    assert ours == pytest.approx(by_hand, abs=1e-12)
    assert ours == pytest.approx(_samplemax(val, test), abs=1e-12)
    assert expected_max.expected_best(val, test, 2)[0] == pytest.approx((0.1 + 0.6 + 1.5) / 9)  # validation too


def test_validation_ties_average_the_tied_tests_whatever_their_order():
    # tied best validation 0.2: P(the max is one of them) = 1 − (1/3)^2 = 8/9, their test 0.6 and 0.8 averaged
    one = expected_max.expected_best([0.1, 0.2, 0.2], [0.5, 0.6, 0.8], 2)[1]
    other = expected_max.expected_best([0.2, 0.2, 0.1], [0.8, 0.6, 0.5], 2)[1]
    assert one == other == pytest.approx((0.5 + 8 * 0.7) / 9)


def test_curves_draw_weights_for_a_regulariser_and_seeds_for_the_baseline():
    rows = [("d", "d/0", "none", 0.0, s, v, t) for s, (v, t) in enumerate([(0.1, 0.5), (0.3, 0.9), (0.2, 0.7)])]
    rows += [("d", "d/0", "t1", w, s, v, t) for w, v, t in ((0.01, 0.2, 0.6), (0.1, 0.4, 0.8)) for s in (0, 1)]
    rows.append(("d", "d/0", "t1", 0.0, 0, 0.99, 0.99))  # weight 0 of a regulariser is not a draw
    curves = expected_max.curves(_tidy(rows)).set_index(["treatment", "n"])
    assert curves.loc[("none", 2), "expected_test"] == pytest.approx(7.1 / 9)
    assert curves.loc[("t1", 2), "n_draws"] == 2
    assert curves.loc[("t1", 2), "expected_test"] == pytest.approx(0.25 * 0.6 + 0.75 * 0.8)
    assert expected_max.common_budget(curves.reset_index()).to_dict() == {"d/0": 2}


# ------------------------------------------------------------------------------------------ probability of improvement

def test_probability_of_improvement_by_hand_and_against_mann_whitney():
    x, y = [[0.8, 0.6], [0.5]], [[0.7, 0.6], [0.9]]
    # network 1: 0.8 > 0.7, 0.8 > 0.6, 0.6 < 0.7, 0.6 = 0.6 → (1 + 1 + 0 + ½)/4 = 0.625; network 2: 0
    assert improvement.probability(x, y) == pytest.approx((0.625 + 0.0) / 2)
    u = ss.mannwhitneyu(x[0], y[0]).statistic / 4
    assert improvement.pairwise(np.array(x[0]), np.array(y[0])) == pytest.approx(u)
    low, high = improvement.interval(x, y, seed=1)
    assert (low, high) == improvement.interval(x, y, seed=1) and 0.0 <= low <= 0.3125 <= high <= 0.5


def test_paired_table_says_cannot_reject_instead_of_a_p(tmp_path):
    rows = [("digits", f"digits/{i}", t, 0.0 if t == "none" else 0.1, 0, 0.9, 0.9 + (0.01 if t == "t1" else 0))
            for i in range(3) for t in ("none", "t1")]
    analysis = stats.analyse(_tidy(rows), "digits")
    row = analysis.paired.set_index("treatment").loc["t1"]
    assert row["n_pairs"] == 3 and row["min_attainable_p"] == pytest.approx(0.25)
    from model.analysis import tables

    shown = tables.paired_shown(analysis.paired.set_index("treatment"), 0.05)
    assert shown.loc["t1", "p"] == "cannot reject (smallest p 0.25 > α)"
    assert shown.loc["t1", "P(treatment > ∅) [95 %]"] == "1.00 [1.00, 1.00]"


# ------------------------------------------------------------------------------------------ figures

def test_training_curves_show_identical_curves_and_a_never_applied_term(tmp_path, monkeypatch):
    saved = []
    monkeypatch.setattr(plotting, "save_png", lambda fig, path, *a, **k: saved.append(fig) or Path(path))
    base = pd.DataFrame({"epoch": [1, 2, 3], "accuracy": [0.5, 0.7, 0.8], "val_accuracy": [0.5, 0.6, 0.7],
                         "ce": [1.0, 0.7, 0.6]})
    inert = base.assign(reg=[0.3, 0.3, 0.3])  # T1 never acted: the same curves as ∅
    acted = base.assign(accuracy=[0.5, 0.75, 0.85], reg=[0.3, 0.2, 0.1])
    training_curves.plot({"none": (base, None), "t1": (inert, None), "t2": (acted, None)}, "digits/0", tmp_path,
                         applied={"t1": 0.0, "t2": 1.0})
    fig = saved[0]
    top = [ax for ax in fig.axes if ax.get_title() == "train accuracy"][0]
    lines = [line for line in top.lines if str(line.get_gid()).startswith("treatment:")]
    assert lines[-1].get_gid() == "treatment:none" and lines[-1].get_linewidth() > lines[0].get_linewidth()
    legend = [t.get_text() for lg in fig.findobj(Legend) for t in lg.get_texts()]  # on the axes or the figure
    assert "T1 (identical to ∅)" in legend and "T2" in legend and "∅" in legend
    marks = [t for ax in fig.axes for t in ax.texts if str(t.get_gid()).startswith("never_applied:")]
    assert [t.get_gid() for t in marks] == ["never_applied:t1"]
    titles = [ax.get_title() for ax in fig.axes]
    assert "R of T1 (not applied)" in titles and "R of T2" in titles
