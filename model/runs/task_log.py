"""A run's `train.log`: everything the task process logs while it holds the run's claim, appended by every attempt.

The task process writes it itself (a `logging.FileHandler` on the root logger), so it exists whichever executor
started the process (local, Ray, Slurm, a docker worker) and wherever its stdout went. Each attempt opens with a
marker line (`==== attempt started ...`, or `==== resumed ...` when the log already holds an earlier attempt, which
the new one continues), then
one line per epoch with every metric, the learning rate and seconds (`model.runs.callbacks.History`), Python warnings
(`logging.captureWarnings`), and on failure the one-line reason first, then the trace. TensorFlow's C++ messages go
to the process's stderr, not here.
"""
import logging
import os
import socket
import traceback
from contextlib import contextmanager
from pathlib import Path

from model.runs.run_folder import LOG, failure_reason, now

log = logging.getLogger(__name__)
trace_log = logging.getLogger(__name__ + ".trace")  # to train.log only: a trace never reaches the terminal
trace_log.propagate = False

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextmanager
def attached(run_dir: Path, forced: bool = False):
    """Log INFO and above of this process to `<run_dir>/train.log` (appending) inside the block. forced: the
    attempt retrains from scratch (`--force`), whatever the log holds."""
    path = Path(run_dir) / LOG
    resumed = path.exists() and path.stat().st_size > 0 and not forced
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    old_level = root.level
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)
    root.addHandler(handler)
    trace_log.addHandler(handler)
    logging.captureWarnings(True)
    try:
        log.info("==== %s %s on host %s, pid %d ====", "resumed" if resumed else "attempt started", now(),
                 socket.gethostname(), os.getpid())
        yield path
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        trace_log.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()


def failed(error: BaseException) -> None:
    """Log a failure: its one-line reason (what `FAILED.json` holds; stderr too), then its trace (train.log only)."""
    log.error("FAILED: %s", failure_reason(error))
    trace_log.error("trace:\n%s", "".join(traceback.format_exception(error)).rstrip())
