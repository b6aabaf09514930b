"""Run folders: layout, the `DONE.json` / `FAILED.json` markers (the `RUNNING.json` claim is `model.runs.claims`).

A run folder is `<output_root>/<task_id>` (see `model.runs.spec.Spec.task_id`). Finished ⇔ `DONE.json` parses as an
object with a `task_id`; nothing else (a `spec.json`, checkpoints, weights, a `FAILED.json`) means finished. This module
must not know how a run is trained.

Files other processes write are read without error whatever they hold (`read_regular`, `read_json`): only a regular
file is read (a directory, a symlink or a fifo named like a run-state file reads as absent, and a fifo never blocks
the reader), and a writer refuses such a run folder in one line (`check_state_files`). Every command that writes a
run folder first checks that it lies inside its output root (`check_inside_root`): one rule for sweeps and single
runs.
"""
import csv
import io
import json
import math
import os
import stat
from collections import deque
from datetime import UTC, datetime
from pathlib import Path

from model import atomic
from model.errors import DataError, SpecError

DONE, FAILED, RUNNING, SPEC = "DONE.json", "FAILED.json", "RUNNING.json", "spec.json"
SLURM = "SLURM.json"  # the Slurm job that last took the task (`model.sweeps.slurm`)
STATE_FILES = (DONE, FAILED, RUNNING, SLURM)  # written by one process, read by others
HISTORY, WEIGHTS, CHECKPOINTS, TENSORBOARD = "history.csv", "best.weights.h5", "checkpoints", "tensorboard"
LOG = "train.log"  # the task process's log, appended by every attempt (`model.runs.task_log`)


def now() -> str:
    """UTC time as ISO 8601 with seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_regular(path: Path) -> bytes | None:
    """The bytes of `path` if it is a regular file (not a symlink, directory, fifo...), else None; never blocks."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read()
    except OSError:
        return None
    finally:
        os.close(fd)


def read_json(path: Path) -> dict | None:
    """The JSON object in the regular file `path`, or None when it is missing, not a regular file, not UTF-8 or
    does not parse as an object."""
    data = read_regular(path)
    try:
        value = json.loads(data) if data is not None else None
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        return None
    return value if isinstance(value, dict) else None


def file_kind(path: Path) -> str | None:
    """What `path` is when it exists and is not a regular file (`directory`, `symlink`, `fifo`, `socket`,
    `device`), else None."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    return ("symlink" if stat.S_ISLNK(mode) else "directory" if stat.S_ISDIR(mode)
            else "fifo" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "device")


def check_state_files(run_dir: Path) -> None:
    """`DataError` naming the first run-state file (`STATE_FILES`) of `run_dir` that exists but is not a regular
    file: no process could write it atomically (a directory named DONE.json would make every attempt train, then
    fail), so the run is refused before anything is trained or written."""
    for name in STATE_FILES:
        what = file_kind(Path(run_dir) / name)
        if what is not None:
            raise DataError(f"{Path(run_dir) / name}: is a {what}, not a regular file; the pipeline writes {name} "
                            "itself: remove it and run again")


def check_inside_root(run_dir: Path, output_root) -> None:
    """`SpecError` unless `run_dir`, with every symlink on its way resolved, lies inside `output_root` (spec
    validation keeps `..` out of the names; this also catches a symlinked folder pointing elsewhere). The one
    confinement rule of every command that writes run folders (sweeps: `model.sweeps.grid.write_specs`; single
    runs: `model.runs.execute`)."""
    root = Path(output_root).resolve()
    resolved = Path(run_dir).resolve()
    if not resolved.is_relative_to(root):
        raise SpecError(f"{run_dir}: resolves to {resolved}, outside the output root {root}; refusing to write there")


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
    """The last row of the run's history.csv as {column: finite float}, or {} when there is none. Any content reads
    without error (another process writes the file): a value that is not a finite number (`inf`, `nan`, text) is
    left out, and a history.csv that is not a regular file or not UTF-8 reads as none."""
    data = read_regular(Path(run_dir) / HISTORY)
    try:
        last = deque(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")), maxlen=1) if data else ()
    except (UnicodeDecodeError, csv.Error):
        return {}
    return {k: v for k, v in ((k, number(v)) for k, v in last[0].items() if isinstance(k, str))
            if v is not None} if last else {}


def number(value) -> float | None:
    """`value` (a JSON or CSV field) as a finite float, or None (text, inf, nan, bool, null, a list...)."""
    if isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def count(value) -> int | None:
    """`value` as a whole number (an epoch count), or None."""
    value = number(value)
    return int(value) if value is not None and value.is_integer() else None
