"""The local executor: a pool of worker slots on this machine, each running one task process at a time.

With GPUs, each GPU gets `tasks_per_gpu` slots and a slot's process sees only its GPU (CUDA_VISIBLE_DEVICES) with
TensorFlow memory growth on, so several small tasks can share one GPU. Without GPUs, `workers` CPU slots. Slots are
threads that each wait on one child process at a time; the scheduling itself is `model.sweeps.scheduler.schedule`.
"""
import logging
import os
import queue
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

from model.sweeps.scheduler import ExecutorError, TaskOutcome, schedule
from model.sweeps.task_process import Job, run_process, task_env

log = logging.getLogger(__name__)


def detect_gpus() -> list[str]:
    """GPU ids of this machine: CUDA_VISIBLE_DEVICES when set, else what `nvidia-smi -L` lists, else []."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g for g in (s.strip() for s in visible.split(",")) if g and g != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def slots(gpus: list[str] | None = None, tasks_per_gpu: int = 1, workers: int | None = None) -> list[str]:
    """The CUDA_VISIBLE_DEVICES value of each worker slot.

    gpus: GPU ids to use (None: `detect_gpus()`; []: none). With GPUs: each id `tasks_per_gpu` times. Without:
    `workers` CPU slots (default: half the CPU cores, at least 1), each with every GPU hidden (`-1`).
    """
    if tasks_per_gpu < 1:
        raise ExecutorError(f"tasks_per_gpu = {tasks_per_gpu}: expected an integer >= 1")
    if workers is not None and workers < 1:
        raise ExecutorError(f"workers = {workers}: expected an integer >= 1")
    gpus = detect_gpus() if gpus is None else list(gpus)
    if gpus:
        return [g for g in gpus for _ in range(tasks_per_gpu)]
    return ["-1"] * (workers or max(1, (os.cpu_count() or 2) // 2))


def run(jobs: list[Job], gpus: list[str] | None = None, tasks_per_gpu: int = 1, workers: int | None = None,
        max_retries: int = 2, poll_seconds: float | None = None, progress=None) -> list[TaskOutcome]:
    """Run the unfinished `jobs` on this machine's worker slots (see `slots`); one `TaskOutcome` per job.

    progress: a `model.sweeps.progress.Progress` to report to (one slot runs one job, so the slots are the workers).
    """
    devices_of_slots = slots(gpus, tasks_per_gpu, workers)
    log.info("local executor: %d slot(s), CUDA_VISIBLE_DEVICES %s", len(devices_of_slots), devices_of_slots)
    free, finished = queue.Queue(), queue.Queue()
    for devices in devices_of_slots:
        free.put(devices)

    def work(job: Job) -> None:
        devices = free.get()
        try:
            returncode, tail = run_process(job, task_env(gpus=devices))
        except BaseException as err:  # never lose a job: report it as failed to start
            returncode, tail = 127, f"could not start the task process: {err}"
        finally:
            free.put(devices)
        finished.put((job, returncode, tail))

    options = {} if poll_seconds is None else {"poll_seconds": poll_seconds}
    with ThreadPoolExecutor(max_workers=len(devices_of_slots), thread_name_prefix="slot") as pool:
        return schedule(jobs, lambda job: pool.submit(work, job), finished.get, max_retries=max_retries,
                        workers=len(devices_of_slots), progress=progress, **options)
