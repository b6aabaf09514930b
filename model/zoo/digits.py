"""The embedded zoo: scikit-learn's 8×8 digits (1,797 images, ships with scikit-learn) and three small MLPs.

Every later stage can run on a laptop with it. The split and the initial weights are fixed here (seeded constants),
not by a run's seed, so every regulariser starts from the same initialisation, as in the paper. Like MNIST model 1,
`digits/1` is `digits/0` with Dropout and the same initial weights. Knows nothing about regularisers or run folders.

| id | architecture (input 8×8×1, ReLU hidden layers, linear logits) | hidden neurons |
|---|---|---|
| 0 | Flatten → 64 → 48 → 32 → 10 | 144 |
| 1 | network 0 with Dropout(0.3) after every hidden Dense | 144 |
| 2 | Flatten → 48 → 40 → 32 → 24 → 16 → 10 | 160 |
"""
from pathlib import Path

import numpy as np

from model.errors import SpecError
from model.profiles import check_profile
from model.zoo.network import Network, Splits

SPLIT_SEED = 20230807  # fixed: the split never depends on a run's seed
INIT_SEED = 1000  # layer i's kernel initialiser is GlorotUniform(INIT_SEED + i)
VAL_FRACTION, TEST_FRACTION = 0.2, 0.2
DROPOUT = 0.3
ARCHITECTURES = {"0": ((64, 48, 32), False), "1": ((64, 48, 32), True), "2": ((48, 40, 32, 24, 16), False)}


def network(ident: str, data_root: Path, profile: str) -> Network:
    """`digits/<ident>`; `data_root` is unused (the data ship with scikit-learn); both profiles are the same here."""
    if ident not in ARCHITECTURES:
        raise SpecError(f"network 'digits/{ident}': unknown id; expected one of {', '.join(sorted(ARCHITECTURES))}")
    check_profile(profile, f"network 'digits/{ident}': ")
    widths, dropout = ARCHITECTURES[ident]
    return Network(name=f"digits/{ident}", block="digits",
                   build_model=lambda: build_mlp(widths, dropout), load_data=load_splits)


def build_mlp(widths: tuple[int, ...], dropout: bool):
    """A built Sequential MLP on (8, 8, 1) inputs with fixed Glorot-uniform kernels and zero biases; logits (b, 10).

    Dropout layers take their seed from Keras' global seed (set by the run), so the masks follow the run's seed.
    """
    import keras

    layers = [keras.Input((8, 8, 1)), keras.layers.Flatten()]
    for i, width in enumerate((*widths, 10)):
        last = i == len(widths)
        layers.append(keras.layers.Dense(
            width, activation=None if last else "relu", name="logits" if last else f"dense_{i}",
            kernel_initializer=keras.initializers.GlorotUniform(seed=INIT_SEED + i), bias_initializer="zeros"))
        if dropout and not last:
            layers.append(keras.layers.Dropout(DROPOUT))
    return keras.Sequential(layers, name="digits_mlp")


def load_splits() -> Splits:
    """Stratified 60/20/20 split of the 1,797 digits with a fixed seed; pixels scaled from [0, 16] to [0, 1].

    x: float32 (n, 8, 8, 1); y: int32 (n,). Sizes 1077 / 360 / 360.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    y = digits.target.astype(np.int32)
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=TEST_FRACTION, stratify=y, random_state=SPLIT_SEED)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=VAL_FRACTION / (1 - TEST_FRACTION), stratify=y_rest, random_state=SPLIT_SEED + 1)
    return Splits(x_train, y_train, x_val, y_val, x_test, y_test)
