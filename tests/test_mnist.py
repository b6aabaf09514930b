"""MNIST zoo: download (loopback) and folder preparation, the split, profiles, the three MLPs' initial weights.

The MNIST test set plays both the training and the test set here (the training set is not on this machine), so
the split is 8,000 / 2,000 instead of 48,000 / 12,000; the code path is the same. It is the real test set where
`conftest.MNIST_DIR` has it, else a synthetic one of the same shapes (`conftest.mnist_test_set`).
"""
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from download_server import LoopbackServer

from model.errors import DataError, SpecError
from model.zoo import mnist
from model.zoo.catalogue import get_network


@pytest.fixture(scope="module", autouse=True)
def test_set(mnist_test_set):
    """IMAGES, LABELS: the (images, labels) IDX files of `conftest.mnist_test_set`."""
    global IMAGES, LABELS
    IMAGES, LABELS = mnist_test_set


def small_files() -> dict:
    """FILES with the training files replaced by the test files (their md5s, 10,000 examples); the real test set's md5s
    are those of `mnist.FILES`."""
    md5 = {p: hashlib.md5(p.read_bytes()).hexdigest() for p in (IMAGES, LABELS)}
    return {"x_train": ("train-images-idx3-ubyte.gz", md5[IMAGES], (10000, 28, 28)),
            "y_train": ("train-labels-idx1-ubyte.gz", md5[LABELS], (10000,)),
            "x_test": (mnist.FILES["x_test"][0], md5[IMAGES], mnist.FILES["x_test"][2]),
            "y_test": (mnist.FILES["y_test"][0], md5[LABELS], mnist.FILES["y_test"][2])}


def served() -> dict:
    return {f"/mnist/{name}": path.read_bytes()
            for names, path in ((("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"), IMAGES),
                                (("train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz"), LABELS))
            for name in names}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A data root prepared from the loopback server (one file cut mid-way) and the zoo written with seed 0."""
    root = tmp_path_factory.mktemp("data")
    with LoopbackServer(served(), cuts={"/mnist/train-images-idx3-ubyte.gz": {0: 500_000}}) as server:
        bad = server.url + "/nowhere/"  # a dead mirror first: the next one is used
        mnist.prepare(root, base_urls=(bad, server.url + "/mnist/"), files=small_files())
    resumed = [entry for entry in server.log if entry[1] == "bytes=500000-"]
    assert len(resumed) == 1, server.log
    mnist.make_zoo(root, seed=0)
    return root


def test_download_writes_raw_files_and_split(prepared):
    for name, md5, _ in small_files().values():
        assert hashlib.md5((prepared / "mnist" / "raw" / name).read_bytes()).hexdigest() == md5
    assert not list((prepared / "mnist").rglob("*.part"))
    with np.load(prepared / "mnist" / "mnist.npz") as f:
        train_idx, val_idx = f["train_idx"], f["val_idx"]
        assert f["x_train"].dtype == np.uint8 and f["x_train"].shape == (10000, 28, 28)
    assert len(train_idx) == 8000 and len(val_idx) == 2000
    assert not set(train_idx) & set(val_idx) and len(set(train_idx) | set(val_idx)) == 10000


def test_split_depends_only_on_seed(prepared, tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name, path in (("train-images-idx3-ubyte.gz", IMAGES), ("train-labels-idx1-ubyte.gz", LABELS),
                       ("t10k-images-idx3-ubyte.gz", IMAGES), ("t10k-labels-idx1-ubyte.gz", LABELS)):
        shutil.copy(path, source / name)
    for seed, root in ((0, tmp_path / "same"), (1, tmp_path / "other")):
        mnist.prepare(root, source_dir=source, seed=seed, files=small_files())
    with np.load(prepared / "mnist" / "mnist.npz") as a, np.load(tmp_path / "same" / "mnist" / "mnist.npz") as b, \
            np.load(tmp_path / "other" / "mnist" / "mnist.npz") as c:
        np.testing.assert_array_equal(a["val_idx"], b["val_idx"])
        assert not np.array_equal(a["val_idx"], c["val_idx"])
    with pytest.raises(DataError, match="exists with seed 1, not 0; use --force"):
        mnist.prepare(tmp_path / "other", source_dir=source, seed=0, files=small_files())


def test_folder_with_wrong_content_is_refused(tmp_path):
    (tmp_path / "src").mkdir()
    for name, _, _ in mnist.FILES.values():
        shutil.copy(LABELS, tmp_path / "src" / name)  # labels where images belong
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: shape"):
        mnist.prepare(tmp_path / "d", source_dir=tmp_path / "src")
    with pytest.raises(DataError, match="not found"):
        mnist.prepare(tmp_path / "d", source_dir=tmp_path / "nothing")


def test_corrected_and_paper_profiles(prepared):
    corrected = get_network("mnist/0", prepared, "corrected").load_data()
    paper = get_network("mnist/0", prepared, "paper").load_data()
    for splits in (corrected, paper):
        assert splits.x_train.shape == (8000, 28, 28, 1) and splits.x_val.shape == (2000, 28, 28, 1)
        assert splits.x_test.shape == (10000, 28, 28, 1)
        assert splits.x_train.dtype == np.float32 and splits.y_train.dtype == np.int32
    assert corrected.x_test.max() == 1.0 and corrected.x_test.min() == 0.0
    # Q-double-scale: divided by 255 twice (255 / 255 / 255 = 1/255)
    np.testing.assert_allclose(paper.x_test, corrected.x_test / 255, rtol=1e-6)
    np.testing.assert_allclose(paper.x_test.max(), 1 / 255, rtol=1e-6)
    raw_labels = np.frombuffer(__import__("gzip").decompress(LABELS.read_bytes())[8:], np.uint8)
    np.testing.assert_array_equal(paper.y_train, raw_labels[:8000])  # positional, as the original
    np.testing.assert_array_equal(paper.y_val, raw_labels[8000:])
    assert not np.array_equal(corrected.y_train, raw_labels[:8000])  # seeded


def test_zoo_initial_weights(prepared, tmp_path):
    models = [get_network(f"mnist/{i}", prepared, "corrected").build_model() for i in range(3)]
    assert [m.count_params() for m in models] == [583310, 583310, 407210]
    assert [m.input_shape for m in models] == [(None, 28, 28, 1)] * 3
    assert [m.output_shape for m in models] == [(None, 10)] * 3
    assert sum(type(layer).__name__ == "Dropout" for layer in models[1].layers) == 3
    assert not any(type(layer).__name__ == "Dropout" for layer in models[0].layers)
    for a, b in zip(models[0].get_weights(), models[1].get_weights()):  # Q-shared-init: net 1 = net 0's weights
        np.testing.assert_array_equal(a, b)
    again = get_network("mnist/0", prepared, "corrected").build_model()
    for a, b in zip(models[0].get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(models[0](x, training=False), models[1](x, training=False), rtol=1e-6)
    kernel = models[2].get_weights()[0]
    limit = np.sqrt(6 / (784 + 300))
    assert kernel.shape == (784, 300) and np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.9 * limit
    assert not models[2].get_weights()[1].any()  # zero biases
    mnist.make_zoo(tmp_path, seed=0)
    mnist.make_zoo(tmp_path / "s1", seed=1)
    with np.load(tmp_path / "mnist" / "zoo" / "model_2.npz") as a, \
            np.load(prepared / "mnist" / "zoo" / "model_2.npz") as b, \
            np.load(tmp_path / "s1" / "mnist" / "zoo" / "model_2.npz") as c:
        np.testing.assert_array_equal(a["w000"], b["w000"])
        assert not np.array_equal(a["w000"], c["w000"])
    with pytest.raises(DataError, match="exists with seed 0, not 1; use --force"):
        mnist.make_zoo(tmp_path, seed=1)


def test_errors_name_the_missing_piece(tmp_path):
    with pytest.raises(SpecError, match="expected mnist/0, mnist/1 or mnist/2"):
        get_network("mnist/3", tmp_path)
    with pytest.raises(SpecError, match="profile 'fast'"):
        get_network("mnist/0", tmp_path, "fast")
    network = get_network("mnist/0", tmp_path)
    with pytest.raises(DataError, match="mnist.npz: missing; run scripts/prepare_mnist.py"):
        network.load_data()
    with pytest.raises(DataError, match="model_0.npz: missing; run scripts/make_mnist_zoo.py"):
        network.build_model()


def test_scripts_print_one_line_and_exit_2(tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("prepare_mnist", Path(__file__).parents[1] / "scripts" /
                                                  "prepare_mnist.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--data-root", str(tmp_path), "--from-dir", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train-images-idx3-ubyte.gz: not found" in err


def test_expect_names_the_md5s_and_shapes_of_another_idx_set(tmp_path, capsys):
    """`prepare_mnist.py --base-url URL --expect FILE`: another MNIST-format set (here 10,000 training images)."""
    from model.commands import prepare_mnist

    expect = {name: {"md5": md5, "shape": list(shape)} for name, md5, shape in small_files().values()}
    (tmp_path / "expect.json").write_text(json.dumps(expect))
    assert mnist.read_expected(tmp_path / "expect.json") == small_files()
    with LoopbackServer(served()) as server:
        argv = ["--data-root", str(tmp_path / "data"), "--base-url", server.url + "/mnist/"]
        assert prepare_mnist.main([*argv, "--expect", str(tmp_path / "expect.json")]) == 0
        assert capsys.readouterr().out.strip() == str(tmp_path / "data" / "mnist" / "mnist.npz")
        assert len(mnist.load_splits(tmp_path / "data").y_train) == 8000
        expect["t10k-labels-idx1-ubyte.gz"]["shape"] = [10000, 1]
        (tmp_path / "bad.json").write_text(json.dumps(expect))
        assert prepare_mnist.main([*argv, "--force", "--expect", str(tmp_path / "bad.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.json: t10k-labels-idx1-ubyte.gz: expected" in err
