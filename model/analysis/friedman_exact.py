"""Friedman's test without the χ² approximation: the permutation p-value of the rank-sum statistic.

Under the null hypothesis (the treatments are exchangeable within a network) each network's row of ranks is equally
likely to be any ordering of itself, independently across networks: (k!)^n equally likely outcomes for n networks ×
k treatments. The statistic is S = Σ_j R_j², R_j the rank sum of treatment j over networks, computed from the same
average ranks (ties share their mean rank) as Friedman's χ²; for fixed n and k, χ² = 12 S / (n k (k+1)) − 3n(k+1) is
an increasing function of S, so the test is Friedman's. A network with tied accuracies keeps its tie pattern under
permutation (it is its own row of average ranks that is permuted), as the statistic treats it.
p = P(S ≥ S_observed) under the null.

Two ways to get p, recorded in `ExactP.method`:
- "enumeration" (exact): the distribution of the rank-sum vector is convolved network by network over each
  network's distinct orderings (the first network held fixed: S does not change when the treatments are relabelled,
  so conditioning on its ordering gives the same distribution); used while every convolution step stays within
  MAX_WORK (states × orderings), which covers e.g. k = 3 up to dozens of networks and k = 6 up to 3 networks.
  Ranks are doubled to integers so S is compared exactly.
- "monte carlo": DRAWS random orderings of every network's row from `numpy.random.default_rng(seed)`;
  p = (1 + #{S_b ≥ S_obs}) / (1 + DRAWS) (Phipson & Smyth 2010), never 0.

This module computes; it must not read files, draw or write.
"""
import itertools
import math
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import scipy.stats as ss

MAX_WORK = 1_000_000  # the largest states × orderings product one enumeration step may take
DRAWS = 20_000        # Monte-Carlo permutations when enumeration is too large


@dataclass(frozen=True)
class ExactP:
    """p: P(S ≥ S_obs) under the null; method: "enumeration" or "monte carlo"; draws: permutations drawn (0 for
    enumeration); seed: the generator's seed (None for enumeration)."""

    p: float
    method: str
    draws: int
    seed: int | None


def rank_rows(matrix: np.ndarray) -> np.ndarray:
    """(n, k) accuracies -> (n, k) average ranks, 1 = highest accuracy (ties share their mean rank)."""
    return ss.rankdata(-np.asarray(matrix, dtype=float), axis=1, method="average")


def statistic(ranks: np.ndarray) -> float:
    """S = Σ_j (Σ_i r_ij)² of an (n, k) rank matrix (or of (..., k) rank sums when `ranks` are sums already)."""
    return float(np.sum(np.asarray(ranks, dtype=float).sum(axis=0) ** 2))


def _orderings(row: np.ndarray) -> list[tuple]:
    """The distinct orderings of one network's doubled integer ranks (each equally likely under the null)."""
    return sorted(set(itertools.permutations(row.tolist())))


def _enumerate(doubled: np.ndarray) -> Fraction | None:
    """Exact P(S ≥ S_obs) for (n, k) doubled integer ranks, or None when a step would exceed MAX_WORK."""
    observed = int(np.sum(doubled.sum(axis=0) ** 2))
    states = Counter({tuple(doubled[0].tolist()): 1})  # network 1 fixed (relabelling symmetry)
    total = 1
    for row in doubled[1:]:
        orders = _orderings(row)
        if len(states) * len(orders) > MAX_WORK:
            return None
        nxt = Counter()
        for sums, count in states.items():
            for order in orders:
                nxt[tuple(a + b for a, b in zip(sums, order))] += count
        states, total = nxt, total * len(orders)
    hits = sum(count for sums, count in states.items() if sum(s * s for s in sums) >= observed)
    return Fraction(hits, total)


def _monte_carlo(ranks: np.ndarray, draws: int, seed: int) -> float:
    """(1 + #{S_b ≥ S_obs}) / (1 + draws), each draw permuting every network's row independently."""
    rng = np.random.default_rng(seed)
    n, k = ranks.shape
    observed = statistic(ranks)
    sums = np.zeros((draws, k))
    for row in ranks:
        sums += row[np.argsort(rng.random((draws, k)), axis=1)]
    hits = int(np.sum(np.sum(sums ** 2, axis=1) >= observed - 1e-9 * max(1.0, observed)))
    return (1 + hits) / (1 + draws)


def min_p(n: int, k: int) -> float:
    """The smallest p the test can give with n networks × k treatments: every network ranks the k treatments in
    the same strict order, k! of the (k!)^n outcomes, p = (k!)^(1−n) (e.g. 1/6 for 2 × 3, 1/2^(n−1) for k = 2)."""
    return float(Fraction(1, math.factorial(k) ** (n - 1)))


def exact_p(matrix, seed: int = 0, draws: int = DRAWS) -> ExactP:
    """The permutation p-value of Friedman's test for an (n, k) accuracy matrix (rows networks, n ≥ 1, k ≥ 2):
    exact by enumeration when small enough, else seeded Monte Carlo (see the module docstring)."""
    ranks = rank_rows(matrix)
    doubled = np.rint(2 * ranks).astype(np.int64)  # average ranks are multiples of 1/2
    p = _enumerate(doubled)
    if p is not None:
        return ExactP(p=float(p), method="enumeration", draws=0, seed=None)
    return ExactP(p=_monte_carlo(ranks, draws, seed), method="monte carlo", draws=int(draws), seed=int(seed))
