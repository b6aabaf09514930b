"""The scheduling loop every back end shares: submit what is neither done nor claimed, collect, retry the killed.

Executors only schedule. Whether a task is finished is read from its run folder (`DONE.json`), and which process
trains it from its claim (`RUNNING.json`, created by the run itself), so any executor resumes any sweep and
several drivers or docker workers may share one experiments folder. A task whose process fails is reported (its
`FAILED.json`) and left for the next run; one whose process is killed by a signal is retried up to `max_retries`.
A driver asked to stop (`model.sweeps.shutdown`) starts nothing more, collects its running tasks (stopped politely,
checkpointed) and reports every unfinished task as `stopped`.
"""
import logging
import signal
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from model.errors import PipelineError
from model.runs import claims, run_folder, state
from model.runs.stop_request import EXIT_STOPPED
from model.sweeps import shutdown
from model.sweeps.progress import Progress
from model.sweeps.task_process import Job, TaskProcessError

log = logging.getLogger(__name__)

EXIT_FAILED, EXIT_CLAIMED = 1, 3  # `python -m model.runs.execute` exit codes (docs/architecture.md)
POLL_SECONDS = 5.0  # how often a driver looks again at tasks that another process is training
WAIT_REPORT_SECONDS = 60.0  # how often a driver says again which tasks it waits for, and since when


@dataclass(frozen=True)
class TaskOutcome:
    """What happened to a job in this run: status `done` (trained now), `skipped` (already done, or finished by
    another process) or `failed`; a detached Slurm sweep also has `submitted` (queued now) and `running` (trained by
    another process). `reason` is one line for `failed` (the Slurm job for `submitted`)."""

    task_id: str
    status: str
    reason: str = ""


class ExecutorError(PipelineError):
    """An executor cannot start: bad options, Ray or Slurm missing, a cluster out of reach, a rejected submission."""


def unfinished(tasks: list) -> list:
    """The tasks (anything with a `run_dir`: a sweep's `Task`, a `Job`) that are neither done (`DONE.json`) nor
    being trained by a live process (`RUNNING.json`): what every back end submits, in `tasks` order."""
    return [task for task in tasks if state.status(Path(task.run_dir)) not in ("done", "running")]


def schedule(jobs: list[Job], submit, wait, max_retries: int = 2, poll_seconds: float = POLL_SECONDS,
             workers: int | None = None, progress: Progress | None = None) -> list[TaskOutcome]:
    """The scheduling loop every back end shares.

    Each round submits the `unfinished` jobs (neither done nor claimed by a live process), through `submit(job)`, and
    collects their results through `wait() -> (job, returncode, tail)` (one finished job per call, blocking). A job
    whose process was killed by a signal (negative returncode) is submitted again, at most `max_retries` times.
    Jobs that another process trains are looked at again every `poll_seconds` until they are done, fail, or their
    claim goes stale (then this driver trains them). `workers`: how many jobs the back end runs at once, when it
    knows; then at most that many are submitted at a time (a job's run folder is looked at just before it starts,
    and its time is its run time); None submits every job at once. `progress` (a `Progress`) is told of every
    submission and outcome. Once `shutdown.requested` is set, nothing more is submitted, the running jobs are
    collected (a job stopped by the signal is `stopped`, not retried) and the others are `stopped` too.
    Returns one `TaskOutcome` per job, in `jobs` order.
    """
    outcomes: dict[str, TaskOutcome] = {}
    kills: dict[str, int] = {}
    touched: set[str] = set()  # jobs submitted or waited for: their outcome is news (the others were done before)
    waits = Waits()
    todo = deque(jobs)
    in_flight = 0
    if progress is not None:
        progress.begin(jobs, workers)

    def settle(job: Job, result: TaskOutcome, quiet: bool = False) -> None:
        outcomes[job.task_id] = result
        if progress is not None:
            progress.task_done(job, result, quiet)

    while todo or in_flight:
        if shutdown.requested.is_set():  # start nothing more; the running jobs stop and are collected below
            for job in todo:
                settle(job, TaskOutcome(job.task_id, "stopped"), quiet=True)
            todo.clear()
            if not in_flight:
                break
        waiting = []
        while todo and (workers is None or in_flight < workers):
            job = todo.popleft()
            if unfinished([job]):
                touched.add(job.task_id)
                submit(job)
                if progress is not None:
                    progress.submitted(job)
                in_flight += 1
            elif run_folder.is_done(Path(job.run_dir)):
                settle(job, TaskOutcome(job.task_id, "skipped"), quiet=job.task_id not in touched)
            else:  # trained by another process (or just released by it: looked at again next round)
                touched.add(job.task_id)
                waiting.append(job)
        waits.report(waiting)
        if in_flight:
            job, returncode, tail = wait()
            in_flight -= 1
            if shutdown.requested.is_set() and (returncode < 0 or returncode in (EXIT_STOPPED, EXIT_CLAIMED)):
                settle(job, TaskOutcome(job.task_id, "stopped"))
            elif returncode == EXIT_CLAIMED:
                waiting.append(job)
            elif (returncode < 0 or returncode == EXIT_STOPPED) and kills.get(job.task_id, 0) < max_retries:
                kills[job.task_id] = kills.get(job.task_id, 0) + 1
                log.warning("%s: killed by %s; retrying (%d of %d)", job.task_id, _signal_name(returncode),
                            kills[job.task_id], max_retries)
                waiting.append(job)
            else:
                result = outcome(job, returncode, tail)
                settle(job, result)
                if progress is None:
                    log.info("%s: %s%s", job.task_id, result.status, f" ({result.reason})" if result.reason else "")
        elif waiting:
            time.sleep(poll_seconds)
        todo.extend(waiting)
    return [outcomes[job.task_id] for job in jobs]


class Waits:
    """Says which tasks a driver waits for because another process trains them: when it starts waiting for one,
    then every `WAIT_REPORT_SECONDS`, with how long it has waited and how alive the other process's claim is."""

    def __init__(self, clock=time.monotonic):
        self.clock, self.since, self.said = clock, {}, {}

    def report(self, waiting: list[Job]) -> None:
        now = self.clock()
        for job in waiting:
            since = self.since.setdefault(job.task_id, now)
            if now - self.said.get(job.task_id, -WAIT_REPORT_SECONDS) < WAIT_REPORT_SECONDS:
                continue
            self.said[job.task_id] = now
            claim = run_folder.read_json(Path(job.run_dir) / run_folder.RUNNING) or {}
            log.info("%s: trained by another process (%s); waiting for it%s", job.task_id, claims.describe(claim),
                     f" for {now - since:.0f} s so far" if now > since else "")


def outcome(job: Job, returncode: int, tail: str) -> TaskOutcome:
    """What a finished task process means: `done`/`skipped`, or `failed` with its reason, which is written to
    `FAILED.json` when the process died before it could record one (bad input, a signal, a crash)."""
    run_dir = Path(job.run_dir)
    # the process says "already done" when another finished it first
    if returncode == 0 and run_folder.is_done(run_dir):
        return TaskOutcome(job.task_id, "skipped" if "already done" in last_line(tail) else "done")
    failed = run_folder.read_json(run_dir / run_folder.FAILED) or {}
    if not isinstance(failed.get("error"), str) or returncode != EXIT_FAILED:
        # the process died before it could say why (bad input, a signal, a crash): record it for the status report
        if returncode < 0:
            reason = f"killed by {_signal_name(returncode)} (retries exhausted)"
        else:
            reason = last_line(tail) or f"exited with status {returncode}"
        try:
            run_folder.write_failed(run_dir, TaskProcessError(reason))
        except OSError as err:  # a full disk or read-only folder: say so, and go on with the other tasks
            log.error("%s: could not record %s (%s): %s", job.task_id, run_folder.FAILED,
                      err.strerror or err, reason)
        return TaskOutcome(job.task_id, "failed", " ".join(reason.split()))
    return TaskOutcome(job.task_id, "failed", failed["error"])


def _signal_name(returncode: int) -> str:
    if returncode == EXIT_STOPPED:  # it stopped itself on a signal sent to it alone (not by this driver)
        return "a signal (stopped politely)"
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def last_line(text: str, limit: int = 500) -> str:
    """The last non-blank line of a process's output (its one-line error for a bad input), without the `error: `,
    at most `limit` characters."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[-1].removeprefix("error: ")[:limit] if lines else ""
