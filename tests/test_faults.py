"""Regression tests of reproduced faults, one (or more) per numbered item (`test_<n>_...`): nothing written outside
the named folders, every reader robust to any content, one line and exit 2 instead of a traceback, bounded retries.

Full disks and read-only folders are real small tmpfs mounts (root only, else skipped); a command that needs one
runs in its own mount namespace (`unshare --mount`), so no mount outlives it.
"""
import errno
import json
import math
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import HookedWrites, write_done
from download_server import LoopbackServer

from model import atomic
from model.analysis import accuracies, statistics
from model.errors import DataError, SpecError
from model.files import download, remote_zip
from model.runs import claims, run_folder, state
from model.runs.spec import Spec
from model.sweeps import grid, scheduler
from model.sweeps.task_process import Job

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "configs" / "digits" / "sweep_small.json"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT or shutil.which("unshare") is None,
                                reason="needs root (tmpfs mounts) and unshare")


# ---------------------------------------------------------------------------------------------- helpers
def command(args, cwd, env=None, timeout=300) -> subprocess.CompletedProcess:
    """Run `args` (a list; `python` is this interpreter) with this worktree first on PYTHONPATH."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    args = [sys.executable if a == "python" else str(a) for a in args]
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def assert_one_line_exit_2(proc, *needles):
    """The command failed cleanly: exit 2, no traceback, its last stderr line `error: ...` naming `needles`."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def in_mount(dir_: Path, options: str, fill: bool = False) -> list[str]:
    """A command prefix running its command in a new mount namespace with a tmpfs (`options`) on `dir_`; `fill`
    fills it to the last byte first (a full disk)."""
    dir_.mkdir(parents=True, exist_ok=True)
    fill_cmd = f" && (cat /dev/zero > {dir_}/filler 2>/dev/null; true)" if fill else ""
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            f"mount -t tmpfs -o {options} tmpfs {dir_}{fill_cmd} && exec \"$@\"", "sh"]


@pytest.fixture()
def full_dir(tmp_path):
    """A folder on a real, full 64 KiB tmpfs (root only): every write into it fails with ENOSPC."""
    if not IS_ROOT:
        pytest.skip("needs root to mount a tmpfs")
    path = tmp_path / "full"
    path.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(path)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        try:
            with open(path / "filler", "wb") as f:
                while True:
                    f.write(b"\0" * 4096)
                    f.flush()
        except OSError as err:
            assert err.errno == errno.ENOSPC
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def small_sweep(tmp_path: Path, **base) -> Path:
    sweep = json.loads(SMALL.read_text())
    sweep["base"].update(output_root=str(tmp_path / "out"), max_epochs=1, **base)
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(sweep))
    return path


# ---------------------------------------------------------------------------------------------- 1
def test_01_a_network_name_with_dotdot_writes_nothing_outside_output_root(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    sweep = {"base": {"output_root": "out", "max_epochs": 1},
             "grid": [{"networks": ["digits/../../../escaped"], "cells": [{"regulariser": "none", "weights": [0]}]}]}
    (work / "sweep.json").write_text(json.dumps(sweep))
    proc = command(["python", ROOT / "scripts" / "run_sweep.py", "sweep.json"], cwd=work)
    assert_one_line_exit_2(proc, "network", "digits/../../../escaped")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]
    assert sorted(p.name for p in work.iterdir()) == ["sweep.json"]
    for network in ("digits/./0", "digits/", "digits//0", "/etc/0", "digits/0\x00", "digits\\..\\x"):
        with pytest.raises(SpecError, match="network"):
            Spec.from_dict({"network": network, "regulariser": "none"})


def test_01_write_specs_refuses_a_run_folder_outside_its_root_even_through_a_symlink(tmp_path):
    out = tmp_path / "out"
    (out / "digits").mkdir(parents=True)
    (out / "digits" / "0").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir()
    tasks = grid.expand({"base": {"output_root": str(out)},
                         "grid": [{"networks": ["digits/0"], "cells": [{"regulariser": "none", "weights": [0]}]}]})
    with pytest.raises(SpecError, match="outside"):
        grid.write_specs(tasks)
    assert list((tmp_path / "elsewhere").iterdir()) == []


# ---------------------------------------------------------------------------------------------- 2
@pytest.mark.parametrize("heartbeat", ["abc", None, [], {"a": 1}, "nan", float("inf")])
def test_02_a_claim_with_any_heartbeat_content_is_judged_not_crashed_on(tmp_path, heartbeat):
    path = tmp_path / run_folder.RUNNING
    path.write_text(json.dumps({"host": "elsewhere", "pid": 1, "heartbeat_unix": heartbeat}))
    assert not claims.claim_file_is_stale(path)  # a fresh file: someone's claim, judged by its mtime
    assert state.status(tmp_path) == "running"
    old = time.time() - claims.STALE_SECONDS - 10
    os.utime(path, (old, old))
    assert claims.claim_file_is_stale(path) and state.status(tmp_path) == "partial"


def test_02_a_heartbeat_in_the_future_goes_stale(tmp_path):
    far = time.time() + 10 * claims.STALE_SECONDS
    assert claims.claim_is_stale({"host": "elsewhere", "pid": 1, "heartbeat_unix": far})
    assert not claims.claim_is_stale({"host": "elsewhere", "pid": 1, "heartbeat_unix": time.time() + 60})


@pytest.mark.parametrize("content", ['{"host": 5, "pid": "x", "heartbeat_unix": "abc"}', '{"heartbeat_unix": null}',
                                     '"a string"', "\xff\xfe garbage"])
def test_02_commands_reading_a_garbage_claim_print_no_traceback(tmp_path, content):
    sweep = small_sweep(tmp_path)
    task = grid.load(sweep)[0]
    task.run_dir.mkdir(parents=True)
    (task.run_dir / run_folder.RUNNING).write_bytes(content.encode("utf-8", "surrogateescape"))
    status = command(["python", ROOT / "scripts" / "sweep_status.py", sweep], cwd=tmp_path)
    assert status.returncode == 0 and "Traceback" not in status.stderr, status.stderr
    collect = command(["python", ROOT / "accuracies" / "collect_accuracies.py", tmp_path / "out", "--out",
                       tmp_path / "acc.csv"], cwd=tmp_path)
    assert "Traceback" not in collect.stderr, collect.stderr
    assert collect.returncode in (0, 2)


# ---------------------------------------------------------------------------------------------- 3
@needs_root
def test_03_a_full_disk_in_the_drivers_bookkeeping_is_logged_and_the_other_tasks_go_on(full_dir, tmp_path, caplog):
    jobs = [Job("a", str(full_dir / "a" / "spec.json"), str(full_dir / "a"), str(tmp_path)),
            Job("b", str(tmp_path / "b" / "spec.json"), str(tmp_path / "b"), str(tmp_path))]
    submitted, finished = [], []

    def submit(job):
        submitted.append(job.task_id)
        finished.append((job, 2, "error: the task could not start: no space left") if job.task_id == "a"
                        else (job, 2, "error: b failed"))

    outcomes = scheduler.schedule(jobs, submit, finished.pop, max_retries=0)
    assert submitted == ["a", "b"]
    assert [(o.task_id, o.status) for o in outcomes] == [("a", "failed"), ("b", "failed")]
    assert "no space left" in outcomes[0].reason
    assert "could not record" in caplog.text and "FAILED.json" in caplog.text
    assert (tmp_path / "b" / run_folder.FAILED).exists()


# ---------------------------------------------------------------------------------------------- 4
@needs_root
@pytest.mark.parametrize("options,fill", [("ro,size=64k", False), ("size=64k", True)])
def test_04_run_sweep_on_a_read_only_or_full_output_folder_prints_one_line(tmp_path, options, fill):
    sweep = small_sweep(tmp_path)
    proc = command([*in_mount(tmp_path / "out", options, fill), sys.executable, ROOT / "scripts" / "run_sweep.py",
                    sweep], cwd=tmp_path)
    assert_one_line_exit_2(proc, str(tmp_path / "out"))


def test_04_run_sweep_with_a_nul_in_a_path_or_a_file_in_the_way_prints_one_line(tmp_path):
    sweep = small_sweep(tmp_path)
    data = json.loads(sweep.read_text())
    data["base"]["output_root"] = str(tmp_path / "o\x00ut")
    nul = tmp_path / "nul.json"
    nul.write_text(json.dumps(data))
    assert_one_line_exit_2(command(["python", ROOT / "scripts" / "run_sweep.py", nul], cwd=tmp_path), "output_root")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "digits").write_text("a file where a folder goes")
    proc = command(["python", ROOT / "scripts" / "run_sweep.py", sweep], cwd=tmp_path)
    assert_one_line_exit_2(proc, str(tmp_path / "out" / "digits"))


def test_04_an_unexpected_error_is_one_line_and_its_trace_goes_to_the_log(tmp_path, monkeypatch, capsys):
    from model import cli

    log = tmp_path / "errors.log"
    monkeypatch.setenv("MODEL_ERROR_LOG", str(log))

    def boom(args):
        raise KeyError("surprise")

    class Args:
        debug = False

    assert cli.run(boom, Args()) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "KeyError" in err and str(log) in err
    assert "Traceback" in log.read_text() and "surprise" in log.read_text()


# ---------------------------------------------------------------------------------------------- 5
def test_05_atomic_files_get_the_permissions_the_umask_gives(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic.write_text(tmp_path / "a.txt", "x")
        assert path.stat().st_mode & 0o777 == 0o644
        os.umask(0o002)
        assert atomic.write_json(tmp_path / "b.json", {}).stat().st_mode & 0o777 == 0o664
        with claims.Claim(tmp_path / "run"):
            assert (tmp_path / "run" / run_folder.RUNNING).stat().st_mode & 0o777 == 0o664
    finally:
        os.umask(old)


# ---------------------------------------------------------------------------------------------- 6
def test_06_a_live_claim_from_another_pid_namespace_is_not_judged_dead(tmp_path):
    invisible_pid = 2 ** 22 - 3  # above pid_max's default range: not a pid of this namespace
    record = {"host": socket.gethostname(), "pid": invisible_pid, "pid_namespace": "pid:[1]", "token": "other",
              "heartbeat_unix": time.time()}
    assert not claims.claim_is_stale(record)
    assert claims.claim_is_stale({**record, "pid_namespace": claims.PID_NAMESPACE})  # ours, and that pid is dead
    assert not claims.claim_is_stale({**record, "pid_namespace": None})  # unknown namespace: the heartbeat decides
    old_record = {k: v for k, v in record.items() if k != "pid_namespace"}  # an older version's: judged as it did
    assert claims.claim_is_stale(old_record)
    (tmp_path / run_folder.RUNNING).write_text(json.dumps(record))
    with pytest.raises(claims.ClaimHeld):
        claims.Claim(tmp_path).__enter__()


def test_06_our_own_pid_in_another_namespace_is_not_our_claim(tmp_path):
    with claims.Claim(tmp_path) as claim:
        other = {**json.loads((tmp_path / run_folder.RUNNING).read_text()), "token": "someone-else"}
        (tmp_path / run_folder.RUNNING).write_text(json.dumps(other))  # same host and pid, another process
        with pytest.raises(claims.ClaimLost):
            claim.heartbeat()
    assert json.loads((tmp_path / run_folder.RUNNING).read_text()) == other  # not removed on exit


# ---------------------------------------------------------------------------------------------- 7
PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes


def test_07_a_server_cutting_every_response_at_the_same_byte_uses_up_a_bounded_budget(tmp_path):
    with LoopbackServer({"/f.bin": PAYLOAD}, ranges=False, cut_every={"/f.bin": 30000}) as server:
        start = time.monotonic()
        with pytest.raises(DataError, match=r"f.bin: download failed after 3 attempts"):
            download.fetch_file(server.url + "/f.bin", tmp_path / "f.bin", retries=2, retry_wait_s=0)
        assert len(server.log) == 3 and time.monotonic() - start < 10


def test_07_a_total_deadline_per_file_stops_a_download_that_creeps(tmp_path):
    with LoopbackServer({"/f.bin": PAYLOAD}, cut_every={"/f.bin": 100}, delay_s=0.05) as server:
        start = time.monotonic()
        with pytest.raises(DataError, match="deadline"):
            download.fetch_file(server.url + "/f.bin", tmp_path / "f.bin", retries=10 ** 6, retry_wait_s=0,
                                deadline_s=1.0)
        assert time.monotonic() - start < 5
    assert (tmp_path / "f.bin.part").stat().st_size > 0  # kept: a later run resumes


@needs_root
def test_07_a_full_disk_during_a_download_is_not_retried(full_dir):
    with LoopbackServer({"/f.bin": PAYLOAD}, ranges=False) as server:
        with pytest.raises(DataError, match="No space left"):
            download.fetch_file(server.url + "/f.bin", full_dir / "f.bin", retry_wait_s=0)
        assert len(server.log) == 1


def hanging_server():
    """A loopback socket that accepts connections and never answers; returns (url, closer)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    held = []
    stop = threading.Event()

    def accept():
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()

    def close():
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        sock.close()

    return f"http://127.0.0.1:{sock.getsockname()[1]}", close


def test_07_a_hanging_mirror_times_out_quickly_and_the_next_one_is_used(tmp_path, monkeypatch):
    from model.zoo import mnist

    monkeypatch.setattr(download, "TIMEOUT_S", 0.5)
    name, md5 = "f.gz", __import__("hashlib").md5(PAYLOAD).hexdigest()
    url, close = hanging_server()
    try:
        with LoopbackServer({"/f.gz": PAYLOAD}) as server:
            start = time.monotonic()
            paths = mnist._raw_files(tmp_path, None, [url, server.url], False, {"x": (name, md5, None)})
            assert time.monotonic() - start < 5
    finally:
        close()
    assert paths["x"].read_bytes() == PAYLOAD


# ---------------------------------------------------------------------------------------------- 8
@needs_root
def test_08_a_full_disk_while_extracting_members_is_one_line(full_dir, tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("m/x.bin", b"\0" * (4 << 20))  # a few KiB compressed: the part fits, the inflated file does not
    filler = full_dir / "filler"
    os.truncate(filler, max(0, filler.stat().st_size - 32768))  # 32 KiB free
    with LoopbackServer({"/a.zip": archive.read_bytes()}) as server:
        with pytest.raises(DataError, match=r"cannot write archive member m/x.bin \(No space left"):
            remote_zip.extract(server.url + "/a.zip", full_dir / "root", lambda n: True, retry_wait_s=0)
    assert not list((full_dir / "root").rglob("*.tmp")) and not list((full_dir / "root").rglob(".*.tmp"))


# ---------------------------------------------------------------------------------------------- 9
def _archive(tmp_path, members, method=zipfile.ZIP_DEFLATED) -> Path:
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def test_09_fuzzed_central_directories_give_only_data_errors(tmp_path):
    good = _archive(tmp_path, {f"dir/m{i}.bin": bytes([i]) * (50 + i) for i in range(6)}).read_bytes()
    eocd = good.rfind(b"PK\x05\x06")
    cd_offset = struct.unpack_from("<I", good, eocd + 16)[0]
    rng = np.random.default_rng(19)
    bad = tmp_path / "bad.zip"
    for trial in range(600):
        data = bytearray(good)
        for _ in range(int(rng.integers(1, 6))):
            pos = int(rng.integers(cd_offset, len(data)))
            data[pos] = int(rng.integers(0, 256))
        if trial % 7 == 0:  # a name flagged UTF-8 that is not
            data[cd_offset + 8] |= 0x08
            data[cd_offset + 46] = 0xFF
        bad.write_bytes(bytes(data))
        try:
            remote_zip.central_directory(remote_zip.FileSource(bad), str(bad))
        except DataError:
            pass


def test_09_a_short_zip64_extra_field_is_a_data_error(tmp_path):
    name = b"m.bin"
    extra = struct.pack("<HHI", 0x0001, 4, 7)  # announces 64-bit sizes, holds 4 bytes
    central = struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 45, 45, 0, 0, 0, 0, 0, 0xFFFFFFFF, 0xFFFFFFFF,
                          len(name), len(extra), 0, 0, 0, 0, 0) + name + extra
    eocd = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(central), 0, 0)
    path = tmp_path / "z.zip"
    path.write_bytes(central + eocd)
    with pytest.raises(DataError, match="ZIP64 extra field"):
        remote_zip.central_directory(remote_zip.FileSource(path), str(path))


def test_09_a_member_inflating_past_its_declared_size_is_refused_before_it_is_written(tmp_path, monkeypatch):
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    compressed = bomb.compress(b"\0" * (8 << 20)) + bomb.flush()
    member = remote_zip.Member("bomb.bin", remote_zip.DEFLATED, 0, len(compressed), 1000, 0)
    src, dest = tmp_path / "bomb.part", tmp_path / "bomb.tmp"
    src.write_bytes(compressed)
    written = []
    real_open = open
    monkeypatch.setattr(remote_zip, "open", lambda p, mode="r", *a, **k: HookedWrites(
        real_open(p, mode, *a, **k), lambda data: written.append(len(data))) if "w" in mode
        else real_open(p, mode, *a, **k), raising=False)
    with pytest.raises(DataError, match="more than the 1000 bytes"):
        remote_zip._inflate(src, dest, member.method, member.size, "bomb.zip", member.name)
    assert sum(written) <= 1000


# ---------------------------------------------------------------------------------------------- 10
def _frame(rows):
    return pd.DataFrame(rows, columns=list(accuracies.COLUMNS))


def test_10_a_nan_test_accuracy_in_one_seed_is_not_silently_dropped():
    rows = []
    for net in ("d/0", "d/1", "d/2"):
        for t, w in (("none", 0.0), ("t1", 0.1)):
            for seed in (0, 1):
                test = math.nan if (net, t, seed) == ("d/0", "t1", 1) else 0.8
                rows.append(("d", net, t, w, seed, 0.8, test))
    with pytest.warns(UserWarning, match=r"d/0.*t1.*seed 1.*test accuracy"):
        selected = statistics.select(_frame(rows))
    cell = selected[(selected.network == "d/0") & (selected.treatment == "t1")].iloc[0]
    assert math.isnan(cell.test_accuracy) or cell.n_seeds == 1


@pytest.mark.parametrize("column,value,needle", [("seed", "0.5", "seed"), ("weight", "inf", "weight"),
                                                 ("weight", "-0.1", "weight"), ("seed", "-1", "seed")])
def test_10_accuracies_with_a_fractional_seed_or_a_bad_weight_are_refused(tmp_path, column, value, needle):
    rows = [dict(zip(accuracies.COLUMNS, ("d", f"d/{i}", "t1", 0.1, 0, 0.8, 0.8))) for i in range(2)]
    rows[1][column] = value
    path = tmp_path / "acc.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    with pytest.raises(DataError, match=needle):
        accuracies.read(path)


# ---------------------------------------------------------------------------------------------- 11
@pytest.mark.parametrize("field,value", [("seed", 2 ** 32), ("max_epochs", 10 ** 30), ("batch_size", 10 ** 30),
                                         ("patience", 10 ** 30), ("checkpoint_every", 10 ** 30),
                                         ("shuffle_buffer", 10 ** 30)])
def test_11_integers_out_of_range_are_refused_at_validation(field, value):
    with pytest.raises(SpecError, match=field):
        Spec.from_dict({"network": "digits/0", "regulariser": "none", field: value})


def test_11_weights_0_and_minus_0_are_one_task():
    assert Spec.from_dict({"network": "digits/0", "regulariser": "none", "weight": -0.0}).task_id == \
        Spec.from_dict({"network": "digits/0", "regulariser": "none", "weight": 0.0}).task_id
    with pytest.raises(SpecError, match="already produced"):
        grid.expand({"base": {}, "grid": [{"networks": ["digits/0"],
                                            "cells": [{"regulariser": "none", "weights": [0.0, -0.0]}]}]})


# ---------------------------------------------------------------------------------------------- 12
def test_12_a_spec_file_with_a_non_utf8_byte_is_one_line(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_bytes(b'{"network": "digits/0", "regulariser": "none\xff"}')
    with pytest.raises(SpecError, match="UTF-8"):
        Spec.from_file(spec)
    proc = command(["python", "-m", "model.runs.execute", spec], cwd=tmp_path)
    assert_one_line_exit_2(proc, str(spec), "UTF-8")


def test_12_extract_statistics_out_naming_an_existing_file_is_one_line(tmp_path):
    rows = [("d", f"d/{i}", t, 0.0 if t == "none" else 0.1, 0, 0.8, 0.7 + 0.01 * i + (t == "t1") * 0.01)
            for i in range(3) for t in ("none", "t1")]
    _frame(rows).to_csv(tmp_path / "acc.csv", index=False)
    (tmp_path / "stats").write_text("a file")
    proc = command(["python", ROOT / "extract_statistics.py", "--accuracies", tmp_path / "acc.csv",
                    "--out", tmp_path / "stats"], cwd=tmp_path)
    assert_one_line_exit_2(proc, str(tmp_path / "stats"), "folder")
    (tmp_path / "dir.csv").mkdir()
    proc = command(["python", ROOT / "accuracies" / "collect_accuracies.py", tmp_path, "--out", tmp_path / "dir.csv"],
                   cwd=tmp_path)
    assert_one_line_exit_2(proc, str(tmp_path / "dir.csv"))


# ---------------------------------------------------------------------------------------------- 13
def test_13_a_half_written_checkpoint_names_the_file_and_what_to_do(tmp_path):
    from model.runs import callbacks

    path = tmp_path / "checkpoints" / "last.npz"
    path.parent.mkdir()
    np.savez(path, state=np.array("{}"), model_0=np.zeros(3))
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DataError, match=r"last.npz.*(delete it|--force)"):
        callbacks.load_checkpoint(path, None, None)


def test_13_a_done_json_of_empty_object_is_not_done_and_does_not_stop_the_collection(tmp_path):
    write_done(tmp_path, "digits/0", "none", 0.0, 0, 0.8, 0.8)
    empty = tmp_path / "digits/0/t1/0.1/seed_0"
    empty.mkdir(parents=True)
    (empty / run_folder.DONE).write_text("{}")
    assert not run_folder.is_done(empty) and state.status(empty) == "partial"
    collection = accuracies.collect(tmp_path)
    assert list(collection.frame.task_id) == ["digits/0/none/0.0/seed_0"]
    [row] = collection.incomplete.itertuples()
    assert row.task_id == "digits/0/t1/0.1/seed_0" and "DONE.json" in row.detail


# ---------------------------------------------------------------------------------------------- 14
def test_14_with_no_mirror_reachable_prepare_mnist_says_so_in_one_line_at_once(tmp_path):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: connection refused
    start = time.monotonic()
    proc = command(["python", ROOT / "scripts" / "prepare_mnist.py", "--data-root", tmp_path / "data",
                    "--base-url", f"http://127.0.0.1:{port}/a/", "--base-url", f"http://127.0.0.1:{port}/b/"],
                   cwd=tmp_path)
    assert time.monotonic() - start < 30
    assert_one_line_exit_2(proc, "no mirror can be reached")


def test_14_an_unknown_host_is_not_retried(tmp_path, monkeypatch):
    calls = []

    def no_dns(*args, **kwargs):
        calls.append(args)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with pytest.raises(download.Unreachable, match="Name or service not known"):
        download.fetch_file("http://mirror.example/f.gz", tmp_path / "f.gz", retry_wait_s=0)
    assert len(calls) == 1


def test_14_http_404_and_refused_are_not_retried(tmp_path):
    with LoopbackServer({}) as server:
        with pytest.raises(DataError, match="404"):
            download.fetch_file(server.url + "/f.gz", tmp_path / "f.gz", retry_wait_s=10)
        assert len(server.log) == 1


# ---------------------------------------------------------------------------------------------- 15
def test_15_pgdl_is_fetched_over_https_and_every_member_is_checked_against_its_pin_or_record(tmp_path):
    import hashlib

    from model.zoo import pgdl_fetch

    assert pgdl_fetch.PUBLIC_URL.startswith("https://")
    pins = json.loads(pgdl_fetch.PINS.read_text())
    assert pins["url"] == pgdl_fetch.PUBLIC_URL and isinstance(pins["sha256"], dict)
    member = remote_zip.Member("input_data/task1_v4/model_20/config.json", 0, 0, 2, 2, 0)
    (tmp_path / "f").write_bytes(b"{}")
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps({"sha256": {member.name: hashlib.sha256(b"{}").hexdigest().upper()}}))
    bad.write_text(json.dumps({"sha256": {member.name: "0" * 64}}))
    pgdl_fetch.Checksums(tmp_path / "a", "x", [bad, good])(member, tmp_path / "f")  # the later file wins
    with pytest.raises(DataError, match=rf"config.json: SHA-256 [0-9a-f]{{64}}, expected 0{{64}} \(pinned in {bad}"):
        pgdl_fetch.Checksums(tmp_path / "b", "x", [good, bad])(member, tmp_path / "f")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # pinned members are not recorded
    pgdl_fetch.Checksums(tmp_path / "c", "x", [pgdl_fetch.PINS])(member, tmp_path / "f")  # no pin: recorded
    record = json.loads((tmp_path / "c" / pgdl_fetch.RECORD).read_text())
    assert record["sha256"] == {member.name: hashlib.sha256(b"{}").hexdigest()}
    (tmp_path / "c" / pgdl_fetch.RECORD).write_text("{}")
    with pytest.raises(DataError, match=rf"{pgdl_fetch.RECORD}: not a pin file.*delete it"):
        pgdl_fetch.Checksums(tmp_path / "c", "x", [pgdl_fetch.PINS])


@pytest.mark.slow
def test_13_a_rerun_over_a_damaged_checkpoint_says_which_file_and_what_to_do(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"network": "digits/0", "regulariser": "none", "max_epochs": 1,
                                "output_root": str(tmp_path / "out")}))
    run_dir = tmp_path / "out" / "digits/0/none/0.0/seed_0"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.npz").write_bytes(b"PK\x03\x04 half written")
    proc = command(["python", "-m", "model.runs.execute", spec], cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    [line] = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert str(run_dir / "checkpoints" / "last.npz") in line and "delete it" in line and "--force" in line


def _pgdl_archive(path: Path, config: bytes) -> bytes:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("input_data/task1_v4/model_20/config.json", config)
        z.writestr("input_data/task1_v4/model_20/weights_init.hdf5", b"init")
        z.writestr("input_data/task1_v4/dataset_1/train/shard_0.tfrecord", b"shard")
        z.writestr("reference_data/task1_v4/model_configs.json", b"{}")
    return path.read_bytes()


def test_15_a_substituted_member_with_a_valid_crc_is_refused_and_not_kept(tmp_path):
    import hashlib

    from model.zoo import pgdl_fetch

    honest = _pgdl_archive(tmp_path / "honest.zip", b'{"model_config": []}')
    evil = _pgdl_archive(tmp_path / "evil.zip", b'{"model_config": ["evil"]}')
    config = tmp_path / "d" / "pgdl" / "input_data/task1_v4/model_20/config.json"
    with LoopbackServer({"/p.zip": honest, "/q.zip": evil}) as server:
        pgdl_fetch.fetch(tmp_path / "d", server.url + "/p.zip", models=(20,))  # no pins: trusted on first use
        record = json.loads((tmp_path / "d" / "pgdl" / pgdl_fetch.RECORD).read_text())
        assert len(record["sha256"]) == 4 and record["url"] == server.url + "/p.zip"
        manifest = json.loads((tmp_path / "d" / "pgdl" / "MANIFEST.json").read_text())
        assert {k: v["sha256"] for k, v in manifest["members"].items()} == record["sha256"]
        pgdl_fetch.fetch(tmp_path / "d", server.url + "/p.zip", models=(20,))  # kept files: checked, pass
        config.unlink()
        with pytest.raises(DataError, match=r"model_20/config.json: SHA-256 [0-9a-f]{64}, expected [0-9a-f]{64} "
                                            r"\(recorded on first use in "):
            pgdl_fetch.fetch(tmp_path / "d", server.url + "/q.zip", models=(20,))
        assert not config.exists()
        assert not list((tmp_path / "d").rglob("*.part")) and not list((tmp_path / "d").rglob(".*.tmp"))
        pins = tmp_path / "pins.json"  # a pin the user trusts wins over the record
        pins.write_text(json.dumps({"sha256": {config.relative_to(tmp_path / "d" / "pgdl").as_posix():
                                               hashlib.sha256(b'{"model_config": ["evil"]}').hexdigest()}}))
        pgdl_fetch.fetch(tmp_path / "d", server.url + "/q.zip", models=(20,), pins=(pgdl_fetch.PINS, pins))
        assert config.read_bytes() == b'{"model_config": ["evil"]}'
    assert json.loads((tmp_path / "d" / "pgdl" / pgdl_fetch.RECORD).read_text()) == record

