#!/usr/bin/env python
"""Friedman/Nemenyi statistics, CD diagrams and tables from an accuracies CSV, per block and combined.

Entry point only: the command is `model/commands/extract_statistics.py` (`--help` says how to use it)."""
import sys

from model.commands.extract_statistics import main

if __name__ == "__main__":
    sys.exit(main())
