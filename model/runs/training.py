"""Train one network under one regulariser with Keras `fit()`: loss = CE + weight · R, early stopping, checkpoints.

`RegularisedModel` wraps the zoo's network with a custom `train_step` (the keras-io pattern); callbacks implement the
protocol's early stopping (val CE, strict improvement, stop after patience + 1 non-improving epochs), resumable
checkpoints, the per-epoch `history.csv` and the heartbeat of the run's claim (`model.runs.callbacks`). `train(...)`
runs it all for one resolved spec in one run folder. Must not know about sweeps, executors or `DONE.json` (that is
`model.runs.execute`).
"""
import logging
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from model.regularisers.registry import Diagnostics
from model.runs import activity_record, run_folder
from model.runs.callbacks import (
    CHECKPOINT,
    Checkpoint,
    EarlyStopping,
    Heartbeat,
    History,
    StopOnSignal,
    TensorBoardScalars,
    load_checkpoint,
    write_kept_metrics,
)
from model.runs.stop_request import Interrupted, StopRequest

log = logging.getLogger(__name__)

NEURON_LAYERS = (keras.layers.Dense, keras.layers.Conv2D)
NONFINITE = "non-finite gradient of"  # check_numerics message prefix; then the variable's path
STOCHASTIC_LAYERS = (keras.layers.Dropout, keras.layers.BatchNormalization, keras.layers.GaussianNoise,
                     keras.layers.GaussianDropout, keras.layers.AlphaDropout)


def neuron_layers(model: keras.Model) -> list:
    """The model's Dense and Conv2D layers in order (the last one gives the logits)."""
    return [layer for layer in model.layers if isinstance(layer, NEURON_LAYERS)]


def uses_train_pass(model: keras.Model, reg_forward: str) -> bool:
    """Whether the regulariser reads the activations of the training forward pass.

    "auto": yes unless the model has a layer that behaves differently in training (Dropout, BatchNorm, noise), where
    the protocol's separate inference-mode pass gives other values (Q-reg-forward in docs/quirks.md).
    """
    if reg_forward == "auto":
        return not any(isinstance(layer, STOCHASTIC_LAYERS) for layer in model.layers)
    return reg_forward == "train_pass"


def step_sums(diagnostics, skipped, nonfinite, ratio, measured):
    """One step's contribution (float64, laid out as `activity.SUMS`): a one-hot outcome (decided in the order of
    `model.runs.activity_record`'s docstring), the constant sampled neurons, and ‖ω∇R‖ / ‖∇CE‖ with 1 when it was
    `measured` on this step (ratio and count 0 otherwise)."""
    dead = tf.logical_and(tf.logical_not(skipped), diagnostics.dead_zeroed)
    bars = tf.logical_and(tf.logical_not(skipped | dead), diagnostics.bars_zeroed)
    zeroed = tf.logical_and(tf.logical_not(skipped | dead | bars), nonfinite)
    applied = tf.logical_not(skipped | dead | bars | zeroed)
    parts = [tf.cast(v, tf.float64) for v in (applied, dead, bars, zeroed, skipped, diagnostics.constant_neurons,
                                              ratio, measured)]
    return tf.stack(parts)


class ActivityTracker(keras.metrics.Metric):
    """The regulariser's activity accounting (`model.runs.activity_record`): per-step sums laid out as `activity.SUMS`,
    over the epoch (reset by `fit` each epoch; `result()` gives the `activity.COLUMNS` of history.csv) and over the
    run (`totals`, never reset; saved in the checkpoint), and the run's measured ratios (`ratios`, a host list that
    `collect` fills after each step; saved in the checkpoint). `result()` fractions are NaN only for an empty epoch."""

    def __init__(self, uses_activations: bool):
        super().__init__(name="regulariser_activity")
        self.uses_activations = uses_activations
        self.epoch = self.add_variable(shape=(len(activity_record.SUMS),), initializer="zeros", dtype="float64",
                                       name="epoch")
        self.totals = self.add_variable(shape=(len(activity_record.SUMS),), initializer="zeros", dtype="float64",
                                        name="totals")
        self.last = self.add_variable(shape=(len(activity_record.SUMS),), initializer="zeros", dtype="float64",
                                      name="last")
        self.ratios = []

    def update_state(self, step_sums):
        self.epoch.assign_add(step_sums)
        self.totals.assign_add(step_sums)
        self.last.assign(step_sums)

    def collect(self):
        """On the host after a step: keep its ratio if it was measured."""
        last = dict(zip(activity_record.SUMS, keras.ops.convert_to_numpy(self.last)))
        if last["grad_ratio_steps"]:
            self.ratios.append(float(last["grad_ratio"]))

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


class RegularisedModel(keras.Model):
    """`network` trained on mean sparse CE (from logits) + `weight` · `regulariser(activations, weights)`.

    activations: outputs of `neuron_layers(network)` on the current batch, each (b, ...), logits last; taken from the
    training forward pass when `train_pass`, else from a second pass with training=False. Metrics: loss (CE + ω·R),
    ce, reg (R, unweighted), accuracy; with ω > 0 and `accounting` also the regulariser's activity
    (`ActivityTracker`, `model.runs.activity_record`: what happened to its gradient at each step). `zero_nonfinite`
    zeroes a variable's regulariser gradient where it is non-finite (Q-dead-neurons). Validation reports loss = CE
    only, per example or as the mean of batch means (`val_batch_mean`, Q-val-batch-mean). `accounting=False`
    (benchmarks only) turns the accounting off.
    """

    def __init__(self, network, regulariser, weight: float, train_pass: bool, zero_nonfinite: bool,
                 val_batch_mean: bool, accounting: bool = True):
        super().__init__()
        self.network = network
        self.features = keras.Model(network.inputs, [layer.output for layer in neuron_layers(network)])
        self.regulariser = regulariser
        self.weight = float(weight)
        self.regularised = self.weight > 0
        self.reads_activations = self.regularised and bool(regulariser.uses_activations)
        self.train_pass = train_pass
        self.zero_nonfinite = zero_nonfinite
        self.accounting = accounting and self.regularised
        self.val_batch_mean = val_batch_mean
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.ce_tracker = keras.metrics.Mean(name="ce")
        self.reg_tracker = keras.metrics.Mean(name="reg")
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self.activity = ActivityTracker(self.reads_activations) if self.accounting else None

    @property
    def metrics(self):
        extra = [self.activity] if self.accounting else []
        return [self.loss_tracker, self.ce_tracker, self.reg_tracker, self.accuracy_tracker, *extra]

    def call(self, x, training=False):
        return self.network(x, training=training)

    def train_step(self, data):
        x, y = data
        variables = self.network.trainable_variables
        with tf.GradientTape(persistent=self.regularised and (self.zero_nonfinite or self.accounting)) as tape:
            # forward pass (training mode), and the activations the regulariser reads (same or separate pass,
            # Q-reg-forward)
            if self.train_pass:
                activations = self.features(x, training=True)
                logits = activations[-1]
            else:
                logits = self.network(x, training=True)
                if self.reads_activations:
                    activations = self.features(x, training=False)
            # the losses: CE, and R with its diagnostics from the same computation (no extra pass)
            ce = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
            reg, diagnostics, skipped = tf.zeros(()), None, None
            if self.regularised:
                reg, diagnostics, skipped = self.regulariser_value(
                    activations if self.reads_activations else [], variables)
            weighted = self.weight * reg
            loss = ce + weighted
        # gradients: of CE and of ω·R apart under zero_nonfinite (zeroing the non-finite ones per variable), else of
        # the sum, with ω∇R alone on the accounting's every RATIO_EVERY-th step (to measure ‖ω∇R‖/‖∇CE‖)
        nonfinite, ratio, measured = tf.constant(False), tf.constant(0.0), tf.constant(False)
        if self.zero_nonfinite and self.regularised:
            grads, nonfinite, ratio = self.separate_gradients(tape, ce, weighted, variables)
            measured = tf.constant(True)
        elif self.accounting:
            grads = tape.gradient(loss, variables)
            measured = tf.equal(self.optimizer.iterations % activity_record.RATIO_EVERY, 0)
            ratio = tf.cond(measured, lambda: self.measured_ratio(tape, weighted, grads, variables),
                            lambda: tf.constant(0.0))
        else:
            grads = tape.gradient(loss, variables)
        # a non-finite gradient left now fails the run; `nonfinite_reason` reads the message (the variable's path)
        grads = [tf.debugging.check_numerics(g, f"{NONFINITE} {v.path}") for g, v in zip(grads, variables)]
        # the update
        self.optimizer.apply(grads, variables)
        # metrics, and what happened to the regulariser's gradient on this step
        self.loss_tracker.update_state(loss)
        self.ce_tracker.update_state(ce)
        self.reg_tracker.update_state(reg)
        self.accuracy_tracker.update_state(y, logits)
        if self.accounting:
            self.activity.update_state(step_sums(diagnostics, skipped, nonfinite, ratio, measured))
        results = {}
        for m in self.metrics:
            r = m.result()
            results.update(r if isinstance(r, dict) else {m.name: r})
        return results

    def separate_gradients(self, tape, ce, weighted, variables):
        """(∇CE + ω∇R per variable, some ω∇R non-finite and zeroed (bool scalar), ‖ω∇R‖ / ‖∇CE‖ (global norms over the
        variables; 0 where ∇CE is exactly 0)). Non-finite ω∇R are zeroed per variable only under zero_nonfinite."""
        ce_grads = tape.gradient(ce, variables)
        reg_grads = [tf.zeros_like(gc) if gr is None else gr
                     for gc, gr in zip(ce_grads, tape.gradient(weighted, variables))]
        nonfinite = tf.constant(False)
        if self.zero_nonfinite:
            finite = [tf.reduce_all(tf.math.is_finite(g)) for g in reg_grads]
            reg_grads = [tf.where(ok, gr, tf.zeros_like(gr)) for gr, ok in zip(reg_grads, finite)]
            nonfinite = tf.logical_not(tf.reduce_all(tf.stack(finite)))
        ratio = tf.math.divide_no_nan(tf.linalg.global_norm(reg_grads), tf.linalg.global_norm(ce_grads))
        return [gc + gr for gc, gr in zip(ce_grads, reg_grads)], nonfinite, tf.cast(ratio, tf.float32)

    def measured_ratio(self, tape, weighted, grads, variables):
        """‖ω∇R‖ / ‖∇CE‖ beside the gradient of the sum `grads`: ω∇R by its own backward pass, ∇CE = grads − ω∇R
        (0 where ∇CE is exactly 0)."""
        reg_grads = [tf.zeros_like(g) if gr is None else gr for g, gr in zip(grads, tape.gradient(weighted, variables))]
        ce_norm = tf.linalg.global_norm([g - gr for g, gr in zip(grads, reg_grads)])
        return tf.cast(tf.math.divide_no_nan(tf.linalg.global_norm(reg_grads), ce_norm), tf.float32)

    def regulariser_value(self, activations, variables):
        """(R of the batch (scalar), its `Diagnostics`, skipped: bool scalar). An activation regulariser contributes
        0 (value and gradient) on a batch of fewer than 2 examples, where no correlation exists (skipped): an
        epoch's last partial batch holds one example when n mod batch_size == 1. Decided at trace time when the
        batch size is static, else in-graph (`tf.cond`)."""
        if not self.reads_activations:
            return (*self.regulariser.value_and_diagnostics([], variables), tf.constant(False))
        dtype, size = activations[-1].dtype, activations[-1].shape[0]

        def compute():
            return (*self.regulariser.value_and_diagnostics(activations, variables), tf.constant(False))

        def skip():
            return tf.zeros((), dtype), Diagnostics.none(), tf.constant(True)

        if size is not None:
            return compute() if size >= 2 else skip()
        return tf.cond(tf.shape(activations[-1])[0] >= 2, compute, skip)

    def test_step(self, data):
        x, y = data
        logits = self.network(x, training=False)
        ce = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
        self.loss_tracker.update_state(tf.reduce_mean(ce) if self.val_batch_mean else ce)
        self.accuracy_tracker.update_state(y, logits)
        return {"loss": self.loss_tracker.result(), "accuracy": self.accuracy_tracker.result()}


def make_optimizer(spec_optimizer) -> keras.optimizers.Optimizer:
    """Keras SGD from the spec's `optimizer` (a fresh one per run, Q-shared-optimizer); step = optimiser iteration."""
    o = spec_optimizer
    lr = o.learning_rate
    if o.schedule == "exponential_decay":
        lr = keras.optimizers.schedules.ExponentialDecay(o.learning_rate, o.decay_steps, o.decay_rate,
                                                         staircase=o.staircase)
    return keras.optimizers.SGD(learning_rate=lr, momentum=o.momentum, nesterov=o.nesterov)


def epoch_order(n: int, seed: int, epoch: int, shuffle_buffer: int | None) -> np.ndarray:
    """The order (n,) int64 in which epoch `epoch` (0-based) visits the n training examples; a function of
    (seed, epoch) only. Full uniform shuffle, or with `shuffle_buffer` (Q-shuffle-buffer) a buffer shuffle like
    tf.data's: keep a buffer of that many items, emit a random one and refill it from the stream."""
    rng = np.random.default_rng([seed, epoch])
    if shuffle_buffer is None or shuffle_buffer >= n:
        return rng.permutation(n).astype(np.int64)
    buffer, out = list(range(shuffle_buffer)), []
    for item, slot in zip(range(shuffle_buffer, n), rng.integers(shuffle_buffer, size=n - shuffle_buffer).tolist()):
        out.append(buffer[slot])
        buffer[slot] = item
    out.extend(np.asarray(buffer)[rng.permutation(len(buffer))].tolist())
    return np.asarray(out, dtype=np.int64)


def epoch_batches(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, first_epoch: int, last_epoch: int,
                  shuffle_buffer: int | None) -> tf.data.Dataset:
    """Batches (x (b, ...), y (b,)) of epochs first_epoch .. last_epoch − 1 (0-based), each in `epoch_order`.

    The last batch of an epoch may be smaller (no drop_remainder): an epoch has ceil(n / batch_size) batches.
    """
    n = len(x)
    with tf.device("/CPU:0"):  # the input pipeline runs on the host
        xs, ys = tf.constant(x), tf.constant(y)

    def one_epoch(epoch):
        order = tf.numpy_function(lambda e: epoch_order(n, seed, int(e), shuffle_buffer), [epoch], tf.int64)
        return tf.data.Dataset.from_tensor_slices(tf.ensure_shape(order, [n])).batch(batch_size)

    return (tf.data.Dataset.range(first_epoch, last_epoch).flat_map(one_epoch)
            .map(lambda i: (tf.gather(xs, i), tf.gather(ys, i))).prefetch(2))


def hparams(spec) -> dict:
    """The hyper-parameters TensorBoard's HParams dashboard shows for a run (name → str, float or int)."""
    return {"network": spec.network, "regulariser": spec.regulariser, "weight": float(spec.weight),
            "sampling": float(spec.sampling), "seed": int(spec.seed), "profile": spec.profile}


def nonfinite_reason(message: str, epoch: int, spec) -> str | None:
    """The one-line reason of a run stopped by `train_step`'s check of the gradients (None for any other error
    `message`): which variable's gradient became NaN or Inf, at which epoch (1-based), under which learning rate and
    weight. TensorFlow's own message is its graph's trace, kilobytes long; that goes to the log only."""
    found = re.search(rf"{NONFINITE} (\S+) : Tensor had (NaN|Inf) values", message)
    if found is None:
        return None
    variable, kind = found.groups()
    nonfinite = " (the regulariser's non-finite gradients zeroed, reg_nonfinite zero_per_variable)" \
        if spec.reg_nonfinite == "zero_per_variable" else ""
    return (f"epoch {epoch}: the training loss's gradient for {variable} became {kind} (regulariser "
            f"{spec.regulariser}, weight {spec.weight!r}, learning rate {spec.optimizer.learning_rate!r}){nonfinite}")


@dataclass
class TrainResult:
    """What `train` returns. Accuracies are fractions of the kept weights (those of `kept_epoch`); val_loss is their
    validation CE; best_epoch is the epoch of the best monitored value; wall_seconds sums the epochs' wall time over
    every attempt (resumes included)."""

    train_accuracy: float
    val_accuracy: float
    test_accuracy: float
    val_loss: float
    epochs: int
    best_epoch: int
    kept_epoch: int
    stop_reason: str
    restored_best: bool
    iterations: int
    wall_seconds: float
    resumed_from_epoch: int
    regulariser_activity: dict | None  # `activity_record.summary` over every step of the run; None when ω = 0
    xla: bool  # whether Keras compiled the training step with XLA (`Regulariser.xla` asks for it)


def train(spec, network, splits, regulariser, run_dir: Path, heartbeat=lambda: None, callbacks=(),
          stop: StopRequest | None = None) -> TrainResult:
    """Train `network` (a zoo `Network`) on `splits` under `regulariser` as `spec` says, in `run_dir`.

    Resumes from `run_dir/checkpoints/last.npz` when present. Writes history.csv, tensorboard/, checkpoints/ and
    best.weights.h5 (the kept weights: best-val weights, or the last ones when `restore_best` is only_if_stopped and
    max_epochs was reached). Same spec and seed on CPU → the same final weights, interrupted or not. `callbacks`:
    extra Keras callbacks, run before the built-in ones (they may edit the epoch's logs). `stop`: a `StopRequest`
    (SIGTERM/SIGINT) that `StopOnSignal` acts on; raises `Interrupted` when it stopped training (checkpointed).
    """
    run_dir = Path(run_dir)
    keras.utils.set_random_seed(spec.seed)
    net = network.build_model()
    model = RegularisedModel(
        net, regulariser, spec.weight, train_pass=uses_train_pass(net, spec.reg_forward),
        zero_nonfinite=spec.reg_nonfinite == "zero_per_variable", val_batch_mean=spec.val_loss == "batch_mean")
    model.compile(optimizer=make_optimizer(spec.optimizer), jit_compile=regulariser.xla)
    model.optimizer.build(net.trainable_variables)

    stopper = EarlyStopping(net, spec.monitor, spec.patience)
    checkpoint_path = run_dir / run_folder.CHECKPOINTS / CHECKPOINT
    first_epoch, rows, clock = 0, [], {"wall_seconds": 0.0}
    if checkpoint_path.exists():
        state = load_checkpoint(checkpoint_path, model, stopper)
        first_epoch, rows, clock["wall_seconds"] = state["epoch"], state["history"], state["wall_seconds"]
        log.info("%s: resuming after epoch %d", run_dir, first_epoch)
    history = History(run_dir / run_folder.HISTORY, rows, clock)
    checkpoint = Checkpoint(checkpoint_path, spec.checkpoint_every, stopper, rows, clock)
    checkpoint.saved_epoch = first_epoch or None
    steps = math.ceil(len(splits.x_train) / spec.batch_size)
    stop_on_signal = StopOnSignal(stop or StopRequest(), checkpoint, steps)
    if model.activity is not None:
        collect = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: model.activity.collect())
        callbacks = [*callbacks, collect]
    callbacks = [*callbacks, stopper, history, checkpoint, Heartbeat(heartbeat),
                 TensorBoardScalars(run_dir / run_folder.TENSORBOARD, hparams(spec), trial_id=spec.task_id),
                 stop_on_signal]

    if first_epoch < spec.max_epochs:
        data = epoch_batches(splits.x_train, splits.y_train, spec.batch_size, spec.seed, first_epoch,
                             spec.max_epochs, spec.shuffle_buffer)
        try:
            model.fit(data, epochs=spec.max_epochs, initial_epoch=first_epoch, steps_per_epoch=steps, shuffle=False,
                      validation_data=(splits.x_val, splits.y_val), validation_batch_size=spec.batch_size,
                      callbacks=callbacks, verbose=1 if sys.stdout.isatty() else 0)
        except tf.errors.InvalidArgumentError as err:
            reason = nonfinite_reason(err.message, (rows[-1]["epoch"] if rows else first_epoch) + 1, spec)
            if reason is None:
                raise
            raise FloatingPointError(reason) from err
    if stop_on_signal.interrupted:
        raise Interrupted(stop_on_signal.request.signum, f"after epoch {checkpoint.saved_epoch} (checkpointed)")

    epochs = rows[-1]["epoch"] if rows else first_epoch
    restore = stopper.best_weights is not None and (spec.restore_best == "always" or stopper.stopped)
    if restore:
        net.set_weights(stopper.best_weights)
    net.save_weights(str(run_dir / run_folder.WEIGHTS))

    def evaluate(x, y):
        return model.evaluate(x, y, batch_size=spec.batch_size, verbose=0, return_dict=True)

    train_m, val_m, test_m = (evaluate(splits.x_train, splits.y_train), evaluate(splits.x_val, splits.y_val),
                              evaluate(splits.x_test, splits.y_test))
    kept_epoch = stopper.best_epoch if restore else epochs
    write_kept_metrics(run_dir / run_folder.TENSORBOARD, hparams(spec),
                       {"train_accuracy": train_m["accuracy"], "val_accuracy": val_m["accuracy"],
                        "test_accuracy": test_m["accuracy"], "val_loss": val_m["loss"]}, step=kept_epoch)
    return TrainResult(
        train_accuracy=float(train_m["accuracy"]), val_accuracy=float(val_m["accuracy"]),
        test_accuracy=float(test_m["accuracy"]), val_loss=float(val_m["loss"]), epochs=epochs,
        best_epoch=stopper.best_epoch, kept_epoch=kept_epoch,
        stop_reason="early_stopping" if stopper.stopped else "max_epochs", restored_best=restore,
        iterations=int(keras.ops.convert_to_numpy(model.optimizer.iterations)),
        wall_seconds=clock["wall_seconds"], resumed_from_epoch=first_epoch,
        regulariser_activity=None if model.activity is None else activity_record.summary(
            keras.ops.convert_to_numpy(model.activity.totals), model.activity.ratios, model.reads_activations),
        xla=bool(model.jit_compile))
