"""A real one-node Slurm cluster on 127.0.0.1 for tests: munged, slurmctld and slurmd from Debian's packages.

    with SlurmCluster() as cluster:            # or the `slurm_cluster` fixture (scope=module)
        subprocess.run(["sbatch", ...], env=cluster.env)

Everything lives in a fresh folder under /tmp (short: munge's socket path must fit in 107 characters): a munge key
and socket, a generated `slurm.conf` (free ports, state and spool folders, logs), no systemd, no cgroups
(proctrack/linuxproc, task/none), one GPU-less node `localhost` with 2 CPUs, partition `debug`. The daemons run in the
foreground as children of this process and are stopped by their pids. `cred_expire=10` makes a requeued job eligible
again after about 10 s (Slurm's default is 120 s). Clients find the cluster through `SLURM_CONF` in `cluster.env`.
`.ci/run` installs the packages (`slurm-wlm`, `munge`) when they are missing; `missing()` names what is not there.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo", "srun")
CPUS = 2
PARTITION = "debug"


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def missing() -> list[str]:
    """The Slurm/munge programs this machine lacks (empty when a cluster can start)."""
    return [name for name in (*DAEMONS, *CLIENTS) if _which(name) is None]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SlurmCluster:
    """munged + slurmctld + slurmd on loopback; `env` is this process's environment with `SLURM_CONF` set."""

    def __init__(self, kill_wait: int = 5):
        self.kill_wait = kill_wait
        self.dir: Path | None = None
        self.procs: list[subprocess.Popen] = []
        self.env: dict = {}

    def __enter__(self) -> "SlurmCluster":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def log(self, name: str) -> str:
        path = self.dir / "log" / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def start(self, timeout: float = 90.0) -> None:
        if missing():
            raise RuntimeError(f"Slurm programs missing: {', '.join(missing())}")
        self.dir = d = Path(tempfile.mkdtemp(prefix="slurm", dir="/tmp"))
        for sub in ("munge", "state", "spool", "log"):
            (d / sub).mkdir(mode=0o700)
        key = d / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        sock = d / "munge" / "munge.sock"
        conf = d / "slurm.conf"
        conf.write_text(self._conf(sock))
        self.env = {**os.environ, "SLURM_CONF": str(conf)}
        logs = d / "log"
        self._spawn([_which("munged"), "--foreground", "--force", f"--key-file={key}", f"--socket={sock}",
                     f"--pid-file={d / 'munge' / 'munged.pid'}", f"--log-file={logs / 'munged.log'}",
                     f"--seed-file={d / 'munge' / 'munged.seed'}"])
        self._wait(lambda: sock.exists(), timeout, "munged did not create its socket")
        self._spawn([_which("slurmctld"), "-D", "-i", "-f", str(conf)])
        self._spawn([_which("slurmd"), "-D", "-f", str(conf), "-N", "localhost"])
        self._wait(self._node_idle, timeout, "the Slurm node did not come up idle")

    def _conf(self, sock: Path) -> str:
        d = self.dir
        host = socket.gethostname().split(".")[0]
        return "\n".join([
            "ClusterName=testcluster",
            f"SlurmctldHost={host}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={sock},cred_expire=10",
            f"StateSaveLocation={d / 'state'}",
            f"SlurmdSpoolDir={d / 'spool'}",
            f"SlurmctldPidFile={d / 'slurmctld.pid'}",
            f"SlurmdPidFile={d / 'slurmd.pid'}",
            f"SlurmctldLogFile={d / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={d / 'log' / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "MpiDefault=none",
            "ReturnToService=2",
            "SchedulerType=sched/backfill",
            f"KillWait={self.kill_wait}",
            "JobRequeue=1",
            "InactiveLimit=0",
            "MinJobAge=600",
            f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={CPUS} State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
            "",
        ])

    def _spawn(self, cmd: list[str]) -> None:
        log = open(self.dir / "log" / f"{Path(cmd[0]).name}.out", "ab")
        self.procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                           env=self.env, start_new_session=True))
        log.close()

    def _node_idle(self) -> bool:
        for proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args[0]} exited with status {proc.returncode}:\n"
                                   f"{self.log('slurmctld')}\n{self.log('slurmd')}")
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=self.env)
        return out.returncode == 0 and out.stdout.strip() == "idle"

    @staticmethod
    def _wait(ready, timeout: float, what: str) -> None:
        deadline = time.time() + timeout
        while not ready():
            if time.time() > deadline:
                raise RuntimeError(what)
            time.sleep(0.2)

    def jobs(self) -> list[str]:
        """`JOBID|STATE` of every job slurmctld knows (array elements one per line, finished ones included)."""
        out = subprocess.run(["squeue", "-h", "-r", "--states=all", "-o", "%i|%T"], capture_output=True, text=True,
                             env=self.env, check=True)
        return out.stdout.split()

    def stop(self) -> None:
        """Cancel every job, then stop slurmd, slurmctld and munged (in that order, by pid) and remove the folder."""
        if self.procs and self.procs[0].poll() is None and len(self.procs) == 3:
            subprocess.run(["scancel", "--full", "--quiet", f"--partition={PARTITION}"], env=self.env,
                           capture_output=True, timeout=30)
            deadline = time.time() + self.kill_wait + 30
            while time.time() < deadline:
                try:
                    live = [j for j in self.jobs() if j.split("|")[1] in ("RUNNING", "COMPLETING", "PENDING")]
                except (subprocess.SubprocessError, OSError):
                    break
                if not live:
                    break
                time.sleep(0.5)
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs = []
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


@pytest.fixture(scope="module")
def slurm_cluster():
    """A running `SlurmCluster` for the module's tests; skips (saying what is missing) without the packages."""
    lacking = missing()
    if lacking:
        pytest.skip(f"Slurm is not installed ({', '.join(lacking)} missing; .ci/run installs slurm-wlm and munge "
                    "with apt-get)")
    with SlurmCluster() as cluster:
        yield cluster
