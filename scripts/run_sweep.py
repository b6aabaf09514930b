#!/usr/bin/env python
"""Run every unfinished task of a sweep file, on this machine's GPUs/CPUs, on a Ray cluster or on a Slurm cluster.

Entry point only: the command is `model/commands/run_sweep.py` (`--help` says how to use it)."""
import sys

from model.commands.run_sweep import main

if __name__ == "__main__":
    sys.exit(main())
