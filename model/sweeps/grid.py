"""Sweep file → tasks: one resolved spec per (network, regulariser, weight, seed), with a stable id.

A sweep is a JSON file holding a base spec and a grid (a list of blocks):

    {"description": "...", "expect_tasks": 153,
     "base": {<spec fields shared by every task>},
     "grid": [{"networks": ["mnist/0", ...], "seeds": [0], "set": {<spec fields for this block>},
               "cells": [{"regulariser": "none", "weights": [0.0]},
                         {"regulariser": "t1", "weights": [1e-06, ...], "set": {<fields for this cell>}}]}]}

Precedence, lowest first: `base`, then the block's `set`, then the cell's `set` (each replaces whole top-level
fields; neither may set `output_root`: a sweep has one), then the command line's `--set` overrides
(`model.runs.overrides`; they win everywhere, merged key by key into objects: `--set optimizer.learning_rate=0.1`
keeps the other optimizer fields),
then network/regulariser/weight/seed from the grid. `overridden` lists the block and cell `set`s an override
replaced, so a driver can say so. `expand` validates each task's spec with `model.runs.spec` and gives its id, the run
folder's path relative to the output root. Order is the file's order (blocks, networks, cells, weights, seeds);
expansion is deterministic and writes nothing.
`subset` keeps the tasks whose network, regulariser, weight and seed are among chosen values (`parse_subset` reads
them from `KEY=V1,V2`s): a few tasks of a sweep, to try it before launching it whole.
`write_specs` writes each task's spec into its run folder as `spec.json`, the file `python -m model.runs.execute`
runs, so any single task can be rerun by hand. This module decides nothing about scheduling or completion.
"""
import copy
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from model import atomic
from model.errors import DataError, SpecError
from model.runs import run_folder
from model.runs.overrides import merged as _merged
from model.runs.spec import Spec, did_you_mean

SWEEP_KEYS = {"description", "expect_tasks", "base", "grid"}
BLOCK_KEYS = {"networks", "seeds", "cells", "set"}
CELL_KEYS = {"regulariser", "weights", "set"}
GRID_FIELDS = ("network", "regulariser", "weight", "seed")  # set by the grid, never by `base` or `set`
SUBSET_KEYS = {"network": str, "regulariser": str, "weight": float, "seed": int}  # what `subset` chooses by
BASE_ONLY = ("output_root",)  # one per sweep (its results are collected from there): `base` or overrides only


@dataclass(frozen=True)
class Task:
    """One task of a sweep.

    task_id: the run folder relative to the output root, e.g. `digits/0/t1/0.01/seed_0`.
    spec: the resolved spec (a `model.runs.spec.Spec`); `spec.to_dict()` is what `spec.json` holds.
    run_dir: the run folder (as the spec resolves it: relative paths stay relative to the working directory).
    """

    task_id: str
    spec: Spec
    run_dir: Path

    @property
    def cell(self) -> str:
        """The grid cell `regulariser/weight` (what `sweep_status.py` groups by)."""
        return f"{self.spec.regulariser}/{float(self.spec.weight)!r}"

    @property
    def spec_path(self) -> Path:
        """Where `write_specs` puts this task's spec: `<run_dir>/spec.json`."""
        return self.run_dir / run_folder.SPEC


def read(path: str | Path) -> dict:
    """The sweep file's JSON; a missing or unreadable file raises `SpecError` naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"{path}: sweep file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SpecError(f"{path}: not a readable JSON sweep file ({err})") from None


def load(path: str | Path, overrides: dict | None = None) -> list[Task]:
    """Read a sweep file and expand it (`expand`); a bad file raises `SpecError` naming it and the field.

    overrides: spec fields that win over the file's base, block and cell ones (`model.runs.overrides.parse` builds
    them from `KEY=VALUE`s).
    """
    return expand(read(path), source=str(path), overrides=overrides)


def overridden(sweep: dict, overrides: dict) -> list[str]:
    """One line per block or cell `set` field that `overrides` replace, e.g.
    `grid[0].cells[1] (t1): sampling 0.005 -> 0.5`, in file order; [] when none (or the sweep is malformed:
    `expand` reports that)."""
    lines = []
    if not overrides or not isinstance(sweep, dict) or not isinstance(sweep.get("grid"), list):
        return lines
    for b, block in enumerate(sweep["grid"]):
        if not isinstance(block, dict):
            continue
        lines += _replaced(block.get("set"), overrides, f"grid[{b}]")
        for c, cell in enumerate(block.get("cells") or []):
            if isinstance(cell, dict):
                lines += _replaced(cell.get("set"), overrides, f"grid[{b}].cells[{c}] ({cell.get('regulariser')})")
    return lines


def _replaced(fields, overrides: dict, where: str, prefix: str = "") -> list[str]:
    if not isinstance(fields, dict):
        return []
    lines = []
    for key, value in overrides.items():
        if key not in fields:
            continue
        if isinstance(value, dict) and isinstance(fields[key], dict):
            lines += _replaced(fields[key], value, where, f"{prefix}{key}.")
        elif fields[key] != value:
            lines.append(f"{where}: {prefix}{key} {json.dumps(fields[key])} -> {json.dumps(value)}")
    return lines


def expand(sweep: dict, source: str = "<sweep>", overrides: dict | None = None) -> list[Task]:
    """Expand a sweep dict into its tasks, in file order; duplicate task ids or a wrong `expect_tasks` are errors.

    overrides: spec fields applied last (after base, block and cell `set`), merged key by key into objects.
    """
    _check_keys(sweep, SWEEP_KEYS, source, required={"base", "grid"})
    base = _mapping(sweep["base"], f"{source}: base")
    for field in GRID_FIELDS:
        if field in base:
            raise SpecError(f"{source}: base.{field}: set by the grid, not by the base spec")
    overrides = overrides or {}
    known = [f.name for f in dataclasses.fields(Spec)]
    for field in overrides:
        if field in GRID_FIELDS:
            raise SpecError(f"--set {field}: set by the grid, not by an override")
        if field not in known:
            raise SpecError(f"--set {field}: unknown spec field{did_you_mean(field, known)}; "
                            f"expected one of {', '.join(known)}")
    blocks = _list(sweep["grid"], f"{source}: grid")
    tasks, seen = [], {}
    for b, block in enumerate(blocks):
        where = f"{source}: grid[{b}]"
        _check_keys(block, BLOCK_KEYS, where, required={"networks", "cells"})
        block_set = _overrides(block.get("set", {}), f"{where}.set")
        networks = _list(block["networks"], f"{where}.networks")
        seeds = _list(block.get("seeds", [0]), f"{where}.seeds")
        cells = []
        for c, cell in enumerate(_list(block["cells"], f"{where}.cells")):
            cwhere = f"{where}.cells[{c}]"
            _check_keys(cell, CELL_KEYS, cwhere, required={"regulariser", "weights"})
            cells.append((cwhere, cell, _overrides(cell.get("set", {}), f"{cwhere}.set"),
                          _list(cell["weights"], f"{cwhere}.weights")))
        for network in networks:
            for cwhere, cell, cell_set, weights in cells:
                for weight in weights:
                    for seed in seeds:
                        raw = _merged({**copy.deepcopy(base), **block_set, **cell_set}, overrides)
                        raw.update(network=network, regulariser=cell["regulariser"], weight=weight, seed=seed)
                        spec = Spec.from_dict(raw, source=f"{cwhere} (network {network!r}, weight {weight!r}, "
                                                          f"seed {seed!r})")
                        if spec.task_id in seen:
                            raise SpecError(f"{cwhere}: task {spec.task_id} is already produced by "
                                            f"{seen[spec.task_id]}")
                        seen[spec.task_id] = cwhere.removeprefix(f"{source}: ")
                        tasks.append(Task(spec.task_id, spec, spec.run_dir))
    expected = sweep.get("expect_tasks")
    if expected is not None and expected != len(tasks):
        raise SpecError(f"{source}: expect_tasks is {expected!r} but the grid expands to {len(tasks)} tasks")
    return tasks


def parse_subset(texts: list[str]) -> dict[str, list]:
    """[`KEY=V1,V2`, ...] → {key: [values]} for `subset`; KEY is network, regulariser, weight or seed (weights and
    seeds are numbers); a repeated KEY adds values. Bad text raises `SpecError` naming it."""
    chosen: dict[str, list] = {}
    for text in texts:
        key, sep, values = text.partition("=")
        if key not in SUBSET_KEYS or not sep or not values.strip(","):
            raise SpecError(f"--only {text!r}: expected KEY=V1,V2,... with KEY one of {', '.join(SUBSET_KEYS)}, "
                            "e.g. network=mnist/0 or weight=0.0,0.01")
        for value in filter(None, (v.strip() for v in values.split(","))):
            try:
                chosen.setdefault(key, []).append(SUBSET_KEYS[key](value))
            except ValueError:
                raise SpecError(f"--only {text!r}: {value!r} is not a {key} (expected a number)") from None
    return chosen


def subset(tasks: list[Task], chosen: dict[str, list]) -> tuple[list[Task], list[str]]:
    """The tasks whose network, regulariser, weight and seed are each among `chosen`'s values for that key (a key
    not in `chosen`: any value), in order; and one line per chosen value that matches no task of `tasks` (a typo, or
    a value of another sweep: a Makefile passes the same choice to the MNIST and the PGDL sweep)."""
    def value(task: Task, key: str):
        return SUBSET_KEYS[key](getattr(task.spec, key))

    kept = [t for t in tasks if all(value(t, key) in values for key, values in chosen.items())]
    unmatched = [f"--only {key}={v}: matches no task of this sweep" for key, values in chosen.items()
                 for v in values if all(value(t, key) != v for t in tasks)]
    return kept, unmatched


def write_specs(tasks: list[Task]) -> None:
    """Write each task's spec to `<run_dir>/spec.json` unless an equal one is there, atomically and with one sync
    for all (`model.atomic.write_many`: one fsync per file took 93.5 s for 10,000 specs, benchmarks/README.md).

    Every run folder is checked to lie inside its output root (`model.runs.run_folder.check_inside_root`) and every
    held spec.json compared before the first write. A run folder that already holds a different spec raises
    `SpecError` naming it, and nothing is written: the sweep changed under finished or partial runs, which are never
    overwritten (use another `output_root`, or remove that folder). A folder that cannot be written (read only,
    full, a file in the way) raises `DataError` naming it.
    """
    for task in tasks:
        run_folder.check_inside_root(task.run_dir, task.spec.output_root)
    wanted = {}
    for task in tasks:
        spec = task.spec.to_dict()
        if not _holds(task, spec):
            wanted[task.spec_path] = atomic.json_bytes(spec)
    try:
        atomic.write_many(wanted)
    except OSError as err:
        raise DataError(f"{err.filename}: cannot write the task's spec ({err.strerror or err}); expected a writable "
                        "folder for the sweep's output_root") from None


def _holds(task: Task, wanted: dict) -> bool:
    """Whether the run folder holds `wanted` as its spec.json already (False: none there); `SpecError` when it holds
    anything else."""
    try:
        held = json.loads(task.spec_path.read_bytes())
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        held = None
    if held == wanted:
        return True
    raise SpecError(f"{task.spec_path}: holds a different spec than the sweep's task {task.task_id} "
                    f"(the sweep or a default changed); use another output_root or remove that run folder")


def _check_keys(obj, allowed: set, where: str, required: set) -> None:
    if not isinstance(obj, dict):
        raise SpecError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise SpecError(f"{where}: unknown field {unknown[0]!r}{did_you_mean(unknown[0], sorted(allowed))}; "
                        f"expected one of {sorted(allowed)}")
    missing = sorted(required - set(obj))
    if missing:
        raise SpecError(f"{where}: missing field {missing[0]!r}")


def _mapping(obj, where: str) -> dict:
    if not isinstance(obj, dict):
        raise SpecError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    return obj


def _overrides(obj, where: str) -> dict:
    obj = _mapping(obj, where)
    for field in GRID_FIELDS:
        if field in obj:
            raise SpecError(f"{where}.{field}: set by the grid, not by `set`")
    for field in BASE_ONLY:
        if field in obj:
            raise SpecError(f"{where}.{field}: a sweep has one {field}; set it in `base` (or override it), "
                            "not per block or cell")
    return copy.deepcopy(obj)


def _list(obj, where: str) -> list:
    if not isinstance(obj, list) or not obj:
        raise SpecError(f"{where}: expected a non-empty JSON list, got {obj!r}")
    return obj
