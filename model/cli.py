"""Shared plumbing of the command-line tools: logging setup and the exit-code helper, one log format for all.

Every command is `main(argv) -> int` that parses its arguments and returns `run(work, args)`. A `PipelineError`
prints `error: <message>` to stderr and exits 2; a `CommandFailed` prints its message and exits with its own code
(e.g. 1 for a failed training, 3 for a task claimed by another process); `--debug` adds the traceback. Warnings print
as `warning: <message>`. This module must not know what any particular tool does.
"""
import logging
import sys
import traceback
import warnings

from model.errors import PipelineError

LOG_FORMAT, LOG_DATE_FORMAT = "%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"


class CommandFailed(Exception):
    """The command ran but did not succeed: print `error: <message>` and exit `code`."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def run(work, args) -> int:
    """Call `work(args)` with logging configured (DEBUG with `args.debug` or `args.verbose`); return its exit code,
    2 for a `PipelineError`, `err.code` for a `CommandFailed`."""
    debug = getattr(args, "debug", False)
    level = logging.DEBUG if debug or getattr(args, "verbose", False) else logging.INFO
    logging.basicConfig(level=level, format=LOG_FORMAT, datefmt=LOG_DATE_FORMAT)
    warnings.formatwarning = lambda message, *rest, **kw: f"warning: {message}\n"
    try:
        return work(args) or 0
    except (PipelineError, CommandFailed) as err:
        if debug:
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        return err.code if isinstance(err, CommandFailed) else 2
