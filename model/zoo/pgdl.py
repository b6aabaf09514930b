"""PGDL 2020 zoo: `pgdl/<task>/<model id>` → a Keras model from `config.json` + `weights_init.hdf5`, and the data.

Files live under `<data_root>/pgdl/` as in the public archive (`input_data/<task>/model_<id>/`,
`input_data/<task>/dataset_1/{train,test}/shard_<k>.tfrecord`), put there by `scripts/download_pgdl.py`.
Images are used as stored (no normalisation, as the original). Profiles: `corrected` splits train/validation
disjointly; `paper` emulates the original leaky split (see `pgdl_split`). Weight-decay kwargs in configs are
dropped with a warning (Q-weight-decay-ignored in docs/quirks.md: the original never applied them). Must not know about
regularisers.
"""
import json
import logging
import re
from pathlib import Path

import numpy as np

from model.errors import DataError, SpecError
from model.files import keras_h5, tfrecord
from model.profiles import check_profile
from model.zoo.network import Network, Splits
from model.zoo.pgdl_split import SEED, split_indices

log = logging.getLogger(__name__)

LAYERS = ("Conv2D", "Dense", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "Flatten", "Dropout",
          "BatchNormalization", "Activation", "ReLU")
IGNORED_KWARGS = ("kernel_regularizer", "bias_regularizer", "activity_regularizer")
HINT = "run scripts/download_pgdl.py --data-root {data_root}"


def task_dir(data_root: Path, task: str) -> Path:
    return Path(data_root) / "pgdl" / "input_data" / task


def read_config(path: Path) -> tuple[list[tuple[str, dict]], tuple[int, ...]]:
    """Parse a PGDL `config.json` → ([(layer class name, kwargs), ...], input_shape).

    Top-level integral floats in kwargs become ints (`"units": 128.0`), as the organizers' loader does.
    """
    try:
        config = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: file not found (expected a PGDL config.json)") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(config, dict) or not isinstance(config.get("model_config"), list):
        raise DataError(f"{path}: expected an object with a list 'model_config' and 'input_shape'")
    shape = config.get("input_shape")
    if not isinstance(shape, list) or not shape or not all(isinstance(d, (int, float)) and d > 0 for d in shape):
        raise DataError(f"{path}: 'input_shape' is {shape!r}, expected a list of positive sizes like [32, 32, 3]")
    layers = []
    for i, entry in enumerate(config["model_config"]):
        if not isinstance(entry, dict) or entry.get("layer_name") not in LAYERS:
            name = entry.get("layer_name") if isinstance(entry, dict) else entry
            raise DataError(f"{path}: model_config[{i}] has layer_name {name!r}, expected one of {', '.join(LAYERS)}")
        kwargs = {k: int(v) if isinstance(v, float) and v.is_integer() else v
                  for k, v in entry.items() if k != "layer_name"}
        dropped = [k for k in IGNORED_KWARGS if kwargs.pop(k, None) is not None]
        if dropped:
            log.warning("%s: model_config[%d] %s ignored (the protocol never applies PGDL weight decay)",
                        path, i, ", ".join(dropped))
        layers.append((entry["layer_name"], kwargs))
    return layers, tuple(int(d) for d in shape)


def build(model_dir: str | Path, weights: str = "weights_init.hdf5"):
    """Build the Keras functional model of `model_dir/config.json` and load `model_dir/<weights>` into it.

    Input `(None, *input_shape)`; output the last layer's (logits, `(None, classes)`). `weights` is
    `weights_init.hdf5` (the protocol: training starts from the PGDL initialisation) or `weights.hdf5`.
    """
    import keras

    model_dir = Path(model_dir)
    config = model_dir / "config.json"
    layers, shape = read_config(config)
    inputs = x = keras.Input(shape=shape, name="inputs")
    for i, (name, kwargs) in enumerate(layers):
        try:
            x = getattr(keras.layers, name)(**kwargs)(x)
        except (TypeError, ValueError) as err:
            raise DataError(f"{config}: model_config[{i}] ({name}) cannot be built: {err}") from None
    model = keras.Model(inputs, x, name=f"pgdl_{model_dir.parent.name}_{model_dir.name}")
    keras_h5.load_into(model, model_dir / weights)
    return model


def read_shards(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """All `shard_<k>.tfrecord` of `folder` in shard-number order → (x float32, y int32)."""
    shards = sorted(folder.glob("shard_*.tfrecord"), key=lambda p: int(re.sub(r"\D", "", p.stem) or -1))
    if not shards:
        raise DataError(f"{folder}: no shard_<k>.tfrecord files (expected the PGDL dataset shards)")
    parts = [tfrecord.read_shard(p) for p in shards]
    shapes = {x.shape[1:] for x, _ in parts}
    if len(shapes) != 1:
        raise DataError(f"{folder}: shards hold inputs of shapes {sorted(shapes)}, expected one shape")
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])


def load_splits(data_root: Path, task: str, profile: str = "corrected", seed: int = SEED) -> Splits:
    """Train/validation from `dataset_1/train` (per-class split, see `pgdl_split`), test from `dataset_1/test`."""
    dataset = task_dir(data_root, task) / "dataset_1"
    for sub in ("train", "test"):
        if not (dataset / sub).is_dir():
            raise DataError(f"{dataset / sub}: missing (expected the PGDL {task} shards); "
                            + HINT.format(data_root=data_root))
    x, y = read_shards(dataset / "train")
    x_test, y_test = read_shards(dataset / "test")
    train, val = split_indices(y, seed, leaky=profile == "paper")
    return Splits(x[train], y[train], x[val], y[val], x_test, y_test)


def network(ident: str, data_root: Path, profile: str) -> Network:
    """`ident` = `<task>/<model id>`, e.g. `task1_v4/20`."""
    task, _, model_id = ident.partition("/")
    if not re.fullmatch(r"[A-Za-z0-9_]+", task) or not model_id.isdigit():
        raise SpecError(f"network 'pgdl/{ident}': expected 'pgdl/<task>/<model id>', e.g. 'pgdl/task1_v4/20'")
    check_profile(profile)
    model_dir = task_dir(data_root, task) / f"model_{model_id}"

    def build_model():
        if not model_dir.is_dir():
            raise DataError(f"{model_dir}: missing (expected config.json and weights_init.hdf5); "
                            + HINT.format(data_root=data_root))
        return build(model_dir)

    return Network(f"pgdl/{ident}", "pgdl", build_model, lambda: load_splits(Path(data_root), task, profile))
