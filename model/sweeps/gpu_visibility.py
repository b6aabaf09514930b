"""GPU use is explicit: GPUs a sweep is told to use (or finds with nvidia-smi) must be GPUs TensorFlow sees.

Without this check, a TensorFlow lacking its CUDA libraries (no `gpu` extra) trains every task on the CPU without
a word. TensorFlow is asked in a child process with the tasks' environment (`task_env`), so the driver never
imports it (seconds of start-up; once per sweep, and only when there are GPU slots).
"""
import logging
import subprocess
import sys

from model.sweeps.scheduler import ExecutorError
from model.sweeps.task_process import task_env

log = logging.getLogger(__name__)

PROBE = 'import tensorflow as tf; print(len(tf.config.list_physical_devices("GPU")))'


def tensorflow_gpus(devices: str, python: str | None = None) -> int:
    """How many GPUs TensorFlow sees in a fresh process whose CUDA_VISIBLE_DEVICES is `devices` ("0", "0,1")."""
    try:
        proc = subprocess.run([python or sys.executable, "-c", PROBE], env=task_env(gpus=devices),
                              capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as err:
        raise ExecutorError(f"could not ask TensorFlow which GPUs it sees: {err}") from None
    lines = proc.stdout.split()
    if proc.returncode != 0 or not lines or not lines[-1].isdigit():
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ExecutorError(f"could not ask TensorFlow which GPUs it sees (exit {proc.returncode}): {tail}")
    return int(lines[-1])


def require_gpus(gpus: list[str], allow_cpu: bool = False, source: str = "--gpus",
                 python: str | None = None) -> None:
    """Raise `ExecutorError` (exit 2) unless TensorFlow sees every GPU of `gpus`; with `allow_cpu`, warn instead.

    gpus: GPU ids (`[]`: CPU workers, nothing to check). source: where the ids came from, for the message.
    """
    if not gpus:
        return
    ids = ",".join(gpus)
    seen = tensorflow_gpus(ids, python)
    if seen >= len(gpus):
        return
    message = (f"{source} {ids}: TensorFlow sees {seen} of these {len(gpus)} GPU(s), so tasks would train on the "
               "CPU; install TensorFlow's CUDA route (the 'gpu' extra, README 'GPUs'), or pass --allow-cpu to train "
               "on the CPU knowingly")
    if not allow_cpu:
        raise ExecutorError(message)
    log.warning("%s (--allow-cpu: going on)", message.split("; ")[0])
