"""scripts/measure.py on digits run folders, the tidy measures table, Kendall's τ and the report section."""
import importlib.util
import json
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd
import pytest

from model.measures import measures_table as table
from model.measures import report_section as analysis
from model.measures.compute import measure_model
from model.zoo.catalogue import get_network

_spec = importlib.util.spec_from_file_location("measure", Path(__file__).resolve().parents[1] / "scripts/measure.py")
measure = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(measure)


def make_run(root: Path, network: str, regulariser: str, weight: float, seed: int, train_acc: float, test_acc: float,
             weights: bool = True) -> Path:
    """A finished run folder as training leaves it: the zoo's model with seeded weight noise saved, and DONE.json."""
    task_id = f"{network}/{regulariser}/{weight!r}/seed_{seed}"
    run = root / task_id
    run.mkdir(parents=True)
    model = get_network(network).build_model()
    rng = np.random.default_rng(seed + int(1000 * weight))
    model.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype) for w in model.get_weights()])
    if weights:
        model.save_weights(run / "best.weights.h5")
    spec = {"network": network, "regulariser": regulariser, "weight": weight, "seed": seed, "profile": "corrected",
            "data_root": "data"}
    done = {"task_id": task_id, "network": network, "block": network.split("/")[0], "regulariser": regulariser,
            "weight": weight, "seed": seed, "profile": "corrected", "train_accuracy": train_acc,
            "val_accuracy": test_acc, "test_accuracy": test_acc, "spec": spec}
    (run / "DONE.json").write_text(json.dumps(done))
    return run


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    make_run(root, "digits/0", "none", 0.0, 0, 0.99, 0.95)
    make_run(root, "digits/0", "t1", 0.01, 0, 0.98, 0.96)
    make_run(root, "digits/1", "t1", 0.01, 1, 0.97, 0.94)
    unfinished = root / "digits/0/t2/0.1/seed_0"
    unfinished.mkdir(parents=True)
    (unfinished / "DONE.json").write_text("{truncated")
    return root


def test_measure_script_on_digits_runs(sweep, tmp_path, capsys):
    out = tmp_path / "measures.csv"
    assert measure.main(["--runs", str(sweep), "--out", str(out)]) == 0
    measures = table.read(out)
    assert sorted(measures["run_id"].unique()) == ["digits/0/none/0.0/seed_0", "digits/0/t1/0.01/seed_0",
                                                "digits/1/t1/0.01/seed_1"]
    one = measures[measures["run_id"] == "digits/0/t1/0.01/seed_0"]
    # digits/0: 4 Dense layers → 2 rows each, plus 4 network-level measures
    assert len(one) == 12 and set(one["layer"]) == {"", "0_dense", "1_dense", "2_dense", "3_dense"}
    assert (one["regulariser"] == "t1").all() and (one["weight"] == 0.01).all() and (one["block"] == "digits").all()
    model = get_network("digits/0").build_model()
    model.load_weights(sweep / "digits/0/t1/0.01/seed_0/best.weights.h5")
    expected = {(m, layer): v for m, layer, v in measure_model(model)}
    got = {(m, layer): v for m, layer, v in one[["measure", "layer", "value"]].itertuples(index=False)}
    assert got.keys() == expected.keys()
    assert all(got[k] == pytest.approx(expected[k], rel=1e-12) for k in got)
    assert 0 < got[("np_mean_normalised", "")] < 1 and 0 < got[("dgp_normalised", "")] < 1


def test_existing_rows_are_kept_unless_forced(sweep, tmp_path):
    out = tmp_path / "measures.csv"
    assert measure.main(["--runs", str(sweep), "--out", str(out)]) == 0
    measures = table.read(out)
    measures.loc[measures["measure"] == "dgp", "value"] = -1.0  # marks rows that a recomputation would change
    table.write(measures, out)
    assert measure.main(["--runs", str(sweep), "--out", str(out)]) == 0
    assert (table.read(out).query("measure == 'dgp'")["value"] == -1.0).all()
    assert measure.main(["--runs", str(sweep), "--out", str(out), "--force"]) == 0
    assert (table.read(out).query("measure == 'dgp'")["value"] > 0).all()


def test_bad_runs_are_named_and_the_rest_written(tmp_path, capsys):
    root = tmp_path / "sweep"
    make_run(root, "digits/2", "none", 0.0, 0, 0.9, 0.8)
    make_run(root, "digits/0", "l2", 0.001, 0, 0.9, 0.8, weights=False)
    out = tmp_path / "m.csv"
    assert measure.main(["--runs", str(root), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "digits/0/l2/0.001/seed_0" in err and "best.weights.h5: missing" in err
    assert list(table.read(out)["run_id"].unique()) == ["digits/2/none/0.0/seed_0"]
    assert measure.main(["--runs", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "nowhere: no such folder" in capsys.readouterr().err


# ---------------------------------------------------------------- the synthetic PGDL replica

@pytest.fixture(scope="module")
def replica(tmp_path_factory):
    from model.zoo.pgdl_replica import write_replica

    return write_replica(tmp_path_factory.mktemp("pgdl"))


def test_measure_script_on_the_pgdl_replica(replica, tmp_path):
    from model.zoo.pgdl import build

    out = tmp_path / "pgdl.csv"
    tasks = [replica / "input_data" / t for t in ("task1_v4", "task2_v1")]
    assert measure.main(["--pgdl", str(tasks[0]), "--pgdl", str(tasks[1]), "--out", str(out)]) == 0
    measures = table.read(out)
    ids = [20, 21, 22, 23, 148, 149, 150, 151]
    assert set(measures["run_id"]) == {f"pgdl/task1_v4/{i}" for i in ids} | {f"pgdl/task2_v1/{i}" for i in
                                                                           (239, 240, 612, 613)}
    assert (measures["source"] == "pgdl").all() and (measures["block"] == "pgdl").all()
    configs = json.loads((replica / "reference_data/task1_v4/model_configs.json").read_text())
    m150 = measures[measures["run_id"] == "pgdl/task1_v4/150"]
    assert (m150["test_accuracy"] == configs["150"]["metrics"]["test_acc"]).all()
    # VGG-like: 2 Conv2D (channel_max graphs) + 2 Dense for ids >= 148 + the logits Dense
    assert (m150["measure"] == "np_layer").sum() == 5
    expected = {(m, layer): v for m, layer, v in measure_model(build(tasks[0] / "model_150", "weights.hdf5"))}
    got = {(m, layer): v for m, layer, v in m150[["measure", "layer", "value"]].itertuples(index=False)}
    assert got == pytest.approx(expected, rel=1e-12)
    init = {(m, layer): v for m, layer, v in measure_model(build(tasks[0] / "model_150", "weights_init.hdf5"))}
    assert got[("dgp", "")] != pytest.approx(init[("dgp", "")], rel=1e-6)  # the trained weights were measured
    taus = analysis.kendall(measures)
    assert set(taus["population"]) == {"pgdl: task1_v4", "pgdl: task2_v1"}
    assert (taus.loc[taus["population"] == "pgdl: task1_v4", "n"] == 8).all()
    assert taus["tau"].between(-1, 1).all()


def test_pgdl_without_reference_data_is_named(replica, tmp_path, capsys):
    task = tmp_path / "input_data" / "task1_v4"
    (task / "model_20").mkdir(parents=True)
    assert measure.main(["--pgdl", str(task), "--out", str(tmp_path / "m.csv")]) == 2
    assert "reference_data/task1_v4/model_configs.json: cannot be read" in capsys.readouterr().err
    assert not (tmp_path / "m.csv").exists()


@pytest.mark.slow
def test_measures_of_digits_runs_trained_by_the_experiment_entry_point(tmp_path):
    """Two digits runs trained for 2 epochs by `python -m model.runs.execute`, then measured and analysed."""
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    for regulariser, weight in (("none", 0.0), ("t1", 0.01)):
        spec = json.loads((repo / "configs/digits" / f"{regulariser}.json").read_text())
        spec.update(weight=weight, max_epochs=2, batch_size=128, output_root=str(tmp_path / "runs"))
        path = tmp_path / f"{regulariser}.json"
        path.write_text(json.dumps(spec))
        subprocess.run([sys.executable, "-m", "model.runs.execute", str(path)], check=True, cwd=repo,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, capture_output=True)
    out = tmp_path / "measures.csv"
    assert measure.main(["--runs", str(tmp_path / "runs"), "--out", str(out)]) == 0
    measures = table.read(out)
    assert set(measures["run_id"]) == {"digits/0/none/0.0/seed_0", "digits/0/t1/0.01/seed_0"}
    per_reg = analysis.per_regulariser(measures)
    assert list(per_reg["regulariser"]) == ["none", "t1"]
    assert per_reg["np_mean_normalised_mean"].between(0, 1).all()
    assert per_reg["gap_mean"].between(-1, 1).all()
    text = analysis.measures_section(out, None, tmp_path / "report")
    assert "2 trained runs, 0 PGDL models" in text


# ---------------------------------------------------------------- analysis on a table with known values

def synthetic_table():
    """4 PGDL models and 6 runs (2 regularisers × weights × seeds) with chosen measures and accuracies."""
    rows = []

    def net(run_id, source, block, reg, weight, seed, train, test, np_value, dgp_value):
        for m, v in [("np_mean_normalised", np_value), ("np_total", 3 * np_value), ("dgp_normalised", dgp_value),
                     ("dgp", 2 * dgp_value)]:
            rows.append(dict(run_id=run_id, measure=m, value=v, layer="", source=source, block=block,
                             network=run_id if source == "pgdl" else f"{block}/0", regulariser=reg, weight=weight,
                             seed=seed, train_accuracy=train, test_accuracy=test))
        rows.append(dict(run_id=run_id, measure="np_layer", value=9.0, layer="0_dense", source=source, block=block,
                         network=run_id, regulariser=reg, weight=weight, seed=seed, train_accuracy=train,
                         test_accuracy=test))

    # PGDL: gaps .1 .3 .2 .4 against NP 1 2 3 4 → one discordant pair of 6: τ = (5 − 1)/6; DGP 4 3 2 1: τ = −4/6
    for i, (gap, np_v, dgp_v) in enumerate([(0.1, 1, 4), (0.3, 2, 3), (0.2, 3, 2), (0.4, 4, 1)]):
        net(f"pgdl/task1_v4/{20 + i}", "pgdl", "pgdl", "", math.nan, math.nan, 0.9, 0.9 - gap, np_v / 10, dgp_v / 10)
    for reg, weight, seed, np_v in [("none", 0.0, 0, 0.50), ("none", 0.0, 1, 0.52), ("t1", 0.01, 0, 0.60),
                                    ("t1", 0.01, 1, 0.64), ("t1", 0.1, 0, 0.70), ("t1", 0.1, 1, 0.74)]:
        net(f"digits/0/{reg}/{weight!r}/seed_{seed}", "run", "digits", reg, weight, seed, 1.0, 1.0 - np_v / 10,
            np_v, 0.3)
    return pd.DataFrame(rows)[table.COLUMNS]


def test_kendall_tau_against_hand_values():
    taus = analysis.kendall(synthetic_table()).set_index(["population", "measure"])
    assert taus.loc[("pgdl: task1_v4", "np_mean_normalised"), "tau"] == pytest.approx(4 / 6)
    assert taus.loc[("pgdl: task1_v4", "np_total"), "tau"] == pytest.approx(4 / 6)
    assert taus.loc[("pgdl: task1_v4", "dgp_normalised"), "tau"] == pytest.approx(-4 / 6)
    assert taus.loc[("pgdl: task1_v4", "dgp"), "n"] == 4
    assert taus.loc[("runs: digits", "np_mean_normalised"), "tau"] == pytest.approx(1.0)  # gap = NP / 10
    assert math.isnan(taus.loc[("runs: digits", "dgp_normalised"), "tau"])  # constant measure
    assert ("runs: all", "dgp") not in taus.index  # a single block of runs


def test_per_regulariser_means_and_stds():
    measures = analysis.per_regulariser(synthetic_table()).set_index(["regulariser", "weight"])
    assert measures.loc[("t1", 0.01), "np_mean_normalised_mean"] == pytest.approx(0.62)
    assert measures.loc[("t1", 0.01), "np_mean_normalised_std"] == pytest.approx(np.std([0.60, 0.64], ddof=1))
    assert measures.loc[("none", 0.0), "gap_mean"] == pytest.approx(0.051)
    assert (measures["n"] == 2).all() and len(measures) == 3


def test_accuracies_csv_overrides_run_accuracies():
    measures = synthetic_table()
    acc = pd.DataFrame({"task_id": ["digits/0/t1/0.1/seed_1"], "train_accuracy": [0.5], "test_accuracy": [0.25]})
    merged = analysis.wide(analysis.with_accuracies(measures, acc)).set_index("run_id")
    assert merged.loc["digits/0/t1/0.1/seed_1", "gap"] == pytest.approx(0.25)
    assert merged.loc["digits/0/t1/0.01/seed_0", "gap"] == pytest.approx(0.06)


def test_measures_section_writes_figures_and_tables(tmp_path):
    csv = tmp_path / "measures.csv"
    table.write(synthetic_table(), csv)
    acc = tmp_path / "accuracies.csv"
    pd.DataFrame({"block": ["digits"], "network": ["digits/0"], "regulariser": ["t1"], "weight": [0.1], "seed": [1],
                  "val_accuracy": [0.3], "test_accuracy": [0.25], "train_accuracy": [0.5],
                  "task_id": ["digits/0/t1/0.1/seed_1"]}).to_csv(acc, index=False)
    text = analysis.measures_section(csv, acc, tmp_path / "report")
    assert text.startswith("## Neural persistence and deep graph persistence")
    assert "6 trained runs, 4 PGDL models" in text
    assert "| digits | T1 | 0.01 | 2 | 0.6200 ± 0.0283 |" in text
    assert "| pgdl: task1_v4 | DGP (normalised) | 4 | -0.667 |" in text
    for png in ("measures_by_weight.png", "measures_vs_gap.png"):
        assert f"]({png})" in text
        assert (tmp_path / "report" / png).read_bytes()[:4] == b"\x89PNG"
