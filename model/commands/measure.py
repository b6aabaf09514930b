"""Neural persistence and deep graph persistence of every finished run of a sweep and of PGDL models → tidy CSV.

Columns: model.measures.measures_table.COLUMNS (run_id, measure, value, layer, source, ...). An existing --out keeps
its rows; only networks not in it are measured (--force recomputes everything).
"""
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported: no C++ start-up lines

from model import cli
from model.measures import measures_table

EXAMPLES = [
    '{prog} --runs experiments/demo --out experiments/demo/measures.csv',
    '{prog} --pgdl data/pgdl/input_data/task1_v4 --out pgdl_measures.csv',
]
EXIT_CODES = {0: "every network measured",
              2: "bad input (one line per network that could not be measured; the others are still written)"}


def main(argv=None) -> int:
    parser = cli.parser('measure', __doc__, EXAMPLES, EXIT_CODES)
    parser.add_argument("--runs", action="append", default=[], type=Path, metavar="DIR",
                        help="a sweep's output folder (run folders with DONE.json at any depth); repeatable")
    parser.add_argument("--pgdl", action="append", default=[], type=Path, metavar="TASK_DIR",
                        help="a PGDL task folder (input_data/<task> with model_<id>/ folders); repeatable")
    parser.add_argument("--out", required=True, type=Path, help="the measures CSV to write (atomically)")
    parser.add_argument("--data-root", type=Path, default=None, help="the zoo's data folder (default: each spec's)")
    parser.add_argument("--force", action="store_true", help="recompute networks already in --out")
    parser.add_argument("--debug", action="store_true", help="tracebacks on errors")
    args = parser.parse_args(argv)
    if not args.runs and not args.pgdl:
        parser.error("give at least one --runs or --pgdl folder")
    return cli.run(run, args)


def run(args) -> int:
    measures, errors = measures_table.update_file(args.out, args.runs, args.pgdl, data_root=args.data_root,
                                                  force=args.force)
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    logging.info("%s: %d networks, %d rows", args.out, measures["run_id"].nunique(), len(measures))
    return 2 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
