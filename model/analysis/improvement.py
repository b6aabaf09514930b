"""Probability of improvement with a stratified-bootstrap interval (Agarwal et al. 2021, rliable).

Per network, the runs of a treatment X (its selected weight, one run per seed) against the baseline's runs Y (one per
seed): P(X > Y) + ½ P(X = Y) over all pairs of runs (the Mann–Whitney U statistic / (m·n)); the treatment's
probability of improvement is the mean of that over networks (rliable's `probability_of_improvement`: each network,
a "task", weighs the same). A value above 0.5 means a run of the treatment tends to beat a baseline run on the same
network.

Interval: the stratified bootstrap of rliable (`StratifiedIndependentBootstrap`): each draw resamples, within every
network and independently for X and Y, that network's runs with replacement, and recomputes the mean over networks;
the 95 % interval is the 2.5 and 97.5 percentiles of DRAWS draws from `numpy.random.default_rng(seed)`. With one run
per cell the interval is the point (no spread to resample); with few seeds it is wide, as it should be.

This module computes; it must not read files, draw or write.
"""
import numpy as np

DRAWS = 2000
CONFIDENCE = 0.95


def pairwise(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) + ½ P(X = Y) for the last axis of x (..., m) against y (..., n): (...) values in [0, 1]."""
    diff = x[..., :, None] - y[..., None, :]
    return ((diff > 0) + 0.5 * (diff == 0)).mean(axis=(-2, -1))


def probability(x_by_network: list, y_by_network: list) -> float:
    """Mean over networks of P(X > Y) + ½ P(X = Y); x_by_network[i], y_by_network[i]: network i's runs."""
    return float(np.mean([pairwise(np.asarray(x, float), np.asarray(y, float))
                          for x, y in zip(x_by_network, y_by_network)]))


def interval(x_by_network: list, y_by_network: list, seed: int = 0, draws: int = DRAWS,
             confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The stratified-bootstrap percentile interval of `probability` (runs resampled within each network)."""
    rng = np.random.default_rng(seed)
    total = np.zeros(draws)
    for x, y in zip(x_by_network, y_by_network):
        x, y = np.asarray(x, float), np.asarray(y, float)
        xs = x[rng.integers(0, x.size, (draws, x.size))]
        ys = y[rng.integers(0, y.size, (draws, y.size))]
        total += pairwise(xs, ys)
    means = total / len(x_by_network)
    tail = 100 * (1 - confidence) / 2
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))
