#!/usr/bin/env python
"""Run every unfinished task of a sweep file, on this machine's GPUs/CPUs or on a Ray cluster.

    python scripts/run_sweep.py configs/digits/sweep_small.json                # local: one slot per GPU, or CPUs
    python scripts/run_sweep.py SWEEP.json --dry-run                            # number of tasks and their ids
    python scripts/run_sweep.py SWEEP.json --gpus 0,1 --tasks-per-gpu 2        # two tasks at a time on each GPU
    python scripts/run_sweep.py SWEEP.json --gpus 0 --allow-cpu                # GPU 0 if TensorFlow sees it, else CPU
    python scripts/run_sweep.py SWEEP.json --executor ray --address HEAD:6379  # join a Ray cluster

Finished tasks (DONE.json) are skipped, interrupted ones resume, failed ones are tried again; tasks that another
process is training are waited for. GPUs to use (--gpus, or those nvidia-smi lists) that TensorFlow does not see are
an error before any task starts, unless --allow-cpu. Exit status: 0 every task done, 1 some task failed, 2 bad input.
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported (spec validation)

from model import cli
from model.runs import provenance
from model.sweeps import executors, gpu_check, grid, local


def parse_gpus(text: str) -> list[str]:
    """`0,1,3` → ['0', '1', '3']; `none` → [] (CPU workers only)."""
    if text.strip().lower() == "none":
        return []
    ids = [g.strip() for g in text.split(",") if g.strip()]
    if not ids or not all(g.isdigit() for g in ids):
        raise argparse.ArgumentTypeError(f"--gpus {text!r}: expected GPU ids like 0,1,3 or 'none'")
    return ids


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
                   help="ray: GPUs per task, fractional allowed (default: 1/tasks-per-gpu when there are GPUs)")
    p.add_argument("--max-retries", type=int, default=2, help="retries of a task whose process is killed")
    p.add_argument("-v", "--verbose", action="store_true", help="also log every line the task processes print")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="replace a base spec field (JSON value; dotted keys reach into objects), e.g. "
                        "--set max_epochs=2 --set output_root=/scratch/exp; repeatable")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    args = p.parse_args(argv)
    os.environ[provenance.SWEEP_COMMAND_ENV] = provenance.command_line()  # the task processes' `launched_by`
    return cli.run(run, args)


def run(args) -> int:
    tasks = grid.load(args.sweep, grid.parse_overrides(args.overrides))
    if args.dry_run:
        print(f"{len(tasks)} tasks")
        print("\n".join(task.task_id for task in tasks))
        return 0
    if args.executor == "ray" and (args.gpus is not None or args.workers is not None):
        raise executors.ExecutorError("--gpus and --workers are for --executor local; Ray uses the "
                                      "cluster's resources (see --gpus-per-task)")
    if args.executor == "local" and (args.address or args.gpus_per_task is not None):
        raise executors.ExecutorError("--address and --gpus-per-task are for --executor ray")
    options = {"tasks_per_gpu": args.tasks_per_gpu, "max_retries": args.max_retries}
    if args.executor == "local":
        gpus = local.detect_gpus() if args.gpus is None else args.gpus
        gpu_check.require_gpus(gpus, args.allow_cpu, source="--gpus" if args.gpus is not None else "GPUs found")
        options.update(gpus=gpus, workers=args.workers)
    else:
        options.update(address=args.address, gpus_per_task=args.gpus_per_task)
    grid.write_specs(tasks)
    outcomes = executors.run(tasks, args.executor, **options)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed")}
    print(f"{len(outcomes)} tasks: {counts['done']} trained now, {counts['skipped']} already done, "
          f"{counts['failed']} failed")
    for outcome in outcomes:
        if outcome.status == "failed":
            print(f"  failed {outcome.task_id}: {outcome.reason}")
    if counts["failed"]:
        print(f"failed tasks are tried again by the next run; status: python scripts/sweep_status.py {args.sweep}")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
