"""IDX reader on synthetic files written here, on the real MNIST test set where it is (conftest.MNIST_DIR), and on
broken files."""
import gzip

import numpy as np
import pytest
from conftest import synthetic_mnist_files, write_idx

from model.errors import DataError
from model.files.idx import read_idx


def test_synthetic_files_read_back_exactly(tmp_path):
    rng = np.random.default_rng(3)
    for shape in ((7,), (5, 4, 3), (2, 1, 6, 2)):
        array = rng.integers(0, 256, shape, dtype=np.uint8)
        for name in ("a-idx", "a-idx.gz"):
            got = read_idx(write_idx(tmp_path / name, array))
            assert got.dtype == np.uint8
            np.testing.assert_array_equal(got, array)


def test_synthetic_test_set_images_and_labels(tmp_path):
    x, y = (read_idx(path) for path in synthetic_mnist_files(tmp_path, count=50))
    assert x.shape == (50, 28, 28) and x.dtype == np.uint8
    assert y.shape == (50,) and np.bincount(y, minlength=10).tolist() == [5] * 10


def test_real_test_set_images_and_labels(real_mnist):
    x = read_idx(real_mnist / "t10k-images-idx3-ubyte.gz")
    y = read_idx(real_mnist / "t10k-labels-idx1-ubyte.gz")
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (10000,) and y.dtype == np.uint8
    counts = np.bincount(y, minlength=10)
    assert counts.sum() == 10000 and counts.min() == 892 and counts.argmin() == 5
    assert counts.max() == 1135 and counts.argmax() == 1
    assert x.max() == 255 and x.min() == 0


def test_plain_file_reads_like_gzip(tmp_path, mnist_test_set):
    labels = mnist_test_set[1]
    raw = tmp_path / "t10k-labels-idx1-ubyte"
    raw.write_bytes(gzip.decompress(labels.read_bytes()))
    np.testing.assert_array_equal(read_idx(raw), read_idx(labels))


@pytest.mark.parametrize("content, message", [
    (b"\x00\x00\x08\x01\x00\x00\x00\x05abc", "payload has 3 bytes, expected 5"),
    (b"\x12\x34\x08\x01", "not an IDX file"),
    (b"\x00\x00\x0d\x01\x00\x00\x00\x01abcd", "type code 0x0d"),
    (b"\x00\x00\x08\x03\x00\x00", "header truncated"),
])
def test_broken_files_name_the_file(tmp_path, content, message):
    path = tmp_path / "broken-idx"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_missing_and_not_gzip(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_idx(tmp_path / "nothing.gz")
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="bad.gz: cannot read as gzip"):
        read_idx(bad)
