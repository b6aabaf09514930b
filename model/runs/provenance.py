"""What produced a run: the code (git commit, dirty tree), the machine (host, device), the command line.

The provenance keys of a run's `DONE.json`; `at_start` gives all but the last three, which `model.runs.execute` adds:
- `commit`: the 40-hex commit of the checkout `model/` was imported from, or None when it is not a git work tree
  (a Docker image has no .git: the image's `CODE_COMMIT` build argument is used then, see the Dockerfile);
- `dirty`: True when tracked files differ from that commit (untracked files do not count, as in
  `git describe --dirty`), None when unknown;
- `version`: the package's version (`model.version`): what an installed package records in place of a commit;
- `host`: the host name: `$RUN_HOST` when set (a container's own name is a random id: the README's `docker run`
  passes the machine's, `-e RUN_HOST="$(hostname)"`), else this system's; `device`: `device()`;
- `started`: UTC ISO 8601 time this attempt started (a resumed run's earlier attempts are in history.csv);
- `command`: this process's command line (`sys.orig_argv`), and `launched_by`: the sweep driver's, when a
  driver started it (the `SWEEP_COMMAND` environment variable that `scripts/run_sweep.py` sets), else None;
- `pairing` (the MST pairing T1/T2 resolved to, `numpy` or `tf`; None for the
  other regularisers), `xla` (whether Keras compiled the training step with XLA) and `finished`.
Everything but `device` works without TensorFlow.
"""
import os
import platform
import shlex
import socket
import subprocess
import sys
from pathlib import Path

from model.version import version

CODE_ROOT = Path(__file__).resolve().parents[2]  # the checkout holding model/
COMMIT_ENV = "CODE_COMMIT"  # set in the Docker image, which has no .git
SWEEP_COMMAND_ENV = "SWEEP_COMMAND"
HOST_ENV = "RUN_HOST"  # the host name to record, e.g. the machine's for a run inside a container


def _git(root: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def git_state(root: str | os.PathLike = CODE_ROOT) -> dict:
    """{"commit": 40-hex or None, "dirty": bool or None} of the git work tree at `root`.

    Outside a work tree (or without git) the commit is `$CODE_COMMIT` when set, else None; dirty is then None.
    """
    root = Path(root)
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None or Path(top.strip()).resolve() != root.resolve():  # root is not itself a checkout's top
        return {"commit": os.environ.get(COMMIT_ENV) or None, "dirty": None}
    commit = _git(root, "rev-parse", "--verify", "HEAD")
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit.strip() if commit else None, "dirty": None if status is None else bool(status.strip())}


def cpu_model() -> str:
    """The CPU's marketing name (Linux /proc/cpuinfo, macOS sysctl), else the architecture (`aarch64`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        try:
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                                 timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out:
            return out
    return platform.processor() or platform.machine()


def device() -> dict:
    """The device this process trains on, as TensorFlow sees it.

    {"kind": "GPU" or "CPU", "name": the first visible GPU's name (TensorFlow places ops on it) or the CPU model,
    "visible_gpus": how many GPUs TensorFlow sees, "compute_capability": "8.0" or None, "cuda_build",
    "cudnn_build": the CUDA and cuDNN versions TensorFlow was built against, on a GPU (None on the CPU)}.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return {"kind": "CPU", "name": cpu_model(), "visible_gpus": 0, "compute_capability": None,
                "cuda_build": None, "cudnn_build": None}
    details = tf.config.experimental.get_device_details(gpus[0])
    build = tf.sysconfig.get_build_info()
    capability = details.get("compute_capability")
    return {"kind": "GPU", "name": details.get("device_name", gpus[0].name), "visible_gpus": len(gpus),
            "compute_capability": ".".join(map(str, capability)) if capability else None,
            "cuda_build": build.get("cuda_version"), "cudnn_build": build.get("cudnn_version")}


def describe(dev: dict) -> str:
    """One line for logs and tables: `GPU NVIDIA A100-SXM4-40GB (CUDA 12.5.1, cuDNN 9)` or `CPU <model>`."""
    if dev.get("kind") != "GPU":
        return f"CPU {dev.get('name')}"
    return f"GPU {dev.get('name')} (CUDA {dev.get('cuda_build')}, cuDNN {dev.get('cudnn_build')})"


def host() -> str:
    """The host name to record: `$RUN_HOST` when set, else this system's."""
    return os.environ.get(HOST_ENV) or socket.gethostname()


def command_line() -> str:
    """This process's command line as a shell would take it."""
    return shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv]))


def at_start(started: str) -> dict:
    """The provenance keys known when a run starts (all but `pairing`, `xla` and `finished`, which the caller adds):
    the code is read now, before training, since the checkout may move while a run trains."""
    return {**git_state(), "version": version(), "host": host(), "device": device(), "started": started,
            "command": command_line(), "launched_by": os.environ.get(SWEEP_COMMAND_ENV) or None}
