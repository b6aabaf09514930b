"""A worker's polite stop: SIGTERM or SIGINT to a sweep driver (`docker stop` signals the container's first
process, the driver) stops it starting tasks and passes SIGTERM on to its task processes, which checkpoint, release
their claims and exit (`model.runs.stop_request`); the driver then reports and exits 0, within `docker stop`'s 10 s.

`requested` is the driver's flag (`model.sweeps.scheduler.schedule` reads it); task processes are registered while
they run (`model.sweeps.task_process.run_process`) so the signal reaches each, including one started just after it.
"""
import logging
import signal
import subprocess
import threading
from contextlib import contextmanager

log = logging.getLogger(__name__)

requested = threading.Event()
_running: set[subprocess.Popen] = set()
_lock = threading.Lock()


def register(proc: subprocess.Popen) -> None:
    """A task process started: it gets SIGTERM on a stop (at once when the stop came already)."""
    with _lock:
        _running.add(proc)
    if requested.is_set():
        _terminate(proc)


def unregister(proc: subprocess.Popen) -> None:
    with _lock:
        _running.discard(proc)


def _terminate(proc: subprocess.Popen) -> None:
    try:
        proc.send_signal(signal.SIGTERM)
    except OSError:  # already gone
        pass


def handle(signum, frame=None) -> None:
    """The driver's SIGTERM/SIGINT handler: flag the stop, pass SIGTERM to every running task process."""
    if requested.is_set():
        return
    requested.set()
    with _lock:
        running = list(_running)
    log.warning("%s: stopping: %d running task(s) checkpoint and release their claims; no new task starts",
                signal.Signals(signum).name, len(running))
    for proc in running:
        _terminate(proc)


@contextmanager
def handling():
    """Within: SIGTERM and SIGINT stop the driver politely (`handle`); the old handlers come back after."""
    requested.clear()
    previous = {signum: signal.signal(signum, handle) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
