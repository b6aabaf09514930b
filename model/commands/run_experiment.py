"""Train one run from its spec file (the command `dnp-run-experiment`, `scripts/run_experiment.py`).

The same as `python -m model.runs.execute`, whose `main` it is (that module is what the sweep executors start, and
`model/` never reaches into this package): it trains, says the run is already done, or resumes it from its last
checkpoint; `--help` lists the options, examples and exit codes.
"""
import sys

from model.runs.execute import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
