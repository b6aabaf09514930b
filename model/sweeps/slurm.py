"""The Slurm executor: a sweep's unfinished tasks as one Slurm job array, submitted and followed through submitit.

Each array element (`Element`) runs one task process (`model.sweeps.task_process.run_process`, i.e. `python -m
model.runs.execute SPEC.json`) with `gpus_per_task` GPUs (Slurm sets CUDA_VISIBLE_DEVICES; 0 hides every GPU). The
run folders decide what is done and the claims (`model.runs.claims`, which record the Slurm job) keep a requeued or
duplicate element off a task another process trains. The driver reuses `model.sweeps.scheduler.schedule`: `submit`
collects the round's jobs and the first `wait` submits them as one array (`submit_array`); the tasks to retry (their
element was killed or ended without a result) and those another process held go out as a further, smaller array.
Each submitted task's job id goes to `<run_dir>/SLURM.json` (`read_record`), which `sweep_status.py` shows.

Requeue: elements are submitted with `--requeue`; a preempted element (Slurm sends SIGTERM) or one requeued by hand
(`scontrol requeue JOB_INDEX`) exits without a result and runs again; one about to time out gets submitit's
signal (USR2, 90 s before the limit), is checkpointed (`Element.checkpoint` resubmits it unchanged) and requeued
by submitit. Either way the task resumes from its own `checkpoints/last.npz`.
Job states come from `squeue`, not from submitit's `sacct` (clusters without accounting storage have no `sacct`).
submitit is imported only when a sweep is submitted.
"""
import contextlib
import io
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from model import atomic
from model.runs import claims, run_folder
from model.sweeps.scheduler import EXIT_CLAIMED, ExecutorError, TaskOutcome, last_line, outcome, schedule, unfinished
from model.sweeps.task_process import Job, run_process, task_env

log = logging.getLogger(__name__)

RECORD = run_folder.SLURM  # in a run folder: {"job_id", "submitted", "log"} of the element that last took the task
DEFAULT_TIME = "4:00:00"  # per element; one near its limit is requeued and resumes, so this need not fit a task
ARRAY_PARALLELISM = 256  # elements running at once unless --array-parallelism says otherwise (submitit's default)
POLL_SECONDS = 2.0  # how often the driver looks for finished elements
LIVE_STATES = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
               "RESIZING", "SUSPENDED", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD", "PREEMPTED"}
SLURM_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


# ---------------------------------------------------------------------------------------------- options
def minutes(text: str | int) -> int:
    """A Slurm time limit (`MINUTES`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`, `D-HH:MM:SS`) → whole minutes (≥ 1)."""
    match = SLURM_TIME.match(str(text).strip())
    if not match:
        raise ExecutorError(f"--time {text!r}: expected a Slurm time limit such as 90, 4:00:00 or 1-12:00:00")
    days, a, b, c = (int(g) if g else None for g in match.groups())
    if days is None:  # MINUTES, MM:SS or HH:MM:SS
        parts = [a] + [x for x in (b, c) if x is not None]
        seconds = {1: lambda m: m * 60, 2: lambda m, s: m * 60 + s, 3: lambda h, m, s: h * 3600 + m * 60 + s}
        total = seconds[len(parts)](*parts)
    else:  # D-HH[:MM[:SS]]
        total = days * 86400 + a * 3600 + (b or 0) * 60 + (c or 0)
    return max(1, -(-total // 60))


def parse_options(texts: list[str]) -> dict[str, str]:
    """[`KEY=VALUE`, ...] (sbatch long options without the dashes, e.g. `account=lab`, `qos=high`) → dict."""
    options = {}
    for text in texts:
        key, sep, value = text.partition("=")
        key = key.strip().lstrip("-")
        if not sep or not key or not value:
            raise ExecutorError(f"--slurm-option {text!r}: expected KEY=VALUE, e.g. account=mylab or qos=high")
        options[key] = value
    return options


def whole_gpus(gpus_per_task: float | None) -> int:
    """GPUs per array element: None → 1; Slurm allocates whole GPUs, so a fraction is an `ExecutorError`."""
    gpus = 1 if gpus_per_task is None else gpus_per_task
    if gpus != int(gpus):
        raise ExecutorError(f"--gpus-per-task {gpus}: Slurm takes a whole number of GPUs per task")
    return int(gpus)


def parameters(job_name: str, time: str | int, partition: str | None = None, mem: str | None = None,
               gpus_per_task: float | None = None, array_parallelism: int | None = None,
               slurm_options: dict | None = None) -> dict:
    """The submitit `SlurmExecutor` parameters of a sweep's elements (one task, `whole_gpus(gpus_per_task)` GPUs
    each; no `gpus_per_task` key for 0, i.e. CPU-only)."""
    gpus_per_task = whole_gpus(gpus_per_task)
    if gpus_per_task < 0 or (array_parallelism is not None and array_parallelism < 1):
        raise ExecutorError(f"--gpus-per-task {gpus_per_task}, --array-parallelism {array_parallelism}: expected "
                            "an integer >= 0 and an integer >= 1")
    params = {"job_name": job_name, "time": minutes(time), "ntasks_per_node": 1, "nodes": 1,
              "additional_parameters": {"requeue": True, **(slurm_options or {})}}
    if partition:
        params["partition"] = partition
    if mem:
        params["mem"] = mem
    if gpus_per_task:
        params["gpus_per_task"] = gpus_per_task
    params["array_parallelism"] = array_parallelism or ARRAY_PARALLELISM
    return params


# ---------------------------------------------------------------------------------------------- the cluster
def check_cluster(partition: str | None) -> None:
    """One line and no submission when `sbatch` is missing, the controller is out of reach or `partition` is not
    one of the cluster's."""
    for tool in ("sbatch", "squeue", "sinfo", "srun"):
        if shutil.which(tool) is None:
            raise ExecutorError(f"executor 'slurm': no {tool} on PATH (run on a Slurm login node, or load the "
                                "cluster's slurm module)")
    proc = _slurm(["sinfo", "-h", "-o", "%P"])
    if proc.returncode != 0:
        raise ExecutorError(f"executor 'slurm': sinfo failed: {last_line(proc.stderr, 300) or proc.returncode}")
    known = [p.rstrip("*") for p in proc.stdout.split()]
    if partition and partition not in known:
        raise ExecutorError(f"--partition {partition!r}: not a partition of this Slurm cluster (it has: "
                            f"{', '.join(known) or 'none'})")


def job_states(job_ids: list[str]) -> dict[str, str] | None:
    """Slurm state (`PENDING`, `RUNNING`, `COMPLETED`, ...) of each job id slurmctld still knows (array elements as
    `<id>_<index>`), from `squeue`; None when squeue cannot answer (no squeue, controller out of reach)."""
    if not job_ids:
        return {}
    if shutil.which("squeue") is None:
        return None
    masters = sorted({j.split("_")[0] for j in job_ids})
    proc = _slurm(["squeue", "-h", "-r", "--states=all", "-o", "%i|%T", "-j", ",".join(masters)])
    if proc.returncode != 0:
        return {} if "Invalid job id" in proc.stderr else None  # every job is gone from slurmctld's memory
    states = {}
    for line in proc.stdout.split():
        job, _, state = line.partition("|")
        states[job] = state
    return states


def _slurm(cmd: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return subprocess.CompletedProcess(cmd, 255, "", str(err))


def read_record(run_dir: Path) -> dict | None:
    """The run folder's `SLURM.json` (job id of the element that last took the task), or None."""
    return run_folder.read_json(Path(run_dir) / RECORD)


# ---------------------------------------------------------------------------------------------- an element
class Element:
    """One array element on a compute node: run the task process and return (exit status, output tail).

    When Slurm ends the element (SIGTERM: requeue, preemption, scancel, time limit) it exits without a result, so
    a requeued element simply runs again and the driver sees an ended one. `record_failures` (detached sweeps,
    where no driver is waiting) writes FAILED.json for a task process that died without saying why.
    """

    def __init__(self, job: Job, hide_gpus: bool, record_failures: bool = False):
        self.job, self.hide_gpus, self.record_failures = job, hide_gpus, record_failures

    def __call__(self) -> tuple[int, str]:
        ending = []
        signal.signal(signal.SIGTERM, lambda signum, frame: ending.append(signum))
        handler = logging.StreamHandler(sys.stdout)  # the task's output goes to the element's log file
        task_log = logging.getLogger("model.sweeps.task_process")
        task_log.addHandler(handler)
        task_log.setLevel(logging.DEBUG)
        try:
            returncode, tail = run_process(self.job, task_env(gpus="-1" if self.hide_gpus else None))
        except subprocess.CalledProcessError as err:
            if not requeue_killed(err):
                raise
            self.ended(" while submitit's requeue of it was running")
        if ending:
            self.ended()
        if self.record_failures and returncode not in (0, EXIT_CLAIMED):
            outcome(self.job, returncode, tail)
        return returncode, tail

    def ended(self, when: str = ""):
        """Exit as an element Slurm ended (SIGTERM): 143 and no result file, so that a requeued element runs again."""
        print(f"{self.job.task_id}: Slurm ended this element (SIGTERM){when}; the task resumes when it runs again",
              flush=True)
        os._exit(128 + signal.SIGTERM)

    def checkpoint(self):
        """submitit's hook before it requeues a timed-out element: resubmit it unchanged (the run checkpoints
        itself every `checkpoint_every` epochs and resumes from there)."""
        import submitit

        return submitit.helpers.DelayedSubmission(self)


def requeue_killed(err: subprocess.CalledProcessError) -> bool:
    """Whether `err` is submitit's `scontrol requeue` of a timed-out element killed by SIGTERM: the requeue it asked
    for ends every process of the job, its own `scontrol` too when that has not returned yet. Slurm did requeue the
    element then; submitit, seeing the error, would record it as failed (on success it exits without a result)."""
    return list(err.cmd[:2]) == ["scontrol", "requeue"] and err.returncode == -signal.SIGTERM


# ---------------------------------------------------------------------------------------------- the driver
class Submitter:
    """Submits batches of jobs as Slurm job arrays and reports each finished element."""

    def __init__(self, folder: Path, params: dict, hide_gpus: bool, record_failures: bool):
        try:
            import submitit
        except ImportError:
            raise ExecutorError("executor 'slurm': the submitit package is not installed "
                                "(pip install -e '.[slurm]' or pip install submitit)") from None
        self.submitit = submitit
        self.executor = submitit.SlurmExecutor(folder=str(folder / "%j"))
        try:
            self.executor.update_parameters(**params)
        except ValueError as err:
            raise ExecutorError(f"executor 'slurm': {last_line(str(err).splitlines()[0], 300)}") from None
        self.hide_gpus, self.record_failures = hide_gpus, record_failures
        self.submitted: list[str] = []  # array job ids, for the report of a later failed submission
        self.running: dict[str, tuple] = {}  # element job id -> (submitit job, Job)

    def submit(self, jobs: list[Job]) -> list[str]:
        """Submit `jobs` as one array (a single job when there is one); record each element's id; return them."""
        elements = [Element(job, self.hide_gpus, self.record_failures) for job in jobs]
        try:
            with contextlib.redirect_stderr(io.StringIO()):  # submitit echoes sbatch's stderr; the error says it
                handles = self.executor.submit_array(elements)
        except Exception as err:  # sbatch refused: nothing of this array was queued
            earlier = (f"; earlier job(s) {', '.join(self.submitted)} stay queued (follow them with "
                       "sweep_status.py, stop them with scancel)") if self.submitted else ""
            raise ExecutorError(f"executor 'slurm': sbatch rejected the array of {len(jobs)} task(s): "
                                f"{_sbatch_error(err)}{earlier}") from None
        self.submitted.append(handles[0].job_id.split("_")[0])
        for handle, job in zip(handles, jobs):
            atomic.write_json(Path(job.run_dir) / RECORD, {"job_id": handle.job_id, "submitted": run_folder.now(),
                                                           "log": str(handle.paths.stdout)})
            self.running[handle.job_id] = (handle, job)
        log.info("slurm executor: job %s, %d element(s)", self.submitted[-1], len(jobs))
        return [h.job_id for h in handles]

    def finished(self) -> tuple[Job, int, str]:
        """Block until an element has finished; (job, exit status, output tail). An element that ended without a
        result (time limit without requeue, node failure, cancelled) counts as killed (status -15, retried) and its
        task's claim is released."""
        while True:
            for job_id, (handle, job) in list(self.running.items()):
                if handle.paths.result_pickle.exists():
                    del self.running[job_id]
                    return (job, *self._result(handle))
            states = job_states(list(self.running))
            if states is not None:
                for job_id, (handle, job) in list(self.running.items()):
                    state = states.get(job_id, "GONE")
                    if state.split()[0] in LIVE_STATES or handle.paths.result_pickle.exists():
                        continue
                    del self.running[job_id]
                    claims.release_job_claim(Path(job.run_dir), job_id)
                    log.warning("%s: Slurm job %s ended %s without a result (log: %s)", job.task_id, job_id,
                                state, handle.paths.stdout)
                    if state.startswith("CANCELLED"):
                        return job, 128 + signal.SIGTERM, f"Slurm job {job_id} was cancelled"
                    return job, -signal.SIGTERM, f"Slurm job {job_id} ended {state} without a result"
            time.sleep(POLL_SECONDS)

    def _result(self, handle) -> tuple[int, str]:
        try:
            returncode, tail = handle.result()
        except self.submitit.core.utils.FailedJobError as err:  # the element raised: its trace's last line
            trace = str(err).split("-" * 22)
            return 127, f"the Slurm element failed: {last_line(trace[1] if len(trace) > 2 else trace[0], 300)}"
        except self.submitit.core.utils.UncompletedJobError as err:
            return -signal.SIGTERM, last_line(err, 300)
        return returncode, tail


def _sbatch_error(err: Exception) -> str:
    """sbatch's own reason (its last `error:` line) out of submitit's exception text."""
    lines = [line.strip() for line in str(err).splitlines() if "error" in line.lower()]
    return " ".join((lines[-1] if lines else last_line(err, 300)).split())[:300]


def run(jobs: list[Job], folder: Path, job_name: str = "sweep", time: str | int = DEFAULT_TIME,
        partition: str | None = None, mem: str | None = None, gpus_per_task: int | None = None,
        array_parallelism: int | None = None, slurm_options: dict | None = None, detach: bool = False,
        max_retries: int = 2, poll_seconds: float | None = None, progress=None) -> list[TaskOutcome]:
    """Run the unfinished `jobs` as a Slurm job array; one `TaskOutcome` per job.

    folder: where submitit keeps its scripts, pickles and logs (`<output_root>/slurm`; must be on a file system the
    nodes share). gpus_per_task: GPUs per element (default 1, whole: `whole_gpus`). detach: return after
    submitting; the outcomes of the submitted tasks are `submitted` (follow them with `sweep_status.py`).
    progress: the driver's `model.sweeps.progress.Progress` (a line per settled task), as for the other back ends.
    """
    params = parameters(job_name, time, partition, mem, gpus_per_task, array_parallelism, slurm_options)
    check_cluster(partition)
    submitter = Submitter(Path(folder), params, hide_gpus="gpus_per_task" not in params, record_failures=detach)
    if detach:
        return _submit_detached(jobs, submitter)
    batch: list[Job] = []

    def submit(job: Job) -> None:
        batch.append(job)

    def wait() -> tuple[Job, int, str]:
        if batch:
            submitter.submit(list(batch))
            batch.clear()
        return submitter.finished()

    options = {} if poll_seconds is None else {"poll_seconds": poll_seconds}
    return schedule(jobs, submit, wait, max_retries=max_retries, progress=progress, **options)


def _submit_detached(jobs: list[Job], submitter: Submitter) -> list[TaskOutcome]:
    """Submit the `unfinished` jobs as one array and return: `submitted` (with the element's job id), `skipped`
    (done) or `running` (trained by another process)."""
    todo = unfinished(jobs)
    ids = dict(zip((j.task_id for j in todo), submitter.submit(todo))) if todo else {}
    outcomes = []
    for job in jobs:
        if job.task_id in ids:
            outcomes.append(TaskOutcome(job.task_id, "submitted", f"Slurm job {ids[job.task_id]}"))
        elif run_folder.is_done(Path(job.run_dir)):
            outcomes.append(TaskOutcome(job.task_id, "skipped"))
        else:
            outcomes.append(TaskOutcome(job.task_id, "running", "trained by another process"))
    return outcomes


def detached_summary(outcomes: list[TaskOutcome]) -> tuple[dict[str, int], list[str]]:
    """A detached sweep's outcomes as counts of `submitted`, `skipped` and `running`, and the Slurm array job ids
    the submitted tasks went to (sorted)."""
    counts = {s: sum(o.status == s for o in outcomes) for s in ("submitted", "skipped", "running")}
    jobs = sorted({o.reason.split()[-1].split("_")[0] for o in outcomes if o.status == "submitted"})
    return counts, jobs
