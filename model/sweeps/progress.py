"""What a person watching a sweep sees: one line per settled task with a count and an ETA, a bar on a terminal, and a
closing summary that names every failed task and why.

    [3/12] digits/0/t1/0.01/seed_0: done in 3m12s (val 0.941) · 9 left · ETA 14m20s

A task's time is measured by the scheduler's clock from its submission to its result (with a bounded number of
`workers` the scheduler submits a task only when a worker is free, so that is its run time). The ETA is the work
left, per network family (`digits`, `mnist`, `pgdl`: the task id's first part) its count times the mean time of the
family's tasks finished in this run (of all finished tasks while the family has none), divided by the parallelism:
`workers` when the executor knows it, else the one measured so far (task seconds finished / seconds elapsed). The clock
is injectable (`clock`, seconds) so tests drive it. Knows nothing about executors.
"""
import sys
import time
from pathlib import Path

from model.runs import run_folder

BAR_WIDTH = 30


def duration(seconds: float) -> str:
    """45s, 3m12s, 5h10m, 2d03h: the two largest units."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def family(task_id: str) -> str:
    """The network family of a task id: `pgdl/task1_v4/20/t1/0.01/seed_0` → `pgdl`."""
    return task_id.split("/", 1)[0]


class Progress:
    """Counts, times and prints the settled tasks of one `model.sweeps.scheduler.schedule` call.

    out: where lines go (default stdout); the bar is drawn only when `out` is a terminal. clock: seconds, monotonic.
    """

    def __init__(self, out=None, clock=time.monotonic):
        self.out = out if out is not None else sys.stdout
        self.clock = clock
        self.bar = bool(getattr(self.out, "isatty", lambda: False)())
        self.total = self.settled = 0
        self.workers: int | None = None
        self.remaining: dict[str, int] = {}
        self.times: dict[str, list[float]] = {}
        self.started_at: dict[str, float] = {}
        self.began = 0.0

    def begin(self, jobs, workers: int | None = None) -> None:
        """A schedule of `jobs` starts; `workers`: how many run at once, when the executor knows."""
        self.total, self.workers, self.began = len(jobs), workers, self.clock()
        for job in jobs:
            self.remaining[family(job.task_id)] = self.remaining.get(family(job.task_id), 0) + 1

    def submitted(self, job) -> None:
        """`job` starts (again, after a kill: its time restarts)."""
        self.started_at[job.task_id] = self.clock()

    def task_done(self, job, outcome, quiet: bool = False) -> None:
        """Count `outcome` (a `TaskOutcome`) of `job`; print its line unless `quiet` (found done at the start)."""
        self.settled += 1
        self.remaining[family(job.task_id)] -= 1
        started = self.started_at.pop(job.task_id, None)
        seconds = None if started is None else self.clock() - started
        if outcome.status == "done" and seconds is not None:
            self.times.setdefault(family(job.task_id), []).append(seconds)
        if quiet:
            return
        if outcome.status == "done":
            record = run_folder.read_done(Path(job.run_dir)) or {}
            what = "done" + (f" in {duration(seconds)}" if seconds is not None else "")
            if isinstance(record.get("val_accuracy"), (int, float)):
                what += f" (val {record['val_accuracy']:.3f})"
        elif outcome.status == "failed":
            what = f"failed: {outcome.reason}"
        elif outcome.status == "stopped":
            what = "stopped (resumes from its checkpoint on the next run)"
        else:
            what = "finished by another process"
        self._print(f"[{self.settled}/{self.total}] {job.task_id}: {what} · {self.total - self.settled} left · "
                    f"ETA {self.eta_text()}")

    def eta(self) -> float | None:
        """Seconds until every remaining task is settled (see the module docstring); None before a task finished."""
        every = [t for times in self.times.values() for t in times]
        left = sum(self.remaining.values())
        if not left:
            return 0.0
        if not every:
            return None
        overall = sum(every) / len(every)
        work = sum(n * (sum(self.times[f]) / len(self.times[f]) if self.times.get(f) else overall)
                   for f, n in self.remaining.items())
        if self.workers:
            parallel = self.workers
        else:
            elapsed = self.clock() - self.began
            parallel = max(1.0, sum(every) / elapsed) if elapsed > 0 else 1.0
        return work / min(parallel, left)

    def eta_text(self) -> str:
        eta = self.eta()
        return "?" if eta is None else duration(eta)

    def summary(self, outcomes) -> list[str]:
        """The closing lines: counts and elapsed time, then `failed <task>: <reason>` for every failed task."""
        counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed", "stopped")}
        lines = [f"{len(outcomes)} tasks in {duration(self.clock() - self.began)}: {counts['done']} trained now, "
                 f"{counts['skipped']} already done, {counts['failed']} failed"
                 + (f", {counts['stopped']} stopped (the next run resumes them)" if counts["stopped"] else "")]
        lines += [f"  failed {o.task_id}: {o.reason}" for o in outcomes if o.status == "failed"]
        return lines

    def _print(self, line: str) -> None:
        if self.bar:
            self.out.write("\r\033[K")
        self.out.write(line + "\n")
        if self.bar and self.total:
            filled = BAR_WIDTH * self.settled // self.total
            self.out.write(f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {self.settled}/{self.total}")
        self.out.flush()
