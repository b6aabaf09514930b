#!/usr/bin/env python
"""Run every unfinished task of a sweep file, on this machine's GPUs/CPUs, on a Ray cluster or on a Slurm cluster.

Entry point only: the command is `model/commands/run_sweep.py` (`--help` says how to use it)."""
import sys

from model import cli
from model.commands.run_sweep import main
from model.sweeps import shutdown

if __name__ == "__main__":
    code = main()
    if shutdown.requested.is_set():  # stopped on a signal, everything on disk: no slow teardown
        cli.exit_at_once(code)
    sys.exit(code)
