"""A polite stop of one task process: SIGTERM or SIGINT asks it to stop at the next safe point.

`docker stop` sends SIGTERM and kills 10 s later; Slurm and Ctrl-C do the same in spirit. Before the run holds its
claim, the signal stops the process at once (`Interrupted` is raised from the handler: nothing is written yet).
Inside `deferred()` (claim held, training) the signal only records the request; the trainer's `StopOnSignal`
callback (`model.runs.callbacks`) acts on it: at the end of the current epoch, with a checkpoint, when the rest of
the epoch fits in `GRACE_SECONDS` from the signal, else at the end of the current step (the partial epoch is
dropped; the run resumes from its last checkpoint). `Interrupted` then leaves the claim (released on the way out)
and the process exits with `EXIT_STOPPED`. A second signal while stopping is ignored (Ctrl-C reaches a driver and
its task processes at once, and the driver passes it on).
"""
import logging
import signal
import time
from contextlib import contextmanager

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)
GRACE_SECONDS = 5.0  # of `docker stop`'s 10 s: the rest is for validation, the checkpoint, releasing the claim, exit
EXIT_STOPPED = 4  # `python -m model.runs.execute`'s exit status when it stopped on a signal (resumable, not failed)


class Interrupted(BaseException):
    """The process was asked to stop by a signal. Nothing is wrong with the run: it resumes from its checkpoint.
    A `BaseException`, like `KeyboardInterrupt`, so no `except Exception` records it as a failure."""

    def __init__(self, signum: int, where: str):
        super().__init__(f"stopped by {signal.Signals(signum).name} {where}")
        self.signum = signum


class StopRequest:
    """Whether a stop was asked (`signum`, `requested`) and how much of the grace time is left (`remaining`)."""

    def __init__(self, grace_seconds: float = GRACE_SECONDS):
        self.grace_seconds = grace_seconds
        self.signum: int | None = None
        self.at: float | None = None
        self._deferred = 0

    @contextmanager
    def installed(self):
        """Within: this request handles SIGTERM and SIGINT (main thread only); the old handlers come back after."""
        previous = {signum: signal.signal(signum, self.handle) for signum in SIGNALS}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def handle(self, signum, frame=None) -> None:
        if self.signum is not None:
            log.info("%s again: already stopping", signal.Signals(signum).name)
            return
        self.signum, self.at = signum, time.monotonic()
        if not self._deferred:
            raise Interrupted(signum, "before training")
        log.warning("%s: stopping at the next safe point (a checkpoint, then the claim is released)",
                    signal.Signals(signum).name)

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def remaining(self) -> float:
        """Seconds of grace left since the signal (`grace_seconds` minus the time since); inf when none came."""
        return float("inf") if self.at is None else self.grace_seconds - (time.monotonic() - self.at)

    @contextmanager
    def deferred(self):
        """Within: a signal only records the request (`check` and `StopOnSignal` act on it at safe points)."""
        self._deferred += 1
        try:
            yield self
        finally:
            self._deferred -= 1

    def check(self, where: str) -> None:
        """Raise `Interrupted` if a stop was asked."""
        if self.signum is not None:
            raise Interrupted(self.signum, where)
