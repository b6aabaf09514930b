"""MST pairing: every back-end against gudhi's 0-dim persistence, identical tie-breaks, differentiable deaths."""
import gudhi
import numpy as np
import pytest
import tensorflow as tf

from model.regularisers import persistence

SIZES = (2, 3, 10, 200, 1010)


def tricky_matrix(n, seed):
    """Symmetric dissimilarity in [0, 1], zero diagonal, values on a coarse grid (exact ties), exact zeros and
    duplicated points (identical rows at distance 0)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3))
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    d = np.round(d / max(d.max(), 1e-12) * 20) / 20          # 21 distinct values: many exact ties
    if n >= 3:
        dup = rng.choice(n, size=max(1, n // 10), replace=False)
        for i in dup[:-1]:                                     # point dup[-1] is duplicated into the others
            d[i] = d[dup[-1]]
            d[:, i] = d[:, dup[-1]]
        d[np.ix_(dup, dup)] = 0.0
    np.fill_diagonal(d, 0.0)
    return d


def gudhi_deaths(d):
    """All N−1 finite 0-dim deaths (zero-length bars included), sorted."""
    st = gudhi.RipsComplex(distance_matrix=d).create_simplex_tree(max_dimension=1)
    pairs = st.persistence(min_persistence=-1.0)
    return np.sort([death for dim, (_, death) in pairs if dim == 0 and np.isfinite(death)])


def weights(d, edges):
    return np.sort(d[edges[:, 0], edges[:, 1]])


BACKENDS = {
    "numpy": lambda m, sim: persistence.prim_numpy(m, sim),
    "compiled": lambda m, sim: persistence.prim_compiled(m, sim),
    "tf": lambda m, sim: persistence.boruvka_tf(tf.constant(m), sim).numpy(),
    "mst_edges_numpy_pairing":
        lambda m, sim: persistence.mst_edges(tf.constant(m), similarity=sim, pairing="numpy").numpy(),
    "mst_edges_tf_pairing": lambda m, sim: persistence.mst_edges(tf.constant(m), similarity=sim, pairing="tf").numpy(),
}


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_deaths_equal_gudhi(n, backend):
    d = tricky_matrix(n, seed=n)
    expected = gudhi_deaths(d)
    edges = BACKENDS[backend](d, False)
    assert edges.shape == (n - 1, 2) and edges.dtype == np.int32
    np.testing.assert_allclose(weights(d, edges), expected, atol=1e-6)
    assert len({tuple(e) for e in edges}) == n - 1                       # a tree: N−1 distinct edges ...
    assert len(np.unique(edges)) == n or n == 1                        # ... touching every vertex


@pytest.mark.parametrize("n", (10, 200))
def test_all_backends_return_the_same_edges_on_ties(n):
    d = tricky_matrix(n, seed=7)
    results = {name: f(d, False) for name, f in BACKENDS.items()}
    for name, edges in results.items():
        np.testing.assert_array_equal(edges, results["numpy"], err_msg=name)
    assert (results["numpy"][:, 0] < results["numpy"][:, 1]).all()
    w = d[results["numpy"][:, 0], results["numpy"][:, 1]]
    assert (np.diff(w) >= 0).all()                                     # sorted by weight


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_similarity_input_reads_clamped_one_minus_abs(backend):
    rng = np.random.default_rng(3)
    s = np.round(rng.uniform(-1.05, 1.05, (40, 40)), 1)                # ties, |s| > 1 and exact ±1
    s = (s + s.T) / 2
    np.fill_diagonal(s, 1.0)
    d = np.clip(1 - np.abs(s), 0, 1)
    np.fill_diagonal(d, 0.0)
    np.testing.assert_array_equal(BACKENDS[backend](s, True), persistence.prim_numpy(d))


def test_compiled_kernel_falls_back_to_numpy(monkeypatch):
    d = tricky_matrix(50, seed=1)
    monkeypatch.setattr(persistence, "_compiled_prim", False)                     # as if numba were not installed
    assert persistence._numba_prim() is None
    np.testing.assert_array_equal(persistence.prim_compiled(d), persistence.prim_numpy(d))


def test_single_point_and_non_finite_input():
    assert persistence.prim_numpy(np.zeros((1, 1))).shape == (0, 2)
    assert persistence.prim_compiled(np.zeros((1, 1))).shape == (0, 2)
    assert persistence.boruvka_tf(tf.zeros((1, 1))).shape == (0, 2)
    bad = np.zeros((3, 3))
    bad[0, 1] = bad[1, 0] = np.nan
    for f in (persistence.prim_numpy, persistence.prim_compiled):
        with pytest.raises(ValueError, match="NaN"):
            f(bad)
    with pytest.raises(ValueError, match="square"):
        persistence.prim_numpy(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="pairing"):
        persistence.resolve_pairing("giotto")


@pytest.mark.parametrize("pairing", ("numpy", "tf"))
def test_deaths_are_differentiable_gathers_inside_tf_function(pairing):
    d0 = tricky_matrix(30, seed=5)
    rng = np.random.default_rng(0)
    noise = rng.uniform(0, 1e-3, d0.shape)
    d0 = d0 + (noise + noise.T) * (1 - np.eye(30))                    # distinct weights
    d = tf.Variable(d0)

    @tf.function
    def f():
        with tf.GradientTape() as tape:
            deaths = persistence.deaths(d, pairing=pairing)
            loss = tf.reduce_sum(deaths)
        return deaths, tape.gradient(loss, d)

    deaths, grad = f()
    np.testing.assert_allclose(deaths.numpy(), gudhi_deaths(d0), atol=1e-12)
    grad = grad.numpy()
    assert set(np.unique(grad)) <= {0.0, 1.0} and grad.sum() == 29     # one-hot on the N−1 MST entries


def test_gram_pairing_equals_pairing_of_the_full_matrix():
    rng = np.random.default_rng(2)
    z = rng.standard_normal((16, 60))
    z[:, 7] = z[:, 3]                                                   # duplicated column: |s| = ‖z‖² ties
    s = z.T @ z
    expected = persistence.prim_numpy(s, similarity=True)
    np.testing.assert_array_equal(persistence.mst_edges_of_gram(tf.constant(z)).numpy(), expected)


def test_in_graph_pairing_compiles_with_xla():
    d = tricky_matrix(64, seed=9)
    f = tf.function(lambda m: persistence.boruvka_tf(m), jit_compile=True)
    np.testing.assert_array_equal(f(tf.constant(d)).numpy(), persistence.prim_numpy(d))
