"""Sweep files → tasks: the paper's grids, deterministic expansion, stable ids, spec files, bad input, status."""
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from model.errors import SpecError
from model.runs import run_folder, state
from model.runs.overrides import parse as parse_overrides
from model.runs.spec import Spec
from model.sweeps import grid

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "configs" / "paper"
WEIGHTS = [1e-06, 1e-05, 0.0001, 0.001, 0.01, 0.1, 1.0, 5.0, 10.0, 100.0]
MNIST = ["mnist/0", "mnist/1", "mnist/2"]
PGDL = [f"pgdl/task1_v4/{i}" for i in (20, 21, 22, 23, 148, 149, 150, 151)]
sys.path.insert(0, str(ROOT / "scripts"))
import run_sweep  # noqa: E402
import sweep_status  # noqa: E402


def small_sweep(output_root, **base) -> dict:
    return {"base": {"output_root": str(output_root), "max_epochs": 2, **base},
            "grid": [{"networks": ["digits/0", "digits/2"], "seeds": [0, 1],
                      "cells": [{"regulariser": "none", "weights": [0]},
                                {"regulariser": "t1", "weights": [0.01, 1], "set": {"sampling": 0.5}}]}]}


@pytest.mark.parametrize("name, networks", [("mnist_paper", MNIST), ("mnist_corrected", MNIST),
                                            ("pgdl_paper", PGDL), ("pgdl_corrected", PGDL)])
def test_paper_sweeps_expand_to_51_tasks_per_network(name, networks):
    tasks = grid.load(PAPER / f"{name}.json")
    assert len(tasks) == 51 * len(networks)
    assert len({t.task_id for t in tasks}) == len(tasks)
    assert Counter(t.spec.network for t in tasks) == {n: 51 for n in networks}
    profile = name.split("_")[1]
    for network in networks:
        cells = sorted((t.spec.regulariser, t.spec.weight) for t in tasks if t.spec.network == network)
        expected = [("none", 0.0)] + [(r, w) for r in ("corr", "l1", "l2", "t1", "t2") for w in WEIGHTS]
        assert cells == sorted(expected)
    for t in tasks:
        assert t.spec.profile == profile and t.spec.seed == 0
        assert t.task_id == f"{t.spec.network}/{t.spec.regulariser}/{float(t.spec.weight)!r}/seed_0"
        assert t.run_dir == Path(t.spec.output_root) / t.task_id
        # PGDL's t1, t2 and C use the original's default 0.5% sampling; MNIST samples every neuron
        sampled = networks is PGDL and t.spec.regulariser in ("t1", "t2", "corr")
        assert t.spec.sampling == (0.005 if sampled else 1.0)
        # Q-optimisers (docs/quirks.md): MNIST Nesterov SGD 0.01 with staircase decay every 3520 steps;
        # PGDL SGD 0.001 constant
        opt = t.spec.optimizer
        if networks is MNIST:
            assert (opt.learning_rate, opt.nesterov, opt.schedule, opt.decay_steps) == (0.01, True,
                                                                                      "exponential_decay", 3520)
        else:
            assert (opt.learning_rate, opt.nesterov, opt.schedule) == (0.001, False, "constant")
        assert (t.spec.batch_size, t.spec.max_epochs, t.spec.patience) == (256, 1200, 20)


def test_paper_blocks_share_a_root_per_profile():
    """MNIST and PGDL runs of one profile land under one root (one accuracies CSV, combined statistics); the two
    profiles never share run folders."""
    roots = {p.stem: grid.load(p)[0].spec.output_root for p in PAPER.glob("*.json")}
    assert roots["mnist_paper"] == roots["pgdl_paper"] != roots["mnist_corrected"] == roots["pgdl_corrected"]


@pytest.mark.parametrize("name, count", [("mnist_paper", 153), ("pgdl_corrected", 408), ("mnist_paper_seeds", 180),
                                         ("mnist_corrected_seeds", 180)])
def test_dry_run_prints_the_count_and_the_ids(name, count, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_sweep.main([str(PAPER / f"{name}.json"), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{count} tasks"
    ids = lines[1:]
    assert len(ids) == count == len(set(ids))
    assert ids == [t.task_id for t in grid.load(PAPER / f"{name}.json")]
    assert not any(tmp_path.iterdir()), "a dry run writes nothing"


@pytest.mark.parametrize("profile", ["paper", "corrected"])
def test_seeds_sweeps_are_the_paper_grid_plus_the_baseline_over_10_seeds(profile):
    plain = {t.task_id: t.spec for t in grid.load(PAPER / f"mnist_{profile}.json")}
    seeds = {t.task_id: t.spec for t in grid.load(PAPER / f"mnist_{profile}_seeds.json")}
    assert set(plain) < set(seeds) and all(seeds[k] == plain[k] for k in plain)  # same run folders, same specs
    extra = [seeds[k] for k in set(seeds) - set(plain)]
    assert sorted((s.network, s.seed) for s in extra) == [(n, s) for n in MNIST for s in range(1, 10)]
    assert all(s.regulariser == "none" and s.weight == 0.0 for s in extra)
    for network in MNIST:  # the baseline has as many seeds as each regulariser has weights
        assert sum(s.network == network and s.regulariser == "none" for s in seeds.values()) == len(WEIGHTS)


def test_the_activity_demonstration_is_the_paper_profile_with_a_seeded_baseline():
    tasks = grid.load(ROOT / "configs/digits/activity_seeds.json")
    assert len(tasks) == 30 and all(t.spec.profile == "paper" for t in tasks)
    cells = Counter((t.spec.network, t.spec.regulariser) for t in tasks)
    assert cells == {(n, r): 3 for n in ("digits/0", "digits/2") for r in ("none", "t1", "t2", "corr", "l2")}
    assert sorted(t.spec.seed for t in tasks if t.spec.regulariser == "none") == [0, 0, 1, 1, 2, 2]


def test_expansion_is_deterministic_and_in_file_order(tmp_path):
    sweep = small_sweep(tmp_path)
    first, second = grid.expand(sweep), grid.expand(json.loads(json.dumps(sweep)))
    assert [t.task_id for t in first] == [t.task_id for t in second]
    assert [t.spec for t in first] == [t.spec for t in second]
    assert [t.task_id for t in first] == [
        f"{n}/{r}/{w}/seed_{s}" for n in ("digits/0", "digits/2")
        for r, ws in (("none", ["0.0"]), ("t1", ["0.01", "1.0"])) for w in ws for s in (0, 1)]
    assert {t.spec.sampling for t in first if t.spec.regulariser == "t1"} == {0.5}
    assert {t.spec.sampling for t in first if t.spec.regulariser == "none"} == {1.0}
    assert first[0].cell == "none/0.0"


def test_overrides_replace_base_fields(tmp_path):
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(small_sweep(tmp_path / "a")))
    overrides = parse_overrides(["output_root=" + str(tmp_path / "b"), "max_epochs=7",
                                        "optimizer.learning_rate=0.5", "profile=paper"])
    tasks = grid.load(path, overrides)
    assert {t.spec.max_epochs for t in tasks} == {7}
    assert {t.spec.optimizer.learning_rate for t in tasks} == {0.5}
    assert {t.spec.optimizer.momentum for t in tasks} == {0.9}
    assert {t.spec.profile for t in tasks} == {"paper"}
    assert all(str(t.run_dir).startswith(str(tmp_path / "b")) for t in tasks)
    with pytest.raises(SpecError, match="KEY=VALUE"):
        parse_overrides(["max_epochs"])


def test_write_specs_gives_files_the_experiment_runs(tmp_path):
    tasks = grid.expand(small_sweep(tmp_path))
    grid.write_specs(tasks)
    for task in tasks:
        assert task.spec_path == task.run_dir / "spec.json"
        assert Spec.from_file(task.spec_path) == task.spec
        assert Spec.from_file(task.spec_path).run_dir == task.run_dir
    before = {t.spec_path: t.spec_path.stat().st_mtime_ns for t in tasks}
    grid.write_specs(tasks)  # again: nothing to do
    assert before == {t.spec_path: t.spec_path.stat().st_mtime_ns for t in tasks}
    assert {t.task_id: state.status(t.run_dir) for t in tasks} == {t.task_id: "pending" for t in tasks}


def test_a_changed_sweep_never_overwrites_a_run_folder(tmp_path):
    grid.write_specs(grid.expand(small_sweep(tmp_path)))
    changed = grid.expand(small_sweep(tmp_path, max_epochs=3))
    with pytest.raises(SpecError, match="different spec"):
        grid.write_specs(changed)
    assert Spec.from_file(changed[0].spec_path).max_epochs == 2


@pytest.mark.parametrize("mutate, message", [
    (lambda s: s.update(extra=1), "unknown field 'extra'"),
    (lambda s: s.pop("grid"), "missing field 'grid'"),
    (lambda s: s["base"].update(network="digits/0"), "base.network: set by the grid"),
    (lambda s: s["grid"][0]["cells"][1].update(set={"weight": 1}), r"cells\[1\].set.weight"),
    (lambda s: s["grid"][0].update(networks=[]), r"grid\[0\].networks: expected a non-empty JSON list"),
    (lambda s: s["grid"][0]["cells"][0].update(regulariser="t3"), "'regulariser' = 't3'"),
    (lambda s: s["grid"][0]["cells"][1].update(weights=[-1]), r"cells\[1\].*'weight' = -1.0"),
    (lambda s: s["base"].update(max_epochs="2"), "'max_epochs' = '2'"),
    (lambda s: s["grid"].append(s["grid"][0]), r"already produced by grid\[0\]"),
    (lambda s: s.update(expect_tasks=153), "expect_tasks is 153 but the grid expands to 12 tasks"),
    (lambda s: s["grid"][0].update(set={"output_root": "elsewhere"}), r"grid\[0\].set.output_root: a sweep has one"),
    (lambda s: s["grid"][0]["cells"][1]["set"].update(output_root="x"), r"cells\[1\].set.output_root: a sweep has"),
])
def test_bad_sweeps_fail_with_one_clear_error(tmp_path, mutate, message):
    sweep = small_sweep(tmp_path / "out")
    mutate(sweep)
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(sweep))
    with pytest.raises(SpecError, match=message) as err:
        grid.load(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for argv in ([str(bad)], [str(bad), "--dry-run"], [str(tmp_path / "missing.json")]):
        assert run_sweep.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1
    assert sweep_status.main([str(bad)]) == 2
    good = tmp_path / "good.json"
    good.write_text(json.dumps(small_sweep(tmp_path / "out")))
    assert run_sweep.main([str(good), "--executor", "ray", "--gpus", "0"]) == 2
    assert "--gpus: not an option of --executor ray" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_status_counts_each_run_state_per_cell(tmp_path, capsys):
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(small_sweep(tmp_path / "out")))
    tasks = grid.load(path)
    done, running, failed, stale = tasks[0], tasks[1], tasks[4], tasks[5]
    run_folder.write_done(done.run_dir, {"task_id": done.task_id})
    claim = {"host": socket.gethostname(), "pid": os.getpid(), "heartbeat_unix": time.time()}
    (running.run_dir / run_folder.RUNNING).parent.mkdir(parents=True)
    (running.run_dir / run_folder.RUNNING).write_text(json.dumps(claim))
    run_folder.write_failed(failed.run_dir, FileNotFoundError("data/mnist/mnist.npz: missing"))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a claim by a process that has exited is stale: the task is partial (resumable)
    (stale.run_dir).mkdir(parents=True)
    (stale.run_dir / run_folder.RUNNING).write_text(json.dumps({**claim, "pid": dead.pid}))
    expected = ["done", "running", "missing", "missing", "failed", "partial"]
    assert [state.status(t.run_dir) for t in tasks[:6]] == expected

    acted = next(t for t in tasks if t.cell == "t1/0.01")
    ratios = {"grad_ratio_median": 0.004, "grad_ratio_min": 0.001, "grad_ratio_max": 0.02, "grad_ratio_under_1pct": 0.8,
              "mean_grad_ratio": 0.005}
    run_folder.write_done(acted.run_dir, {"task_id": acted.task_id,
                                          "regulariser_activity": {"applied_fraction": 0.25, **ratios}})
    (running.run_dir / run_folder.HISTORY).write_text("epoch,loss,val_loss,val_accuracy,lr,seconds\n"
                                                      "1,2.1,2.0,0.5,0.01,3.0\n2,1.2,1.1,0.8125,0.01,3.0\n")

    assert sweep_status.main([str(path)]) == 1  # a task failed
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["cell", "done", "running", "failed", "partial", "pending", "missing", "total", "acted",
                              "grad", "ratio"]
    rows = {line.split()[0]: [int(x) for x in line.split()[1:8]] for line in out[1:4]}
    assert rows == {"none/0.0": [1, 1, 0, 0, 0, 2, 4], "t1/0.01": [1, 0, 0, 0, 0, 3, 4],
                    "t1/1.0": [0, 0, 1, 1, 0, 2, 4]}
    assert [line.split()[8] for line in out[1:4]] == ["-", "25%!", "-"]  # the regulariser acted in 25 % of steps
    # how strongly: under 1 % on most steps, but not "negligible": it did not act (the stronger flag)
    assert [" ".join(line.split()[9:]) for line in out[1:4]] == ["-", "0.004 [0.001, 0.02]", "-"]
    assert out[4].split() == ["all", "2", "1", "1", "1", "0", "7", "12"]
    assert out[6].split() == ["network", "done", "running", "failed", "partial", "pending", "missing", "total"]
    assert [line.split() for line in out[7:10]] == [["digits/0", "2", "1", "1", "1", "0", "1", "6"],
                                                    ["digits/2", "0", "0", "0", "0", "0", "6", "6"],
                                                    ["all", "2", "1", "1", "1", "0", "7", "12"]]
    [line] = [line for line in out if line.startswith(f"  {running.task_id}: ")]
    assert line.startswith(f"  {running.task_id}: epoch 2/2, val 0.812, host {socket.gethostname()}, heartbeat ")
    assert f"  {failed.task_id}: FileNotFoundError: data/mnist/mnist.npz: missing" in out

    assert sweep_status.main([str(path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["totals"] == {"done": 2, "running": 1, "failed": 1, "partial": 1, "pending": 0, "missing": 7}
    assert report["networks"]["digits/0"]["failed"] == 1 and report["cells"]["t1/1.0"]["partial"] == 1
    by_id = {row["task_id"]: row for row in report["tasks"]}
    assert [row["task_id"] for row in report["tasks"]] == [t.task_id for t in tasks]
    live = by_id[running.task_id]
    assert (live["state"], live["epoch"], live["max_epochs"], live["val_accuracy"], live["host"]) == \
        ("running", 2, 2, 0.8125, socket.gethostname())
    assert 0 <= live["heartbeat_age_s"] < 600
    assert by_id[failed.task_id]["error"] == "data/mnist/mnist.npz: missing"

    run_folder.write_done(failed.run_dir, {"task_id": failed.task_id})
    assert sweep_status.main([str(path), "--json"]) == 0  # nothing failed any more
    capsys.readouterr()


def test_set_wins_over_cell_set_on_every_task_of_the_pgdl_sweep(capsys):
    sweep = PAPER / "pgdl_corrected.json"
    assert {t.spec.sampling for t in grid.load(sweep)} == {1.0, 0.005}  # the file's own cell sets
    tasks = grid.load(sweep, parse_overrides(["sampling=0.5"]))
    assert len(tasks) == 408 and {t.spec.sampling for t in tasks} == {0.5}
    assert run_sweep.main([str(sweep), "--dry-run", "--set", "sampling=0.5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == [f"--set overrides grid[0].cells[{c}] ({r}): sampling 0.005 -> 0.5"
                       for c, r in ((1, "t1"), (2, "t2"), (5, "corr"))]
    assert out[3] == "408 tasks"


def test_only_runs_a_subset_and_names_values_no_task_has(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep = PAPER / "mnist_corrected.json"
    argv = [str(sweep), "--dry-run", "--only", "network=mnist/0,mnist/2,pgdl/task1_v4/20", "--only",
            "regulariser=none,t1", "--only", "weight=0,1e-1"]
    assert run_sweep.main(argv) == 0
    assert capsys.readouterr().out.splitlines() == [
        "--only network=pgdl/task1_v4/20: matches no task of this sweep", "--only: 4 of the sweep's 153 tasks",
        "4 tasks", "mnist/0/none/0.0/seed_0", "mnist/0/t1/0.1/seed_0", "mnist/2/none/0.0/seed_0",
        "mnist/2/t1/0.1/seed_0"]
    tasks = grid.load(sweep)
    kept, unmatched = grid.subset(tasks, grid.parse_subset(["seed=0", "regulariser=l2", "regulariser=l1"]))
    assert [t.task_id for t in kept] == [t.task_id for t in tasks if t.spec.regulariser in ("l1", "l2")]
    assert unmatched == [] and len(kept) == 60
    assert run_sweep.main([str(sweep), "--dry-run", "--only", "network=mnist/9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "selects none of its 153 tasks" in err and len(err.splitlines()) == 1
    for bad, message in (("net=mnist/0", "KEY one of network, regulariser, weight, seed"),
                         ("weight=big", "'big' is not a weight"), ("seed=", "expected KEY=V1,V2")):
        with pytest.raises(SpecError, match=message):
            grid.parse_subset([bad])
    assert not any(tmp_path.iterdir()), "a dry run writes nothing"


def test_dotted_set_wins_inside_a_cell_set_and_keeps_the_rest(tmp_path):
    sweep = small_sweep(tmp_path)
    sweep["grid"][0]["cells"][1]["set"] = {"optimizer": {"learning_rate": 0.2, "momentum": 0.5}}
    overrides = parse_overrides(["optimizer.learning_rate=0.3"])
    tasks = grid.expand(sweep, overrides=overrides)
    assert {(t.spec.optimizer.learning_rate, t.spec.optimizer.momentum) for t in tasks if t.spec.regulariser == "t1"} \
        == {(0.3, 0.5)}
    assert {t.spec.optimizer.learning_rate for t in tasks} == {0.3}
    assert grid.overridden(sweep, overrides) == ["grid[0].cells[1] (t1): optimizer.learning_rate 0.2 -> 0.3"]
    with pytest.raises(SpecError, match="--set seed: set by the grid"):
        grid.expand(sweep, overrides={"seed": 3})


@pytest.mark.parametrize("where, typo, right", [("set", "max_epoch", "max_epochs"), ("sweep", "grids", "grid"),
                                                ("spec", "regularizer", "regulariser"),
                                                ("optimizer", "learning_rat", "optimizer.learning_rate")])
def test_a_typo_in_a_field_suggests_the_nearest_valid_one(tmp_path, capsys, where, typo, right):
    sweep = small_sweep(tmp_path / "out")
    argv = []
    if where == "set":
        argv = ["--set", f"{typo}=5"]
    elif where == "sweep":
        sweep[typo] = sweep.pop("grid")
    elif where == "spec":
        sweep["base"][typo] = "t1"
    else:
        sweep["base"]["optimizer"] = {typo: 0.1}
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(sweep))
    assert run_sweep.main([str(path), "--dry-run", *argv]) == 2
    err = capsys.readouterr().err
    assert "unknown " in err and typo in err and f"did you mean '{right}'?" in err and err.count("\n") == 1


def test_every_path_submits_the_same_unfinished_tasks(tmp_path):
    """`unfinished` (neither done nor live-claimed) is what the scheduler loop submits, what a detached Slurm sweep
    and --print-sbatch send; failed, partial and missing tasks are in it."""
    from model.sweeps import sbatch
    from model.sweeps.scheduler import schedule, unfinished
    from model.sweeps.task_process import jobs_for

    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(small_sweep(tmp_path / "out")))
    tasks = grid.load(path)[:4]
    done, running, failed, missing = tasks
    run_folder.write_done(done.run_dir, {"task_id": done.task_id})
    running.run_dir.mkdir(parents=True)
    claim = {"host": socket.gethostname(), "pid": os.getpid(), "heartbeat_unix": time.time()}
    (running.run_dir / run_folder.RUNNING).write_text(json.dumps(claim))
    run_folder.write_failed(failed.run_dir, RuntimeError("boom"))
    assert [t.task_id for t in unfinished(tasks)] == [failed.task_id, missing.task_id]

    submitted, pending = [], []
    jobs = jobs_for([done, failed, missing])  # the loop: a live claim is waited for, so it is left out here

    def submit(job):
        submitted.append(job.task_id)
        pending.append(job)
        run_folder.write_done(job.run_dir, {"task_id": job.task_id})

    outcomes = schedule(jobs, submit, lambda: (pending.pop(0), 0, ""))
    assert submitted == [failed.task_id, missing.task_id]
    assert [o.status for o in outcomes] == ["skipped", "done", "done"]

    for task in (failed, missing):  # unfinished again, for the sbatch script
        (task.run_dir / run_folder.DONE).unlink()
    text, count = sbatch.for_tasks(tasks, {"job_name": "s", "time": "60"})
    assert count == 2 and str(failed.run_dir / "spec.json") in text and str(done.run_dir / "spec.json") not in text
    with pytest.raises(Exception, match="whole number of GPUs"):
        sbatch.for_tasks(tasks, {"job_name": "s", "time": "60", "gpus_per_task": 0.5})


def test_each_back_end_takes_only_its_own_options():
    """The options are declared once (model/sweeps/options.py): the parser gets them, and the check names every
    option given to a back end that does not take it."""
    import argparse

    from model.sweeps import options
    from model.sweeps.scheduler import ExecutorError

    parser = argparse.ArgumentParser()
    parser.add_argument("--executor")
    options.add_arguments(parser)
    for option in options.OPTIONS:
        assert parser.get_default(option.dest) == option.default
    args = parser.parse_args(["--executor", "local", "--gpus", "0", "--partition", "gpu", "--gpus-per-task", "1"])
    with pytest.raises(ExecutorError, match=r"^--gpus-per-task, --partition: not an option of --executor local"):
        options.check(args)
    options.check(parser.parse_args(["--executor", "slurm", "--partition", "gpu", "--gpus-per-task", "1"]))
    with pytest.raises(ExecutorError, match="--tasks-per-gpu: not an option of --executor slurm"):
        options.check(parser.parse_args(["--executor", "slurm", "--tasks-per-gpu", "2"]))


def test_status_names_a_negligible_regulariser_and_falls_back_to_the_mean_for_older_runs():
    from model.sweeps.status import RATIO_KEYS, _strength

    def run(applied, **ratios):
        return {"applied_fraction": applied, **dict.fromkeys(RATIO_KEYS), **ratios}

    strong = dict(grad_ratio_median=0.2, grad_ratio_min=0.05, grad_ratio_max=0.9, grad_ratio_under_1pct=0.0,
                  mean_grad_ratio=0.3)
    weak = dict(grad_ratio_median=0.002, grad_ratio_min=0.0, grad_ratio_max=0.03, grad_ratio_under_1pct=0.9,
                mean_grad_ratio=0.004)
    assert _strength([run(1.0, **strong), run(1.0, **strong)]) == "0.2 [0.05, 0.9]"
    assert _strength([run(1.0, **weak), run(1.0, **{**weak, "grad_ratio_median": 0.004})]) == \
        "0.003 [0, 0.03] negligible"
    assert _strength([run(1.0, mean_grad_ratio=0.004)]) == "0.004 (mean) negligible"  # recorded before the keys
    assert _strength([run(0.0, mean_grad_ratio=0.0)]) == "0 (mean)"  # inactive: that flag, not this one
    assert _strength([run(1.0)]) == "-"
