"""Progress of a sweep: `[k/N] <task>: done in … (val …) · n left · ETA …` lines, per-family ETA, the closing summary.

Driven through the real scheduling loop (`model.sweeps.scheduler.schedule`) with a fake back end that runs two
workers on a fake clock: digits tasks take 60 s, mnist tasks 600 s.
"""
import io
import json
import time
from pathlib import Path

import pytest

from model.runs import run_folder
from model.sweeps import grid
from model.sweeps.progress import Progress, duration
from model.sweeps.scheduler import TaskOutcome, schedule
from model.sweeps.task_process import jobs_for

SECONDS = {"digits": 60.0, "mnist": 600.0}


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class TwoWorkers:
    """A back end whose jobs end, in order of finishing time, after their family's SECONDS on a fake clock."""

    def __init__(self, clock, fail=()):
        self.clock, self.fail, self.running = clock, set(fail), []

    def submit(self, job):
        self.running.append((self.clock() + SECONDS[job.task_id.split("/")[0]], len(self.running), job))

    def wait(self):
        self.running.sort(key=lambda r: r[:2])
        end, _, job = self.running.pop(0)
        self.clock.now = end
        if job.task_id in self.fail:
            run_folder.write_failed(Path(job.run_dir), FloatingPointError("epoch 3: val_loss became non-finite (nan)"))
            return job, 1, "error: training failed"
        run_folder.write_done(Path(job.run_dir), {"task_id": job.task_id, "val_accuracy": 0.9412})
        return job, 0, ""


def sweep(tmp_path):
    return grid.expand({"base": {"output_root": str(tmp_path / "out"), "max_epochs": 2},
                          "grid": [{"networks": ["digits/0", "mnist/0"],
                                    "cells": [{"regulariser": "none", "weights": [0]},
                                              {"regulariser": "t1", "weights": [0.01, 1]}]}]})


def test_duration_shows_the_two_largest_units():
    assert [duration(s) for s in (0.4, 45, 192, 3600 * 5 + 600, 86400 * 2 + 3 * 3600)] == \
        ["0s", "45s", "3m12s", "5h10m", "2d03h"]


def test_progress_lines_count_and_eta_per_family_on_a_fake_clock(tmp_path):
    tasks = sweep(tmp_path)
    jobs = jobs_for(tasks, tmp_path)
    run_folder.write_done(Path(jobs[0].run_dir), {"task_id": jobs[0].task_id})  # done by an earlier run: counted
    clock, out = Clock(), io.StringIO()
    progress = Progress(out=out, clock=clock)
    backend = TwoWorkers(clock, fail={"mnist/0/t1/1.0/seed_0"})
    outcomes = schedule(jobs, backend.submit, backend.wait, workers=2, progress=progress)
    assert [o.status for o in outcomes] == ["skipped", "done", "done", "done", "done", "failed"]
    # d2, d3 start at 0 and end at 60. After d2: d3 has spent its expected 60 s (0 left); mnist is timed as the
    # digits mean until one ends, 3·60/2. After d3: m1 (just started) 60 + m2, m3 60 each, over 2 workers.
    # m1, m2 start at 60 and end at 660: after m1, m2 has spent its 600 s, m3 600 left (the longest single task);
    # then m3 alone: 600/min(2 workers, 1 left)
    assert out.getvalue().splitlines() == [
        "[2/6] digits/0/t1/0.01/seed_0: done in 1m00s (val 0.941) · 4 left · ETA 1m30s",
        "[3/6] digits/0/t1/1.0/seed_0: done in 1m00s (val 0.941) · 3 left · ETA 1m30s",
        "[4/6] mnist/0/none/0.0/seed_0: done in 10m00s (val 0.941) · 2 left · ETA 10m00s",
        "[5/6] mnist/0/t1/0.01/seed_0: done in 10m00s (val 0.941) · 1 left · ETA 10m00s",
        "[6/6] mnist/0/t1/1.0/seed_0: failed: epoch 3: val_loss became non-finite (nan) · 0 left · ETA 0s",
    ]
    assert progress.summary(outcomes) == [
        "6 tasks in 21m00s: 4 trained now, 1 already done, 1 failed",
        "  failed mnist/0/t1/1.0/seed_0: epoch 3: val_loss became non-finite (nan)",
    ]


def test_eta_without_a_known_worker_count_uses_the_measured_parallelism(tmp_path):
    jobs = jobs_for(sweep(tmp_path), tmp_path)[:3]  # digits only
    clock, out = Clock(), io.StringIO()
    backend = TwoWorkers(clock)
    schedule(jobs, backend.submit, backend.wait, progress=Progress(out=out, clock=clock))  # all submitted at once
    # all three end at t=60: after the first, the other two have spent the 60 s a digits task takes: nothing left
    assert out.getvalue().splitlines()[0].endswith("· 2 left · ETA 0s")
    assert out.getvalue().splitlines()[1].endswith("· 1 left · ETA 0s")


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_bar_only_on_a_terminal(tmp_path):
    for out, bar in ((io.StringIO(), False), (Terminal(), True)):
        jobs = jobs_for(sweep(tmp_path / str(bar)), tmp_path)[:2]
        clock = Clock()
        backend = TwoWorkers(clock)
        schedule(jobs, backend.submit, backend.wait, workers=1, progress=Progress(out=out, clock=clock))
        assert ("[###############...............] 1/2" in out.getvalue()) is bar
        assert ("\033[K" in out.getvalue()) is bar


def test_the_eta_counts_the_time_running_tasks_have_spent(tmp_path):
    jobs = jobs_for(sweep(tmp_path), tmp_path)[:3]  # three digits tasks, two workers
    clock, out = Clock(), io.StringIO()
    progress = Progress(out=out, clock=clock)
    progress.begin(jobs, workers=2)
    progress.submitted(jobs[0]), progress.submitted(jobs[1])
    clock.now += 60
    progress.task_done(jobs[0], TaskOutcome(jobs[0].task_id, "done"))
    assert out.getvalue().endswith("· 2 left · ETA 1m00s\n")  # jobs[1] has spent its 60 s; jobs[2] takes 60
    progress.submitted(jobs[2])
    clock.now += 140
    # jobs[1] has run 200 s, jobs[2] 140 s: both longer than the 60 s finished, so both count (as lower bounds):
    # a task is expected to take (60 + 200 + 140) / 3 s, up from 60; both have already spent that: 0 s expected left
    assert progress.expected_seconds()["digits"] == pytest.approx(400 / 3)
    assert progress.eta() == 0.0


def test_running_tasks_epochs_and_a_clean_closing_line(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # the bar is cut to the terminal's width
    [job] = jobs_for(sweep(tmp_path), tmp_path)[:1]
    run_dir = Path(job.run_dir)
    run_dir.mkdir(parents=True)
    (run_dir / run_folder.SPEC).write_text(json.dumps({"max_epochs": 5}))
    for out in (io.StringIO(), Terminal()):
        progress = Progress(out=out, clock=Clock())
        progress.begin([job])
        progress.submitted(job)
        progress.poll()  # no history yet: nothing
        (run_dir / run_folder.HISTORY).write_text("epoch,val_accuracy\n1,0.5\n2,0.8125\n")
        progress.poll()
        progress.poll()  # the same epoch: nothing new
        text = out.getvalue()
        if isinstance(out, Terminal):
            assert text.endswith(f"[..............................] 0/1 · {job.task_id} epoch 2/5 (val 0.812)")
            assert progress.summary([]) and out.getvalue().endswith("\r\033[K")  # the next line starts clean
        else:
            assert text == f"  {job.task_id}: epoch 2/5 (val 0.812)\n"
        (run_dir / run_folder.HISTORY).unlink()


def test_the_watcher_prints_each_new_epoch(tmp_path):
    [job] = jobs_for(sweep(tmp_path), tmp_path)[:1]
    run_dir = Path(job.run_dir)
    run_dir.mkdir(parents=True)
    (run_dir / run_folder.HISTORY).write_text("epoch,val_accuracy\n1,0.5\n")
    out = io.StringIO()
    progress = Progress(out=out, watch_seconds=0.01)
    progress.begin([job])
    progress.submitted(job)
    deadline = time.monotonic() + 30
    while "epoch 1/?" not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    progress.close()
    assert out.getvalue() == f"  {job.task_id}: epoch 1/? (val 0.500)\n" and progress.watcher is None
