"""Expected best test accuracy against the selection budget n (Dodge et al. 2019), one PNG per analysis: one line
per treatment (the mean over networks of `model.analysis.expected_max.curves`), so treatments are compared at equal
n (a regulariser's draws are its weights, the baseline's its seeds)."""
from pathlib import Path

import pandas as pd

from model.analysis.figures import plotting
from model.analysis.treatments import BASELINE, colour, label, treatment_gid, treatment_key


def plot(curves: pd.DataFrame, title: str, path: Path) -> Path | None:
    """curves: columns network, treatment, n, expected_test (`expected_max.curves`). Each treatment's line is the
    mean over networks at each n up to the smallest n_draws it has on every network (so every point averages the
    same networks); the baseline black and dashed, drawn last. The largest n every treatment reaches on every
    network (the budget the matched rule uses, at most) is marked by a dotted vertical line. Returns the PNG path,
    or None when no treatment has a draw."""
    if curves.empty:
        return None
    plt = plotting.pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(plotting.PAGE_INCHES * 0.6, 3.6), layout="constrained")  # text at TEXT_PT
    reach = curves.groupby(["treatment", "network"])["n_draws"].first().groupby("treatment").min()
    order = sorted(reach.index, key=lambda t: (t == BASELINE, treatment_key(t)))  # the baseline on top
    for t in order:
        mine = curves[(curves["treatment"] == t) & (curves["n"] <= reach[t])]
        line = mine.groupby("n")["expected_test"].mean()
        ax.plot(line.index, line.to_numpy(), marker="o", ms=3.5, lw=2.0 if t == BASELINE else 1.3,
                ls="--" if t == BASELINE else "-", color=colour(t), label=f"{label(t)} (N = {int(reach[t])})",
                gid=treatment_gid(t), zorder=3 if t == BASELINE else 2)
    ax.axvline(int(reach.min()), color="0.5", ls=":", lw=1)
    ax.set_xlabel("budget n (draws: weights for a regulariser, seeds for ∅)")
    ax.set_ylabel("expected test accuracy of\nthe validation-best of n")
    ax.set_title(f"{title}: expected best of n\n(mean over {curves['network'].nunique()} networks)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.legend(loc="outside right upper", frameon=False)  # off the data
    return plotting.save_png(fig, path)
