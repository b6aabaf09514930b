"""Finished run folders and PGDL model folders → one tidy table of NP/DGP measures (see `COLUMNS`).

One row per network × measure × layer (layer "" for network-level measures), carrying the run's identity and its
train/test accuracies so the analysis needs nothing else. Builds models through the zoo registry (runs) or the PGDL
loader (PGDL folders); computes with `model.measures.compute`; writes only the measures CSV; must not train or plot.
"""
import json
import logging
import math
import re
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from model import atomic
from model.csv_input import read_csv
from model.errors import DataError, PipelineError
from model.measures.compute import measure_model
from model.runs import run_folder
from model.zoo.catalogue import get_network
from model.zoo.pgdl import build

log = logging.getLogger(__name__)

COLUMNS = ["run_id", "measure", "value", "layer", "source", "block", "network", "regulariser", "weight", "seed",
           "train_accuracy", "test_accuracy"]
NUMERIC_COLUMNS = ("value", "weight", "seed", "train_accuracy", "test_accuracy")


def finished_runs(root: str | Path) -> list[Path]:
    """Run folders under `root` (any depth) whose DONE.json parses, sorted by path."""
    return [run for run in run_folder.run_dirs(root) if run_folder.is_done(run)]


def _done(run_dir: Path) -> dict:
    done = run_folder.read_done(run_dir)
    missing = [k for k in ("task_id", "network", "regulariser", "weight", "seed", "train_accuracy", "test_accuracy")
               if k not in (done or {})]
    if missing:
        raise DataError(f"{run_dir / run_folder.DONE}: missing key(s) {missing}")
    return done


def measure_run(run_dir: str | Path, data_root: str | Path | None = None) -> pd.DataFrame:
    """Measures of one finished run: rebuild its network from the zoo, load `best.weights.h5`, measure.

    data_root: where the zoo finds its data; default the run's own `spec.data_root` (or "data").
    """
    run_dir = Path(run_dir)
    done = _done(run_dir)
    weights = run_dir / run_folder.WEIGHTS
    if not weights.is_file():
        raise DataError(f"{weights}: missing; a finished run must hold its final weights")
    spec = done["spec"] if isinstance(done.get("spec"), dict) else {}
    root = data_root if data_root is not None else spec.get("data_root", "data")
    network = get_network(str(done["network"]), str(root), done.get("profile", spec.get("profile", "corrected")))
    model = network.build_model()
    try:
        model.load_weights(weights)
    except (ValueError, OSError) as err:
        raise DataError(f"{weights}: cannot be loaded into {done['network']}: {err}") from err
    try:
        identity = dict(run_id=done["task_id"], source="run", block=done.get("block", network.block),
                        network=done["network"], regulariser=done["regulariser"], weight=float(done["weight"]),
                        seed=int(done["seed"]), train_accuracy=float(done["train_accuracy"]),
                        test_accuracy=float(done["test_accuracy"]))
    except (TypeError, ValueError) as err:
        raise DataError(f"{run_dir / run_folder.DONE}: weight, seed or an accuracy is not a number ({err})") from None
    return _rows(identity, measure_model(model))


def pgdl_jobs(task_dir: str | Path) -> list[tuple[str, partial]]:
    """(run id `pgdl/<task>/<id>`, job measuring that model's trained `weights.hdf5`) per `model_<id>/` of a PGDL
    task folder (`<root>/input_data/<task>`), by numeric id; accuracies from `<root>/reference_data/<task>/
    model_configs.json` (`metrics.train_acc`, `metrics.test_acc`, fractions)."""
    task_dir = Path(task_dir)
    configs_path = task_dir.parent.parent / "reference_data" / task_dir.name / "model_configs.json"
    try:
        configs = json.loads(configs_path.read_text())
    except (OSError, ValueError) as err:
        raise DataError(f"{configs_path}: cannot be read ({err}); expected the task's model_configs.json with "
                        "metrics.train_acc and metrics.test_acc per model") from None
    folders = [d for d in task_dir.iterdir() if re.fullmatch(r"model_\d+", d.name) and d.is_dir()]
    if not folders:
        raise DataError(f"{task_dir}: no model_<id> folders; expected a PGDL task folder (input_data/<task>)")
    jobs = []
    for folder in sorted(folders, key=lambda d: int(d.name[6:])):
        name = f"pgdl/{task_dir.name}/{folder.name[6:]}"
        jobs.append((name, partial(measure_pgdl_model, folder, name, configs.get(folder.name[6:]), configs_path)))
    return jobs


def measure_pgdl_model(model_dir: Path, name: str, entry: dict | None, configs_path: Path) -> pd.DataFrame:
    """Measures of one PGDL model with its trained weights (`weights.hdf5`); `entry` is its model_configs.json item."""
    try:
        train, test = float(entry["metrics"]["train_acc"]), float(entry["metrics"]["test_acc"])
    except (TypeError, KeyError, ValueError):
        raise DataError(f"{configs_path}: no metrics.train_acc / metrics.test_acc for model "
                        f"{model_dir.name[6:]!r}") from None
    identity = dict(run_id=name, source="pgdl", block="pgdl", network=name, regulariser="", weight=math.nan,
                    seed=math.nan, train_accuracy=train, test_accuracy=test)
    return _rows(identity, measure_model(build(model_dir, "weights.hdf5")))


def _rows(identity: dict, measures: list[tuple[str, str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame([{**identity, "measure": m, "layer": layer, "value": v} for m, layer, v in measures])
    return frame[COLUMNS]


def update(existing: pd.DataFrame | None, runs_roots=(), pgdl_tasks=(), *, data_root=None, force: bool = False,
           ) -> tuple[pd.DataFrame, list[str]]:
    """Measure every finished run under `runs_roots` and every model of the PGDL task folders `pgdl_tasks`.

    Networks whose run id is already in `existing` are kept as they are (not recomputed) unless `force`.
    Returns (table sorted by run id, one-line errors of the networks that could not be measured).
    """
    done = set() if existing is None or force else set(existing["run_id"])
    frames = [] if existing is None or force else [existing]
    errors = []
    jobs = [(run_folder.read_done(d).get("task_id") or str(d), partial(measure_run, d, data_root))
            for root in runs_roots for d in finished_runs(root)]
    jobs += [job for task in pgdl_tasks for job in pgdl_jobs(task)]
    for run_id, job in jobs:
        if run_id in done:
            continue
        try:
            frames.append(job())
            log.info("measured %s", run_id)
        except PipelineError as err:
            errors.append(f"{run_id}: {err}")
        done.add(run_id)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    return table.sort_values(["run_id"], kind="stable").reset_index(drop=True), errors


def read(path: str | Path) -> pd.DataFrame:
    """Read a measures CSV written by `write`; DataError names the file when it is missing, empty or lacks columns,
    or when a numeric column holds text or an infinite number (an empty field is a missing value, NaN)."""
    frame = read_csv(path, COLUMNS, "measures CSV", keep_default_na=False, na_values=[""],
                     dtype={"run_id": str, "layer": str, "regulariser": str})
    for col in ("layer", "regulariser"):
        frame[col] = frame[col].fillna("")
    for col in NUMERIC_COLUMNS:
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = frame[col][(values.isna() & frame[col].notna()) | np.isinf(values)]
        if not bad.empty:
            raise DataError(f"{path}: column {col!r} holds {str(bad.iloc[0])!r} in row {int(bad.index[0]) + 2}; "
                            "expected a finite number or an empty field")
        frame[col] = values
    return frame


def write(table: pd.DataFrame, path: str | Path) -> Path:
    """Write the table as CSV atomically (floats as their shortest round-trip text)."""
    return atomic.write_text(path, table[COLUMNS].to_csv(index=False))


def update_file(path: str | Path, runs_roots=(), pgdl_tasks=(), *, data_root=None, force: bool = False,
                ) -> tuple[pd.DataFrame, list[str]]:
    """`update` the measures CSV at `path` (its rows kept, new networks measured; all of them with `force`) and
    write it back atomically; every folder of `runs_roots` and `pgdl_tasks` must exist. Returns what `update` does."""
    for folder in (*runs_roots, *pgdl_tasks):
        if not Path(folder).is_dir():
            raise PipelineError(f"{folder}: no such folder")
    existing = read(path) if Path(path).exists() else None
    measures, errors = update(existing, runs_roots, pgdl_tasks, data_root=data_root, force=force)
    write(measures, path)
    return measures, errors
