#!/usr/bin/env python
"""Collect every finished run (DONE.json) under a folder into one tidy accuracies CSV.

    python accuracies/collect_accuracies.py RUNS_ROOT --out ACCURACIES.csv [--sweep SWEEP.json] [--force]

Columns: block,network,regulariser,weight,seed,val_accuracy,test_accuracy, then more. Runs that are not finished
(failed, running, partial, and with --sweep the sweep's tasks with no folder) are listed in
ACCURACIES.incomplete.csv and on stderr. The work is in model/results.py.
"""
import argparse
import sys

from model import cli, results


def main(args) -> int:
    expected = ()
    if args.sweep:
        from model import sweeps

        expected = [task.task_id for task in sweeps.load(args.sweep)]
    collection = results.collect(args.root, expected)
    csv, side = results.write(collection, args.out, force=args.force)
    print(f"{len(collection.frame)} finished runs → {csv}; {len(collection.incomplete)} not finished → {side}")
    return 0


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", help="folder holding the run folders (a sweep's output root)")
    p.add_argument("--out", required=True, help="CSV to write")
    p.add_argument("--sweep", help="sweep file: list its tasks that have no run folder as missing")
    p.add_argument("--force", action="store_true", help="overwrite an existing CSV")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(cli.run(main, parse(sys.argv[1:])))
