"""Train/validation split of a PGDL training set: per class, a seeded fraction to validation, the rest to train.

The default split is disjoint and exhaustive (1,000 of CIFAR-10's 5,000 images per class to validation). The
`leaky` variant emulates the original code (Q-leaky-split in docs/quirks.md): validation and train are cut from two
independent permutations of each class, so about 80 % of validation also lands in train and 20 % of the images in
neither. Exact membership of the original is unrecoverable (it had no seed). Must not read files.
"""
import numpy as np

VAL_FRACTION = 0.2
SEED = 0


def split_indices(labels: np.ndarray, seed: int = SEED, leaky: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Indices into `labels` (int, `(n,)`) → `(train_idx, val_idx)`, each sorted int64.

    Per class c with n_c examples, `round(VAL_FRACTION * n_c)` go to validation. Same labels and seed, same split.
    """
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = round(VAL_FRACTION * len(idx))
        perm = rng.permutation(idx)
        val.append(perm[:k])
        train.append((rng.permutation(idx) if leaky else perm)[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))
