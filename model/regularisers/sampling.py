"""Neuron importance sampling (paper §3): which neurons of a batch form the point cloud.

For every layer but the last, keep the ⌊p·n⌋ neurons with the largest mean |activation| over the batch (ties: lower
index first, `tf.math.top_k`); the last (logits) layer is always kept whole. The selection is not differentiated, the
gathered activations are. p = 1 keeps every neuron in its original order. This module knows nothing about losses.
"""
import math

import tensorflow as tf

from model.errors import DataError
from model.regularisers.names import check_fraction


def flatten(activations):
    """Each layer output (b, ...) as (b, n) with a static n ≥ 1; `DataError` for an empty list or layer."""
    if not activations:
        raise DataError("no neuron-layer activations were given; expected at least the logits layer")
    flat = []
    for i, a in enumerate(activations):
        a = tf.convert_to_tensor(a)
        if a.shape.rank is None or a.shape.rank < 2:
            raise DataError(f"neuron layer {i}: expected a (batch, ...) tensor, got shape {a.shape}")
        n = math.prod(a.shape[1:])
        if n is None:
            raise DataError(f"neuron layer {i}: the neuron count must be static, got shape {a.shape}")
        if n == 0:
            raise DataError(f"neuron layer {i} has no neurons (shape {a.shape}); expected at least 1")
        flat.append(tf.reshape(a, (-1, n)))
    return flat


def sample_neurons(activations, p=1.0):
    """The sampled point cloud as a (b, N) matrix: top ⌊p·n⌋ per hidden layer by mean |a|, the last layer whole.

    activations: list of layer outputs (b, ...), logits last. Layers with ⌊p·n⌋ = 0 contribute nothing.
    """
    return tf.concat(sampled_layers(activations, p), axis=1)


def sampled_layers(activations, p=1.0):
    """The same point cloud as its blocks of columns: a list of (b, n_l), one per layer that contributes, in order
    (`sample_neurons` is their concatenation)."""
    p = check_fraction(p)
    flat = flatten(activations)
    kept = []
    for a in flat[:-1]:
        n = a.shape[1]
        k = math.floor(p * n)
        if k == n:
            kept.append(a)
        elif k > 0:
            importance = tf.stop_gradient(tf.reduce_mean(tf.abs(a), axis=0))
            kept.append(tf.gather(a, tf.math.top_k(importance, k=k).indices, axis=1))
    kept.append(flat[-1])
    return kept
