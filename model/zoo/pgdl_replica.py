"""Synthetic PGDL replica: a tiny tree in the real public-archive formats (`model.zoo.pgdl` reads them), for tests and
offline runs.

Writes `input_data/<task>/{dataset_1/{train,test}/shard_<k>.tfrecord, model_<id>/{config.json, weights.hdf5,
weights_init.hdf5}}` and `reference_data/<task>/model_configs.json` for task1_v4 (the paper's 8 models, VGG-like,
tiny widths) and task2_v1 (4 NiN-like models, guessed), plus the stray files loaders must skip. Data are random,
not CIFAR-10. Uses only NumPy, h5py and our TFRecord writer (no TensorFlow). Must not be used for results.
"""
import json
import zipfile
from pathlib import Path

import numpy as np

from model.atomic import write_text
from model.errors import PipelineError
from model.files import keras_h5, tfrecord

TASK1_MODELS = (20, 21, 22, 23, 148, 149, 150, 151)
TASK2_MODELS = (239, 240, 612, 613)
GAPS = {20: 0.2666, 21: 0.2629, 22: 0.2801, 23: 0.2804, 148: 0.2624, 149: 0.2594, 150: 0.2863, 151: 0.2825,
        239: 0.0845, 240: 0.0852, 612: 0.2419, 613: 0.2689}


def task1_config(model_id: int, input_shape=(8, 8, 3)) -> dict:
    """VGG-like config: 20, 21, 148, 149 have dropout; odd ids the wider last conv; ids ≥ 148 one more Dense."""
    dropout, width, dense = model_id in (20, 21, 148, 149), 8 if model_id % 2 else 4, 2 if model_id >= 148 else 1
    conv = {"kernel_size": [3, 3], "padding": "same", "activation": "relu"}
    layers = [{"layer_name": "Conv2D", "filters": 4.0, **conv},  # an integral float, as in the real configs
              {"layer_name": "Conv2D", "filters": width, **conv},
              {"layer_name": "MaxPooling2D", "pool_size": [2, 2]},
              {"layer_name": "Flatten"}]
    for _ in range(dense):
        layers.append({"layer_name": "Dense", "units": 16.0, "activation": "relu"})
        if dropout:
            layers.append({"layer_name": "Dropout", "rate": 0.5})
    layers.append({"layer_name": "Dense", "units": 10})
    return {"model_config": layers, "input_shape": list(input_shape)}


def task2_config(model_id: int, input_shape=(8, 8, 3)) -> dict:
    """NiN-like config (a guess; the real task2 layer list is unknown)."""
    layers = [{"layer_name": "Conv2D", "filters": 4, "kernel_size": [3, 3], "strides": [2, 2], "padding": "same",
               "activation": "relu"},
              {"layer_name": "Conv2D", "filters": 4, "kernel_size": [1, 1], "activation": "relu"},
              {"layer_name": "Conv2D", "filters": 10, "kernel_size": [1, 1]},
              {"layer_name": "GlobalAveragePooling2D"}]
    if model_id % 2:
        layers.insert(2, {"layer_name": "Dropout", "rate": 0.25})
    return {"model_config": layers, "input_shape": list(input_shape)}


def weight_shapes(config: dict) -> list[tuple[str, list[tuple[str, tuple]]]]:
    """[(layer name, [(weight name, shape), ...]), ...] of a replica config (Keras shapes: HWIO, (in, out))."""
    shape, out, counts = tuple(config["input_shape"]), [], {}
    for layer in config["model_config"]:
        kind = layer["layer_name"]
        counts[kind] = counts.get(kind, 0) + 1
        name, weights = f"{kind.lower()}_{counts[kind]}", []
        if kind == "Conv2D":
            (kh, kw), filters = layer["kernel_size"], int(layer["filters"])
            stride = layer.get("strides", [1, 1])[0]
            weights = [("kernel", (kh, kw, shape[2], filters)), ("bias", (filters,))]
            shape = (-(-shape[0] // stride), -(-shape[1] // stride), filters)
        elif kind == "MaxPooling2D":
            shape = (shape[0] // 2, shape[1] // 2, shape[2])
        elif kind == "Flatten":
            shape = (int(np.prod(shape)),)
        elif kind == "GlobalAveragePooling2D":
            shape = (shape[2],)
        elif kind == "Dense":
            weights = [("kernel", (shape[0], int(layer["units"]))), ("bias", (int(layer["units"]),))]
            shape = (int(layer["units"]),)
        out.append((name, weights))
    return out


def _write_model(folder: Path, config: dict, rng: np.random.Generator) -> None:
    write_text(folder / "config.json", json.dumps(config))
    init, trained = [], []
    for name, weights in weight_shapes(config):
        arrays = []
        for wname, shape in weights:
            fan = int(np.prod(shape[:-1])) + shape[-1]
            arrays.append((wname, rng.uniform(-1, 1, shape) * np.sqrt(6 / fan) if wname == "kernel"
                           else np.zeros(shape)))
        init.append((name, arrays))
        trained.append((name, [(w, a + rng.normal(0, 0.05, a.shape)) for w, a in arrays]))
    keras_h5.write_weights(folder / "weights_init.hdf5", init)
    keras_h5.write_weights(folder / "weights.hdf5", trained)


def _write_dataset(folder: Path, input_shape, per_class: int, shards: int, rng: np.random.Generator) -> None:
    y = np.repeat(np.arange(10, dtype=np.int32), per_class)
    rng.shuffle(y)
    x = rng.uniform(-0.5, 0.5, (len(y), *input_shape)).astype(np.float32) + y[:, None, None, None] / 20
    for k, idx in enumerate(np.array_split(np.arange(len(y)), shards)):
        tfrecord.write_shard(folder / f"shard_{k}.tfrecord", x[idx], y[idx])


def _model_configs(ids, hparams) -> dict:
    """reference_data model_configs.json: hparams of each id (a full grid) and metrics with the known gaps."""
    out = {}
    for model_id in ids:
        current = hparams(model_id)
        out[str(model_id)] = {
            "hparams": {k: {"possible_values": sorted({hparams(i)[k] for i in ids}), "current_value": v}
                        for k, v in current.items()},
            "metrics": {"train_acc": 1.0, "test_acc": round(1.0 - GAPS[model_id], 4)},
            "dev_name": f"replica_{model_id}"}
    return out


def write_replica(root: str | Path, *, input_shape=(8, 8, 3), per_class=(8, 3), seed: int = 0,
                  force: bool = False) -> Path:
    """Write the replica tree under `root` (the role of `public_data/`); return `root`.

    `per_class` = (train, test) examples per class for task1_v4 (task2_v1 gets the same). Deterministic in `seed`.
    An existing, non-empty `root` is an error unless `force` (then the replica's files are written into it).
    """
    root, rng = Path(root), np.random.default_rng(seed)
    if root.exists() and any(root.iterdir()) and not force:
        raise PipelineError(f"{root}: exists and is not empty; use --force")
    tasks = {"task1_v4": (TASK1_MODELS, task1_config,
                          lambda i: {"dropout": 0.5 if i in (20, 21, 148, 149) else 0.0,
                                     "conv_width": 8 if i % 2 else 4, "num_dense_layers": 2 if i >= 148 else 1}),
             "task2_v1": (TASK2_MODELS, task2_config,
                          lambda i: {"dropout": 0.25 if i % 2 else 0.0, "batch_size": 512 if i >= 612 else 32})}
    for task, (ids, make_config, hparams) in tasks.items():
        task_dir = root / "input_data" / task
        for model_id in ids:
            _write_model(task_dir / f"model_{model_id}", make_config(model_id, input_shape), rng)
        _write_dataset(task_dir / "dataset_1" / "train", input_shape, per_class[0], 2, rng)
        _write_dataset(task_dir / "dataset_1" / "test", input_shape, per_class[1], 1, rng)
        configs = json.dumps(_model_configs(ids, hparams), indent=1)
        write_text(root / "reference_data" / task / "model_configs.json", configs)
    write_text(root / "input_data" / "task1_v4" / "model_configs.json", "{}")  # stray copy loaders must skip
    write_text(root / "input_data" / "task1_v4" / ".DS_Store", "junk")
    return root


def write_zip(root: str | Path, archive: str | Path) -> Path:
    """Zip the tree under `root` (member names relative to it, deflated) like the public archive; return it."""
    root, archive = Path(root), Path(archive)
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_name(f".{archive.name}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            zf.write(path, path.relative_to(root).as_posix())
    tmp.replace(archive)
    return archive
