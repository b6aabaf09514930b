"""Executors: run a sweep's unfinished tasks, each as a fresh task process, on one of the back ends.

One interface, `run(tasks, executor, **options) -> list[TaskOutcome]`, over `local` (a pool of worker slots on this
machine, one per GPU or N CPU workers) and `ray` (Ray core tasks on a local or remote cluster). Back ends are
imported only when chosen (Ray is optional).
"""
from model.sweeps.scheduler import ExecutorError, TaskOutcome
from model.sweeps.task_process import jobs_for

EXECUTORS = ("local", "ray")


def run(tasks, executor: str = "local", **options) -> list[TaskOutcome]:
    """Run every unfinished task of `tasks` with `executor` (`local` or `ray`); options go to that back end."""
    if executor == "local":
        from model.sweeps import local
        return local.run(jobs_for(tasks), **options)
    if executor == "ray":
        from model.sweeps import ray
        return ray.run(jobs_for(tasks), **options)
    raise ExecutorError(f"executor {executor!r}: expected one of {list(EXECUTORS)}")
