"""Regression tests of the faults an adversarial pass reproduced, one or more per fault (the number in a test's
name: 01 readers of files another process writes, robust to any content and naming the file; 02 statistics.json
and details.json checked; 03 writers naming the file they could not write; 04 tables whose run paths do not
depend on the reader's folder; 05 treatment names checked against the registry; 06 one confinement rule for every
command that writes run folders; 07 run-state files that are not regular files; 09 linear-time status text and
specs written with one sync). The BLAS thread setting (08) is not covered here.
"""
import errno
import json
import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import HookedWrites, write_done
from test_faults import ROOT, assert_one_line_exit_2, command

from model import atomic, cli
from model.analysis import accuracies, outputs, report
from model.commands import collect_accuracies, extract_statistics, make_report
from model.errors import DataError, SpecError
from model.runs import execute, run_folder, state
from model.runs.spec import Spec
from model.sweeps import grid, slurm, status


def _tasks(out: Path, regulariser="t1", weights=(0.1,)):
    return grid.expand({"base": {"output_root": str(out), "max_epochs": 5},
                        "grid": [{"networks": ["digits/0"], "cells": [{"regulariser": regulariser,
                                                                       "weights": list(weights)}]}]})


def _sweep(root: Path, treatments=("none", "t1", "l2"), networks=("digits/0", "digits/1", "digits/2")) -> Path:
    """Finished run folders (with history.csv) of `treatments` × `networks`, one weight and seed each."""
    for i, net in enumerate(networks):
        for j, treatment in enumerate(treatments):
            acc = 0.8 + 0.03 * j + 0.01 * i
            run = write_done(root, net, treatment, 0.0 if treatment.lower() == "none" else 0.1, 0, acc, acc - 0.01)
            pd.DataFrame({"epoch": [1, 2], "loss": [1.0, 0.7], "accuracy": [0.5, 0.7], "val_accuracy": [0.5, acc],
                          "reg": [0.1, 0.05]}).to_csv(run / run_folder.HISTORY, index=False)
    return root


# ---------------------------------------------------------------------------------------------- 1
@pytest.mark.parametrize("last", ["inf", "nan", "-inf", "1e999", "abc", ""])
def test_01_a_history_with_a_non_finite_last_epoch_does_not_stop_the_status(tmp_path, last):
    (task,) = _tasks(tmp_path / "out")
    task.run_dir.mkdir(parents=True)
    (task.run_dir / run_folder.HISTORY).write_text(f"epoch,loss,val_accuracy\n1,0.5,0.7\n{last},{last},{last}\n")
    rows = status.rows([task])
    assert rows[0]["state"] == "partial" and rows[0]["epoch"] is None and rows[0]["val_accuracy"] is None
    status.text(rows)
    json.dumps(status.as_json(rows), allow_nan=False)  # strict JSON: no NaN/Infinity tokens


@pytest.mark.parametrize("done", [{"task_id": "x", "epochs": "many", "val_accuracy": "high"},
                                  {"task_id": "x", "epochs": float("inf"), "val_accuracy": float("nan")},
                                  {"task_id": "x", "epochs": [], "val_accuracy": {}, "regulariser_activity": []}])
def test_01_a_done_json_of_any_types_gives_a_status_row(tmp_path, done):
    (task,) = _tasks(tmp_path / "out")
    task.run_dir.mkdir(parents=True)
    (task.run_dir / run_folder.DONE).write_text(json.dumps(done))
    rows = status.rows([task])
    assert rows[0]["state"] == "done" and rows[0]["epoch"] is None and rows[0]["val_accuracy"] is None
    status.text(rows)
    json.dumps(status.as_json(rows), allow_nan=False)


def test_01_running_and_failed_records_of_any_types_give_status_lines(tmp_path):
    running, failed = _tasks(tmp_path / "out", weights=(0.1, 0.2))
    running.run_dir.mkdir(parents=True)
    (running.run_dir / run_folder.RUNNING).write_text(json.dumps({"host": ["a"], "heartbeat_unix": time.time()}))
    (running.run_dir / run_folder.HISTORY).write_text("epoch,val_accuracy\n1e999,1e999\n")
    failed.run_dir.mkdir(parents=True)
    (failed.run_dir / run_folder.FAILED).write_bytes(b'{"error": ["x"], "type": 3}')
    rows = status.rows([running, failed])
    assert [r["state"] for r in rows] == ["running", "failed"]
    lines = status.text(rows)
    assert any('host ["a"]' in line for line in lines) and any('["x"]' in line for line in lines)
    json.dumps(status.as_json(rows), allow_nan=False)


def test_01_sweep_status_on_a_nan_history_exits_0(tmp_path):
    sweep = tmp_path / "sweep.json"
    sweep.write_text(json.dumps({"base": {"output_root": str(tmp_path / "out")},
                                 "grid": [{"networks": ["digits/0"], "cells": [{"regulariser": "t1",
                                                                                "weights": [0.1]}]}]}))
    run = tmp_path / "out/digits/0/t1/0.1/seed_0"
    run.mkdir(parents=True)
    (run / run_folder.HISTORY).write_text("epoch,val_accuracy\ninf,nan\n")
    proc = command(["python", ROOT / "scripts/sweep_status.py", sweep], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "internal error" not in proc.stderr


@pytest.mark.parametrize("content", [b"epoch,accuracy,val_accuracy\n1,0.5,0.5\ninf,nan,abc\n", b"\xff\xfe\x00",
                                     b"", b"epoch\n\"unclosed\n", "fifo"])
def test_01_the_reports_training_curves_read_any_history(tmp_path, content):
    _sweep(tmp_path / "runs", networks=("digits/0",))
    run = tmp_path / "runs/digits/0/t1/0.1/seed_0"
    (run / run_folder.HISTORY).unlink()
    if content == "fifo":
        os.mkfifo(run / run_folder.HISTORY)
    else:
        (run / run_folder.HISTORY).write_bytes(content)
    frame = accuracies.collect(tmp_path / "runs").frame
    selected = {t: {"weight": 0.0 if t == "none" else 0.1} for t in ("none", "t1", "l2")}
    histories, _ = report._histories(frame, selected)
    assert {"none", "l2"} <= set(histories)
    if "t1" in histories:
        assert histories["t1"][0].dtypes.map(lambda d: d.kind == "f" or d.kind == "i").all()


@pytest.mark.parametrize("value,needle", [("abc", "'abc'"), ("inf", "'inf'")])
def test_01_a_measures_csv_with_text_or_inf_in_a_number_column_names_the_file(tmp_path, value, needle):
    from model.measures import measures_table as table

    path = tmp_path / "measures.csv"
    path.write_text(",".join(table.COLUMNS) + "\n" + f"r,np_total,{value},,run,digits,digits/0,t1,0.1,0,0.9,0.8\n")
    with pytest.raises(DataError, match=f"{path}: column 'value' holds {needle}"):
        table.read(path)


@pytest.mark.parametrize("field,value", [("val_accuracy", "high"), ("test_accuracy", 7), ("seed", 0.5),
                                         ("weight", float("inf")), ("test_accuracy", None)])
def test_01_a_done_json_with_a_wrong_value_is_listed_not_collected(tmp_path, field, value):
    _sweep(tmp_path / "runs", networks=("digits/0",))
    done = tmp_path / "runs/digits/0/t1/0.1/seed_0" / run_folder.DONE
    done.write_text(json.dumps({**json.loads(done.read_text()), field: value}))
    collection = accuracies.collect(tmp_path / "runs")
    assert len(collection.frame) == 2
    (listed,) = collection.incomplete.itertuples()
    assert listed.status == "partial" and str(done) in listed.detail and field in listed.detail


# ---------------------------------------------------------------------------------------------- 2
@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    root = tmp_path_factory.mktemp("analysed")
    _sweep(root / "runs")
    accuracies.write(accuracies.collect(root / "runs"), root / "accuracies.csv")
    outputs.extract(root / "accuracies.csv", root / "statistics")
    return root


BAD_JSON = [b"", b"{", b'{"selected": ', b"{}", b"[]", b"null", b"\xff\xfe{}", b'{"n_networks": "three", "groups": 3}']


@pytest.mark.parametrize("content", BAD_JSON)
@pytest.mark.parametrize("name", ["statistics.json", "details.json"])
def test_02_make_report_on_a_damaged_statistics_folder_names_the_file(analysed, tmp_path, name, content):
    stats = tmp_path / "statistics"
    shutil.copytree(analysed / "statistics", stats)
    (stats / "combined" / name).write_bytes(content)
    if name == "details.json" and content == b"{}":
        report.read_inputs(analysed / "accuracies.csv", stats, tmp_path / "r")  # an empty details.json is allowed
        return
    with pytest.raises(DataError, match=f"{stats / 'combined' / name}"):
        report.read_inputs(analysed / "accuracies.csv", stats, tmp_path / "r")


def test_02_make_report_command_on_an_empty_statistics_json_is_one_line(analysed, tmp_path):
    stats = tmp_path / "statistics"
    shutil.copytree(analysed / "statistics", stats)
    (stats / "combined" / "statistics.json").write_text("{}")
    proc = command(["python", ROOT / "scripts/make_report.py", "--accuracies", analysed / "accuracies.csv",
                    "--statistics", stats, "--out", tmp_path / "r"], cwd=tmp_path)
    assert_one_line_exit_2(proc, str(stats / "combined" / "statistics.json"))


@pytest.mark.parametrize("field,value", [("selected", []), ("selected", {"digits/0": []}),
                                         ("selected", {"digits/0": {"t1": {"weight": "x"}}}),
                                         ("selected", {"digits/0": {"t1": {}}}), ("paired_tests", {"t1": []}),
                                         ("paired_tests", {"t1": {"n_pairs": 3, "p_improvement_ci95": 0.5}}),
                                         ("friedman", {"chi2": "x"}), ("average_ranks", {"none": 1}),
                                         ("nemenyi_p", {"none": {}}), ("critical_difference", None)])
def test_02_a_statistics_json_with_a_damaged_field_names_the_file(analysed, tmp_path, field, value):
    stats = tmp_path / "statistics"
    shutil.copytree(analysed / "statistics", stats)
    path = stats / "combined" / "statistics.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), field: value}))
    with pytest.raises(DataError, match=f"{path}.*{field}"):
        report.read_inputs(analysed / "accuracies.csv", stats, tmp_path / "r")


# ---------------------------------------------------------------------------------------------- 3
def _no_space(monkeypatch, where: Path):
    """Every write into `where` fails as on a full disk (ENOSPC from os.write and file objects' writes)."""
    real_write, real_fdopen = os.write, os.fdopen
    fds = set()

    def full(data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def fdopen(fd, *args, **kwargs):
        f = real_fdopen(fd, *args, **kwargs)
        return HookedWrites(f, full) if os.readlink(f"/proc/self/fd/{fd}").startswith(str(where)) else f

    def write(fd, data):
        if fd in fds or os.readlink(f"/proc/self/fd/{fd}").startswith(str(where)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "fdopen", fdopen)
    monkeypatch.setattr(os, "write", write)


def test_03_atomic_write_on_a_full_disk_names_the_file(tmp_path, monkeypatch):
    _no_space(monkeypatch, tmp_path)
    with pytest.raises(OSError) as caught:
        atomic.write_text(tmp_path / "table.csv", "a,b\n")
    assert caught.value.filename == str(tmp_path / "table.csv")
    assert cli.one_line(caught.value) == f"{tmp_path / 'table.csv'}: No space left on device"
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_03_commands_on_a_full_disk_name_the_file_they_could_not_write(analysed, tmp_path, monkeypatch, capsys):
    full = tmp_path / "full"
    full.mkdir()
    _no_space(monkeypatch, full)
    assert collect_accuracies.main([str(analysed / "runs"), "--out", str(full / "acc.csv")]) == 2
    assert f"error: {full / 'acc.csv'}: No space left on device" in capsys.readouterr().err
    assert extract_statistics.main(["--accuracies", str(analysed / "accuracies.csv"),
                                    "--out", str(full / "stats")]) == 2
    err = capsys.readouterr().err
    assert f"error: {full / 'stats'}" in err and "No space left on device" in err, err
    assert make_report.main(["--accuracies", str(analysed / "accuracies.csv"), "--statistics",
                             str(analysed / "statistics"), "--out", str(full / "report")]) == 2
    err = capsys.readouterr().err
    assert f"error: {full / 'report'}" in err and "No space left on device" in err, err


def test_03_a_claim_on_a_full_disk_names_the_file(tmp_path, monkeypatch):
    from model.runs import claims

    _no_space(monkeypatch, tmp_path)
    with pytest.raises(OSError) as caught, claims.Claim(tmp_path):
        pass
    assert cli.one_line(caught.value) == f"{tmp_path / run_folder.RUNNING}: No space left on device"
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------- 4
def test_04_run_dirs_in_the_accuracies_csv_do_not_depend_on_the_readers_folder(tmp_path, monkeypatch):
    work, other = tmp_path / "work", tmp_path / "other"
    _sweep(work / "runs")
    # a decoy: another folder holding runs at the same relative paths
    _sweep(other / "runs")
    monkeypatch.chdir(work)
    assert collect_accuracies.main(["runs", "--out", "tables/acc.csv"]) == 0
    assert extract_statistics.main(["--accuracies", "tables/acc.csv", "--out", "tables/stats"]) == 0
    monkeypatch.chdir(other)
    frame = accuracies.read(work / "tables/acc.csv")
    assert all(Path(p).is_absolute() and Path(p).resolve().is_relative_to((work / "runs").resolve())
               for p in frame["run_dir"])
    inp = report.read_inputs(work / "tables/acc.csv", work / "tables/stats", other / "r")
    histories, _ = report._histories(inp.frame[inp.frame["network"] == "digits/0"],
                                  inp.analyses[-1].st["selected"]["digits/0"])
    assert set(histories) == {"none", "t1", "l2"}
    raw = pd.read_csv(work / "tables/acc.csv")
    assert not any(Path(p).is_absolute() for p in raw["run_dir"])  # relative to the CSV's folder: movable together


def test_04_a_table_whose_runs_cannot_be_found_is_an_error_naming_it(tmp_path):
    _sweep(tmp_path / "runs")
    accuracies.write(accuracies.collect(tmp_path / "runs"), tmp_path / "acc.csv")
    outputs.extract(tmp_path / "acc.csv", tmp_path / "stats")
    shutil.move(tmp_path / "runs", tmp_path / "moved")
    with pytest.raises(DataError, match=f"{tmp_path / 'acc.csv'}.*run_dir"):
        report.read_inputs(tmp_path / "acc.csv", tmp_path / "stats", tmp_path / "r")


# ---------------------------------------------------------------------------------------------- 5
def test_05_unknown_or_upper_case_treatments_are_refused_unless_allowed(tmp_path, capsys):
    _sweep(tmp_path / "runs", treatments=("NONE", "T1", "L2"))
    accuracies.write(accuracies.collect(tmp_path / "runs"), tmp_path / "acc.csv")
    with pytest.raises(DataError, match=r"'L2' in row 2 \(and 'NONE', 'T1'\).*did you mean 'l2'.*--allow-unknown"):
        accuracies.read(tmp_path / "acc.csv")
    assert extract_statistics.main(["--accuracies", str(tmp_path / "acc.csv"), "--out", str(tmp_path / "stats")]) == 2
    err = capsys.readouterr().err
    assert "'NONE'" in err and str(tmp_path / "acc.csv") in err
    assert not (tmp_path / "stats").exists()
    frame = accuracies.read(tmp_path / "acc.csv", allow_unknown_treatments=True)
    assert sorted(frame["regulariser"].unique()) == ["L2", "NONE", "T1"]


def test_05_foreign_treatments_with_the_opt_in_run_through_the_statistics(tmp_path, capsys):
    _sweep(tmp_path / "runs", treatments=("none", "dropout", "mixup"))
    accuracies.write(accuracies.collect(tmp_path / "runs"), tmp_path / "acc.csv")
    assert extract_statistics.main(["--accuracies", str(tmp_path / "acc.csv"), "--out", str(tmp_path / "s1")]) == 2
    assert "'dropout'" in capsys.readouterr().err
    assert extract_statistics.main(["--accuracies", str(tmp_path / "acc.csv"), "--out", str(tmp_path / "s2"),
                                    "--allow-unknown-treatments"]) == 0
    st = json.loads((tmp_path / "s2/combined/statistics.json").read_text())
    assert sorted(st["treatments"]) == ["dropout", "mixup", "none"]
    assert make_report.main(["--accuracies", str(tmp_path / "acc.csv"), "--statistics", str(tmp_path / "s2"),
                             "--out", str(tmp_path / "r"), "--allow-unknown-treatments"]) == 0


# ---------------------------------------------------------------------------------------------- 6
def test_06_a_single_run_refuses_a_run_folder_outside_its_root_through_a_symlink(tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "digits").symlink_to(elsewhere, target_is_directory=True)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"network": "digits/0", "regulariser": "none", "max_epochs": 1,
                                "output_root": str(out)}))
    proc = command(["python", ROOT / "scripts/run_experiment.py", spec], cwd=tmp_path)
    assert_one_line_exit_2(proc, "outside the output root")
    assert list(elsewhere.iterdir()) == []
    with pytest.raises(SpecError, match="outside"):
        execute.run(execute.Prepared(Spec.from_file(spec), None, None, None))
    assert list(elsewhere.iterdir()) == []


def test_06_one_rule_for_sweeps_and_single_runs(tmp_path):
    """grid.write_specs and execute.run both call run_folder.check_inside_root (resolve, then check)."""
    out = tmp_path / "out"
    (out / "digits").mkdir(parents=True)
    (out / "digits" / "0").symlink_to(tmp_path, target_is_directory=True)
    (task,) = _tasks(out)
    with pytest.raises(SpecError, match="outside the output root") as sweep_err:
        grid.write_specs([task])
    with pytest.raises(SpecError, match="outside the output root") as run_err:
        run_folder.check_inside_root(task.run_dir, task.spec.output_root)
    assert str(sweep_err.value) == str(run_err.value)


# ---------------------------------------------------------------------------------------------- 7
def _not_regular(path: Path, kind: str) -> None:
    if kind == "directory":
        path.mkdir()
        (path / "inside").write_text("x")
    elif kind == "symlink":
        path.symlink_to(path.parent / "target.json")
        (path.parent / "target.json").write_text(json.dumps({"task_id": "x"}))
    else:
        os.mkfifo(path)


@pytest.mark.parametrize("kind", ["directory", "symlink", "fifo"])
@pytest.mark.parametrize("name", [run_folder.RUNNING, run_folder.DONE, run_folder.FAILED, slurm.RECORD])
def test_07_a_run_state_file_that_is_not_a_regular_file_is_refused_in_one_line(tmp_path, name, kind):
    (task,) = _tasks(tmp_path / "out")
    task.run_dir.mkdir(parents=True)
    _not_regular(task.run_dir / name, kind)
    # readers: no hang on a fifo, no crash, never "done" or "running" on the strength of it
    assert state.status(task.run_dir) in ("failed", "partial", "pending")
    assert run_folder.read_json(task.run_dir / name) is None
    lines = status.text(status.rows([task]))
    shown = f"{task.task_id}: {'DataError: ' * (name == run_folder.FAILED)}{task.run_dir / name}: is a {kind}"
    assert any(line.strip().startswith(shown) for line in lines), lines
    assert status.slurm_table([task]) == []
    # writers: refused before training, naming the file and what it is
    prepared = execute.Prepared(task.spec, None, None, None)
    with pytest.raises(DataError, match=f"{task.run_dir / name}: is a {kind}, not a regular file"):
        execute.run(prepared)
    assert not (task.run_dir / run_folder.HISTORY).exists()


def test_07_run_experiment_with_a_directory_named_done_json_is_one_line(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"network": "digits/0", "regulariser": "none", "max_epochs": 1,
                                "output_root": str(tmp_path / "out")}))
    run = tmp_path / "out/digits/0/none/0.0/seed_0"
    run.mkdir(parents=True)
    (run / run_folder.DONE).mkdir()
    proc = command(["python", ROOT / "scripts/run_experiment.py", spec], cwd=tmp_path)
    assert_one_line_exit_2(proc, f"{run / run_folder.DONE}: is a directory")
    assert sorted(p.name for p in run.iterdir()) == [run_folder.DONE]


# ---------------------------------------------------------------------------------------------- 9
def test_09_status_text_is_linear_in_the_number_of_cells():
    """Counted, not timed: the rows each cell's `acted` column looks at, summed over the cells, is the row count."""
    n_cells = 300
    table = [{"task_id": f"t{i}", "network": f"n{i % 7}", "cell": f"c{i}", "state": "done", "epoch": 1,
              "max_epochs": 1, "val_accuracy": 0.5, "host": None, "heartbeat_age_s": None,
              "applied_fraction": 0.9, **dict.fromkeys(status.RATIO_KEYS), "error": None, "error_type": None}
             for i in range(n_cells)]

    class Counting(dict):
        reads = 0

        def __getitem__(self, key):
            Counting.reads += 1
            return super().__getitem__(key)

    lines = status.text([Counting(r) for r in table])
    assert len(lines) == n_cells + 2 + 1 + 7 + 2
    assert Counting.reads < 20 * n_cells  # the quadratic version reads n_cells² = 90,000 times


def test_09_write_specs_syncs_once_not_once_per_file(tmp_path, monkeypatch):
    calls = {"fsync": 0, "sync": 0}
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.__setitem__("fsync", calls["fsync"] + 1), real_fsync(fd)))
    monkeypatch.setattr(os, "sync", lambda: calls.__setitem__("sync", calls["sync"] + 1))
    tasks = _tasks(tmp_path / "out", weights=[0.1 * i for i in range(1, 41)])
    grid.write_specs(tasks)
    assert calls["fsync"] + calls["sync"] <= 2
    for task in tasks:
        assert json.loads(task.spec_path.read_text()) == task.spec.to_dict()
    assert not [p for p in (tmp_path / "out").rglob(".*.tmp")]
    grid.write_specs(tasks)  # again: equal specs are left alone
    bad = tasks[3]
    bad.spec_path.write_text("{}")
    with pytest.raises(SpecError, match="different spec"):
        grid.write_specs(tasks)
    assert bad.spec_path.read_text() == "{}"


def test_09_write_specs_writes_nothing_when_any_run_folder_holds_another_spec(tmp_path):
    tasks = _tasks(tmp_path / "out", weights=[0.1, 0.2, 0.3])
    tasks[2].spec_path.parent.mkdir(parents=True)
    tasks[2].spec_path.write_text("{}")
    with pytest.raises(SpecError, match="different spec"):
        grid.write_specs(tasks)
    assert not tasks[0].spec_path.exists() and not tasks[1].spec_path.exists()

