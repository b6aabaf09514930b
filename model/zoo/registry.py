"""Network names → model + data. The one place that knows which zoo families exist.

A network is named `family/id` (`digits/0`, `mnist/2`, `pgdl/task1_v4/20`). Each family is a module of this package
exposing `network(ident: str, data_root: Path, profile: str) -> Network`, imported lazily so that, e.g., the digits
zoo never imports h5py.
"""
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from model.errors import SpecError

FAMILIES = {"digits": "model.zoo.digits", "mnist": "model.zoo.mnist", "pgdl": "model.zoo.pgdl"}


@dataclass(frozen=True)
class Splits:
    """Train / validation / test arrays. x: float32 (n, *input_shape); y: int32 (n,) class ids."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@dataclass(frozen=True)
class Network:
    """One network of a zoo.

    build_model: returns a fresh, built `keras.Model` (defined inputs, logits output) holding the network's initial
        weights; the same weights on every call (the zoo fixes them, not the run's seed).
    load_data: returns the network's `Splits` (read from disk on each call; cache in the caller).
    """

    name: str
    block: str
    build_model: Callable[[], "object"]
    load_data: Callable[[], Splits]


def get_network(name: str, data_root: str | Path = "data", profile: str = "corrected") -> Network:
    """Resolve `family/id` to a `Network`; a bad name raises `SpecError` listing the known families."""
    family, _, ident = name.partition("/")
    if family not in FAMILIES or not ident:
        raise SpecError(f"network {name!r}: expected 'family/id' with family one of {sorted(FAMILIES)}")
    module = importlib.import_module(FAMILIES[family])
    return module.network(ident, Path(data_root), profile)
