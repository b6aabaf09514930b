"""Run folders: layout, the `DONE.json` / `FAILED.json` markers (the `RUNNING.json` claim is `model.runs.claims`).

A run folder is `<output_root>/<task_id>` (see `model.runs.spec.Spec.task_id`). Finished ⇔ `DONE.json` parses as an
object with a `task_id`; nothing else (a `spec.json`, checkpoints, weights, a `FAILED.json`) means finished. This module
must not know how a run is trained.
"""
import csv
import json
from collections import deque
from datetime import UTC, datetime
from pathlib import Path

from model import atomic

DONE, FAILED, RUNNING, SPEC = "DONE.json", "FAILED.json", "RUNNING.json", "spec.json"
HISTORY, WEIGHTS, CHECKPOINTS, TENSORBOARD = "history.csv", "best.weights.h5", "checkpoints", "tensorboard"
LOG = "train.log"  # the task process's log, appended by every attempt (`model.runs.task_log`)


def now() -> str:
    """UTC time as ISO 8601 with seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_json(path: Path) -> dict | None:
    """The JSON object in `path`, or None when it is missing or does not parse as an object."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def read_done(run_dir: Path) -> dict | None:
    """The run's `DONE.json`, or None when the run is not finished: the file is missing, does not parse as an
    object, or does not say which run it records (a `task_id` string; `{}` is not a finished run)."""
    record = read_json(Path(run_dir) / DONE)
    return record if record is not None and isinstance(record.get("task_id"), str) else None


def is_done(run_dir: Path) -> bool:
    return read_done(run_dir) is not None


def run_dirs(root: Path) -> list[Path]:
    """Every run folder (`.../seed_<seed>`, finished or not) under `root`, at any depth, sorted by path."""
    return sorted(p for p in Path(root).rglob("seed_*") if p.is_dir())


def write_done(run_dir: Path, record: dict) -> None:
    """Mark the run finished (atomically, last) and drop a `FAILED.json` left by an earlier attempt."""
    atomic.write_json(Path(run_dir) / DONE, record)
    (Path(run_dir) / FAILED).unlink(missing_ok=True)


def failure_reason(error: BaseException) -> str:
    """The error's own message on one line (its type's name when it has none)."""
    return " ".join(str(error).split()) or type(error).__name__


def write_failed(run_dir: Path, error: BaseException) -> None:
    """Record why the run failed: `{"error": one line, "type", "time"}`; never a `DONE.json`. The trace goes to the
    run's `train.log`, not here."""
    record = {"error": failure_reason(error), "type": type(error).__name__, "time": now()}
    atomic.write_json(Path(run_dir) / FAILED, record)


def last_epoch(run_dir) -> dict:
    """The last row of the run's history.csv as {column: float}, or {} when there is none."""
    try:
        with open(Path(run_dir) / HISTORY, newline="", encoding="utf-8") as f:
            last = deque(csv.DictReader(f), maxlen=1)
    except (OSError, UnicodeDecodeError, csv.Error):
        return {}
    try:
        return {k: float(v) for k, v in last[0].items()} if last else {}
    except (TypeError, ValueError):
        return {}
