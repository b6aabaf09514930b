"""Neural persistence (NP, Rieck et al. 2019) and deep graph persistence (DGP, Girrbach et al. 2023) of weights.

Both follow their reference code (Neural Persistence: Rieck et al., ICLR 2019, BorgwardtLab/Neural-Persistence; Deep
Graph Persistence: Girrbach et al., TMLR 2023, ExplainableML/Deep-Graph-Persistence):
- NP of one layer: |W| divided by the largest |w| of the whole network, superlevel filtration of the complete
  bipartite graph (all vertices at 1), its maximum spanning tree (MaxST) gives points of persistence 1 − w′_e, plus
  the essential point of persistence 1; NP = 2-norm of the persistences = sqrt(1 + Σ (1 − w′_e)²); normalised NP =
  NP / sqrt(n_in + n_out − 1). The network's NP is the mean of the normalised per-layer values.
- DGP: each layer standardised separately (population std), |·|, divided by the global max, composed across layers
  with the max–min (bottleneck-path) product, rescaled to max 1, then NP of that single matrix (normalised).

Conv2D layers (absent from both reference codes, which are MLP-only) use a named extension, CHANNEL_MAX: a kernel
(kh, kw, c_in, c_out) becomes the bipartite graph of input × output channels with edge weight max_{taps} |w|, the
strongest connection between the two feature maps in the unrolled layer. For DGP, a Dense layer fed by a flattened
feature map (channels last) is reduced the same way: the weight from channel c to unit u is the max over positions.

This module computes numbers from weights; it reads no files and knows nothing about runs or reports.
"""
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import minimum_spanning_tree

from model.errors import PipelineError

CHANNEL_MAX = "channel_max"  # name of our Conv2D extension, as the report states it
# Layers without weights that keep the neuron graph's meaning (NP/DGP skip them); anything else that is not Dense
# or Conv2D is refused, naming the layer.
PASS_THROUGH = ("InputLayer", "Flatten", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D",
                "GlobalMaxPooling2D", "Dropout", "Activation", "ReLU", "Reshape",
                "NeuronPenalty")  # model.regularisers.NeuronPenalty: identity, adds a training loss only


@dataclass(frozen=True)
class WeightLayer:
    """One weighted layer. kernel: float64, Dense (n_in, n_out) or Conv2D (kh, kw, c_in, c_out); bias: (n_out,)."""

    name: str
    kernel: np.ndarray
    bias: np.ndarray | None = None


def weight_layers(model) -> list[WeightLayer]:
    """The Dense and Conv2D layers of a Keras model in order (nested models are walked).

    Raises PipelineError naming the first layer that is neither weighted-supported nor pass-through.
    """
    out = []
    for layer in _walk(model):
        kind = type(layer).__name__
        if kind in PASS_THROUGH:
            continue
        if kind == "Dense" or (kind == "Conv2D" and _plain_conv(layer)):
            bias = layer.bias.numpy().astype(np.float64) if layer.use_bias else None
            out.append(WeightLayer(layer.name, layer.kernel.numpy().astype(np.float64), bias))
            continue
        raise PipelineError(f"layer {layer.name!r} ({kind}): neural persistence supports Dense and Conv2D "
                            f"(groups=1, channels_last) layers and the weightless {', '.join(PASS_THROUGH)}")
    if not out:
        raise PipelineError(f"model {model.name!r} has no Dense or Conv2D layer to measure")
    return out


def _walk(model):
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from _walk(layer)
        else:
            yield layer


def _plain_conv(layer) -> bool:
    return getattr(layer, "groups", 1) == 1 and layer.data_format == "channels_last"


def bipartite(kernel: np.ndarray) -> np.ndarray:
    """|kernel| as a bipartite weight matrix (n_in, n_out); Conv2D (kh, kw, c_in, c_out) → CHANNEL_MAX (c_in, c_out)."""
    a = np.abs(np.asarray(kernel, dtype=np.float64))
    if a.ndim == 4:
        return a.max(axis=(0, 1))
    if a.ndim != 2:
        raise PipelineError(f"kernel of shape {a.shape}: expected (n_in, n_out) or (kh, kw, c_in, c_out)")
    return a


def max_spanning_tree(m: np.ndarray) -> np.ndarray:
    """Weights of a maximum spanning tree of the complete bipartite graph with edge (i, j) of weight m[i, j].

    m: (n_in, n_out) with entries in [0, 1]. Returns the n_in + n_out − 1 tree weights, sorted descending (the
    multiset is the same for every MaxST). Kernel: SciPy's Kruskal (`csgraph.minimum_spanning_tree`, Cython) on
    costs 2 − m, which are ≥ 1 so no edge reads as absent; the tree's weights are then read back from m, so the
    result is exact up to ties closer than 2⁻⁵² (which do not change the multiset by more than that).
    """
    n_in, n_out = m.shape
    rows, cols = np.indices((n_in, n_out)).reshape(2, -1)
    graph = coo_matrix((2.0 - m.ravel(), (rows, cols + n_in)), shape=(n_in + n_out,) * 2)
    tree = minimum_spanning_tree(graph).tocoo()
    if tree.nnz != n_in + n_out - 1:
        raise AssertionError(f"spanning tree of a complete bipartite graph has {tree.nnz} edges")
    return np.sort(m[tree.row, tree.col - n_in])[::-1]


def persistence_norm(m: np.ndarray) -> float:
    """NP of one normalised bipartite matrix m (n_in, n_out) in [0, 1]: sqrt(1 + Σ_{e ∈ MaxST} (1 − m_e)²)."""
    return float(np.sqrt(1.0 + np.sum((1.0 - max_spanning_tree(m)) ** 2)))


@dataclass(frozen=True)
class LayerNP:
    """NP of one layer: `value` (unnormalised) and `normalised` = value / sqrt(n_in + n_out − 1)."""

    name: str
    value: float
    normalised: float


def neural_persistence(layers: list[WeightLayer], *, include_bias: bool = False) -> list[LayerNP]:
    """Per-layer NP with the global normalisation (largest |w| over all layers).

    include_bias: append each layer's bias as one more input vertex (the original TF experiments); the DGP
    reference code and our default use kernels only.
    """
    mats = [_with_bias(bipartite(l.kernel), l, include_bias) for l in layers]
    top = max(float(m.max()) for m in mats)
    if not top > 0:
        raise PipelineError("neural persistence: every weight is zero; the normalisation max |w| is undefined")
    out = []
    for layer, m in zip(layers, mats):
        value = persistence_norm(m / top)
        out.append(LayerNP(layer.name, value, value / float(np.sqrt(sum(m.shape) - 1))))
    return out


def _with_bias(m: np.ndarray, layer: WeightLayer, include_bias: bool) -> np.ndarray:
    if not include_bias or layer.bias is None:
        return m
    return np.vstack([m, np.abs(layer.bias)[None, :]])


def mean_normalised_np(per_layer: list[LayerNP]) -> float:
    """The network's NP: plain mean of the normalised per-layer values."""
    return float(np.mean([l.normalised for l in per_layer]))


def max_min_product(s: np.ndarray, a: np.ndarray, chunk_elements: int = 1 << 22) -> np.ndarray:
    """Bottleneck composition: out[i, j] = max_k min(s[i, k], a[k, j]); s (n, k), a (k, m) → (n, m).

    Rows are processed in chunks of at most `chunk_elements` temporaries (memory O(chunk), not O(n·k·m)).
    """
    if s.shape[1] != a.shape[0]:
        raise PipelineError(f"max-min composition: inner sizes differ, {s.shape} then {a.shape}")
    step = max(1, chunk_elements // max(1, a.size))
    return np.concatenate([np.minimum(s[i:i + step, :, None], a[None]).max(axis=1)
                           for i in range(0, s.shape[0], step)])


def composed_matrix(layers: list[WeightLayer]) -> np.ndarray:
    """DGP's single matrix S (n_input, n_output) before the final rescaling (reference `get_dnp`, steps 1–4).

    Each kernel is standardised over all its entries (population std), |·|, divided by the global max; Conv2D and
    flattened-input Dense layers are reduced with CHANNEL_MAX; then S = A_1 ⊙ A_2 ⊙ … with ⊙ the max–min product.
    """
    mats = []
    for layer in layers:
        std = layer.kernel.std()
        if not std > 0:
            raise PipelineError(f"layer {layer.name!r}: constant weights, DGP standardisation is undefined")
        mats.append(np.abs((layer.kernel - layer.kernel.mean()) / std))
    top = max(float(m.max()) for m in mats)
    s = None
    for layer, m in zip(layers, mats):
        a = bipartite(m / top)
        if s is not None and a.shape[0] != s.shape[1]:
            a = _pool_flattened_rows(a, s.shape[1], layer.name)
        s = a if s is None else max_min_product(s, a)
    return s


def _pool_flattened_rows(a: np.ndarray, channels: int, name: str) -> np.ndarray:
    """Dense rows indexed (position, channel) after a channels-last Flatten → (channels, n_out), max over positions."""
    if a.shape[0] % channels:
        raise PipelineError(f"layer {name!r}: {a.shape[0]} inputs do not follow a layer with {channels} outputs")
    return a.reshape(-1, channels, a.shape[1]).max(axis=0)


@dataclass(frozen=True)
class DGP:
    """Deep graph persistence: `value` (reference `dnp_exact`) and `normalised` (`dnp_exact_norm`)."""

    value: float
    normalised: float


def deep_graph_persistence(layers: list[WeightLayer]) -> DGP:
    """DGP of a network: NP (with the essential point) of the composed matrix rescaled to max 1."""
    s = composed_matrix(layers)
    if not s.max() > 0:
        raise PipelineError("deep graph persistence: every input-output path has a weight at its layer's mean")
    value = persistence_norm(s / s.max())
    return DGP(value, value / float(np.sqrt(sum(s.shape) - 1)))


def measure_model(model, *, include_bias: bool = False) -> list[tuple[str, str, float]]:
    """All measures of a Keras model as tidy rows (measure, layer, value); layer is "" for network-level rows.

    Layers are labelled by position among the weighted layers and kind (`0_conv2d`, `2_dense`), not by Keras
    names, which depend on how many layers the process has created.

    Measures: `np_layer`, `np_layer_normalised` (per layer), `np_mean_normalised` (the network's NP), `np_total`
    (sum of unnormalised per-layer NP), `dgp`, `dgp_normalised`.
    """
    layers = weight_layers(model)
    per_layer = neural_persistence(layers, include_bias=include_bias)
    dgp = deep_graph_persistence(layers)
    labels = [f"{i}_{'conv2d' if l.kernel.ndim == 4 else 'dense'}" for i, l in enumerate(layers)]
    rows = [(m, label, v) for label, l in zip(labels, per_layer)
            for m, v in (("np_layer", l.value), ("np_layer_normalised", l.normalised))]
    rows += [("np_mean_normalised", "", mean_normalised_np(per_layer)),
             ("np_total", "", float(sum(l.value for l in per_layer))),
             ("dgp", "", dgp.value), ("dgp_normalised", "", dgp.normalised)]
    return rows
