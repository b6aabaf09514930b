"""How a treatment looks wherever a person reads it: one colour and one label per treatment, for every figure and table.

Colours are the Okabe–Ito palette (distinguishable with the common colour-vision deficiencies); the paper's two
persistence regularisers share a hue family (blues), the weight penalties another (oranges), the baseline is black.
Labels are the paper's (`model.analysis.paper.TREATMENT_LABELS`). Figures tag each artist drawn for a treatment with
`gid = treatment_gid(id)` so a test can check the colour of every such artist. This module holds constants and
lookups only; it must not draw.
"""
import zlib

from model.analysis.paper import TREATMENT_LABELS

TREATMENT_COLOURS = {
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


def colour(treatment: str) -> str:
    """Hex colour of a treatment id; the same id gets the same colour in every figure and on every run."""
    if treatment in TREATMENT_COLOURS:
        return TREATMENT_COLOURS[treatment]
    return _OTHER_COLOURS[zlib.crc32(treatment.encode()) % len(_OTHER_COLOURS)]


def label(treatment: str) -> str:
    """The paper's label of a treatment id (`∅`, `T1`, `ℓ1`, ...); unknown ids are shown as they are."""
    return TREATMENT_LABELS.get(treatment, treatment)


def treatment_gid(treatment: str) -> str:
    """The matplotlib `gid` of an artist that stands for one treatment."""
    return f"treatment:{treatment}"
