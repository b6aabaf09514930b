"""Neural persistence and deep graph persistence of a trained network's weights, as a public API.

    from model.measures import weight_layers, neural_persistence, deep_graph_persistence, measure_model

    layers = weight_layers(keras_model)            # its Dense and Conv2D kernels, in order
    per_layer = neural_persistence(layers)         # [LayerNP(name, value, normalised)], Rieck et al. 2019
    network_np = mean_normalised_np(per_layer)     # the network's NP
    dgp = deep_graph_persistence(layers)           # DGP(value, normalised), Girrbach et al. 2023
    rows = measure_model(keras_model)              # all of them as (measure, layer, value) rows

Definitions and the one stated difference from the reference code: `model.measures.compute`. `table` runs them
over run folders and PGDL models (the `measure` command), `report_section` turns the table into the report's section.
"""
from model.measures.compute import (
    DGP,
    LayerNP,
    WeightLayer,
    deep_graph_persistence,
    mean_normalised_np,
    measure_model,
    neural_persistence,
    weight_layers,
)

__all__ = ["DGP", "LayerNP", "WeightLayer", "deep_graph_persistence", "mean_normalised_np", "measure_model",
           "neural_persistence", "weight_layers"]
