"""The spec: one JSON file that fully describes one training run, validated when it is loaded.

A spec names a network of a zoo, a regulariser and its weight, the optimiser, the stopping rule, the seed and where
the run folder goes. Unknown fields, wrong types and out-of-range values raise `SpecError` naming the file, the field,
the value and what was expected. Nothing read from disk is evaluated. This module only validates and resolves; it
must not build models, load data or write files.

Each field is declared once, in the `Spec` and `Optimizer` dataclasses below (`declare`): type, default (the
`corrected` profile's), bounds or choices, its default under `profile: "paper"` where that differs (the quirk
settings, docs/quirks.md; `PAPER_DEFAULTS` collects them) and its meaning. Validation reads the declarations, and so
do the tables below, appended to this docstring at import (`fields_table`; `python -m model.runs.spec` prints them)
and docs/architecture.md's list (`fields_summary`, checked by tests/test_spec.py). Only `network` and `regulariser`
are required; an explicit value in the file wins over either profile's default; `regulariser_options` starts, under
`paper`, from `model.regularisers.names.PAPER_OPTIONS`. Every integer is at most 2³¹ − 1 (the int32 TensorFlow counts
in), a seed below 2³²; a network name's parts are plain folder names, so a run folder never leaves `output_root`.
The quirk codes (Q-...) are explained in docs/quirks.md.

The resolved spec (`Spec.to_dict()`, every field explicit) is itself a valid spec file; the run folder keeps it as
`spec.json`.

Fields (default: `corrected` / `paper`):
"""
import difflib
import json
import math
import re
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from model.errors import SpecError
from model.profiles import PROFILES
from model.regularisers.names import IDS, PAPER_OPTIONS, check
from model.runs.overrides import merged

INT_LIMIT = 2 ** 31 - 1  # the largest count (epochs, batch size, buffer, steps) TensorFlow's int32 holds
SEED_LIMIT = 2 ** 32  # seeds are in [0, 2**32): what `keras.utils.set_random_seed` and NumPy accept
NAME_PART = re.compile(r"[A-Za-z0-9_.\-]+")  # one part of a network name (a folder of the run's path)
KINDS = ("network", "choice", "number", "integer", "bool", "path", "options", "optimizer")


def declare(default=MISSING, *, kind: str, doc: str, low=None, high=None, low_open: bool = False,
            high_open: bool = False, choices: tuple = (), null: bool = False, paper=MISSING, factory=None):
    """A spec field, declared once: its default (the `corrected` profile's), `kind` (one of `KINDS`: how it is
    validated), bounds (`low`/`high`, open or closed; integers are at most `INT_LIMIT` unless `high` says less),
    `choices`, whether JSON `null` is valid (`null`), its default under the `paper` profile (`paper`) and its
    meaning (`doc`). Validation (`Spec.from_dict`), the module docstring's table (`fields_table`) and
    docs/architecture.md's list (`fields_summary`) read these; tests/test_spec.py checks the two texts."""
    assert kind in KINDS, kind
    meta = {"kind": kind, "doc": doc, "low": low, "high": high, "low_open": low_open, "high_open": high_open,
            "choices": tuple(choices), "null": null}
    if paper is not MISSING:
        meta["paper"] = paper
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Optimizer:
    """SGD with momentum and an optional exponential-decay learning-rate schedule (step = optimiser iteration)."""

    name: str = declare("sgd", kind="choice", choices=("sgd",), doc="the optimiser")
    learning_rate: float = declare(0.01, kind="number", low=0.0, low_open=True, doc="(initial) learning rate")
    momentum: float = declare(0.9, kind="number", low=0.0, high=1.0, high_open=True, doc="SGD momentum")
    nesterov: bool = declare(True, kind="bool", doc="Nesterov momentum")
    schedule: str = declare("constant", kind="choice", choices=("constant", "exponential_decay"),
                            doc="`exponential_decay`: lr · decay_rate^(step / decay_steps), floored when `staircase`")
    decay_steps: int = declare(3520, kind="integer", low=1, doc="optimiser steps per decay")
    decay_rate: float = declare(0.95, kind="number", low=0.0, low_open=True, high=1.0, doc="factor per decay")
    staircase: bool = declare(True, kind="bool", doc="decay in steps (floor of step / decay_steps)")


@dataclass(frozen=True)
class Spec:
    """One training run; each field's type, range, default and meaning are declared with it (`declare`)."""

    network: str = declare(kind="network", doc="zoo network, e.g. `\"digits/0\"`, `\"mnist/2\"`, "
                                               "`\"pgdl/task1_v4/20\"`; required")
    regulariser: str = declare(kind="choice", choices=IDS, doc="regulariser id (`model.regularisers.names.IDS`); "
                                                               "required")
    weight: float = declare(0.0, kind="number", low=0.0, doc="ω in CE + ω·R; 0 means R is not computed")
    sampling: float = declare(1.0, kind="number", low=0.0, low_open=True, high=1.0,
                              doc="fraction of each hidden layer's neurons kept (importance sampling); not the logits")
    regulariser_options: dict = declare(kind="options", factory=dict,
                                        doc="options of `model.regularisers.registry.make`, checked by "
                                            "`model.regularisers.names.check`; they update the profile's (paper: "
                                            "`PAPER_OPTIONS`; Q-zero-bars, Q-dead-neurons, Q-pairing)")
    optimizer: Optimizer = declare(kind="optimizer", factory=Optimizer,
                                   doc="SGD with momentum, optional exponential decay (fields below; Q-optimisers)")
    batch_size: int = declare(256, kind="integer", low=1, doc="training and validation batch size")
    max_epochs: int = declare(1200, kind="integer", low=1, doc="at most this many epochs")
    patience: int = declare(20, kind="integer", low=0,
                            doc="stop after `patience + 1` consecutive epochs without strict improvement")
    monitor: str = declare("val_loss", kind="choice", choices=("val_loss", "val_accuracy"),
                           doc="early-stopping quantity (Q-monitor)")
    checkpoint_every: int = declare(10, kind="integer", low=1, doc="save a resumable checkpoint every k epochs")
    seed: int = declare(0, kind="integer", low=0, high=SEED_LIMIT - 1,
                        doc="seeds the per-epoch shuffle (from (seed, epoch)), dropout, every random choice "
                            "(Q-no-seeds)")
    output_root: str = declare("experiments", kind="path",
                               doc="run folders go under it (relative paths: to the working directory)")
    data_root: str = declare("data", kind="path", doc="where zoos find downloaded data (digits needs none)")
    profile: str = declare("corrected", kind="choice", choices=PROFILES,
                           doc="sets the defaults of the quirk settings (the fields with a paper default) and is "
                               "passed to the zoo")
    shuffle_buffer: int | None = declare(None, kind="integer", low=1, null=True, paper=1000,
                                         doc="Q-shuffle-buffer: `null` a full seeded shuffle each epoch, an int a "
                                             "buffer shuffle")
    restore_best: str = declare("always", kind="choice", choices=("always", "only_if_stopped"),
                                paper="only_if_stopped",
                                doc="Q-restore-best: `only_if_stopped` keeps the last weights when max_epochs is "
                                    "reached")
    val_loss: str = declare("per_example", kind="choice", choices=("per_example", "batch_mean"),
                            paper="batch_mean",
                            doc="Q-val-batch-mean: the exact mean, or the mean of batch means")
    reg_forward: str = declare("auto", kind="choice", choices=("auto", "train_pass", "inference"),
                               paper="inference",
                               doc="Q-reg-forward: the regulariser's activations from the training forward pass "
                                   "(`train_pass`), a separate inference-mode pass (`inference`), or `auto`: the "
                                   "latter only when the network has Dropout/BatchNorm")
    reg_nonfinite: str = declare("fail", kind="choice", choices=("fail", "zero_per_variable"),
                                 paper="zero_per_variable",
                                 doc="Q-dead-neurons: a non-finite regulariser gradient fails the run, or that "
                                     "variable's regulariser gradient is zeroed")

    @classmethod
    def from_file(cls, path: str | Path, overrides: dict | None = None) -> "Spec":
        """Read and validate a spec file, with `overrides` (`model.runs.overrides.parse`) applied over its fields;
        any problem raises `SpecError` naming the file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise SpecError(f"{path}: cannot read the spec file ({err.strerror or err})") from None
        except UnicodeDecodeError as err:
            raise SpecError(f"{path}: byte {err.start} is not UTF-8; expected a UTF-8 JSON spec file") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise SpecError(f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})") from None
        if overrides:
            if not isinstance(data, dict):
                raise SpecError(f"{path}: expected a JSON object, got {type(data).__name__}")
            return cls.from_dict(merged(data, overrides), source=f"{path} with --set")
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: dict, source: str = "<spec>") -> "Spec":
        """Validate `data` (a parsed spec) field by field, as declared, in declaration order after `profile`
        (which chooses the defaults: the `paper` ones where declared); `source` names it in errors."""
        if not isinstance(data, dict):
            raise SpecError(f"{source}: expected a JSON object, got {type(data).__name__}")
        _reject_unknown(data, [f.name for f in fields(cls)], source, "")
        for f in fields(cls):
            if required(f) and f.name not in data:
                raise SpecError(f"{source}: field {f.name!r} is required")
        declared = {f.name: f for f in fields(cls)}
        values = {"profile": _value(data, declared["profile"], source)}
        for f in fields(cls):
            if f.name != "profile":
                values[f.name] = _value(data, f, source, profile=values["profile"], values=values)
        return cls(**values)

    def to_dict(self) -> dict:
        """Every field explicit, JSON-ready; `Spec.from_dict(spec.to_dict()) == spec`."""
        return asdict(self)

    def replace(self, **changes) -> "Spec":
        """A copy with some fields changed, validated again."""
        return Spec.from_dict({**self.to_dict(), **changes}, source="<spec>")

    @property
    def block(self) -> str:
        """The network's family (`digits`, `mnist`, `pgdl`): statistics are per block."""
        return self.network.split("/", 1)[0]

    @property
    def task_id(self) -> str:
        """`<network>/<regulariser>/<repr(float(weight))>/seed_<seed>`, the run folder relative to output_root."""
        return f"{self.network}/{self.regulariser}/{float(self.weight)!r}/seed_{self.seed}"

    @property
    def run_dir(self) -> Path:
        """The run folder: `<output_root>/<task_id>`."""
        return Path(self.output_root) / self.task_id


# The quirk settings' defaults under the `paper` profile (docs/quirks.md), from their declarations.
PAPER_DEFAULTS = {f.name: f.metadata["paper"] for f in fields(Spec) if "paper" in f.metadata}


def required(f) -> bool:
    """Field `f` has no default: a spec must give it."""
    return f.default is MISSING and f.default_factory is MISSING


def default(f, profile: str = "corrected"):
    """Field `f`'s default under `profile`."""
    if profile == "paper" and "paper" in f.metadata:
        return f.metadata["paper"]
    return f.default_factory() if f.default is MISSING else f.default


def _value(data: dict, f, source: str, prefix: str = "", profile: str = "corrected", values: dict | None = None):
    """Field `f` of `data` (its `profile` default when absent), checked as declared; `SpecError` naming
    `prefix + name`. `values`: the fields validated so far (`regulariser_options` needs the id and the sampling)."""
    m, name, label = f.metadata, f.name, prefix + f.name
    fallback = MISSING if required(f) else default(f, profile)
    kind = m["kind"]
    if m["null"] and data.get(name, fallback) is None:
        return None
    if kind == "number":
        return _number(data, name, fallback, source, m["low"], m["high"], m["low_open"], m["high_open"], label)
    if kind == "integer":
        return _integer(data, name, fallback, source, low=m["low"], label=label, high=m["high"] or INT_LIMIT)
    if kind == "choice":
        return _choice(data, name, fallback, source, m["choices"], label)
    if kind == "bool":
        return _get(data, name, fallback, bool, source, label)
    if kind == "path":
        return _path(data, name, fallback, source)
    if kind == "network":
        return _network(data, source)
    if kind == "options":
        return _regulariser_options(data, values, source)
    return _optimizer(data.get(name, {}), source)


def describe(f) -> str:
    """Field `f`'s type and range as the docstring's table says it, from its declaration."""
    m = f.metadata
    if m["kind"] in ("number", "integer"):
        low, high = m["low"], m["high"]
        show = "{:g}".format if m["kind"] == "number" else str
        if low is not None and high is not None:
            text = f"in {'(' if m['low_open'] else '['}{show(low)}, {show(high)}{')' if m['high_open'] else ']'}"
        elif low is not None:
            text = f"{'>' if m['low_open'] else '≥'} {show(low)}"
        else:
            text = ""
        text = f"{'number' if m['kind'] == 'number' else 'int'} {text}".strip()
        return f"{text} or `null`" if m["null"] else text
    if m["kind"] == "choice":
        return ", ".join(f"`{json.dumps(c)}`" for c in m["choices"])
    return {"bool": "bool", "path": "string", "network": '`"family/id"`', "options": "object",
            "optimizer": "object"}[m["kind"]]


def _shown(value) -> str:
    return f"`{json.dumps(value)}`"


def fields_table(cls=None) -> str:
    """The Markdown table of `cls`'s fields (default: `Spec`) that the module docstring holds: field, type and
    range, default (`corrected` / `paper` where they differ), meaning."""
    cls = cls or Spec
    lines = ["| field | type, range | default | meaning |", "|---|---|---|---|"]
    for f in fields(cls):
        if required(f) or f.metadata["kind"] == "optimizer":
            shown = "" if required(f) else "below"
        else:
            shown = _shown(default(f)) + (f" / {_shown(f.metadata['paper'])}" if "paper" in f.metadata else "")
        lines.append(f"| `{f.name}` | {describe(f)} | {shown} | {f.metadata['doc']} |")
    return "\n".join(lines)


def fields_summary() -> str:
    """docs/architecture.md's one-paragraph list of the spec fields: each with its `corrected` default (and its
    `paper` one, after a slash, where declared)."""
    parts = []
    for cls, prefix in ((Spec, ""), (Optimizer, "optimizer.")):
        for f in fields(cls):
            if required(f):
                parts.append(f"`{prefix}{f.name}` (required)")
            elif f.metadata["kind"] != "optimizer":
                paper = f" / {_shown(f.metadata['paper'])}" if "paper" in f.metadata else ""
                parts.append(f"`{prefix}{f.name}` ({_shown(default(f))}{paper})")
    return ", ".join(parts) + "."


def _reject_unknown(data: dict, known: list[str], source: str, prefix: str) -> None:
    for key in data:
        if key not in known:
            raise SpecError(f"{source}: unknown field {prefix + key!r}{did_you_mean(key, known, prefix)}; "
                            f"expected one of {', '.join(known)}")


def did_you_mean(name: str, known, prefix: str = "") -> str:
    """`; did you mean 'max_epochs'?` for the known name closest to `name` (difflib), or '' when none is close."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {prefix + close[0]!r}?" if close else ""


def _get(data: dict, name: str, default, kind, source: str, label: str | None = None):
    value = data.get(name, default)
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        expected = {float: "a number", int: "an integer", str: "a string", bool: "true or false",
                    dict: "a JSON object"}[kind]
        raise SpecError(f"{source}: field {label or name!r} = {value!r}: expected {expected}")
    return value


def _number(data, name, default, source, low=None, high=None, low_open=False, high_open=False, label=None):
    value = float(_get(data, name, default, float, source, label)) + 0.0  # + 0.0: -0.0 becomes 0.0 (one task id)
    bad = not math.isfinite(value)
    bad |= low is not None and (value <= low if low_open else value < low)
    bad |= high is not None and (value >= high if high_open else value > high)
    if bad:
        lo = "" if low is None else ("> " if low_open else ">= ") + str(low)
        hi = "" if high is None else ("< " if high_open else "<= ") + str(high)
        raise SpecError(f"{source}: field {label or name!r} = {value!r}: expected a finite number "
                        + " and ".join(p for p in (lo, hi) if p))
    return value


def _integer(data, name, default, source, low=None, label=None, high=INT_LIMIT):
    """An integer field in [low, high]: counts reach TensorFlow as int32, so none may exceed `INT_LIMIT`."""
    value = _get(data, name, default, int, source, label)
    if (low is not None and value < low) or value > high:
        bounds = ([] if low is None else [f">= {low}"]) + [f"<= {high}"]
        raise SpecError(f"{source}: field {label or name!r} = {value!r}: expected an integer {' and '.join(bounds)}")
    return value


def _network(data: dict, source: str) -> str:
    """`family/id[/...]`: every part a plain folder name, so the run folder stays under `output_root`."""
    network = _get(data, "network", None, str, source)
    parts = network.split("/")
    if len(parts) < 2 or any(p in ("", ".", "..") or not NAME_PART.fullmatch(p) for p in parts):
        raise SpecError(f"{source}: field 'network' = {network!r}: expected 'family/id', e.g. 'digits/0', each part "
                        "made of letters, digits, '_', '-', '.' and not '.' or '..'")
    return network


def _path(data, name, default, source):
    value = _get(data, name, default, str, source)
    if not value or "\0" in value:
        raise SpecError(f"{source}: field {name!r} = {value!r}: expected a non-empty path without NUL characters")
    return value


def _choice(data, name, default, source, choices, label=None):
    value = data.get(name, default)
    if value not in choices or not isinstance(value, str):
        raise SpecError(f"{source}: field {label or name!r} = {value!r}: expected one of {', '.join(choices)}")
    return value


def _regulariser_options(data: dict, values: dict, source: str) -> dict:
    """The profile's regulariser options (paper: `PAPER_OPTIONS`) updated by the file's, checked by
    `model.regularisers.names.check` (no TensorFlow import)."""
    given = _get(data, "regulariser_options", {}, dict, source)
    options = {**(PAPER_OPTIONS if values["profile"] == "paper" else {}), **given}
    try:
        check(values["regulariser"], values["sampling"], options)
    except SpecError as err:
        raise SpecError(f"{source}: field 'regulariser_options' = {given!r}: {err}") from None
    return options


def _optimizer(data, source: str) -> Optimizer:
    if isinstance(data, Optimizer):
        return data
    if not isinstance(data, dict):
        raise SpecError(f"{source}: field 'optimizer' = {data!r}: expected a JSON object")
    _reject_unknown(data, [f.name for f in fields(Optimizer)], source, "optimizer.")
    return Optimizer(**{f.name: _value(data, f, source, "optimizer.") for f in fields(Optimizer)})


if __doc__:  # None under python -OO
    __doc__ += f"\n{fields_table()}\n\n`optimizer` fields:\n\n{fields_table(Optimizer)}\n"

if __name__ == "__main__":
    print(__doc__)
