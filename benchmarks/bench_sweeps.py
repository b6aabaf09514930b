"""Benchmark of a large sweep's bookkeeping (`make bench`): the status text and writing the task specs.

status text: `model.sweeps.status.text` over N synthetic rows, one grid cell each (the worst case for the per-cell
table), CPU seconds. write_specs: `model.sweeps.grid.write_specs` of N tasks (one sync for all,
`model.atomic.write_many`) against one atomic write per spec (`model.atomic.write_json`: an fsync per file), wall
seconds, into a fresh folder under --dir (default: experiments/, the disk runs go to; /tmp may be a tmpfs, where an
fsync costs nothing). Prints a table with the load average and writes it to benchmarks/results/bench_sweeps.csv.
A benchmark, not a test: nothing here asserts a time.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from model import atomic
from model.sweeps import grid, status

RESULTS = Path(__file__).parent / "results" / "bench_sweeps.csv"


def status_rows(n: int) -> list[dict]:
    return [{"task_id": f"digits/{i % 50}/t1/{i}.0/seed_0", "network": f"digits/{i % 50}", "cell": f"t1 @ {i}",
             "state": "done", "epoch": 10, "max_epochs": 10, "val_accuracy": 0.9, "host": None,
             "heartbeat_age_s": None, "applied_fraction": 0.95, "grad_ratio_median": 0.1, "grad_ratio_min": 0.01,
             "grad_ratio_max": 1.0, "grad_ratio_under_1pct": 0.0, "mean_grad_ratio": 0.2, "error": None,
             "error_type": None} for i in range(n)]


def tasks(n: int, root: Path) -> list:
    weights = [float(w) for w in range(1, n + 1)]
    return grid.expand({"base": {"output_root": str(root)},
                        "grid": [{"networks": ["digits/0"], "cells": [{"regulariser": "t1", "weights": weights}]}]})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cells", type=int, default=8000, help="rows (cells) of the status text (default 8000)")
    p.add_argument("--tasks", type=int, default=10_000, help="task specs to write (default 10000)")
    p.add_argument("--dir", default="experiments", help="folder to write the specs under (removed afterwards)")
    args = p.parse_args(argv)
    rows = []
    table = status_rows(args.cells)
    t0 = time.process_time()
    status.text(table)
    rows.append(("status text", args.cells, "CPU s", time.process_time() - t0))

    Path(args.dir).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench_specs.", dir=args.dir))
    try:
        batch = tasks(args.tasks, work / "write_specs")
        t0 = time.perf_counter()
        grid.write_specs(batch)
        rows.append(("write_specs (one sync)", args.tasks, "wall s", time.perf_counter() - t0))
        one_by_one = tasks(args.tasks, work / "per_file")
        t0 = time.perf_counter()
        for task in one_by_one:
            atomic.write_json(task.spec_path, task.spec.to_dict())
        rows.append(("one atomic write per spec (fsync each)", args.tasks, "wall s", time.perf_counter() - t0))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = ["what,n,unit,value,load_average"] + [f"{w},{n},{u},{v:.3f},{load}" for w, n, u, v in rows]
    print(f"load average {load}")
    for what, n, unit, value in rows:
        print(f"{what:<42} n = {n:>6}  {value:8.3f} {unit}")
    atomic.write_text(RESULTS, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
