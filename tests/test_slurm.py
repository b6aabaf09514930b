"""The Slurm executor against a real one-node Slurm cluster (`tests/slurm_cluster.py`), and its parts without one.

The slow tests run the small digits sweep of `tests/test_executors.py` (4 tasks, 2 epochs) through `--executor
slurm --gpus-per-task 0` and compare every DONE.json with the local executor's reference run; mid-run, one array
element is requeued with `scontrol requeue` and another gets the time-limit signal (USR2, which submitit answers by
checkpointing and requeueing), and both must resume from their checkpoints. The generated sbatch script and a
detached sweep followed by `sweep_status.py` run single tasks. The cluster tests skip, saying why, only where the
Slurm packages are not installed (`.ci/run` installs them).
"""
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from slurm_cluster import slurm_cluster  # noqa: F401  (the module-scoped fixture)
from test_executors import ROOT, cli, reference, results, sweep_file  # noqa: F401  (reference: a fixture)

from model.runs import claims, run_folder
from model.sweeps import grid, sbatch, slurm
from model.sweeps.scheduler import ExecutorError
from model.sweeps.task_process import jobs_for

pytestmark = pytest.mark.xdist_group("slurm")  # one cluster per test session under `--dist loadgroup`


def one_task_sweep(tmp_path: Path, name: str, regulariser: str, weight: float) -> Path:
    """The small sweep cut down to its digits/0 task with `regulariser` at `weight`."""
    path = sweep_file(tmp_path, name)
    sweep = json.loads(path.read_text())
    sweep["grid"] = [{"networks": ["digits/0"], "seeds": [0],
                      "cells": [{"regulariser": regulariser, "weights": [weight]}]}]
    path.write_text(json.dumps(sweep))
    return path


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def wait_until_gone(cluster, timeout: float = 600) -> None:
    deadline = time.time() + timeout
    while any(j.split("|")[1] in slurm.LIVE_STATES for j in cluster.jobs()):
        assert time.time() < deadline, f"Slurm jobs still running: {cluster.jobs()}"
        time.sleep(1)


# ---------------------------------------------------------------------------------------------- without a cluster
def test_a_requeue_whose_scontrol_the_requeue_itself_killed_ends_the_element_without_a_result(tmp_path):
    """submitit's `scontrol requeue` of a timed-out element can die of the SIGTERM its own requeue sends to the job;
    the element then exits as one Slurm ended (143, no result), not as a failed one."""
    script = f"""
import subprocess, sys
sys.path.insert(0, {str(ROOT)!r})
from types import SimpleNamespace
from model.sweeps import slurm
def requeue_killed_mid_run(job, env):
    raise subprocess.CalledProcessError(-15, ["scontrol", "requeue", "1_1"])
slurm.run_process = requeue_killed_mid_run
slurm.Element(SimpleNamespace(task_id="digits/0/t1/0.01/seed_0"), hide_gpus=True)()
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 143, proc.stderr
    assert "while submitit's requeue of it was running" in proc.stdout
    other = subprocess.CalledProcessError(1, ["scontrol", "requeue", "1_1"])
    assert not slurm.requeue_killed(other) and slurm.requeue_killed(
        subprocess.CalledProcessError(-15, ["scontrol", "requeue", "1_1"]))


@pytest.mark.parametrize("text, expected", [("90", 90), ("4:00:00", 240), ("1-12", 2160), ("1-0:30", 1470),
                                            ("0:30", 1), ("2-00:00:01", 2881)])
def test_time_limits_in_slurm_formats_become_minutes(text, expected):
    assert slurm.minutes(text) == expected


def test_bad_slurm_options_are_rejected():
    with pytest.raises(ExecutorError, match="--time '4h'"):
        slurm.minutes("4h")
    with pytest.raises(ExecutorError, match="expected KEY=VALUE"):
        slurm.parse_options(["account"])
    assert slurm.parse_options(["account=lab", "--qos=high"]) == {"account": "lab", "qos": "high"}
    params = slurm.parameters("s", "1:00:00", gpus_per_task=0, slurm_options={"account": "lab"})
    assert "gpus_per_task" not in params and params["time"] == 60
    assert params["additional_parameters"] == {"requeue": True, "account": "lab"}


def test_a_claim_of_an_earlier_run_of_the_same_slurm_job_is_stale(tmp_path, monkeypatch):
    """A requeued element (same job id, higher restart count) takes over its own earlier run's claim, even one made
    on another node; a claim of another job, or of this very run, stays live."""
    claim = {"host": "another-node", "pid": 1, "heartbeat_unix": time.time(), "slurm_job": "7_3", "slurm_restart": 0}
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "7")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert claims.slurm_job() == ("7_3", 1)
    assert claims.claim_is_stale(claim)
    assert not claims.claim_is_stale({**claim, "slurm_job": "7_4"})
    assert not claims.claim_is_stale({**claim, "slurm_restart": 1})
    run_dir = tmp_path / "run"
    with claims.Claim(run_dir):
        held = run_folder.read_json(run_dir / run_folder.RUNNING)
        assert (held["slurm_job"], held["slurm_restart"]) == ("7_3", 1)
        assert not claims.release_job_claim(run_dir, "7_4") and claims.release_job_claim(run_dir, "7_3")


def test_no_sbatch_on_path_is_one_line_and_submits_nothing(tmp_path):
    path = sweep_file(tmp_path, "nosbatch")
    proc = cli("run_sweep.py", path, "--executor", "slurm", env={**os.environ, "PATH": str(tmp_path)}, check=False)
    assert "no sbatch on PATH" in one_line_error(proc)
    assert not list((tmp_path / "nosbatch").rglob(slurm.RECORD))


def test_slurm_options_need_the_slurm_executor(tmp_path):
    path = sweep_file(tmp_path, "opts")
    proc = cli("run_sweep.py", path, "--partition", "gpu", check=False)
    assert "--partition: not an option of --executor local" in one_line_error(proc)


def test_the_sbatch_script_lists_each_task_once_with_the_options(tmp_path):
    tasks = grid.load(sweep_file(tmp_path, "script"))
    params = slurm.parameters("script", "90", partition="gpu", mem="8G", gpus_per_task=1, array_parallelism=2,
                              slurm_options={"account": "lab"})
    text = sbatch.script(jobs_for(tasks), tmp_path / "logs", params)
    for line in ("#SBATCH --array=0-3%2", "#SBATCH --time=90", "#SBATCH --partition=gpu", "#SBATCH --mem=8G",
                 "#SBATCH --gpus-per-task=1", "#SBATCH --requeue", "#SBATCH --account=lab",
                 "#SBATCH --signal=B:USR2@90"):
        assert line in text.splitlines(), line
    assert [line.strip() for line in text.splitlines() if line.strip().endswith("spec.json")] == \
        [str(t.spec_path) for t in tasks]  # the sweep's output_root is absolute
    assert "CUDA_VISIBLE_DEVICES=-1" not in text


# ---------------------------------------------------------------------------------------------- a real cluster
def test_unknown_partition_and_rejected_submission_are_one_line_each(slurm_cluster, tmp_path):  # noqa: F811
    env = slurm_cluster.env
    before = slurm_cluster.jobs()
    path = sweep_file(tmp_path, "rejected")
    proc = cli("run_sweep.py", path, "--executor", "slurm", "--partition", "nosuch", env=env, check=False)
    assert "--partition 'nosuch': not a partition of this Slurm cluster (it has: debug)" in one_line_error(proc)
    # the default, one GPU per task, on a node without GPUs: sbatch refuses the whole array
    proc = cli("run_sweep.py", path, "--executor", "slurm", env=env, check=False)
    line = one_line_error(proc)
    assert "sbatch rejected the array of 4 task(s)" in line and "generic resource" in line, line
    assert slurm_cluster.jobs() == before
    assert not list((tmp_path / "rejected").rglob(slurm.RECORD))


@pytest.mark.slow
def test_slurm_sweep_gives_the_local_results_and_requeued_elements_resume(reference, slurm_cluster,  # noqa: F811
                                                                           tmp_path):
    path = sweep_file(tmp_path, "slurm")
    tasks = grid.load(path)
    driver = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "run_sweep.py"), str(path), "--executor",
                               "slurm", "--gpus-per-task", "0"], cwd=ROOT, env=slurm_cluster.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # mid-run (epoch 1 checkpointed, epoch 2 not done): one element requeued by hand, another sent the signal Slurm
    # gives an element near its time limit (what submitit's own `job._interrupt(timeout=True)` sends)
    actions = {"requeue": ["scontrol", "requeue"], "time limit": ["scancel", "--signal=USR2"]}
    hit, deadline = {}, time.time() + 900
    while driver.poll() is None and len(hit) < len(actions) and time.time() < deadline:
        for task in tasks:
            history = task.run_dir / run_folder.HISTORY
            checkpoint = task.run_dir / run_folder.CHECKPOINTS / "last.npz"
            if (task in hit.values() or run_folder.is_done(task.run_dir) or not checkpoint.exists()
                    or not history.exists() or len(history.read_text().splitlines()) != 2):  # header + epoch 1
                continue
            action = next(a for a in actions if a not in hit)
            job = slurm.read_record(task.run_dir)["job_id"]
            proc = subprocess.run([*actions[action], job], env=slurm_cluster.env, capture_output=True, text=True)
            if proc.returncode == 0 and not run_folder.is_done(task.run_dir):
                hit[action] = task
                break
        time.sleep(0.05)
    out, err = driver.communicate(timeout=max(60, deadline - time.time()))
    assert driver.returncode == 0 and "4 trained now, 0 already done, 0 failed" in out, out + err
    assert sorted(hit) == sorted(actions), f"elements interrupted mid-run: {hit}"
    assert results(path) == results(reference[0])
    logs = {action: Path(slurm.read_record(task.run_dir)["log"]).read_text() for action, task in hit.items()}
    assert "Slurm ended this element (SIGTERM)" in logs["requeue"]
    assert "Calling checkpoint method" in logs["time limit"]
    assert ("Requeued job" in logs["time limit"]                # or the requeue's own SIGTERM ended scontrol first
            or "while submitit's requeue of it was running" in logs["time limit"])
    for action, text in logs.items():  # epoch 2 when the signal landed after epoch 2's checkpoint, before DONE.json
        assert re.search(r"resuming after epoch [12]\b", text), f"{action}: {text[-3000:]}"
    for task in tasks:
        epochs = [line.split(",")[0] for line in (task.run_dir / run_folder.HISTORY).read_text().splitlines()[1:]]
        assert epochs == ["1", "2"], f"{task.task_id}: history {epochs}"
        assert not (task.run_dir / run_folder.RUNNING).exists()


@pytest.mark.slow
def test_detached_sweep_and_generated_sbatch_script_give_the_local_results(reference, slurm_cluster,  # noqa: F811
                                                                           tmp_path):
    env = slurm_cluster.env
    detached = one_task_sweep(tmp_path, "detached", "none", 0.0)
    proc = cli("run_sweep.py", detached, "--executor", "slurm", "--gpus-per-task", "0", "--detach", env=env)
    assert proc.returncode == 0 and "1 submitted (Slurm job " in proc.stdout, proc.stdout + proc.stderr
    [task] = grid.load(detached)
    job = slurm.read_record(task.run_dir)["job_id"]
    status = cli("sweep_status.py", detached, env=env)
    [row] = [line.split() for line in status.stdout.splitlines() if line.strip().startswith(task.task_id)]
    assert row[1] == job and row[2] in ("PENDING", "RUNNING", "COMPLETING", "COMPLETED"), status.stdout

    scripted = one_task_sweep(tmp_path, "scripted", "l2", 0.001)
    proc = cli("run_sweep.py", scripted, "--executor", "slurm", "--gpus-per-task", "0", "--print-sbatch", env=env)
    assert proc.returncode == 0 and proc.stdout.startswith("#!/bin/bash"), proc.stderr
    script = tmp_path / "sweep.sbatch"
    script.write_text(proc.stdout)
    submitted = subprocess.run(["sbatch", str(script)], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert submitted.returncode == 0, submitted.stderr
    element = f"{submitted.stdout.split()[-1]}_0"
    # the script's element near its time limit (Slurm signals the batch shell: --signal=B:USR2@90) requeues itself
    [scripted_task] = grid.load(scripted)
    checkpoint = scripted_task.run_dir / run_folder.CHECKPOINTS / "last.npz"
    deadline = time.time() + 600
    while not checkpoint.exists() and not run_folder.is_done(scripted_task.run_dir):
        assert time.time() < deadline, "the sbatch script's element wrote no checkpoint"
        time.sleep(0.05)
    signalled = subprocess.run(["scancel", "--batch", "--signal=USR2", element], env=env, capture_output=True,
                               text=True)
    assert signalled.returncode == 0 and not run_folder.is_done(scripted_task.run_dir), signalled.stderr

    wait_until_gone(slurm_cluster)
    script_log = (scripted_task.run_dir.parents[4] / "slurm" / "sbatch" / f"{element}.out").read_text()
    # epoch 2 when the signal landed after epoch 2's checkpoint, before DONE.json (seen on a quiet machine); no
    # resume when the requeue's SIGTERM reached the task after its last epoch: it then finishes (DONE.json, the right
    # thing to do) and the requeued element finds it done (seen once in CI)
    assert "time limit near, requeueing" in script_log, script_log[-3000:]
    assert (re.search(r"resuming after epoch [12]\b", script_log)
            or "already done (DONE.json)" in script_log), script_log[-3000:]
    want = results(reference[0])
    for path in (detached, scripted):
        got = results(path)
        assert got and got == {k: want[k] for k in got}, (path, got)
    status = cli("sweep_status.py", detached, env=env)
    assert "submitted to Slurm" not in status.stdout  # nothing unfinished left
