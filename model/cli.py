"""Shared plumbing of the command-line tools: the parser every command starts from, logging setup (one log format
for all) and the one rule for errors.

Every command is `main(argv) -> int` that builds its parser with `parser(...)` (usage naming the command as the user
typed it, `--version`, and a help epilog with examples and exit codes), parses its arguments and returns
`run(work, args)`. The rule: an error
reaches the user as one line on stderr, `error: <message>`, and the command exits 2; its
traceback goes to the error log, never to the terminal (unless --debug). A `PipelineError` (bad input) is its own
message; an `OSError` (a full disk, a read-only folder, a file where a folder goes) names the file and the system's
reason; anything else is an internal error, named by its type and message, whose traceback the line points to. A
`CommandFailed` (the command ran but did not succeed) prints its message and exits with its own code (e.g. 1 for a
failed training, 3 for a task claimed by another process).
The error log is `$MODEL_ERROR_LOG`, default `<system temp folder>/decorrelating-neurons-errors.log` (appended).
Warnings print as `warning: <message>`. This module must not know what any particular tool does (it knows their
names and entry files only, to say how to start them).
"""
import argparse
import logging
import os
import sys
import tempfile
import traceback
import warnings
from datetime import UTC, datetime
from pathlib import Path

from model.errors import PipelineError
from model.version import version

PACKAGE_ROOT = Path(__file__).resolve().parent  # model/
SCRIPT_PREFIX = "dnp-"  # console scripts of the installed package: dnp-run-sweep, dnp-sweep-status, ...
INTERRUPTED = 130
LOG_FORMAT, LOG_DATE_FORMAT = "%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"

# each command's entry-point file in a checkout (console script `dnp-<key>`; module `model.commands.<key with _>`)
ENTRY_FILES = {"run-experiment": "scripts/run_experiment.py", "run-sweep": "scripts/run_sweep.py",
               "sweep-status": "scripts/sweep_status.py", "collect-accuracies": "accuracies/collect_accuracies.py",
               "extract-statistics": "extract_statistics.py", "make-report": "scripts/make_report.py",
               "measure": "scripts/measure.py", "prepare-mnist": "scripts/prepare_mnist.py",
               "make-mnist-zoo": "scripts/make_mnist_zoo.py", "download-pgdl": "scripts/download_pgdl.py",
               "make-pgdl-replica": "scripts/make_pgdl_replica.py"}


def prog(script: str, own: bool = False) -> str:
    """Command `script` (a key of `ENTRY_FILES`) as the user types it, in the style this process was started in:
    as a module of this package, `python -m <that module>` (`own`: this process's command) or
    `python -m model.commands.<name>`; as an entry-point file, `python <the path as typed>` (`own`) or
    `python <entry file>`; else the console script `dnp-<script>` (also when `main(argv)` is called from Python).
    For `usage:`, the examples, and hints naming another command."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    path = Path(argv0)
    if path.suffix != ".py":
        return SCRIPT_PREFIX + script
    try:
        module = path.resolve().with_suffix("").relative_to(PACKAGE_ROOT)
    except ValueError:
        return f"python {argv0 if own else ENTRY_FILES[script]}"
    return f"python -m {'.'.join(('model', *module.parts)) if own else 'model.commands.' + script.replace('-', '_')}"


def parser(script: str, description: str, examples: list[str], exit_codes: dict[int, str],
           notes: str = "") -> argparse.ArgumentParser:
    """An `ArgumentParser` for the command whose console script is `dnp-<script>`: `prog` from `prog(script)`,
    `--version`, and an epilog listing `examples` (each `{prog}` replaced by the command as typed, a `# comment`
    allowed), `notes` (a paragraph, e.g. the columns of a file it reads) and `exit_codes` (code -> meaning; 130, an
    interruption, is added: `run` returns it for every command)."""
    name = prog(script, own=True)
    lines = ["examples:", *(f"  {e.format(prog=name)}" for e in examples)]
    if notes:
        lines += ["", notes.strip("\n")]
    codes = {**exit_codes, INTERRUPTED: "interrupted (Ctrl-C)"}
    lines += ["", "exit status:", *(f"  {code:<3} {meaning}" for code, meaning in sorted(codes.items()))]
    p = argparse.ArgumentParser(prog=name, description=description, epilog="\n".join(lines),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s (decorrelating-neurons) {version()}")
    return p


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
        return INTERRUPTED
    except Exception as err:
        return report(err, debug)


def exit_at_once(code: int) -> None:
    """Exit with `code` without the interpreter's teardown, after flushing the output and the logs: for a process
    stopping on a signal, whose results are all on disk. TensorFlow's teardown alone takes seconds (6 s measured at
    load average 2.6), and `docker stop` kills 10 s after its SIGTERM."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
