#!/usr/bin/env python
"""Write a tiny synthetic PGDL tree in the real formats (random data, not CIFAR-10), and optionally zip it.

Entry point only: the command is `model/commands/make_pgdl_replica.py` (`--help` says how to use it)."""
import sys

from model.commands.make_pgdl_replica import main

if __name__ == "__main__":
    sys.exit(main())
