"""The fast regulariser path: host Gram in the activations' dtype, compiled Prim on float32 matrices, float32 against a
float64 full-matrix reference, the batch-of-one guard in training, and a
short digits training run that gives the same results with the fast path and with a full-matrix regulariser.
(Per-regulariser value/gradient equality in float64 lives in test_regularisers.py.)"""
import keras
import numpy as np
import pytest
import tensorflow as tf

from model.regularisers import persistence, registry
from model.regularisers.correlation import correlation, dissimilarity
from model.regularisers.sampling import sample_neurons
from model.runs.spec import Spec
from model.runs.training import RegularisedModel, train
from model.zoo.catalogue import get_network


def full_matrix(id):
    """A straightforward full-matrix regulariser (same sampling and dead-neuron policy as ours): the differentiable
    N×N correlation, D = clamp(1 − |corr|), the NumPy pairing of D itself, gather_nd; no Gram shortcut."""

    def fn(activations, weights):
        x = sample_neurons(activations, 1.0)
        if id == "decov":
            xc = x - tf.reduce_mean(x, 0)
            c = tf.matmul(xc, xc, transpose_a=True) / tf.cast(tf.shape(x)[0], x.dtype)
            return 0.5 * (tf.reduce_sum(tf.square(c)) - tf.reduce_sum(tf.square(tf.linalg.diag_part(c))))
        corr = correlation(x)
        if id == "corr":
            off = tf.abs(corr) * (1 - tf.eye(corr.shape[0], dtype=corr.dtype))
            return tf.reduce_sum(off) / tf.maximum(tf.cast(tf.math.count_nonzero(off), off.dtype), 1.0)
        deaths = persistence.deaths(dissimilarity(corr), pairing="numpy")
        if id == "t1":
            return -tf.reduce_sum(deaths)
        mean = tf.reduce_mean(deaths)
        return 0.5 * tf.sqrt(tf.reduce_mean(tf.square(deaths - mean))) - 0.5 * mean

    def with_diagnostics(activations, weights):  # the Regulariser contract: (value, Diagnostics); none reported here
        return fn(activations, weights), registry.Diagnostics.none()

    return registry.Regulariser(id=id, sampling=1.0, options=dict(registry.DEFAULT_OPTIONS, dead_neurons="safe"),
                                uses_activations=True,
                                pairing="numpy", xla=False, small_batches=False, fn=with_diagnostics)


def value_and_grads(f, activations):
    with tf.GradientTape() as tape:
        tape.watch(activations)
        value = f(activations, [])
    return value, tape.gradient(value, activations)


def random_activations(rng, dtype, b=32):
    relu = np.maximum(rng.standard_normal((b, 30)), 0.0) + 0.01 * rng.standard_normal((b, 30))
    return [tf.constant(relu, dtype), tf.constant(rng.standard_normal((b, 10)), dtype)]


# ---------------------------------------------------------------------------------------------------------------
# Kernels

@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_host_gram_is_the_symmetric_gram_in_the_input_dtype(dtype):
    z = np.random.default_rng(0).standard_normal((17, 40)).astype(dtype)
    g = persistence.gram_host(z)
    assert g.dtype == dtype and g.shape == (40, 40)
    np.testing.assert_array_equal(g, g.T)
    np.testing.assert_allclose(g, z.astype(np.float64).T @ z.astype(np.float64), rtol=1e-5 if dtype == np.float32
                               else 1e-12, atol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
@pytest.mark.parametrize("fresh_below", (persistence.FRESH_BELOW_BYTES, 0), ids=("fresh array", "reused buffer"))
def test_two_thread_host_gram_is_symmetric_deterministic_and_float32_has_the_bits_of_one_syrk(monkeypatch, dtype,
                                                                                            fresh_below):
    """The tiled two-thread Gram (used from TWO_THREADS_FROM neurons) gives each entry as one BLAS dot product,
    whatever tile a row falls in: symmetric, the same bits on every call; in float32 OpenBLAS's matmul and syrk
    kernels agree bit for bit (in float64 they may differ in the last bit). Into a fresh array, or into a reused
    buffer (large matrices), whose second call gives the right smaller matrix."""
    monkeypatch.setattr(persistence, "TWO_THREADS_FROM", 1)
    monkeypatch.setattr(persistence, "GRAM_TILE", 16)
    monkeypatch.setattr(persistence, "FRESH_BELOW_BYTES", fresh_below)
    z = np.random.default_rng(4).standard_normal((64, 75)).astype(dtype)   # 5 tiles, the last one short
    g = persistence.gram_host(z).copy()
    np.testing.assert_array_equal(g, g.T)
    assert persistence.gram_host(z.copy()).tobytes() == g.tobytes()
    if dtype == np.float32:
        assert g.tobytes() == (z.T @ z).tobytes()
    np.testing.assert_allclose(g, z.astype(np.float64).T @ z.astype(np.float64), rtol=1e-5, atol=1e-4)
    again = persistence.gram_host(z[:, :50].copy())
    np.testing.assert_allclose(again, g[:50, :50], rtol=1e-12 if dtype == np.float64 else 0, atol=0)


def test_compiled_prim_reads_a_float32_matrix_exactly():
    rng = np.random.default_rng(1)
    s = np.round(rng.uniform(-1, 1, (120, 120)), 2).astype(np.float32)  # many exact ties
    s = np.triu(s) + np.triu(s, 1).T
    np.testing.assert_array_equal(persistence.prim_compiled(s, similarity=True),
                                  persistence.prim_numpy(s.astype(np.float64), similarity=True))


@pytest.mark.parametrize("id", ("t1", "t2", "corr", "decov"))
def test_float32_fast_path_matches_the_float64_full_matrix_reference(id):
    rng = np.random.default_rng(3)
    acts64 = random_activations(rng, tf.float64)
    acts32 = [tf.cast(a, tf.float32) for a in acts64]
    v32, g32 = value_and_grads(tf.function(registry.make(id)), acts32)
    v64, g64 = value_and_grads(full_matrix(id), acts64)
    assert v32.dtype == tf.float32
    np.testing.assert_allclose(float(v32), float(v64), rtol=1e-5)
    for a, b in zip(g32, g64):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-5 * np.abs(b.numpy()).max())


def test_full_matrix_reference_equals_the_fast_path_in_float64():
    """The training test below relies on it: same value and gradient (1e-6) as `make(id)` for every activation id."""
    acts = random_activations(np.random.default_rng(4), tf.float64)
    for id in ("t1", "t2", "corr", "decov"):
        v_fast, g_fast = value_and_grads(registry.make(id), acts)
        v_ref, g_ref = value_and_grads(full_matrix(id), acts)
        np.testing.assert_allclose(float(v_fast), float(v_ref), rtol=1e-6, err_msg=id)
        for a, b in zip(g_fast, g_ref):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-9, err_msg=id)


# ---------------------------------------------------------------------------------------------------------------
# Training: a batch of one, and fast path == full-matrix regulariser over a short run

def small_model(regulariser, weight):
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation="tanh"), keras.layers.Dense(3)])
    model = RegularisedModel(net, regulariser, weight, train_pass=True, zero_nonfinite=False, val_batch_mean=False)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    return model


@pytest.mark.parametrize("id", ("t1", "t2", "corr", "decov"))
def test_a_batch_of_one_skips_the_regulariser(id):
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((1, 6)).astype(np.float32), np.array([2], np.int32)
    regularised, plain = small_model(registry.make(id), 10.0), small_model(registry.make("none"), 0.0)
    for model in (regularised, plain):                               # static batch of 1, then a dynamic one
        step = tf.function(model.train_step)
        logs = step((tf.constant(x), tf.constant(y)))
        batch = (tf.TensorSpec((None, 6)), tf.TensorSpec((None,), tf.int32))
        dynamic = tf.function(model.train_step, input_signature=[batch])
        logs = dynamic((tf.constant(x), tf.constant(y)))
    assert float(logs["reg"]) == 0.0 if id != "decov" else True
    for a, b in zip(regularised.network.get_weights(), plain.network.get_weights()):
        np.testing.assert_array_equal(a, b)                          # the regulariser added no gradient
    # fit() over 2·4 + 1 examples: the last batch holds one example and training goes on
    xs, ys = rng.standard_normal((9, 6)).astype(np.float32), rng.integers(0, 3, 9).astype(np.int32)
    history = small_model(registry.make(id), 10.0).fit(xs, ys, batch_size=4, epochs=2, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"]).all()


def test_training_with_a_last_batch_of_one(tmp_path):
    spec = Spec.from_dict({"network": "digits/0", "regulariser": "t1", "weight": 0.1, "batch_size": 269,
                           "max_epochs": 2, "output_root": str(tmp_path)})     # 1077 = 4 · 269 + 1
    network = get_network(spec.network)
    splits = network.load_data()
    assert len(splits.x_train) % spec.batch_size == 1
    outcome = train(spec, network, splits, registry.make("t1"), spec.run_dir)
    assert outcome.epochs == 2 and outcome.iterations == 10 and np.isfinite(outcome.val_loss)


@pytest.fixture
def float64_keras():
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    yield
    keras.config.set_dtype_policy(policy)


@pytest.mark.parametrize("id, pairing", [("t1", "tf"), ("t2", "tf"), ("corr", "auto"), ("decov", "auto"),
                                         ("t1", "numpy"), ("t2", "numpy")])
def test_digits_training_fast_path_equals_full_matrix_regulariser(tmp_path, float64_keras, id, pairing):
    """Float64, 2 epochs, ω = 0.01. (With ω = 0.5 the two runs drift apart chaotically, 1e-16 → 1e-7 in 8 steps and
    then a jump: near-dead ReLU neurons make the correlation gradient ∝ 1/‖x − x̄‖, amplifying any rounding.) The TF
    path shares the full-matrix regulariser's standardisation bit for bit and stays within 1e-8; the fused kernel
    standardises with its own summation order, a rounding-level difference that training amplifies at the same rate
    (measured: max weight difference 6e-10 after one epoch, 1.2e-7 after two, against 2e-11 and 3.6e-9 for the TF
    path), hence its looser weight tolerance. pairing "numpy" is the fused host kernel (the CPU path), "tf" the
    in-graph path (the GPU path, here on the CPU), which `train` compiles with XLA as on a GPU: XLA's fused ops round
    the whole step differently, so it gets the looser tolerance too; corr and decov run as on a CPU, without XLA.
    The reference keeps constant neurons as correlation-0 neurons, i.e. `dead_neurons="safe"`, not the default
    `"exclude"` (under which T1's value and T2's gradient differ once a neuron is constant on a batch)."""
    results = {}
    for name, reg in (("fast", registry.make(id, pairing=pairing, dead_neurons="safe")), ("full", full_matrix(id))):
        spec = Spec.from_dict({"network": "digits/0", "regulariser": id, "weight": 0.01, "batch_size": 128,
                               "max_epochs": 2, "output_root": str(tmp_path / name),
                               "optimizer": {"learning_rate": 0.05, "schedule": "constant"}})
        network = get_network(spec.network)
        outcome = train(spec, network, network.load_data(), reg, spec.run_dir)
        net = network.build_model()
        net.load_weights(str(spec.run_dir / "best.weights.h5"))
        results[name] = outcome, net.get_weights(), (spec.run_dir / "history.csv").read_text().splitlines()
    (fast, w_fast, h_fast), (full, w_full, h_full) = results["fast"], results["full"]
    assert w_fast[0].dtype == np.float64
    assert fast.val_accuracy == full.val_accuracy and fast.test_accuracy == full.test_accuracy
    assert fast.val_loss == pytest.approx(full.val_loss, rel=1e-6)                 # Keras metrics are float32
    for a, b in zip(w_fast, w_full):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8 if pairing == "auto" else 1e-6)
    columns = h_fast[0].split(",")
    for row_fast, row_full in zip(h_fast[1:], h_full[1:]):
        for name, a, b in zip(columns, row_fast.split(","), row_full.split(",")):
            if name not in ("seconds", "reg_constant_neurons"):  # the reference reports no diagnostics of its own
                assert float(a) == pytest.approx(float(b), rel=1e-6, abs=1e-9), name
