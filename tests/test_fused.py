"""The fused host kernel for T1/T2 (`model.regularisers.fused`, the CPU path) equals the in-graph TensorFlow path
(the GPU path, here on the CPU): every option, degenerate batches, float32 and float64, finite differences, same
bits twice, its diagnostics."""
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tensorflow as tf

from model.errors import SpecError
from model.regularisers import blas, fused, registry

TOLERANCE = {tf.float32: (1e-6, 1e-5), tf.float64: (1e-6, 1e-10)}    # (value, gradient), relative
OPTIONS = [{"zero_length_bars": bars, "dead_neurons": dead} for bars in registry.ZERO_LENGTH_BARS
           for dead in registry.DEAD_NEURONS]


def cases(dtype):
    """name → list of layer activations (the logits last); every case the regulariser tests use, and exact ones."""
    rng = np.random.default_rng(7)
    relu = np.maximum(rng.standard_normal((32, 30)), 0.0) + 0.01 * rng.standard_normal((32, 30))
    const = rng.standard_normal((16, 8))
    const[:, 2] = 0.0                                              # dead ReLU
    const[:, 5] = 1.5                                              # constant
    dup = rng.standard_normal((16, 8))
    dup[:, 6], dup[:, 7] = -dup[:, 1], dup[:, 3]                   # exact duplicates: corr −1 and 1, exact ties
    scaled = rng.standard_normal((16, 8))
    scaled[:, 6] = -3.0 * scaled[:, 1]                             # |corr| = 1 up to rounding (test_regularisers)
    ties = np.round(rng.uniform(-1, 1, (20, 12)), 1)               # a coarse grid: many equal correlations
    bits = np.stack([rng.permutation(np.repeat([0.0, 1.0], 8)) for _ in range(9)], axis=1)  # exact correlations
    bits[:, 4], bits[:, 7] = bits[:, 0], 1.0 - bits[:, 2]          # corr exactly 1 and −1: zero-length bars
    out = {"random": [relu, rng.standard_normal((32, 10))], "constant": [const[:, :5], const[:, 5:]],
           "duplicated": [dup[:, :5], dup[:, 5:]], "scaled_duplicate": [scaled[:, :5], scaled[:, 5:]],
           "ties": [ties[:, :8], ties[:, 8:]], "exact_zero_bars": [bits[:, :6], bits[:, 6:]],
           "batch_of_two": [rng.standard_normal((2, 5)), rng.standard_normal((2, 3))]}
    return {name: [tf.constant(a, dtype) for a in acts] for name, acts in out.items()}


def value_and_grads(reg, acts):
    with tf.GradientTape() as tape:
        tape.watch(acts)
        value = reg(acts, [])
    return value.numpy(), [g.numpy() for g in tape.gradient(value, acts)]


def assert_close(got, want, rtol, name, value_only=False):
    """Value within rtol[0] (absolute floor 1e-9: deaths are in [0, 1]); gradients elementwise within rtol[1] of
    the reference's largest entry, floored at 0.1 (the size of these cases' gradients): on a batch of 2 every death
    is a rounding residue and both gradients are rounding noise (≈ 1e-7 in float32, 1e-15 in float64)."""
    value, grads = got
    ref_value, ref_grads = want
    np.testing.assert_allclose(value, ref_value, rtol=rtol[0], atol=1e-9 if rtol[1] < 1e-6 else 1e-6, err_msg=name)
    if value_only:
        return
    scale = max(0.1, *(np.abs(g).max() for g in ref_grads))
    for g, r in zip(grads, ref_grads):
        np.testing.assert_allclose(g, r, rtol=rtol[1], atol=rtol[1] * scale, err_msg=name)


@pytest.mark.parametrize("dtype", (tf.float32, tf.float64), ids=("float32", "float64"))
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: f"{o['zero_length_bars']}-{o['dead_neurons']}")
@pytest.mark.parametrize("id", ("t1", "t2"))
def test_fused_equals_the_tensorflow_path(id, options, dtype):
    """Every case under every option, except two rounding-decided ones. A duplicate of a random-valued column
    ("duplicated": x₆ = −x₁, x₇ = x₃) has |corr| = 1 only up to 1 ulp, so whether its bar has length exactly 0 is
    decided by rounding, and `drop` / `zero_loss` may legitimately differ between two implementations: there it is
    compared under `keep` only (the exact ±1 correlations of "exact_zero_bars" test the policies). The scaled
    duplicate (x₆ = −3·x₁) also leaves edges (1, k) and (6, k) within rounding of each other: each path takes an
    exact MST of its own rounded Gram matrix and they may pick different ones (same value, the gradient on column 1
    or on column 6), so there only the value is compared, under `keep`."""
    rounding_decided = {"duplicated", "scaled_duplicate"}
    for p in (1.0, 0.5):
        fast = registry.make(id, sampling=p, pairing="numpy", **options)
        reference = registry.make(id, sampling=p, pairing="tf", **options)
        for name, acts in cases(dtype).items():
            if name in rounding_decided and options["zero_length_bars"] != "keep":
                continue
            got, want = value_and_grads(fast, acts), value_and_grads(reference, acts)
            if name == "duplicated":
                got, want = fold_duplicates(got), fold_duplicates(want)
            assert_close(got, want, TOLERANCE[dtype], f"{name}, sampling {p}", value_only=name == "scaled_duplicate")


def fold_duplicates(result):
    """(value, grads) of the "duplicated" case with each duplicate's gradient folded onto its original (x₇ = x₃:
    g₃ + g₇; x₆ = −x₁: g₁ − g₆). Their edges to a third column tie exactly, and which one the MST keeps is decided
    by rounding: the host's syrk gives the two columns equal Gram rows, TensorFlow's float64 matmul rows ≈ 1e-17
    apart (measured), so the gradient lands on one or the other; along the duplicate's direction it is the same."""
    value, (g0, g1) = result
    g0, g1 = g0.copy(), g1.copy()
    g0[:, 3] += g1[:, 2]
    g0[:, 1] -= g1[:, 1]
    g1[:, 1:3] = 0.0
    return value, [g0, g1]


def test_fused_inside_a_tf_function_with_a_dynamic_batch():
    reg, reference = registry.make("t2", sampling=0.5), registry.make("t2", sampling=0.5, pairing="tf")
    spec = [tf.TensorSpec((None, 30), tf.float32), tf.TensorSpec((None, 10), tf.float32)]

    @tf.function(input_signature=spec)
    def step(a, b):
        with tf.GradientTape() as tape:
            tape.watch([a, b])
            value = reg([a, b], [])
        return value, tape.gradient(value, [a, b])

    acts = cases(tf.float32)["random"]
    value, grads = step(*acts)
    assert_close((value.numpy(), [g.numpy() for g in grads]), value_and_grads(reference, acts),
                 TOLERANCE[tf.float32], "random, dynamic batch")


def test_the_exact_case_has_zero_length_bars_and_the_policies_act_on_it():
    x = tf.concat(cases(tf.float64)["exact_zero_bars"], axis=1)
    deaths, _, _ = registry.mst_deaths(x)
    assert (deaths.numpy() == 0).sum() == 2
    for id in ("t1", "t2"):
        _, (dead_zeroed, bars_zeroed, constant) = fused.topological_loss(x, id, "zero_loss")
        assert bars_zeroed.numpy() and not dead_zeroed.numpy() and constant.numpy() == 0
        assert value_and_grads(registry.make(id, zero_length_bars="zero_loss"), [x])[0] == 0.0


def test_diagnostics_of_a_batch_with_constant_neurons():
    x = tf.concat(cases(tf.float64)["constant"], axis=1)
    value, (dead_zeroed, bars_zeroed, constant) = fused.topological_loss(x, "t1", "keep", "zero_grad")
    assert dead_zeroed.numpy() and not bars_zeroed.numpy() and constant.numpy() == 2
    assert value.numpy() < 0
    _, grads = value_and_grads(registry.make("t1", dead_neurons="zero_grad"), [x])
    assert not grads[0].any()
    _, (dead_zeroed, _, constant) = fused.topological_loss(x, "t1", "keep", "safe")
    assert not dead_zeroed.numpy() and constant.numpy() == 2


@pytest.mark.parametrize("id", ("t1", "t2"))
@pytest.mark.parametrize("bars", ("keep", "drop"))
def test_fused_gradient_matches_finite_differences(id, bars):
    x0 = tf.constant(np.random.default_rng(4).standard_normal((9, 7)))
    reg = registry.make(id, zero_length_bars=bars, pairing="numpy")
    theoretical, numerical = tf.test.compute_gradient(lambda x: reg([x[:, :4], x[:, 4:]], []), [x0], delta=1e-6)
    np.testing.assert_allclose(theoretical[0], numerical[0], atol=1e-7)


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_same_input_same_bits(dtype):
    x = np.maximum(np.random.default_rng(2).standard_normal((64, 300)), 0.0).astype(dtype)
    first, second = fused.host_kernel(x, 2, 0, 0), fused.host_kernel(x.copy(), 2, 0, 0)
    for a, b in zip(first, second):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
@pytest.mark.parametrize("dead_mode", fused.DEAD.values())
def test_the_layers_blocks_give_the_bits_of_their_concatenation(dtype, dead_mode):
    """TensorFlow hands the kernel the layers' blocks unconcatenated; value, gradient (block by block) and
    diagnostics are those of the concatenated matrix, bit for bit."""
    x = np.maximum(np.random.default_rng(5).standard_normal((32, 60)), 0.0).astype(dtype)
    x[:, 7] = 1.5                                                              # a constant neuron
    blocks = np.split(x, [25, 45, 59], axis=1)                                 # 25, 20, 14 and 1 columns
    for loss_id in fused.IDS.values():
        whole = fused.host_kernel(x, loss_id, fused.BARS["keep"], dead_mode)
        parts = fused.host_kernel(blocks, loss_id, fused.BARS["keep"], dead_mode)
        assert [g.shape for g in parts[1]] == [block.shape for block in blocks]
        assert np.concatenate(parts[1], axis=1).tobytes() == whole[1].tobytes()
        assert all(np.asarray(a).tobytes() == np.asarray(b).tobytes() for a, b in zip(whole[:1] + whole[2:],
                                                                                     parts[:1] + parts[2:]))


def test_one_implementation_per_device_kind():
    cpu, gpu = registry.make("t1"), registry.make("t1", pairing="tf")   # no GPU here: "auto" is the host pairing
    assert cpu.pairing == "numpy" and not cpu.xla and gpu.pairing == "tf" and gpu.xla
    with pytest.raises(SpecError, match="unknown regulariser option"):
        registry.make("t1", kernel="fused")                          # the option of the deleted second CPU path


def test_registry_diagnostics_come_from_the_fused_kernel():
    constant = cases(tf.float64)["constant"]
    for pairing in ("numpy", "tf"):
        reg = registry.make("t2", dead_neurons="zero_grad", pairing=pairing)
        value, diagnostics = reg.value_and_diagnostics(constant, [])
        assert bool(diagnostics.dead_zeroed) and not bool(diagnostics.bars_zeroed), pairing
        assert int(diagnostics.constant_neurons) == 2, pairing
    exact = cases(tf.float64)["exact_zero_bars"]
    _, diagnostics = registry.make("t1", zero_length_bars="zero_loss").value_and_diagnostics(exact, [])
    assert bool(diagnostics.bars_zeroed) and int(diagnostics.constant_neurons) == 0


def test_the_regulariser_called_from_4_threads_at_once_keeps_blas_threads_and_bits():
    """The BLAS thread count is set once per process (model.regularisers.blas), not limited per call,
    so concurrent calls cannot leave it changed, and every value and gradient equals the one-at-a-time call's bits."""
    from threadpoolctl import threadpool_info

    rng = np.random.default_rng(5)
    batches = [[tf.constant(np.maximum(rng.standard_normal((256, 600)), 0.0), tf.float32),
                tf.constant(rng.standard_normal((256, 10)), tf.float32)] for _ in range(4)]
    reg = registry.make("t2")
    alone = [value_and_grads(reg, acts) for acts in batches]
    counts = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
    assert counts and set(counts) == {blas.THREADS}
    barrier = threading.Barrier(4)

    def work(i):
        barrier.wait()
        return [value_and_grads(reg, batches[i]) for _ in range(3)]

    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(work, range(4)))
    assert [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"] == counts
    for i, runs in enumerate(together):
        for value, grads in runs:
            assert value.tobytes() == alone[i][0].tobytes()
            assert all(g.tobytes() == a.tobytes() for g, a in zip(grads, alone[i][1]))


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_the_fused_kernel_detects_constant_columns_at_a_batch_of_4096(dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4096, 30)).astype(dtype)
    x[:, ::3] = rng.uniform(0.01, 10.0, 10).astype(dtype)     # exactly constant columns at arbitrary values
    for dead_mode in fused.DEAD.values():
        value, grad, _, _, constant, _ = fused.host_kernel(x, fused.IDS["t1"], fused.BARS["keep"], dead_mode)
        assert constant == 10 and np.isfinite(value) and np.isfinite(grad).all() and not grad[:, ::3].any()
