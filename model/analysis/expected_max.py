"""Expected best of n draws (Dodge et al. 2019, "Show Your Work", EMNLP): a budget-matched score per treatment.

A treatment's draws on one network are what its selection chooses among: a regulariser's weights (each scored by
its mean validation and test accuracy over seeds, as `model.analysis.statistics.select` scores them), the baseline's
seeds (each run). Drawing n of its N draws uniformly with replacement and keeping the validation-best, the test
accuracy of the kept draw has expectation

    E_n = Σ_i [(i/N)^n − ((i−1)/N)^n] · test_i,   draws sorted by validation accuracy ascending (i = 1..N),

the closed form of allentune's `samplemax` (Dodge et al. 2019, Eq. 1 with the empirical CDF). n = 1 is the mean
over draws (the paper's baseline rule: the mean over seeds); n = N is close to, not equal to, the best of all N (the
draws are with replacement). Comparing treatments at one n gives each the same number of draws: best-of-5 against
best-of-5, never best-of-10 against best-of-5.

Validation ties: the kept draw is one of the tied best uniformly at random, so a group of tied draws at sorted
positions i0+1..i1 gets probability (i1/N)^n − (i0/N)^n and contributes the mean of its test accuracies; the result
does not depend on the order the draws came in.

This module computes; it must not read files, draw or write.
"""
import numpy as np
import pandas as pd

from model.analysis.treatments import BASELINE

COLUMNS = ("network", "treatment", "n", "n_draws", "expected_val", "expected_test")


def expected_best(val, test, n: int) -> tuple[float, float]:
    """(expected validation, expected test accuracy) of the validation-best of n draws with replacement from the
    draws (val, test) (equal-length 1-d arrays, no NaN in val; n ≥ 1)."""
    val, test = np.asarray(val, dtype=float), np.asarray(test, dtype=float)
    if n < 1 or val.size == 0 or val.size != test.size:
        raise ValueError(f"expected_best: n = {n} with {val.size} validation and {test.size} test values")
    order = np.argsort(val, kind="stable")
    val, test = val[order], test[order]
    big_n = val.size
    levels, first = np.unique(val, return_index=True)
    last = np.append(first[1:], big_n)  # group g holds sorted positions first[g]..last[g]-1
    weight = (last / big_n) ** n - (first / big_n) ** n
    group_test = np.array([test[a:b].mean() for a, b in zip(first, last)])
    return float(np.sum(weight * levels)), float(np.sum(weight * group_test))


def draws(frame: pd.DataFrame, network: str, treatment: str, baseline: str = BASELINE) -> pd.DataFrame:
    """One network's draws of one treatment: columns val_accuracy, test_accuracy. A regulariser: one row per weight
    > 0 (mean over its seeds; a weight with a NaN test accuracy on any seed is left out, as `select` leaves out such a
    cell); the baseline: one row per run. Runs without a validation accuracy are not draws."""
    runs = frame[(frame["network"] == network) & (frame["regulariser"] == treatment)
                 & frame["val_accuracy"].notna()]
    if treatment == baseline:
        runs = runs[runs["test_accuracy"].notna()]
        return runs[["val_accuracy", "test_accuracy"]].reset_index(drop=True)
    runs = runs[runs["weight"] > 0]
    per_weight = runs.groupby("weight").agg(val_accuracy=("val_accuracy", "mean"),
                                            test_accuracy=("test_accuracy", lambda s: s.mean(skipna=False)))
    return per_weight[per_weight["test_accuracy"].notna()].reset_index(drop=True)


def curves(frame: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """Every (network, treatment)'s expected best for n = 1..N (N its number of draws): columns `COLUMNS`."""
    rows = []
    for (network, treatment), _ in frame.groupby(["network", "regulariser"], sort=True):
        d = draws(frame, network, treatment, baseline)
        for n in range(1, len(d) + 1):
            rows.append((network, treatment, n, len(d), *expected_best(d["val_accuracy"], d["test_accuracy"], n)))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def common_budget(curves_: pd.DataFrame) -> pd.Series:
    """Per network, the largest n every treatment can draw: the smallest number of draws among its treatments."""
    return curves_.groupby("network")["n_draws"].min()
