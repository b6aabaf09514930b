"""T1 and T2 on a CPU: one fused host kernel giving the value and the gradient w.r.t. the sampled activations.

`topological_loss(x, id, zero_length_bars, dead_neurons)` is what `model.regularisers.registry.make` uses for `t1`
and `t2` wherever the pairing is on the host (`pairing="numpy"`, the default without a GPU; the GPU path is the
in-graph TensorFlow graph of `registry`). TensorFlow sees one `tf.numpy_function` inside a `tf.custom_gradient`,
whose backward pass is `upstream · ∂R/∂x`, the gradient having been computed by the forward call; the layers'
activations go in as their own blocks of columns and their gradients come out so (no concatenation, no slices).
`host_kernel` does, on the (b, N) activations x, in one call, in x's own layout (no transposes):

1. standardisation (`_standardise`, numba): column means and norms accumulated in float64, the dead mask of
   `model.regularisers.correlation` (max = min, or ‖x − x̄‖ ≤ 8·eps·√b·max|x|, centred after a shift by the first
   row, so a constant column centres to exact zeros at any batch size), z = (x − x̄)/‖x − x̄‖ in x's dtype, 0 for
   dead columns;
2. the Gram matrix zᵀz in x's dtype by BLAS (`model.regularisers.persistence.gram_host`, on the process's fixed
   BLAS thread count, `model.regularisers.blas`): one syrk on this thread below 512 neurons, from there on tiled
   matmuls on two threads (the training step's own ops wait for the kernel, so the second core is idle);
3. the MST of clamp(1 − |zᵀz|, 0, 1) by the compiled Prim (`model.regularisers.persistence.prim_compiled`), reading
   the matrix in float64; under `dead_neurons="exclude"` over the live columns only (`persistence.prim_of_gram`,
   its Gram counted as Prim's time). In float32 the matrix is that of the float32 correlations, and the pairing is
   the exact MST of it; it can differ from the float64 matrix's MST only between edges whose weights lie within the
   float32 Gram's rounding (≈ √b·eps) of each other, where the choice is a near-tie either way; the deaths
   themselves are recomputed from the chosen edges in step 4;
4. `_loss_and_gradient` (numba): the N−1 edge correlations c_e = Σᵢ z_ia z_ib (float64 sums of the products,
   rounded to x's dtype as the TensorFlow path's are), deaths d_e = clamp(1 − |c_e|, 0, 1), the zero-length-bar
   policy, the loss (T1 = −Σ w d; T2 = ½ std − ½ mean of the counted deaths, ∂std := 0 where std = 0), the dead-neuron
   policy, then the gradient written out: ∂R/∂c_e = −sign(c_e)·∂R/∂d_e (0 where the clamp cut, as TensorFlow's
   clip gradient), scattered to the two endpoint columns edge by edge in the MST's order (g = ∂R/∂z), then back
   through the standardisation (∂/∂xc = (g − z·⟨z, g⟩)/‖xc‖, 0 for dead columns; minus the column mean for the
   centring). ⟨z, g⟩ and g's column sums are O(N) sums over the edges, of the edge sums and of z's column sums, so
   g is formed one row at a time and written out at once: two passes over z's rows in all, no (b, N) scratch (the
   four passes and the float64 (b, N) g they replaced cost 0.5 ms more a step at N = 1010, benchmarks/README.md).

A batch of fewer than 2 examples gives 0 (no correlation exists) without any in-graph branch. Every sum runs in
one fixed sequential order (no threads in the numba parts; each Gram entry one BLAS dot product on a fixed thread
count, whichever thread computes it), so the same input gives the same bits, from any thread, on any core count, and
a resumed run stays bit-identical. Why a hand-written kernel: in wall time on the 2-core CPU it was faster than the
TensorFlow graph it replaced, whose extra time was mostly glue around the host Gram and Prim; where its time goes
now, part by part, is in benchmarks/README.md. This module knows nothing about Keras models or files.
"""
import time

import numpy as np
import tensorflow as tf

from model.regularisers import persistence
from model.regularisers.correlation import DEAD_TOLERANCE, check_batch

IDS = {"t1": 1, "t2": 2}
BARS = {"keep": 0, "drop": 1, "zero_loss": 2}
DEAD = {"safe": 0, "zero_grad": 1, "exclude": 2}


def _standardise(xs, tolerance, z, inv, dead):
    """xs: the (b, n_l) blocks of x (b, N), N = Σ n_l, in order → z (b, N) in x's dtype, inv (N,) float64
    (1/‖xc‖, 0 if dead), dead (N,) bool.

    Block by block, row by row, so memory is read in order and each row is one vectorised loop; each column's sums
    still run over the rows in order (i = 0 … b−1)."""
    b = z.shape[0]
    o = 0
    for block in range(len(xs)):
        x = xs[block]
        w = x.shape[1]
        first = np.empty(w)                                    # shift by the first row: a constant column centres to 0
        x0 = x[0]
        for j in range(w):
            first[j] = np.float64(x0[j])
        total = np.zeros(w)
        top = np.zeros(w)
        low = np.full(w, np.inf)
        high = np.full(w, -np.inf)
        for i in range(b):
            xi = x[i]
            for j in range(w):
                v = np.float64(xi[j])
                total[j] += v - first[j]
                top[j] = max(top[j], abs(v))
                low[j] = min(low[j], v)
                high[j] = max(high[j], v)
        m = total / b
        ss = np.zeros(w)
        for i in range(b):
            xi = x[i]
            for j in range(w):
                c = (np.float64(xi[j]) - first[j]) - m[j]
                ss[j] += c * c
        for j in range(w):
            norm = np.sqrt(ss[j])
            dead[o + j] = low[j] == high[j] or norm <= tolerance * np.sqrt(np.float64(b)) * top[j]
            inv[o + j] = 0.0 if dead[o + j] else 1.0 / norm
        for i in range(b):
            xi, zi = x[i], z[i]
            for j in range(w):
                zi[o + j] = ((np.float64(xi[j]) - first[j]) - m[j]) * inv[o + j]
        o += w


def _loss_and_gradient(z, inv, dead, edges, loss_id, bars, dead_mode, grads):
    """Loss of the MST edges (N−1, 2) of the standardised z (b, N) and its gradient w.r.t. x, written into grads:
    x's blocks of columns (b, n_l), in x's dtype.

    Returns (value, dead_zeroed, bars_zeroed, zero_length): the loss (float64, from deaths in z's dtype); whether
    the dead-neuron policy zeroed the gradient; whether the zero-length-bar policy left no gradient (`zero_loss` with
    a death ≤ 0, `drop` with none > 0); how many deaths are exactly 0. Two passes over z's rows: the edge sums (and
    z's column sums), then the gradient row by row; every sum runs over the rows in order, and the contributions to
    one entry in the MST's edge order.
    """
    b, n = z.shape
    k = edges.shape[0]
    ea = np.ascontiguousarray(edges[:, 0])
    eq = np.ascontiguousarray(edges[:, 1])
    sums = np.zeros(k)                                         # Σᵢ z_ia z_iq per edge, and Σᵢ z_ij per column
    colsum = np.zeros(n)
    for i in range(b):
        zi = z[i]
        for e in range(k):
            sums[e] += np.float64(zi[ea[e]]) * np.float64(zi[eq[e]])
        for j in range(n):
            colsum[j] += np.float64(zi[j])
    c = np.empty(k)
    d = np.empty(k)
    w = np.empty(k)
    zero_length = 0
    for e in range(k):
        ce = z.dtype.type(sums[e])                             # the edge correlation in x's dtype
        de = z.dtype.type(1.0) - abs(ce)
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
    gd = np.zeros(k)                                           # ∂R/∂d_e
    if loss_id == 1:
        value = -total
        for e in range(k):
            gd[e] = -w[e]
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
            gd[e] = 0.5 * half_over_std * dvar - 0.5 * w[e] / count
    any_dead = False
    for j in range(n):
        any_dead = any_dead or dead[j]
    dead_zeroed = dead_mode == 1 and any_dead
    if bars_zeroed:
        value = 0.0
    if bars_zeroed or dead_zeroed:
        for block in range(len(grads)):
            grads[block][:, :] = 0.0
        return value, dead_zeroed, bars_zeroed, zero_length
    # ∂R/∂c_e, kept for the edges where it is not 0 (0 where the clamp cut, as TensorFlow's clip gradient; sign(0) = 0).
    # ∂R/∂z = g = z·S, S the symmetric (N, N) matrix holding gc_e at each edge's two places; back through
    # z = (x − x̄)·inv: ∂R/∂x = inv·(g − z·⟨z, g⟩) minus its column mean. ⟨z_a, g_a⟩ = Σ_{e∋a} gc_e·c_e and
    # Σᵢ g_ia = Σ_{e∋a} gc_e·Σᵢ z_i,other come from the edge and column sums (O(N)), so g is formed a row at a time
    active = 0
    ga = np.empty(k, edges.dtype)
    gq = np.empty(k, edges.dtype)
    gc = np.empty(k)
    dot = np.zeros(n)
    gsum = np.zeros(n)
    for e in range(k):
        if 1.0 - abs(c[e]) < 0.0 or c[e] == 0.0 or gd[e] == 0.0:
            continue
        a, q = ea[e], eq[e]
        ge = -gd[e] if c[e] > 0.0 else gd[e]
        ga[active], gq[active], gc[active] = a, q, ge
        active += 1
        dot[a] += ge * sums[e]
        dot[q] += ge * sums[e]
        gsum[a] += ge * colsum[q]
        gsum[q] += ge * colsum[a]
    shift = np.empty(n)                                        # ∂R/∂x_ij = inv_j·g_ij − shift_j·z_ij − offset_j
    offset = np.empty(n)                                       # (all 0 for a dead column, whose inv is 0)
    for j in range(n):
        shift[j] = inv[j] * dot[j]
        offset[j] = inv[j] * (gsum[j] - dot[j] * colsum[j]) / b
    row = np.empty(n)                                          # g's row i
    for i in range(b):
        zi = z[i]
        row[:] = 0.0
        for e in range(active):
            a, q = ga[e], gq[e]
            za = np.float64(zi[a])
            row[a] += gc[e] * np.float64(zi[q])
            row[q] += gc[e] * za
        o = 0
        for block in range(len(grads)):
            out = grads[block][i]
            for j in range(out.shape[0]):
                out[j] = inv[o + j] * row[o + j] - shift[o + j] * np.float64(zi[o + j]) - offset[o + j]
            o += out.shape[0]
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
    """T1/T2 of the (b, N) float32/float64 activations x and its gradient, one call (module docstring).

    x: one (b, N) array, or a sequence of (b, n_l) arrays of one dtype, x's blocks of columns in order (the layers,
    so that TensorFlow neither concatenates them before the call nor slices the gradient after it).
    loss_id, bars, dead_mode: codes of `IDS`, `BARS`, `DEAD`. Returns (value () and grad in x's dtype and form (an
    array, or a list of blocks), dead_zeroed bool, bars_zeroed bool, constant_neurons int32, zero_length_bars
    int32). With `times` (a dict), adds each part's wall seconds under 'standardise', 'gram', 'prim',
    'loss_and_gradient' (under `dead_neurons="exclude"` the Gram of the live columns is counted in 'prim'). Fewer
    than 2 rows: all 0.
    """
    standardise, loss_and_gradient = _kernels()
    clock = time.perf_counter
    t0 = clock()
    blocks = tuple(np.ascontiguousarray(block) for block in ((x,) if isinstance(x, np.ndarray) else x))
    b, dtype = blocks[0].shape[0], blocks[0].dtype
    n = sum(block.shape[1] for block in blocks)
    grads = [np.empty_like(block) for block in blocks]
    form = (lambda grads: grads[0]) if isinstance(x, np.ndarray) else list
    if b < 2:                                                 # no correlation: skipped (`topological_loss`)
        for grad in grads:
            grad[:] = 0
        return np.zeros((), dtype), form(grads), np.bool_(False), np.bool_(False), np.int32(0), np.int32(0)
    z = np.empty((b, n), dtype)
    inv = np.empty(n)
    dead = np.empty(n, dtype=np.bool_)
    standardise(blocks, DEAD_TOLERANCE * np.finfo(dtype).eps, z, inv, dead)
    t1 = clock()
    if dead_mode == DEAD["exclude"]:                          # the MST of the live columns alone, loops dropped
        t2 = clock()
        edges = persistence.prim_of_gram(z, dead)
        edges = edges[edges[:, 0] != edges[:, 1]]
    else:
        gram = persistence.gram_host(z)
        t2 = clock()
        edges = persistence.prim_compiled(gram, similarity=True)
    t3 = clock()
    value, dead_zeroed, bars_zeroed, zero_length = loss_and_gradient(z, inv, dead, edges, loss_id, bars, dead_mode,
                                                                     tuple(grads))
    t4 = clock()
    if times is not None:
        for part, seconds in (("standardise", t1 - t0), ("gram", t2 - t1), ("prim", t3 - t2),
                              ("loss_and_gradient", t4 - t3)):
            times[part] = times.get(part, 0.0) + seconds
    return (np.asarray(value, dtype), form(grads), np.bool_(dead_zeroed), np.bool_(bars_zeroed),
            np.int32(dead.sum()), np.int32(zero_length))


def topological_loss(x, id, zero_length_bars="keep", dead_neurons="safe"):
    """T1 or T2 (`id`) of x (b, N), float32/float64, through `host_kernel`; differentiable (w.r.t. x).

    x: a (b, N) tensor or a list of (b, n_l) tensors, its blocks of columns (the sampled layers, N = Σ n_l), which
    reach the host kernel as they are and get their gradients as they are (a concatenation before the call and the
    gradient's slices after it cost 0.4 ms per step at N = 1010). Returns (value (), diagnostics): diagnostics =
    (dead_zeroed bool, bars_zeroed bool, constant_neurons int32), the same decisions the value was computed with
    (not differentiated). A batch of fewer than 2 examples (known only at run time) gives value and gradient 0 and
    no diagnostics, as `RegularisedModel` skips it, with no in-graph branch (a `tf.cond` around the call cost 0.4 ms
    per step at N = 1010). Not XLA-compilable (one host op).
    """
    blocks = [check_batch(tf.convert_to_tensor(block), at_run_time=False)     # the kernel gives 0 below 2 rows
              for block in (x if isinstance(x, (list, tuple)) else [x])]
    dtype, k = blocks[0].dtype, len(blocks)
    codes = IDS[id], BARS[zero_length_bars], DEAD[dead_neurons]

    @tf.autograph.experimental.do_not_convert                  # host code: never rewritten by AutoGraph
    def call(*arrays):
        value, grads, *diagnostics = host_kernel(arrays, *codes)
        return (value, *grads, *diagnostics)

    out = tf.numpy_function(call, [tf.stop_gradient(block) for block in blocks],
                            [dtype] * (1 + k) + [tf.bool, tf.bool, tf.int32, tf.int32], stateful=False)
    value, grads, diagnostics = out[0], out[1:1 + k], out[1 + k:4 + k]
    value.set_shape(())
    for grad, block in zip(grads, blocks):
        grad.set_shape(block.shape)
    for flag in diagnostics:
        flag.set_shape(())

    @tf.custom_gradient
    def attach(*xs):                                           # R(x) with the gradient the host call computed
        return tf.identity(value), lambda upstream: [upstream * grad for grad in grads]

    return attach(*blocks), tuple(diagnostics)
