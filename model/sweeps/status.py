"""Where a sweep stands, as data and as text: each task's state (`model.runs.state`: done / running / failed /
partial / pending / missing) per grid cell and per network; the running tasks with their epoch, last validation
accuracy, host and heartbeat age; why each failed task failed; the Slurm job of each unfinished task submitted with
`--executor slurm`; a task whose run-state file (DONE.json, RUNNING.json...) is not a regular file, with the
one-line refusal `model.runs.execute` gives it. `rows(tasks)` is the contract (`scripts/sweep_status.py --json`
prints it); `text` and `slurm_table` format it. Reads run folders only, whatever they hold; changes nothing.

Column `acted`: over the cell's finished runs, the mean % of training steps in which the regulariser's gradient was
applied (DONE.json's regulariser_activity; `model.runs.activity_record`), "!" under ACTED_THRESHOLD; "-" for the
baseline, for runs recorded before the accounting and for cells with no finished run. Column `grad ratio`: how
strongly, ‖ω∇R‖/‖∇CE‖ over the measured steps of the cell's finished runs, the median of their medians and
[smallest minimum, largest maximum] (runs recorded before those keys: their mean ratio, marked "mean"), followed by
"negligible" when the regulariser acted but was under 1 % of the CE gradient on most steps
(`activity_record.negligible`).
"""
import json
import statistics
import time

from model.errors import DataError
from model.runs import run_folder, state
from model.runs.activity_record import ACTED_THRESHOLD, negligible
from model.sweeps import slurm

RATIO_KEYS = ("grad_ratio_median", "grad_ratio_min", "grad_ratio_max", "grad_ratio_under_1pct", "mean_grad_ratio")


def _text(value) -> str | None:
    return value if isinstance(value, str) else None if value is None else json.dumps(value)


def rows(tasks, now: float | None = None) -> list[dict]:
    """One row per task, in sweep order: task_id, network, cell, state; epoch and max_epochs, val_accuracy (last
    epoch's, fraction) for a started run; host and heartbeat_age_s (seconds since its claim's last heartbeat) for a
    running one; applied_fraction (of training steps whose regulariser gradient was applied, DONE.json's
    regulariser_activity) and ‖ω∇R‖/‖∇CE‖ over its measured steps (`RATIO_KEYS`, as DONE.json names them) for a
    finished one; error and error_type for a failed one. Values are None where they do not apply."""
    now = time.time() if now is None else now
    out = []
    for task in tasks:
        status = state.status(task.run_dir)
        row = {"task_id": task.task_id, "network": task.spec.network, "cell": task.cell, "state": status,
               "epoch": None, "max_epochs": task.spec.max_epochs, "val_accuracy": None, "host": None,
               "heartbeat_age_s": None, "applied_fraction": None, **dict.fromkeys(RATIO_KEYS), "error": None,
               "error_type": None}
        # every value read from a file another process writes is checked: any content gives a row, never an error
        if status in ("running", "partial", "failed"):
            history = run_folder.last_epoch(task.run_dir)  # finite numbers only
            row["epoch"], row["val_accuracy"] = run_folder.count(history.get("epoch")), history.get("val_accuracy")
        if status == "done":
            done = run_folder.read_done(task.run_dir) or {}
            row["epoch"] = run_folder.count(done.get("epochs"))
            row["val_accuracy"] = run_folder.number(done.get("val_accuracy"))
            activity = done.get("regulariser_activity")
            if isinstance(activity, dict) and run_folder.number(activity.get("applied_fraction")) is not None:
                row["applied_fraction"] = run_folder.number(activity["applied_fraction"])
                row |= {k: run_folder.number(activity.get(k)) for k in RATIO_KEYS}
        if status == "running":
            claim = run_folder.read_json(task.run_dir / run_folder.RUNNING) or {}
            row["host"] = _text(claim.get("host"))
            beat = run_folder.number(claim.get("heartbeat_unix"))
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
    """A table of states per `key` value, with a closing `all` line; per cell also the `acted` and `grad ratio`
    columns. One pass over the rows (linear in the number of tasks: a scan per cell took 5.75 CPU-s at 8k cells)."""
    groups = counts(table, key)
    width = max(len(key), len("all"), *(len(g) for g in groups))
    acted = key == "cell"
    done: dict[str, list[dict]] = {name: [] for name in groups}  # each group's finished runs with an activity record
    for r in table:
        if r["applied_fraction"] is not None:
            done[r[key]].append(r)
    lines = [f"{key:<{width}} " + " ".join(f"{s:>8}" for s in state.STATES) + f" {'total':>8}"
             + (f" {'acted':>7}  grad ratio" if acted else "")]
    for name, c in groups.items():
        lines.append(f"{name:<{width}} " + " ".join(f"{c[s]:>8}" for s in state.STATES) + f" {sum(c.values()):>8}"
                     + (f" {_acted([r['applied_fraction'] for r in done[name]]):>7}  {_strength(done[name])}"
                        if acted else ""))
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


def _strength(runs: list[dict]) -> str:
    """The cell's ‖ω∇R‖/‖∇CE‖ (see the module docstring), "-" when no finished run measured it."""
    keys = ("grad_ratio_median", "grad_ratio_min", "grad_ratio_max", "grad_ratio_under_1pct")
    if runs and all(r[k] is not None for r in runs for k in keys):
        text = (f"{statistics.median(r['grad_ratio_median'] for r in runs):.2g} "
                f"[{min(r['grad_ratio_min'] for r in runs):.2g}, {max(r['grad_ratio_max'] for r in runs):.2g}]")
        small = sum(r["grad_ratio_under_1pct"] for r in runs) / len(runs)
        weak = negligible(small, None)
    else:
        means = [r["mean_grad_ratio"] for r in runs if r["mean_grad_ratio"] is not None]
        if not means:
            return "-"
        text = f"{sum(means) / len(means):.2g} (mean)"
        weak = negligible(None, sum(means) / len(means))
    acted = sum(r["applied_fraction"] for r in runs) / len(runs) >= ACTED_THRESHOLD
    return text + (" negligible" if acted and weak else "")


def slurm_table(tasks) -> list[str]:
    """Lines `task_id  job_id  Slurm state` for the unfinished tasks whose run folder names a Slurm job: the one
    `--executor slurm` submitted (SLURM.json), else the one a live claim was made in (a generated sbatch script's
    element). State `?` when squeue cannot answer, `ended` when Slurm has forgotten the job."""
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
