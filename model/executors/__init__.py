"""Executors: run a sweep's unfinished tasks, each as a fresh `python -m model.experiment SPEC.json` process.

One interface, `run(tasks, executor, **options) -> list[Outcome]`, over two back ends: `local` (a pool of worker
slots on this machine, one per GPU or N CPU workers) and `ray` (Ray core tasks on a local or remote cluster).
Executors only schedule. Whether a task is finished is read from its run folder (`DONE.json`), and which process
trains it from its claim (`RUNNING.json`, created by the experiment itself), so any executor resumes any sweep and
several drivers or docker workers may share one experiments folder. A task whose process fails is reported (its
`FAILED.json`) and left for the next run; one whose process is killed by a signal is retried up to `max_retries`.
"""
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from model import runs
from model.errors import PipelineError

log = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")
EXIT_FAILED, EXIT_CLAIMED = 1, 3  # `python -m model.experiment` exit codes (docs/architecture.md)
POLL_SECONDS = 5.0  # how often a driver looks again at tasks that another process is training
TAIL_LINES = 40  # lines of a failed process's output kept for its reason


@dataclass(frozen=True)
class Job:
    """One task as an executor sees it: ids and paths only (cheap to pickle to a Ray worker).

    spec_path, run_dir: absolute paths. cwd: the working directory the process runs in (relative paths inside
    the spec, such as `output_root` and `data_root`, resolve against it).
    """

    task_id: str
    spec_path: str
    run_dir: str
    cwd: str


@dataclass(frozen=True)
class Outcome:
    """What happened to a job in this run: status `done` (trained now), `skipped` (already done, or finished by
    another process) or `failed`; `reason` is one line for `failed`."""

    task_id: str
    status: str
    reason: str = ""


class ExecutorError(PipelineError):
    """An executor cannot start: bad options, Ray missing or a cluster out of reach."""


class TaskProcessError(Exception):
    """A task's process ended without recording why (the reason `FAILED.json` then holds)."""


def jobs_for(tasks, cwd: str | os.PathLike | None = None) -> list[Job]:
    """`model.sweeps.Task`s → `Job`s with absolute paths resolved against `cwd` (default: the current one)."""
    cwd = Path(cwd or os.getcwd()).resolve()
    return [Job(t.task_id, str(cwd / t.spec_path), str(cwd / t.run_dir), str(cwd)) for t in tasks]


def run(tasks, executor: str = "local", **options) -> list[Outcome]:
    """Run every unfinished task of `tasks` with `executor` (`local` or `ray`); options go to that back end."""
    if executor == "local":
        from model.executors import local
        return local.run(jobs_for(tasks), **options)
    if executor == "ray":
        from model.executors import ray
        return ray.run(jobs_for(tasks), **options)
    raise ExecutorError(f"executor {executor!r}: expected one of {list(EXECUTORS)}")


def schedule(jobs: list[Job], submit, wait, max_retries: int = 2,
             poll_seconds: float = POLL_SECONDS) -> list[Outcome]:
    """The scheduling loop both back ends share.

    Each round submits the jobs that are neither done nor claimed by a live process, through `submit(job)`, and
    collects their results through `wait() -> (job, returncode, tail)` (one finished job per call, blocking). A job
    whose process was killed by a signal (negative returncode) is submitted again, at most `max_retries` times.
    Jobs that another process trains are looked at again every `poll_seconds` until they are done, fail, or their
    claim goes stale (then this driver trains them). Returns one `Outcome` per job, in `jobs` order.
    """
    outcomes: dict[str, Outcome] = {}
    kills: dict[str, int] = {}
    todo = deque(jobs)
    in_flight = 0
    while todo or in_flight:
        waiting = []
        while todo:
            job = todo.popleft()
            status = runs.status(Path(job.run_dir))
            if status == "done":
                outcomes.setdefault(job.task_id, Outcome(job.task_id, "skipped"))
            elif status == "running":
                waiting.append(job)
            else:
                submit(job)
                in_flight += 1
        if in_flight:
            job, returncode, tail = wait()
            in_flight -= 1
            if returncode == EXIT_CLAIMED:
                waiting.append(job)
            elif returncode < 0 and kills.get(job.task_id, 0) < max_retries:
                kills[job.task_id] = kills.get(job.task_id, 0) + 1
                log.warning("%s: killed by %s; retrying (%d of %d)", job.task_id, _signal_name(returncode),
                            kills[job.task_id], max_retries)
                waiting.append(job)
            else:
                outcomes[job.task_id] = outcome = _outcome(job, returncode, tail)
                log.info("%s: %s%s", job.task_id, outcome.status, f" ({outcome.reason})" if outcome.reason else "")
        elif waiting:
            log.info("%d task(s) are being trained by other processes; looking again in %.0f s",
                     len(waiting), poll_seconds)
            time.sleep(poll_seconds)
        todo.extend(waiting)
    return [outcomes[job.task_id] for job in jobs]


def _outcome(job: Job, returncode: int, tail: str) -> Outcome:
    run_dir = Path(job.run_dir)
    if returncode == 0 and runs.is_done(run_dir):  # the process says "already done" when another finished it first
        return Outcome(job.task_id, "skipped" if "already done" in _last_line(tail) else "done")
    failed = runs.read_json(run_dir / runs.FAILED)
    if failed is None or returncode != EXIT_FAILED:
        # the process died before it could say why (bad input, a signal, a crash): record it for the status report
        if returncode < 0:
            reason = f"killed by {_signal_name(returncode)} (retries exhausted)"
        else:
            reason = _last_line(tail) or f"exited with status {returncode}"
        runs.write_failed(run_dir, TaskProcessError(reason))
        failed = runs.read_json(run_dir / runs.FAILED)
    return Outcome(job.task_id, "failed", failed["error"])


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def _last_line(text: str) -> str:
    """The process's last output line, which is its one-line error for a bad input, without the `error: `."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1].removeprefix("error: ")[:500] if lines else ""


def task_env(base: dict | None = None, gpus: str | None = None) -> dict:
    """The environment of a task process: `base` (default: ours) with TF memory growth on and quiet TF logs.

    gpus: the value for CUDA_VISIBLE_DEVICES (`"0"`, `"1,2"`; `"-1"` hides every GPU); None leaves it as is (Ray
    sets it for its workers).
    """
    env = dict(os.environ if base is None else base)
    env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"
    if gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpus
    return env


def run_process(job: Job, env: dict, python: str | None = None) -> tuple[int, str]:
    """Run `python -m model.experiment <spec>` for `job` in `job.cwd`; return (exit status, last output lines).

    A negative status is the signal that killed the process; its `RUNNING.json` is then removed (we run on its
    host). The process dies with the one that started it (Linux `PR_SET_PDEATHSIG`), so killing a driver or a Ray
    worker never leaves an orphan training a task.
    """
    cmd = [python or sys.executable, "-m", "model.experiment", job.spec_path]
    proc = subprocess.Popen(cmd, cwd=job.cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent(os.getpid()))
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    for raw in proc.stdout:
        line = raw.decode("utf-8", "replace").rstrip()
        tail.append(line)
        log.debug("%s | %s", job.task_id, line)
    returncode = proc.wait()
    if returncode < 0:  # killed: its claim would block the retry until it went stale (same host as the child)
        runs.release_dead_claim(Path(job.run_dir), proc.pid)
    return returncode, "\n".join(tail)


def _die_with_parent(parent_pid: int):
    """A `preexec_fn` asking Linux to SIGKILL the child when its parent thread dies (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, in the parent, not after the fork
    PR_SET_PDEATHSIG = 1

    def preexec():
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec
