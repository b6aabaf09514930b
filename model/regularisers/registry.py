"""The registry of regularisers: `make(id, sampling=p, **options)` → a callable `reg(activations, weights)`.

Ids (paper eqs. 1, 2, 4): `none`; `t1` = −Σ deaths; `t2` = ½·std − ½·mean of deaths (population
std; where all counted deaths are equal, e.g. N = 2 or a batch of 2, the std's gradient is taken as 0);
`l1`, `l2` = Σ|w|, Σw² over every trainable variable, biases included, no ½ (Q-l1l2-biases, kept for comparability);
`corr` = mean |corr| over the off-diagonal non-zero entries; `decov` (Cogswell et al. 2016) =
½(‖C‖²_F − ‖diag C‖²) of the batch covariance C. The activation regularisers see the sampled neurons
(`model.regularisers.sampling`) of all neuron layers together, as one (b, N) point cloud.

Which implementation runs where (one per device kind; measurements in benchmarks/README.md): t1/t2 on a CPU (the
`"numpy"` pairing) are one fused host kernel (`model.regularisers.fused`: standardisation, Gram, MST, loss and its
analytic gradient in one call; measured faster in wall time than the TensorFlow graph it replaced); on a GPU (the
`"tf"` pairing) they are the TensorFlow graph below (`_t1`, `_t2`), XLA-compilable: the MST of an in-graph float64
Gram matrix by Borůvka (`model.regularisers.persistence.mst_edges_of_gram`), then only the N−1 MST-edge correlations
recomputed differentiably, so the backward pass is O(N·b) (TensorFlow's own gather gradient: a faster hand-written
segment-sum gradient made CPU results depend on thread timing, breaking bit-exact resumes). `corr` uses one N×N Gram
product forward and one backward (custom gradient); `decov` uses the b×b Gram when b < N.
Regularisers are pure functions of tensors, usable inside `tf.function` in float32 and float64; they know nothing
about models or files.
"""
import dataclasses
from typing import NamedTuple

import tensorflow as tf

from model.errors import SpecError
from model.regularisers import fused, persistence
from model.regularisers.correlation import check_batch, dead_neurons, standardise
from model.regularisers.names import DEAD_NEURONS, DEFAULT_OPTIONS, IDS, PAPER_OPTIONS, ZERO_LENGTH_BARS, check
from model.regularisers.sampling import sampled_layers

# the vocabulary (ids, options) lives in model.regularisers.names, TensorFlow-free; re-exported here
__all__ = ["IDS", "DEFAULT_OPTIONS", "PAPER_OPTIONS", "ZERO_LENGTH_BARS", "DEAD_NEURONS", "Diagnostics",
           "Regulariser", "make", "mst_deaths"]


class Diagnostics(NamedTuple):
    """What the regulariser's own policies did on one batch, from the same computation as its value (no extra pass).

    dead_zeroed: bool scalar, the dead-neuron policy (`dead_neurons="zero_grad"`) stopped the whole gradient;
    bars_zeroed: bool scalar, the zero-length-bar policy left no gradient (`zero_loss` with a death ≤ 0, or `drop`
    with no death > 0); constant_neurons: int32 scalar, how many sampled neurons are constant over the batch (the
    dead mask of `model.regularisers.correlation.standardise`; 0 for the weight regularisers, which sample none).
    A tf.nest structure, so it passes through `tf.cond`; any back-end computing a value fills the same three fields.
    """

    dead_zeroed: tf.Tensor
    bars_zeroed: tf.Tensor
    constant_neurons: tf.Tensor

    @classmethod
    def none(cls) -> "Diagnostics":
        """No policy acted, no sampled neuron (weight regularisers; a skipped batch)."""
        return cls(tf.constant(False), tf.constant(False), tf.constant(0, tf.int32))


@dataclasses.dataclass(frozen=True, eq=False)
class Regulariser:
    """`reg(activations, weights) -> scalar tf.Tensor`; `reg.value_and_diagnostics(activations, weights)` also
    returns its `Diagnostics`. See `make`. Hashable by identity (a `tf.function` argument)."""

    id: str
    sampling: float
    options: dict
    uses_activations: bool
    pairing: str  # "numpy" (t1/t2: the fused host kernel) or "tf" (in-graph), `persistence.resolve_pairing`
    xla: bool  # compile train_step with XLA: only with the in-graph "tf" pairing (tf.numpy_function cannot be)
    small_batches: bool  # gives value and gradient 0 itself on a batch of < 2 examples (the fused host kernel)
    fn: object = dataclasses.field(repr=False)  # (activations, weights) -> (value, Diagnostics)

    def __call__(self, activations, weights):
        return self.fn(activations, weights)[0]

    def value_and_diagnostics(self, activations, weights):
        """(scalar value, `Diagnostics`) of one batch, one computation."""
        return self.fn(activations, weights)


def make(id, *, sampling=1.0, **options):
    """Build the regulariser `id` (one of `IDS`) on a fraction `sampling` ∈ (0, 1] of each hidden layer's neurons.

    Options (every option is accepted by every id and ignored where it does not apply; quirk codes: docs/quirks.md):
    - `zero_length_bars` (t1, t2; Q-zero-bars): `"keep"` (default) uses all N−1 MST edges with the dissimilarity
      clamped to [0, 1] (Q-no-clamp); `"drop"` keeps only deaths > 0 (the paper's definition: the non-zero MST
      weights; the loss is 0 when none is left); `"zero_loss"` is the original's behaviour: if any MST death is
      ≤ 0 the whole regulariser is 0 with zero gradient for that batch.
    - `dead_neurons` (t1, t2, corr; Q-dead-neurons): `"exclude"` (default) makes the constant neurons leave the MST
      for that batch (their correlation is undefined): t1/t2 sum over the L − 1 bars of the MST of the L
      non-constant neurons (0, without gradient, when L < 2). `"safe"` keeps them as neurons of correlation 0 to
      all others (`model.regularisers.correlation`): each adds a bar of death 1, the maximum, so T1's value falls
      by 1 per dead neuron (a reward for dying, in the value only: those bars have zero gradient and the live
      neurons' bars are the same MST, so t1's gradient is the same under both and T1 trains identically; t2's
      differs, the bars at 1 entering its mean and std). Leaving the MST does not make T1 monotone in the dead:
      when a dead neuron linked two neurons less correlated with each other than with it, their new edge can be
      longer than the two it replaces, and T1 can still fall (tests/test_regularisers.py). For corr `"exclude"` is
      `"safe"` (a dead neuron's zero correlations are not among the non-zero entries it averages). `"zero_grad"`
      reproduces the original's effect: when any sampled neuron is constant the forward value (as under `"safe"`)
      is still reported but the regulariser's gradient is zero for the whole step (the original's backward pass
      was NaN everywhere and got zeroed). Values and gradients are finite under every policy.
    - `pairing` (t1, t2; Q-pairing): `"auto"` (default: `"tf"` on a GPU, `"numpy"` otherwise), `"numpy"` (the
      fused host kernel: float32 Gram for float32 activations, compiled Prim), `"tf"` (the in-graph TensorFlow path:
      float64 Gram, Borůvka; XLA). Both read the Gram matrix in float64 with the same tie-break
      (`model.regularisers.persistence`) and give the same values and gradients up to rounding
      (tests/test_fused.py); their MSTs can differ only between edges whose weights lie within the float32 Gram's
      rounding of each other.
    Unknown ids or option values raise `SpecError` naming the valid ones.
    """
    p, opts = check(id, sampling, options)
    pairing = persistence.resolve_pairing(opts["pairing"])

    if id == "none":
        fn = _none
    elif id in ("l1", "l2"):
        fn = _l1 if id == "l1" else _l2
    else:
        loss = {"t1": _t1, "t2": _t2, "corr": _corr, "decov": _decov}[id]
        blocks = pairing == "numpy" and id in ("t1", "t2")     # the fused host kernel takes the layers' blocks
        if blocks:
            loss = _fused(id)

        def fn(activations, weights):
            kept = sampled_layers(activations, p)
            n = sum(block.shape[1] for block in kept)
            if n < 2:
                raise SpecError(f"regulariser {id} needs at least 2 sampled neurons, got {n} "
                                f"(sampling={p}); raise the sampling fraction")
            return loss(kept if blocks else tf.concat(kept, axis=1), opts)

    if id in ("none", "l1", "l2"):
        weight_fn = fn

        def fn(activations, weights):
            return weight_fn(activations, weights), Diagnostics.none()

    uses = id not in ("none", "l1", "l2")
    return Regulariser(id=id, sampling=p, options=opts, uses_activations=uses, pairing=pairing, xla=pairing == "tf",
                       small_batches=pairing == "numpy" and id in ("t1", "t2"), fn=fn)


# ----------------------------------------------------------------------------------------------------------------
# Weight regularisers

def _none(activations, weights):
    dtype = activations[-1].dtype if activations else tf.float32
    return tf.zeros((), dtype)


def _weight_sum(weights, f):
    if not weights:
        return tf.zeros((), tf.float32)
    dtype = weights[0].dtype
    return tf.add_n([tf.reduce_sum(f(tf.cast(w, dtype))) for w in weights])


def _l1(activations, weights):
    return _weight_sum(weights, tf.abs)


def _l2(activations, weights):
    return _weight_sum(weights, tf.square)


# ----------------------------------------------------------------------------------------------------------------
# Activation regularisers: x is the sampled (b, N) point cloud

def mst_deaths(x, exclude_dead=False):
    """Differentiable MST deaths of the correlation dissimilarity of x (b, N): (N−1,) clamped to [0, 1]; in-graph.

    The MST is found on a no-gradient float64 Gram matrix (`model.regularisers.persistence.mst_edges_of_gram`); only
    the N−1 edge correlations are recomputed with gradient (O(N·b)). Returns (deaths, dead, counted): the dead mask
    (N,) of `model.regularisers.correlation.standardise`, and which of the N−1 bars count (N−1,) bool: all of them,
    or with `exclude_dead` the L − 1 bars of the MST of the L live neurons alone (the dead ones left the graph; the
    other rows are padding, with death 1 and no gradient).
    """
    z, dead = standardise(x)
    edges = persistence.mst_edges_of_gram(z, exclude=dead if exclude_dead else None)
    c = tf.reduce_sum(tf.gather(z, edges[:, 0], axis=1) * tf.gather(z, edges[:, 1], axis=1), axis=0)
    return tf.clip_by_value(1.0 - tf.abs(c), 0.0, 1.0), dead, tf.not_equal(edges[:, 0], edges[:, 1])


def _bar_weights(d, mode, counted):
    """(N−1,) 0/1 weights of the bars that count (among the `counted` ones, (N−1,) bool), and a flag 'the whole loss
    is zero' (zero_loss with a counted bar ≤ 0, or drop with no counted bar > 0: the loss is then 0 either way)."""
    ones = tf.cast(counted, d.dtype)
    if mode == "keep":
        return ones, tf.constant(False)
    if mode == "drop":
        positive = counted & (d > 0)
        return tf.cast(positive, d.dtype), tf.logical_not(tf.reduce_any(positive))  # nothing is left to act
    return ones, tf.reduce_any(counted & (d <= 0))


def _finish(value, zero, dead, opts):
    """Apply the zero-loss and dead-neuron policies to a scalar loss; return (value, `Diagnostics`)."""
    dead_zeroed = tf.constant(False)
    if opts["dead_neurons"] == "zero_grad":
        dead_zeroed = tf.reduce_any(dead)
        value = tf.where(dead_zeroed, tf.stop_gradient(value), value)
    return (tf.where(zero, tf.zeros_like(value), value),
            Diagnostics(dead_zeroed, zero, tf.reduce_sum(tf.cast(dead, tf.int32))))


def _fused(id):
    def loss(x, opts):
        value, diagnostics = fused.topological_loss(x, id, opts["zero_length_bars"], opts["dead_neurons"])
        return value, Diagnostics(*diagnostics)

    return loss


def _t1(x, opts):
    d, dead, counted = mst_deaths(x, opts["dead_neurons"] == "exclude")
    w, zero = _bar_weights(d, opts["zero_length_bars"], counted)
    return _finish(-tf.reduce_sum(w * d), zero, dead, opts)


def _t2(x, opts):
    d, dead, counted = mst_deaths(x, opts["dead_neurons"] == "exclude")
    w, zero = _bar_weights(d, opts["zero_length_bars"], counted)
    count = tf.maximum(tf.reduce_sum(w), 1.0)
    mean = tf.reduce_sum(w * d) / count
    var = tf.reduce_sum(w * tf.square(d - mean)) / count
    positive = var > 0
    std = tf.where(positive, tf.sqrt(tf.where(positive, var, tf.ones_like(var))), tf.zeros_like(var))  # ∂std(0) := 0
    return _finish(0.5 * std - 0.5 * mean, zero, dead, opts)


def _mean_abs_offdiagonal(z):
    """mean |zᵀz| over off-diagonal non-zero entries; backward one (b,N)×(N,N) product. z: (b, N) → scalar."""

    @tf.custom_gradient
    def f(z):
        c = tf.matmul(z, z, transpose_a=True)
        s = tf.linalg.set_diag(tf.sign(c), tf.zeros_like(c[0]))     # sign, 0 on the diagonal and where c == 0
        count = tf.maximum(tf.reduce_sum(tf.abs(s)), 1.0)

        def grad(up):
            return up * 2.0 * tf.matmul(z, s) / count                  # s is symmetric

        return tf.reduce_sum(s * c) / count, grad

    return f(z)


def _corr(x, opts):
    z, dead = standardise(x)
    return _finish(_mean_abs_offdiagonal(z), tf.constant(False), dead, opts)


def _decov(x, opts):
    """½(‖C‖²_F − ‖diag C‖²), C = (1/b) x̃ᵀx̃ with x̃ = x − mean; ‖x̃ᵀx̃‖_F = ‖x̃x̃ᵀ‖_F, so the smaller Gram is used."""
    xc = check_batch(x) - tf.reduce_mean(x, axis=0, keepdims=True)
    b = tf.shape(x)[0]
    fro2 = tf.cond(b < x.shape[1],
                   lambda: tf.reduce_sum(tf.square(tf.matmul(xc, xc, transpose_b=True))),
                   lambda: tf.reduce_sum(tf.square(tf.matmul(xc, xc, transpose_a=True))))
    bf = tf.cast(b, x.dtype)
    diag = tf.reduce_sum(tf.square(xc), axis=0) / bf
    constant = tf.reduce_sum(tf.cast(dead_neurons(x), tf.int32))  # reported only: DeCov has no dead-neuron policy
    return 0.5 * (fro2 / (bf * bf) - tf.reduce_sum(tf.square(diag))), Diagnostics(tf.constant(False),
                                                                                  tf.constant(False), constant)
