"""The regulariser ids, their options and valid values, and their check: the vocabulary of specs.

Free of TensorFlow on purpose, so that validating a spec or expanding a sweep (a driver, `sweep_status.py`) never
imports it. What the options mean is documented in `model.regularisers.registry.make`, which builds the regularisers.
"""
from model.errors import SpecError

IDS = ("none", "t1", "t2", "l1", "l2", "corr", "decov")
ZERO_LENGTH_BARS = ("keep", "drop", "zero_loss")
DEAD_NEURONS = ("safe", "zero_grad", "exclude")
PAIRINGS = ("auto", "numpy", "tf")
KERNELS = ("auto", "fused", "tf")
DEFAULT_OPTIONS = {"zero_length_bars": "keep", "dead_neurons": "exclude", "pairing": "auto", "kernel": "auto"}
PAPER_OPTIONS = {"zero_length_bars": "zero_loss", "dead_neurons": "zero_grad"}  # the original's behaviour


def check_fraction(p) -> float:
    """Return p as a float if 0 < p ≤ 1, else raise `SpecError`."""
    try:
        p = float(p)
    except (TypeError, ValueError):
        raise SpecError(f"sampling must be a number in (0, 1], got {p!r}") from None
    if not 0.0 < p <= 1.0:
        raise SpecError(f"sampling must be in (0, 1], got {p!r}")
    return p


def check(id, sampling, options: dict) -> tuple[float, dict]:
    """Validate a regulariser id, sampling fraction and options; return (sampling, options with defaults filled).

    Unknown ids, options or option values raise `SpecError` naming the valid ones.
    """
    if id not in IDS:
        raise SpecError(f"unknown regulariser {id!r}; valid ids: {', '.join(IDS)}")
    unknown = set(options) - set(DEFAULT_OPTIONS)
    if unknown:
        raise SpecError(f"unknown regulariser option(s) {', '.join(sorted(unknown))}; "
                        f"valid options: {', '.join(DEFAULT_OPTIONS)}")
    opts = {**DEFAULT_OPTIONS, **options}
    for name, valid in (("zero_length_bars", ZERO_LENGTH_BARS), ("dead_neurons", DEAD_NEURONS),
                        ("pairing", PAIRINGS), ("kernel", KERNELS)):
        if opts[name] not in valid:
            raise SpecError(f"regulariser option {name}={opts[name]!r}; expected one of {', '.join(valid)}")
    if opts["kernel"] == "fused" and opts["pairing"] == "tf":
        raise SpecError("regulariser options kernel='fused' and pairing='tf' contradict each other: the fused kernel "
                        "pairs on the host; use pairing 'auto' or 'numpy' with it, or kernel 'tf'")
    return check_fraction(sampling), opts
