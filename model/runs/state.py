"""A run's state, read from its folder: the one vocabulary every reader (executors, status table, collection) uses.

`done` (DONE.json parses), `running` (a live claim, taken when its process starts), `failed` (FAILED.json, no live
claim), `partial` (started: an attempt left a log, history, checkpoint, weights or a dead claim; resumable),
`pending` (the folder holds only what a driver writes before any attempt: spec.json, a Slurm submission record) or
`missing` (no folder).
"""
from pathlib import Path

from model.runs.claims import claim_file_is_stale
from model.runs.run_folder import CHECKPOINTS, DONE, FAILED, HISTORY, LOG, RUNNING, TENSORBOARD, WEIGHTS, is_done

STATES = ("done", "running", "failed", "partial", "pending", "missing")
# written only by an attempt (a DONE.json that does not parse: a damaged one; a RUNNING.json now stale: a dead one)
STARTED = (LOG, HISTORY, CHECKPOINTS, WEIGHTS, TENSORBOARD, DONE, RUNNING)


def status(run_dir: Path) -> str:
    """'done', 'running' (a live claim), 'failed', 'partial' (started, resumable), 'pending' (never started) or
    'missing'."""
    run_dir = Path(run_dir)
    if is_done(run_dir):
        return "done"
    if not claim_file_is_stale(run_dir / RUNNING):
        return "running"
    if (run_dir / FAILED).exists():
        return "failed"
    if not run_dir.exists():
        return "missing"
    return "partial" if any((run_dir / name).exists() for name in STARTED) else "pending"
