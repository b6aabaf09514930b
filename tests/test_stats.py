"""Statistics against independent computations: scipy's Friedman, the studentised range, Demšar (2006)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats as ss

from model.analysis import paper, statistics
from model.errors import PipelineError

ROOT = Path(__file__).resolve().parents[1]

# Demšar (2006) Table 6: AUC of C4.5 variants on 14 data sets (columns C4.5, C4.5+m, C4.5+cf, C4.5+m+cf).
DEMSAR_AUC = np.array([
    [0.763, 0.768, 0.771, 0.798], [0.599, 0.591, 0.590, 0.569], [0.954, 0.971, 0.968, 0.967],
    [0.628, 0.661, 0.654, 0.657], [0.882, 0.888, 0.886, 0.898], [0.936, 0.931, 0.916, 0.931],
    [0.661, 0.668, 0.609, 0.685], [0.583, 0.583, 0.563, 0.625], [0.775, 0.838, 0.866, 0.875],
    [1.000, 1.000, 1.000, 1.000], [0.940, 0.962, 0.965, 0.962], [0.619, 0.666, 0.614, 0.669],
    [0.972, 0.981, 0.975, 0.975], [0.957, 0.978, 0.946, 0.970]])
DEMSAR_NAMES = ["C4.5", "C4.5+m", "C4.5+cf", "C4.5+m+cf"]


def demsar_matrix():
    return pd.DataFrame(DEMSAR_AUC, index=[f"d{i}" for i in range(14)], columns=DEMSAR_NAMES)


def tidy(matrix: pd.DataFrame, block="digits") -> pd.DataFrame:
    """A tidy accuracies frame with one run per cell (weight 0.1, or 0 for the baseline), val = test."""
    rows = [{"block": block, "network": net, "regulariser": t, "weight": 0.0 if t == "none" else 0.1, "seed": 0,
             "val_accuracy": matrix.loc[net, t], "test_accuracy": matrix.loc[net, t]}
            for net in matrix.index for t in matrix.columns]
    return pd.DataFrame(rows)


def test_friedman_matches_scipy_on_tie_free_data():
    rng = np.random.default_rng(0)
    for n, k in [(11, 6), (5, 3), (20, 8)]:
        x = pd.DataFrame(rng.random((n, k)))
        mine = statistics.friedman(statistics.average_ranks(x).to_numpy(), n)
        ref = ss.friedmanchisquare(*x.to_numpy().T)
        assert mine.chi2 == pytest.approx(ref.statistic, rel=1e-12)
        assert mine.chi2_p == pytest.approx(ref.pvalue, rel=1e-9)
        # Iman–Davenport from its definition, independently of the module's algebra
        f = (n - 1) * ref.statistic / (n * (k - 1) - ref.statistic)
        assert mine.iman_davenport_f == pytest.approx(f)
        assert mine.iman_davenport_p == pytest.approx(ss.f.sf(f, k - 1, (k - 1) * (n - 1)))


def test_friedman_ignores_ties_unlike_scipy():
    x = pd.DataFrame([[0.9, 0.9, 0.8], [0.7, 0.6, 0.6], [0.5, 0.4, 0.3], [0.2, 0.2, 0.2]])
    mine = statistics.friedman(statistics.average_ranks(x).to_numpy(), 4)
    r = statistics.average_ranks(x).to_numpy()
    assert mine.chi2 == pytest.approx(12 * 4 / (3 * 4) * np.sum((r - 2) ** 2))
    assert mine.chi2 < ss.friedmanchisquare(*x.to_numpy().T).statistic  # scipy divides by a tie correction < 1


def test_demsar_worked_example_from_printed_ranks():
    # Demšar §3.2.4: mean ranks 3.143, 2.000, 2.893, 1.964 on N = 14 give χ²_F = 9.28 and F_F = 3.69.
    fr = statistics.friedman([3.143, 2.000, 2.893, 1.964], 14)
    assert fr.chi2 == pytest.approx(9.28, abs=0.01)
    assert fr.iman_davenport_f == pytest.approx(3.69, abs=0.01)
    assert ss.f.ppf(0.95, 3, 39) == pytest.approx(2.85, abs=0.01)  # the critical value Demšar compares with
    assert fr.iman_davenport_p < 0.05


def test_demsar_table_ranks_and_critical_differences():
    x = demsar_matrix()
    ranks = statistics.average_ranks(x)
    # From the printed AUCs (the paper's printed 2.893/1.964 imply a tie its 3-decimal table does not show).
    assert ranks.to_numpy() == pytest.approx([3.143, 2.000, 2.929, 1.929], abs=1e-3)
    assert statistics.critical_difference(4, 14, 0.05) == pytest.approx(1.25, abs=5e-3)
    assert statistics.critical_difference(4, 14, 0.10) == pytest.approx(1.12, abs=5e-3)


def test_demsar_groups_at_alpha_010():
    # Demšar Fig. 1(a): at α = 0.10 C4.5 is worse than C4.5+m and C4.5+m+cf; C4.5+cf joins either side.
    x = demsar_matrix()
    ranks, p = statistics.average_ranks(x), statistics.nemenyi_p(x)
    significant = {(a, b) for a in DEMSAR_NAMES for b in DEMSAR_NAMES if a < b and p.loc[a, b] < 0.10}
    assert significant == {("C4.5", "C4.5+m"), ("C4.5", "C4.5+m+cf")}
    fr = statistics.friedman(ranks.to_numpy(), 14)
    assert statistics.groups(ranks, p, fr.iman_davenport_p, 0.10) == [["C4.5+m+cf", "C4.5+m", "C4.5+cf"],
                                                                 ["C4.5+cf", "C4.5"]]
    # at α = 0.05 "even the difference between the best and the worst is smaller than CD"
    assert (p.to_numpy() >= 0.05).all()
    assert statistics.groups(ranks, p, fr.iman_davenport_p, 0.05) == [["C4.5+m+cf", "C4.5+m", "C4.5+cf", "C4.5"]]


@pytest.mark.parametrize("alpha, row", [(0.05, [1.960, 2.344, 2.569, 2.728, 2.850, 2.948, 3.031, 3.102, 3.164]),
                                        (0.10, [1.645, 2.052, 2.291, 2.460, 2.589, 2.693, 2.780, 2.855, 2.920])])
def test_q_alpha_matches_demsar_table_5(alpha, row):
    assert [statistics.q_alpha(k, alpha) for k in range(2, 11)] == pytest.approx(row, abs=1.5e-3)


@pytest.mark.parametrize("n, cd", [(5, 3.372), (20, 1.686), (50, 1.066)])
def test_critical_difference_vectors(n, cd):
    assert statistics.critical_difference(6, n, 0.05) == pytest.approx(cd, abs=1e-3)


def test_nemenyi_matches_studentized_range():
    rng = np.random.default_rng(1)
    x = pd.DataFrame(rng.random((11, 6)), columns=list("abcdef"))
    p = statistics.nemenyi_p(x)
    n, k = x.shape
    r = statistics.average_ranks(x)
    for a in x.columns:
        for b in x.columns:
            q = abs(r[a] - r[b]) / np.sqrt(k * (k + 1) / (6 * n))
            expected = 1.0 if a == b else ss.studentized_range.sf(q * np.sqrt(2), k, np.inf)
            assert p.loc[a, b] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    # the pair exactly at the critical difference has p = α
    cd = statistics.critical_difference(k, n, 0.05)
    assert ss.studentized_range.sf(cd / np.sqrt(k * (k + 1) / (6 * n)) * np.sqrt(2), k, np.inf) == \
        pytest.approx(0.05, rel=1e-6)
    capped = statistics.nemenyi_p(x, capped=True)
    off = capped.to_numpy()[~np.eye(k, dtype=bool)]
    assert off.max() <= 0.9 and off.min() >= 0.001
    assert np.all(np.diag(capped.to_numpy()) == 1.0)  # the diagonal is not capped (Q-nemenyi-capped in docs/quirks.md)


def test_rank_direction_and_ties():
    x = pd.DataFrame([[0.9, 0.8, 0.8], [0.95, 0.5, 0.7]], columns=["good", "bad", "mid"])
    assert statistics.average_ranks(x).to_dict() == {"good": 1.0, "bad": 2.75, "mid": 2.25}


def test_perfect_ranking_gives_undefined_f_and_the_exact_p():
    """Identical rankings made F = ∞, p = 0; F is now undefined (null) and the exact p decides."""
    x = pd.DataFrame([[0.9, 0.8, 0.7]] * 3, columns=["t1", "t2", "none"], index=["a", "b", "c"])
    analysis = statistics.analyse(tidy(x), "digits")
    assert np.isnan(analysis.friedman.iman_davenport_f) and np.isnan(analysis.friedman.iman_davenport_p)
    assert analysis.friedman.exact_p == pytest.approx(1 / 36) and analysis.friedman.exact_method == "enumeration"
    fr = analysis.to_json()["friedman"]
    assert fr["iman_davenport_f"] is None and fr["iman_davenport_p"] is None and fr["exact_min_p"] == 1 / 36


def test_selection_rule():
    rows = []
    # t1: weights 0.01 and 0.1 tie on mean val -> the smallest; weight 0 is never a candidate
    for seed, (v1, v2) in enumerate([(0.8, 0.9), (0.9, 0.8)]):
        rows += [("n0", "t1", 0.0, seed, 0.99, 0.99), ("n0", "t1", 0.01, seed, v1, 0.5 + seed / 10),
                 ("n0", "t1", 0.1, seed, v2, 0.4)]
    rows += [("n0", "none", 0.0, 0, 0.7, 0.6), ("n0", "l2", 1e-4, 0, 0.6, 0.61), ("n0", "l2", 1.0, 0, 0.65, 0.3)]
    frame = pd.DataFrame([("digits",) + r for r in rows],
                         columns=["block", "network", "regulariser", "weight", "seed", "val_accuracy",
                                  "test_accuracy"])
    sel = statistics.select(frame).set_index("treatment")
    assert list(sel.index) == ["none", "t1", "l2"]  # the paper's row order
    assert sel.loc["t1", "weight"] == 0.01 and sel.loc["t1", "n_seeds"] == 2
    assert sel.loc["t1", "test_accuracy"] == pytest.approx(0.55)
    assert sel.loc["t1", "test_std"] == pytest.approx(np.std([0.5, 0.6], ddof=1))
    assert sel.loc["l2", "weight"] == 1.0 and sel.loc["l2", "test_accuracy"] == 0.3
    assert sel.loc["none", "weight"] == 0.0


def test_drop_paper_weights():
    frame = pd.DataFrame({"block": ["pgdl", "pgdl", "mnist", "mnist"], "regulariser": ["t1", "t1", "t1", "l2"],
                          "weight": [0.1, 5.0, 5.0, 100.0]})
    kept = statistics.drop_weights(frame, paper.DROPPED_WEIGHTS)
    assert kept.to_dict("list") == {"block": ["pgdl", "mnist"], "regulariser": ["t1", "t1"], "weight": [0.1, 5.0]}


def test_missing_treatment_warns_and_analyses_complete_networks():
    rng = np.random.default_rng(2)
    x = pd.DataFrame(rng.random((4, 3)), index=["net/a", "net/b", "net/c", "net/d"], columns=["none", "t1", "t2"])
    frame = tidy(x)
    frame = frame[~((frame["network"] == "net/c") & (frame["regulariser"] == "t2"))]
    with pytest.warns(UserWarning, match=r"'net/c' lacks treatment\(s\) \['t2'\]"):
        analysis = statistics.analyse(frame, "digits")
    assert list(analysis.matrix.index) == ["net/a", "net/b", "net/d"]
    assert analysis.dropped_networks == {"net/c": ["t2"]}
    assert analysis.to_json()["n_networks"] == 3


def test_too_few_networks_or_treatments_raise():
    """One network is analysed now (over its seeds, no ranks); a network lacking a treatment is not."""
    x = pd.DataFrame([[0.5, 0.6]], index=["only"], columns=["none", "t1"])
    one = statistics.analyse(tidy(x), "digits")
    assert one.average_ranks is None and one.friedman is None and one.to_json()["average_ranks"] is None
    x = pd.DataFrame([[0.5, 0.6], [0.7, 0.8]], index=["a", "b"], columns=["none", "t1"])
    frame = tidy(x)
    frame = frame[~(((frame["network"] == "a") & (frame["regulariser"] == "t1"))
                    | ((frame["network"] == "b") & (frame["regulariser"] == "none")))]
    with pytest.warns(UserWarning), pytest.raises(statistics.StatsError, match="at least 1 network with every"):
        statistics.analyse(frame, "digits")
    x = pd.DataFrame([[0.5], [0.6]], index=["a", "b"], columns=["t1"])
    with pytest.raises(statistics.StatsError, match="at least 2 treatments"):
        statistics.analyse(tidy(x), "digits")
    assert issubclass(statistics.StatsError, PipelineError)


def test_not_significant_means_one_group():
    x = pd.DataFrame([[0.5, 0.6, 0.7], [0.7, 0.6, 0.5], [0.6, 0.7, 0.5]], columns=["none", "t1", "t2"])
    ranks, p = statistics.average_ranks(x), statistics.nemenyi_p(x)
    assert statistics.groups(ranks, p, friedman_p=0.9, alpha=0.05) == [list(ranks.sort_values(kind="stable").index)]


def test_paper_table1_analysis_keys_and_blocks():
    frame = pd.concat([tidy(pd.DataFrame(paper.TABLE1).T.loc[list(nets)], block)
                       for block, nets in (("mnist", paper.TABLE1_NETWORKS[:3]),
                                           ("pgdl", paper.TABLE1_NETWORKS[3:]))])
    analyses = statistics.analyse_blocks(frame)
    assert list(analyses) == ["mnist", "pgdl", "combined"]
    combined = analyses["combined"].to_json()
    assert set(combined) == {"n_networks", "treatments", "average_ranks", "friedman", "nemenyi_p",
                             "critical_difference", "alpha", "selected", "paired_tests", "baseline_selection", "seed"}
    assert set(combined["friedman"]) == {"chi2", "chi2_p", "iman_davenport_f", "iman_davenport_p", "exact_p",
                                         "exact_method", "exact_draws", "exact_seed", "exact_min_p"}
    assert combined["friedman"]["exact_method"] == "monte carlo"  # 11 networks × 6 treatments: too many to count
    assert combined["friedman"]["exact_draws"] == 20_000 and combined["friedman"]["exact_seed"] == 0
    assert combined["n_networks"] == 11 and combined["treatments"] == list(paper.TABLE1_TREATMENTS)
    assert list(analyses["combined"].matrix.index) == list(paper.TABLE1_NETWORKS)  # MNIST first, PGDL as ints
    best_two = sorted(combined["average_ranks"], key=combined["average_ranks"].get)[:2]
    assert set(best_two) == {"t1", "t2"}  # the paper's claim about its own table
    assert combined["selected"]["mnist/0"]["none"]["test_accuracy"] == 0.929
    json.dumps(combined, allow_nan=False)
    with pytest.raises(statistics.StatsError, match="not in the accuracies"):
        statistics.analyse_blocks(frame, blocks=["cifar"])


def _cli(csv, *args):
    return subprocess.run([sys.executable, str(ROOT / "extract_statistics.py"), "--accuracies", str(csv),
                           *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT)


def test_cli_writes_every_output_and_refuses_to_overwrite(tmp_path):
    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.random((5, 6)), index=[f"digits/{i}" for i in range(5)],
                     columns=["none", "t1", "t2", "l1", "l2", "corr"])
    tidy(x).to_csv(tmp_path / "acc.csv", index=False)
    done = _cli(tmp_path / "acc.csv", "--out", tmp_path / "stats")
    assert done.returncode == 0, done.stderr
    for name in ("digits", "combined"):
        folder = tmp_path / "stats" / name
        for f in ("statistics.json", "details.json", "cd_diagram.png", "cd_diagram.pdf", "cd_diagram.tex",
                  "accuracies.csv", "accuracies.md", "accuracies.tex", "nemenyi_p.tex", "selected.csv"):
            assert (folder / f).stat().st_size > 0, f
        assert json.loads((folder / "statistics.json").read_text())["n_networks"] == 5
    again = _cli(tmp_path / "acc.csv", "--out", tmp_path / "stats")
    assert again.returncode == 2 and "--force" in again.stderr
    assert _cli(tmp_path / "acc.csv", "--out", tmp_path / "stats", "--force").returncode == 0


@pytest.mark.parametrize("content, message", [
    ("", "empty file"),
    ("block,network,regulariser,weight,seed,val_accuracy\n", "missing column(s) ['test_accuracy']"),
    ("block,network,regulariser,weight,seed,val_accuracy,test_accuracy\n", "no rows"),
    ("block,network,regulariser,weight,seed,val_accuracy,test_accuracy\ndigits,digits/0,t1,0.1,0,0.5,x\n",
     "non-numeric value 'x'"),
])
def test_cli_bad_csv_is_one_line_exit_2(tmp_path, content, message):
    (tmp_path / "acc.csv").write_text(content)
    out = _cli(tmp_path / "acc.csv", "--out", tmp_path / "stats")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [out.stderr.strip()] and message in out.stderr
    assert "Traceback" not in out.stderr



@pytest.mark.parametrize("profiles, given, expect", [
    (["paper"], {}, "capped"),
    (["corrected"], {}, "uncapped"),
    (["paper", "corrected"], {}, "uncapped"),
    (["paper"], {"capped": False}, "uncapped"),
    (["corrected"], {"capped": True}, "capped"),
])
def test_the_runs_profile_chooses_the_nemenyi_variant_unless_told(tmp_path, profiles, given, expect):
    """`profile` travels with the data: an accuracies CSV of paper-profile runs gets the original's analysis (capped
    Nemenyi p, hand-dropped weights) without flags; a mixed or corrected one the corrected analysis; flags win."""
    from model.analysis import outputs

    frame = pd.read_csv(ROOT / "tests" / "data" / "one_seed_accuracies.csv")
    frame["profile"] = [profiles[i % len(profiles)] for i in range(len(frame))]
    frame.to_csv(tmp_path / "acc.csv", index=False)
    assert outputs.paper_settings(frame) == (profiles == ["paper"])
    outputs.extract(tmp_path / "acc.csv", tmp_path / "stats", **given)
    variant = json.loads((tmp_path / "stats" / "combined" / "details.json").read_text())["nemenyi_p_variant"]
    assert variant.startswith(expect)
