"""`--set KEY=VALUE` overrides of spec fields, one syntax for a single run (`run_experiment`) and a sweep
(`run_sweep`, `sweep_status`).

VALUE is read as JSON when it parses (numbers, true, null, objects), else as a string; a dotted KEY reaches into an
object (`optimizer.learning_rate=0.1`). The result is a nested dict applied with `merged`; what the fields may hold
is checked by `model.runs.spec.Spec`, not here.
"""
import copy
import json

from model.errors import SpecError


def parse(texts: list[str]) -> dict:
    """[`KEY=VALUE`, ...] → one nested dict of overrides (later texts win)."""
    overrides: dict = {}
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise SpecError(f"override {text!r}: expected KEY=VALUE, e.g. max_epochs=2 or optimizer.learning_rate=0.1")
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass
        for part in reversed(key.split(".")):
            value = {part: value}
        overrides = merged(overrides, value)
    return overrides


def merged(base: dict, overrides: dict) -> dict:
    """`base` with `overrides` applied; nested objects are merged key by key (neither argument is changed)."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
