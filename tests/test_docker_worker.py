"""The per-GPU worker as the README runs it, in real containers: two CPU workers share one experiments
folder on a small digits sweep, one is stopped with `docker stop` and one killed with `docker kill` mid-task, and a
new worker finishes the sweep; every task trains exactly once and the interrupted ones resume from their checkpoints.

Needs a Docker engine and a CPU image: `DOCKER_TEST_IMAGE` names it (`.ci/run` builds one with
`.ci/docker-image.sh` and sets it); skipped, saying why, without either. Containers run with `--network none`, as
an arbitrary user (uid 4321 when the test runs as root, else the caller's) so numba's cache and every other write
must go to the volume or /tmp, and with `CLAIM_STALE_SECONDS=20` so the killed worker's claim is taken over after
20 s instead of 150 s. About 3-4 minutes on 2 cores.
"""
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from model.runs import run_folder

IMAGE = os.environ.get("DOCKER_TEST_IMAGE")
EPOCHS = 100
HOST = "docker-test-host"
CELLS = [("digits/0", "none", 0.0, 0), ("digits/0", "t1", 0.01, 0), ("digits/0", "l2", 0.001, 0),
         ("digits/2", "t2", 0.01, 1)]


def docker(*args, timeout=120, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([os.environ.get("DOCKER") or "docker", *args], capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(f"docker {' '.join(args)}: exit {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return proc


@pytest.fixture(scope="module")
def image() -> str:
    if shutil.which(os.environ.get("DOCKER") or "docker") is None:
        pytest.skip("no docker client (CI installs Debian's docker.io: .ci/run)")
    info = docker("info", "--format", "{{.ServerVersion}}", check=False, timeout=30)
    if info.returncode != 0:
        pytest.skip(f"no Docker engine: {(info.stderr.strip().splitlines() or ['?'])[-1]}")
    if not IMAGE:
        pytest.skip("DOCKER_TEST_IMAGE is not set: build a CPU image (.ci/docker-image.sh TAG, or docker build "
                    "--build-arg EXTRAS='ray tensorboard' -t TAG .) and set DOCKER_TEST_IMAGE=TAG")
    docker("image", "inspect", IMAGE)
    return IMAGE


def run_dir(root: Path, network: str, regulariser: str, weight: float, seed: int) -> Path:
    return root / "runs" / network / regulariser / str(weight) / f"seed_{seed}"


def claims_by_host(root: Path) -> dict[str, Path]:
    """{container host name: run folder} of the live claims in the shared folder."""
    found = {}
    for cell in CELLS:
        claim = run_folder.read_json(run_dir(root, *cell) / run_folder.RUNNING)
        if claim:
            found[claim["host"]] = run_dir(root, *cell)
    return found


def checkpointed_claim(root: Path, host: str) -> Path | None:
    """The run folder that container `host` has claimed, once it holds a checkpoint."""
    folder = claims_by_host(root).get(host)
    return folder if folder is not None and (folder / run_folder.CHECKPOINTS / "last.npz").exists() else None


def wait_for(condition, timeout: float, what: str, logs=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n" +
                "\n".join(docker("logs", name, check=False).stdout[-2000:] for name in logs))


@pytest.mark.timeout(1200)
def test_two_docker_workers_stopped_and_killed_mid_task_train_every_task_exactly_once(image, tmp_path):
    root = tmp_path / "experiments"
    root.mkdir()
    user = "4321:4321" if os.geteuid() == 0 else f"{os.getuid()}:{os.getgid()}"
    sweep = {"description": "docker worker test", "expect_tasks": len(CELLS),
             "base": {"output_root": "experiments/runs", "batch_size": 64, "max_epochs": EPOCHS,
                      "patience": 10 * EPOCHS, "checkpoint_every": 1, "optimizer": {"learning_rate": 0.05}},
             "grid": [{"networks": [network], "seeds": [seed], "cells": [{"regulariser": reg, "weights": [weight]}]}
                      for network, reg, weight, seed in CELLS]}
    (root / "sweep.json").write_text(json.dumps(sweep))
    if os.geteuid() == 0:
        os.chown(root, 4321, 4321)
        os.chown(root / "sweep.json", 4321, 4321)
    names = [f"dn-test-{os.getpid()}-{n}" for n in ("a", "b", "c")]

    def worker(name: str, *options: str) -> str:
        return docker("run", "-d", "--name", name, "--network", "none", "--user", user, "-e", f"RUN_HOST={HOST}",
                      "-e", "CLAIM_STALE_SECONDS=20", "-v", f"{root}:/app/experiments", image,
                      "worker", "experiments/sweep.json", *options).stdout.strip()[:12]  # its host name

    try:
        a, b = worker(names[0], "--workers", "1"), worker(names[1], "--workers", "1")
        # docker stop the first worker once its task has a checkpoint: it exits 0 at once, claim released
        a_run = wait_for(lambda: checkpointed_claim(root, a), 600, "worker a's first checkpoint", names[:2])
        started = time.monotonic()
        docker("stop", names[0], timeout=60)
        stop_seconds = time.monotonic() - started
        state = docker("inspect", names[0], "--format", "{{.State.ExitCode}}").stdout.strip()
        assert state == "0" and stop_seconds < 10, (state, stop_seconds, docker("logs", names[0]).stdout[-2000:])
        assert not (a_run / run_folder.RUNNING).exists() and not (a_run / run_folder.DONE).exists()
        assert (a_run / run_folder.CHECKPOINTS / "last.npz").exists()
        # docker kill the second once its task has a checkpoint: its claim stays until its heartbeat is stale
        b_run = wait_for(lambda: checkpointed_claim(root, b), 600, "worker b's first checkpoint", names[:2])
        docker("kill", names[1])
        assert run_folder.read_json(b_run / run_folder.RUNNING)["host"] == b
        # a new worker resumes the stopped task at once, waits for the killed one's claim to go stale, finishes all
        worker(names[2], "--workers", "2")
        code = docker("wait", names[2], timeout=900).stdout.strip()
        logs = docker("logs", names[2])
        log = logs.stdout + logs.stderr
        assert code == "0", log[-3000:]
    finally:
        docker("rm", "-f", "-v", *names, check=False)  # -v: their anonymous /app/data volumes too

    b_task = "/".join(b_run.relative_to(root / "runs").parts)
    assert f"{b_task}: trained by another process (host {b}" in log, log[-3000:]
    assert "took over a stale claim" in (b_run / run_folder.LOG).read_text()
    for cell in CELLS:
        folder = run_dir(root, *cell)
        done = run_folder.read_done(folder)
        assert done is not None and not (folder / run_folder.FAILED).exists(), cell
        epochs = [int(line.split(",")[0]) for line in (folder / run_folder.HISTORY).read_text().splitlines()[1:]]
        assert epochs == list(range(1, EPOCHS + 1)), f"{cell}: every epoch trained exactly once"
        assert done["epochs"] == EPOCHS and done["host"] == HOST and not (folder / run_folder.RUNNING).exists()
        interrupted = folder in (a_run, b_run)
        assert (done["resumed_from_epoch"] > 0) == interrupted, (cell, done["resumed_from_epoch"])
        attempts = (folder / run_folder.LOG).read_text().count("==== ")
        assert attempts == (2 if interrupted else 1), f"{cell}: {attempts} attempts"
