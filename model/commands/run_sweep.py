"""Run every unfinished task of a sweep file, on this machine's GPUs/CPUs, on a Ray cluster or on a Slurm cluster.

Finished tasks (DONE.json) are skipped, interrupted ones resume, failed ones are tried again; tasks that another
process is training are waited for. GPUs to use (--gpus, or those nvidia-smi lists) that TensorFlow does not see are
an error before any task starts, unless --allow-cpu. Each settled task prints a line
`[k/N] <task id>: done in 3m12s (val 0.941) · 412 left · ETA 5h10m`; on a terminal a progress line follows, with the
running tasks' epochs. The end is a summary with every failed task and its one-line reason; each task's full log is
`train.log` in its run folder. `--set` wins over the sweep's base, block and cell `set` (the driver names every cell
`set` it replaced). With the local executor, SIGTERM or SIGINT (`docker stop`, Ctrl-C)
stops the worker politely: no task starts, the running ones checkpoint and release their claims (another worker
resumes them at once), and it exits 0 (1 if some task failed) within seconds.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported (spec validation)

from model import cli
from model.errors import SpecError
from model.runs import provenance, run_folder
from model.runs.overrides import parse as parse_overrides
from model.sweeps import executors, grid, options, sbatch, shutdown, slurm
from model.sweeps.progress import WATCH_SECONDS, Progress

EXAMPLES = [
    "{prog} configs/digits/sweep_small.json                # local: one slot per GPU, or CPU workers",
    "{prog} SWEEP.json --dry-run                            # number of tasks and their ids",
    "{prog} SWEEP.json --only network=mnist/0 --only weight=0.0,0.01 --set max_epochs=2   # try a few tasks, briefly",
    "{prog} SWEEP.json --set max_epochs=2 --set output_root=/scratch/try   # override fields of every task",
    "{prog} SWEEP.json --gpus 0,1 --tasks-per-gpu 2        # two tasks at a time on each GPU",
    "{prog} SWEEP.json --gpus 0 --allow-cpu                # GPU 0 if TensorFlow sees it, else CPU",
    "{prog} SWEEP.json --executor ray --address HEAD:6379  # join a Ray cluster",
    "{prog} SWEEP.json --executor slurm --partition gpu    # one Slurm job array, 1 GPU per task",
    "{prog} SWEEP.json --executor slurm --detach           # submit and return (follow with sweep-status)",
    "{prog} SWEEP.json --executor slurm --print-sbatch > sweep.sbatch   # then: sbatch sweep.sbatch",
]
EXIT_CODES = {0: "every task done (or, detached, submitted)", 1: "some task failed (listed at the end)",
              2: "bad input, a missing sbatch, an unknown partition or a rejected submission (nothing of it queued)"}


def main(argv=None) -> int:
    p = cli.parser("run-sweep", __doc__, EXAMPLES, EXIT_CODES)
    p.add_argument("sweep", help="sweep file (JSON: base spec + grid)")
    p.add_argument("--executor", choices=executors.EXECUTORS, default="local")
    p.add_argument("--dry-run", action="store_true", help="print the number of tasks and their ids; run nothing")
    p.add_argument("--allow-cpu", action="store_true",
                   help="local: go on when TensorFlow does not see every GPU to use (tasks without one train on the "
                        "CPU); without it that is an error before any task starts")
    options.add_arguments(p)  # each back end's own options (model/sweeps/options.py)
    p.add_argument("--max-retries", type=int, default=2, help="retries of a task whose process is killed")
    p.add_argument("-v", "--verbose", action="store_true", help="also log every line the task processes print")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="set a spec field of every task, over the sweep's base, block and cell `set` (JSON value; "
                        "dotted keys reach into objects), e.g. --set max_epochs=2 --set output_root=/scratch/exp; "
                        "repeatable")
    p.add_argument("--only", action="append", default=[], metavar="KEY=V1,V2",
                   help="run only the tasks whose network, regulariser, weight or seed is among these values, e.g. "
                        "--only network=mnist/0 --only regulariser=none,t1 --only weight=0.0,0.01 (with --set "
                        "max_epochs=2: a trial of the sweep before launching it whole); a value no task has is "
                        "named; repeatable")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    args = p.parse_args(argv)
    os.environ[provenance.SWEEP_COMMAND_ENV] = provenance.command_line()  # the task processes' `launched_by`
    return cli.run(run, args)


def run(args) -> int:
    if args.executor != "local":
        return sweep(args)
    with shutdown.handling():
        return sweep(args)


def sweep(args) -> int:
    overrides = parse_overrides(args.overrides)
    chosen = grid.parse_subset(args.only)
    tasks = grid.load(args.sweep, overrides)
    for line in grid.overridden(grid.read(args.sweep), overrides):
        print(f"--set overrides {line}")
    if chosen:
        everything = len(tasks)
        tasks, unmatched = grid.subset(tasks, chosen)
        print("\n".join(unmatched + [f"--only: {len(tasks)} of the sweep's {everything} tasks"]))
        if not tasks:
            raise SpecError(f"{args.sweep}: --only {' --only '.join(args.only)} selects none of its {everything} "
                            "tasks; expected values from the sweep file (--dry-run lists its tasks)")
    if args.dry_run:
        print(f"{len(tasks)} tasks")
        print("\n".join(task.task_id for task in tasks))
        return 0
    options.check(args)
    if args.print_sbatch:
        return print_sbatch(args, tasks)
    bar = Progress(watch_seconds=WATCH_SECONDS)
    backend = {"max_retries": args.max_retries, "progress": bar, **options.for_backend(args)}
    grid.write_specs(tasks)
    outcomes = executors.run(tasks, args.executor, **backend)
    bar.close()  # the bar's line ends before anything else is printed
    if args.detach:
        counts, jobs = slurm.detached_summary(outcomes)
        print(f"{len(outcomes)} tasks: {counts['submitted']} submitted (Slurm job {', '.join(jobs) or 'none'}), "
              f"{counts['skipped']} already done, {counts['running']} trained by other processes; follow them: "
              f"{cli.prog('sweep-status')} {args.sweep}")
        return 0
    print("\n".join(bar.summary(outcomes)))
    if shutdown.requested.is_set():
        print("stopped on a signal: the unfinished tasks resume from their checkpoints on the next run of any worker")
    if any(o.status == "failed" for o in outcomes):
        print(f"failed tasks are tried again by the next run; logs: <run folder>/{run_folder.LOG}; "
              f"status: {cli.prog('sweep-status')} {args.sweep}")
        return 1
    return 0


def print_sbatch(args, tasks) -> int:
    """Print the sbatch script running the unfinished tasks (their specs written; nothing is submitted)."""
    text, count = sbatch.for_tasks(tasks, options.slurm_parameters(args))
    if text is None:
        print(f"{len(tasks)} tasks, none left to run (done or being trained)", file=sys.stderr)
        return 0
    print(text, end="")
    print(f"{count} of {len(tasks)} tasks in the script; submit it with sbatch", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
