"""T1 and T2 as one fused host kernel: value and gradient w.r.t. the sampled activations in one call.

`topological_loss(x, id, zero_length_bars, dead_neurons)` is what `model.regularisers.registry.make` uses for `t1`
and `t2` with the option `kernel="fused"` (opt-in; `"auto"` is the TensorFlow path): TensorFlow sees one
`tf.numpy_function` inside a `tf.custom_gradient`, whose backward pass is `upstream · ∂R/∂x`, the gradient having
been computed by the forward call. `host_kernel` does, on the (b, N) activations x, in one call:

1. standardisation (`_standardise`, numba): column means and norms accumulated in float64, the dead mask of
   `model.regularisers.correlation` (max = min, or ‖x − x̄‖ ≤ 8·eps·√b·max|x|, centred after a shift by the first
   value), z = (x − x̄)/‖x − x̄‖ in x's dtype, 0 for dead
   columns, stored transposed (N, b);
2. the Gram matrix zᵀz by BLAS syrk in x's dtype (`model.regularisers.persistence.gram_host`);
3. the MST of clamp(1 − |zᵀz|, 0, 1) by the compiled Prim (`model.regularisers.persistence.prim_compiled`; under
   `dead_neurons="exclude"` over the live columns only, `persistence.prim_of_gram`, its time counted as Prim's);
4. `_loss_and_gradient` (numba): the N−1 edge correlations c_e = Σᵢ z_ia z_ib (float64 sums of the products,
   rounded to x's dtype as the TensorFlow path's are), deaths d_e = clamp(1 − |c_e|, 0, 1), the zero-length-bar
   policy, the loss (T1 = −Σ w d; T2 = ½ std − ½ mean of the counted deaths, ∂std := 0 where std = 0), the dead-neuron
   policy, then the gradient written out: ∂R/∂c_e = −sign(c_e)·∂R/∂d_e (0 where the clamp cut, as TensorFlow's
   clip gradient), scattered to the two endpoint columns edge by edge in the MST's order, then back through the
   standardisation (∂/∂xc = (g − z·⟨z, g⟩)/‖xc‖, 0 for dead columns; minus the column mean for the centring).

Every sum runs in one fixed sequential order (no threads in the numba parts; BLAS's own deterministic blocking for
the Gram), so the same input gives the same bits and a resumed run stays bit-identical.

Why it exists: the TensorFlow path (`registry._t1`/`_t2`, the tested reference and the XLA / GPU path) spends CPU
time in glue around the host Gram and Prim (standardisation forward and backward, edge gathers and their dense
gradients, the host round trip), which one host call avoids. It takes less CPU per step than the TensorFlow path but
was not faster in wall time on the test machine, so it is not the default; the measurements are in
benchmarks/README.md, *Fused kernel*.
This module knows nothing about Keras models or files.
"""
import time

import numpy as np
import tensorflow as tf

from model.regularisers import persistence
from model.regularisers.correlation import DEAD_TOLERANCE, check_batch

IDS = {"t1": 1, "t2": 2}
BARS = {"keep": 0, "drop": 1, "zero_loss": 2}
DEAD = {"safe": 0, "zero_grad": 1, "exclude": 2}


def _standardise(xt, tolerance, zt, inv, dead):
    """xt (N, b) → zt (N, b) in xt's dtype, inv (N,) float64 (1/‖xc‖, 0 if dead), dead (N,) bool. Returns means."""
    n, b = xt.shape
    mean = np.empty(n)
    for j in range(n):
        first = np.float64(xt[j, 0])                   # shift by the first value: a constant column centres to 0
        s = 0.0
        top = 0.0
        low = np.inf
        high = -np.inf
        for i in range(b):
            v = np.float64(xt[j, i])
            s += v - first
            top = max(top, abs(v))
            low = min(low, v)
            high = max(high, v)
        m = s / b
        ss = 0.0
        for i in range(b):
            c = (np.float64(xt[j, i]) - first) - m
            ss += c * c
        norm = np.sqrt(ss)
        mean[j] = first + m
        dead[j] = low == high or norm <= tolerance * np.sqrt(np.float64(b)) * top
        inv[j] = 0.0 if dead[j] else 1.0 / norm
        for i in range(b):
            zt[j, i] = ((np.float64(xt[j, i]) - first) - m) * inv[j]
    return mean


def _loss_and_gradient(xt, zt, mean, inv, dead, edges, loss_id, bars, dead_mode, gxt):
    """Loss of the MST edges (N−1, 2) and its gradient w.r.t. x, written transposed into gxt (N, b) float64.

    Returns (value, dead_zeroed, bars_zeroed, zero_length): the loss (float64, from deaths in zt's dtype); whether
    the dead-neuron policy zeroed the gradient; whether the zero-length-bar policy left no gradient (`zero_loss` with
    a death ≤ 0, `drop` with none > 0); how many deaths are exactly 0.
    """
    n, b = zt.shape
    k = edges.shape[0]
    c = np.empty(k)
    d = np.empty(k)
    w = np.empty(k)
    zero_length = 0
    for e in range(k):
        a, q = edges[e, 0], edges[e, 1]
        s = 0.0
        for i in range(b):
            s += np.float64(zt[a, i]) * np.float64(zt[q, i])
        ce = zt.dtype.type(s)                                  # the edge correlation in x's dtype
        de = zt.dtype.type(1.0) - abs(ce)
        c[e] = ce
        d[e] = min(max(np.float64(de), 0.0), 1.0)
        if d[e] <= 0.0:
            zero_length += 1
    for e in range(k):
        w[e] = 1.0 if bars != 1 or d[e] > 0.0 else 0.0
    bars_zeroed = (bars == 2 and zero_length > 0) or (bars == 1 and zero_length == k)
    total = 0.0
    counted = 0.0
    for e in range(k):
        total += w[e] * d[e]
        counted += w[e]
    g = np.zeros(k)                                            # ∂R/∂d_e
    if loss_id == 1:
        value = -total
        for e in range(k):
            g[e] = -w[e]
    else:
        count = max(counted, 1.0)
        mu = total / count
        s1 = 0.0
        var = 0.0
        for e in range(k):
            s1 += w[e] * (d[e] - mu)
            var += w[e] * (d[e] - mu) * (d[e] - mu)
        var /= count
        std = np.sqrt(var) if var > 0.0 else 0.0
        value = 0.5 * std - 0.5 * mu
        half_over_std = 0.5 / std if var > 0.0 else 0.0
        for e in range(k):
            dvar = 2.0 / count * (w[e] * (d[e] - mu) - s1 * w[e] / count)
            g[e] = 0.5 * half_over_std * dvar - 0.5 * w[e] / count
    any_dead = False
    for j in range(n):
        any_dead = any_dead or dead[j]
    dead_zeroed = dead_mode == 1 and any_dead
    if bars_zeroed:
        value = 0.0
    gxt[:, :] = 0.0
    if bars_zeroed or dead_zeroed:
        return value, dead_zeroed, bars_zeroed, zero_length
    for e in range(k):                                         # ∂R/∂z, edge by edge in the MST's order
        if 1.0 - abs(c[e]) < 0.0 or c[e] == 0.0:               # the clamp cut it, or sign(0) = 0
            continue
        s = -g[e] if c[e] > 0.0 else g[e]
        a, q = edges[e, 0], edges[e, 1]
        for i in range(b):
            za = np.float64(zt[a, i])
            gxt[a, i] += s * np.float64(zt[q, i])
            gxt[q, i] += s * za
    for j in range(n):                                         # back through z = (x − x̄)/‖x − x̄‖
        if dead[j]:
            gxt[j, :] = 0.0
            continue
        dot = 0.0
        for i in range(b):
            dot += (np.float64(xt[j, i]) - mean[j]) * inv[j] * gxt[j, i]
        s = 0.0
        for i in range(b):
            gi = inv[j] * (gxt[j, i] - (np.float64(xt[j, i]) - mean[j]) * inv[j] * dot)
            gxt[j, i] = gi
            s += gi
        m = s / b
        for i in range(b):
            gxt[j, i] -= m
    return value, dead_zeroed, bars_zeroed, zero_length


_compiled = None


def _kernels():
    """The numba-compiled (`nogil`, on-disk cache) `_standardise` and `_loss_and_gradient`; compiled once."""
    global _compiled
    if _compiled is None:
        import numba

        jit = numba.njit(cache=True, nogil=True)
        _compiled = jit(_standardise), jit(_loss_and_gradient)
    return _compiled


def host_kernel(x, loss_id, bars, dead_mode, times=None):
    """T1/T2 of the (b, N) float32/float64 array x and its gradient, one call (module docstring).

    loss_id, bars, dead_mode: codes of `IDS`, `BARS`, `DEAD`. Returns (value () and grad (b, N) in x's dtype,
    dead_zeroed bool, bars_zeroed bool, constant_neurons int32, zero_length_bars int32). With `times` (a dict),
    adds each part's wall seconds under 'standardise', 'gram', 'prim', 'loss_and_gradient', 'transpose'.
    """
    standardise, loss_and_gradient = _kernels()
    clock = time.perf_counter
    t0 = clock()
    x = np.asarray(x)
    xt = np.ascontiguousarray(x.T)
    b, n = x.shape
    zt = np.empty_like(xt)
    inv = np.empty(n)
    dead = np.empty(n, dtype=np.bool_)
    t1 = clock()
    mean = standardise(xt, DEAD_TOLERANCE * np.finfo(x.dtype).eps, zt, inv, dead)
    t2 = clock()
    if dead_mode == DEAD["exclude"]:                          # the MST of the live columns alone, loops dropped
        t3 = clock()
        edges = persistence.prim_of_gram(zt.T, dead)
        edges = edges[edges[:, 0] != edges[:, 1]]
    else:
        gram = persistence.gram_host(zt.T)
        t3 = clock()
        edges = persistence.prim_compiled(gram, similarity=True)
    t4 = clock()
    gxt = np.empty((n, b))
    value, dead_zeroed, bars_zeroed, zero_length = loss_and_gradient(xt, zt, mean, inv, dead, edges, loss_id, bars,
                                                                     dead_mode, gxt)
    t5 = clock()
    grad = np.ascontiguousarray(gxt.T, dtype=x.dtype)
    t6 = clock()
    if times is not None:
        for part, seconds in (("transpose", t1 - t0 + t6 - t5), ("standardise", t2 - t1), ("gram", t3 - t2),
                              ("prim", t4 - t3), ("loss_and_gradient", t5 - t4)):
            times[part] = times.get(part, 0.0) + seconds
    return (np.asarray(value, x.dtype), grad, np.bool_(dead_zeroed), np.bool_(bars_zeroed),
            np.int32(dead.sum()), np.int32(zero_length))


def topological_loss(x, id, zero_length_bars="keep", dead_neurons="safe"):
    """T1 or T2 (`id`) of x (b, N), float32/float64, through `host_kernel`; differentiable (w.r.t. x).

    Returns (value (), diagnostics): diagnostics = (dead_zeroed bool, bars_zeroed bool, constant_neurons int32),
    the same decisions the value was computed with (not differentiated). Not XLA-compilable (one host op).
    """
    x = check_batch(tf.convert_to_tensor(x))
    codes = IDS[id], BARS[zero_length_bars], DEAD[dead_neurons]
    out_types = [x.dtype, x.dtype, tf.bool, tf.bool, tf.int32, tf.int32]

    value, grad, dead_zeroed, bars_zeroed, constant, _ = tf.numpy_function(
        lambda a: host_kernel(a, *codes), [tf.stop_gradient(x)], out_types, stateful=False)
    value.set_shape(())
    grad.set_shape(x.shape)
    for flag in (dead_zeroed, bars_zeroed, constant):
        flag.set_shape(())

    @tf.custom_gradient
    def attach(x):                                             # R(x) with the gradient the host call computed
        return tf.identity(value), lambda upstream: upstream * grad

    return attach(x), (dead_zeroed, bars_zeroed, constant)
