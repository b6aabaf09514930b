#!/usr/bin/env python
"""Train one run from its spec file: `python scripts/run_experiment.py SPEC.json [--force] [--debug]`.

Entry point only: the command is `model/commands/run_experiment.py` (`--help` says how to use it)."""
import sys

from model.commands.run_experiment import main

if __name__ == "__main__":
    sys.exit(main())
