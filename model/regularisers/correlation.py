"""Pearson correlation of activations (samples × neurons), the dissimilarity 1 − |corr|, and the dead-neuron policy.

Dead-neuron policy (Q-dead-neurons in docs/quirks.md). A neuron is *dead* when it is constant over the batch: exactly
(max = min over the column; an all-zero ReLU column is the usual case), or up to rounding, ‖x − x̄‖₂ ≤ 8·eps·√b·max|x|
(eps of the dtype). The columns are centred after subtracting their first row (no gradient; the correlation is
shift-invariant), so an exactly constant column centres to exact zeros at any batch size: the float mean of b equal
values is not always that value (at b = 512 its rounding error exceeded the tolerance for ≈ 40 % of constant
columns, and their "standardised" values were rounding noise with gradients up to 1e13). A dead neuron has
correlation 0 with every other neuron and 1 with itself (so dissimilarity 1 to all others, as the original's
NaN → 0 gives), and its values, including every gradient through it, stay finite: the division by its norm is
replaced by a multiplication by 0, whose gradient is 0. No NaN ever reaches a loss or a gradient.

Everything here is a differentiable TensorFlow function of its input; it knows nothing about Keras models, layers
or the MST.
"""
import numpy as np
import tensorflow as tf

from model.errors import DataError

DEAD_TOLERANCE = 8.0  # dead ⇔ ‖x − x̄‖ ≤ DEAD_TOLERANCE · eps · √b · max|x|


def check_batch(x, at_run_time=True):
    """Raise `DataError` unless x is (b, N) with N ≥ 1 and b ≥ 2 where static; otherwise add a run-time check of
    b ≥ 2 (unless `at_run_time` is False: the caller handles such batches itself)."""
    if x.shape.rank != 2:
        raise DataError(f"activations must be a (batch, neurons) matrix, got shape {x.shape}")
    if x.shape[1] == 0:
        raise DataError("activations have no neurons (an empty layer?); expected at least 1 column")
    if x.shape[0] is not None and x.shape[0] < 2:
        raise DataError(f"a correlation needs a batch of at least 2 samples, got {x.shape[0]}")
    if x.shape[0] is None and at_run_time:
        tf.debugging.assert_greater_equal(tf.shape(x)[0], 2, message="a correlation needs a batch of ≥ 2 samples")
    return x


def standardise(x):
    """Centred, unit-norm columns of x and the dead mask.

    x: (b, N) float tensor. Returns (z, dead): z (b, N) with zᵀz the Pearson correlation matrix off the diagonal
    (dead columns are exactly 0), dead (N,) bool (not differentiated). Cost O(b·N).
    """
    x = check_batch(tf.convert_to_tensor(x))
    shifted = x - tf.stop_gradient(x[:1])              # exact zeros in a constant column
    xc = shifted - tf.reduce_mean(shifted, axis=0, keepdims=True)
    norm = tf.sqrt(tf.reduce_sum(tf.square(xc), axis=0))
    b = tf.cast(tf.shape(x)[0], x.dtype)
    eps = np.finfo(x.dtype.as_numpy_dtype).eps
    scale = tf.reduce_max(tf.abs(x), axis=0)
    constant = tf.equal(tf.reduce_max(x, axis=0), tf.reduce_min(x, axis=0))
    dead = tf.stop_gradient(constant | (norm <= DEAD_TOLERANCE * eps * tf.sqrt(b) * scale))
    inv = tf.where(dead, tf.zeros_like(norm), 1.0 / tf.where(dead, tf.ones_like(norm), norm))
    return xc * inv, dead


def dead_neurons(x):
    """(N,) bool: which columns of x (b, N) are dead under the module's policy."""
    return standardise(x)[1]


def correlation(x):
    """Pearson correlation matrix (N, N) of the columns of x (b, N): diagonal 1, dead neurons 0 off the diagonal.

    Differentiable; O(N²·b). Entries may exceed 1 in magnitude by rounding (see `dissimilarity`).
    """
    z, _ = standardise(x)
    c = tf.matmul(z, z, transpose_a=True)
    return tf.linalg.set_diag(c, tf.ones_like(c[0]))


def dissimilarity(corr, clamp=True):
    """1 − |corr| elementwise; with `clamp` (default; Q-no-clamp in docs/quirks.md) clipped to [0, 1] against
    rounding."""
    d = 1.0 - tf.abs(corr)
    return tf.clip_by_value(d, 0.0, 1.0) if clamp else d
