"""Run every unfinished task of a sweep file, on this machine's GPUs/CPUs, on a Ray cluster or on a Slurm cluster.

Finished tasks (DONE.json) are skipped, interrupted ones resume, failed ones are tried again; tasks that another
process is training are waited for. GPUs to use (--gpus, or those nvidia-smi lists) that TensorFlow does not see are
an error before any task starts, unless --allow-cpu. Each settled task prints a line
`[k/N] <task id>: done in 3m12s (val 0.941) · 412 left · ETA 5h10m`; on a terminal a progress line follows, with the
running tasks' epochs. The end is a summary with every failed task and its one-line reason; each task's full log is
`train.log` in its run folder. `--set` wins over the sweep's base, block and cell `set` (the driver names every cell
`set` it replaced).
"""
import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported (spec validation)

from model import cli
from model.errors import SpecError
from model.runs import provenance, run_folder
from model.runs.overrides import parse as parse_overrides
from model.sweeps import executors, gpu_visibility, grid, local
from model.sweeps.progress import WATCH_SECONDS, Progress


def parse_gpus(text: str) -> list[str]:
    """`0,1,3` → ['0', '1', '3']; `none` → [] (CPU workers only)."""
    if text.strip().lower() == "none":
        return []
    ids = [g.strip() for g in text.split(",") if g.strip()]
    if not ids or not all(g.isdigit() for g in ids):
        raise argparse.ArgumentTypeError(f"--gpus {text!r}: expected GPU ids like 0,1,3 or 'none'")
    return ids


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
    p.add_argument("--gpus", type=parse_gpus, default=None,
                   help="local: GPU ids to use, or 'none' (default: every GPU found, else CPU workers)")
    p.add_argument("--allow-cpu", action="store_true",
                   help="local: go on when TensorFlow does not see every GPU to use (tasks without one train on the "
                        "CPU); without it that is an error before any task starts")
    p.add_argument("--workers", type=int, default=None, help="local, without GPUs: CPU workers (default: cores/2)")
    p.add_argument("--tasks-per-gpu", type=int, default=1, help="tasks sharing one GPU at a time (default 1)")
    p.add_argument("--address", default=None, help="ray: the cluster's HOST:PORT (default: a private local one)")
    p.add_argument("--gpus-per-task", type=float, default=None,
                   help="ray: GPUs per task, fractional allowed (default: 1/tasks-per-gpu when there are GPUs); "
                        "slurm: GPUs per array element (default 1; 0 for CPU-only)")
    slurm = p.add_argument_group("slurm (one job array, one task per element)")
    slurm.add_argument("--partition", default=None, help="slurm: the partition (default: the cluster's default)")
    slurm.add_argument("--time", default=None,
                       help="slurm: time limit per element (MINUTES or [D-]HH:MM:SS; default 4:00:00); an element "
                            "near its limit is requeued and resumes from its checkpoint")
    slurm.add_argument("--mem", default=None, help="slurm: memory per element, e.g. 16G (default: the cluster's)")
    slurm.add_argument("--array-parallelism", type=int, default=None,
                       help="slurm: at most this many elements running at once (default 256)")
    slurm.add_argument("--slurm-option", dest="slurm_options", action="append", default=[], metavar="KEY=VALUE",
                       help="slurm: any other sbatch option, e.g. --slurm-option account=mylab "
                            "--slurm-option cpus-per-task=4; repeatable")
    slurm.add_argument("--detach", action="store_true",
                       help="slurm: return once the array is submitted; follow it with sweep_status.py")
    slurm.add_argument("--print-sbatch", action="store_true",
                       help="slurm: print an sbatch script running the unfinished tasks, submit nothing")
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
    check_options(args)
    if args.print_sbatch:
        return print_sbatch(args, tasks)
    bar = Progress(watch_seconds=WATCH_SECONDS)
    options = {"max_retries": args.max_retries, "progress": bar}
    if args.executor == "local":
        gpus = local.detect_gpus() if args.gpus is None else args.gpus
        gpu_visibility.require_gpus(gpus, args.allow_cpu, source="--gpus" if args.gpus is not None else "GPUs found")
        options.update(gpus=gpus, workers=args.workers, tasks_per_gpu=args.tasks_per_gpu)
    elif args.executor == "ray":
        options.update(address=args.address, gpus_per_task=args.gpus_per_task, tasks_per_gpu=args.tasks_per_gpu)
    else:
        options.update(slurm_options(args), detach=args.detach)
    grid.write_specs(tasks)
    outcomes = executors.run(tasks, args.executor, **options)
    bar.close()  # the bar's line ends before anything else is printed
    if args.detach:
        counts = {s: sum(o.status == s for o in outcomes) for s in ("submitted", "skipped", "running")}
        jobs = sorted({o.reason.split()[-1].split("_")[0] for o in outcomes if o.status == "submitted"})
        print(f"{len(outcomes)} tasks: {counts['submitted']} submitted (Slurm job {', '.join(jobs) or 'none'}), "
              f"{counts['skipped']} already done, {counts['running']} trained by other processes; follow them: "
              f"{cli.prog('sweep-status')} {args.sweep}")
        return 0
    print("\n".join(bar.summary(outcomes)))
    if any(o.status == "failed" for o in outcomes):
        print(f"failed tasks are tried again by the next run; logs: <run folder>/{run_folder.LOG}; "
              f"status: {cli.prog('sweep-status')} {args.sweep}")
        return 1
    return 0


LOCAL, RAY = ("gpus", "workers"), ("address",)
SLURM = ("partition", "time", "mem", "array_parallelism", "slurm_options", "detach", "print_sbatch")


def check_options(args) -> None:
    """Each back end's options only with that back end (one line naming them otherwise)."""
    given = {name for name in (*LOCAL, *RAY, *SLURM) if getattr(args, name) not in (None, False, [])}
    own = {"local": LOCAL, "ray": RAY, "slurm": SLURM}[args.executor]
    if args.executor == "local" and args.gpus_per_task is not None:
        given.add("gpus_per_task")
    if args.executor == "slurm" and args.tasks_per_gpu != 1:
        given.add("tasks_per_gpu")
    foreign = sorted(given - set(own))
    if foreign:
        names = ", ".join("--" + name.replace("_", "-") for name in foreign)
        raise executors.ExecutorError(f"{names}: not an option of --executor {args.executor} (see --help)")


def slurm_options(args) -> dict:
    from model.sweeps import slurm

    return {"job_name": Path(args.sweep).stem, "time": args.time or slurm.DEFAULT_TIME, "partition": args.partition,
            "mem": args.mem,
            "gpus_per_task": args.gpus_per_task, "array_parallelism": args.array_parallelism,
            "slurm_options": slurm.parse_options(args.slurm_options)}


def print_sbatch(args, tasks) -> int:
    """Write the unfinished tasks' specs and print the sbatch script that runs them (nothing is submitted)."""
    from model.runs import state
    from model.sweeps import sbatch, slurm
    from model.sweeps.task_process import jobs_for

    options = slurm_options(args)
    gpus = 1 if options["gpus_per_task"] is None else options["gpus_per_task"]
    if gpus != int(gpus):
        raise executors.ExecutorError(f"--gpus-per-task {gpus}: Slurm takes a whole number of GPUs per task")
    params = slurm.parameters(options["job_name"], options["time"], args.partition, args.mem, int(gpus),
                              args.array_parallelism, options["slurm_options"])
    grid.write_specs(tasks)
    todo = [t for t in tasks if state.status(t.run_dir) not in ("done", "running")]
    if not todo:
        print(f"{len(tasks)} tasks, none left to run (done or being trained)", file=sys.stderr)
        return 0
    log_dir = Path(todo[0].spec.output_root).resolve() / "slurm" / "sbatch"
    log_dir.mkdir(parents=True, exist_ok=True)
    print(sbatch.script(jobs_for(todo), log_dir, params), end="")
    print(f"{len(todo)} of {len(tasks)} tasks in the script; submit it with sbatch", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
