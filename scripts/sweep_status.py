#!/usr/bin/env python
"""Where a sweep stands: each task's state (done / running / failed / partial = started, resumable / missing), per

Entry point only: the command is `model/commands/sweep_status.py` (`--help` says how to use it)."""
import sys

from model.commands.sweep_status import main

if __name__ == "__main__":
    sys.exit(main())
