"""Registry, importance sampling, fast path == full-matrix implementation, finite differences, degenerate batches."""
import gudhi
import numpy as np
import pytest
import tensorflow as tf

from model.errors import DataError, SpecError
from model.regularisers import persistence, registry
from model.regularisers.sampling import sample_neurons, sampled_layers

ACTIVATION_IDS = ("t1", "t2", "corr", "decov")


# ---------------------------------------------------------------------------------------------------------------
# A straightforward full-matrix implementation (the original's shape: full differentiable N×N correlation)

def reference_sample(activations, p):
    flat = [tf.reshape(a, (a.shape[0], -1)) for a in activations]
    kept = []
    for a in flat[:-1]:
        k = int(np.floor(p * a.shape[1]))
        order = tf.argsort(tf.reduce_mean(tf.abs(a), 0), direction="DESCENDING", stable=True)
        kept.append(tf.gather(a, order[:k], axis=1))
    return tf.concat(kept + [flat[-1]], axis=1)


def reference(id, activations, weights, p=1.0):
    if id == "l1":
        return tf.add_n([tf.reduce_sum(tf.abs(w)) for w in weights])
    if id == "l2":
        return tf.add_n([tf.reduce_sum(tf.square(w)) for w in weights])
    x = reference_sample(activations, p)
    b = x.shape[0]
    xc = x - tf.reduce_mean(x, 0)
    cov = tf.matmul(xc, xc, transpose_a=True)
    if id == "decov":
        c = cov / b
        return 0.5 * (tf.reduce_sum(tf.square(c)) - tf.reduce_sum(tf.square(tf.linalg.diag_part(c))))
    std = tf.sqrt(tf.linalg.diag_part(cov))
    corr = cov / (std[:, None] * std[None, :])
    n = corr.shape[0]
    if id == "corr":
        off = tf.abs(corr) * (1 - tf.eye(n, dtype=corr.dtype))
        return tf.reduce_sum(off) / tf.cast(tf.math.count_nonzero(off), off.dtype)
    d = 1 - tf.abs(corr)
    deaths = tf.gather_nd(d, persistence.mst_edges(d, pairing="numpy"))
    if id == "t1":
        return -tf.reduce_sum(deaths)
    return 0.5 * tf.math.reduce_std(deaths) - 0.5 * tf.reduce_mean(deaths)


def value_and_grads(f, activations, weights):
    with tf.GradientTape() as tape:
        tape.watch(activations)
        value = f(activations, weights)
    grads = tape.gradient(value, activations + weights)
    return value, [np.zeros(v.shape) if g is None else g.numpy() for g, v in zip(grads, activations + weights)]


def random_batch(rng, b=24, dtype=np.float64):
    acts = [rng.standard_normal((b, 12)), rng.standard_normal((b, 2, 3, 4)), rng.standard_normal((b, 5))]
    acts = [tf.constant(np.abs(a) + 0.1 * rng.standard_normal(a.shape) if i == 0 else a, dtype)
            for i, a in enumerate(acts)]
    weights = [tf.Variable(rng.standard_normal(shape).astype(dtype)) for shape in ((4, 3), 3)]
    return acts, weights


# ---------------------------------------------------------------------------------------------------------------
# Registry

def test_ids_and_uses_activations():
    assert registry.IDS == ("none", "t1", "t2", "l1", "l2", "corr", "decov")
    for id in registry.IDS:
        reg = registry.make(id)
        assert reg.id == id and reg.uses_activations == (id in ACTIVATION_IDS)


def test_unknown_id_lists_the_valid_ones():
    with pytest.raises(SpecError, match="unknown regulariser 'T3'.*none, t1, t2, l1, l2, corr, decov"):
        registry.make("T3")


@pytest.mark.parametrize("kwargs, match", [({"sampling": 0.0}, "sampling"), ({"sampling": 1.5}, "sampling"),
                                           ({"sampling": "half"}, "sampling"), ({"alpha": 0.3}, "unknown"),
                                           ({"zero_length_bars": "ignore"}, "keep, drop, zero_loss"),
                                           ({"dead_neurons": "nan"}, "safe, zero_grad, exclude"),
                                           ({"pairing": "giotto"}, "auto, numpy, tf")])
def test_bad_options_raise_spec_error(kwargs, match):
    with pytest.raises(SpecError, match=match):
        registry.make("t1", **kwargs)


def test_the_regulariser_carries_its_resolved_pairing_and_xla_decision():
    cpu = "tf" if tf.config.list_physical_devices("GPU") else "numpy"
    assert registry.make("t1", pairing="auto").pairing == cpu
    assert (registry.make("t1", pairing="numpy").pairing, registry.make("t1", pairing="numpy").xla) == ("numpy", False)
    assert (registry.make("t2", pairing="tf").pairing, registry.make("t2", pairing="tf").xla) == ("tf", True)
    assert not registry.make("corr", pairing="numpy").xla


def test_weight_regularisers_include_biases():
    w = [tf.Variable([[1.0, -2.0]]), tf.Variable([-3.0])]
    assert float(registry.make("l1")([], w)) == 6.0
    assert float(registry.make("l2")([], w)) == 14.0
    assert float(registry.make("none")([tf.ones((2, 3))], w)) == 0.0


# ---------------------------------------------------------------------------------------------------------------
# Importance sampling

def test_sampling_keeps_top_neurons_per_layer_and_the_last_layer_whole():
    a0 = tf.constant([[1.0, -5.0, 0.0, 2.0], [1.0, 5.0, 0.0, -2.0]])       # importance 1, 5, 0, 2
    a1 = tf.constant([[3.0, 1.0], [3.0, 1.0]])                             # ⌊0.5·2⌋ = 1 → neuron 0
    logits = tf.constant([[7.0, 8.0, 9.0], [1.0, 2.0, 3.0]])
    x = sample_neurons([a0, a1, logits], 0.5).numpy()
    np.testing.assert_array_equal(x, [[-5.0, 2.0, 3.0, 7.0, 8.0, 9.0], [5.0, -2.0, 3.0, 1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(sample_neurons([a0, a1, logits], 1.0).numpy(), tf.concat([a0, a1, logits], 1))
    assert sample_neurons([a0, a1, logits], 0.3).shape == (2, 4)           # ⌊0.3·2⌋ = 0: layer a1 contributes nothing
    assert [b.shape[1] for b in sampled_layers([a0, a1, logits], 0.3)] == [1, 3]   # the same cloud, by layer
    np.testing.assert_array_equal(tf.concat(sampled_layers([a0, a1, logits], 0.5), 1), x)


def test_sampling_gradient_flows_to_kept_neurons_only():
    a0 = tf.constant([[1.0, -5.0, 0.5], [1.0, 5.0, 0.5]])
    with tf.GradientTape() as tape:
        tape.watch(a0)
        y = tf.reduce_sum(sample_neurons([a0, tf.ones((2, 1))], 0.4))
    np.testing.assert_array_equal(tape.gradient(y, a0).numpy(), [[0, 1, 0], [0, 1, 0]])


@pytest.mark.parametrize("id", ACTIVATION_IDS)
def test_empty_layer_or_batch_of_one_is_a_clear_error(id):
    reg = registry.make(id)
    with pytest.raises(DataError, match="layer 0 has no neurons"):
        reg([tf.zeros((4, 0)), tf.ones((4, 3))], [])
    with pytest.raises(DataError, match="batch of at least 2"):
        reg([tf.ones((1, 5)), tf.ones((1, 3))], [])
    with pytest.raises(DataError, match="no neuron-layer activations"):
        reg([], [])
    with pytest.raises(SpecError, match="at least 2 sampled neurons"):
        reg([tf.ones((4, 1))], [])


# ---------------------------------------------------------------------------------------------------------------
# Fast path == full-matrix implementation; finite differences

@pytest.mark.parametrize("p", (1.0, 0.5))
@pytest.mark.parametrize("id", ("t1", "t2", "corr", "decov", "l1", "l2"))
@pytest.mark.parametrize("pairing", ("numpy", "tf"))
def test_fast_path_equals_full_matrix_implementation(id, p, pairing):
    acts, weights = random_batch(np.random.default_rng(11))
    fast = tf.function(lambda a, w: registry.make(id, sampling=p, pairing=pairing)(a, w))
    v_fast, g_fast = value_and_grads(fast, acts, weights)
    v_ref, g_ref = value_and_grads(lambda a, w: reference(id, a, w, p), acts, weights)
    np.testing.assert_allclose(float(v_fast), float(v_ref), rtol=1e-6, atol=1e-9)
    for gf, gr in zip(g_fast, g_ref):
        np.testing.assert_allclose(gf, gr, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("id", ACTIVATION_IDS)
def test_gradients_match_finite_differences(id):
    x0 = tf.constant(np.random.default_rng(4).standard_normal((7, 6)))
    reg = registry.make(id)
    theoretical, numerical = tf.test.compute_gradient(lambda x: reg([x], []), [x0], delta=1e-6)
    np.testing.assert_allclose(theoretical[0], numerical[0], atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# Degenerate batches and the zero-length / dead-neuron policies

def degenerate_batches(dtype):
    rng = np.random.default_rng(5)
    const = rng.standard_normal((16, 8))
    const[:, 2] = 0.0                                  # dead ReLU
    const[:, 5] = 1.5                                  # constant
    dup = rng.standard_normal((16, 8))
    dup[:, 6] = -3.0 * dup[:, 1]                       # |corr| = 1
    two = rng.standard_normal((2, 8))                  # every |corr| is 1
    return {"constant": tf.constant(const, dtype), "duplicated": tf.constant(dup, dtype),
            "batch_of_two": tf.constant(two, dtype)}


@pytest.mark.parametrize("options, dtype", [({}, tf.float32), ({}, tf.float64), (registry.PAPER_OPTIONS, tf.float32),
                                            ({"zero_length_bars": "drop"}, tf.float32),
                                            ({"pairing": "tf"}, tf.float32), ({"dead_neurons": "exclude"}, tf.float32),
                                            ({"dead_neurons": "exclude", "pairing": "tf"}, tf.float64)],
                         ids=("default-float32", "default-float64", "paper", "drop", "tf", "exclude", "exclude-tf"))
@pytest.mark.parametrize("id", registry.IDS)
def test_degenerate_batches_give_finite_values_and_gradients(id, options, dtype):
    reg = registry.make(id, **options)
    weights = [tf.Variable(tf.ones((3, 2), dtype))]
    step = tf.function(lambda a, w: value_and_grads_graph(reg, a, w))
    for name, x in degenerate_batches(dtype).items():
        value, grads = step([x[:, :5], x[:, 5:]], weights)
        assert np.isfinite(value.numpy()), name
        for g in grads:
            assert g is None or np.isfinite(g.numpy()).all(), name


def value_and_grads_graph(reg, acts, weights):
    with tf.GradientTape() as tape:
        tape.watch(acts)
        value = reg(acts, weights)
    return value, tape.gradient(value, acts + weights)


def test_zero_length_bar_policies():
    """On the in-graph path, whose `mst_deaths` give the expected values: whether the scaled duplicate's bar is
    exactly 0 is decided by rounding, so each path is checked against its own deaths (the fused kernel's policies
    on exact ±1 correlations in tests/test_fused.py)."""
    x = degenerate_batches(tf.float64)["duplicated"]
    d, _, _ = registry.mst_deaths(x)
    d = d.numpy()
    assert (d == 0).sum() == 1 and (d > 0).sum() == 6
    pos = d[d > 0]
    modes = registry.ZERO_LENGTH_BARS
    t1, t2 = ({mode: value_and_grads(registry.make(id, zero_length_bars=mode, pairing="tf"), [x], []) for mode in modes}
              for id in ("t1", "t2"))
    np.testing.assert_allclose(float(t1["keep"][0]), -d.sum())
    np.testing.assert_allclose(float(t1["drop"][0]), -pos.sum())
    np.testing.assert_allclose(float(t2["keep"][0]), 0.5 * d.std() - 0.5 * d.mean())
    np.testing.assert_allclose(float(t2["drop"][0]), 0.5 * pos.std() - 0.5 * pos.mean())
    for reg in (t1, t2):
        assert float(reg["zero_loss"][0]) == 0.0
        assert not reg["zero_loss"][1][0].any()
        assert reg["keep"][1][0].any()


@pytest.mark.parametrize("id", ("t1", "t2", "corr"))
def test_dead_neuron_zero_grad_reports_the_value_but_no_gradient(id):
    batches = degenerate_batches(tf.float64)
    x = batches["constant"]
    safe_v, safe_g = value_and_grads(registry.make(id, dead_neurons="safe"), [x], [])
    orig_v, orig_g = value_and_grads(registry.make(id, dead_neurons="zero_grad"), [x], [])
    assert float(orig_v) == float(safe_v) and not orig_g[0].any() and safe_g[0].any()
    live = batches["duplicated"]                       # no constant neuron: the two policies agree
    np.testing.assert_allclose(value_and_grads(registry.make(id, dead_neurons="zero_grad"), [live], [])[1][0],
                               value_and_grads(registry.make(id), [live], [])[1][0])


def test_regulariser_runs_with_a_dynamic_batch_in_float32():
    reg = registry.make("t2", sampling=0.5)
    spec = [tf.TensorSpec((None, 20), tf.float32), tf.TensorSpec((None, 10), tf.float32)]
    f = tf.function(lambda a, b: reg([a, b], []), input_signature=spec)
    rng = np.random.default_rng(8)
    for b in (256, 37):
        v = f(*(tf.constant(rng.standard_normal((b, n)), tf.float32) for n in (20, 10)))
        assert v.dtype == tf.float32 and np.isfinite(v.numpy())


@pytest.mark.parametrize("id", ACTIVATION_IDS)
def test_in_graph_pairing_compiles_with_xla_and_matches_the_host_pairing(id):
    spec = [tf.TensorSpec((None, 40), tf.float64), tf.TensorSpec((None, 10), tf.float64)]
    reg = registry.make(id, pairing="tf", sampling=0.5)
    f = tf.function(lambda a, b: value_and_grads_graph(reg, [a, b], []), jit_compile=True, input_signature=spec)
    rng = np.random.default_rng(9)
    acts = [tf.constant(rng.standard_normal((64, 40))), tf.constant(rng.standard_normal((64, 10)))]
    v_xla, g_xla = f(*acts)
    v_host, g_host = value_and_grads(registry.make(id, pairing="numpy", sampling=0.5), acts, [])
    np.testing.assert_allclose(float(v_xla), float(v_host), rtol=1e-9)
    for gx, gh in zip(g_xla, g_host):
        np.testing.assert_allclose(gx.numpy(), gh, rtol=1e-7, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# dead_neurons="exclude": a constant neuron leaves the MST, so dying earns no bar

def gudhi_deaths(x):
    """Finite 0-dim deaths of the Rips filtration of 1 − |corr| of the columns of x (b, N), by gudhi."""
    d = 1.0 - np.abs(np.corrcoef(x, rowvar=False))
    np.fill_diagonal(d, 0.0)
    tree = gudhi.RipsComplex(distance_matrix=np.clip(d, 0.0, 1.0), max_edge_length=2.0).create_simplex_tree(
        max_dimension=1)
    tree.compute_persistence()
    deaths = tree.persistence_intervals_in_dimension(0)[:, 1]
    return deaths[np.isfinite(deaths)]


def correlated_cloud():
    """32 neurons over 64 examples, mixed so that their correlations spread (deaths ≈ 0.3–0.9)."""
    rng = np.random.default_rng(0)
    return rng.standard_normal((64, 32)) @ (np.eye(32) + 0.3 * rng.standard_normal((32, 32)))


@pytest.mark.parametrize("pairing", ("numpy", "tf"))
def test_exclude_is_the_persistence_of_the_live_neurons_alone(pairing):
    x = correlated_cloud()
    x[:, 12:] = np.linspace(-1.0, 1.0, 20)             # 20 constant neurons, at various values
    live = gudhi_deaths(x[:, :12])
    for id, want in (("t1", -live.sum()), ("t2", 0.5 * live.std() - 0.5 * live.mean())):
        reg = registry.make(id, dead_neurons="exclude", pairing=pairing)
        value, grads = value_and_grads(reg, [tf.constant(x)], [])
        np.testing.assert_allclose(float(value), want, rtol=1e-12, err_msg=id)
        _, live_grads = value_and_grads(registry.make(id), [tf.constant(x[:, :12])], [])
        np.testing.assert_allclose(grads[0][:, :12], live_grads[0], atol=1e-12, err_msg=id)
        assert not grads[0][:, 12:].any()


def test_making_neurons_constant_does_not_lower_t1_under_exclude_and_does_under_safe():
    """Under "safe" a constant neuron has correlation 0 with every other neuron, so its bar dies at 1, the maximum,
    and T1 = −Σ deaths falls when it dies (−17.41 → −26.89 here with 20 of the 32 neurons constant); under
    "exclude" it leaves the MST and T1 rises (→ −6.89), here for every single neuron too. Caveat (`registry.make`):
    the MST of the remaining neurons can be longer than the old one when the dead neuron linked correlated ones."""
    x = correlated_cloud()
    t1 = {policy: registry.make("t1", dead_neurons=policy) for policy in ("safe", "exclude")}
    before = float(t1["exclude"]([tf.constant(x)], []))
    assert before == pytest.approx(float(t1["safe"]([tf.constant(x)], [])))
    dead = x.copy()
    dead[:, 12:] = 0.0
    assert float(t1["safe"]([tf.constant(dead)], [])) < before - 9
    assert float(t1["exclude"]([tf.constant(dead)], [])) > before + 10
    for k in range(32):
        one = x.copy()
        one[:, k] = 0.3
        assert float(t1["exclude"]([tf.constant(one)], [])) > before > float(t1["safe"]([tf.constant(one)], [])), k


@pytest.mark.parametrize("pairing", ("numpy", "tf"))
@pytest.mark.parametrize("id", ("t1", "t2"))
def test_exclude_with_fewer_than_two_live_neurons_is_zero_without_gradient(id, pairing):
    x = np.tile(np.linspace(0.0, 1.0, 6), (16, 1))
    x[:, 3] = np.random.default_rng(1).standard_normal(16)   # one live neuron: no bar left
    for batch in (x, np.zeros((16, 6))):
        value, grads = value_and_grads(registry.make(id, dead_neurons="exclude", pairing=pairing),
                                       [tf.constant(batch)], [])
        assert float(value) == 0.0 and not grads[0].any()


def test_exclude_is_the_default_and_trains_t1_as_safe_does_but_not_t2():
    """A dead neuron's bars at 1 under "safe" carry no gradient and the live neurons' bars are the same MST, so T1's
    gradient is the same under both policies (its value is not); T2's mean and std counted those bars."""
    assert registry.make("t1").options["dead_neurons"] == "exclude"
    x = np.maximum(correlated_cloud(), 0.0)
    x[:, 12:20] = 0.0
    x = tf.constant(x)
    for id in ("t1", "t2"):
        (safe_v, safe_g), (excl_v, excl_g) = (value_and_grads(registry.make(id, dead_neurons=p), [x], [])
                                              for p in ("safe", "exclude"))
        assert float(safe_v) < float(excl_v), id
        if id == "t1":
            assert float(excl_v) - float(safe_v) == pytest.approx(8.0) and np.array_equal(safe_g[0], excl_g[0])
        else:
            assert np.abs(safe_g[0] - excl_g[0]).max() > 0.1 * np.abs(excl_g[0]).max()


def test_a_dead_hub_can_still_lower_t1_under_exclude():
    """The limit of leaving the MST: neuron 1 = a + b links a and b (correlations ≈ 0.7 each) while a and b are
    nearly uncorrelated, so the MST of {a, b} is longer than the old MST's two edges and T1 falls a little, far
    less than under "safe" (one bar of death 1 more)."""
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 64))
    x = np.stack([a, a + b, b], axis=1)
    before = float(registry.make("t1")([tf.constant(x)], []))
    x[:, 1] = 0.0
    after = {p: float(registry.make("t1", dead_neurons=p)([tf.constant(x)], [])) for p in ("exclude", "safe")}
    assert after["exclude"] == pytest.approx(-gudhi_deaths(x[:, [0, 2]]).sum())
    assert after["safe"] < after["exclude"] - 0.9 < before - 0.9 and after["exclude"] < before
