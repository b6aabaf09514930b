"""`NeuronPenalty`: a Keras layer that adds ω·R(activations) to the training loss of any Keras model.

Insert it where the neurons to regularise are (after a hidden layer, or on a list of layer outputs); it returns its
input unchanged. During `fit` (`training=True`) it calls `add_loss(weight * R)`, so the training loss Keras reports
is CE + ω·R; in `evaluate`, `predict` and on validation data (`training` false) it adds nothing, so `val_loss` is the
compiled loss alone and `EarlyStopping(monitor="val_loss")` compares like with like.

R is `model.regularisers.registry.make(regulariser, sampling=sampling, **options)`, one of the activation
regularisers (`t1`, `t2`, `corr`, `decov`); its (b, N) point cloud is the layer's input, or with a list of inputs
their neurons side by side: the top ⌊sampling·n⌋ neurons by mean |activation| of every input but the last, and the
last whole (`model.regularisers.sampling`). A batch needs at least 2 examples, as a correlation does. The weight
regularisers `l1`, `l2` need the model's variables, not activations: use `make("l2")(activations, weights)` in a
custom train_step, or Keras's own `kernel_regularizer`. The training pipeline of this repository does not use this
layer (it computes CE and ω·R in its own `train_step`, `model.runs.training`, to record what the regulariser did).
"""
import keras

from model.errors import SpecError
from model.regularisers.registry import make

ACTIVATION_IDS = ("t1", "t2", "corr", "decov")


@keras.saving.register_keras_serializable(package="decorrelating_neurons")
class NeuronPenalty(keras.layers.Layer):
    """Identity layer adding `weight` · R(inputs) to the training loss (see the module docstring).

    regulariser: one of `ACTIVATION_IDS`; weight: ω ≥ 0; sampling: fraction p ∈ (0, 1] of each input but the
    last; options: `make`'s options (`zero_length_bars`, `dead_neurons`, `pairing`, `kernel`).
    """

    def __init__(self, regulariser: str, weight: float, sampling: float = 1.0, options: dict | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        if regulariser not in ACTIVATION_IDS:
            raise SpecError(f"NeuronPenalty regulariser {regulariser!r}: expected one of {', '.join(ACTIVATION_IDS)} "
                            "(l1/l2 act on weights: keras.regularizers.L1/L2 or make('l2'))")
        if not weight >= 0:
            raise SpecError(f"NeuronPenalty weight {weight!r}: expected a number >= 0")
        self.regulariser, self.weight, self.sampling = regulariser, float(weight), float(sampling)
        self.options = dict(options or {})
        self.penalty = make(regulariser, sampling=sampling, **self.options)

    def call(self, inputs, training=None):
        if training and self.weight > 0:
            activations = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
            self.add_loss(self.weight * self.penalty(activations, []))
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "regulariser": self.regulariser, "weight": self.weight,
                "sampling": self.sampling, "options": self.options}
