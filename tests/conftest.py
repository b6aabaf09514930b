"""Shared test helpers: the repository root, the MNIST test-set files (real or synthetic), run folders with DONE.json,
a file object whose writes a test intercepts.

Test modules import the helpers by name (`from conftest import write_done`; pytest puts tests/ on sys.path) and use
the fixtures. No test depends on an absolute machine path: the real MNIST test set is looked up relative to the
repository root, at `<repo>/../shared/data/mnist`, or where the MNIST_DIR environment variable points (a git
worktree has no `../shared`).
"""
import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from model.runs import run_folder

REPO = Path(__file__).resolve().parents[1]
MNIST_DIR = Path(os.environ.get("MNIST_DIR", REPO.parent / "shared" / "data" / "mnist"))
MNIST_TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write a uint8 array as an IDX file (gzip-compressed when `path` ends in .gz): magic 0x0000 08 <ndim>, the
    dimension sizes as big-endian uint32, then the bytes."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    raw = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(raw, compresslevel=1) if path.suffix == ".gz" else raw)
    return path


def synthetic_mnist_files(folder: Path, count: int = 10_000, seed: int = 0, prefix: str = "t10k") -> tuple[Path, Path]:
    """IDX .gz files shaped like MNIST's test set (prefix `t10k`) or training set (`train`), named as the mirrors name
    them: (count, 28, 28) images with values 0..255 and (count,) labels 0..9, every class present when count >= 10."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
    images[0, 0, :2] = (0, 255)  # both extremes present, as in the real set
    labels = rng.permutation(np.arange(count) % 10).astype(np.uint8)
    return (write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images),
            write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels))


@pytest.fixture(scope="session")
def real_mnist() -> Path:
    """The folder of the real MNIST test set; the test is skipped where it is not."""
    if not all((MNIST_DIR / name).is_file() for name in MNIST_TEST_FILES):
        pytest.skip(f"real MNIST test set not at {MNIST_DIR} (set MNIST_DIR)")
    return MNIST_DIR


@pytest.fixture(scope="session")
def mnist_test_set(tmp_path_factory) -> tuple[Path, Path]:
    """(images, labels) IDX .gz files of 10,000 examples: the real MNIST test set where it is, else a synthetic one."""
    if all((MNIST_DIR / name).is_file() for name in MNIST_TEST_FILES):
        return tuple(MNIST_DIR / name for name in MNIST_TEST_FILES)
    return synthetic_mnist_files(tmp_path_factory.mktemp("mnist"))


def write_done(root: Path, network: str, regulariser: str, weight: float, seed: int, val: float, test: float,
               **extra) -> Path:
    """A run folder with a DONE.json holding the contract's keys (the values a training run would record)."""
    task_id = f"{network}/{regulariser}/{float(weight)!r}/seed_{seed}"
    run = root / task_id
    record = {"task_id": task_id, "network": network, "block": network.split("/")[0], "regulariser": regulariser,
              "weight": weight, "seed": seed, "profile": "corrected", "train_accuracy": min(1.0, test + 0.05),
              "val_accuracy": val, "test_accuracy": test, "val_loss": 1.0 - val, "epochs": 3, "best_epoch": 2,
              "stop_reason": "max_epochs", "wall_seconds": 1.5, "versions": {}, "spec": {}, **extra}
    run_folder.write_done(run, record)
    return run


class HookedWrites:
    """A file object whose `write(data)` first calls `hook(data)` (which may raise, as a full disk does), then writes
    to the wrapped file `f`; everything else, context management included, is `f`'s."""

    def __init__(self, f, hook):
        self.f, self.hook = f, hook

    def write(self, data):
        self.hook(data)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def pytest_terminal_summary(terminalreporter):
    """Print the files tests recorded with `record_property("screenshot", path)` (also under pytest-xdist)."""
    paths = [value for report in terminalreporter.stats.get("passed", [])
             for name, value in getattr(report, "user_properties", ()) if name == "screenshot"]
    for path in paths:
        terminalreporter.write_line(f"screenshot: {path}")
