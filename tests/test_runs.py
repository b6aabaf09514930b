"""Run folders: finished only when DONE.json parses; RUNNING.json claims are exclusive, stale ones taken over."""
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from model.runs import claims, run_folder, state


def test_done_only_when_done_json_parses(tmp_path):
    assert state.status(tmp_path / "absent") == "missing"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / run_folder.SPEC).write_text("{}")
    (run_dir / run_folder.WEIGHTS).write_bytes(b"weights")
    assert not run_folder.is_done(run_dir) and state.status(run_dir) == "partial"
    (run_dir / run_folder.DONE).write_text('{"test_accuracy": 0.9')  # truncated by a crash
    assert run_folder.read_done(run_dir) is None and state.status(run_dir) == "partial"
    (run_dir / run_folder.DONE).write_text("[1, 2]")  # not an object
    assert not run_folder.is_done(run_dir)
    (run_dir / run_folder.DONE).write_text("{}")  # says nothing, not even which run
    assert not run_folder.is_done(run_dir) and state.status(run_dir) == "partial"
    run_folder.write_done(run_dir, {"task_id": "run", "test_accuracy": 0.9})
    assert run_folder.read_done(run_dir) == {"task_id": "run", "test_accuracy": 0.9} and state.status(run_dir) == "done"


def test_failed_is_one_line_and_removed_by_a_later_success(tmp_path):
    run_folder.write_failed(tmp_path, ValueError("bad\nthing  happened"))
    record = json.loads((tmp_path / run_folder.FAILED).read_text())
    assert record["error"] == "bad thing happened" and record["type"] == "ValueError" and "time" in record
    assert "traceback" not in record  # the trace goes to train.log only
    assert state.status(tmp_path) == "failed"
    run_folder.write_done(tmp_path, {"task_id": "run"})
    assert not (tmp_path / run_folder.FAILED).exists() and state.status(tmp_path) == "done"


def test_claim_is_exclusive_and_released(tmp_path):
    with claims.Claim(tmp_path) as claim:
        record = json.loads((tmp_path / run_folder.RUNNING).read_text())
        assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
        assert state.status(tmp_path) == "running"
        with pytest.raises(claims.ClaimHeld, match="already running"):
            claims.Claim(tmp_path).__enter__()
        before = record["heartbeat_unix"]
        time.sleep(0.01)
        claim.heartbeat()
        assert json.loads((tmp_path / run_folder.RUNNING).read_text())["heartbeat_unix"] > before
    assert not (tmp_path / run_folder.RUNNING).exists()


def test_claim_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / run_folder.RUNNING).write_text(json.dumps(
        {"host": socket.gethostname(), "pid": dead.pid, "pid_namespace": claims.PID_NAMESPACE,
         "heartbeat_unix": time.time()}))
    assert state.status(tmp_path) == "partial"
    with claims.Claim(tmp_path):
        assert json.loads((tmp_path / run_folder.RUNNING).read_text())["pid"] == os.getpid()


def test_claim_with_an_old_heartbeat_is_stale_on_any_host(tmp_path):
    claim = {"host": "elsewhere", "pid": 1, "heartbeat_unix": time.time()}
    assert not claims.claim_is_stale(claim)
    assert claims.claim_is_stale({**claim, "heartbeat_unix": time.time() - claims.STALE_SECONDS - 1})
    (tmp_path / run_folder.RUNNING).write_text(json.dumps(claim))
    with pytest.raises(claims.ClaimHeld):
        claims.Claim(tmp_path).__enter__()
    with claims.Claim(tmp_path, stale_seconds=-1):
        assert json.loads((tmp_path / run_folder.RUNNING).read_text())["host"] == socket.gethostname()


def test_a_claim_file_without_a_heartbeat_is_live_until_its_mtime_is_old(tmp_path):
    path = tmp_path / run_folder.RUNNING
    path.write_text("")  # created, not yet filled (or garbage): a fresh file is someone's claim
    assert not claims.claim_file_is_stale(path) and state.status(tmp_path) == "running"
    with pytest.raises(claims.ClaimHeld):
        claims.Claim(tmp_path).__enter__()
    assert path.read_text() == ""
    path.write_text("{}")
    assert not claims.claim_file_is_stale(path)
    old = time.time() - claims.STALE_SECONDS - 10
    os.utime(path, (old, old))
    assert claims.claim_file_is_stale(path) and state.status(tmp_path) == "partial"
    with claims.Claim(tmp_path):
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert claims.claim_file_is_stale(path)  # missing


def test_heartbeat_of_a_claim_taken_over_raises_and_leaves_the_new_claim(tmp_path):
    other = {"host": socket.gethostname(), "pid": os.getpid() + 1, "token": "another process",
             "heartbeat_unix": time.time()}
    with claims.Claim(tmp_path) as claim:
        (tmp_path / run_folder.RUNNING).write_text(json.dumps(other))  # our heartbeat went stale; another took over
        with pytest.raises(claims.ClaimLost, match="taken over") as err:
            claim.heartbeat()
        assert isinstance(err.value, claims.ClaimHeld)
    assert json.loads((tmp_path / run_folder.RUNNING).read_text()) == other


def test_release_dead_claim_removes_only_that_pids_claim_on_this_host(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = tmp_path / run_folder.RUNNING
    ours = {"host": socket.gethostname(), "pid_namespace": claims.PID_NAMESPACE}
    for claim in ({**ours, "pid": dead.pid + 1}, {**ours, "host": "elsewhere", "pid": dead.pid},
                  {**ours, "pid_namespace": "another/pid:[1]", "pid": dead.pid}):
        path.write_text(json.dumps({**claim, "heartbeat_unix": time.time()}))
        assert not claims.release_dead_claim(tmp_path, dead.pid) and path.exists()
    path.write_text(json.dumps({**ours, "pid": dead.pid, "heartbeat_unix": time.time()}))
    assert claims.release_dead_claim(tmp_path, dead.pid) and not path.exists()
    assert not claims.release_dead_claim(tmp_path, dead.pid)  # nothing there


def test_train_log_appends_each_attempt_after_a_marker_with_warnings_and_the_failure_reason_first(tmp_path):
    import logging
    import warnings

    from model.runs import task_log

    with task_log.attached(tmp_path):
        logging.getLogger("model.runs.callbacks").info("epoch 1: loss 2.3")
        warnings.warn("a Python warning", UserWarning, stacklevel=1)
    with task_log.attached(tmp_path):
        try:
            raise FloatingPointError("epoch 2: val_loss became non-finite (nan)")
        except FloatingPointError as err:
            task_log.failed(err)
    with task_log.attached(tmp_path, forced=True):
        pass
    lines = (tmp_path / run_folder.LOG).read_text().splitlines()
    markers = [line.split("==== ")[1].split(" ")[0] for line in lines if "==== " in line]
    assert markers == ["attempt", "resumed", "attempt"]
    text = "\n".join(lines)
    assert "epoch 1: loss 2.3" in text and "WARNING py.warnings: " in text and "a Python warning" in text
    assert text.index("FAILED: epoch 2: val_loss became non-finite (nan)") < text.index("Traceback")
    logging.getLogger("model").info("after the block")
    assert "after the block" not in (tmp_path / run_folder.LOG).read_text()
