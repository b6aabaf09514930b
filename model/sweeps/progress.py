"""What a person watching a sweep sees: one line per settled task with a count and an ETA, the running tasks' epochs,
a bar on a terminal, and a closing summary that names every failed task and why.

    [3/12] digits/0/t1/0.01/seed_0: done in 3m12s (val 0.941) · 9 left · ETA 14m20s
      digits/0/t2/0.01/seed_0: epoch 7/100 (val 0.912)

A task's time is measured by the scheduler's clock from its submission to its result (with a bounded number of
`workers` the scheduler submits a task only when a worker is free, so that is its run time). The ETA counts the time
the running tasks have already spent. Per network family (`digits`, `mnist`, `pgdl`: the task id's first part) a
task is expected to take the mean time of the family's tasks finished in this run, where a running task that has
already run longer than that mean counts as one more observation at its time so far (of all tasks while the family
has none finished); a running task has that mean minus its time so far left (at least 0), a task not started yet
the whole mean. The ETA is that work divided by the parallelism (`workers` when the executor knows it, else the one
measured so far: task seconds finished / seconds elapsed; never more than the tasks left), and at least the longest
single task left.
With `watch_seconds`, a thread reads the running tasks' `history.csv` that often: off a terminal it prints a line per
new epoch, on a terminal it redraws the bar with the running tasks' epochs. The clock is injectable (`clock`,
seconds) so tests drive it. Knows nothing about executors.
"""
import shutil
import sys
import threading
import time
from pathlib import Path

from model.runs import run_folder

BAR_WIDTH = 30
WATCH_SECONDS = 5.0  # how often a driver looks at its running tasks' epochs


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
    watch_seconds: how often to look at the running tasks' epochs (None: never).
    """

    def __init__(self, out=None, clock=time.monotonic, watch_seconds: float | None = None):
        self.out = out if out is not None else sys.stdout
        self.clock = clock
        self.bar = bool(getattr(self.out, "isatty", lambda: False)())
        self.total = self.settled = 0
        self.workers: int | None = None
        self.remaining: dict[str, int] = {}
        self.times: dict[str, list[float]] = {}
        self.started_at: dict[str, float] = {}
        self.running: dict[str, object] = {}  # task id -> job, while submitted and not settled
        self.epochs: dict[str, tuple[int, int | None, float | None]] = {}  # task id -> (epoch, max, val accuracy)
        self.began = 0.0
        self.watch_seconds = watch_seconds
        self.lock = threading.RLock()
        self.stopped = threading.Event()
        self.watcher: threading.Thread | None = None

    def begin(self, jobs, workers: int | None = None) -> None:
        """A schedule of `jobs` starts; `workers`: how many run at once, when the executor knows."""
        self.total, self.workers, self.began = len(jobs), workers, self.clock()
        for job in jobs:
            self.remaining[family(job.task_id)] = self.remaining.get(family(job.task_id), 0) + 1
        if self.watch_seconds and self.watcher is None:
            self.watcher = threading.Thread(target=self._watch, name="progress", daemon=True)
            self.watcher.start()

    def submitted(self, job) -> None:
        """`job` starts (again, after a kill: its time restarts)."""
        with self.lock:
            self.started_at[job.task_id] = self.clock()
            self.running[job.task_id] = job

    def task_done(self, job, outcome, quiet: bool = False) -> None:
        """Count `outcome` (a `TaskOutcome`) of `job`; print its line unless `quiet` (found done at the start)."""
        with self.lock:
            self.settled += 1
            self.remaining[family(job.task_id)] -= 1
            self.running.pop(job.task_id, None)
            self.epochs.pop(job.task_id, None)
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

    def expected_seconds(self) -> dict[str, float]:
        """Per family with a task left: the expected time of one of its tasks (see the module docstring)."""
        now = self.clock()
        spent: dict[str, list[float]] = {}
        for task_id, started in self.started_at.items():
            spent.setdefault(family(task_id), []).append(now - started)
        observed = {}
        for f, times in self.times.items():
            mean = sum(times) / len(times)
            longer = [t for t in spent.get(f, []) if t > mean]  # lower bounds of their times, above the mean
            observed[f] = times + longer
        every = [t for times in observed.values() for t in times]
        overall = sum(every) / len(every)
        return {f: (sum(observed[f]) / len(observed[f]) if f in observed else overall) for f in self.remaining}

    def eta(self) -> float | None:
        """Seconds until every remaining task is settled (see the module docstring); None before a task finished."""
        left = sum(self.remaining.values())
        if not left:
            return 0.0
        if not self.times:
            return None
        now, mean = self.clock(), self.expected_seconds()
        running = {f: 0 for f in self.remaining}
        lefts = []
        for task_id, started in self.started_at.items():
            running[family(task_id)] += 1
            lefts.append(max(mean[family(task_id)] - (now - started), 0.0))
        lefts += [mean[f] for f, n in self.remaining.items() for _ in range(max(n - running[f], 0))]
        if self.workers:
            parallel = self.workers
        else:
            every = sum(t for times in self.times.values() for t in times)
            elapsed = now - self.began
            parallel = max(1.0, every / elapsed) if elapsed > 0 else 1.0
        return max(sum(lefts) / min(parallel, left), max(lefts, default=0.0))

    def eta_text(self) -> str:
        eta = self.eta()
        return "?" if eta is None else duration(eta)

    def poll(self) -> None:
        """Look at the running tasks' last epochs (history.csv): off a terminal print a line per new epoch, on a
        terminal redraw the bar with them."""
        with self.lock:
            running = dict(self.running)
        news = []
        for task_id, job in running.items():
            last = run_folder.last_epoch(Path(job.run_dir))
            if "epoch" not in last:
                continue
            seen = self.epochs.get(task_id)
            if seen is not None and seen[0] == int(last["epoch"]):
                continue
            spec = run_folder.read_json(Path(job.run_dir) / run_folder.SPEC) or {}
            record = (int(last["epoch"]), spec.get("max_epochs"), last.get("val_accuracy"))
            news.append((task_id, record))
        with self.lock:
            news = [(t, r) for t, r in news if t in self.running]  # not settled meanwhile
            self.epochs.update(news)
            if self.bar:
                self._draw_bar()
                self.out.flush()
            else:
                for task_id, record in news:
                    self.out.write(f"  {task_id}: {epoch_text(record)}\n")
                if news:
                    self.out.flush()

    def close(self) -> None:
        """Stop watching and end the bar's line, so that what is printed next starts on a line of its own."""
        self.stopped.set()
        if self.watcher is not None:
            self.watcher.join()
            self.watcher = None
        with self.lock:
            if self.bar and self.total:
                self.out.write("\r\033[K")
                self.out.flush()

    def summary(self, outcomes) -> list[str]:
        """The closing lines (`close` first): counts and elapsed time, then `failed <task>: <reason>` for every failed
        task."""
        self.close()
        counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed", "stopped")}
        lines = [f"{len(outcomes)} tasks in {duration(self.clock() - self.began)}: {counts['done']} trained now, "
                 f"{counts['skipped']} already done, {counts['failed']} failed"
                 + (f", {counts['stopped']} stopped (the next run resumes them)" if counts["stopped"] else "")]
        lines += [f"  failed {o.task_id}: {o.reason}" for o in outcomes if o.status == "failed"]
        return lines

    def _watch(self) -> None:
        while not self.stopped.wait(self.watch_seconds):
            try:
                self.poll()
            except Exception:  # a display thread must never stop the sweep
                continue

    def _print(self, line: str) -> None:
        if self.bar:
            self.out.write("\r\033[K")
        self.out.write(line + "\n")
        if self.bar:
            self._draw_bar()
        self.out.flush()

    def _draw_bar(self) -> None:
        if not self.total:
            return
        filled = BAR_WIDTH * self.settled // self.total
        text = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {self.settled}/{self.total}"
        if self.epochs:
            (task_id, record), more = next(iter(self.epochs.items())), len(self.epochs) - 1
            text += f" · {task_id} {epoch_text(record)}" + (f" (+{more} running)" if more else "")
        width = shutil.get_terminal_size((120, 24)).columns - 1
        self.out.write("\r\033[K" + text[:width])


def epoch_text(record: tuple) -> str:
    """`epoch 7/100 (val 0.912)` from (epoch, max epochs or None, val accuracy or None)."""
    epoch, most, val = record
    return f"epoch {epoch}/{most if most is not None else '?'}" + (f" (val {val:.3f})" if val is not None else "")
