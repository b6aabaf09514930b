"""Commands explain themselves: usage names the command as typed, every --help has examples and exit codes, every
command has --version, the CSV readers list the accuracies CSV's columns; a hand-made method × data set table is
enough input; single runs take --set; a never-started sweep is pending, not partial."""
import importlib
import json
import subprocess
import sys

import pandas as pd
import pytest
from conftest import REPO

from model import cli
from model.version import version

COMMANDS = sorted(cli.ENTRY_FILES)


def main_of(script: str):
    return importlib.import_module(f"model.commands.{script.replace('-', '_')}").main


def test_every_command_is_a_console_script_and_an_entry_file():
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {f"dnp-{c}": f"model.commands.{c.replace('-', '_')}:main" for c in COMMANDS}
    for script, entry in cli.ENTRY_FILES.items():
        assert f"from model.commands.{script.replace('-', '_')} import main" in (REPO / entry).read_text()
    readme = (REPO / "README.md").read_text()
    assert [c for c in COMMANDS if f"`dnp-{c}`" not in readme] == []


@pytest.mark.parametrize("script", COMMANDS)
def test_help_has_usage_as_typed_examples_and_exit_codes(script, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", [f"/usr/local/bin/dnp-{script}"])
    with pytest.raises(SystemExit) as done:
        main_of(script)(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: dnp-{script} ")
    examples = out[out.index("\nexamples:\n"):out.index("\nexit status:\n")]
    assert f"\n  dnp-{script}" in examples
    codes = out[out.index("\nexit status:\n"):].splitlines()[2:]
    assert [line.split()[0] for line in codes][:1] == ["0"] and "130" in [line.split()[0] for line in codes]
    if script in ("collect-accuracies", "extract-statistics", "make-report"):  # they write or read the CSV
        assert "network, regulariser, test_accuracy   required" in out and "val_accuracy  default" in out

    with pytest.raises(SystemExit) as done:
        main_of(script)(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"dnp-{script} (decorrelating-neurons) {version()}"


def test_usage_follows_how_the_command_was_started(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["scripts/run_sweep.py"])
    assert (cli.prog("run-sweep", own=True), cli.prog("sweep-status")) == ("python scripts/run_sweep.py",
                                                                          "python scripts/sweep_status.py")
    monkeypatch.setattr(sys, "argv", [str(REPO / "model" / "runs" / "execute.py")])
    assert cli.prog("run-experiment", own=True) == "python -m model.runs.execute"
    assert cli.prog("sweep-status") == "python -m model.commands.sweep_status"
    monkeypatch.setattr(sys, "argv", ["/venv/bin/dnp-run-sweep"])
    assert cli.prog("sweep-status") == "dnp-sweep-status"


def test_version_comes_from_pyproject():
    import tomllib

    assert version() == tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def test_a_hand_made_method_by_data_set_table_is_enough(tmp_path, capsys):
    from model.analysis import accuracies
    from model.commands import extract_statistics

    table = pd.DataFrame({"network": [d for d in ("iris", "wine", "digits", "cancer") for _ in range(3)],
                          "regulariser": ["none", "t1", "t2"] * 4,
                          "test_accuracy": [0.90, 0.92, 0.93, 0.80, 0.83, 0.81, 0.95, 0.96, 0.97, 0.91, 0.93, 0.92]})
    table.to_csv(tmp_path / "acc.csv", index=False)
    frame = accuracies.read(tmp_path / "acc.csv")
    assert (frame["block"] == "all").all() and (frame["seed"] == 0).all()
    assert list(frame["weight"][:3]) == [0.0, 1.0, 1.0]  # the baseline at 0, a method as given at 1
    assert frame["val_accuracy"].equals(frame["test_accuracy"])
    assert extract_statistics.main(["--accuracies", str(tmp_path / "acc.csv"), "--out", str(tmp_path / "s")]) == 0
    stats = json.loads((tmp_path / "s" / "all" / "statistics.json").read_text())
    assert stats["n_networks"] == 4
    capsys.readouterr()

    # several weights and no val_accuracy: there is nothing honest to select on
    pd.concat([table.assign(weight=0.1), table.assign(weight=1.0)]).to_csv(tmp_path / "w.csv", index=False)
    assert extract_statistics.main(["--accuracies", str(tmp_path / "w.csv"), "--out", str(tmp_path / "w")]) == 2
    assert "no column 'val_accuracy'" in capsys.readouterr().err


def test_extract_statistics_takes_the_csv_once(tmp_path, capsys):
    from model.commands import extract_statistics

    assert extract_statistics.main(["a.csv", "--accuracies", "b.csv", "--out", str(tmp_path / "s")]) == 2
    assert "give the accuracies CSV once" in capsys.readouterr().err


def test_a_never_started_sweep_is_pending_and_single_runs_take_set(tmp_path, capsys):
    from model.commands import sweep_status
    from model.runs import execute
    from model.sweeps import grid

    sweep = json.loads((REPO / "configs" / "digits" / "sweep_small.json").read_text())
    sweep["base"]["output_root"] = str(tmp_path / "out")
    (tmp_path / "sweep.json").write_text(json.dumps(sweep))
    tasks = grid.load(tmp_path / "sweep.json")
    grid.write_specs(tasks)  # what the driver does before any task starts
    assert sweep_status.main([str(tmp_path / "sweep.json"), "--json"]) == 0
    totals = json.loads(capsys.readouterr().out)["totals"]
    assert totals["pending"] == len(tasks) and totals["partial"] == 0 and totals["running"] == 0

    spec = tasks[0].spec_path
    assert execute.main([str(spec), "--set", "max_epoch=2"]) == 2  # a misspelt field: one line, nothing written
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "with --set" in err and "max_epochs" in err
    assert execute.main([str(spec), "--set", "max_epochs=1"]) == 2  # the run folder holds the spec without --set
    assert "holds a different spec" in capsys.readouterr().err


def test_scripts_start_as_typed_outside_the_checkout(tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "sweep_status.py"), "--help"], cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith(f"usage: python {REPO / 'scripts' / 'sweep_status.py'} ")


def test_a_task_is_running_from_its_process_start_and_bad_input_leaves_no_claim(tmp_path, monkeypatch, capsys):
    from model.errors import DataError
    from model.runs import execute, run_folder, state
    from model.sweeps import grid

    sweep = json.loads((REPO / "configs" / "digits" / "sweep_small.json").read_text())
    sweep["base"]["output_root"] = str(tmp_path / "out")
    (tmp_path / "sweep.json").write_text(json.dumps(sweep))
    task = grid.load(tmp_path / "sweep.json")[0]
    grid.write_specs([task])
    seen = []

    def slow_prepare(spec):  # what takes 10-20 s in a real process: TensorFlow, the data
        seen.append(state.status(spec.run_dir))
        raise DataError("data/digits: missing")

    monkeypatch.setattr(execute, "prepare", slow_prepare)
    assert execute.main([str(task.spec_path)]) == 2
    assert seen == ["running"]  # claimed before anything slow
    assert "data/digits: missing" in capsys.readouterr().err
    assert sorted(p.name for p in task.run_dir.iterdir()) == [run_folder.SPEC]  # the claim is gone again
    assert state.status(task.run_dir) == "pending"


def test_licence_citation_and_changelog():
    import yaml

    assert "BSD 3-Clause License" in (REPO / "LICENSE").read_text()
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["license"] == "BSD-3-Clause"
    paper = citation["preferred-citation"]
    assert paper["title"] == "Decorrelating neurons using persistence"
    assert [a["family-names"] for a in paper["authors"]] == ["Ballester", "Casacuberta", "Escalera"]
    assert f"## [{version()}]" in (REPO / "CHANGELOG.md").read_text()  # the released version has its entry
