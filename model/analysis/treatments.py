"""A treatment (a regulariser id, or the baseline `none`) wherever a person reads it: its order, label and colour,
and the rule that calls one of its runs collapsed. Every table, figure and sentence takes these from here.

Order: the paper's row order (`model.regularisers.names.IDS`: none, t1, t2, l1, l2, corr, decov), unknown ids after,
by name. Labels: the paper's table labels (Unicode and LaTeX). Colours: the Okabe–Ito palette (distinguishable with
the common colour-vision deficiencies); the two persistence regularisers share a hue family (blues), the weight
penalties another (oranges), the baseline is black. Figures tag each artist drawn for a treatment with
`gid = treatment_gid(id)` so a test can check the colour of every such artist.
"""
import zlib

import pandas as pd

from model.regularisers.names import IDS

BASELINE = "none"

LABELS = {"none": "∅", "t1": "T1", "t2": "T2", "l1": "ℓ1", "l2": "ℓ2", "corr": "C", "decov": "DeCov"}
LABELS_LATEX = {"none": r"$\emptyset$", "t1": "T1", "t2": "T2", "l1": r"$\ell_1$", "l2": r"$\ell_2$",
                "corr": "C", "decov": "DeCov"}
COLOURS = {
    "none": "#000000",   # black: the baseline
    "t1": "#0072B2",     # blue
    "t2": "#56B4E9",     # sky blue
    "l1": "#D55E00",     # vermillion
    "l2": "#E69F00",     # orange
    "corr": "#009E73",   # bluish green
    "decov": "#CC79A7",  # reddish purple
}
# Unknown treatment ids (a regulariser added later) get one of these, chosen by a stable hash of the id.
_OTHER_COLOURS = ("#7F7F7F", "#8C564B", "#BCBD22", "#17BECF", "#9467BD")

COLLAPSE_FRACTION = 0.5  # a run whose test accuracy is below this fraction of its network's median is "collapsed"


def treatment_key(treatment: str) -> tuple:
    """Sort key: the paper's row order first (none, t1, t2, l1, l2, corr, decov), unknown ids after, by name."""
    return (IDS.index(treatment), "") if treatment in IDS else (len(IDS), treatment)


def colour(treatment: str) -> str:
    """Hex colour of a treatment id; the same id gets the same colour in every figure and on every run."""
    if treatment in COLOURS:
        return COLOURS[treatment]
    return _OTHER_COLOURS[zlib.crc32(treatment.encode()) % len(_OTHER_COLOURS)]


def label(treatment: str) -> str:
    """The paper's label of a treatment id (`∅`, `T1`, `ℓ1`, ...); unknown ids are shown as they are."""
    return LABELS.get(treatment, treatment)


def treatment_gid(treatment: str) -> str:
    """The matplotlib `gid` of an artist that stands for one treatment."""
    return f"treatment:{treatment}"


def collapse_threshold(test_accuracy: pd.Series, network: pd.Series) -> pd.Series:
    """Per row, COLLAPSE_FRACTION × the median test accuracy of its network's rows: below it a run is collapsed
    (a diverged or dead network, not a weak one)."""
    return COLLAPSE_FRACTION * test_accuracy.groupby(network).transform("median")


def collapsed(frame: pd.DataFrame) -> pd.Series:
    """Boolean mask of the rows of a runs frame (columns network, test_accuracy) that collapsed."""
    return frame["test_accuracy"] < collapse_threshold(frame["test_accuracy"], frame["network"])
