"""The back ends' own options of `run_sweep.py`, declared once: which back end takes each, its flag and its help.

`add_arguments(parser)` adds them to a command's parser, `check(args)` refuses an option given to a back end that
does not take it (one line naming them, exit 2) and `for_backend(args)` turns them into the keyword options of
`model.sweeps.executors.run`. An option counts as given when its value differs from its declared default.
"""
import argparse
from dataclasses import dataclass, field
from pathlib import Path

from model.sweeps import gpu_visibility, local, slurm
from model.sweeps.scheduler import ExecutorError


def parse_gpus(text: str) -> list[str]:
    """`0,1,3` → ['0', '1', '3']; `none` → [] (CPU workers only)."""
    if text.strip().lower() == "none":
        return []
    ids = [g.strip() for g in text.split(",") if g.strip()]
    if not ids or not all(g.isdigit() for g in ids):
        raise argparse.ArgumentTypeError(f"--gpus {text!r}: expected GPU ids like 0,1,3 or 'none'")
    return ids


@dataclass(frozen=True)
class Option:
    """One back-end option: `flag` on the command line, the back ends that take it, argparse's `help` and other
    keyword arguments (`default` is what 'not given' means)."""

    flag: str
    backends: tuple[str, ...]
    help: str
    default: object = None
    kwargs: dict = field(default_factory=dict)

    @property
    def dest(self) -> str:
        return self.kwargs.get("dest") or self.flag.removeprefix("--").replace("-", "_")


OPTIONS = (
    Option("--gpus", ("local",), "local: GPU ids to use, or 'none' (default: every GPU found, else CPU workers)",
           kwargs={"type": parse_gpus}),
    Option("--workers", ("local",), "local, without GPUs: CPU workers (default: cores/2)", kwargs={"type": int}),
    Option("--tasks-per-gpu", ("local", "ray"), "tasks sharing one GPU at a time (default 1)", default=1,
           kwargs={"type": int}),
    Option("--address", ("ray",), "ray: the cluster's HOST:PORT (default: a private local one)"),
    Option("--gpus-per-task", ("ray", "slurm"),
           "ray: GPUs per task, fractional allowed (default: 1/tasks-per-gpu when there are GPUs); slurm: GPUs per "
           "array element (default 1; 0 for CPU-only)", kwargs={"type": float}),
    Option("--partition", ("slurm",), "slurm: the partition (default: the cluster's default)"),
    Option("--time", ("slurm",), "slurm: time limit per element (MINUTES or [D-]HH:MM:SS; default 4:00:00); an "
           "element near its limit is requeued and resumes from its checkpoint"),
    Option("--mem", ("slurm",), "slurm: memory per element, e.g. 16G (default: the cluster's)"),
    Option("--array-parallelism", ("slurm",), "slurm: at most this many elements running at once (default 256)",
           kwargs={"type": int}),
    Option("--slurm-option", ("slurm",), "slurm: any other sbatch option, e.g. --slurm-option account=mylab "
           "--slurm-option cpus-per-task=4; repeatable", default=[],
           kwargs={"dest": "slurm_options", "action": "append", "metavar": "KEY=VALUE"}),
    Option("--detach", ("slurm",), "slurm: return once the array is submitted; follow it with sweep_status.py",
           default=False, kwargs={"action": "store_true"}),
    Option("--print-sbatch", ("slurm",), "slurm: print an sbatch script running the unfinished tasks, submit "
           "nothing", default=False, kwargs={"action": "store_true"}),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every back-end option to `parser`, the Slurm-only ones in their own group of the help."""
    group = parser.add_argument_group("slurm (one job array, one task per element)")
    for option in OPTIONS:
        target = group if option.backends == ("slurm",) else parser
        target.add_argument(option.flag, default=option.default, help=option.help, **option.kwargs)


def check(args) -> None:
    """Each back end's options only with that back end: `ExecutorError` naming every other one given."""
    foreign = sorted(option.dest for option in OPTIONS
                     if args.executor not in option.backends and getattr(args, option.dest) != option.default)
    if foreign:
        names = ", ".join("--" + name.replace("_", "-") for name in foreign)
        raise ExecutorError(f"{names}: not an option of --executor {args.executor} (see --help)")


def slurm_parameters(args) -> dict:
    """The Slurm options as `model.sweeps.slurm.run` takes them (job name: the sweep file's stem)."""
    return {"job_name": Path(args.sweep).stem, "time": args.time or slurm.DEFAULT_TIME, "partition": args.partition,
            "mem": args.mem, "gpus_per_task": args.gpus_per_task, "array_parallelism": args.array_parallelism,
            "slurm_options": slurm.parse_options(args.slurm_options)}


def for_backend(args) -> dict:
    """The keyword options of `executors.run` for `args.executor`; for `local`, the GPUs to use (those given, else
    every GPU found) must be GPUs TensorFlow sees unless `--allow-cpu` (`model.sweeps.gpu_visibility`)."""
    if args.executor == "local":
        gpus = local.detect_gpus() if args.gpus is None else args.gpus
        gpu_visibility.require_gpus(gpus, args.allow_cpu, source="--gpus" if args.gpus is not None else "GPUs found")
        return {"gpus": gpus, "workers": args.workers, "tasks_per_gpu": args.tasks_per_gpu}
    if args.executor == "ray":
        return {"address": args.address, "gpus_per_task": args.gpus_per_task, "tasks_per_gpu": args.tasks_per_gpu}
    return {**slurm_parameters(args), "detach": args.detach}
