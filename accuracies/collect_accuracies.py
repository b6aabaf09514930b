#!/usr/bin/env python
"""Collect every finished run (DONE.json) under a folder into one tidy accuracies CSV.

Entry point only: the command is `model/commands/collect_accuracies.py` (`--help` says how to use it)."""
import sys

from model.commands.collect_accuracies import main

if __name__ == "__main__":
    sys.exit(main())
