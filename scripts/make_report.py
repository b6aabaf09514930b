#!/usr/bin/env python
"""Build a sweep's report page (Markdown + PNG, and one self-contained HTML page) from its accuracies and statistics.

Entry point only: the command is `model/commands/make_report.py` (`--help` says how to use it)."""
import sys

from model.commands.make_report import main

if __name__ == "__main__":
    sys.exit(main())
