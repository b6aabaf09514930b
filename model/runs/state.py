"""A run's state, read from its folder: the one vocabulary every reader (executors, status table, collection) uses.

`done` (DONE.json parses), `running` (a live claim), `failed` (FAILED.json, no live claim), `partial` (started,
resumable) or `missing`.
"""
from pathlib import Path

from model.runs.claims import claim_file_is_stale
from model.runs.run_folder import FAILED, RUNNING, is_done

STATES = ("done", "running", "failed", "partial", "missing")


def status(run_dir: Path) -> str:
    """'done', 'running' (a live claim), 'failed', 'partial' (started, resumable) or 'missing'."""
    run_dir = Path(run_dir)
    if is_done(run_dir):
        return "done"
    if not claim_file_is_stale(run_dir / RUNNING):
        return "running"
    if (run_dir / FAILED).exists():
        return "failed"
    return "partial" if run_dir.exists() else "missing"
