"""Where a sweep stands, as data and as text: each task's state (`model.runs.state`: done / running / failed /
partial / missing) per grid cell and per network; the running tasks with their epoch, last validation accuracy, host
and heartbeat age; why each failed task failed; the Slurm job of each unfinished task submitted with
`--executor slurm`; a task whose run-state file (DONE.json, RUNNING.json...) is not a regular file, with the
one-line refusal `model.runs.execute` gives it. `rows(tasks)` is the contract (`scripts/sweep_status.py --json`
prints it); `text` and `slurm_table` format it. Reads run folders only, whatever they hold; changes nothing.

Column `acted`: over the cell's finished runs, the mean % of training steps in which the regulariser's gradient was
applied (DONE.json's regulariser_activity; `model.runs.activity_record`), "!" under ACTED_THRESHOLD; "-" for the
baseline, for runs recorded before the accounting and for cells with no finished run.
"""
import csv
import io
import json
import math
import time
from collections import deque

from model.errors import DataError
from model.runs import run_folder, state
from model.runs.activity_record import ACTED_THRESHOLD


def last_epoch(run_dir) -> dict:
    """The last row of the run's history.csv as {column: finite float}, or {} when there is none. Any content reads
    without error (another process writes the file): a value that is not a finite number (`inf`, `nan`, text) is
    left out, and a history.csv that is not a regular file or not UTF-8 reads as none."""
    data = run_folder.read_regular(run_dir / run_folder.HISTORY)
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


def _text(value) -> str | None:
    return value if isinstance(value, str) else None if value is None else json.dumps(value)


def rows(tasks, now: float | None = None) -> list[dict]:
    """One row per task, in sweep order: task_id, network, cell, state; epoch and max_epochs, val_accuracy (last
    epoch's, fraction) for a started run; host and heartbeat_age_s (seconds since its claim's last heartbeat) for a
    running one; applied_fraction (of training steps whose regulariser gradient was applied, DONE.json's
    regulariser_activity) for a finished one; error and error_type for a failed one. Values are None where they do
    not apply."""
    now = time.time() if now is None else now
    out = []
    for task in tasks:
        status = state.status(task.run_dir)
        row = {"task_id": task.task_id, "network": task.spec.network, "cell": task.cell, "state": status,
               "epoch": None, "max_epochs": task.spec.max_epochs, "val_accuracy": None, "host": None,
               "heartbeat_age_s": None, "applied_fraction": None, "error": None, "error_type": None}
        # every value read from a file another process writes is checked: any content gives a row, never an error
        if status in ("running", "partial", "failed"):
            history = last_epoch(task.run_dir)
            row["epoch"], row["val_accuracy"] = count(history.get("epoch")), history.get("val_accuracy")
        if status == "done":
            done = run_folder.read_done(task.run_dir) or {}
            row["epoch"], row["val_accuracy"] = count(done.get("epochs")), number(done.get("val_accuracy"))
            activity = done.get("regulariser_activity")
            if isinstance(activity, dict):
                row["applied_fraction"] = number(activity.get("applied_fraction"))
        if status == "running":
            claim = run_folder.read_json(task.run_dir / run_folder.RUNNING) or {}
            row["host"] = _text(claim.get("host"))
            beat = number(claim.get("heartbeat_unix"))
            row["heartbeat_age_s"] = None if beat is None else round(now - beat, 1)
        if status == "failed":
            record = run_folder.read_json(task.run_dir / run_folder.FAILED) or {}
            row["error"] = _text(record.get("error")) or "(no reason)"
            row["error_type"] = _text(record.get("type")) or "?"
        if status != "done":
            try:  # a DONE.json that is a folder, a RUNNING.json that is a symlink...: the run is refused until removed
                run_folder.check_state_files(task.run_dir)
            except DataError as err:
                row["error"], row["error_type"] = str(err), "DataError"
        out.append(row)
    return out


def counts(table: list[dict], key: str) -> dict[str, dict[str, int]]:
    """{value of `key` (cell, network): {state: number of tasks}}, in first-seen order."""
    out: dict[str, dict[str, int]] = {}
    for row in table:
        out.setdefault(row[key], dict.fromkeys(state.STATES, 0))[row["state"]] += 1
    return out


def as_json(table: list[dict]) -> dict:
    """What `--json` prints: the rows, the counts per cell and per network, and the totals."""
    return {"tasks": table, "cells": counts(table, "cell"), "networks": counts(table, "network"),
            "totals": {s: sum(r["state"] == s for r in table) for s in state.STATES}}


def count_lines(table: list[dict], key: str) -> list[str]:
    """A table of states per `key` value, with a closing `all` line; per cell also the `acted` column. One pass
    over the rows (linear in the number of tasks: a scan per cell took 5.75 CPU-s at 8k cells)."""
    groups = counts(table, key)
    width = max(len(key), len("all"), *(len(g) for g in groups))
    acted = key == "cell"
    fractions: dict[str, list[float]] = {name: [] for name in groups}
    for r in table:
        if r["applied_fraction"] is not None:
            fractions[r[key]].append(r["applied_fraction"])
    lines = [f"{key:<{width}} " + " ".join(f"{s:>8}" for s in state.STATES) + f" {'total':>8}"
             + (f" {'acted':>7}" if acted else "")]
    for name, c in groups.items():
        lines.append(f"{name:<{width}} " + " ".join(f"{c[s]:>8}" for s in state.STATES) + f" {sum(c.values()):>8}"
                     + (f" {_acted(fractions[name]):>7}" if acted else ""))
    totals = {s: sum(c[s] for c in groups.values()) for s in state.STATES}
    lines.append(f"{'all':<{width}} " + " ".join(f"{totals[s]:>8}" for s in state.STATES) + f" {len(table):>8}")
    return lines


def running_line(row: dict) -> str:
    epoch = "epoch ?" if row["epoch"] is None else f"epoch {row['epoch']}/{row['max_epochs']}"
    val = "" if row["val_accuracy"] is None else f", val {row['val_accuracy']:.3f}"
    beat = "" if row["heartbeat_age_s"] is None else f", heartbeat {row['heartbeat_age_s']:.0f} s ago"
    return f"  {row['task_id']}: {epoch}{val}, host {row['host'] or '?'}{beat}"


def text(table: list[dict]) -> list[str]:
    """The human-readable report: states per cell, per network, the running tasks, the failed ones and why."""
    lines = count_lines(table, "cell") + [""] + count_lines(table, "network")
    running = [r for r in table if r["state"] == "running"]
    if running:
        lines += ["", "running:"] + [running_line(r) for r in running]
    failed = [r for r in table if r["state"] == "failed"]
    if failed:
        lines += ["", "failed (tried again by the next run_sweep.py; trace in <run folder>/train.log):"]
        lines += [f"  {r['task_id']}: {r['error_type']}: {r['error']}" for r in failed]
    blocked = [r for r in table if r["state"] != "failed" and r["error"] is not None]
    if blocked:
        lines += ["", "blocked (run_sweep.py refuses these until the file is removed):"]
        lines += [f"  {r['task_id']}: {r['error']}" for r in blocked]
    return lines


def _acted(fractions: list[float]) -> str:
    if not fractions:
        return "-"
    mean = sum(fractions) / len(fractions)
    return f"{100 * mean:.0f}%" + ("!" if mean < ACTED_THRESHOLD else "")


def slurm_table(tasks) -> list[str]:
    """Lines `task_id  job_id  Slurm state` for the unfinished tasks whose run folder names a Slurm job: the one
    `--executor slurm` submitted (SLURM.json), else the one a live claim was made in (a generated sbatch script's
    element). State `?` when squeue cannot answer, `ended` when Slurm has forgotten the job."""
    from model.sweeps import slurm

    rows = []
    for task in tasks:
        status = state.status(task.run_dir)
        record = slurm.read_record(task.run_dir) or {}
        if status == "running":
            record = {"job_id": (run_folder.read_json(task.run_dir / run_folder.RUNNING) or {}).get("slurm_job"),
                      **record}
        job = record.get("job_id")
        if isinstance(job, (str, int)) and not isinstance(job, bool) and str(job) and status != "done":
            rows.append((task.task_id, str(job)))
    if not rows:
        return []
    states = slurm.job_states([job for _, job in rows])
    width = max(len("task"), *(len(t) for t, _ in rows))
    jwidth = max(len("slurm job"), *(len(j) for _, j in rows))
    lines = [f"{'task':<{width}} {'slurm job':<{jwidth}} slurm state"]
    for task_id, job in rows:
        lines.append(f"{task_id:<{width}} {job:<{jwidth}} {'?' if states is None else states.get(job, 'ended')}")
    return lines
