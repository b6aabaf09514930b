#!/usr/bin/env python
"""Neural persistence and deep graph persistence of every finished run of a sweep and of PGDL models → tidy CSV.

Entry point only: the command is `model/commands/measure.py` (`--help` says how to use it)."""
import sys

from model.commands.measure import main

if __name__ == "__main__":
    sys.exit(main())
