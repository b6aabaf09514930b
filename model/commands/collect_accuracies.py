"""Collect every finished run (DONE.json) under a folder into one tidy accuracies CSV.

Runs that are not finished (failed, running, partial, pending, and with --sweep the sweep's tasks with no folder)
are listed in ACCURACIES.incomplete.csv (columns task_id, status, detail) and on stderr. With --sweep only that
sweep's tasks are collected, and RUNS_ROOT defaults to its output root. The work is in model/analysis/accuracies.py.
"""
import sys

from model import cli
from model.analysis import accuracies
from model.errors import PipelineError

EXAMPLES = ["{prog} --sweep configs/digits/demo.json --out experiments/demo/accuracies.csv",
            "{prog} experiments/paper/corrected --out experiments/paper/corrected/accuracies.csv --force"]
EXIT_CODES = {0: "CSV written (unfinished runs are listed, not an error)", 2: "bad input"}


def work(args) -> int:
    if args.sweep:
        collection = accuracies.collect_sweep(args.sweep, args.root)
    elif args.root is not None:
        collection = accuracies.collect(args.root)
    else:
        raise PipelineError("give RUNS_ROOT, or --sweep SWEEP.json to collect that sweep's runs")
    csv, side = accuracies.write(collection, args.out, force=args.force)
    print(f"{len(collection.frame)} finished runs → {csv}; {len(collection.incomplete)} not finished → {side}")
    return 0


def main(argv=None) -> int:
    p = cli.parser("collect-accuracies", __doc__, EXAMPLES, EXIT_CODES, notes=accuracies.COLUMNS_HELP)
    p.add_argument("root", nargs="?", help="folder holding the run folders (default with --sweep: its output root)")
    p.add_argument("--out", required=True, help="CSV to write")
    p.add_argument("--sweep", help="sweep file: collect only its tasks; list those with no run folder as missing")
    p.add_argument("--force", action="store_true", help="overwrite an existing CSV")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return cli.run(work, p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
