"""Run folders: finished only when DONE.json parses; RUNNING.json claims are exclusive, stale ones taken over."""
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from model import runs


def test_done_only_when_done_json_parses(tmp_path):
    assert runs.status(tmp_path / "absent") == "missing"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / runs.SPEC).write_text("{}")
    (run_dir / runs.WEIGHTS).write_bytes(b"weights")
    assert not runs.is_done(run_dir) and runs.status(run_dir) == "partial"
    (run_dir / runs.DONE).write_text('{"test_accuracy": 0.9')  # truncated by a crash
    assert runs.read_done(run_dir) is None and runs.status(run_dir) == "partial"
    (run_dir / runs.DONE).write_text("[1, 2]")  # not an object
    assert not runs.is_done(run_dir)
    runs.write_done(run_dir, {"test_accuracy": 0.9})
    assert runs.read_done(run_dir) == {"test_accuracy": 0.9} and runs.status(run_dir) == "done"


def test_failed_is_one_line_and_removed_by_a_later_success(tmp_path):
    runs.write_failed(tmp_path, ValueError("bad\nthing  happened"), "Traceback ...")
    record = json.loads((tmp_path / runs.FAILED).read_text())
    assert record["error"] == "bad thing happened" and record["type"] == "ValueError" and "time" in record
    assert runs.status(tmp_path) == "failed"
    runs.write_done(tmp_path, {"ok": True})
    assert not (tmp_path / runs.FAILED).exists() and runs.status(tmp_path) == "done"


def test_claim_is_exclusive_and_released(tmp_path):
    with runs.Claim(tmp_path) as claim:
        record = json.loads((tmp_path / runs.RUNNING).read_text())
        assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
        assert runs.status(tmp_path) == "running"
        with pytest.raises(runs.ClaimHeld, match="already running"):
            runs.Claim(tmp_path).__enter__()
        before = record["heartbeat_unix"]
        time.sleep(0.01)
        claim.heartbeat()
        assert json.loads((tmp_path / runs.RUNNING).read_text())["heartbeat_unix"] > before
    assert not (tmp_path / runs.RUNNING).exists()


def test_claim_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / runs.RUNNING).write_text(json.dumps(
        {"host": socket.gethostname(), "pid": dead.pid, "heartbeat_unix": time.time()}))
    assert runs.status(tmp_path) == "partial"
    with runs.Claim(tmp_path):
        assert json.loads((tmp_path / runs.RUNNING).read_text())["pid"] == os.getpid()


def test_claim_with_an_old_heartbeat_is_stale_on_any_host(tmp_path):
    claim = {"host": "elsewhere", "pid": 1, "heartbeat_unix": time.time()}
    assert not runs.claim_is_stale(claim)
    assert runs.claim_is_stale({**claim, "heartbeat_unix": time.time() - runs.STALE_SECONDS - 1})
    (tmp_path / runs.RUNNING).write_text(json.dumps(claim))
    with pytest.raises(runs.ClaimHeld):
        runs.Claim(tmp_path).__enter__()
    with runs.Claim(tmp_path, stale_seconds=-1):
        assert json.loads((tmp_path / runs.RUNNING).read_text())["host"] == socket.gethostname()


def test_a_claim_file_without_a_heartbeat_is_live_until_its_mtime_is_old(tmp_path):
    path = tmp_path / runs.RUNNING
    path.write_text("")  # created, not yet filled (or garbage): a fresh file is someone's claim
    assert not runs.claim_file_is_stale(path) and runs.status(tmp_path) == "running"
    with pytest.raises(runs.ClaimHeld):
        runs.Claim(tmp_path).__enter__()
    assert path.read_text() == ""
    path.write_text("{}")
    assert not runs.claim_file_is_stale(path)
    old = time.time() - runs.STALE_SECONDS - 10
    os.utime(path, (old, old))
    assert runs.claim_file_is_stale(path) and runs.status(tmp_path) == "partial"
    with runs.Claim(tmp_path):
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert runs.claim_file_is_stale(path)  # missing


def test_heartbeat_of_a_claim_taken_over_raises_and_leaves_the_new_claim(tmp_path):
    other = {"host": socket.gethostname(), "pid": os.getpid() + 1, "heartbeat_unix": time.time()}
    with runs.Claim(tmp_path) as claim:
        (tmp_path / runs.RUNNING).write_text(json.dumps(other))  # our heartbeat went stale; another took over
        with pytest.raises(runs.ClaimLost, match="taken over") as err:
            claim.heartbeat()
        assert isinstance(err.value, runs.ClaimHeld)
    assert json.loads((tmp_path / runs.RUNNING).read_text()) == other


def test_release_dead_claim_removes_only_that_pids_claim_on_this_host(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = tmp_path / runs.RUNNING
    for claim in ({"host": socket.gethostname(), "pid": dead.pid + 1}, {"host": "elsewhere", "pid": dead.pid}):
        path.write_text(json.dumps({**claim, "heartbeat_unix": time.time()}))
        assert not runs.release_dead_claim(tmp_path, dead.pid) and path.exists()
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid, "heartbeat_unix": time.time()}))
    assert runs.release_dead_claim(tmp_path, dead.pid) and not path.exists()
    assert not runs.release_dead_claim(tmp_path, dead.pid)  # nothing there
