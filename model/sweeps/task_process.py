"""One task as a fresh process: `python -m model.runs.execute SPEC.json`, its environment and its lifetime.

A task process dies with the process that started it (Linux `PR_SET_PDEATHSIG`); one killed by a signal has its
claim released here (we run on its host). Knows nothing about scheduling.
"""
import ctypes
import logging
import os
import signal
import subprocess
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from model.runs import claims
from model.sweeps import shutdown

log = logging.getLogger(__name__)

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


class TaskProcessError(Exception):
    """A task's process ended without recording why (the reason `FAILED.json` then holds)."""


def jobs_for(tasks, cwd: str | os.PathLike | None = None) -> list[Job]:
    """`model.sweeps.grid.Task`s → `Job`s with absolute paths resolved against `cwd` (default: the current one)."""
    cwd = Path(cwd or os.getcwd()).resolve()
    return [Job(t.task_id, str(cwd / t.spec_path), str(cwd / t.run_dir), str(cwd)) for t in tasks]


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
    """Run `python -m model.runs.execute <spec>` for `job` in `job.cwd`; return (exit status, last output lines).

    A negative status is the signal that killed the process; its `RUNNING.json` is then removed (we run on its
    host). While it runs, a stopping driver (`model.sweeps.shutdown`) sends it SIGTERM. The process dies with the
    one that started it (Linux `PR_SET_PDEATHSIG`), so killing a driver or a Ray worker never leaves an orphan
    training a task.
    """
    cmd = [python or sys.executable, "-m", "model.runs.execute", job.spec_path]
    proc = subprocess.Popen(cmd, cwd=job.cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent(os.getpid()))
    shutdown.register(proc)  # a stopping driver passes SIGTERM on to it
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    try:
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            tail.append(line)
            log.debug("%s | %s", job.task_id, line)
        returncode = proc.wait()
    finally:
        shutdown.unregister(proc)
    if returncode < 0:  # killed: its claim would block the retry until it went stale (same host as the child)
        claims.release_dead_claim(Path(job.run_dir), proc.pid)
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
