"""A worker's polite stop and the claims' liveness, with plain processes (tests/test_docker_worker.py runs
the same in containers): SIGTERM to a sweep worker mid-task, the timer heartbeat, a dead claim taken over after
`CLAIM_STALE_SECONDS`, and the trainer's stop within an epoch.

Each digits task here trains 60 epochs of about 0.1 s (more on a loaded machine), so a signal sent once the first
checkpoint is there lands mid-task.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import keras
import pytest

from model.runs import claims, run_folder
from model.runs.stop_request import EXIT_STOPPED, Interrupted, StopRequest

ROOT = Path(__file__).resolve().parents[1]
LONG = {"batch_size": 64, "max_epochs": 60, "patience": 1000, "checkpoint_every": 1,
        "optimizer": {"learning_rate": 0.05}}


def write_sweep(folder: Path, cells: list[dict], **base) -> Path:
    sweep = {"description": "stop test", "base": {"output_root": str(folder / "runs"), **LONG, **base},
             "grid": [{"networks": ["digits/0"], "seeds": [0], "cells": cells}]}
    path = folder / "sweep.json"
    path.write_text(json.dumps(sweep))
    return path


def start_worker(sweep: Path, log: Path, **env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "scripts/run_sweep.py", str(sweep), "--workers", "1"], cwd=ROOT,
                            stdout=log.open("w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env})


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def epochs_of(run_dir: Path) -> list[int]:
    return [int(line.split(",")[0]) for line in (run_dir / run_folder.HISTORY).read_text().splitlines()[1:]]


@pytest.mark.timeout(600)
def test_a_worker_sent_sigterm_mid_task_checkpoints_releases_its_claim_exits_0_and_the_task_resumes(tmp_path):
    sweep = write_sweep(tmp_path, [{"regulariser": "none", "weights": [0.0]}])
    run_dir = tmp_path / "runs" / "digits" / "0" / "none" / "0.0" / "seed_0"
    checkpoint = run_dir / run_folder.CHECKPOINTS / "last.npz"
    worker = start_worker(sweep, tmp_path / "worker.log")
    wait_for(lambda: checkpoint.exists() and (run_dir / run_folder.RUNNING).exists(), 300, "a claim and a checkpoint")
    worker.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    assert worker.wait(timeout=60) == 0, (tmp_path / "worker.log").read_text()
    assert time.monotonic() - sent < 10, "docker stop kills 10 s after its SIGTERM"
    out = (tmp_path / "worker.log").read_text()
    assert "stopped (resumes from its checkpoint" in out and "1 stopped" in out, out
    assert not (run_dir / run_folder.RUNNING).exists() and not (run_dir / run_folder.DONE).exists()
    assert not (run_dir / run_folder.FAILED).exists()
    stopped_at = epochs_of(run_dir)
    assert stopped_at == list(range(1, len(stopped_at) + 1)) and len(stopped_at) < LONG["max_epochs"]
    log = (run_dir / run_folder.LOG).read_text()
    assert "stopping after epoch" in log and "stopped by SIGTERM" in log

    again = start_worker(sweep, tmp_path / "again.log")
    assert again.wait(timeout=600) == 0, (tmp_path / "again.log").read_text()
    done = run_folder.read_done(run_dir)
    assert done["resumed_from_epoch"] == len(stopped_at) and done["epochs"] == LONG["max_epochs"]
    assert epochs_of(run_dir) == list(range(1, LONG["max_epochs"] + 1)), "every epoch trained exactly once"


def test_a_held_claim_beats_on_a_timer_and_a_lost_one_says_so(tmp_path):
    with claims.Claim(tmp_path, heartbeat_seconds=0.1) as claim:
        first = run_folder.read_json(claim.path)["heartbeat_unix"]
        wait_for(lambda: run_folder.read_json(claim.path)["heartbeat_unix"] > first, 10, "a beat from the thread")
        stolen = {**run_folder.read_json(claim.path), "token": "another process"}
        claim.path.write_text(json.dumps(stolen))
        wait_for(lambda: claim.lost is not None, 10, "the thread to find the claim lost")
        with pytest.raises(claims.ClaimLost):
            claim.heartbeat()
        assert json.loads(claim.path.read_text()) == stolen, "a lost claim is not overwritten"
    assert claim.path.exists(), "leaving does not remove another process's claim"


def test_the_stale_period_is_a_few_missed_beats_of_minutes():
    assert 60 <= claims.STALE_SECONDS <= 600 and claims.STALE_SECONDS >= 3 * claims.HEARTBEAT_SECONDS


@pytest.mark.timeout(600)
def test_a_claim_whose_heartbeat_stopped_is_taken_over_after_the_stale_period_and_the_wait_is_said(tmp_path):
    """A claim from another container (another PID namespace: judged by its heartbeat alone) whose owner died: a
    worker waits, naming it and its heartbeat's age, and trains the task once the heartbeat is `CLAIM_STALE_SECONDS`
    old (here 4 s instead of 150 s)."""
    sweep = write_sweep(tmp_path, [{"regulariser": "none", "weights": [0.0]}], max_epochs=3)
    run_dir = tmp_path / "runs" / "digits" / "0" / "none" / "0.0" / "seed_0"
    run_dir.mkdir(parents=True)
    dead = {"host": socket.gethostname(), "pid": 1, "pid_namespace": "another-boot/pid:[1]", "token": "dead",
            "heartbeat": run_folder.now(), "heartbeat_unix": time.time()}
    (run_dir / run_folder.RUNNING).write_text(json.dumps(dead))
    beat = time.time()
    worker = start_worker(sweep, tmp_path / "worker.log", CLAIM_STALE_SECONDS="4")
    assert worker.wait(timeout=600) == 0, (tmp_path / "worker.log").read_text()
    out = (tmp_path / "worker.log").read_text()
    assert "digits/0/none/0.0/seed_0: trained by another process (host" in out, out
    assert "heartbeat" in out and "taken over after 4 s without one)); waiting for it" in out, out
    done = run_folder.read_done(run_dir)
    assert done["epochs"] == 3 and not (run_dir / run_folder.RUNNING).exists()
    started = datetime.fromisoformat(done["started"]).timestamp()
    assert started >= beat + 4 - 1, "taken over only once the heartbeat was stale"
    assert "took over a stale claim" in (run_dir / run_folder.LOG).read_text()


def test_a_stop_within_a_long_epoch_drops_the_partial_epoch_and_resumes_from_the_checkpoint(tmp_path):
    """`StopOnSignal` at a step's end: the rest of the epoch does not fit in the grace time (0 s here), so training
    stops there; history and checkpoint hold only whole epochs, and a second call resumes and finishes the run."""
    from model.regularisers import registry
    from model.runs import training
    from model.runs.spec import Spec
    from model.zoo.catalogue import get_network

    spec = Spec.from_dict({"network": "digits/0", "regulariser": "l2", "weight": 0.001, "seed": 0,
                           "output_root": str(tmp_path), **LONG, "max_epochs": 3, "batch_size": 16})
    network = get_network("digits/0")
    splits, regulariser = network.load_data(), registry.make("l2")
    stop = StopRequest(grace_seconds=0.0)

    class SignalMidEpoch2(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 1 and batch == 5:
                stop.handle(signal.SIGTERM)

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

    with stop.deferred(), pytest.raises(Interrupted, match="at step 6 of epoch 2.*checkpoint of epoch 1"):
        training.train(spec, network, splits, regulariser, spec.run_dir, callbacks=[SignalMidEpoch2()], stop=stop)
    assert epochs_of(spec.run_dir) == [1]
    result = training.train(spec, network, splits, regulariser, spec.run_dir)
    assert result.resumed_from_epoch == 1 and result.epochs == 3 and epochs_of(spec.run_dir) == [1, 2, 3]


def test_a_signal_before_the_claim_stops_the_task_process_at_once(tmp_path):
    """Before training (loading, validating) there is nothing to save: the process exits EXIT_STOPPED, no claim."""
    stop = StopRequest()
    with stop.installed(), pytest.raises(Interrupted, match="before training"):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    assert EXIT_STOPPED == 4
