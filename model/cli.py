"""Shared plumbing of the command-line tools: logging setup (one log format for all) and the one rule for errors.

Every command is `main(argv) -> int` that parses its arguments and returns `run(work, args)`. The rule: an error
reaches the user as one line on stderr, `error: <message>`, and the command exits 2; its
traceback goes to the error log, never to the terminal (unless --debug). A `PipelineError` (bad input) is its own
message; an `OSError` (a full disk, a read-only folder, a file where a folder goes) names the file and the system's
reason; anything else is an internal error, named by its type and message, whose traceback the line points to. A
`CommandFailed` (the command ran but did not succeed) prints its message and exits with its own code (e.g. 1 for a
failed training, 3 for a task claimed by another process).
The error log is `$MODEL_ERROR_LOG`, default `<system temp folder>/decorrelating-neurons-errors.log` (appended).
Warnings print as `warning: <message>`. This module must not know what any particular tool does.
"""
import logging
import os
import sys
import tempfile
import traceback
import warnings
from datetime import UTC, datetime
from pathlib import Path

from model.errors import PipelineError

LOG_FORMAT, LOG_DATE_FORMAT = "%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"


class CommandFailed(Exception):
    """The command ran but did not succeed: print `error: <message>` and exit `code`."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def error_log() -> Path:
    """Where tracebacks go: `$MODEL_ERROR_LOG`, else `decorrelating-neurons-errors.log` in the system temp folder."""
    return Path(os.environ.get("MODEL_ERROR_LOG") or Path(tempfile.gettempdir()) / "decorrelating-neurons-errors.log")


def log_traceback(err: BaseException) -> Path | None:
    """Append `err`'s traceback (with time, pid and command line) to `error_log()`; its path, or None if it cannot
    be written (then the line itself is all there is)."""
    path = error_log()
    text = "".join(traceback.format_exception(err))
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"--- {datetime.now(UTC).isoformat(timespec='seconds')} pid {os.getpid()}: "
                    f"{' '.join(sys.argv)}\n{text}\n")
    except OSError:
        return None
    return path


def one_line(err: BaseException) -> str:
    """The user's line for `err` (without `error: `); an internal error's traceback is logged (`log_traceback`)."""
    if isinstance(err, PipelineError):
        return " ".join(str(err).split())
    if isinstance(err, OSError) and err.strerror:
        names = " -> ".join(str(n) for n in (err.filename, err.filename2) if n is not None)
        where = log_traceback(err)
        if names:
            return f"{names}: {err.strerror}"
        # every writer of ours names its file (`model.atomic`); one that does not is a defect, traced to the log
        return (f"I/O error: {err.strerror} (the file is not named: "
                f"{'traceback in ' + str(where) if where else 'rerun with --debug for the traceback'})")
    where = log_traceback(err)
    detail = " ".join(str(err).split())[:300]
    return (f"internal error {type(err).__name__}{': ' + detail if detail else ''} "
            f"({'traceback in ' + str(where) if where else 'rerun with --debug for the traceback'})")


def report(err: BaseException, debug: bool = False) -> int:
    """Apply the rule to `err`: print its one line to stderr (and with `debug` the traceback too); return 2."""
    if debug:
        traceback.print_exception(err, file=sys.stderr)
    print(f"error: {one_line(err)}", file=sys.stderr)
    return 2


def run(work, args) -> int:
    """Call `work(args)` with logging configured (DEBUG with `args.debug` or `args.verbose`); return its exit code,
    `err.code` for a `CommandFailed`, 130 on Ctrl-C, and 2 for any other exception (`report`)."""
    debug = getattr(args, "debug", False)
    level = logging.DEBUG if debug or getattr(args, "verbose", False) else logging.INFO
    logging.basicConfig(level=level, format=LOG_FORMAT, datefmt=LOG_DATE_FORMAT)
    warnings.formatwarning = lambda message, *rest, **kw: f"warning: {message}\n"
    try:
        return work(args) or 0
    except CommandFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return err.code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        return report(err, debug)
