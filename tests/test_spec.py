"""Spec validation: defaults, profiles, round trip, and one clear error per kind of bad input."""
import json
import re
from dataclasses import MISSING, fields

import pytest

from model.errors import SpecError
from model.regularisers import registry
from model.runs import spec as spec_module
from model.runs.spec import Optimizer, Spec

MINIMAL = {"network": "digits/0", "regulariser": "t1"}


def test_minimal_spec_fills_corrected_defaults():
    spec = Spec.from_dict(MINIMAL)
    assert (spec.weight, spec.sampling, spec.batch_size, spec.max_epochs, spec.patience) == (0.0, 1.0, 256, 1200, 20)
    assert (spec.profile, spec.shuffle_buffer, spec.restore_best, spec.val_loss) == (
        "corrected", None, "always", "per_example")
    assert (spec.reg_forward, spec.reg_nonfinite, spec.monitor) == ("auto", "fail", "val_loss")
    assert spec.optimizer == Optimizer() and spec.regulariser_options == {}


def test_paper_profile_switches_every_quirk_and_explicit_values_win():
    spec = Spec.from_dict({**MINIMAL, "profile": "paper"})
    assert (spec.shuffle_buffer, spec.restore_best, spec.val_loss, spec.reg_forward, spec.reg_nonfinite) == (
        1000, "only_if_stopped", "batch_mean", "inference", "zero_per_variable")
    assert spec.regulariser_options == registry.PAPER_OPTIONS
    mixed = Spec.from_dict({**MINIMAL, "profile": "paper", "shuffle_buffer": None, "restore_best": "always",
                            "regulariser_options": {"zero_length_bars": "keep"}})
    assert (mixed.shuffle_buffer, mixed.restore_best, mixed.val_loss) == (None, "always", "batch_mean")
    assert mixed.regulariser_options == {**registry.PAPER_OPTIONS, "zero_length_bars": "keep"}


@pytest.mark.parametrize("profile", ["corrected", "paper"])
def test_resolved_spec_round_trips_through_json(tmp_path, profile):
    spec = Spec.from_dict({**MINIMAL, "weight": 1e-6, "profile": profile,
                           "optimizer": {"schedule": "exponential_decay", "nesterov": False}})
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec.to_dict()))
    assert Spec.from_file(path) == spec
    assert set(spec.to_dict()) == set(Spec.__dataclass_fields__)


@pytest.mark.parametrize("weight, folder", [(0, "0.0"), (1e-6, "1e-06"), (5, "5.0"), (0.0001, "0.0001")])
def test_task_id_and_run_dir(weight, folder):
    spec = Spec.from_dict({**MINIMAL, "weight": weight, "seed": 3, "output_root": "out"})
    assert spec.task_id == f"digits/0/t1/{folder}/seed_3"
    assert str(spec.run_dir) == f"out/digits/0/t1/{folder}/seed_3"
    assert spec.block == "digits"


@pytest.mark.parametrize("change, words", [
    ({"wieght": 0.1}, ["unknown field 'wieght'", "weight"]),
    ({"weight": -0.1}, ["'weight'", "-0.1", ">= 0.0"]),
    ({"weight": "0.1"}, ["'weight'", "a number"]),
    ({"weight": float("nan")}, ["'weight'", "finite"]),
    ({"regulariser": "t3"}, ["'regulariser'", "'t3'", "t1, t2"]),
    ({"sampling": 0}, ["'sampling'", "> 0.0"]),
    ({"sampling": 1.5}, ["'sampling'", "<= 1.0"]),
    ({"batch_size": 0}, ["'batch_size'", ">= 1"]),
    ({"batch_size": 64.0}, ["'batch_size'", "an integer"]),
    ({"max_epochs": True}, ["'max_epochs'", "an integer"]),
    ({"profile": "faithful"}, ["'profile'", "corrected, paper"]),
    ({"network": "digits"}, ["'network'", "family/id"]),
    ({"shuffle_buffer": 0}, ["'shuffle_buffer'", ">= 1"]),
    ({"optimizer": {"name": "adam"}}, ["'optimizer.name'", "sgd"]),
    ({"optimizer": {"lr": 0.1}}, ["unknown field 'optimizer.lr'", "learning_rate"]),
    ({"optimizer": {"momentum": 1.0}}, ["'optimizer.momentum'", "< 1.0"]),
    ({"optimizer": "sgd"}, ["'optimizer'", "a JSON object"]),
    ({"regulariser_options": {"pairing": "gpu"}}, ["'regulariser_options'", "pairing"]),
    ({"regulariser_options": {"colour": 1}}, ["'regulariser_options'", "colour"]),
])
def test_bad_fields_give_one_line_naming_file_field_value(tmp_path, change, words):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({**MINIMAL, **change}))
    with pytest.raises(SpecError) as err:
        Spec.from_file(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(path))
    for word in words:
        assert word in message


def test_missing_required_field_and_non_object():
    with pytest.raises(SpecError, match="'regulariser' is required"):
        Spec.from_dict({"network": "digits/0"}, source="x.json")
    with pytest.raises(SpecError, match="expected a JSON object, got list"):
        Spec.from_dict([MINIMAL], source="x.json")


def test_non_json_and_missing_file(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text("{'network': 'digits/0'}")
    with pytest.raises(SpecError, match=r"spec.json: not valid JSON \(line 1"):
        Spec.from_file(path)
    with pytest.raises(SpecError, match="cannot read"):
        Spec.from_file(tmp_path / "absent.json")


def test_replace_validates_again():
    spec = Spec.from_dict(MINIMAL)
    assert spec.replace(weight=0.5).weight == 0.5
    with pytest.raises(SpecError, match="'weight'"):
        spec.replace(weight=-1)


def test_validating_specs_and_sweeps_does_not_import_tensorflow():
    """Drivers and sweep_status.py stay light: the spec's vocabulary lives in model.regularisers.names."""
    import subprocess
    import sys

    code = ("import sys, model.runs.spec, model.sweeps.grid; "
            "model.runs.spec.Spec.from_dict({'network': 'digits/0', 'regulariser': 't1', 'weight': 0.1}, 'x.json'); "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_docs_list_every_declared_field_with_its_defaults():
    """docs/architecture.md's spec list is `fields_summary()` (whitespace aside): a field added, removed or given
    another default in `Spec`/`Optimizer` without the doc fails here."""
    from conftest import REPO

    text = " ".join((REPO / "docs" / "architecture.md").read_text().split())
    assert " ".join(spec_module.fields_summary().split()) in text
    assert spec_module.fields_table() in spec_module.__doc__


def declared(cls):
    return [(cls, f) for f in fields(cls)]


@pytest.mark.parametrize("cls, f", declared(Spec) + declared(Optimizer), ids=lambda x: getattr(x, "name", ""))
def test_validation_follows_each_declaration(cls, f):
    """Every declared bound and choice is enforced, with the field's name in the message; the defaults validate."""
    m, prefix = f.metadata, "optimizer." if cls is Optimizer else ""
    assert m["doc"] and m["kind"] in spec_module.KINDS

    def spec_with(value):
        return {**MINIMAL, "optimizer": {f.name: value}} if cls is Optimizer else {**MINIMAL, f.name: value}

    bad = []
    if m["kind"] in ("number", "integer"):
        step = 1 if m["kind"] == "integer" else 1e-9
        if m["low"] is not None:
            bad.append(m["low"] if m["low_open"] else m["low"] - step)
        high = spec_module.INT_LIMIT if m["high"] is None and m["kind"] == "integer" else m["high"]
        if high is not None:
            bad.append(high if m["high_open"] else high + step)
        bad.append("x")  # the wrong type
    elif m["kind"] == "choice":
        bad.append("not-a-choice")
    elif m["kind"] == "bool":
        bad.append("yes")
    for value in bad:
        with pytest.raises(SpecError, match=re.escape(f"'{prefix}{f.name}'")):
            Spec.from_dict(spec_with(value))
    if f.default is not MISSING:
        Spec.from_dict(spec_with(f.default))
    if "paper" in m:
        assert getattr(Spec.from_dict({**MINIMAL, "profile": "paper"}), f.name) == m["paper"]
        assert getattr(Spec.from_dict(MINIMAL), f.name) == f.default
