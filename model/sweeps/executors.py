"""Executors: run a sweep's unfinished tasks, each as a fresh task process, on one of the back ends.

One interface, `run(tasks, executor, **options) -> list[TaskOutcome]`, over `local` (a pool of worker slots on this
machine, one per GPU or N CPU workers), `ray` (Ray core tasks on a local or remote cluster) and `slurm` (one Slurm
job array through submitit). Ray and submitit are optional: their back ends import them only when they run.
"""
from pathlib import Path

from model.sweeps import local, ray, slurm
from model.sweeps.scheduler import ExecutorError, TaskOutcome
from model.sweeps.task_process import jobs_for

EXECUTORS = ("local", "ray", "slurm")


def run(tasks, executor: str = "local", **options) -> list[TaskOutcome]:
    """Run every unfinished task of `tasks` with `executor` (`local`, `ray` or `slurm`); options go to that back end.
    The Slurm back end keeps submitit's files in `<output_root>/slurm` (the tasks' output root)."""
    if executor == "local":
        return local.run(jobs_for(tasks), **options)
    if executor == "ray":
        return ray.run(jobs_for(tasks), **options)
    if executor == "slurm":
        folder = Path(tasks[0].spec.output_root).resolve() / "slurm"  # a sweep has one output_root
        return slurm.run(jobs_for(tasks), folder=folder, **options)
    raise ExecutorError(f"executor {executor!r}: expected one of {list(EXECUTORS)}")
