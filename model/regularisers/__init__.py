"""The regularisers of the paper and its baselines, as a public API.

    from model.regularisers import make, IDS, NeuronPenalty

- `make(id, sampling=1.0, **options)` → `reg(activations, weights)`, a scalar `tf.Tensor` (`registry.make` documents
  the ids, `IDS` = none, t1, t2, l1, l2, corr, decov, and every option); `activations`: a list of (b, ...) layer
  outputs, logits last; `weights`: the variables l1/l2 sum over.
- `NeuronPenalty(id, weight)`: a Keras layer adding ω·R to the training loss only (`neuron_penalty`), for any
  functional or Sequential model (README, "Use T1/T2 in your own model").
- `mst_deaths(x)`: the 0-dimensional persistence deaths of a (b, N) point cloud under 1 − |corr|.

`IDS` and the option vocabulary come from `names` (TensorFlow-free); the rest is imported on first use, so that
validating a spec (which imports `names`) never loads TensorFlow.
"""
from model.regularisers.names import DEAD_NEURONS, DEFAULT_OPTIONS, IDS, PAPER_OPTIONS, ZERO_LENGTH_BARS

__all__ = ["IDS", "DEFAULT_OPTIONS", "PAPER_OPTIONS", "ZERO_LENGTH_BARS", "DEAD_NEURONS", "make", "mst_deaths",
           "Regulariser", "Diagnostics", "NeuronPenalty"]
_LAZY = {"make": "registry", "mst_deaths": "registry", "Regulariser": "registry", "Diagnostics": "registry",
         "NeuronPenalty": "neuron_penalty"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"model.regularisers.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'model.regularisers' has no attribute {name!r}")
