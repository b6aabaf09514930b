"""Run folders → accuracies CSV: finished runs tabulated, every other run listed, bad CSVs refused clearly."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import write_done

from model.analysis import accuracies
from model.errors import DataError
from model.runs import claims, run_folder

ROOT = Path(__file__).resolve().parents[1]


def make_runs(root: Path) -> None:
    write_done(root, "digits/0", "none", 0.0, 0, 0.80, 0.79)
    write_done(root, "digits/0", "t1", 0.01, 0, 0.85, 0.84)
    write_done(root, "digits/1", "t1", 1e-06, 0, 0.70, 0.71)
    failed = root / "digits/1/t2/0.1/seed_0"
    failed.mkdir(parents=True)
    run_folder.write_failed(failed, ValueError("loss became NaN\nat epoch 3"))
    (root / "digits/1/l1/0.1/seed_0").mkdir(parents=True)
    (root / "digits/1/l1/0.1/seed_0/spec.json").write_text("{}")
    (root / "digits/1/l2/0.1/seed_0").mkdir(parents=True)
    (root / "digits/1/l2/0.1/seed_0/DONE.json").write_text("{truncated")


def test_collect_tabulates_finished_and_lists_the_rest(tmp_path):
    make_runs(tmp_path)
    live = tmp_path / "digits/1/corr/0.1/seed_0"
    with claims.Claim(live):
        coll = accuracies.collect(tmp_path)
        expected = ["digits/0/t1/0.01/seed_0", "digits/1/t2/0.1/seed_0", "digits/2/t1/0.01/seed_0"]
        only = accuracies.collect(tmp_path, expected=expected)
    assert list(coll.frame.columns[:7]) == list(accuracies.COLUMNS)
    assert list(coll.frame["task_id"]) == ["digits/0/none/0.0/seed_0", "digits/0/t1/0.01/seed_0",
                                           "digits/1/t1/1e-06/seed_0"]
    assert coll.frame.loc[2, "weight"] == 1e-06 and coll.frame.loc[2, "block"] == "digits"
    status = dict(zip(coll.incomplete["task_id"], coll.incomplete["status"]))
    assert status == {"digits/1/t2/0.1/seed_0": "failed", "digits/1/l1/0.1/seed_0": "pending",
                      "digits/1/l2/0.1/seed_0": "partial", "digits/1/corr/0.1/seed_0": "running"}
    assert list(only.frame["task_id"]) == ["digits/0/t1/0.01/seed_0"]  # a sweep's tasks only
    assert dict(zip(only.incomplete["task_id"], only.incomplete["status"])) == {
        "digits/1/t2/0.1/seed_0": "failed", "digits/2/t1/0.01/seed_0": "missing"}
    detail = dict(zip(coll.incomplete["task_id"], coll.incomplete["detail"]))
    assert detail["digits/1/t2/0.1/seed_0"] == "loss became NaN at epoch 3"
    assert detail["digits/1/l2/0.1/seed_0"] == "DONE.json does not parse as a run's record"


def test_write_read_round_trip_and_no_overwrite(tmp_path):
    make_runs(tmp_path / "runs")
    coll = accuracies.collect(tmp_path / "runs")
    csv, side = accuracies.write(coll, tmp_path / "acc.csv")
    assert csv.read_text().splitlines()[0].startswith("block,network,regulariser,weight,seed,val_accuracy,"
                                                      "test_accuracy,")
    assert len(pd.read_csv(side)) == 3
    back = accuracies.read(csv)
    pd.testing.assert_frame_equal(back[list(accuracies.COLUMNS)], coll.frame[list(accuracies.COLUMNS)])
    with pytest.raises(DataError, match="--force"):
        accuracies.write(coll, tmp_path / "acc.csv")
    accuracies.write(coll, tmp_path / "acc.csv", force=True)


def test_done_without_contract_key_is_listed_and_the_rest_collected(tmp_path):
    run = write_done(tmp_path, "digits/0", "t1", 0.1, 0, 0.5, 0.5)
    write_done(tmp_path, "digits/0", "none", 0.0, 0, 0.5, 0.5)
    record = json.loads((run / "DONE.json").read_text())
    del record["val_accuracy"]
    (run / "DONE.json").write_text(json.dumps(record))
    coll = accuracies.collect(tmp_path)
    assert list(coll.frame["task_id"]) == ["digits/0/none/0.0/seed_0"]
    [(task_id, status, detail)] = coll.incomplete.itertuples(index=False)
    assert (task_id, status) == ("digits/0/t1/0.1/seed_0", "partial")
    assert re.search(r"DONE.json lacks key\(s\) \['val_accuracy'\]", detail)


def test_not_a_folder(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        accuracies.collect(tmp_path / "nope")


HEADER = "block,network,regulariser,weight,seed,val_accuracy,test_accuracy\n"


@pytest.mark.parametrize("content, message", [
    (None, "no such accuracies CSV"),
    ("", "empty file"),
    ("block,network,weight,seed,val_accuracy,test_accuracy\n", r"missing column\(s\) \['regulariser'\]"),
    (HEADER, "no rows"),
    (HEADER + "digits,digits/0,t1,0.1,0,1.5,0.5\n", "val_accuracy 1.5 of network 'digits/0' is outside"),
    (HEADER + "digits,digits/0,t1,0.1,0,0.5,0.5\ndigits,digits/0,t1,0.1,,0.5,0.5\n", "'seed' is empty in row 3"),
    (HEADER + "digits,digits/0,t1,0.1,0,0.5,0.5\ndigits,digits/0,t1,0.1,0,0.6,0.5\n", "more than once"),
    (HEADER + 'digits,"digits/0,t1,0.1,0,0.5,0.5\n', "cannot read the accuracies CSV"),
    (b"\xff\xfe\x00bad", "cannot read the accuracies CSV"),
])
def test_read_refuses_bad_csv(tmp_path, content, message):
    path = tmp_path / "acc.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=message):
        accuracies.read(path)


def test_read_of_a_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="cannot read the accuracies CSV"):
        accuracies.read(tmp_path)


def test_collect_cli(tmp_path):
    make_runs(tmp_path / "runs")
    cmd = [sys.executable, str(ROOT / "accuracies/collect_accuracies.py"), str(tmp_path / "runs"),
           "--out", str(tmp_path / "acc.csv")]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "3 finished runs" in done.stdout and "3 not finished" in done.stdout
    assert "digits/1/t2/0.1/seed_0 is failed" in done.stderr  # listed, not silently dropped
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 2 and again.stderr.strip().endswith("pass --force to overwrite it")
