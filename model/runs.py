"""Run folders: layout, the `DONE.json` / `FAILED.json` markers and the `RUNNING.json` claim.

A run folder is `<output_root>/<task_id>` (see `model.spec.Spec.task_id`). Finished ⇔ `DONE.json` parses; nothing
else (a `spec.json`, checkpoints, weights, a `FAILED.json`) means finished. While a process trains a run it holds
`RUNNING.json`, created with O_CREAT | O_EXCL; a claim whose pid is dead on this host or whose heartbeat is older
than `STALE_SECONDS` may be taken over. This module must not know how a run is trained.
"""
import json
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path

from model import atomic

DONE, FAILED, RUNNING, SPEC = "DONE.json", "FAILED.json", "RUNNING.json", "spec.json"
HISTORY, WEIGHTS, CHECKPOINTS, TENSORBOARD = "history.csv", "best.weights.h5", "checkpoints", "tensorboard"
STALE_SECONDS = 2 * 3600  # a live trainer refreshes its heartbeat every epoch


def now() -> str:
    """UTC time as ISO 8601 with seconds."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_json(path: Path) -> dict | None:
    """The JSON object in `path`, or None when it is missing or does not parse as an object."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def read_done(run_dir: Path) -> dict | None:
    """The run's `DONE.json`, or None when the run is not finished."""
    return read_json(Path(run_dir) / DONE)


def is_done(run_dir: Path) -> bool:
    return read_done(run_dir) is not None


def write_done(run_dir: Path, record: dict) -> None:
    """Mark the run finished (atomically, last) and drop a `FAILED.json` left by an earlier attempt."""
    atomic.write_json(Path(run_dir) / DONE, record)
    (Path(run_dir) / FAILED).unlink(missing_ok=True)


def write_failed(run_dir: Path, error: BaseException, traceback_text: str = "") -> None:
    """Record why the run failed: `{"error": one line, "type", "time"[, "traceback"]}`; never a `DONE.json`."""
    line = " ".join(str(error).split()) or type(error).__name__
    record = {"error": line, "type": type(error).__name__, "time": now()}
    if traceback_text:
        record["traceback"] = traceback_text
    atomic.write_json(Path(run_dir) / FAILED, record)


def status(run_dir: Path) -> str:
    """'done', 'running' (a live claim), 'failed', 'partial' (started, resumable) or 'missing'."""
    run_dir = Path(run_dir)
    if is_done(run_dir):
        return "done"
    claim = read_json(run_dir / RUNNING)
    if claim is not None and not claim_is_stale(claim):
        return "running"
    if (run_dir / FAILED).exists():
        return "failed"
    return "partial" if run_dir.exists() else "missing"


def claim_is_stale(claim: dict, stale_seconds: float = STALE_SECONDS) -> bool:
    """True when the claiming process is dead on this host, or its heartbeat is older than `stale_seconds`."""
    if claim.get("host") == socket.gethostname() and not _pid_alive(claim.get("pid")):
        return True
    return time.time() - float(claim.get("heartbeat_unix", 0)) > stale_seconds


def _pid_alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ClaimHeld(Exception):
    """Another live process holds the run's claim; `.claim` is its `RUNNING.json`."""

    def __init__(self, run_dir: Path, claim: dict):
        super().__init__(f"{run_dir}: already running (host {claim.get('host')}, pid {claim.get('pid')}, "
                         f"heartbeat {claim.get('heartbeat')})")
        self.claim = claim


class Claim:
    """`RUNNING.json` held by this process: `with Claim(run_dir): ...`; `heartbeat()` once per epoch.

    Entering raises `ClaimHeld` if a live claim exists; a stale one is taken over (renamed aside, then re-created
    with O_EXCL, so of two takers only one wins).
    """

    def __init__(self, run_dir: Path, stale_seconds: float = STALE_SECONDS):
        self.path = Path(run_dir) / RUNNING
        self.stale_seconds = stale_seconds
        self.started = now()

    def __enter__(self) -> "Claim":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(self._record()))
            return self
        raise ClaimHeld(self.path.parent, read_json(self.path) or {})

    def _take_over_if_stale(self) -> None:
        claim = read_json(self.path)
        if claim is None:  # being written right now, or garbage: give the writer a moment
            time.sleep(0.2)
            claim = read_json(self.path)
            if claim is None:
                claim = {}
        if not claim_is_stale(claim, self.stale_seconds):
            raise ClaimHeld(self.path.parent, claim)
        aside = self.path.with_name(f".{RUNNING}.stale.{os.getpid()}")
        try:
            os.replace(self.path, aside)
        except FileNotFoundError:
            return  # another taker moved it first; retry the O_EXCL create
        if (read_json(aside) or {}) != claim:  # we moved a fresh claim made meanwhile: put it back
            os.replace(aside, self.path)
            raise ClaimHeld(self.path.parent, read_json(self.path) or {})
        aside.unlink(missing_ok=True)

    def _record(self) -> dict:
        return {"host": socket.gethostname(), "pid": os.getpid(), "started": self.started,
                "heartbeat": now(), "heartbeat_unix": time.time()}

    def heartbeat(self) -> None:
        """Refresh the heartbeat (atomic rewrite of our own claim)."""
        atomic.write_json(self.path, self._record())

    def __exit__(self, *exc) -> None:
        claim = read_json(self.path)
        if claim is not None and claim.get("pid") == os.getpid() and claim.get("host") == socket.gethostname():
            self.path.unlink(missing_ok=True)
