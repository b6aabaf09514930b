"""Ranking treatments over networks: selection rule, Friedman, Iman–Davenport, Nemenyi, critical difference, groups.

Input is the tidy accuracies frame (`model.analysis.accuracies`); output is an `Analysis` holding the numbers that
`statistics.json` records. Formulas follow Demšar (2006) (Demšar, JMLR 7, 2006): rank 1 = best (highest
accuracy), average ranks for ties, Friedman χ² without tie correction. This module computes; it must not read run
folders, draw or write files.
"""
import logging
import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.stats as ss

from model.analysis.treatments import BASELINE, treatment_key
from model.errors import PipelineError

log = logging.getLogger(__name__)

BASELINE_RULES = ("paper", "matched")  # the baseline's cell: mean over its seeds (the paper's rule), or the seed
# with the best validation accuracy (selected as each regulariser's weight is: `select`)
CONFIDENCE = 0.95


class StatsError(PipelineError):
    """The accuracies cannot support the requested analysis (too few networks or treatments, bad values)."""


@dataclass(frozen=True)
class Friedman:
    """Friedman χ² (df k−1) and Iman–Davenport F (df k−1, (k−1)(n−1)), each with its right-tail p-value."""

    chi2: float
    chi2_p: float
    iman_davenport_f: float
    iman_davenport_p: float


@dataclass(frozen=True)
class Analysis:
    """Everything one block's statistics.json, tables and CD diagram need.

    matrix: test accuracies, rows = networks, columns = treatments (complete networks only).
    selected: one row per (network, treatment): weight, n_seeds, val/test accuracy means and standard deviations.
    average_ranks: treatment -> mean rank (1 = best). nemenyi_p: symmetric treatment × treatment p-values.
    groups: treatments not significantly different from each other (sorted by rank; singletons not listed).
    dropped_networks: network -> treatments it lacks (left out of the analysis).
    """

    block: str
    matrix: pd.DataFrame
    selected: pd.DataFrame
    average_ranks: pd.Series
    friedman: Friedman
    nemenyi_p: pd.DataFrame
    critical_difference: float
    q_alpha: float
    alpha: float
    groups: list
    dropped_networks: dict
    nemenyi_capped: bool
    baseline_rule: str = "paper"
    paired: pd.DataFrame | None = None  # `paired_tests`: one row per treatment against the baseline

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
            if row.n_seeds > 1:
                cell["test_ci95"] = [_num(row.test_ci_low), _num(row.test_ci_high)]
            if not np.isnan(row.seed):
                cell["seed"] = int(row.seed)  # the matched baseline's selected seed
            sel.setdefault(row.network, {})[row.treatment] = cell
        extra = {}
        if self.baseline_rule != "paper":
            extra["baseline_selection"] = self.baseline_rule
        if self.paired is not None and not self.paired.empty:
            extra["paired_tests"] = {row.treatment: {
                "n_pairs": int(row.n_pairs), "n_networks": int(row.n_networks), "mean_difference":
                _num(row.mean_difference), "median_difference": _num(row.median_difference),
                "wilcoxon_statistic": _num(row.statistic), "p": _num(row.p), "p_holm": _num(row.p_holm)}
                for row in self.paired.itertuples(index=False)}
        return {
            "n_networks": int(len(self.matrix)),
            "treatments": self.treatments,
            "average_ranks": {t: _num(r) for t, r in self.average_ranks.items()},
            "friedman": {k: _num(v) for k, v in vars(self.friedman).items()},
            "nemenyi_p": {a: {b: _num(self.nemenyi_p.loc[a, b]) for b in self.treatments} for a in self.treatments},
            "critical_difference": _num(self.critical_difference),
            "alpha": float(self.alpha),
            "selected": sel,
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
    baseline_rule "paper" (default): the baseline's cell is the mean over its seeds, as above; "matched": the
    baseline's seed with the highest validation accuracy (ties: the smallest seed) is selected, as a regulariser's
    weight is, and scored by its test accuracy (n_seeds 1, `seed` says which).
    Returns columns block, network, treatment, weight, n_seeds, val_accuracy, val_std, test_accuracy, test_std,
    test_ci_low, test_ci_high (the `t_interval` of the test accuracy over the cell's seeds; NaN for one seed) and
    seed (the matched baseline's selected seed, else NaN).
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
    if baseline_rule == "matched":  # each baseline seed is a candidate cell of its own, like a weight
        runs = runs.assign(candidate=np.where(runs["regulariser"] == baseline, runs["seed"], 0))
    else:
        runs = runs.assign(candidate=0)
    per_weight = (runs.groupby(["network", "regulariser", "weight", "candidate"], sort=True)
                  .agg(block=("block", "first"), n_seeds=("seed", "nunique"),
                       val_accuracy=("val_accuracy", "mean"), val_std=("val_accuracy", "std"),
                       test_accuracy=("test_accuracy", _mean_of_all), test_std=("test_accuracy", "std"),
                       test_sem=("test_accuracy", "sem"))
                  .reset_index())
    # groupby sorts weights (then seeds) ascending; idxmax returns the first maximum, i.e. the smallest among ties.
    best = per_weight.loc[per_weight.groupby(["network", "regulariser"], sort=False)["val_accuracy"].idxmax()]
    best = best.rename(columns={"regulariser": "treatment"})
    best = best.sort_values(["network", "treatment"],
                            key=lambda col: col.map(natural_key if col.name == "network" else treatment_key))
    best["test_ci_low"], best["test_ci_high"] = t_interval(best["test_accuracy"], best["test_sem"], best["n_seeds"])
    best["seed"] = np.where((best["treatment"] == baseline) & (baseline_rule == "matched"), best["candidate"],
                            np.nan)
    return best[["block", "network", "treatment", "weight", "n_seeds", "val_accuracy", "val_std", "test_accuracy",
                 "test_std", "test_ci_low", "test_ci_high", "seed"]].reset_index(drop=True)


def t_interval(mean, sem, n, confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Student-t confidence interval mean ± t_{(1+c)/2, n−1} · s/√n of a cell's mean test accuracy over its n seeds
    (NaN where n < 2). The seeds are independent replicates of one cell (same initial weights, their own shuffle
    and dropout), few (≤ 10), with an unknown spread: the t quantile accounts for estimating s from them; a bootstrap
    over so few values would understate the width. Arrays of the same shape as `mean`."""
    mean, sem, n = (np.asarray(v, dtype=float) for v in (mean, sem, n))
    half = np.where(n > 1, ss.t.ppf((1.0 + confidence) / 2.0, np.maximum(n - 1, 1)) * sem, np.nan)
    return mean - half, mean + half


def paired_tests(frame: pd.DataFrame, selected: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """Each treatment's selected cells against the baseline's, paired over networks × seeds: Wilcoxon signed-rank.

    Pairs: per network, the test accuracies of the treatment's selected weight and the baseline's cell at each seed
    both ran (same initial weights and data order); where they share no seed (e.g. a matched baseline: one
    selected seed) the two cells' scores form one pair. Wilcoxon signed-rank (two-sided, scipy.stats.wilcoxon,
    zero differences dropped; exact null distribution for small samples without ties): the differences of accuracy
    between heterogeneous networks are neither normal nor on one scale, so a rank test on their signed magnitudes
    is used rather than a paired t-test. Multiplicity: the k−1 comparisons of a block are one family; `p_holm` is
    Holm's step-down adjustment of `p` (controls the family-wise error). Seeds of one network share its initial
    weights, so the test speaks for these networks, not for a population of them.
    Returns columns treatment, n_pairs, n_networks, mean_difference, median_difference (treatment − baseline),
    statistic, p, p_holm; empty when there is no baseline.
    """
    columns = ["treatment", "n_pairs", "n_networks", "mean_difference", "median_difference", "statistic", "p",
               "p_holm"]
    cells = selected.set_index(["network", "treatment"])
    if baseline not in set(selected["treatment"]):
        return pd.DataFrame(columns=columns)
    rows = []
    for treatment in sorted(set(selected["treatment"]) - {baseline}, key=treatment_key):
        differences, networks = [], 0
        for network in sorted(selected["network"].unique(), key=natural_key):
            if (network, treatment) not in cells.index or (network, baseline) not in cells.index:
                continue
            networks += 1
            base_cell, cell = cells.loc[(network, baseline)], cells.loc[(network, treatment)]
            base = _runs(frame, network, baseline, base_cell)
            ours = _runs(frame, network, treatment, cell)
            shared = sorted(set(base) & set(ours))
            if shared and np.isnan(base_cell["seed"]):
                differences += [ours[s] - base[s] for s in shared]
            else:
                differences.append(float(cell["test_accuracy"]) - float(base_cell["test_accuracy"]))
        d = np.asarray(differences, dtype=float)
        statistic = p = np.nan
        if np.any(d != 0):
            result = ss.wilcoxon(d)
            statistic, p = float(result.statistic), float(result.pvalue)
        rows.append((treatment, len(d), networks, float(d.mean()) if len(d) else np.nan,
                     float(np.median(d)) if len(d) else np.nan, statistic, p))
    out = pd.DataFrame(rows, columns=columns[:-1])
    out["p_holm"] = holm(out["p"].to_numpy(dtype=float))
    return out


def _runs(frame: pd.DataFrame, network: str, regulariser: str, cell) -> dict:
    """seed -> test accuracy of the runs of one selected cell (the matched baseline: its selected seed only)."""
    runs = frame[(frame["network"] == network) & (frame["regulariser"] == regulariser)
                 & np.isclose(frame["weight"], float(cell["weight"])) & frame["test_accuracy"].notna()]
    if not np.isnan(cell["seed"]):
        runs = runs[runs["seed"] == int(cell["seed"])]
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
    the matrix and {dropped network: [missing treatments]}. Fewer than 2 networks or treatments raises StatsError.
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
    if len(matrix) < 2:
        raise StatsError(f"need at least 2 networks with every treatment {treatments}, found "
                         f"{list(matrix.index)} (incomplete: {sorted(dropped, key=natural_key)})")
    matrix.columns.name = None
    return matrix, dropped


def average_ranks(matrix: pd.DataFrame) -> pd.Series:
    """Mean rank per treatment over networks; rank 1 = highest accuracy, ties share the average rank."""
    ranks = ss.rankdata(-matrix.to_numpy(dtype=float), axis=1, method="average")
    return pd.Series(ranks.mean(axis=0), index=matrix.columns)


def friedman(avg_ranks, n: int) -> Friedman:
    """Friedman χ² = 12n/(k(k+1)) Σ (R_j − (k+1)/2)² (no tie correction) and Iman–Davenport F from mean ranks.

    avg_ranks: (k,) mean ranks; n: number of networks. F is +inf (p = 0) when every network ranks identically.
    """
    r = np.asarray(avg_ranks, dtype=float)
    k = r.size
    chi2 = 12.0 * n / (k * (k + 1)) * float(np.sum((r - (k + 1) / 2.0) ** 2))
    denominator = n * (k - 1) - chi2
    f = (n - 1) * chi2 / denominator if denominator > 1e-12 else np.inf
    f_p = float(ss.f.sf(f, k - 1, (k - 1) * (n - 1))) if np.isfinite(f) else 0.0
    return Friedman(chi2=chi2, chi2_p=float(ss.chi2.sf(chi2, k - 1)), iman_davenport_f=float(f),
                    iman_davenport_p=f_p)


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

    If the Friedman (Iman–Davenport) p > α, all treatments form one group. Otherwise: maximal cliques of the graph
    with an edge where the Nemenyi p ≥ α, each widened to every treatment whose mean rank lies within the clique's
    rank range; ranges inside another are dropped, and so are singletons. Each group is sorted by mean rank.
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
            baseline_rule: str = "paper") -> Analysis:
    """Selection (`select` with `baseline_rule`), ranks, Friedman/Iman–Davenport, Nemenyi, CD, groups and the paired
    tests against the baseline for the runs in `frame` (one analysis)."""
    if not 0.0 < alpha < 1.0:
        raise StatsError(f"alpha {alpha}: expected a number strictly between 0 and 1")
    selected = select(frame, baseline_rule=baseline_rule)
    matrix, dropped = accuracy_matrix(selected)
    selected = selected[selected["network"].isin(matrix.index)].reset_index(drop=True)
    n, k = matrix.shape
    ranks = average_ranks(matrix)
    fr = friedman(ranks.to_numpy(), n)
    p = nemenyi_p(matrix, capped=capped)
    log.info("block %s: %d networks × %d treatments, Iman–Davenport p = %.4g", block, n, k, fr.iman_davenport_p)
    return Analysis(block=block, matrix=matrix, selected=selected, average_ranks=ranks, friedman=fr, nemenyi_p=p,
                    critical_difference=critical_difference(k, n, alpha), q_alpha=q_alpha(k, alpha), alpha=alpha,
                    groups=groups(ranks, p, fr.iman_davenport_p, alpha), dropped_networks=dropped,
                    nemenyi_capped=capped, baseline_rule=baseline_rule,
                    paired=paired_tests(frame[frame["network"].isin(matrix.index)], selected))


def baseline_seeds(frame: pd.DataFrame, baseline: str = BASELINE) -> int:
    """The most seeds the baseline has on one network (the matched rule differs from the paper's only if > 1)."""
    runs = frame[frame["regulariser"] == baseline]
    return int(runs.groupby("network")["seed"].nunique().max()) if not runs.empty else 0


def analyse_blocks(frame: pd.DataFrame, alpha: float = 0.05, blocks=None, capped: bool = False,
                   baseline_rule: str = "paper") -> dict:
    """One `Analysis` per block plus `combined` (all requested blocks pooled); returns {name: Analysis}.

    blocks: restrict to these block names (unknown names raise StatsError). A block that cannot be analysed alone
    (e.g. a single network) is skipped with a warning; the combined analysis must succeed.
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
            out[block] = analyse(frame[frame["block"] == block], block, alpha, capped, baseline_rule)
        except StatsError as err:
            warnings.warn(f"block {block!r} not analysed on its own: {err}", stacklevel=2)
    out["combined"] = analyse(frame, "combined", alpha, capped, baseline_rule)
    return out

