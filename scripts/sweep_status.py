#!/usr/bin/env python
"""Where a sweep stands: done / running / failed / partial (started, resumable) / missing tasks per grid cell, why
each failed task failed, and the Slurm job of each unfinished task submitted with --executor slurm.

Column `acted`: over the cell's finished runs, the mean % of training steps in which the regulariser's gradient was
applied (DONE.json's regulariser_activity; `model.runs.activity`), "!" under 50 %; "-" for the baseline, for runs
recorded before the accounting and for cells with no finished run.

    python scripts/sweep_status.py configs/digits/sweep_small.json

Read-only: it looks at the run folders (DONE.json, RUNNING.json, FAILED.json, SLURM.json), asks `squeue` for the
state of the Slurm jobs they name, and changes nothing. Exit status: 0, or 2 for a bad sweep file.
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported (spec validation)

from model import cli
from model.runs import run_folder, state
from model.runs.activity import ACTED_THRESHOLD
from model.sweeps import grid


def table(tasks) -> tuple[list[str], list[str]]:
    """(lines of the per-cell table, lines `task_id: reason` for failed tasks), cells in sweep order."""
    counts: dict[str, dict[str, int]] = {}
    acted: dict[str, list[float]] = {}
    failures = []
    for task in tasks:
        status = state.status(task.run_dir)
        counts.setdefault(task.cell, dict.fromkeys(state.STATES, 0))[status] += 1
        acted.setdefault(task.cell, [])
        if status == "done":
            activity = (run_folder.read_done(task.run_dir) or {}).get("regulariser_activity")
            if isinstance(activity, dict) and activity.get("applied_fraction") is not None:
                acted[task.cell].append(float(activity["applied_fraction"]))
        if status == "failed":
            record = run_folder.read_json(task.run_dir / run_folder.FAILED) or {}
            failures.append(f"{task.task_id}: {record.get('type', '?')}: {record.get('error', '(no reason)')}")
    width = max(len("cell"), *(len(c) for c in counts))
    head = f"{'cell':<{width}} " + " ".join(f"{s:>8}" for s in state.STATES) + f" {'total':>8} {'acted':>7}"
    lines = [head]
    for cell, c in counts.items():
        lines.append(f"{cell:<{width}} " + " ".join(f"{c[s]:>8}" for s in state.STATES) + f" {sum(c.values()):>8}"
                     f" {_acted(acted[cell]):>7}")
    totals = {s: sum(c[s] for c in counts.values()) for s in state.STATES}
    lines.append(f"{'all':<{width}} " + " ".join(f"{totals[s]:>8}" for s in state.STATES) + f" {len(tasks):>8}")
    return lines, failures


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
        if record.get("job_id") and status != "done":
            rows.append((task.task_id, str(record["job_id"])))
    if not rows:
        return []
    states = slurm.job_states([job for _, job in rows])
    width = max(len("task"), *(len(t) for t, _ in rows))
    jwidth = max(len("slurm job"), *(len(j) for _, j in rows))
    lines = [f"{'task':<{width}} {'slurm job':<{jwidth}} slurm state"]
    for task_id, job in rows:
        lines.append(f"{task_id:<{width}} {job:<{jwidth}} {'?' if states is None else states.get(job, 'ended')}")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep", help="sweep file (JSON)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="replace a base spec field (JSON value; dotted keys reach into objects), e.g. "
                        "--set max_epochs=2 --set output_root=/scratch/exp; repeatable")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return cli.run(show, p.parse_args(argv))


def show(args) -> int:
    tasks = grid.load(args.sweep, grid.parse_overrides(args.overrides))
    lines, failures = table(tasks)
    print("\n".join(lines))
    if failures:
        print("\nfailed (tried again by the next run_sweep.py):")
        print("\n".join(f"  {line}" for line in failures))
    jobs = slurm_table(tasks)
    if jobs:
        print("\nunfinished tasks submitted to Slurm:")
        print("\n".join(f"  {line}" for line in jobs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
