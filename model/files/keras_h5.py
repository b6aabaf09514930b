"""Keras 2.4 legacy HDF5 weight files (`save_weights('x.hdf5')`), the format of the PGDL checkpoints.

Reading follows Keras's rule: groups in the root attribute `layer_names` order, weightless ones dropped, matched by
position to the model's layers that have weights, datasets in each group's `weight_names` order. Writing produces
the same layout (for test fixtures). Must not know about PGDL folders or configs.
"""
from pathlib import Path

import numpy as np

from model.errors import DataError


def _names(attr) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else str(n) for n in np.asarray(attr).ravel()]


def read_weights(path: str | Path) -> list[list[np.ndarray]]:
    """The weight arrays of each layer that has weights, in file order (`[[kernel, bias], ...]`)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found (expected a Keras HDF5 weights file)")
    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f
            if "layer_names" not in root.attrs:
                raise DataError(f"{path}: no 'layer_names' attribute (expected a Keras 2 HDF5 weights file)")
            layers = []
            for name in _names(root.attrs["layer_names"]):
                group = root[name]
                weight_names = _names(group.attrs.get("weight_names", []))
                if weight_names:
                    layers.append([np.asarray(group[w]) for w in weight_names])
            return layers
    except (OSError, KeyError) as err:
        raise DataError(f"{path}: not a readable Keras HDF5 weights file ({err})") from None


def load_into(model, path: str | Path) -> None:
    """Set the weights of `model`'s layers that have weights from the legacy file at `path`, checking counts
    and shapes (`DataError` naming the file, layer and shapes on mismatch)."""
    groups = read_weights(path)
    layers = [layer for layer in model.layers if layer.weights]
    if len(groups) != len(layers):
        raise DataError(f"{path}: weights for {len(groups)} layers, expected {len(layers)} "
                        f"({', '.join(layer.name for layer in layers)})")
    for layer, arrays in zip(layers, groups):
        expected = [tuple(w.shape) for w in layer.weights]
        if [a.shape for a in arrays] != expected:
            raise DataError(f"{path}: layer {layer.name} ({type(layer).__name__}) gets weights of shapes "
                            f"{[a.shape for a in arrays]}, expected {expected}")
        layer.set_weights(arrays)


def write_weights(path: str | Path, layers: list[tuple[str, list[tuple[str, np.ndarray]]]]) -> None:
    """Write `[(layer_name, [(weight_name, array), ...]), ...]` in the Keras 2.4 layout (weightless layers get
    an empty `weight_names`). Weight datasets are stored at `<layer>/<layer>/<weight>:0`."""
    import h5py

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with h5py.File(tmp, "w") as f:
        f.attrs["backend"] = "tensorflow"
        f.attrs["keras_version"] = "2.4.0"
        f.attrs["layer_names"] = np.array([name.encode() for name, _ in layers])
        for name, weights in layers:
            group = f.create_group(name)
            full = [f"{name}/{w}:0".encode() for w, _ in weights]
            group.attrs["weight_names"] = np.array(full) if full else np.array([], dtype=np.float64)
            for key, (_, array) in zip(full, weights):
                group.create_dataset(key.decode(), data=np.asarray(array, np.float32))
    tmp.replace(path)
