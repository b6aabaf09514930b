"""The spec: one JSON file that fully describes one training run, validated when it is loaded.

A spec names a network of a zoo, a regulariser and its weight, the optimiser, the stopping rule, the seed and where
the run folder goes. Unknown fields, wrong types and out-of-range values raise `SpecError` naming the file, the field,
the value and what was expected. Nothing read from disk is evaluated. This module only validates and resolves; it
must not build models, load data or write files.

Fields (JSON object; only `network` and `regulariser` are required). Every default is the default of the `Spec` and
`Optimizer` dataclass fields below (the `corrected` profile); `profile: "paper"` replaces the quirk settings' defaults
by `PAPER_DEFAULTS` and starts `regulariser_options` from `model.regularisers.names.PAPER_OPTIONS`. Every integer is
at most 2³¹ − 1 (the int32 TensorFlow counts in), a seed below 2³²; a network name's parts are plain folder names, so
a run folder never leaves `output_root`.

| field | type, range | meaning |
|---|---|---|
| `network` | `"family/id"` | zoo network, e.g. `"digits/0"`, `"mnist/2"`, `"pgdl/task1_v4/20"` |
| `regulariser` | one of `model.regularisers.names.IDS` | `none t1 t2 l1 l2 corr decov` |
| `weight` | number ≥ 0 | ω in CE + ω·R; 0 means R is not computed |
| `sampling` | number in (0, 1] | fraction of each hidden layer's neurons kept (importance sampling); not the logits |
| `regulariser_options` | object | options of `model.regularisers.registry.make`, checked by it; updates the profile's |
| `optimizer` | object, below | SGD with momentum, optional exponential decay |
| `batch_size` | int ≥ 1 | training and validation batch size |
| `max_epochs` | int ≥ 1 | |
| `patience` | int ≥ 0 | stop after `patience + 1` consecutive epochs without strict improvement |
| `monitor` | `"val_loss"` or `"val_accuracy"` | early-stopping quantity (Q-monitor) |
| `checkpoint_every` | int ≥ 1 | save a resumable checkpoint every k epochs |
| `seed` | int ≥ 0 | seeds the per-epoch shuffle (from (seed, epoch)), dropout, every random choice (Q-no-seeds) |
| `output_root` | string | run folders go under it (relative paths: to the working directory) |
| `data_root` | string | where zoos find downloaded data (digits needs none) |
| `profile` | `model.profiles.PROFILES` | sets the defaults of the quirk settings below (and is passed to the zoo) |

`optimizer` fields: `name` (`"sgd"`), `learning_rate` (> 0), `momentum` (in [0, 1)), `nesterov` (bool),
`schedule` (`"constant"` or `"exponential_decay"`: lr · decay_rate^(step / decay_steps), floored when `staircase`),
`decay_steps` (int ≥ 1), `decay_rate` (in (0, 1]), `staircase` (bool). The configs set the original's optimisers
per dataset (Q-optimisers in docs/quirks.md).

Quirk settings (docs/quirks.md; each defaults from `profile`, and an explicit value in the file wins):

- `shuffle_buffer` (Q-shuffle-buffer): `null` (a full seeded shuffle each epoch) or an int ≥ 1 (a buffer shuffle).
- `restore_best` (Q-restore-best): `"always"` or `"only_if_stopped"` (the last weights when max_epochs is reached).
- `val_loss` (Q-val-batch-mean): `"per_example"` (the exact mean) or `"batch_mean"` (the mean of batch means).
- `reg_forward` (Q-reg-forward): `"auto"` (activations from the training forward pass, or from a separate
  inference-mode pass when the network has Dropout/BatchNorm), `"train_pass"` (always the former) or `"inference"`
  (always the separate pass).
- `reg_nonfinite` (Q-dead-neurons): `"fail"` (a non-finite regulariser gradient fails the run) or
  `"zero_per_variable"` (that variable's regulariser gradient is zeroed).
- `regulariser_options` (Q-zero-bars, Q-dead-neurons, Q-pairing): see `model.regularisers.registry.make`.

The resolved spec (`Spec.to_dict()`, every field explicit) is itself a valid spec file; the run folder keeps it as
`spec.json`.
"""
import difflib
import json
import math
import re
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path

from model.errors import SpecError
from model.profiles import PROFILES
from model.regularisers.names import IDS, PAPER_OPTIONS, check
from model.runs.overrides import merged

INT_LIMIT = 2 ** 31 - 1  # the largest count (epochs, batch size, buffer, steps) TensorFlow's int32 holds
SEED_LIMIT = 2 ** 32  # seeds are in [0, 2**32): what `keras.utils.set_random_seed` and NumPy accept
NAME_PART = re.compile(r"[A-Za-z0-9_.\-]+")  # one part of a network name (a folder of the run's path)

# The quirk settings' defaults under the `paper` profile (docs/quirks.md); the `corrected` ones are the `Spec` defaults.
PAPER_DEFAULTS = {
    "shuffle_buffer": 1000,
    "restore_best": "only_if_stopped",
    "val_loss": "batch_mean",
    "reg_forward": "inference",
    "reg_nonfinite": "zero_per_variable",
}

CHOICES = {
    "profile": PROFILES,
    "monitor": ("val_loss", "val_accuracy"),
    "restore_best": ("always", "only_if_stopped"),
    "val_loss": ("per_example", "batch_mean"),
    "reg_forward": ("auto", "train_pass", "inference"),
    "reg_nonfinite": ("fail", "zero_per_variable"),
}

OPTIMIZER_CHOICES = {"name": ("sgd",), "schedule": ("constant", "exponential_decay")}


@dataclass(frozen=True)
class Optimizer:
    """SGD with momentum and an optional exponential-decay learning-rate schedule (step = optimiser iteration)."""

    name: str = "sgd"
    learning_rate: float = 0.01
    momentum: float = 0.9
    nesterov: bool = True
    schedule: str = "constant"
    decay_steps: int = 3520
    decay_rate: float = 0.95
    staircase: bool = True


@dataclass(frozen=True)
class Spec:
    """One training run; see the module docstring for the meaning, range and default of every field."""

    network: str
    regulariser: str
    weight: float = 0.0
    sampling: float = 1.0
    regulariser_options: dict = field(default_factory=dict)
    optimizer: Optimizer = field(default_factory=Optimizer)
    batch_size: int = 256
    max_epochs: int = 1200
    patience: int = 20
    monitor: str = "val_loss"
    checkpoint_every: int = 10
    seed: int = 0
    output_root: str = "experiments"
    data_root: str = "data"
    profile: str = "corrected"
    shuffle_buffer: int | None = None
    restore_best: str = "always"
    val_loss: str = "per_example"
    reg_forward: str = "auto"
    reg_nonfinite: str = "fail"

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
        """Validate `data` (a parsed spec) and fill the defaults of its profile; `source` names it in errors."""
        if not isinstance(data, dict):
            raise SpecError(f"{source}: expected a JSON object, got {type(data).__name__}")
        known = [f.name for f in fields(cls)]
        _reject_unknown(data, known, source, "")
        for name in ("network", "regulariser"):
            if name not in data:
                raise SpecError(f"{source}: field {name!r} is required")
        defaults = {f.name: f.default for f in fields(cls) if f.default is not MISSING}
        values = {"profile": _choice(data, "profile", defaults["profile"], source)}
        if values["profile"] == "paper":
            defaults.update(PAPER_DEFAULTS)

        values["network"] = _network(data, source)
        values["regulariser"] = _regulariser_id(data, source)
        values["weight"] = _number(data, "weight", defaults["weight"], source, low=0.0)
        values["sampling"] = _number(data, "sampling", defaults["sampling"], source, low=0.0, low_open=True, high=1.0)
        values["regulariser_options"] = _regulariser_options(data, values, source)
        values["optimizer"] = _optimizer(data.get("optimizer", {}), source)
        values["batch_size"] = _integer(data, "batch_size", defaults["batch_size"], source, low=1)
        values["max_epochs"] = _integer(data, "max_epochs", defaults["max_epochs"], source, low=1)
        values["patience"] = _integer(data, "patience", defaults["patience"], source, low=0)
        values["monitor"] = _choice(data, "monitor", defaults["monitor"], source)
        values["checkpoint_every"] = _integer(data, "checkpoint_every", defaults["checkpoint_every"], source, low=1)
        values["seed"] = _integer(data, "seed", defaults["seed"], source, low=0, high=SEED_LIMIT - 1)
        values["output_root"] = _path(data, "output_root", defaults["output_root"], source)
        values["data_root"] = _path(data, "data_root", defaults["data_root"], source)
        if data.get("shuffle_buffer", defaults["shuffle_buffer"]) is None:
            values["shuffle_buffer"] = None
        else:
            values["shuffle_buffer"] = _integer(data, "shuffle_buffer", defaults["shuffle_buffer"], source, low=1)
        for name in ("restore_best", "val_loss", "reg_forward", "reg_nonfinite"):
            values[name] = _choice(data, name, defaults[name], source)
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


def _choice(data, name, default, source, choices=None, label=None):
    choices = choices or CHOICES[name]
    value = data.get(name, default)
    if value not in choices or not isinstance(value, str):
        raise SpecError(f"{source}: field {label or name!r} = {value!r}: expected one of {', '.join(choices)}")
    return value


def _regulariser_id(data: dict, source: str) -> str:
    value = data["regulariser"]
    if value not in IDS or not isinstance(value, str):
        raise SpecError(f"{source}: field 'regulariser' = {value!r}: expected one of {', '.join(IDS)}")
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
    known = [f.name for f in fields(Optimizer)]
    _reject_unknown(data, known, source, "optimizer.")
    d = Optimizer()
    label = "optimizer.{}".format
    return replace(
        d,
        name=_choice(data, "name", d.name, source, OPTIMIZER_CHOICES["name"], label("name")),
        learning_rate=_number(data, "learning_rate", d.learning_rate, source, low=0.0, low_open=True,
                              label=label("learning_rate")),
        momentum=_number(data, "momentum", d.momentum, source, low=0.0, high=1.0, high_open=True,
                         label=label("momentum")),
        nesterov=_get(data, "nesterov", d.nesterov, bool, source, label("nesterov")),
        schedule=_choice(data, "schedule", d.schedule, source, OPTIMIZER_CHOICES["schedule"], label("schedule")),
        decay_steps=_integer(data, "decay_steps", d.decay_steps, source, low=1, label=label("decay_steps")),
        decay_rate=_number(data, "decay_rate", d.decay_rate, source, low=0.0, low_open=True, high=1.0,
                           label=label("decay_rate")),
        staircase=_get(data, "staircase", d.staircase, bool, source, label("staircase")),
    )
