"""The public API a user imports: `model.regularisers` (make, IDS, NeuronPenalty) and `model.measures`, and the
README's "Use T1/T2 in your own model" example, run as written: the penalty is in the training loss only, never in
`val_loss`."""
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO


def readme_example() -> str:
    """The first ```python block of the README section "Use T1/T2 in your own model"."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Use T1/T2 in your own model"):]
    section = section[:section.index("\n## ", 1)]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_example_adds_the_penalty_to_the_training_loss_only():
    import keras

    namespace: dict = {}
    exec(compile(readme_example(), "README.md (Use T1/T2 in your own model)", "exec"), namespace)
    model, history = namespace["model"], namespace["history"]
    x_val, y_val = namespace["x_val"], namespace["y_val"]
    assert len(history.history["val_loss"]) == 2 and min(history.history["val_loss"]) > 0

    batch = x_val[:64]
    model(batch, training=True)
    (penalty,) = model.losses  # ω·T1 = −0.01·Σ deaths < 0, added while training
    assert float(penalty) < 0
    model(batch, training=False)
    assert model.losses == []

    # val_loss is the compiled loss alone: evaluate() equals the cross-entropy of the predictions
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y_val, model.predict(x_val, verbose=0))
    assert model.evaluate(x_val, y_val, verbose=0, return_dict=True)["loss"] == pytest.approx(float(ce), rel=1e-5)


def test_public_imports_and_the_list_form(tmp_path):
    import keras
    import tensorflow as tf

    from model.measures import deep_graph_persistence, neural_persistence, weight_layers
    from model.regularisers import IDS, NeuronPenalty, make, registry

    assert IDS == ("none", "t1", "t2", "l1", "l2", "corr", "decov")
    x = tf.constant(np.random.default_rng(0).normal(size=(32, 12)), tf.float32)
    assert float(make("t1")([x], [])) == float(registry.make("t1")([x], []))
    with pytest.raises(Exception, match="l1/l2 act on weights"):
        NeuronPenalty("l2", weight=0.1)

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    h = keras.layers.Dense(16, activation="relu")(inputs)
    logits = keras.layers.Dense(3)(h)
    h, logits = NeuronPenalty("t2", weight=0.5, sampling=0.5)([h, logits])
    model = keras.Model(inputs, logits)
    data = np.random.default_rng(1).normal(size=(40, 8)).astype("float32")
    model(data, training=True)
    expected = 0.5 * float(make("t2", sampling=0.5)([model.layers[1](data), model.layers[2](model.layers[1](data))],
                                                      []))
    assert float(model.losses[0]) == pytest.approx(expected, rel=1e-5)

    model.save(tmp_path / "m.keras")  # the layer serialises: a saved model loads with its penalty
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    penalty = [layer for layer in loaded.layers if isinstance(layer, NeuronPenalty)][0]
    assert (penalty.regulariser, penalty.weight, penalty.sampling) == ("t2", 0.5, 0.5)

    layers = weight_layers(model)
    assert len(neural_persistence(layers)) == 2 and deep_graph_persistence(layers).value > 0


def test_spec_validation_does_not_load_tensorflow():
    code = "import sys, model.runs.spec, model.regularisers; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
