"""Provenance: the code (git commit, dirty tree), the machine and the command in DONE.json, the accuracies CSV and
the report's block; GPU use is explicit (a GPU TensorFlow does not see is an error unless --allow-cpu)."""
import json
import os
import shlex
import socket
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from conftest import write_done

from model.analysis import accuracies as results
from model.analysis.provenance_block import provenance_section, provenance_table
from model.errors import PipelineError
from model.runs import execute, provenance, run_folder
from model.runs.spec import Spec
from model.sweeps import gpu_visibility as gpu_check
from model.version import version

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import run_sweep  # noqa: E402


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def test_git_state_of_a_clean_a_dirty_and_a_missing_checkout(tmp_path, monkeypatch):
    monkeypatch.delenv(provenance.COMMIT_ENV, raising=False)
    repo = tmp_path / "repo"
    repo.mkdir()
    assert provenance.git_state(repo) == {"commit": None, "dirty": None}  # not a git work tree
    git(repo, "init", "-q")
    assert provenance.git_state(repo)["commit"] is None  # a repository without a commit
    (repo / "code.py").write_text("x = 1\n")
    git(repo, "add", "code.py")
    git(repo, "commit", "-q", "-m", "one")
    head = git(repo, "rev-parse", "HEAD")
    assert provenance.git_state(repo) == {"commit": head, "dirty": False}
    (repo / "notes.txt").write_text("untracked\n")  # untracked files do not make the code dirty
    assert provenance.git_state(repo) == {"commit": head, "dirty": False}
    (repo / "code.py").write_text("x = 2\n")
    assert provenance.git_state(repo) == {"commit": head, "dirty": True}
    git(repo, "add", "code.py")  # staged but not committed: still not the commit
    assert provenance.git_state(repo) == {"commit": head, "dirty": True}
    sub = repo / "model"  # a folder inside a checkout is not the checkout of the code
    sub.mkdir()
    assert provenance.git_state(sub) == {"commit": None, "dirty": None}
    monkeypatch.setenv(provenance.COMMIT_ENV, "abc123")  # a Docker image: the commit it was built from
    assert provenance.git_state(sub) == {"commit": "abc123", "dirty": None}


def test_the_host_recorded_is_run_host_when_set_else_this_systems(monkeypatch):
    """A container's own host name is a random id: `docker run -e RUN_HOST="$(hostname)"` records the machine's."""
    monkeypatch.setenv(provenance.HOST_ENV, "gpu-node-7")
    assert provenance.host() == "gpu-node-7"
    monkeypatch.delenv(provenance.HOST_ENV)
    assert provenance.host() == socket.gethostname()


def test_done_json_says_what_produced_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv(provenance.SWEEP_COMMAND_ENV, "python scripts/run_sweep.py sweep.json")
    monkeypatch.delenv(provenance.HOST_ENV, raising=False)
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps({"network": "digits/0", "regulariser": "t1", "weight": 0.1, "batch_size": 256,
                                     "max_epochs": 1, "output_root": str(tmp_path / "out")}))
    assert execute.main([str(spec_path)]) == 0
    done = run_folder.read_done(Spec.from_file(spec_path).run_dir)
    expected = provenance.git_state(ROOT)
    assert done["commit"] == expected["commit"] and done["dirty"] == expected["dirty"]
    assert done["version"] == version()  # the package's, from pyproject.toml
    if (ROOT / ".git").exists():  # a checkout: the commit is HEAD's, dirty as git status says
        assert done["commit"] == subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                                                text=True).stdout.strip()
        assert isinstance(done["dirty"], bool)
    assert done["host"] == socket.gethostname()
    assert done["device"] == {"kind": "CPU", "name": provenance.cpu_model(), "visible_gpus": 0,
                              "compute_capability": None, "cuda_build": None, "cudnn_build": None}
    assert done["pairing"] == "numpy" and done["xla"] is False  # T1 on a CPU: the compiled Prim, no XLA
    started, finished = (datetime.fromisoformat(done[k]) for k in ("started", "finished"))
    assert started <= finished and started.tzinfo is not None
    assert done["command"] == shlex.join(sys.orig_argv)
    assert done["launched_by"] == "python scripts/run_sweep.py sweep.json"
    assert done["blas"]["threads"] == 1 and done["blas"]["libraries"]  # fixed once per process


def test_accuracies_csv_carries_commit_and_device_and_the_report_flags_mixtures(tmp_path):
    cpu = {"kind": "CPU", "name": "Test CPU", "visible_gpus": 0, "compute_capability": None, "cuda_build": None,
           "cudnn_build": None}
    gpu = {"kind": "GPU", "name": "NVIDIA Test", "visible_gpus": 1, "compute_capability": "8.0",
           "cuda_build": "12.5.1", "cudnn_build": "9"}
    versions = {"python": "3.11.7", "tensorflow": "2.21.0"}
    same = {"commit": "a" * 40, "dirty": False, "host": "h1", "device": cpu, "versions": versions}
    write_done(tmp_path, "digits/0", "none", 0.0, 0, 0.8, 0.8, **same)
    write_done(tmp_path, "digits/0", "t1", 0.1, 0, 0.8, 0.8, **same)
    write_done(tmp_path, "mnist/0", "none", 0.0, 0, 0.8, 0.8, **same)
    write_done(tmp_path, "mnist/0", "t1", 0.1, 0, 0.8, 0.8, **{**same, "dirty": True, "host": "h2", "device": gpu})
    write_done(tmp_path, "mnist/1", "none", 0.0, 0, 0.8, 0.8)  # recorded before provenance
    csv = tmp_path / "accuracies.csv"
    results.write(results.collect(tmp_path), csv)
    frame = results.read(csv)
    assert list(frame.columns[:7]) == list(results.COLUMNS)  # the existing columns first
    row = frame.set_index("task_id").loc["mnist/0/t1/0.1/seed_0"]
    assert row["commit"] == "a" * 40 and bool(row["dirty"]) is True and row["host"] == "h2"
    assert row["device"] == "GPU NVIDIA Test (CUDA 12.5.1, cuDNN 9)"
    assert row["versions"] == "python 3.11.7, tensorflow 2.21.0"
    assert frame.set_index("task_id").loc["digits/0/none/0.0/seed_0", "device"] == "CPU Test CPU"
    assert frame.set_index("task_id")["commit"].isna().sum() == 1

    table = provenance_table(frame)
    assert list(table.index) == ["block digits", "block mnist", "combined"]
    assert table.loc["block digits", "commit"] == "aaaaaaaaaaaa (2 runs)"  # one commit: not flagged
    assert table.loc["block digits", "device"] == "CPU Test CPU (2 runs)"
    mnist = table.loc["block mnist"]
    assert mnist["runs"] == 3 and mnist["hosts"] == 2
    assert mnist["commit"].startswith("**differs**") and "aaaaaaaaaaaa+dirty (1 run)" in mnist["commit"]
    assert "unknown (1 run)" in mnist["commit"] and mnist["device"].startswith("**differs**")
    text = provenance_section(frame)
    assert text.startswith("## Provenance")
    assert "**differs** within block mnist, combined" in text
    assert "`unknown` in block mnist, combined" in text


def fake_python(tmp_path: Path, gpus_seen: int) -> str:
    """A stand-in interpreter that answers the GPU probe with `gpus_seen`."""
    path = tmp_path / f"python_sees_{gpus_seen}"
    path.write_text(f"#!/bin/sh\necho {gpus_seen}\n")
    path.chmod(0o755)
    return str(path)


def test_gpu_check_counts_what_tensorflow_sees(tmp_path, caplog):
    gpu_check.require_gpus([], python=fake_python(tmp_path, 0))  # CPU workers: nothing to check
    gpu_check.require_gpus(["0", "1"], python=fake_python(tmp_path, 2))
    with pytest.raises(PipelineError, match=r"--gpus 0,1: TensorFlow sees 1 of these 2 GPU\(s\).*--allow-cpu"):
        gpu_check.require_gpus(["0", "1"], python=fake_python(tmp_path, 1))
    gpu_check.require_gpus(["0"], allow_cpu=True, python=fake_python(tmp_path, 0))
    assert "TensorFlow sees 0 of these 1 GPU(s)" in caplog.text
    broken = tmp_path / "broken"
    broken.write_text("#!/bin/sh\necho 'ModuleNotFoundError: tensorflow' >&2\nexit 1\n")
    broken.chmod(0o755)
    with pytest.raises(PipelineError, match="could not ask TensorFlow which GPUs it sees .exit 1.: ModuleNotFound"):
        gpu_check.require_gpus(["0"], python=str(broken))


def test_gpus_on_this_cpu_machine_fail_before_any_task_unless_allow_cpu(tmp_path, capsys, monkeypatch):
    """The real probe (TensorFlow in a child process) on this machine, which has no GPU."""
    monkeypatch.setenv(provenance.SWEEP_COMMAND_ENV, "")  # run_sweep sets it for its tasks: restored afterwards
    sweep = tmp_path / "sweep.json"
    sweep.write_text(json.dumps({"base": {"output_root": str(tmp_path / "out"), "max_epochs": 1, "batch_size": 256},
                                 "grid": [{"networks": ["digits/0"], "seeds": [0],
                                           "cells": [{"regulariser": "none", "weights": [0]}]}]}))
    assert run_sweep.main([str(sweep), "--gpus", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --gpus 0: TensorFlow sees 0 of these 1 GPU(s)") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()  # nothing started, nothing written
    assert run_sweep.main([str(sweep), "--gpus", "0", "--allow-cpu"]) == 0
    [run] = run_folder.run_dirs(tmp_path / "out")
    done = run_folder.read_done(run)
    assert done["device"]["kind"] == "CPU" and done["launched_by"] == provenance.command_line()  # the driver's
    assert pd.notna(done["commit"]) or not (ROOT / ".git").exists()
