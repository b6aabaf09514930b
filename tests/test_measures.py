"""Neural persistence and deep graph persistence: hand-worked values, gudhi oracle, independent DGP, invariances."""
import itertools
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gudhi
import keras
import numpy as np
import pytest

from model.errors import PipelineError
from model.measures.compute import (
    WeightLayer,
    bipartite,
    deep_graph_persistence,
    max_min_product,
    max_spanning_tree,
    mean_normalised_np,
    measure_model,
    neural_persistence,
    weight_layers,
)

B1 = np.array([[1.0, -0.2, 0.4], [0.1, 0.3, -0.6]])  # 2 → 3
B2 = np.array([[0.2, -0.5], [0.9, 0.05], [-0.3, 0.7]])  # 3 → 2
B3 = np.array([[2.0], [-1.0]])  # 2 → 1


def dense_model(*kernels, biases=None, activation="relu"):
    """A Sequential MLP whose Dense kernels are `kernels` (float64 copies kept exactly representable in float32)."""
    model = keras.Sequential([keras.Input((kernels[0].shape[0],))] +
                             [keras.layers.Dense(k.shape[1], activation=activation, name=f"d{i}")
                              for i, k in enumerate(kernels)])
    for i, (layer, k) in enumerate(zip(model.layers, kernels)):
        layer.set_weights([k, np.zeros(k.shape[1]) if biases is None else biases[i]])
    return model


def layers_of(*kernels):
    return [WeightLayer(f"l{i}", np.asarray(k, dtype=np.float64)) for i, k in enumerate(kernels)]


# ---------------------------------------------------------------- hand-worked NP

def test_np_one_layer_by_hand():
    # |W| / 1.0 = [[.5, 1], [.25, 0]]. Kruskal on decreasing weights: 1 (i0-o1), .5 (i0-o0), .25 (i1-o0) span the
    # 4 vertices. Persistences 0, .5, .75 plus the essential point 1.
    (layer,) = neural_persistence(layers_of([[0.5, -1.0], [0.25, 0.0]]))
    expected = math.sqrt(1 + 0.0**2 + 0.5**2 + 0.75**2)
    assert layer.value == pytest.approx(expected, abs=1e-12)
    assert layer.normalised == pytest.approx(expected / math.sqrt(3), abs=1e-12)
    assert layer.value == pytest.approx(1.346291, abs=1e-6)  # check value of Aleph's semantics, in NumPy


def test_np_two_layers_by_hand():
    # Global max 1. B1: tree {1, .6, .4, .3}; B2: tree {.9, .7, .5, .3}. n − 1 = 4 for both.
    np1 = math.sqrt(1 + 0.0**2 + 0.4**2 + 0.6**2 + 0.7**2)
    np2 = math.sqrt(1 + 0.1**2 + 0.3**2 + 0.5**2 + 0.7**2)
    per_layer = neural_persistence(layers_of(B1, B2))
    assert [l.value for l in per_layer] == pytest.approx([np1, np2], abs=1e-12)
    assert [l.normalised for l in per_layer] == pytest.approx([np1 / 2, np2 / 2], abs=1e-12)
    assert mean_normalised_np(per_layer) == pytest.approx((np1 + np2) / 4, abs=1e-12)
    assert mean_normalised_np(per_layer) == pytest.approx(0.693553, abs=1e-6)  # check value of the reference semantics


def test_np_three_layer_keras_network_by_hand():
    # Global max |w| = 2 (in B3), so B1, B2 are halved. Trees: B1/2 {.5, .3, .2, .15}; B2/2 {.45, .35, .25, .15};
    # B3/2 = [[1], [.5]] → {1, .5}.
    np1 = math.sqrt(1 + 0.5**2 + 0.7**2 + 0.8**2 + 0.85**2)
    np2 = math.sqrt(1 + 0.55**2 + 0.65**2 + 0.75**2 + 0.85**2)
    np3 = math.sqrt(1 + 0.0**2 + 0.5**2)
    rows = {(m, l): v for m, l, v in measure_model(dense_model(B1, B2, B3))}
    assert rows[("np_layer", "0_dense")] == pytest.approx(np1, abs=1e-6)
    assert rows[("np_layer", "1_dense")] == pytest.approx(np2, abs=1e-6)
    assert rows[("np_layer", "2_dense")] == pytest.approx(np3, abs=1e-6)
    assert rows[("np_layer_normalised", "2_dense")] == pytest.approx(np3 / math.sqrt(2), abs=1e-6)
    assert rows[("np_mean_normalised", "")] == pytest.approx((np1 / 2 + np2 / 2 + np3 / math.sqrt(2)) / 3, abs=1e-6)
    assert rows[("np_total", "")] == pytest.approx(np1 + np2 + np3, abs=1e-6)


def test_np_bias_is_one_more_input_vertex():
    bias = np.array([3.0, -0.5])
    model = dense_model(B2, biases=[bias])
    (with_bias,) = neural_persistence(weight_layers(model), include_bias=True)
    (folded,) = neural_persistence(layers_of(np.vstack([B2, bias])))
    assert with_bias.value == pytest.approx(folded.value, abs=1e-6)
    assert with_bias.normalised == pytest.approx(folded.value / math.sqrt(3 + 1 + 2 - 1), abs=1e-6)


def test_layer_of_equal_weights_has_np_one():
    (layer,) = neural_persistence(layers_of(np.full((3, 4), -0.7)))
    assert layer.value == pytest.approx(1.0) and layer.normalised == pytest.approx(1 / math.sqrt(6))


# ---------------------------------------------------------------- MaxST against gudhi

def gudhi_max_spanning_tree(m):
    """0-dim persistence of the superlevel filtration (vertices at 1, edge (i, j) at m[i, j]) via gudhi, negated."""
    n_in, n_out = m.shape
    st = gudhi.SimplexTree()
    for v in range(n_in + n_out):
        st.insert([v], filtration=-1.0)
    for i, j in itertools.product(range(n_in), range(n_out)):
        st.insert([i, n_in + j], filtration=-m[i, j])
    pairs = [p for dim, p in st.persistence(min_persistence=-1.0) if dim == 0]
    finite = [death for birth, death in pairs if np.isfinite(death)]
    assert all(birth == -1.0 for birth, _ in pairs) and len(pairs) == len(finite) + 1
    return np.sort(-np.array(finite))[::-1]


@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (4, 3), (7, 9), (12, 2)])
def test_max_spanning_tree_agrees_with_gudhi(shape):
    m = np.random.default_rng(sum(shape)).random(shape)
    ours = max_spanning_tree(m)
    assert ours.shape == (sum(shape) - 1,)
    np.testing.assert_allclose(ours, gudhi_max_spanning_tree(m), atol=1e-12)


def test_max_spanning_tree_with_ties_agrees_with_gudhi():
    m = np.random.default_rng(5).integers(0, 3, size=(6, 5)) / 2.0
    np.testing.assert_allclose(max_spanning_tree(m), gudhi_max_spanning_tree(m), atol=1e-12)


def test_random_matrices_match_reference_check_values():
    rng = np.random.default_rng(0)  # check value of the reference semantics: normal then uniform draws per shape
    for shape, gauss, unif in [((784, 100), 0.4213, 0.0359), ((100, 10), 0.4152, 0.1538)]:
        g, u = rng.normal(size=shape), rng.uniform(-1, 1, size=shape)
        assert neural_persistence(layers_of(g))[0].normalised == pytest.approx(gauss, abs=5e-5)
        assert neural_persistence(layers_of(u))[0].normalised == pytest.approx(unif, abs=5e-5)


# ---------------------------------------------------------------- DGP

def naive_dgp(kernels):
    """Straightforward DGP: per-layer standardisation, |.|, global max, bottleneck over every explicit path,
    rescale, dict-based union-find Kruskal, 2-norm with the essential point, / sqrt(n − 1)."""
    std = [np.abs((k - k.mean()) / k.std()) for k in kernels]
    top = max(a.max() for a in std)
    std = [a / top for a in std]
    n_in, n_out = std[0].shape[0], std[-1].shape[1]
    s = np.zeros((n_in, n_out))
    for i in range(n_in):
        for j in range(n_out):
            for hidden in itertools.product(*[range(a.shape[1]) for a in std[:-1]]):
                path = (i, *hidden, j)
                s[i, j] = max(s[i, j], min(a[path[k], path[k + 1]] for k, a in enumerate(std)))
    s = s / s.max()
    parent = {v: v for v in range(n_in + n_out)}

    def root(v):
        while parent[v] != v:
            v = parent[v]
        return v

    deaths = []
    for w, i, j in sorted(((s[i, j], i, n_in + j) for i in range(n_in) for j in range(n_out)), reverse=True):
        if root(i) != root(j):
            parent[root(i)] = root(j)
            deaths.append(w)
    value = math.sqrt(1 + sum((1 - w) ** 2 for w in deaths))
    return value, value / math.sqrt(n_in + n_out - 1)


def test_dgp_reference_check_values():
    dgp = deep_graph_persistence(layers_of(B1, B2))
    assert dgp.value == pytest.approx(1.066384, abs=1e-6)  # check value of the DGP reference code's semantics
    assert dgp.normalised == pytest.approx(0.615677, abs=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_dgp_agrees_with_naive_implementation_on_random_mlps(seed):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 6, size=rng.integers(2, 5))  # 2–4 layers of 2–5 neurons
    keras.utils.set_random_seed(seed)
    hidden = [keras.layers.Dense(int(n), activation="tanh") for n in sizes[1:]]
    model = keras.Sequential([keras.Input((int(sizes[0]),))] + hidden + [keras.layers.Dense(3)])
    rows = {m: v for m, _, v in measure_model(model)}
    value, normalised = naive_dgp([l.kernel for l in weight_layers(model)])
    assert rows["dgp"] == pytest.approx(value, abs=1e-9)
    assert rows["dgp_normalised"] == pytest.approx(normalised, abs=1e-9)


def test_max_min_product_is_the_same_in_chunks():
    rng = np.random.default_rng(1)
    s, a = rng.random((37, 11)), rng.random((11, 5))
    brute = np.array([[max(min(s[i, k], a[k, j]) for k in range(11)) for j in range(5)] for i in range(37)])
    np.testing.assert_array_equal(max_min_product(s, a), brute)
    np.testing.assert_array_equal(max_min_product(s, a, chunk_elements=7), brute)


# ---------------------------------------------------------------- invariances

def random_kernels(seed, sizes=(6, 5, 4, 3)):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(a, b)) for a, b in zip(sizes[:-1], sizes[1:])]


def measures_of(kernels):
    layers = layers_of(*kernels)
    return [l.value for l in neural_persistence(layers)], deep_graph_persistence(layers).value


@pytest.mark.parametrize("c", [1e-3, 0.5, 7.0])
def test_scaling_all_weights_leaves_np_and_dgp_unchanged(c):
    kernels = random_kernels(2)
    np_ref, dgp_ref = measures_of(kernels)
    np_scaled, dgp_scaled = measures_of([c * k for k in kernels])
    assert np_scaled == pytest.approx(np_ref, abs=1e-12) and dgp_scaled == pytest.approx(dgp_ref, abs=1e-12)


def test_signs_and_hidden_permutations_leave_np_and_dgp_unchanged():
    kernels = random_kernels(3)
    np_ref, dgp_ref = measures_of(kernels)
    rng = np.random.default_rng(4)
    flipped = [k * rng.choice([-1.0, 1.0], size=k.shape) for k in kernels]
    np_flip, _ = measures_of(flipped)
    assert np_flip == pytest.approx(np_ref, abs=1e-12)
    permuted = [k.copy() for k in kernels]
    for i in range(len(kernels) - 1):  # relabel the outputs of layer i = the inputs of layer i + 1
        p = rng.permutation(kernels[i].shape[1])
        permuted[i], permuted[i + 1] = permuted[i][:, p], permuted[i + 1][p]
    np_perm, dgp_perm = measures_of(permuted)
    assert np_perm == pytest.approx(np_ref, abs=1e-12) and dgp_perm == pytest.approx(dgp_ref, abs=1e-12)


def test_dgp_is_invariant_to_per_layer_affine_maps_np_is_not():
    kernels = random_kernels(6)
    np_ref, dgp_ref = measures_of(kernels)
    np_aff, dgp_aff = measures_of([3.0 * kernels[0] + 1.0] + kernels[1:])
    assert dgp_aff == pytest.approx(dgp_ref, abs=1e-12)
    assert np_aff != pytest.approx(np_ref, abs=1e-3)  # NP's global normalisation sees the change


def test_np_of_a_layer_equals_np_of_its_transpose():
    k = random_kernels(7)[0]
    assert neural_persistence(layers_of(k))[0].value == pytest.approx(neural_persistence(layers_of(k.T))[0].value)


# ---------------------------------------------------------------- Conv2D (CHANNEL_MAX extension) and errors

def conv_model(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((6, 6, 2)),
                             keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="c0"),
                             keras.layers.MaxPooling2D(2),
                             keras.layers.Conv2D(4, (3, 3), padding="same", activation="relu", name="c1"),
                             keras.layers.Flatten(),
                             keras.layers.Dropout(0.5),
                             keras.layers.Dense(5, activation="relu", name="d0"),
                             keras.layers.Dense(2, name="d1")])


def test_conv_layers_use_the_channel_max_graph():
    model = conv_model(0)
    layers = weight_layers(model)
    assert [l.name for l in layers] == ["c0", "c1", "d0", "d1"]
    k = layers[0].kernel  # (3, 3, 2, 3)
    by_hand = np.array([[max(abs(k[h, w, i, j]) for h in range(3) for w in range(3)) for j in range(3)]
                        for i in range(2)])
    np.testing.assert_array_equal(bipartite(k), by_hand)
    top = max(np.abs(l.kernel).max() for l in layers)
    rows = {(m, l): v for m, l, v in measure_model(model)}
    expected = math.sqrt(1 + np.sum((1 - max_spanning_tree(by_hand / top)) ** 2))
    assert rows[("np_layer", "0_conv2d")] == pytest.approx(expected, abs=1e-12)
    assert rows[("np_layer_normalised", "2_dense")] > 0  # the flattened Dense (3·3·4 → 5) is measured in full


def test_conv_dgp_pools_flattened_dense_rows_by_channel():
    model = conv_model(1)
    c0, c1, d0, d1 = [l.kernel for l in weight_layers(model)]
    # Flatten of a (3, 3, 4) map: row index (h·3 + w)·4 + c. Reduce to channels by hand, then run the naive DGP on
    # channel graphs whose standardisation used the full kernels: standardise first, reduce after.
    z = [np.abs((k - k.mean()) / k.std()) for k in (c0, c1, d0, d1)]
    top = max(a.max() for a in z)
    z = [a / top for a in z]
    chan = [a.max(axis=(0, 1)) for a in z[:2]]
    pooled = np.array([[max(z[2][(p * 4) + c, u] for p in range(9)) for u in range(5)] for c in range(4)])
    s = max_min_product(max_min_product(max_min_product(chan[0], chan[1]), pooled), z[3])
    s = s / s.max()
    expected = math.sqrt(1 + np.sum((1 - gudhi_max_spanning_tree(s)) ** 2))
    assert deep_graph_persistence(weight_layers(model)).value == pytest.approx(expected, abs=1e-12)


def test_unsupported_layer_is_named():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3),
                              keras.layers.BatchNormalization(name="bn_odd"), keras.layers.Dense(2)])
    with pytest.raises(PipelineError, match="bn_odd.*BatchNormalization"):
        weight_layers(model)
    grouped = keras.Sequential([keras.Input((5, 5, 4)), keras.layers.Conv2D(4, 3, groups=2, name="grouped")])
    with pytest.raises(PipelineError, match="grouped"):
        weight_layers(grouped)


def test_degenerate_weights_raise():
    with pytest.raises(PipelineError, match="zero"):
        neural_persistence(layers_of(np.zeros((2, 3))))
    with pytest.raises(PipelineError, match="'l1'.*constant"):
        deep_graph_persistence(layers_of(B1, np.ones((3, 2))))
