"""The one-run entry point: bad specs write nothing, finished runs are skipped, crashed runs resume exactly."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from model.runs import claims, execute, run_folder, state
from model.runs.spec import Spec
from model.zoo import catalogue as registry

REPO = Path(__file__).resolve().parents[1]
QUICK = {"network": "digits/0", "regulariser": "t2", "weight": 0.1, "batch_size": 128, "max_epochs": 3,
         "checkpoint_every": 2, "optimizer": {"learning_rate": 0.05}}


def write_spec(tmp_path, name="spec.json", **fields):
    spec = {**QUICK, "output_root": str(tmp_path / "out"), **fields}
    path = tmp_path / name
    tmp_path.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec))
    return path


def files_under(folder: Path) -> list:
    return sorted(p for p in folder.rglob("*")) if folder.exists() else []


@pytest.mark.parametrize("change, words", [
    ({"wieght": 0.1}, "unknown field 'wieght'"),
    ({"weight": -1.0}, "field 'weight' = -1.0: expected a finite number >= 0.0"),
    ({"regulariser": "topo"}, "field 'regulariser' = 'topo': expected one of none, t1, t2"),
    ({"network": "cifar/0"}, "network 'cifar/0': expected 'family/id' with family one of"),
    ({"network": "digits/9"}, "'digits/9': unknown id"),
])
def test_bad_spec_one_line_exit_2_nothing_written(tmp_path, capsys, change, words):
    path = write_spec(tmp_path, **change)
    assert execute.main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and err.startswith("error: ")
    assert files_under(tmp_path / "out") == []


def test_missing_mnist_data_exit_2_nothing_written(tmp_path, capsys):
    path = write_spec(tmp_path, network="mnist/0", data_root=str(tmp_path / "no_data"))
    assert execute.main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing" in err and "no_data" in err
    assert files_under(tmp_path / "out") == [] and not (tmp_path / "no_data").exists()


def test_missing_dataset_exit_2_nothing_written(tmp_path, capsys, monkeypatch):
    from model.errors import DataError
    from model.zoo.network import Network

    def network(ident, data_root, profile):
        def load_data():
            raise DataError(f"{data_root / 'mnist'}: MNIST files missing; run the download step first")
        return Network(f"fake/{ident}", "fake", lambda: None, load_data)

    module = type(sys)("fake_zoo")
    module.network = network
    monkeypatch.setitem(sys.modules, "fake_zoo", module)
    monkeypatch.setitem(registry.FAMILIES, "fake", "fake_zoo")
    path = write_spec(tmp_path, network="fake/0", data_root=str(tmp_path / "no_data"))
    assert execute.main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "MNIST files missing" in err
    assert files_under(tmp_path / "out") == []


def test_non_json_exit_2(tmp_path, capsys):
    path = tmp_path / "spec.json"
    path.write_text("network: digits/0\n")
    assert execute.main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not valid JSON" in err and str(path) in err


def test_finished_run_is_skipped_unless_forced(tmp_path, capsys):
    path = write_spec(tmp_path)
    assert execute.main([str(path)]) == 0
    run_dir = Spec.from_file(path).run_dir
    done = run_folder.read_done(run_dir)
    for key in ("task_id", "network", "block", "regulariser", "weight", "seed", "profile", "train_accuracy",
                "val_accuracy", "test_accuracy", "val_loss", "epochs", "best_epoch", "stop_reason", "wall_seconds",
                "versions", "spec"):
        assert key in done
    assert done["task_id"] == "digits/0/t2/0.1/seed_0" and done["epochs"] == 3 and done["block"] == "digits"
    assert set(done["versions"]) == {"python", "tensorflow", "keras", "numpy"}
    assert not (run_dir / run_folder.RUNNING).exists()
    # The run folder's spec.json is itself a runnable spec naming the same run.
    assert Spec.from_file(run_dir / run_folder.SPEC) == Spec.from_file(path)
    stamp = (run_dir / run_folder.DONE).stat().st_mtime_ns
    capsys.readouterr()
    assert execute.main([str(run_dir / run_folder.SPEC)]) == 0
    assert "already done" in capsys.readouterr().out
    assert (run_dir / run_folder.DONE).stat().st_mtime_ns == stamp
    assert execute.main([str(path), "--force"]) == 0
    assert (run_dir / run_folder.DONE).stat().st_mtime_ns != stamp
    assert run_folder.read_done(run_dir)["test_accuracy"] == done["test_accuracy"]  # same seed, same numbers


def test_failed_run_writes_failed_json_never_done_and_reruns(tmp_path, capsys, monkeypatch):
    from model.runs import training

    path = write_spec(tmp_path)
    real_train = training.train

    def crash(*args, **kwargs):
        raise RuntimeError("disk full\nsecond line")

    monkeypatch.setattr(training, "train", crash)
    assert execute.main([str(path)]) == 1
    run_dir = Spec.from_file(path).run_dir
    failed = json.loads((run_dir / run_folder.FAILED).read_text())
    assert failed["error"] == "disk full second line" and failed["type"] == "RuntimeError"
    assert not run_folder.is_done(run_dir) and state.status(run_dir) == "failed"
    assert not (run_dir / run_folder.RUNNING).exists()
    assert capsys.readouterr().err.count("\n") == 1
    monkeypatch.setattr(training, "train", real_train)
    assert execute.main([str(path)]) == 0  # not mistaken for finished: it trains now
    assert run_folder.is_done(run_dir) and not (run_dir / run_folder.FAILED).exists()


def test_a_diverged_run_fails_with_one_readable_line_naming_the_non_finite_quantity(tmp_path, capsys):
    path = write_spec(tmp_path, regulariser="none", weight=0.0, max_epochs=2, optimizer={"learning_rate": 1e12})
    assert execute.main([str(path)]) == 1
    run_dir = Spec.from_file(path).run_dir
    failed = run_folder.read_json(run_dir / run_folder.FAILED)
    reason = failed["error"]
    assert failed["type"] == "FloatingPointError" and "traceback" not in failed
    assert len(reason) < 300 and "\n" not in reason and "Graph execution" not in reason
    assert reason.startswith("epoch 1: the training loss's gradient for digits_mlp/") and "became NaN" in reason
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and reason in err and "train.log" in err
    log = (run_dir / run_folder.LOG).read_text()
    assert log.index(f"FAILED: {reason}") < log.index("Traceback") < log.index("Tensor had NaN values")


def test_an_error_writing_done_json_writes_failed_json(tmp_path, capsys, monkeypatch):
    def broken():
        raise OSError("no keras metadata")

    monkeypatch.setattr(execute, "versions", broken)
    path = write_spec(tmp_path, max_epochs=1)
    assert execute.main([str(path)]) == 1
    run_dir = Spec.from_file(path).run_dir
    assert run_folder.read_json(run_dir / run_folder.FAILED)["error"] == "no keras metadata"
    assert not run_folder.is_done(run_dir) and not (run_dir / run_folder.RUNNING).exists()
    assert "trace in " in capsys.readouterr().err
    log = (run_dir / run_folder.LOG).read_text()
    assert log.index("FAILED: no keras metadata") < log.index("Traceback") and "OSError" in log


def test_other_spec_in_the_same_run_folder_is_refused(tmp_path, capsys):
    assert execute.main([str(write_spec(tmp_path))]) == 0
    other = write_spec(tmp_path, name="other.json", batch_size=64)
    assert execute.main([str(other)]) == 2
    assert "holds a different spec (fields batch_size differ)" in capsys.readouterr().err


def test_live_claim_exit_3(tmp_path, capsys):
    path = write_spec(tmp_path)
    with claims.Claim(Spec.from_file(path).run_dir):
        assert execute.main([str(path)]) == 3
    assert "already running" in capsys.readouterr().err


def command(spec_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
    return dict(args=[sys.executable, "-m", "model.runs.execute", str(spec_path)], cwd=REPO, env=env,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def final_weights(spec):
    net = registry.get_network(spec.network).build_model()
    net.load_weights(str(spec.run_dir / run_folder.WEIGHTS))
    return net.get_weights()


@pytest.mark.slow
def test_sigkill_mid_training_then_same_command_equals_uninterrupted_run(tmp_path):
    # digits/1 has Dropout: the seed-generator state must survive the restart too; t1 uses the NumPy pairing.
    fields = dict(network="digits/1", regulariser="t1", weight=0.01, batch_size=128, max_epochs=9, patience=50,
                  checkpoint_every=3)
    killed_path = write_spec(tmp_path / "killed", **fields)
    whole_path = write_spec(tmp_path / "whole", **fields)
    killed, whole = Spec.from_file(killed_path), Spec.from_file(whole_path)

    process = subprocess.Popen(**command(killed_path))
    history, deadline = killed.run_dir / run_folder.HISTORY, time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:  # kill after epoch 4, past the checkpoint at 3
        if history.exists() and len(history.read_text().splitlines()) > 4:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()
    assert (killed.run_dir / run_folder.CHECKPOINTS / "last.npz").exists()
    assert not run_folder.is_done(killed.run_dir) and state.status(killed.run_dir) == "partial"  # dead claim is stale

    resumed = subprocess.run(**command(killed_path))
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert execute.main([str(whole_path)]) == 0  # the uninterrupted reference, in this process

    a, b = run_folder.read_done(killed.run_dir), run_folder.read_done(whole.run_dir)
    assert a["resumed_from_epoch"] in (3, 6) and b["resumed_from_epoch"] == 0
    for key in ("train_accuracy", "val_accuracy", "test_accuracy", "val_loss", "epochs", "best_epoch",
                "iterations", "regulariser_activity"):
        assert a[key] == b[key], key
    assert a["regulariser_activity"]["steps"] == a["iterations"] == 9 * 9  # counts carried across the checkpoint
    for x, y in zip(final_weights(killed), final_weights(whole), strict=True):
        np.testing.assert_array_equal(x, y)
    drop_seconds = lambda path: [line.rsplit(",", 1)[0] for line in path.read_text().splitlines()]  # noqa: E731
    assert drop_seconds(killed.run_dir / run_folder.HISTORY) == drop_seconds(whole.run_dir / run_folder.HISTORY)

    # train.log: the killed attempt's epochs, the resume marker, then each remaining epoch once, then the result
    log = (killed.run_dir / run_folder.LOG).read_text()
    first, marker, second = log.partition("==== resumed ")
    assert marker and first.count("==== attempt started ") == 1 and "==== " not in second.split("\n", 1)[1]
    epochs = lambda text: [int(m) for m in re.findall(r"INFO model\.runs\.callbacks: epoch (\d+): ", text)]  # noqa: E731
    assert epochs(first)[:4] == [1, 2, 3, 4]
    assert epochs(second) == list(range(a["resumed_from_epoch"] + 1, 10))
    assert f"resuming after epoch {a['resumed_from_epoch']}" in second and "done: test accuracy" in second
    assert all(all(f"{key} " in line for key in ("loss", "ce", "reg", "accuracy", "val_loss", "val_accuracy", "lr",
                                                 "seconds"))
               for line in log.splitlines() if re.search(r"callbacks: epoch \d+: ", line))


EXAMPLES = ["none.json", "t1.json", "t2.json", "l1.json", "l2.json", "corr.json", "decov.json", "t1_paper.json"]


def test_there_is_an_example_spec_per_regulariser_id():
    from model.regularisers.registry import IDS

    assert sorted(IDS) == sorted(name[:-5] for name in EXAMPLES if "_" not in name)


@pytest.mark.parametrize("config", EXAMPLES)
def test_example_configs_are_valid_and_train(tmp_path, config):
    spec = json.loads((REPO / "configs" / "digits" / config).read_text())
    path = write_spec(tmp_path, **{**spec, "max_epochs": 2, "output_root": str(tmp_path / "out")})
    assert execute.main([str(path)]) == 0
    done = run_folder.read_done(Spec.from_file(path).run_dir)
    assert done["epochs"] == 2 and np.isfinite(done["val_loss"]) and done["profile"] == spec["profile"]


@pytest.mark.slow
def test_digits_baseline_config_reaches_90_percent(tmp_path):
    spec = json.loads((REPO / "configs" / "digits" / "none.json").read_text())
    path = write_spec(tmp_path, **{**spec, "output_root": str(tmp_path / "out")})
    assert execute.main([str(path)]) == 0
    assert run_folder.read_done(Spec.from_file(path).run_dir)["test_accuracy"] >= 0.9
