"""What a zoo gives for one network name: the `Network` (how to build it, its data) and its `Splits` arrays."""
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


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
