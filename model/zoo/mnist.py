"""MNIST zoo: the paper's three MLPs (`mnist/0`..`mnist/2`) with fixed initial weights, and the MNIST splits.

`prepare` gets the four IDX `.gz` files (download or a user's folder), checks them and stores the raw uint8 images
once in `<data_root>/mnist/mnist.npz` with a seeded 48,000/12,000 train/validation split of the training set.
`make_zoo` writes each network's initial weights (Glorot-uniform kernels, zero biases, from a seed) to
`<data_root>/mnist/zoo/model_<i>.npz`; network 1 is network 0 plus Dropout(0.5) with network 0's initial weights
(Q-shared-init in docs/quirks.md, made explicit). Profiles at load time: `corrected` scales pixels by 1/255 once and
uses the seeded split; `paper` divides by 255 twice (Q-double-scale) and splits positionally (first 48,000 / last
12,000, Q-positional-split) as the original. Must not know about regularisers or training.
"""
import io
import json
import logging
import zipfile
from pathlib import Path

import numpy as np

from model.atomic import write_bytes
from model.errors import DataError, SpecError
from model.files import download
from model.files.idx import read_idx
from model.profiles import check_profile
from model.zoo.network import Network, Splits

log = logging.getLogger(__name__)

FILES = {  # key: (file name, md5 of the .gz, expected shape)
    "x_train": ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873", (60000, 28, 28)),
    "y_train": ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432", (60000,)),
    "x_test": ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3", (10000, 28, 28)),
    "y_test": ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c", (10000,)),
}
NPZ_ERRORS = (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile)  # what np.load of a damaged .npz raises
MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/")
VAL_FRACTION = 0.2  # 12,000 of the 60,000 training images
HIDDEN = {0: (450, 350, 200), 1: (450, 350, 200), 2: (300, 250, 200, 150, 100)}
DROPOUT = {0: 0.0, 1: 0.5, 2: 0.0}
INIT_SOURCE = {0: 0, 1: 0, 2: 2}  # network 1 takes network 0's initial weights
INPUT_SHAPE = (28, 28, 1)


def folder(data_root: str | Path) -> Path:
    return Path(data_root) / "mnist"


def _raw_files(data_root: Path, source_dir: Path | None, base_urls, force: bool, files: dict) -> dict[str, Path]:
    """Paths of the four `.gz` files: from `source_dir` (md5 mismatch only warned: shapes are checked next) or
    downloaded (md5 checked) from the first of `base_urls` that answers."""
    paths, unreachable = {}, {}
    for key, (name, md5, _) in files.items():
        if source_dir is not None:
            path = Path(source_dir) / name
            if not path.is_file():
                raise DataError(f"{path}: not found (expected the MNIST file {name} in {source_dir})")
            if download.md5_of(path) != md5:
                log.warning("%s: md5 differs from the published %s; checking its contents instead", path, md5)
            paths[key] = path
            continue
        errors = []
        for base in base_urls:
            if base in unreachable:
                continue
            try:
                paths[key] = download.fetch_file(base.rstrip("/") + "/" + name, folder(data_root) / "raw" / name,
                                                 md5=md5, force=force)
                break
            except download.Unreachable as err:  # not tried again for the other files
                unreachable[base] = str(err)
            except DataError as err:
                errors.append(str(err))
        else:
            if not errors:
                raise DataError(f"{name}: no mirror can be reached ({'; '.join(unreachable.values())}); check the "
                                "network, or give --base-url or --from-dir")
            raise DataError(f"{name}: no mirror worked ({'; '.join([*errors, *unreachable.values()])})")
    return paths


def read_expected(path: str | Path) -> dict:
    """`FILES` as a JSON file describes them: {file name: {"md5": hex, "shape": [n, ...]}} for the four names of
    `FILES` (another MNIST-format set, a mirror of a subset, a test mirror). A bad file raises `DataError`."""
    try:
        given = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: not a readable JSON file ({err})") from None
    files = {}
    for key, (name, _, shape) in FILES.items():
        entry = given.get(name) if isinstance(given, dict) else None
        if not (isinstance(entry, dict) and isinstance(entry.get("md5"), str) and isinstance(entry.get("shape"), list)
                and len(entry["shape"]) == len(shape) and all(isinstance(n, int) and n > 0 for n in entry["shape"])
                and tuple(entry["shape"][1:]) == shape[1:]):
            dims = ", ".join(["n", *map(str, shape[1:])])
            raise DataError(f"{path}: {name}: expected {{\"md5\": <hex>, \"shape\": [{dims}]}} with n > 0, got "
                            f"{entry!r}")
        files[key] = (name, entry["md5"].lower(), tuple(entry["shape"]))
    return files


def stored_seed(path: Path, damaged: str) -> int:
    """The seed an `.npz` file we wrote records; a file that cannot be read is a `DataError` saying `damaged`."""
    try:
        with np.load(path) as f:
            return int(f["seed"])
    except NPZ_ERRORS as err:
        raise DataError(f"{path}: {damaged} ({err}); use --force to rewrite it") from None


def prepare(data_root: str | Path, *, source_dir: str | Path | None = None, base_urls=MIRRORS, seed: int = 0,
            force: bool = False, files: dict = FILES) -> Path:
    """Write `<data_root>/mnist/mnist.npz` (uint8 images `(n, 28, 28)`, uint8 labels, seeded split indices:
    a random `VAL_FRACTION` of the training images to validation); return its path. An existing file made with the
    same seed is kept; another seed needs `force`. `files` (names, md5s, shapes) is for tests."""
    out = folder(data_root) / "mnist.npz"
    if out.exists() and not force:
        old_seed = stored_seed(out, "damaged or not a prepared MNIST file")
        if old_seed == seed:
            log.info("%s: already prepared with seed %d", out, seed)
            return out
        raise DataError(f"{out}: exists with seed {old_seed}, not {seed}; use --force to rewrite it")
    arrays = {}
    for key, path in _raw_files(Path(data_root), source_dir and Path(source_dir), base_urls, force, files).items():
        arrays[key] = read_idx(path)
        if arrays[key].shape != files[key][2]:
            raise DataError(f"{path}: shape {arrays[key].shape}, expected {files[key][2]}")
        if key.startswith("y") and arrays[key].max() > 9:
            raise DataError(f"{path}: label {arrays[key].max()} found, expected 0..9")
    perm = np.random.default_rng(seed).permutation(len(arrays["y_train"]))
    n_train = round((1 - VAL_FRACTION) * len(perm))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays, train_idx=np.sort(perm[:n_train]), val_idx=np.sort(perm[n_train:]),
                        seed=np.int64(seed))
    write_bytes(out, buffer.getvalue())
    log.info("%s: written (%d train, %d validation, %d test)", out, n_train, len(perm) - n_train,
             len(arrays["y_test"]))
    return out


def load_splits(data_root: str | Path, profile: str = "corrected") -> Splits:
    """The splits for `profile`: x float32 `(n, 28, 28, 1)`, y int32 `(n,)`."""
    path = folder(data_root) / "mnist.npz"
    if not path.is_file():
        raise DataError(f"{path}: missing; run scripts/prepare_mnist.py --data-root {data_root}")
    try:
        with np.load(path) as f:
            raw = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test", "train_idx", "val_idx")}
    except NPZ_ERRORS as err:
        raise DataError(f"{path}: not a prepared MNIST file ({err}); rerun scripts/prepare_mnist.py --force") from None
    if profile == "paper":
        n_train = len(raw["train_idx"])  # the original: first 48,000 / last 12,000, unshuffled
        train_idx, val_idx = np.arange(n_train), np.arange(n_train, len(raw["y_train"]))
    else:
        train_idx, val_idx = raw["train_idx"], raw["val_idx"]

    def scale(x):
        x = (x[..., None] / 255.0).astype(np.float32)
        return x / np.float32(255.0) if profile == "paper" else x

    x_train, y_train = scale(raw["x_train"]), raw["y_train"].astype(np.int32)
    return Splits(x_train[train_idx], y_train[train_idx], x_train[val_idx], y_train[val_idx],
                  scale(raw["x_test"]), raw["y_test"].astype(np.int32))


def layer_sizes(ident: int) -> list[tuple[int, int]]:
    """(fan_in, fan_out) of each Dense layer of network `ident`, input to logits."""
    sizes = [int(np.prod(INPUT_SHAPE)), *HIDDEN[ident], 10]
    return list(zip(sizes[:-1], sizes[1:]))


def initial_weights(ident: int, seed: int) -> list[np.ndarray]:
    """[kernel, bias, ...] float32: Glorot-uniform kernels `(in, out)`, zero biases, from `(seed, source id)`."""
    source = INIT_SOURCE[ident]
    rng = np.random.default_rng([seed, source])
    weights = []
    for fan_in, fan_out in layer_sizes(source):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        weights += [rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32), np.zeros(fan_out, np.float32)]
    return weights


def make_zoo(data_root: str | Path, seed: int = 0, force: bool = False) -> list[Path]:
    """Write `<data_root>/mnist/zoo/model_<i>.npz` (arrays `w000`, `w001`, ... and `seed`) for i = 0, 1, 2.
    Files made with the same seed are kept; another seed needs `force`."""
    paths = []
    for ident in HIDDEN:
        path = folder(data_root) / "zoo" / f"model_{ident}.npz"
        if path.exists() and not force:
            old_seed = stored_seed(path, "damaged")
            if old_seed != seed:
                raise DataError(f"{path}: exists with seed {old_seed}, not {seed}; use --force")
            paths.append(path)
            continue
        buffer = io.BytesIO()
        arrays = {f"w{i:03d}": w for i, w in enumerate(initial_weights(ident, seed))}
        np.savez(buffer, **arrays, seed=np.int64(seed))
        paths.append(write_bytes(path, buffer.getvalue()))
    return paths


def build(ident: int, weights_file: Path):
    """The functional Keras MLP `ident`: Input (28, 28, 1) → Flatten → Dense+ReLU [→ Dropout] ... → Dense(10)
    logits, with the initial weights of `weights_file`."""
    import keras

    inputs = x = keras.Input(shape=INPUT_SHAPE, name="inputs")
    x = keras.layers.Flatten()(x)
    for units in HIDDEN[ident]:
        x = keras.layers.Dense(units, activation="relu")(x)
        if DROPOUT[ident]:
            x = keras.layers.Dropout(DROPOUT[ident])(x)
    model = keras.Model(inputs, keras.layers.Dense(10)(x), name=f"mnist_{ident}")
    if not weights_file.is_file():
        raise DataError(f"{weights_file}: missing; run scripts/make_mnist_zoo.py --data-root "
                        f"{weights_file.parents[2]}")
    try:
        with np.load(weights_file) as f:
            arrays = [f[k] for k in sorted(f.files) if k.startswith("w")]
    except NPZ_ERRORS as err:
        raise DataError(f"{weights_file}: damaged ({err}); rerun scripts/make_mnist_zoo.py --force") from None
    expected = [tuple(w.shape) for w in model.weights]
    if [a.shape for a in arrays] != expected:
        raise DataError(f"{weights_file}: weight shapes {[a.shape for a in arrays]}, expected {expected}; "
                        f"rerun scripts/make_mnist_zoo.py --force")
    model.set_weights(arrays)
    return model


def network(ident: str, data_root: Path, profile: str) -> Network:
    """`ident` is 0, 1 or 2 (the original specs' ids 3 and 6 do not exist: Q-mnist-ids in docs/quirks.md)."""
    if ident not in ("0", "1", "2"):
        raise SpecError(f"network 'mnist/{ident}': expected mnist/0, mnist/1 or mnist/2")
    check_profile(profile)
    weights_file = folder(data_root) / "zoo" / f"model_{ident}.npz"
    return Network(f"mnist/{ident}", "mnist", lambda: build(int(ident), weights_file),
                   lambda: load_splits(data_root, profile))
