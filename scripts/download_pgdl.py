#!/usr/bin/env python
"""Fetch what the paper needs from the PGDL 2020 public archive into data/pgdl/ (resumable, CRC-checked).

Entry point only: the command is `model/commands/download_pgdl.py` (`--help` says how to use it)."""
import sys

from model.commands.download_pgdl import main

if __name__ == "__main__":
    sys.exit(main())
