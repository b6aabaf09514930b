"""Where a sweep stands: each task's state, per grid cell and per network; the running tasks with their epoch, last
validation accuracy, host and heartbeat age; why each failed task failed; and the Slurm job of each unfinished task
submitted with --executor slurm.

States (`model.runs.state`): done (DONE.json), running (a live claim: its process has started), failed (FAILED.json,
no live claim), partial (started, stopped, resumable), pending (spec.json written by the driver, never started),
missing (no run folder yet).
Column `acted`: over the cell's finished runs, the mean % of training steps in which the regulariser's gradient was
applied (DONE.json's regulariser_activity; `model.runs.activity_record`), "!" under 50 %; "-" for the baseline, for
runs recorded before the accounting and for cells with no finished run. Column `grad ratio`: how strongly,
‖ω∇R‖/‖∇CE‖ over the measured steps, median [min, max], "negligible" when under 1 % on most steps
(`model.sweeps.status`).
Read-only: it looks at the run folders (DONE.json, RUNNING.json, FAILED.json, history.csv, SLURM.json), asks
`squeue` for the state of the Slurm jobs they name, and changes nothing. The work is in model/sweeps/status.py.
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported (spec validation)

from model import cli
from model.runs.overrides import parse as parse_overrides
from model.sweeps import grid, status

EXAMPLES = ["{prog} configs/digits/sweep_small.json",
            "{prog} configs/digits/sweep_small.json --json    # the same as one JSON object",
            "{prog} SWEEP.json --set output_root=/scratch/exp   # the sweep as run with that --set"]
EXIT_CODES = {0: "no task failed", 1: "some task failed (its FAILED.json, no live claim)", 2: "a bad sweep file"}


def main(argv=None) -> int:
    p = cli.parser("sweep-status", __doc__, EXAMPLES, EXIT_CODES)
    p.add_argument("sweep", help="sweep file (JSON)")
    p.add_argument("--json", action="store_true", help="print one JSON object (tasks, cells, networks, totals)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="the same --set as given to run_sweep.py (e.g. --set output_root=/scratch/exp); repeatable")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return cli.run(show, p.parse_args(argv))


def show(args) -> int:
    tasks = grid.load(args.sweep, parse_overrides(args.overrides))
    table = status.rows(tasks)
    jobs = status.slurm_table(tasks)
    if args.json:
        print(json.dumps({**status.as_json(table), "slurm": jobs}, indent=1))
    else:
        print("\n".join(status.text(table)))
        if jobs:
            print("\nunfinished tasks submitted to Slurm:")
            print("\n".join(f"  {line}" for line in jobs))
    return 1 if any(r["state"] == "failed" for r in table) else 0


if __name__ == "__main__":
    sys.exit(main())
