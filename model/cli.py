"""Shared plumbing of the command-line tools: logging setup and the one-line error exit.

A `PipelineError` prints `error: <message>` to stderr and exits 2 (traceback only with --debug); warnings print
as `warning: <message>`. This module must not know what any particular tool does.
"""
import logging
import sys
import warnings

from model.errors import PipelineError


def run(main, args) -> int:
    """Call `main(args)` with logging configured; map PipelineError to exit status 2."""
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, format="%(levelname)s %(message)s")
    warnings.formatwarning = lambda message, *rest, **kw: f"warning: {message}\n"
    try:
        return main(args) or 0
    except PipelineError as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
