"""Train one run from its spec file: `python scripts/run_experiment.py SPEC.json [--force] [--debug]`.

The same as `python -m model.runs.execute`: it trains, says the run is already done, or resumes it from its last
checkpoint. Exit codes: 0 done, 1 training failed, 2 bad input, 3 claimed.
"""
from model.runs.execute import main

__all__ = ["main"]
