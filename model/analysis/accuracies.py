"""Run folders → one tidy accuracies table, and that table read back from CSV.

A run is finished if and only if its `DONE.json` parses (docs/architecture.md); every other run folder (failed,
running, interrupted) and every expected task without a folder is listed in `Collection.incomplete`, never
silently dropped. This module reads run folders and CSVs; it must not train, select or test anything.
"""
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from model import atomic
from model.csv_input import read_csv
from model.errors import DataError
from model.regularisers.names import IDS
from model.runs import provenance, run_folder, state
from model.runs.spec import did_you_mean
from model.sweeps import grid

log = logging.getLogger(__name__)

COLUMNS = ("block", "network", "regulariser", "weight", "seed", "val_accuracy", "test_accuracy")
EXTRA_COLUMNS = ("train_accuracy", "val_loss", "epochs", "best_epoch", "stop_reason", "wall_seconds", "profile",
                 "reg_applied_fraction", "reg_grad_ratio_median", "reg_grad_ratio_min", "reg_grad_ratio_max",
                 "reg_grad_ratio_under_1pct", "reg_grad_ratio_mean", "reg_constant_neurons", "task_id", "run_dir",
                 "commit", "dirty", "host", "device", "versions")
# reg_applied_fraction: DONE.json's regulariser_activity.applied_fraction (fraction of the run's steps where the
# regulariser's gradient was applied; empty for the baseline and for runs recorded before the accounting); beside it
# how strongly, ‖ω∇R‖/‖∇CE‖ over the run's measured steps (median, min, max, the fraction under 1 %, mean; the first
# four empty for runs recorded before them), and the mean number of constant sampled neurons per batch
# (regulariser_activity's grad_ratio_*, mean_grad_ratio, mean_constant_neurons; `ACTIVITY_FIELDS`).
# provenance columns (model.runs.provenance), empty for runs recorded before it: commit (40 hex), dirty (True/False),
# host, device (`GPU <name> (CUDA .., cuDNN ..)` or `CPU <model>`), versions (`python 3.11.7, tensorflow 2.21.0, ..`)
INCOMPLETE_COLUMNS = ("task_id", "status", "detail")
# what `read` needs: a hand-made method × data set table has these three; the rest of COLUMNS take DEFAULTS
REQUIRED_COLUMNS = ("network", "regulariser", "test_accuracy")
DEFAULTS = {"block": "all", "seed": 0}  # weight: 0 for the baseline `none`, else 1 (`read`); val_accuracy: see `read`
COLUMNS_HELP = f"""\
the accuracies CSV: one row per run, columns (more may follow, in any order)
  {", ".join(REQUIRED_COLUMNS)}   required; a method × data set table is these three:
      network = the data set or network, regulariser = the method (the baseline is `none`)
  block         default "{DEFAULTS['block']}": the group analysed together (e.g. mnist, pgdl); plus all combined
  weight        the regularisation weight ω; with several per network × regulariser, the best validation
                accuracy (mean over seeds) selects one; default 0 for the baseline `none`, 1 for any other
                method (weight 0 is the baseline itself, left out of a regulariser's candidates)
  seed          default {DEFAULTS['seed']}: runs of one cell differing only in seed
  val_accuracy  default: test_accuracy, allowed only while no network × regulariser has several weights
  collect-accuracies writes all of them and more (train_accuracy, epochs, provenance, ...)"""
ACTIVITY_FIELDS = {"reg_applied_fraction": "applied_fraction", "reg_grad_ratio_median": "grad_ratio_median",
                   "reg_grad_ratio_min": "grad_ratio_min", "reg_grad_ratio_max": "grad_ratio_max",
                   "reg_grad_ratio_under_1pct": "grad_ratio_under_1pct", "reg_grad_ratio_mean": "mean_grad_ratio",
                   "reg_constant_neurons": "mean_constant_neurons"}  # CSV column -> regulariser_activity key


@dataclass(frozen=True)
class Collection:
    """frame: one row per finished run, COLUMNS then EXTRA_COLUMNS, sorted by task id.
    incomplete: one row per unfinished run (status `failed`, `running`, `partial`, `pending` or `missing`)."""

    frame: pd.DataFrame
    incomplete: pd.DataFrame


def _done_row(run: Path, done: dict, task_id: str) -> dict:
    path = run / run_folder.DONE
    missing = [key for key in COLUMNS if key not in done]
    if missing:
        raise DataError(f"{path}: DONE.json lacks key(s) {missing}; expected at least {list(COLUMNS)}")
    row = {key: done.get(key) for key in COLUMNS + EXTRA_COLUMNS}
    activity = done.get("regulariser_activity")
    for column, key in ACTIVITY_FIELDS.items():  # a value that is not a finite number is left empty
        row[column] = run_folder.number(activity.get(key)) if isinstance(activity, dict) else None
    weight, seed = row["weight"], row["seed"]
    if (isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0
            or isinstance(seed, bool) or not isinstance(seed, (int, float)) or not math.isfinite(seed)
            or seed != int(seed) or seed < 0):
        raise DataError(f"{path}: weight {weight!r} / seed {seed!r}: expected a finite number >= 0 and an "
                        "integer >= 0")
    row["weight"], row["seed"] = float(weight), int(seed)
    for key in ("val_accuracy", "test_accuracy"):
        value = row[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isnan(value) or 0 <= value <= 1):
            raise DataError(f"{path}: {key} {value!r}: expected a fraction in [0, 1]")
    row["task_id"] = task_id  # the folder's path relative to the root
    row["run_dir"] = run.as_posix()  # where the report finds history.csv again (`write` makes it CSV-relative)
    device, versions = done.get("device"), done.get("versions")
    row["device"] = provenance.describe(device) if isinstance(device, dict) else None
    row["versions"] = (", ".join(f"{name} {version}" for name, version in versions.items())
                       if isinstance(versions, dict) else None)
    return row


def collect(root: str | os.PathLike, expected=None) -> Collection:
    """Scan `root` for run folders (`.../seed_<seed>`) and tabulate them.

    expected: None (every run folder under root), or task ids (`digits/0/t1/0.01/seed_0`, relative to root), e.g. a
    sweep's tasks: only those are collected, and those with no folder are listed as `missing`. A DONE.json that
    parses but lacks a contract key, or holds a weight or seed of the wrong type, is listed as `partial` with the
    reason; it does not stop the collection.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder of run folders")
    rows, incomplete = [], []
    seen = set()
    wanted = None if expected is None else set(expected)
    for run in run_folder.run_dirs(root):
        task_id = run.relative_to(root).as_posix()
        if wanted is not None and task_id not in wanted:
            log.info("run %s is not one of the expected tasks: left out", task_id)
            continue
        seen.add(task_id)
        done = run_folder.read_done(run)
        status = "done" if done is not None else state.status(run)
        if status == "done":
            try:
                rows.append(_done_row(run, done, task_id))
            except DataError as err:  # a damaged record: listed, and the other runs still collected
                incomplete.append((task_id, "partial", str(err)))
            continue
        if status == "failed":
            failed = run_folder.read_json(run / run_folder.FAILED) or {}
            incomplete.append((task_id, "failed", str(failed.get("error", "FAILED.json does not parse"))))
        elif status == "running":
            incomplete.append((task_id, "running", "a live RUNNING.json claim"))
        elif status == "pending":
            incomplete.append((task_id, "pending", "never started (spec.json only)"))
        else:
            why = ("DONE.json does not parse as a run's record" if (run / run_folder.DONE).exists()
                   else "started, no DONE.json")
            incomplete.append((task_id, "partial", why))
    incomplete += [(t, "missing", "no run folder") for t in expected or () if t not in seen]
    frame = pd.DataFrame(rows, columns=list(COLUMNS + EXTRA_COLUMNS))
    frame = frame.sort_values("task_id", kind="stable").reset_index(drop=True)
    for task_id, status, detail in incomplete:
        log.warning("run %s is %s: %s", task_id, status, detail)
    return Collection(frame, pd.DataFrame(incomplete, columns=list(INCOMPLETE_COLUMNS)))


def collect_sweep(sweep: str | os.PathLike, root: str | os.PathLike | None = None) -> Collection:
    """`collect` only the tasks of the sweep file `sweep` (those with no run folder listed as `missing`), from
    `root`, by default the sweep's output root (a task's run folder is `<output root>/<task id>`)."""
    tasks = grid.load(sweep)
    if root is None and tasks:
        root = Path(*Path(tasks[0].run_dir).parts[:-len(Path(tasks[0].task_id).parts)])
    if root is None:
        raise DataError(f"{sweep}: the sweep has no tasks; give RUNS_ROOT")
    return collect(root, [task.task_id for task in tasks])


def write(collection: Collection, path: str | os.PathLike, force: bool = False) -> tuple[Path, Path]:
    """Write the accuracies CSV and, beside it, `<stem>.incomplete.csv`; refuse to overwrite without `force`.
    `run_dir` is written relative to the CSV's own folder (`read` resolves it from there), so any reader, from
    any folder, finds the same runs, and the CSV moves with its run folders."""
    path = Path(path)
    side = path.with_name(path.stem + ".incomplete.csv")
    for target in (path, side):
        if target.is_dir():
            raise DataError(f"{target}: is a folder; expected --out to name a CSV file")
    if not force and (path.exists() or side.exists()):
        raise DataError(f"{path}: already exists; pass --force to overwrite it")
    frame = collection.frame.copy()
    here = path.parent.resolve()
    frame["run_dir"] = [Path(os.path.relpath(Path(run).resolve(), here)).as_posix() for run in frame["run_dir"]]
    atomic.write_text(path, frame.to_csv(index=False))
    atomic.write_text(side, collection.incomplete.to_csv(index=False))
    return path, side


def add_treatment_names_option(parser) -> None:
    """`--allow-unknown-treatments` for a command that reads the accuracies CSV (`read(allow_unknown_treatments=)`)."""
    parser.add_argument("--allow-unknown-treatments", action="store_true",
                        help="accept regulariser names that are not ids of the registry (a table of your own "
                             "methods); by default one is an error, so a typo or an upper-cased NONE never drops the "
                             "baseline")


def check_treatments(frame: pd.DataFrame, path: Path) -> None:
    """`DataError` naming the first regulariser of `frame` that is not an id of the registry
    (`model.regularisers.names.IDS`: case matters; an upper-cased baseline `NONE` is not the baseline `none`)."""
    unknown = [name for name in frame["regulariser"].unique() if name not in IDS]  # in row order
    if unknown:
        first = unknown[0]
        row = int((frame["regulariser"] == first).to_numpy().argmax()) + 2
        others = f" (and {', '.join(repr(n) for n in unknown[1:])})" if unknown[1:] else ""
        raise DataError(f"{path}: regulariser {first!r} in row {row}{others} is not a treatment of the registry"
                        f"{did_you_mean(first.lower(), IDS)}; expected one of {', '.join(IDS)}, or pass "
                        "--allow-unknown-treatments to analyse treatments of your own")


def read(path: str | os.PathLike, allow_unknown_treatments: bool = False) -> pd.DataFrame:
    """Read and validate an accuracies CSV: the contract's columns, numeric values, one row per run.

    Only `REQUIRED_COLUMNS` must be there; an absent `block` or `seed` column takes its value in `DEFAULTS`, an
    absent `weight` is 0 for the baseline `none` and 1 for every other regulariser (a method as given), an absent
    `val_accuracy` the test accuracy when no (network, regulariser) has more than one weight (then nothing is
    selected on it; otherwise it is an error: selecting on test accuracy would be a leak).
    Raises DataError naming the file and what is wrong (missing or empty file, missing column, non-numeric value,
    a weight that is not a finite number >= 0, a seed that is not an integer >= 0, accuracy outside [0, 1],
    duplicated run, a regulariser that is not a registry id unless `allow_unknown_treatments`). `run_dir` comes back
    absolute, resolved from the CSV's folder.
    """
    path = Path(path)
    frame = read_csv(path, REQUIRED_COLUMNS, "accuracies CSV")
    if frame.empty:
        raise DataError(f"{path}: no rows (no finished run was collected)")
    for col, default in DEFAULTS.items():
        if col not in frame.columns:
            frame[col] = default
    if "weight" not in frame.columns:
        frame["weight"] = np.where(frame["regulariser"].astype(str) == "none", 0.0, 1.0)
    if "val_accuracy" not in frame.columns:
        several = frame.groupby(["network", "regulariser"])["weight"].nunique()
        if (several > 1).any():
            network, regulariser = several[several > 1].index[0]
            raise DataError(f"{path}: no column 'val_accuracy', but network {network!r} has several weights of "
                            f"{regulariser!r}; expected a val_accuracy column to select the weight on")
        frame["val_accuracy"] = frame["test_accuracy"]
    frame = frame[list(COLUMNS) + [c for c in frame.columns if c not in COLUMNS]]
    for col in ("block", "network", "regulariser", "weight", "seed"):
        if frame[col].isna().any():
            raise DataError(f"{path}: column {col!r} is empty in row {int(frame[col].isna().to_numpy().argmax()) + 2}"
                            "; every run needs a value")
    for col in ("weight", "seed", "val_accuracy", "test_accuracy"):
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = frame[col][values.isna() & frame[col].notna()]
        if not bad.empty:
            raise DataError(f"{path}: column {col!r} holds non-numeric value {bad.iloc[0]!r}")
        frame[col] = values
    bad = frame[~np.isfinite(frame["weight"]) | (frame["weight"] < 0)]
    if not bad.empty:
        raise DataError(f"{path}: weight {bad['weight'].iloc[0]!r} of network {bad['network'].iloc[0]!r}: expected a "
                        "finite number >= 0")
    bad = frame[~np.isfinite(frame["seed"]) | (frame["seed"] < 0) | (frame["seed"] % 1 != 0)]
    if not bad.empty:
        raise DataError(f"{path}: seed {bad['seed'].iloc[0]!r} of network {bad['network'].iloc[0]!r}: expected an "
                        "integer >= 0")
    for col in ("val_accuracy", "test_accuracy"):
        out = frame[(frame[col] < 0) | (frame[col] > 1)]
        if not out.empty:
            raise DataError(f"{path}: {col} {out[col].iloc[0]} of network {out['network'].iloc[0]!r} is outside "
                            "[0, 1]; expected a fraction")
    for col in ("block", "network", "regulariser"):
        frame[col] = frame[col].astype(str)
    if not allow_unknown_treatments:
        check_treatments(frame, path)
    key = ["network", "regulariser", "weight", "seed"]
    dup = frame[frame.duplicated(key, keep=False)]
    if not dup.empty:
        raise DataError(f"{path}: run {dict(dup[key].iloc[0])} appears more than once")
    frame["seed"] = frame["seed"].astype(np.int64)
    if "run_dir" in frame:  # relative to the CSV's folder (`write`); an absolute path stays as it is
        here = path.resolve().parent
        frame["run_dir"] = [None if pd.isna(run) else os.path.normpath(here / str(run)) for run in frame["run_dir"]]
    return frame
