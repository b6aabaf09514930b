"""Executors: slot planning, the shared scheduling loop, task processes, and real sweeps on the digits zoo.

The slow tests run a small digits sweep (4 tasks, 2 epochs) with the local executor (2 CPU workers), with the Ray
executor on a real Ray cluster (head + one worker node) that the test starts on loopback, and with the driver and
task processes killed by SIGKILL at random moments; every way must end with the same DONE.json results.
"""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from model.runs import run_folder
from model.sweeps import grid
from model.sweeps.local import slots
from model.sweeps.scheduler import schedule
from model.sweeps.task_process import Job, run_process, task_env

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import sweep_status  # noqa: E402

SMALL = ROOT / "configs" / "digits" / "sweep_small.json"
RESULT_KEYS = ("task_id", "train_accuracy", "val_accuracy", "test_accuracy", "val_loss", "epochs", "best_epoch",
               "stop_reason")


# ---------------------------------------------------------------------------------------------- slots, env
def test_slots_one_per_gpu_times_tasks_per_gpu():
    assert slots(gpus=["0", "1"]) == ["0", "1"]
    assert slots(gpus=["0", "3"], tasks_per_gpu=2) == ["0", "0", "3", "3"]
    assert slots(gpus=[], workers=3) == ["-1", "-1", "-1"]


def test_slots_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert slots() == ["2", "5"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert slots(workers=2) == ["-1", "-1"]


@pytest.mark.parametrize("kwargs", [{"tasks_per_gpu": 0}, {"workers": 0}])
def test_slots_reject_nonsense(kwargs):
    from model.sweeps.scheduler import ExecutorError
    with pytest.raises(ExecutorError):
        slots(gpus=[], **kwargs)


def test_ray_executor_fails_fast_without_a_cluster(tmp_path):
    from model.sweeps import ray
    from model.sweeps.scheduler import ExecutorError
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    with pytest.raises(ExecutorError, match=f"no Ray cluster at 127.0.0.1:{port}"):
        ray.run(jobs(tmp_path, "a"), address=f"127.0.0.1:{port}")


def test_task_env_turns_memory_growth_on_and_pins_the_gpu():
    env = task_env({"PATH": "/bin"}, gpus="3")
    assert env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true" and env["CUDA_VISIBLE_DEVICES"] == "3"
    assert "CUDA_VISIBLE_DEVICES" not in task_env({"PATH": "/bin"})


# ---------------------------------------------------------------------------------------------- schedule
class FakeBackend:
    """submit/wait for `schedule`: each job's process 'exits' with the next code of its script."""

    def __init__(self, scripts: dict, effects: dict | None = None):
        self.scripts = {k: list(v) for k, v in scripts.items()}
        self.effects = effects or {}
        self.queue, self.submitted = [], []

    def submit(self, job):
        self.submitted.append(job.task_id)
        self.queue.append(job)

    def wait(self):
        job = self.queue.pop(0)
        code, tail = self.scripts[job.task_id].pop(0)
        if code == 0:
            run_folder.write_done(Path(job.run_dir), {"task_id": job.task_id})
        for effect in self.effects.pop(job.task_id, []):
            effect()
        return job, code, tail


def jobs(tmp_path, *names):
    return [Job(n, str(tmp_path / n / "spec.json"), str(tmp_path / n), str(tmp_path)) for n in names]


def test_schedule_runs_skips_fails_and_retries_kills(tmp_path):
    a, b, c, d = jobs(tmp_path, "a", "b", "c", "d")
    run_folder.write_done(Path(d.run_dir), {"task_id": "d"})
    backend = FakeBackend({"a": [(0, "")], "b": [(2, "error: data/x.npz: missing\n")],
                           "c": [(-9, ""), (-9, ""), (0, "")]})
    outcomes = schedule([a, b, c, d], backend.submit, backend.wait, max_retries=2)
    assert [(o.task_id, o.status) for o in outcomes] == [("a", "done"), ("b", "failed"), ("c", "done"),
                                                         ("d", "skipped")]
    assert outcomes[1].reason == "data/x.npz: missing"
    assert run_folder.read_json(Path(b.run_dir) / run_folder.FAILED)["error"] == "data/x.npz: missing"
    assert backend.submitted.count("c") == 3 and "d" not in backend.submitted


def test_schedule_tries_a_task_that_failed_in_an_earlier_run_again(tmp_path):
    [a] = jobs(tmp_path, "a")
    run_folder.write_failed(tmp_path / "a", RuntimeError("out of memory"))
    backend = FakeBackend({"a": [(0, "")]})
    [outcome] = schedule([a], backend.submit, backend.wait)
    assert outcome.status == "done" and not (tmp_path / "a" / run_folder.FAILED).exists()


def test_schedule_gives_up_after_max_retries_kills(tmp_path):
    [a] = jobs(tmp_path, "a")
    backend = FakeBackend({"a": [(-9, "")] * 2})
    [outcome] = schedule([a], backend.submit, backend.wait, max_retries=1)
    assert outcome.status == "failed" and outcome.reason == "killed by SIGKILL (retries exhausted)"


def test_schedule_keeps_the_failure_reason_the_run_wrote(tmp_path):
    [a] = jobs(tmp_path, "a")
    backend = FakeBackend({"a": [(1, "error: training failed (details in FAILED.json)")]},
                          {"a": [lambda: run_folder.write_failed(tmp_path / "a", FloatingPointError("NaN loss"))]})
    [outcome] = schedule([a], backend.submit, backend.wait)
    assert outcome.reason == "NaN loss"
    assert run_folder.read_json(tmp_path / "a" / run_folder.FAILED)["type"] == "FloatingPointError"


def test_schedule_waits_for_tasks_another_process_trains(tmp_path):
    a, b = jobs(tmp_path, "a", "b")
    claim = Path(b.run_dir) / run_folder.RUNNING
    claim.parent.mkdir(parents=True)
    claim.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "heartbeat_unix": time.time()}))

    def other_process_finishes():
        run_folder.write_done(Path(b.run_dir), {"task_id": "b"})
        claim.unlink()

    # a's process loses a race for its claim first (exit 3), then trains it; b is finished by the other process
    backend = FakeBackend({"a": [(3, "error: already running"), (0, "")]}, {"a": [other_process_finishes]})
    outcomes = schedule([a, b], backend.submit, backend.wait, poll_seconds=0.01)
    assert [(o.task_id, o.status) for o in outcomes] == [("a", "done"), ("b", "skipped")]
    assert backend.submitted == ["a", "a"]


# ---------------------------------------------------------------------------------------------- processes
def fake_python(tmp_path, body: str) -> str:
    """An executable standing in for `python -m model.runs.execute SPEC`: runs `body` (sh) with $4 = SPEC."""
    path = tmp_path / "fakepython"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def test_run_process_returns_status_and_output_tail(tmp_path):
    [job] = jobs(tmp_path, "a")
    python = fake_python(tmp_path, 'echo "training $3"; echo "error: boom" >&2; exit 4\n')
    code, tail = run_process(job, task_env(), python=python)
    assert code == 4
    assert tail.splitlines() == [f"training {job.spec_path}", "error: boom"]


def test_run_process_removes_the_claim_of_a_task_killed_by_a_signal(tmp_path):
    [job] = jobs(tmp_path, "a")
    Path(job.run_dir).mkdir()
    claim = Path(job.run_dir) / run_folder.RUNNING
    host = socket.gethostname()
    python = fake_python(tmp_path, f"""echo '{{"host": "{host}", "pid": '$$', "heartbeat_unix": 1e12}}' > {claim}
kill -9 $$
""")
    code, _ = run_process(job, task_env(), python=python)
    assert code == -signal.SIGKILL and not claim.exists()  # the retry is not blocked until the claim goes stale


def test_a_task_process_dies_with_its_driver(tmp_path):
    [job] = jobs(tmp_path, "a")
    python = fake_python(tmp_path, f'echo $$ > {tmp_path}/child.pid; exec sleep 120\n')
    driver = subprocess.Popen([sys.executable, "-c", (
        "import sys; from model.sweeps.task_process import Job, run_process, task_env; "
        f"run_process(Job(*{tuple(job.__dict__.values())!r}), task_env(), python={python!r})")])
    pid_file = tmp_path / "child.pid"
    for _ in range(600):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        time.sleep(0.05)
    child = int(pid_file.read_text())
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    for _ in range(200):
        if not _alive(child):
            break
        time.sleep(0.05)
    assert not _alive(child), "the task process outlived its killed driver"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


# ---------------------------------------------------------------------------------------------- real sweeps
def sweep_file(tmp_path: Path, name: str, failing: bool = False) -> Path:
    """configs/digits/sweep_small.json writing under tmp_path/name (2 epochs), plus an always-failing task."""
    sweep = json.loads(SMALL.read_text())
    sweep["base"].update(output_root=str(tmp_path / name), max_epochs=2)
    sweep.pop("expect_tasks")
    if failing:  # a spec pointing at missing data
        sweep["grid"].append({"networks": ["mnist/0"], "set": {"data_root": str(tmp_path / "no-such-data")},
                              "cells": [{"regulariser": "none", "weights": [0.0]}]})
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(sweep))
    return path


def cli(script: str, *args, env=None, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=600)
    if check and proc.returncode not in (0, 1):
        raise AssertionError(f"{script} {args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def results(path: Path) -> dict:
    """task id → the DONE.json fields that must not depend on how the sweep was run."""
    out = {}
    for task in grid.load(path):
        done = run_folder.read_done(task.run_dir)
        if done is not None:
            out[task.task_id] = {k: done[k] for k in RESULT_KEYS}
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted local sweep (2 CPU workers) with the always-failing task: (sweep file, its run).

    Computed once per test session, also under pytest-xdist: the workers share it through a file lock.
    """
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the folder every xdist worker's base temp lives in
    folder = base / "executors-reference"
    with FileLock(f"{folder}.lock"):
        path = folder / "local.json"
        saved = folder / "run.json"
        if not saved.exists():
            folder.mkdir(exist_ok=True)
            sweep_file(folder, "local", failing=True)
            proc = cli("run_sweep.py", path, "--workers", 2)
            saved.write_text(json.dumps({"returncode": proc.returncode, "stdout": proc.stdout,
                                         "stderr": proc.stderr}))
        run = json.loads(saved.read_text())
    return path, subprocess.CompletedProcess([], run["returncode"], run["stdout"], run["stderr"])


@pytest.mark.slow
def test_local_sweep_finishes_the_rest_and_reports_the_failing_task(reference, capsys):
    path, proc = reference
    assert proc.returncode == 1, proc.stderr
    assert "4 trained now, 0 already done, 1 failed" in proc.stdout
    assert "failed mnist/0/none/0.0/seed_0:" in proc.stdout and "no-such-data" in proc.stdout
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in lines] == [f"[{k}/5" for k in range(1, 6)]
    assert all(" left · ETA " in line for line in lines) and lines[-1].endswith("· 0 left · ETA 0s")
    done = results(path)
    assert sorted(done) == sorted(t.task_id for t in grid.load(SMALL))
    assert all(r["test_accuracy"] > 0.3 for r in done.values())
    for task in grid.load(path):
        if task.task_id in done:
            log = (task.run_dir / run_folder.LOG).read_text()
            assert log.count(" model.runs.callbacks: epoch ") == done[task.task_id]["epochs"], task.task_id

    assert sweep_status.main([str(path)]) == 1  # mnist/0 failed
    out = capsys.readouterr().out.splitlines()
    table = {line.split()[0]: line.split()[1:8] for line in out[1:6]}  # done ... pending, missing, total
    assert table["none/0.0"] == ["1", "0", "1", "0", "0", "0", "2"]  # digits/0 done, mnist/0 failed
    assert table["all"] == ["4", "0", "1", "0", "0", "0", "5"]
    [reason] = [line for line in out if line.startswith("  mnist/0/none/0.0/seed_0: ")]
    assert "no-such-data" in reason


@pytest.fixture()
def ray_cluster():
    """A real Ray cluster on loopback: a head node and one worker node, 1 CPU each; yields (address, env).

    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 makes Ray advertise 127.0.0.1 instead of the machine's network address, so
    nothing leaves loopback; `ray start` refuses a worker node in that mode, so the nodes are started the way
    Ray's own tests do (`ray.cluster_utils.Cluster`), in a helper process that shuts them down when its stdin closes.
    """
    pytest.importorskip("ray")
    tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit in 107 characters
    env = {**os.environ, "RAY_TMPDIR": tmp, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    code = ("import os, sys\nfrom ray.cluster_utils import Cluster\n"
            "os.makedirs(os.path.join(os.environ['RAY_TMPDIR'], 'ray'), exist_ok=True)\n"
            "mem = 80 * 2**20\n"
            "c = Cluster(initialize_head=True, head_node_args={'num_cpus': 1, 'include_dashboard': False, "
            "'object_store_memory': mem})\n"
            "c.add_node(num_cpus=1, object_store_memory=mem)\n"
            "print(c.address, flush=True)\n"
            "try:\n    sys.stdin.read()\nfinally:\n    c.shutdown()\n")
    helper = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, env=env, start_new_session=True)
    try:
        address = helper.stdout.readline().strip()
        assert address.startswith("127.0.0.1:"), f"the Ray cluster did not start (got {address!r})"
        yield address, env
    finally:
        helper.stdin.close()
        try:
            helper.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(helper.pid, signal.SIGKILL)  # only the helper's own session: the processes it started
            helper.wait()
        subprocess.run(["rm", "-rf", tmp], check=False)


@pytest.mark.slow
def test_ray_cluster_sweep_gives_the_same_results_as_local(reference, ray_cluster, tmp_path):
    address, env = ray_cluster
    path = sweep_file(tmp_path, "ray")
    proc = cli("run_sweep.py", path, "--executor", "ray", "--address", address, env=env)
    assert proc.returncode == 0 and "4 trained now, 0 already done, 0 failed" in proc.stdout, proc.stdout + proc.stderr
    assert results(path) == results(reference[0])


def _task_processes(marker: str) -> list[int]:
    """pids of live `python -m model.runs.execute` processes whose command line mentions `marker`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            ours = b"model.runs.execute" in cmd and any(marker.encode() in part for part in cmd)
            if ours and _alive(int(entry.name)):
                pids.append(int(entry.name))
    return pids


@pytest.mark.slow
def test_sigkill_of_driver_and_workers_then_rerun_completes_each_task_once(reference, tmp_path):
    path = sweep_file(tmp_path, "killed")
    marker = str(tmp_path / "killed")
    rng = random.Random(6)
    for round_ in range(3):
        driver = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "run_sweep.py"), str(path), "--workers",
                                   "2"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(3, 9))
        workers = _task_processes(marker)
        if workers:  # a task process dies mid-task: the driver retries it
            os.kill(rng.choice(workers), signal.SIGKILL)
        time.sleep(rng.uniform(1, 4))
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        deadline = time.time() + 10
        while _task_processes(marker) and time.time() < deadline:
            time.sleep(0.1)
        assert not _task_processes(marker), f"round {round_}: task processes outlived the killed driver"

    final = cli("run_sweep.py", path, "--workers", 2)
    assert final.returncode == 0, final.stdout + final.stderr
    assert "0 failed" in final.stdout
    tasks = grid.load(path)
    assert results(path) == {k: v for k, v in results(reference[0]).items() if k in {t.task_id for t in tasks}}
    for task in tasks:
        assert not (task.run_dir / run_folder.RUNNING).exists() and not (task.run_dir / run_folder.FAILED).exists()
        epochs = [line.split(",")[0] for line in (task.run_dir / run_folder.HISTORY).read_text().splitlines()[1:]]
        assert epochs == ["1", "2"], f"{task.task_id}: history {epochs} (an epoch trained twice or lost)"
    rerun = cli("run_sweep.py", path, "--workers", 2)
    assert "0 trained now, 4 already done, 0 failed" in rerun.stdout


def _trainings(run_dir: Path) -> int:
    """How many task processes trained at least one epoch of this run (each opens its own TensorBoard event file)."""
    return len(list((run_dir / run_folder.TENSORBOARD / "train").glob("events.out.tfevents.*")))


def _unshare_pid_works() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True).returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize("namespaces", ["one PID namespace",
                                        pytest.param("two PID namespaces", marks=pytest.mark.skipif(
                                            not _unshare_pid_works(), reason="needs root and unshare --pid"))])
def test_two_drivers_sharing_one_experiments_folder_train_each_task_once(reference, tmp_path, namespaces):
    """Two workers on one folder (as two docker workers or `make worker` on two GPUs): the claims split the tasks.

    With two PID namespaces (two containers on one host name, `--network host`), the second driver and its tasks see
    none of the first's pids: a claim must not be judged dead because its pid is not visible there.
    """
    path = sweep_file(tmp_path, "shared")
    command = [sys.executable, str(ROOT / "scripts" / "run_sweep.py"), str(path), "--workers", "1"]
    prefixes = [[], ["unshare", "--pid", "--fork", "--mount-proc"] if namespaces == "two PID namespaces" else []]
    drivers = [subprocess.Popen(prefix + command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True) for prefix in prefixes]
    outputs = [d.communicate(timeout=600)[0] for d in drivers]
    assert [d.returncode for d in drivers] == [0, 0], outputs
    assert all("0 failed" in out for out in outputs), outputs
    # A task process that finds the run finished by the other driver's process once it holds the claim exits 0 like
    # one that trained it, so the drivers' "trained now" counts may overlap; the histories show who trained what:
    # every epoch of every task exactly once, and the results of an uninterrupted single-driver sweep.
    assert results(path) == results(reference[0])
    for task in grid.load(path):
        epochs = [line.split(",")[0] for line in (task.run_dir / run_folder.HISTORY).read_text().splitlines()[1:]]
        assert epochs == ["1", "2"], f"{task.task_id}: history {epochs}"
        assert _trainings(task.run_dir) == 1, f"{task.task_id}: trained by {_trainings(task.run_dir)} processes"
