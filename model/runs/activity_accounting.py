"""The regulariser's activity accounting during training: one object, `ActivityAccounting`, that `train_step` calls.

What is counted and summarised is `model.runs.activity_record`'s vocabulary. Here it is done:
- the per-step outcome counts and constant-neuron counts are summed in the training step's own graph
  (`update_state`, per epoch and per run), with the per-epoch results (`result`): a few dozen scalar ops, left in
  the step's graph as they are (a nested XLA cluster for them, formerly used, cost 1–2 % of the T1 step at N = 1010
  in its launches; inline they are within the noise of no accounting at all, benchmarks/README.md);
- ‖ω∇R‖ / ‖∇CE‖ needs ω∇R apart from the gradient of the sum, i.e. a second backward pass through the network. Where
  the step takes the two apart anyway (`reg_nonfinite="zero_per_variable"`) it is measured on every step; otherwise
  only on *measured* steps (`due`: optimiser iterations divisible by `activity_record.RATIO_EVERY`), which run a
  separately compiled step (`model.runs.training.RegularisedModel.make_train_function`), so the other steps carry no
  trace of it. Each measured ratio is read back to the host (`collect`) and kept, so that the run's record gives its
  median, minimum, maximum and the fraction under 1 % (`activity_record.summary`).
The run's totals and measured ratios travel in the checkpoint (`state`, `load`), so a resumed run's record equals an
uninterrupted one's.
"""
import keras
import numpy as np
import tensorflow as tf

from model.runs import activity_record


def step_sums(diagnostics, skipped, nonfinite, ratio, measured):
    """One step's contribution (float64, laid out as `activity_record.SUMS`): a one-hot outcome (decided in the
    order of `model.runs.activity_record`'s docstring), the constant sampled neurons, and ‖ω∇R‖ / ‖∇CE‖ with 1 when
    it was measured on this step."""
    dead = tf.logical_and(tf.logical_not(skipped), diagnostics.dead_zeroed)
    bars = tf.logical_and(tf.logical_not(skipped | dead), diagnostics.bars_zeroed)
    zeroed = tf.logical_and(tf.logical_not(skipped | dead | bars), nonfinite)
    applied = tf.logical_not(skipped | dead | bars | zeroed)
    parts = [tf.cast(v, tf.float64) for v in (applied, dead, bars, zeroed, skipped, diagnostics.constant_neurons,
                                              ratio, measured)]
    return tf.stack(parts)


def gradient_ratio(ce_grads, reg_grads):
    """‖ω∇R‖ / ‖∇CE‖, global norms over the variables (lists of tensors); 0 where ∇CE is exactly 0. float32 scalar."""
    return tf.cast(tf.math.divide_no_nan(tf.linalg.global_norm(reg_grads), tf.linalg.global_norm(ce_grads)),
                   tf.float32)


class ActivityAccounting(keras.metrics.Metric):
    """Per-step sums laid out as `activity_record.SUMS` over the epoch (reset by `fit` each epoch; `result()` gives
    the `activity_record.COLUMNS` of history.csv; fractions NaN only for an empty epoch) and over the run (`totals`,
    never reset), plus the run's measured ratios (`ratios`, a host list). `every_step`: the ratio is measured on
    every step (the gradients are taken apart anyway)."""

    def __init__(self, uses_activations: bool, every_step: bool):
        super().__init__(name="regulariser_activity")
        self.uses_activations = uses_activations
        self.every_step = every_step
        size = len(activity_record.SUMS)
        self.epoch = self.add_variable(shape=(size,), initializer="zeros", dtype="float64", name="epoch")
        self.totals = self.add_variable(shape=(size,), initializer="zeros", dtype="float64", name="totals")
        self.last_ratio = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="last_ratio")
        self.ratios = []

    def due(self, iterations) -> bool:
        """Whether the step about to run (optimiser `iterations` done before it) measures the ratio."""
        return self.every_step or int(iterations) % activity_record.RATIO_EVERY == 0

    def update_state(self, diagnostics, skipped, nonfinite, parts=None):
        """Add one step: the regulariser's `Diagnostics`, `skipped` (batch too small) and `nonfinite` (bool scalars),
        and `parts` = (∇CE, ω∇R) as lists over the variables on a measured step (None otherwise)."""
        ratio, measured = tf.constant(0.0), tf.constant(False)
        if parts is not None:
            ratio, measured = gradient_ratio(*parts), tf.constant(True)
            self.last_ratio.assign(ratio)
        sums = step_sums(diagnostics, skipped, nonfinite, ratio, measured)
        self.epoch.assign_add(sums)
        self.totals.assign_add(sums)

    def collect(self):
        """After a measured step, on the host: keep its ratio."""
        self.ratios.append(float(keras.ops.convert_to_numpy(self.last_ratio)))

    def reset_state(self):
        self.epoch.assign(tf.zeros_like(self.epoch))

    def result(self):
        s = dict(zip(activity_record.SUMS, tf.unstack(tf.convert_to_tensor(self.epoch))))
        steps = tf.add_n([s[o] for o in activity_record.OUTCOMES])
        out = {f"reg_{o}": s[o] / steps for o in activity_record.OUTCOMES}
        if self.uses_activations:
            out["reg_constant_neurons"] = s["constant_neurons"] / (steps - s["skipped_small_batch"])
        out["reg_grad_ratio"] = s["grad_ratio"] / s["grad_ratio_steps"]
        return out

    def summary(self) -> dict:
        """The run's `regulariser_activity` record (`activity_record.summary`)."""
        return activity_record.summary(keras.ops.convert_to_numpy(self.totals), self.ratios, self.uses_activations)

    def state(self) -> dict:
        """What a checkpoint keeps: name → array."""
        return {"activity_totals": keras.ops.convert_to_numpy(self.totals),
                "activity_ratios": np.asarray(self.ratios, dtype=np.float64)}

    def load(self, arrays) -> list:
        """Restore from a checkpoint's arrays (a mapping); returns the names it lacked (an older checkpoint)."""
        missing = [name for name in ("activity_totals", "activity_ratios") if name not in arrays]
        if "activity_totals" in arrays:
            self.totals.assign(arrays["activity_totals"])
        if "activity_ratios" in arrays:
            self.ratios = [float(r) for r in arrays["activity_ratios"]]
        return missing
