"""Ranking treatments over networks: selection rule, Friedman (exact and approximate), Iman–Davenport, Nemenyi,
critical difference, groups; paired tests and probability of improvement against the baseline.

Input is the tidy accuracies frame (`model.analysis.accuracies`); output is an `Analysis` holding the numbers that
`statistics.json` records. Formulas follow Demšar (2006) (Demšar, JMLR 7, 2006): rank 1 = best (highest
accuracy), average ranks for ties, Friedman χ² without tie correction. The verdict follows Friedman's permutation
p-value (`model.analysis.friedman_exact`), not the χ² or F approximations, which fail with few networks. With one
network there are no ranks: the treatments are compared over its seeds (paired tests, probability of improvement).
This module computes; it must not read run folders, draw or write files.
"""
import logging
import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.stats as ss

from model.analysis import expected_max, friedman_exact, improvement
from model.analysis.treatments import BASELINE, treatment_key
from model.errors import PipelineError

log = logging.getLogger(__name__)

BASELINE_RULES = ("paper", "matched")  # "paper": regularisers' best weight by validation, the baseline's mean over
# its seeds; "matched": every treatment, baseline included, scored by the expected test accuracy of the
# validation-best of n draws at one n per network (`select`, `model.analysis.expected_max`)
CONFIDENCE = 0.95


class StatsError(PipelineError):
    """The accuracies cannot support the requested analysis (too few networks or treatments, bad values)."""


@dataclass(frozen=True)
class Friedman:
    """Friedman χ² (df k−1) and Iman–Davenport F (df k−1, (k−1)(n−1)), each with its right-tail p-value, and the
    permutation p-value of the same statistic (`model.analysis.friedman_exact`: exact_method "enumeration" or
    "monte carlo" with exact_draws draws from exact_seed). F and its p are NaN (undefined, null in statistics.json)
    when every network ranks the treatments identically (χ² at its maximum n(k−1)): the F approximation then says
    F = ∞, p = 0, which no finite sample supports. The verdict reads exact_p (Q-friedman-asymptotic)."""

    chi2: float
    chi2_p: float
    iman_davenport_f: float
    iman_davenport_p: float
    exact_p: float = np.nan
    exact_method: str = ""
    exact_draws: int = 0
    exact_seed: int | None = None
    exact_min_p: float = np.nan  # the smallest exact p at this n × k (`friedman_exact.min_p`)


@dataclass(frozen=True)
class Analysis:
    """Everything one block's statistics.json, tables and CD diagram need.

    matrix: test accuracies, rows = networks, columns = treatments (complete networks only).
    selected: one row per (network, treatment): weight, n_seeds, val/test accuracy means and standard deviations.
    average_ranks: treatment -> mean rank (1 = best). nemenyi_p: symmetric treatment × treatment p-values.
    groups: treatments not significantly different from each other (sorted by rank; singletons not listed).
    dropped_networks: network -> treatments it lacks (left out of the analysis).
    With one network average_ranks, friedman, nemenyi_p, critical_difference and q_alpha are None (no ranks over
    one network); the paired tests over its seeds carry the comparison.
    budget_curves: `model.analysis.expected_max.curves` of the analysed networks (expected best of n draws).
    """

    block: str
    matrix: pd.DataFrame
    selected: pd.DataFrame
    average_ranks: pd.Series | None
    friedman: Friedman | None
    nemenyi_p: pd.DataFrame | None
    critical_difference: float | None
    q_alpha: float | None
    alpha: float
    groups: list
    dropped_networks: dict
    nemenyi_capped: bool
    baseline_rule: str = "paper"
    paired: pd.DataFrame | None = None  # `paired_tests`: one row per treatment against the baseline
    budget_curves: pd.DataFrame | None = None
    seed: int = 0  # the seed of every random draw of this analysis (permutation test, bootstrap)

    @property
    def treatments(self) -> list:
        return list(self.matrix.columns)

    def to_json(self) -> dict:
        """The statistics.json object: exactly the keys of the contract (non-finite numbers become null)."""
        sel = {}
        for row in self.selected.itertuples(index=False):
            cell = {"weight": _num(row.weight), "val_accuracy": _num(row.val_accuracy),
                    "test_accuracy": _num(row.test_accuracy), "val_std": _num(row.val_std),
                    "test_std": _num(row.test_std), "n_seeds": int(row.n_seeds)}
            if row.n_seeds > 1 and np.isnan(row.budget):
                cell["test_ci95"] = [_num(row.test_ci_low), _num(row.test_ci_high)]
            if not np.isnan(row.budget):
                cell["budget"] = int(row.budget)  # matched: expected validation-best of this many draws
            sel.setdefault(row.network, {})[row.treatment] = cell
        extra = {}
        if self.paired is not None and not self.paired.empty:
            extra["paired_tests"] = {row.treatment: {
                "n_pairs": int(row.n_pairs), "n_networks": int(row.n_networks), "mean_difference":
                _num(row.mean_difference), "median_difference": _num(row.median_difference),
                "wilcoxon_statistic": _num(row.statistic), "p": _num(row.p), "p_holm": _num(row.p_holm),
                "min_attainable_p": _num(row.min_attainable_p), "p_improvement": _num(row.p_improvement),
                "p_improvement_ci95": [_num(row.p_improvement_low), _num(row.p_improvement_high)]}
                for row in self.paired.itertuples(index=False)}
        ranked = self.average_ranks is not None
        return {
            "n_networks": int(len(self.matrix)),
            "treatments": self.treatments,
            "average_ranks": {t: _num(r) for t, r in self.average_ranks.items()} if ranked else None,
            "friedman": {k: _num(v) if isinstance(v, float) else v for k, v in vars(self.friedman).items()}
            if ranked else None,
            "nemenyi_p": {a: {b: _num(self.nemenyi_p.loc[a, b]) for b in self.treatments} for a in self.treatments}
            if ranked else None,
            "critical_difference": _num(self.critical_difference) if ranked else None,
            "alpha": float(self.alpha),
            "selected": sel,
            "baseline_selection": self.baseline_rule,
            "seed": int(self.seed),
            **extra,
        }


def _num(x):
    x = float(x)
    return x if np.isfinite(x) else None


def natural_key(name: str) -> tuple:
    """Sort key that orders `pgdl/task1_v4/20` before `pgdl/task1_v4/148` (digit runs compared as integers)."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", str(name)) if p)


def select(frame: pd.DataFrame, baseline: str = BASELINE, baseline_rule: str = "paper") -> pd.DataFrame:
    """Apply the selection rule (the paper's: per network and regulariser, the weight with the best validation
    accuracy) to a tidy accuracies frame.

    Per network and regulariser, among weights > 0 (the baseline takes all its weights, normally only 0.0), pick the
    weight with the highest mean validation accuracy over seeds; ties go to the smallest weight (strict >). Its mean
    test accuracy over the same `n_seeds` seeds is the cell's score. Runs with a missing (NaN) validation accuracy
    cannot be selected; a selectable run with a NaN test accuracy makes its weight's mean NaN (with a warning naming
    it), so that network is left out of the analysis rather than scored on fewer seeds than `n_seeds` says.
    baseline_rule "paper" (default): the baseline's cell is the mean over its seeds, as above (a regulariser picks
    the best of its W weights, the baseline picks nothing: best of W against best of 1, Q-unequal-budget in
    docs/quirks.md). "matched": on each network
    every treatment, the baseline included, is scored by the expected validation and test accuracy of the
    validation-best of n draws (`model.analysis.expected_max`; a regulariser's draws are its weights, the baseline's
    its seeds), n = the smallest number of draws any treatment has there, so all choose among as many; `weight`
    stays the weight the paper's rule picks (shown, and used for curves and activity), test_std and the interval
    are NaN (the score is an expectation, not a mean over seeds).
    Returns columns block, network, treatment, weight, n_seeds, val_accuracy, val_std, test_accuracy, test_std,
    test_ci_low, test_ci_high (the `t_interval` of the test accuracy over the cell's seeds; NaN for one seed) and
    budget (matched: the n of the expected best; else NaN).
    """
    if baseline_rule not in BASELINE_RULES:
        raise StatsError(f"baseline rule {baseline_rule!r}: expected one of {', '.join(BASELINE_RULES)}")
    runs = frame[(frame["regulariser"] == baseline) | (frame["weight"] > 0)]
    runs = runs[runs["val_accuracy"].notna()]
    no_test = runs[runs["test_accuracy"].isna()]
    for run in no_test.itertuples(index=False):
        warnings.warn(f"run {run.network} {run.regulariser} weight {run.weight!r} seed {run.seed} has no test accuracy "
                      "(NaN): its cell's mean test accuracy is NaN, not the mean of the other seeds", stacklevel=2)
    if runs.empty:
        raise StatsError("no run can be selected: every run has weight 0 (and is not the baseline "
                         f"{baseline!r}) or lacks a validation accuracy")
    per_weight = (runs.groupby(["network", "regulariser", "weight"], sort=True)
                  .agg(block=("block", "first"), n_seeds=("seed", "nunique"),
                       val_accuracy=("val_accuracy", "mean"), val_std=("val_accuracy", "std"),
                       test_accuracy=("test_accuracy", _mean_of_all), test_std=("test_accuracy", "std"),
                       test_sem=("test_accuracy", "sem"))
                  .reset_index())
    # groupby sorts weights ascending; idxmax returns the first maximum, i.e. the smallest among ties.
    best = per_weight.loc[per_weight.groupby(["network", "regulariser"], sort=False)["val_accuracy"].idxmax()]
    best = best.rename(columns={"regulariser": "treatment"})
    best = best.sort_values(["network", "treatment"],
                            key=lambda col: col.map(natural_key if col.name == "network" else treatment_key))
    best["test_ci_low"], best["test_ci_high"] = t_interval(best["test_accuracy"], best["test_sem"], best["n_seeds"])
    best["budget"] = np.nan
    if baseline_rule == "matched":
        curves = expected_max.curves(runs, baseline)
        curves = curves[curves["n"] == curves["network"].map(expected_max.common_budget(curves))]
        at = curves.set_index(["network", "treatment"])
        keys = list(zip(best["network"], best["treatment"]))
        best["val_accuracy"] = [at.loc[key, "expected_val"] if key in at.index else np.nan for key in keys]
        best["test_accuracy"] = [at.loc[key, "expected_test"] if key in at.index else np.nan for key in keys]
        best["budget"] = [at.loc[key, "n"] if key in at.index else np.nan for key in keys]
        best[["val_std", "test_std", "test_ci_low", "test_ci_high"]] = np.nan
    return best[["block", "network", "treatment", "weight", "n_seeds", "val_accuracy", "val_std", "test_accuracy",
                 "test_std", "test_ci_low", "test_ci_high", "budget"]].reset_index(drop=True)


def t_interval(mean, sem, n, confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Student-t confidence interval mean ± t_{(1+c)/2, n−1} · s/√n of a cell's mean test accuracy over its n seeds
    (NaN where n < 2). The seeds are independent replicates of one cell (same initial weights, their own shuffle
    and dropout), few (≤ 10), with an unknown spread: the t quantile accounts for estimating s from them; a bootstrap
    over so few values would understate the width. Arrays of the same shape as `mean`."""
    mean, sem, n = (np.asarray(v, dtype=float) for v in (mean, sem, n))
    half = np.where(n > 1, ss.t.ppf((1.0 + confidence) / 2.0, np.maximum(n - 1, 1)) * sem, np.nan)
    return mean - half, mean + half


def paired_tests(frame: pd.DataFrame, selected: pd.DataFrame, baseline: str = BASELINE, alpha: float = 0.05,
                 seed: int = 0) -> pd.DataFrame:
    """Each treatment's selected cells against the baseline's, paired over networks × seeds: Wilcoxon signed-rank and
    the probability of improvement.

    Pairs: per network, the test accuracies of the treatment's selected weight and the baseline's cell at each seed
    both ran (same initial weights and data order); where a cell is not a mean over seeds (the matched rule's
    expected best of n) or they share no seed, the two cells' scores form one pair. Wilcoxon signed-rank
    (two-sided, scipy.stats.wilcoxon, zero differences dropped; exact null distribution for small samples without
    ties): the differences of accuracy between heterogeneous networks are neither normal nor on one scale, so a
    rank test on their signed magnitudes is used rather than a paired t-test. With m non-zero differences its
    smallest possible two-sided p is 2/2^m (all signs alike): `min_attainable_p`; when that exceeds α (m < 6 at
    α = 0.05) the test cannot reject whatever the data, and the report says so instead of showing p.
    Multiplicity: the k−1 comparisons of a block are one family; `p_holm` is Holm's step-down adjustment of `p`.
    Probability of improvement (`model.analysis.improvement`, rliable's definition): per network P(X > Y) +
    ½ P(X = Y) over the treatment's runs at its selected weight X and the baseline's runs Y (all seeds), averaged
    over networks, with a stratified-bootstrap 95 % interval (seeds resampled within each network; `seed`).
    Seeds of one network share its initial weights, so both speak for these networks, not for a population of them.
    Returns columns treatment, n_pairs, n_networks, mean_difference, median_difference (treatment − baseline),
    statistic, p, min_attainable_p, p_improvement, p_improvement_low, p_improvement_high, p_holm; empty when there
    is no baseline.
    """
    columns = ["treatment", "n_pairs", "n_networks", "mean_difference", "median_difference", "statistic", "p",
               "min_attainable_p", "p_improvement", "p_improvement_low", "p_improvement_high", "p_holm"]
    cells = selected.set_index(["network", "treatment"])
    if baseline not in set(selected["treatment"]):
        return pd.DataFrame(columns=columns)
    rows = []
    for i, treatment in enumerate(sorted(set(selected["treatment"]) - {baseline}, key=treatment_key)):
        differences, networks, xs, ys = [], 0, [], []
        for network in sorted(selected["network"].unique(), key=natural_key):
            if (network, treatment) not in cells.index or (network, baseline) not in cells.index:
                continue
            networks += 1
            base_cell, cell = cells.loc[(network, baseline)], cells.loc[(network, treatment)]
            base = _runs(frame, network, baseline, base_cell)
            ours = _runs(frame, network, treatment, cell)
            shared = sorted(set(base) & set(ours))
            if shared and np.isnan(base_cell["budget"]) and np.isnan(cell["budget"]):
                differences += [ours[s] - base[s] for s in shared]
            else:
                differences.append(float(cell["test_accuracy"]) - float(base_cell["test_accuracy"]))
            if base and ours:
                xs.append(list(ours.values()))
                ys.append(list(base.values()))
        d = np.asarray(differences, dtype=float)
        statistic = p = np.nan
        nonzero = int(np.sum(d != 0))
        if nonzero:
            result = ss.wilcoxon(d)
            statistic, p = float(result.statistic), float(result.pvalue)
        poi = low = high = np.nan
        if xs:
            poi = improvement.probability(xs, ys)
            low, high = improvement.interval(xs, ys, seed=seed + i)
        rows.append((treatment, len(d), networks, float(d.mean()) if len(d) else np.nan,
                     float(np.median(d)) if len(d) else np.nan, statistic, p,
                     min(1.0, 2.0 ** (1 - nonzero)) if nonzero else np.nan, poi, low, high))
    out = pd.DataFrame(rows, columns=columns[:-1])
    out["p_holm"] = holm(out["p"].to_numpy(dtype=float))
    return out


def can_reject(min_attainable_p, alpha: float) -> bool:
    """Whether a paired test with this smallest attainable p could reject at α at all."""
    return min_attainable_p is not None and not np.isnan(min_attainable_p) and min_attainable_p <= alpha


def _runs(frame: pd.DataFrame, network: str, regulariser: str, cell) -> dict:
    """seed -> test accuracy of the runs of one selected cell (its selected weight, every seed)."""
    runs = frame[(frame["network"] == network) & (frame["regulariser"] == regulariser)
                 & np.isclose(frame["weight"], float(cell["weight"])) & frame["test_accuracy"].notna()]
    return dict(zip(runs["seed"].astype(int), runs["test_accuracy"].astype(float)))


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN entries stay NaN and do not count in the family)."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m, running = len(order), 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[j]))
        out[j] = running
    return out


def _mean_of_all(values: pd.Series) -> float:
    """The mean, NaN when any value is NaN (pandas' mean skips them)."""
    return float(values.mean(skipna=False))


def drop_weights(frame: pd.DataFrame, dropped: dict) -> pd.DataFrame:
    """Leave out runs whose (block, regulariser) maps to a tuple in `dropped` holding their weight (e.g. the
    paper's hand-dropped weights, `model.analysis.paper.DROPPED_WEIGHTS`)."""
    out = np.zeros(len(frame), dtype=bool)
    for (block, regulariser), weights in dropped.items():
        out |= ((frame["block"] == block) & (frame["regulariser"] == regulariser)
                & np.isin(frame["weight"].to_numpy(dtype=float), weights)).to_numpy()
    if out.any():
        log.info("left out %d runs at weights dropped by hand", int(out.sum()))
    return frame[~out]


def accuracy_matrix(selected: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Selected test accuracies as a networks × treatments matrix of complete networks.

    A network lacking a treatment (or with a NaN test accuracy) is dropped with a warning that names it; returns
    the matrix and {dropped network: [missing treatments]}. No complete network, or fewer than 2 treatments, raises
    StatsError (one network is enough: its treatments are compared over seeds).
    """
    treatments = sorted(selected["treatment"].unique(), key=treatment_key)
    networks = sorted(selected["network"].unique(), key=natural_key)
    matrix = selected.pivot(index="network", columns="treatment", values="test_accuracy")
    matrix = matrix.reindex(index=networks, columns=treatments)
    if len(treatments) < 2:
        raise StatsError(f"need at least 2 treatments (regularisers) to compare, found {treatments}")
    incomplete = matrix.isna().any(axis=1)
    dropped = {net: [t for t in treatments if np.isnan(matrix.loc[net, t])] for net in matrix.index[incomplete]}
    for net, missing in dropped.items():
        warnings.warn(f"network {net!r} lacks treatment(s) {missing}; analysing the complete networks only",
                      stacklevel=2)
    matrix = matrix[~incomplete]
    if len(matrix) < 1:
        raise StatsError(f"need at least 1 network with every treatment {treatments}, found none "
                         f"(incomplete: {sorted(dropped, key=natural_key)})")
    matrix.columns.name = None
    return matrix, dropped


def average_ranks(matrix: pd.DataFrame) -> pd.Series:
    """Mean rank per treatment over networks; rank 1 = highest accuracy, ties share the average rank."""
    ranks = ss.rankdata(-matrix.to_numpy(dtype=float), axis=1, method="average")
    return pd.Series(ranks.mean(axis=0), index=matrix.columns)


def friedman(avg_ranks, n: int, exact: friedman_exact.ExactP | None = None) -> Friedman:
    """Friedman χ² = 12n/(k(k+1)) Σ (R_j − (k+1)/2)² (no tie correction) and Iman–Davenport F from mean ranks.

    avg_ranks: (k,) mean ranks; n: number of networks (≥ 2); exact: the permutation p of the same data
    (`model.analysis.friedman_exact.exact_p`), recorded beside the approximations. F and its p are NaN (undefined)
    when every network ranks identically (the F formula's denominator n(k−1) − χ² is 0).
    """
    r = np.asarray(avg_ranks, dtype=float)
    k = r.size
    chi2 = 12.0 * n / (k * (k + 1)) * float(np.sum((r - (k + 1) / 2.0) ** 2))
    denominator = n * (k - 1) - chi2
    f = (n - 1) * chi2 / denominator if denominator > 1e-12 else np.nan
    f_p = float(ss.f.sf(f, k - 1, (k - 1) * (n - 1))) if np.isfinite(f) else np.nan
    extra = {} if exact is None else dict(exact_p=exact.p, exact_method=exact.method, exact_draws=exact.draws,
                                          exact_seed=exact.seed, exact_min_p=friedman_exact.min_p(n, k))
    return Friedman(chi2=chi2, chi2_p=float(ss.chi2.sf(chi2, k - 1)), iman_davenport_f=float(f),
                    iman_davenport_p=f_p, **extra)


def nemenyi_p(matrix: pd.DataFrame, capped: bool = False) -> pd.DataFrame:
    """All-pairs Nemenyi p-values (scikit-posthocs `posthoc_nemenyi_friedman`), treatments × treatments.

    p_ij = P(Q_{k,∞} ≥ √2 |R_i − R_j| / √(k(k+1)/(6n))); the diagonal is 1. `capped=True` clips to [0.001, 0.9] as
    scikit-posthocs ≤ 0.9 (statsmodels psturng) did, for a digit-level comparison with the paper (S4).
    """
    import scikit_posthocs

    p = scikit_posthocs.posthoc_nemenyi_friedman(matrix.to_numpy(dtype=float))
    values = p.to_numpy(dtype=float, copy=True)
    if capped:
        values = values.clip(0.001, 0.9)
        np.fill_diagonal(values, 1.0)  # psturng capped the pairs; the diagonal stays 1 (Q-nemenyi-capped)
    return pd.DataFrame(values, index=matrix.columns, columns=matrix.columns)


def q_alpha(k: int, alpha: float) -> float:
    """Nemenyi critical value q_α = studentised-range quantile(1 − α; k, ∞) / √2 (Demšar Table 5a)."""
    return float(ss.studentized_range.ppf(1.0 - alpha, k, np.inf) / np.sqrt(2.0))


def critical_difference(k: int, n: int, alpha: float) -> float:
    """Nemenyi critical difference q_α √(k(k+1)/(6n)) in mean-rank units."""
    return q_alpha(k, alpha) * float(np.sqrt(k * (k + 1) / (6.0 * n)))


def groups(avg_ranks: pd.Series, p: pd.DataFrame, friedman_p: float, alpha: float) -> list[list[str]]:
    """Sets of treatments not significantly different, as bars of a CD diagram (Demšar 2006).

    If the Friedman p (the exact one, `Friedman.exact_p`) > α, all treatments form one group. Otherwise: maximal
    cliques of the graph with an edge where the Nemenyi p ≥ α, each widened to every treatment whose mean rank lies
    within the clique's rank range; ranges inside another are dropped, and so are singletons. Each group is sorted
    by mean rank.
    """
    order = list(avg_ranks.sort_values(kind="stable").index)
    if not friedman_p <= alpha:
        return [order]
    adjacent = {a: {b for b in order if b != a and np.isfinite(p.loc[a, b]) and p.loc[a, b] >= alpha}
                for a in order}
    intervals = set()
    for clique in _maximal_cliques(adjacent):
        lo, hi = min(avg_ranks[list(clique)]), max(avg_ranks[list(clique)])
        intervals.add((lo, hi))
    kept = [iv for iv in intervals
            if not any(o != iv and o[0] <= iv[0] and iv[1] <= o[1] for o in intervals)]
    out = []
    for lo, hi in sorted(kept):
        members = [t for t in order if lo - 1e-12 <= avg_ranks[t] <= hi + 1e-12]
        if len(members) > 1:
            out.append(members)
    return out


def _maximal_cliques(adjacent: dict) -> list[frozenset]:
    """Bron–Kerbosch without pivoting: fine for the handful of treatments a CD diagram holds."""
    cliques = []

    def expand(r, p, x):
        if not p and not x:
            cliques.append(frozenset(r))
        for v in list(p):
            expand(r | {v}, p & adjacent[v], x & adjacent[v])
            p = p - {v}
            x = x | {v}

    expand(set(), set(adjacent), set())
    return cliques


def analyse(frame: pd.DataFrame, block: str, alpha: float = 0.05, capped: bool = False,
            baseline_rule: str = "paper", seed: int = 0) -> Analysis:
    """Selection (`select` with `baseline_rule`), ranks, Friedman (exact p and approximations), Nemenyi, CD, groups,
    the paired tests against the baseline and the expected-best curves for the runs in `frame` (one analysis).
    With one network: no ranks, Friedman, Nemenyi or CD (None); the paired tests compare over its seeds.
    seed: every random draw (Monte-Carlo permutation test, bootstrap) starts from it."""
    if not 0.0 < alpha < 1.0:
        raise StatsError(f"alpha {alpha}: expected a number strictly between 0 and 1")
    selected = select(frame, baseline_rule=baseline_rule)
    matrix, dropped = accuracy_matrix(selected)
    selected = selected[selected["network"].isin(matrix.index)].reset_index(drop=True)
    kept = frame[frame["network"].isin(matrix.index)]
    n, k = matrix.shape
    common = dict(block=block, matrix=matrix, selected=selected, alpha=alpha, dropped_networks=dropped,
                  nemenyi_capped=capped, baseline_rule=baseline_rule, seed=seed,
                  paired=paired_tests(kept, selected, alpha=alpha, seed=seed),
                  budget_curves=expected_max.curves(kept[kept["val_accuracy"].notna()]))
    if n == 1:
        log.info("block %s: 1 network × %d treatments: compared over seeds, no ranks", block, k)
        return Analysis(average_ranks=None, friedman=None, nemenyi_p=None, critical_difference=None, q_alpha=None,
                        groups=[], **common)
    ranks = average_ranks(matrix)
    fr = friedman(ranks.to_numpy(), n, friedman_exact.exact_p(matrix.to_numpy(dtype=float), seed=seed))
    p = nemenyi_p(matrix, capped=capped)
    log.info("block %s: %d networks × %d treatments, Friedman p = %.4g (%s)", block, n, k, fr.exact_p,
             fr.exact_method)
    return Analysis(average_ranks=ranks, friedman=fr, nemenyi_p=p, critical_difference=critical_difference(k, n, alpha),
                    q_alpha=q_alpha(k, alpha), groups=groups(ranks, p, fr.exact_p, alpha), **common)


def baseline_seeds(frame: pd.DataFrame, baseline: str = BASELINE) -> int:
    """The most seeds the baseline has on one network (the other rule's analysis is written only if > 1)."""
    runs = frame[frame["regulariser"] == baseline]
    return int(runs.groupby("network")["seed"].nunique().max()) if not runs.empty else 0


def analyse_blocks(frame: pd.DataFrame, alpha: float = 0.05, blocks=None, capped: bool = False,
                   baseline_rule: str = "paper", seed: int = 0) -> dict:
    """One `Analysis` per block plus `combined` (all requested blocks pooled); returns {name: Analysis}.

    blocks: restrict to these block names (unknown names raise StatsError). A block that cannot be analysed alone
    (e.g. no network with every treatment) is skipped with a warning; the combined analysis must succeed.
    """
    present = sorted(frame["block"].unique(), key=natural_key)
    blocks = list(blocks) if blocks else present
    unknown = [b for b in blocks if b not in present]
    if unknown:
        raise StatsError(f"--blocks {unknown}: not in the accuracies (blocks present: {present})")
    frame = frame[frame["block"].isin(blocks)]
    out = {}
    for block in blocks:
        try:
            out[block] = analyse(frame[frame["block"] == block], block, alpha, capped, baseline_rule, seed)
        except StatsError as err:
            warnings.warn(f"block {block!r} not analysed on its own: {err}", stacklevel=2)
    out["combined"] = analyse(frame, "combined", alpha, capped, baseline_rule, seed)
    return out

