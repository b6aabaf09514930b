"""PGDL zoo on a synthetic replica: file formats, model building, the split, the loopback download, training.

The replica (model.zoo.pgdl_replica) is written by the tests: 8×8×3 inputs, widths 4–8, 80 training and 30 test
examples, the real formats (config.json, Keras 2.4 HDF5, TFRecord, model_configs.json).
"""
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from download_server import LoopbackServer

from model.errors import DataError, SpecError
from model.files import keras_h5, tfrecord
from model.zoo import pgdl, pgdl_fetch, pgdl_replica
from model.zoo.catalogue import get_network
from model.zoo.pgdl_split import split_indices

TASK = "input_data/task1_v4"


@pytest.fixture(scope="module")
def replica(tmp_path_factory) -> Path:
    """A data root whose pgdl/ folder is the replica tree."""
    root = tmp_path_factory.mktemp("data")
    pgdl_replica.write_replica(root / "pgdl")
    return root


@pytest.fixture(scope="module")
def archive(replica, tmp_path_factory) -> bytes:
    """The replica zipped like the public archive, plus a 1 MB member the paper does not need."""
    path = pgdl_replica.write_zip(replica / "pgdl", tmp_path_factory.mktemp("zip") / "public_data.zip")
    with zipfile.ZipFile(path, "a", zipfile.ZIP_STORED) as zf:
        zf.writestr("input_data/task2_v1/dataset_1/train/shard_9.tfrecord", os.urandom(1 << 20))
    return path.read_bytes()


def needed_names(archive_bytes: bytes) -> set[str]:
    import io

    return {n for n in zipfile.ZipFile(io.BytesIO(archive_bytes)).namelist() if pgdl_fetch.wanted(n)}


# --- formats -------------------------------------------------------------------------------------------------------

def test_tfrecord_crc_test_vectors_and_label_bytes():
    assert tfrecord.crc32c(b"123456789") == 0xE3069283
    assert tfrecord.masked_crc32c(b"123456789") == 0xC78AB0E5
    assert tfrecord.frame(b"0123456789")[:12] == bytes.fromhex("0a00000000000000") + (0x3ABFA3AE).to_bytes(4, "little")
    assert tfrecord.tensor_proto(np.int32(0)) == bytes.fromhex("08031200220400000000")


def test_tfrecord_writer_matches_tensorflow(tmp_path):
    import tensorflow as tf

    x = np.random.default_rng(0).random((4, 3, 2), dtype=np.float32)
    assert tfrecord.tensor_proto(x) == tf.io.serialize_tensor(tf.constant(x)).numpy()
    features = tf.train.Example.FromString(tfrecord.example(x, 7)).features.feature
    assert sorted(features) == ["inputs", "output"]
    np.testing.assert_array_equal(tf.io.parse_tensor(features["inputs"].bytes_list.value[0], tf.float32), x)
    shard = tmp_path / "shard_0.tfrecord"
    tfrecord.write_shard(shard, np.stack([x, x + 1]), np.array([3, 4]))
    xs, ys = tfrecord.read_shard(shard)
    assert xs.shape == (2, 4, 3, 2) and xs.dtype == np.float32 and ys.tolist() == [3, 4] and ys.dtype == np.int32


def test_truncated_tfrecord_names_the_file(tmp_path):
    shard = tmp_path / "shard_0.tfrecord"
    tfrecord.write_shard(shard, np.zeros((3, 2, 2, 3)), np.arange(3))
    shard.write_bytes(shard.read_bytes()[:-7])
    with pytest.raises(DataError, match=r"shard_0.tfrecord: not a readable TFRecord .*truncated record"):
        tfrecord.read_shard(shard)


def test_hdf5_layout_is_keras_2_4(replica):
    import h5py

    with h5py.File(replica / "pgdl" / TASK / "model_20" / "weights_init.hdf5") as f:
        assert f.attrs["keras_version"] == "2.4.0" and f.attrs["backend"] == "tensorflow"
        names = [n.decode() for n in f.attrs["layer_names"]]
        assert names[:4] == ["conv2d_1", "conv2d_2", "maxpooling2d_1", "flatten_1"] and "dropout_1" in names
        assert len(f["flatten_1"].attrs["weight_names"]) == 0
        assert [n.decode() for n in f["conv2d_1"].attrs["weight_names"]] == ["conv2d_1/kernel:0", "conv2d_1/bias:0"]
        assert f["conv2d_1/conv2d_1/kernel:0"].shape == (3, 3, 3, 4)


def test_our_hdf5_reader_agrees_with_keras_load_weights(replica):
    import keras

    model = get_network("pgdl/task1_v4/150", replica).build_model()
    other = keras.models.clone_model(model)  # fresh random weights
    other.load_weights(replica / "pgdl" / TASK / "model_150" / "weights_init.hdf5")
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)


# --- model building ------------------------------------------------------------------------------------------------

def test_loaded_model_predicts_like_the_architecture_built_by_hand(replica):
    import h5py
    import keras

    model = get_network("pgdl/task1_v4/151", replica).build_model()
    assert model.input_shape == (None, 8, 8, 3) and model.output_shape == (None, 10)
    hand = keras.Sequential([
        keras.Input((8, 8, 3)),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2), keras.layers.Flatten(),
        keras.layers.Dense(16, activation="relu"), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(10)])
    with h5py.File(replica / "pgdl" / TASK / "model_151" / "weights_init.hdf5") as f:
        groups = ["conv2d_1", "conv2d_2", "dense_1", "dense_2", "dense_3"]
        hand.set_weights([np.asarray(f[f"{g}/{g}/{w}:0"]) for g in groups for w in ("kernel", "bias")])
    x = np.random.default_rng(1).uniform(-0.5, 0.5, (5, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), hand.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_init_and_trained_weights_and_fixed_initialisation(replica):
    folder = replica / "pgdl" / TASK / "model_20"
    first, second = pgdl.build(folder), get_network("pgdl/task1_v4/20", replica).build_model()
    trained = pgdl.build(folder, "weights.hdf5")
    for a, b, c in zip(first.get_weights(), second.get_weights(), trained.get_weights()):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)
    assert [type(layer).__name__ for layer in first.layers].count("Dropout") == 1
    assert first.layers[1].filters == 4 and isinstance(first.layers[1].filters, int)  # 4.0 in config.json


def write_config(folder: Path, layers, shape=(8, 8, 3)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_config": layers, "input_shape": list(shape)}))
    return folder


def test_config_errors_name_the_file_and_what_was_expected(tmp_path):
    folder = write_config(tmp_path / "unknown", [{"layer_name": "LSTM", "units": 3}])
    with pytest.raises(DataError, match=r"unknown/config.json: model_config\[0\] has layer_name 'LSTM', expected one"):
        pgdl.build(folder)
    folder = write_config(tmp_path / "badarg", [{"layer_name": "Dense", "unitz": 3}])
    with pytest.raises(DataError, match=r"badarg/config.json: model_config\[0\] \(Dense\) cannot be built"):
        pgdl.build(folder)
    folder = write_config(tmp_path / "shape", [{"layer_name": "Dense", "units": 3}], shape=())
    with pytest.raises(DataError, match=r"shape/config.json: 'input_shape' is \[\], expected a list"):
        pgdl.build(folder)
    (tmp_path / "json" / "config.json").parent.mkdir()
    (tmp_path / "json" / "config.json").write_text("{not json")
    with pytest.raises(DataError, match="json/config.json: not valid JSON"):
        pgdl.build(tmp_path / "json")
    folder = write_config(tmp_path / "noweights", [{"layer_name": "Flatten"}, {"layer_name": "Dense", "units": 3}])
    with pytest.raises(DataError, match="noweights/weights_init.hdf5: file not found"):
        pgdl.build(folder)


def test_weight_file_that_does_not_fit_names_file_and_layer(replica, tmp_path):
    folder = write_config(tmp_path / "m", [{"layer_name": "Flatten"}, {"layer_name": "Dense", "units": 3}])
    keras_h5.write_weights(folder / "weights_init.hdf5", [("dense", [("kernel", np.zeros((4, 3))),
                                                                     ("bias", np.zeros(3))])])
    with pytest.raises(DataError, match=r"m/weights_init.hdf5: layer .* gets weights of shapes \[\(4, 3\), \(3,\)\], "
                                        r"expected \[\(192, 3\), \(3,\)\]"):
        pgdl.build(folder)
    keras_h5.write_weights(folder / "weights_init.hdf5", [])
    with pytest.raises(DataError, match="weights for 0 layers, expected 1"):
        pgdl.build(folder)


def test_weight_decay_in_config_is_dropped_with_a_warning(tmp_path, caplog):
    folder = write_config(tmp_path / "wd", [{"layer_name": "Flatten"},
                                            {"layer_name": "Dense", "units": 3, "kernel_regularizer": "l2"}])
    keras_h5.write_weights(folder / "weights_init.hdf5", [("flatten", []), ("dense", [("kernel", np.ones((192, 3))),
                                                                                       ("bias", np.zeros(3))])])
    model = pgdl.build(folder)
    assert not model.losses and "kernel_regularizer ignored" in caplog.text


# --- data and split ------------------------------------------------------------------------------------------------

def test_split_is_disjoint_exhaustive_stratified_and_seeded():
    labels = np.repeat(np.arange(10), 5000)
    np.random.default_rng(3).shuffle(labels)
    train, val = split_indices(labels, seed=0)
    assert len(val) == 10000 and len(train) == 40000
    assert np.intersect1d(train, val).size == 0 and np.union1d(train, val).size == len(labels)
    assert np.bincount(labels[val]).tolist() == [1000] * 10
    again, other = split_indices(labels, seed=0), split_indices(labels, seed=1)
    np.testing.assert_array_equal(val, again[1])
    np.testing.assert_array_equal(train, again[0])
    assert not np.array_equal(val, other[1])


def test_leaky_split_emulates_the_original():
    labels = np.repeat(np.arange(10), 5000)
    train, val = split_indices(labels, seed=0, leaky=True)
    assert np.bincount(labels[val]).tolist() == [1000] * 10 and len(train) == 40000
    overlap = np.intersect1d(train, val).size / len(val)
    unused = len(labels) - np.union1d(train, val).size
    # Q-leaky-split (docs/quirks.md): ≈800 of the 1,000 validation images per class also in train,
    # ≈800 per class in neither
    assert 0.75 < overlap < 0.85 and 7500 < unused < 8500


def test_load_data_from_the_replica(replica):
    splits = get_network("pgdl/task1_v4/20", replica, "corrected").load_data()
    assert splits.x_train.shape == (60, 8, 8, 3) and splits.x_val.shape == (20, 8, 8, 3)
    assert splits.x_test.shape == (30, 8, 8, 3)
    assert splits.x_train.dtype == np.float32 and splits.y_train.dtype == np.int32
    assert np.bincount(splits.y_val).tolist() == [2] * 10
    train_rows = {row.tobytes() for row in splits.x_train}
    assert not any(row.tobytes() in train_rows for row in splits.x_val)  # zero overlap, checked on the images
    again = get_network("pgdl/task1_v4/21", replica, "corrected").load_data()
    np.testing.assert_array_equal(splits.x_val, again.x_val)
    paper = get_network("pgdl/task1_v4/20", replica, "paper").load_data()
    assert len(paper.x_val) == 20 and len(paper.x_train) == 60


def test_missing_data_and_bad_names(tmp_path):
    with pytest.raises(SpecError, match="expected 'pgdl/<task>/<model id>'"):
        get_network("pgdl/task1_v4", tmp_path)
    with pytest.raises(SpecError, match="profile 'quick'"):
        get_network("pgdl/task1_v4/20", tmp_path, "quick")
    network = get_network("pgdl/task1_v4/20", tmp_path)
    with pytest.raises(DataError, match="model_20: missing .* run scripts/download_pgdl.py"):
        network.build_model()
    with pytest.raises(DataError, match="dataset_1/train: missing .* run scripts/download_pgdl.py"):
        network.load_data()
    (tmp_path / "pgdl" / TASK / "dataset_1" / "train").mkdir(parents=True)
    (tmp_path / "pgdl" / TASK / "dataset_1" / "test").mkdir(parents=True)
    with pytest.raises(DataError, match="train: no shard_<k>.tfrecord files"):
        network.load_data()


# --- download ------------------------------------------------------------------------------------------------------

@pytest.fixture()
def pins(archive, tmp_path):
    """A pin file holding the SHA-256 of every needed member of the fixture archive (computed with zipfile)."""
    import hashlib
    import io

    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        digests = {n: hashlib.sha256(z.read(n)).hexdigest() for n in z.namelist() if pgdl_fetch.wanted(n)}
    path = tmp_path / "pins.json"
    path.write_text(json.dumps({"url": "loopback", "sha256": digests}))
    return path


def test_range_download_fetches_only_needed_members(archive, tmp_path, replica, pins):
    with LoopbackServer({"/public_data.zip": archive}) as server:
        paths = pgdl_fetch.fetch(tmp_path, server.url + "/public_data.zip", retry_wait_s=0, pins=(pins,))
        requests, sent = len(server.log), server.bytes_sent("/public_data.zip")
        assert pgdl_fetch.fetch(tmp_path, server.url + "/public_data.zip", retry_wait_s=0, pins=(pins,)) == paths
        assert len(server.log) == requests + 1  # a second run only reads the archive's end: files are CRC-checked
    root = tmp_path / "pgdl"
    got = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert got == needed_names(archive) | {"MANIFEST.json"}
    assert len(paths) == 8 * 3 + 3 + 1  # 8 models × 3 files, 3 shards, model_configs.json
    assert sent < len(archive) - (1 << 20)  # the 1 MB member never travelled
    assert all(status == 206 for _, _, status, _ in server.log)
    manifest = json.loads((root / "MANIFEST.json").read_text())
    assert set(manifest["members"]) == needed_names(archive)
    for name in ("model_20/weights_init.hdf5", "dataset_1/train/shard_1.tfrecord"):
        assert (root / TASK / name).read_bytes() == (replica / "pgdl" / TASK / name).read_bytes()
    np.testing.assert_array_equal(get_network("pgdl/task1_v4/23", tmp_path).build_model().get_weights()[0],
                                  get_network("pgdl/task1_v4/23", replica).build_model().get_weights()[0])


def member_data_range(archive_bytes: bytes, name: str) -> tuple[int, int]:
    """[start, stop) of a member's compressed bytes in the archive."""
    import io
    import struct

    info = zipfile.ZipFile(io.BytesIO(archive_bytes)).getinfo(name)
    name_len, extra_len = struct.unpack_from("<HH", archive_bytes, info.header_offset + 26)
    start = info.header_offset + 30 + name_len + extra_len
    return start, start + info.compress_size


def test_cut_connection_mid_member_resumes(archive, tmp_path, pins):
    name = f"{TASK}/dataset_1/train/shard_0.tfrecord"
    start, stop = member_data_range(archive, name)
    with LoopbackServer({"/p.zip": archive}, cuts={"/p.zip": {start: 1000, start + 1000: 0}}) as server:
        with pytest.raises(DataError, match="download failed after 1 attempt "):
            pgdl_fetch.fetch(tmp_path, server.url + "/p.zip", retries=0, retry_wait_s=0, pins=(pins,))
        final = tmp_path / "pgdl" / name
        assert not final.exists()  # never under its final name while incomplete
        assert Path(f"{final}.part").stat().st_size == 1000
        pgdl_fetch.fetch(tmp_path, server.url + "/p.zip", retry_wait_s=0, pins=(pins,))  # a later run resumes the .part
    assert f"bytes={start + 1000}-{stop - 1}" in [entry[1] for entry in server.log]
    assert not list((tmp_path / "pgdl").rglob("*.part")) and not list((tmp_path / "pgdl").rglob("*.tmp"))
    xs, _ = tfrecord.read_shard(final)
    assert xs.shape[1:] == (8, 8, 3)


def test_corrupted_member_is_rejected(archive, tmp_path, pins):
    name = "reference_data/task1_v4/model_configs.json"
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as src, zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    corrupted = bytearray(buffer.getvalue())
    start, _ = member_data_range(bytes(corrupted), name)
    corrupted[start + 5] ^= 0xFF
    with LoopbackServer({"/p.zip": bytes(corrupted)}) as server:
        with pytest.raises(DataError, match=f"member {name} has CRC-32 [0-9a-f]{{8}} .* expected [0-9a-f]{{8}}"):
            pgdl_fetch.fetch(tmp_path, server.url + "/p.zip", retry_wait_s=0, pins=(pins,))
    final = tmp_path / "pgdl" / name
    assert not final.exists() and not Path(f"{final}.part").exists()
    assert not list(final.parent.glob(".*.tmp"))


def test_path_traversal_member_is_refused_before_anything_is_written(tmp_path):
    evil = tmp_path / "zip" / "evil.zip"
    evil.parent.mkdir()
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr(f"{TASK}/model_20/config.json", "{}")
        zf.writestr(f"{TASK}/dataset_1/../../../../evil.txt", "owned")
    with LoopbackServer({"/evil.zip": evil.read_bytes()}) as server:
        with pytest.raises(DataError, match=r"archive member '.*evil.txt': path escapes the target folder"):
            pgdl_fetch.fetch(tmp_path / "data", server.url + "/evil.zip", retry_wait_s=0)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "data").exists()


def test_first_fetch_with_the_command_records_the_sha256s_under_the_data_root_and_a_damaged_file_is_refused(
        archive, tmp_path):
    """As a new user runs it: no pins anywhere, an empty data folder; the package is never written."""
    import hashlib
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    pins_before = (pgdl_fetch.PINS.read_bytes(), pgdl_fetch.PINS.stat().st_mtime_ns)
    with LoopbackServer({"/public_data.zip": archive}) as server:
        command = [sys.executable, str(repo / "scripts" / "download_pgdl.py"), "--data-root", str(tmp_path / "data"),
                   "--url", server.url + "/public_data.zip"]
        first = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
        assert first.returncode == 0, first.stderr
        root = tmp_path / "data" / "pgdl"
        record = json.loads((root / pgdl_fetch.RECORD).read_text())["sha256"]
        assert set(record) == needed_names(archive)
        assert all(hashlib.sha256((root / n).read_bytes()).hexdigest() == d for n, d in record.items())
        assert all(f"{n}: no pinned SHA-256; trusted on first use: {d}" in first.stderr for n, d in record.items())
        again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
        assert again.returncode == 0 and f"SHA-256: {len(record)} recorded earlier" in again.stderr, again.stderr
        damaged = root / TASK / "model_21" / "weights_init.hdf5"
        data = bytearray(damaged.read_bytes())
        data[100] ^= 0xFF
        damaged.write_bytes(bytes(data))
        refused = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert refused.returncode == 2
    [line] = [line for line in refused.stderr.splitlines() if line.startswith("error: ")]
    assert f"{damaged}: exists but differs from archive member {TASK}/model_21/weights_init.hdf5" in line
    assert "Traceback" not in refused.stderr
    assert (pgdl_fetch.PINS.read_bytes(), pgdl_fetch.PINS.stat().st_mtime_ns) == pins_before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # nothing written outside the data folder


def test_whole_archive_fallback_without_range_support(archive, tmp_path, pins):
    with LoopbackServer({"/public_data.zip": archive}, ranges=False) as server:
        pgdl_fetch.fetch(tmp_path, server.url + "/public_data.zip", retry_wait_s=0, pins=(pins,))
    root = tmp_path / "pgdl"
    assert (root / "public_data.zip").read_bytes() == archive  # kept for later runs
    got = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert got == needed_names(archive) | {"MANIFEST.json", "public_data.zip"}


def test_wanted_members():
    assert pgdl_fetch.wanted("input_data/task1_v4/model_148/weights.hdf5")
    assert pgdl_fetch.wanted("reference_data/task1_v4/model_configs.json")
    assert pgdl_fetch.wanted("input_data/task1_v4/dataset_1/test/shard_3.tfrecord")
    for name in ("input_data/task1_v4/model_24/config.json", "input_data/task1_v4/model_2/config.json",
                 "input_data/task1_v4/model_200/config.json", "input_data/task2_v1/model_20/config.json",
                 "input_data/task1_v4/model_configs.json", "input_data/task1_v4/dataset_1/.DS_Store",
                 "__MACOSX/input_data/task1_v4/model_20/config.json", "reference_data/task2_v1/model_configs.json"):
        assert not pgdl_fetch.wanted(name), name


def test_download_script_prints_one_line_and_exits_2(tmp_path, capsys):
    import importlib.util

    path = Path(__file__).parents[1] / "scripts" / "download_pgdl.py"
    spec = importlib.util.spec_from_file_location("download_pgdl", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    with LoopbackServer({}) as server:
        assert script.main(["--data-root", str(tmp_path), "--url", server.url + "/none.zip"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none.zip" in err and "HTTP Error 404" in err


# --- training ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("regulariser", ["t1", "l2"])
def test_replica_network_trains_from_a_spec(replica, tmp_path, regulariser):
    from model.runs import execute

    spec = {"network": "pgdl/task1_v4/148", "regulariser": regulariser, "weight": 0.01, "batch_size": 16,
            "max_epochs": 2, "optimizer": {"learning_rate": 0.001, "nesterov": False},
            "data_root": str(replica), "output_root": str(tmp_path / "runs")}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    assert execute.main([str(tmp_path / "spec.json")]) == 0
    done = json.loads((tmp_path / "runs" / "pgdl/task1_v4/148" / regulariser / "0.01/seed_0" / "DONE.json").read_text())
    assert done["block"] == "pgdl" and done["epochs"] == 2 and 0.0 <= done["test_accuracy"] <= 1.0
