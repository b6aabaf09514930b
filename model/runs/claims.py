"""The `RUNNING.json` claim: which process trains a run, so that two workers sharing a folder never train one run.

A claim is created complete (a temporary file hard-linked to that name, which fails if it exists) and refreshed each
epoch; a claim whose pid is dead on this host or whose heartbeat is older than `STALE_SECONDS` may be taken over.
"""
import json
import os
import socket
import tempfile
import time
from pathlib import Path

from model import atomic
from model.runs.run_folder import RUNNING, now, read_json

STALE_SECONDS = 2 * 3600  # a live trainer refreshes its heartbeat every epoch


def claim_is_stale(claim: dict, stale_seconds: float = STALE_SECONDS) -> bool:
    """True when the claiming process is dead on this host, or its heartbeat is older than `stale_seconds`."""
    if claim.get("host") == socket.gethostname() and not _pid_alive(claim.get("pid")):
        return True
    return time.time() - float(claim.get("heartbeat_unix", 0)) > stale_seconds


def claim_file_is_stale(path: Path, stale_seconds: float = STALE_SECONDS) -> bool:
    """True when the claim file `path` is missing or its claim is stale (`claim_is_stale`). A file that does not
    parse or has no heartbeat (written by hand, or by an older version) is live until its mtime is older than
    `stale_seconds`."""
    claim = read_json(path)
    if claim is not None and "heartbeat_unix" in claim:
        return claim_is_stale(claim, stale_seconds)
    try:
        return time.time() - Path(path).stat().st_mtime > stale_seconds
    except FileNotFoundError:
        return True


def release_dead_claim(run_dir: Path, pid: int) -> bool:
    """Remove the run's claim if it names this host and `pid` (a process known to be dead, e.g. killed by a
    signal); return whether it did. Another host's or another process's claim is left alone."""
    path = Path(run_dir) / RUNNING
    claim = read_json(path)
    if claim is None or claim.get("host") != socket.gethostname() or claim.get("pid") != pid:
        return False
    path.unlink(missing_ok=True)
    return True


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


class ClaimLost(ClaimHeld):
    """Our claim was taken over by another process (our heartbeat went stale); it now trains the run."""

    def __init__(self, run_dir: Path, claim: dict):
        Exception.__init__(self, f"{run_dir}: claim taken over by host {claim.get('host')}, pid {claim.get('pid')}; "
                                 "stopping")
        self.claim = claim


class Claim:
    """`RUNNING.json` held by this process: `with Claim(run_dir): ...`; `heartbeat()` once per epoch.

    Entering raises `ClaimHeld` if a live claim exists; a stale one is taken over (renamed aside, then re-created
    by hard link, so of two takers only one wins). `heartbeat()` raises `ClaimLost` once the claim is not ours.
    """

    def __init__(self, run_dir: Path, stale_seconds: float = STALE_SECONDS):
        self.path = Path(run_dir) / RUNNING
        self.stale_seconds = stale_seconds
        self.started = now()

    def __enter__(self) -> "Claim":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            if self._create():
                return self
            self._take_over_if_stale()
        raise ClaimHeld(self.path.parent, read_json(self.path) or {})

    def _create(self) -> bool:
        """Create `RUNNING.json` with its content in one step (write a temporary file, hard-link it to the
        name); False when the name exists."""
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{RUNNING}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(self._record()))
            os.link(tmp, self.path)
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
        return True

    def _take_over_if_stale(self) -> None:
        claim = read_json(self.path)
        if not claim_file_is_stale(self.path, self.stale_seconds):
            raise ClaimHeld(self.path.parent, claim or {})
        aside = self.path.with_name(f".{RUNNING}.stale.{os.getpid()}")
        try:
            os.replace(self.path, aside)
        except FileNotFoundError:
            return  # another taker moved it first; retry the O_EXCL create
        if read_json(aside) != claim:  # we moved a fresh claim made meanwhile: put it back
            os.replace(aside, self.path)
            raise ClaimHeld(self.path.parent, read_json(self.path) or {})
        aside.unlink(missing_ok=True)

    def _record(self) -> dict:
        return {"host": socket.gethostname(), "pid": os.getpid(), "started": self.started,
                "heartbeat": now(), "heartbeat_unix": time.time()}

    def heartbeat(self) -> None:
        """Refresh the heartbeat (atomic rewrite of our own claim); `ClaimLost` if another process took it."""
        claim = read_json(self.path) or {}
        if not self._ours(claim):
            raise ClaimLost(self.path.parent, claim)
        atomic.write_json(self.path, self._record())

    @staticmethod
    def _ours(claim: dict) -> bool:
        return claim.get("pid") == os.getpid() and claim.get("host") == socket.gethostname()

    def __exit__(self, *exc) -> None:
        if self._ours(read_json(self.path) or {}):
            self.path.unlink(missing_ok=True)
