"""The `RUNNING.json` claim: which process trains a run, so that two workers sharing a folder never train one run.

A claim is created complete (a temporary file hard-linked to that name, which fails if it exists) and its heartbeat
is refreshed by a daemon thread every `HEARTBEAT_SECONDS` while the claim is held (so liveness does not depend on
how long an epoch takes), and at each epoch's end. It names its owner by a random per-process `token` (what `Claim`
checks to know a claim is its own), and by host, boot, PID namespace, pid and the pid's start time (what lets a
reader tell that the owner is dead). A claim may be taken over when its heartbeat is more than `STALE_SECONDS` from
now (older, or in the future), or when it was made in the reader's own PID namespace on this boot by a pid that is
gone (or now another process). A claim from another PID namespace (another container sharing the folder and host
name) is judged by its heartbeat alone: its pid means nothing here. Any content is read without error: a heartbeat
that is not a number is replaced by the file's mtime.
A process inside a Slurm job also records the job (`slurm_job`, e.g. `1234_5` for an array element) and its restart
count (`slurm_restart`): a claim made by an earlier run of the same job (Slurm requeued it, on this node or another)
is stale, since Slurm runs one instance of a job at a time, and `release_job_claim` lets a driver drop the claim of a
job that Slurm says has ended.
"""
import json
import logging
import math
import os
import socket
import stat
import tempfile
import threading
import time
import uuid
from pathlib import Path

from model import atomic
from model.runs.run_folder import RUNNING, now, read_json

log = logging.getLogger(__name__)

# The one liveness constant: a claim whose heartbeat is older than this is dead and is taken over. The heartbeat is
# refreshed five times per period (every 30 s by default), so a claim goes stale after five missed beats: 150 s
# (2.5 minutes) after its process was killed, its machine lost power or its network went away. Clocks of machines
# sharing a folder must agree to well within it (NTP does). `CLAIM_STALE_SECONDS` overrides it (tests).
STALE_SECONDS = float(os.environ.get("CLAIM_STALE_SECONDS") or 150)
HEARTBEAT_SECONDS = STALE_SECONDS / 5


def slurm_job(environ=None) -> tuple[str, int] | None:
    """(job id, restart count) of the Slurm job this process runs in, or None outside Slurm. An array element's id
    is `<array job id>_<index>`, as `squeue` and `scontrol` name it."""
    env = os.environ if environ is None else environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        job = f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    elif env.get("SLURM_JOB_ID"):
        job = env["SLURM_JOB_ID"]
    else:
        return None
    restarts = env.get("SLURM_RESTART_COUNT", "0")
    return job, int(restarts) if restarts.isdigit() else 0


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _pid_namespace() -> str | None:
    """This boot and PID namespace, e.g. `<boot id>/pid:[4026531836]`; None where Linux /proc does not tell."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return f"{_read('/proc/sys/kernel/random/boot_id')}/{namespace}"


PID_NAMESPACE = _pid_namespace()
_token: tuple[int, str] | None = None


def token() -> str:
    """This process's claim token: random, made once per process (a forked child gets its own)."""
    global _token
    if _token is None or _token[0] != os.getpid():
        _token = (os.getpid(), uuid.uuid4().hex)
    return _token[1]


def _start_time(pid: int) -> int | None:
    """The start time of `pid` in clock ticks since boot (`/proc/<pid>/stat` field 22), or None."""
    stat = _read(f"/proc/{pid}/stat")
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (AttributeError, IndexError, ValueError):
        return None


def _in_our_pid_namespace(claim: dict) -> bool:
    """Whether the claim's pid is a pid of this PID namespace on this boot (a record without the field, from an
    older version, is taken to be one when it names this host, as that version judged it)."""
    return claim.get("host") == socket.gethostname() and claim.get("pid_namespace", PID_NAMESPACE) == PID_NAMESPACE


def _owner_is_dead(claim: dict) -> bool:
    """True only when the claim was made in our PID namespace and its process is provably gone: the pid does not
    exist, or belongs to a process started at another time (the pid was reused)."""
    pid = claim.get("pid")
    if not _in_our_pid_namespace(claim) or not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    if not _pid_alive(pid):
        return True
    started = claim.get("pid_start")
    return isinstance(started, int) and _start_time(pid) not in (None, started)


def _timestamp(value) -> float | None:
    """A finite number of seconds since the epoch, or None for anything else (a string, null, NaN, a list...)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _earlier_run_of_our_job(claim: dict) -> bool:
    """Whether the claim was made by an earlier run (lower restart count) of the Slurm job this process runs in."""
    ours = slurm_job()
    restart = claim.get("slurm_restart", 0)
    if ours is None or claim.get("slurm_job") != ours[0] or isinstance(restart, bool) or not isinstance(restart, int):
        return False
    return restart < ours[1]


def claim_is_stale(claim: dict, stale_seconds: float = STALE_SECONDS, mtime: float | None = None) -> bool:
    """True when the claim's owner is provably dead (`_owner_is_dead`), was an earlier run of our own Slurm job, or
    its heartbeat (`heartbeat_unix`; when that is not a number, `mtime`, the claim file's) is more than
    `stale_seconds` before or after now. A claim with neither a usable heartbeat nor an mtime is stale."""
    if _owner_is_dead(claim) or _earlier_run_of_our_job(claim):
        return True
    beat = _timestamp(claim.get("heartbeat_unix"))
    beat = beat if beat is not None else mtime
    return beat is None or abs(time.time() - beat) > stale_seconds


def claim_file_is_stale(path: Path, stale_seconds: float = STALE_SECONDS) -> bool:
    """True when the claim file `path` is missing (or cannot be looked at), is not a regular file (a directory, a
    symlink: no claim; `model.runs.execute` refuses such a run folder in one line) or its claim is stale
    (`claim_is_stale`). A file that does not parse (half written by hand, garbage) is judged by its mtime alone."""
    try:
        info = os.lstat(path)
    except OSError:  # missing, or cannot be looked at: nothing proves a live owner (waiting would never end)
        return True
    if not stat.S_ISREG(info.st_mode):
        return True
    mtime = info.st_mtime
    return claim_is_stale(read_json(path) or {}, stale_seconds, mtime)


def release_dead_claim(run_dir: Path, pid: int) -> bool:
    """Remove the run's claim if `pid` (a child of ours known to be dead, e.g. killed by a signal) made it in our
    PID namespace on this host; return whether it did. Another process's claim is left alone, and a claim that
    cannot be removed (a read-only folder) is logged and left to go stale."""
    path = Path(run_dir) / RUNNING
    claim = read_json(path)
    if claim is None or not _in_our_pid_namespace(claim) or claim.get("pid") != pid:
        return False
    try:
        path.unlink(missing_ok=True)
    except OSError as err:
        log.warning("%s: cannot remove the claim of dead process %d (%s); it goes stale by itself", path, pid,
                    err.strerror or err)
        return False
    return True


def release_job_claim(run_dir: Path, job: str) -> bool:
    """Remove the run's claim if it was made inside Slurm job `job` (one Slurm says has ended); return whether it
    did. A claim made elsewhere is left alone."""
    path = Path(run_dir) / RUNNING
    claim = read_json(path)
    if claim is None or claim.get("slurm_job") != job:
        return False
    path.unlink(missing_ok=True)
    return True


def _pid_alive(pid: int) -> bool:
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
    """`RUNNING.json` held by this process: `with Claim(run_dir) as claim: ...`.

    Entering raises `ClaimHeld` if a live claim exists; a stale one is taken over (renamed aside, then re-created
    by hard link, so of two takers only one wins). While held, a daemon thread refreshes the heartbeat every
    `heartbeat_seconds` (default `HEARTBEAT_SECONDS`); the trainer also calls `heartbeat()` after each epoch, which
    raises `ClaimLost` once the claim is not ours (found by either). Leaving removes the claim if it is still ours.
    """

    def __init__(self, run_dir: Path, stale_seconds: float = STALE_SECONDS, heartbeat_seconds: float | None = None):
        self.path = Path(run_dir) / RUNNING
        self.stale_seconds = stale_seconds
        self.heartbeat_seconds = HEARTBEAT_SECONDS if heartbeat_seconds is None else heartbeat_seconds
        self.started = now()
        self.lost: ClaimLost | None = None
        self.took_over: dict | None = None  # the stale claim this one replaced, if any
        self._lock = threading.Lock()  # one writer at a time: the beating thread or the trainer
        self._stop = threading.Event()
        self._beating: threading.Thread | None = None

    def __enter__(self) -> "Claim":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            if self._create():
                self._beating = threading.Thread(target=self._beat, name="claim-heartbeat", daemon=True)
                self._beating.start()
                return self
            self._take_over_if_stale()
        raise ClaimHeld(self.path.parent, read_json(self.path) or {})

    def _create(self) -> bool:
        """Create `RUNNING.json` with its content in one step (write a temporary file, hard-link it to the
        name); False when the name exists."""
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{RUNNING}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                os.fchmod(f.fileno(), atomic.new_file_mode())
                f.write(json.dumps(self._record()))
            os.link(tmp, self.path)
        except FileExistsError:
            return False
        except OSError as err:  # a full disk: say which file
            atomic.name_the_file(err, self.path)
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
        self.took_over = claim or {}
        aside.unlink(missing_ok=True)

    def _record(self) -> dict:
        record = {"host": socket.gethostname(), "pid": os.getpid(), "pid_start": _start_time(os.getpid()),
                  "pid_namespace": PID_NAMESPACE, "token": token(), "started": self.started, "heartbeat": now(),
                  "heartbeat_unix": time.time()}
        job = slurm_job()
        if job is not None:
            record.update(slurm_job=job[0], slurm_restart=job[1])
        return record

    def heartbeat(self) -> None:
        """Refresh the heartbeat (atomic rewrite of our own claim); `ClaimLost` if another process took it."""
        with self._lock:
            if self.lost is not None:
                raise self.lost
            claim = read_json(self.path) or {}
            if not self._ours(claim):
                self.lost = ClaimLost(self.path.parent, claim)
                raise self.lost
            atomic.write_json(self.path, self._record())

    def _beat(self) -> None:
        """The beating thread: `heartbeat()` every `heartbeat_seconds` until the claim is left or lost. A write that
        fails (a full disk, a file server away) is logged and tried again at the next beat."""
        while not self._stop.wait(self.heartbeat_seconds):
            try:
                self.heartbeat()
            except ClaimLost:
                return  # the trainer's next heartbeat() raises it
            except OSError as err:
                log.warning("%s: cannot refresh the heartbeat (%s); the claim goes stale after %.0f s without one",
                            self.path, err.strerror or err, self.stale_seconds)

    @staticmethod
    def _ours(claim: dict) -> bool:
        return claim.get("token") == token()

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._beating is not None:
            self._beating.join(timeout=5)  # a beat stuck on a slow file server must not hold up a stop
        with self._lock:
            if self._ours(read_json(self.path) or {}):
                self.path.unlink(missing_ok=True)


def describe(claim: dict, stale_seconds: float = STALE_SECONDS) -> str:
    """One line on who holds a claim and how alive it is, for a worker waiting on it: `host H, pid P, heartbeat
    12 s ago (taken over after 150 s without one)`."""
    beat = _timestamp(claim.get("heartbeat_unix"))
    age = "no heartbeat" if beat is None else f"heartbeat {max(0.0, time.time() - beat):.0f} s ago"
    return (f"host {claim.get('host')}, pid {claim.get('pid')}, {age} (taken over after {stale_seconds:.0f} s "
            "without one)")
