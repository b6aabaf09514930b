"""The Ray executor: each task is a Ray core task that runs one task process on some node of a Ray cluster.

`address` joins a running cluster (`ray start --head` on one machine, `ray start --address=HEAD:PORT` on the
others; every node must see the same experiments folder and code); without it Ray starts a private one-node
cluster. A task asks for `gpus_per_task` GPUs (fractional packs several small tasks on a GPU; Ray sets
CUDA_VISIBLE_DEVICES) and `cpus_per_task` CPUs; `max_calls=1` gives each task a fresh Ray worker and the task's own
child process releases GPU memory when it exits; Ray resubmits a task whose worker died, up to `max_retries`.
Ray is imported only when this executor runs.
"""
import logging
import socket

from model.sweeps.scheduler import ExecutorError, TaskOutcome, schedule
from model.sweeps.task_process import Job, run_process, task_env

log = logging.getLogger(__name__)


def _run_task(job: Job, hide_gpus: bool) -> tuple[int, str]:
    """Body of the Ray task, on a Ray worker: run the task process there; returns (exit status, output tail)."""
    return run_process(job, task_env(gpus="-1" if hide_gpus else None))


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    """Fail fast with one line when nothing listens at `HOST:PORT` (Ray itself would retry for minutes)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return  # `auto` or a `ray://` form: let Ray resolve it
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as err:
        raise ExecutorError(f"executor 'ray': no Ray cluster at {address} ({err.strerror or err}); start one with "
                            f"`ray start --head` or check --address") from None


def run(jobs: list[Job], address: str | None = None, gpus_per_task: float | None = None,
        tasks_per_gpu: int = 1, cpus_per_task: float = 1.0, max_retries: int = 2, num_cpus: int | None = None,
        poll_seconds: float | None = None, progress=None) -> list[TaskOutcome]:
    """Run the unfinished `jobs` as Ray tasks; one `TaskOutcome` per job.

    Every job is submitted at once (Ray queues them and may grow the cluster), so a task's time in `progress` (a
    `model.sweeps.progress.Progress`) includes its wait in Ray's queue and the ETA uses the measured parallelism.
    address: a cluster's `HOST:PORT` (or `auto`); None starts a private local cluster with `num_cpus` CPUs.
    gpus_per_task: GPUs per task; None means 1 / tasks_per_gpu when the cluster has GPUs, else 0.
    """
    try:
        import ray
    except ImportError:
        raise ExecutorError("executor 'ray': the ray package is not installed (pip install ray)") from None
    if cpus_per_task <= 0 or tasks_per_gpu < 1 or (gpus_per_task is not None and gpus_per_task < 0):
        raise ExecutorError(f"executor 'ray': cpus_per_task = {cpus_per_task}, tasks_per_gpu = {tasks_per_gpu}, "
                            f"gpus_per_task = {gpus_per_task}: expected > 0, >= 1 and >= 0")
    if address:
        _check_reachable(address)
    try:
        if address:
            ray.init(address=address, log_to_driver=False, include_dashboard=False)
        else:
            ray.init(num_cpus=num_cpus, log_to_driver=False, include_dashboard=False)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise ExecutorError(f"executor 'ray': cannot reach a Ray cluster at {address or 'a new local one'} "
                            f"({' '.join(str(err).split())[:300]})") from None
    try:
        cluster_gpus = ray.cluster_resources().get("GPU", 0)
        if gpus_per_task is None:
            gpus_per_task = 1.0 / tasks_per_gpu if cluster_gpus else 0.0
        log.info("ray executor: cluster %s, %g GPU(s) and %g CPU(s) per task", ray.cluster_resources(),
                 gpus_per_task, cpus_per_task)
        remote = ray.remote(num_gpus=gpus_per_task, num_cpus=cpus_per_task, max_calls=1,
                            max_retries=max_retries)(_run_task)
        pending: dict = {}

        def submit(job: Job) -> None:
            pending[remote.remote(job, gpus_per_task == 0)] = job

        def wait() -> tuple[Job, int, str]:
            [ref], _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ref)
            try:
                returncode, tail = ray.get(ref)
            except ray.exceptions.WorkerCrashedError as err:  # the worker died past max_retries
                returncode, tail = -9, str(err)
            except ray.exceptions.RayError as err:
                returncode, tail = 127, f"the Ray task failed: {' '.join(str(err).split())[:500]}"
            return job, returncode, tail

        options = {} if poll_seconds is None else {"poll_seconds": poll_seconds}
        return schedule(jobs, submit, wait, max_retries=max_retries, progress=progress, **options)
    finally:
        ray.shutdown()
