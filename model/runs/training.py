"""Train one network under one regulariser with Keras `fit()`: loss = CE + weight · R, early stopping, checkpoints.

`RegularisedModel` wraps the zoo's network with a custom `train_step` (the keras-io pattern); callbacks implement the
protocol's early stopping (val CE, strict improvement, stop after patience + 1 non-improving epochs), resumable
checkpoints, the per-epoch `history.csv` and the heartbeat of the run's claim (`model.runs.callbacks`). `train(...)`
runs it all for one resolved spec in one run folder. Must not know about sweeps, executors or `DONE.json` (that is
`model.runs.execute`).
"""
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from model.runs import run_folder
from model.runs.callbacks import (
    CHECKPOINT,
    Checkpoint,
    EarlyStopping,
    Heartbeat,
    History,
    TensorBoardScalars,
    load_checkpoint,
)

log = logging.getLogger(__name__)

NEURON_LAYERS = (keras.layers.Dense, keras.layers.Conv2D)
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


class RegularisedModel(keras.Model):
    """`network` trained on mean sparse CE (from logits) + `weight` · `regulariser(activations, weights)`.

    activations: outputs of `neuron_layers(network)` on the current batch, each (b, ...), logits last; taken from the
    training forward pass when `train_pass`, else from a second pass with training=False. Metrics: loss (CE + ω·R),
    ce, reg (R, unweighted), accuracy; with `zero_nonfinite` also reg_effective (fraction of steps whose regulariser
    gradient was finite for every variable, Q-dead-neurons). Validation reports loss = CE only, per example or as the
    mean of batch means (`val_batch_mean`, Q-val-batch-mean).
    """

    def __init__(self, network, regulariser, weight: float, train_pass: bool, zero_nonfinite: bool,
                 val_batch_mean: bool):
        super().__init__()
        self.network = network
        self.features = keras.Model(network.inputs, [layer.output for layer in neuron_layers(network)])
        self.regulariser = regulariser
        self.weight = float(weight)
        self.regularised = self.weight > 0
        self.reads_activations = self.regularised and bool(regulariser.uses_activations)
        self.train_pass = train_pass
        self.zero_nonfinite = zero_nonfinite
        self.val_batch_mean = val_batch_mean
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.ce_tracker = keras.metrics.Mean(name="ce")
        self.reg_tracker = keras.metrics.Mean(name="reg")
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self.effective_tracker = keras.metrics.Mean(name="reg_effective")

    @property
    def metrics(self):
        extra = [self.effective_tracker] if self.zero_nonfinite and self.regularised else []
        return [self.loss_tracker, self.ce_tracker, self.reg_tracker, self.accuracy_tracker, *extra]

    def call(self, x, training=False):
        return self.network(x, training=training)

    def train_step(self, data):
        x, y = data
        variables = self.network.trainable_variables
        with tf.GradientTape(persistent=self.zero_nonfinite) as tape:
            if self.train_pass:
                activations = self.features(x, training=True)
                logits = activations[-1]
            else:
                logits = self.network(x, training=True)
                if self.reads_activations:
                    activations = self.features(x, training=False)
            ce = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
            reg = tf.zeros(())
            if self.regularised:
                reg = self.regulariser_value(activations if self.reads_activations else [], variables)
            weighted = self.weight * reg
            loss = ce + weighted
        if self.zero_nonfinite:
            ce_grads = tape.gradient(ce, variables)
            reg_grads = [tf.zeros_like(gc) if gr is None else gr
                         for gc, gr in zip(ce_grads, tape.gradient(weighted, variables))]
            finite = [tf.reduce_all(tf.math.is_finite(g)) for g in reg_grads]
            grads = [gc + tf.where(ok, gr, tf.zeros_like(gr)) for gc, gr, ok in zip(ce_grads, reg_grads, finite)]
            self.effective_tracker.update_state(tf.cast(tf.reduce_all(tf.stack(finite)), tf.float32))
        else:
            grads = tape.gradient(loss, variables)
        grads = [tf.debugging.check_numerics(g, "non-finite gradient (the loss diverged or the regulariser's "
                                                "gradient is NaN/Inf)") for g in grads]
        self.optimizer.apply(grads, variables)
        self.loss_tracker.update_state(loss)
        self.ce_tracker.update_state(ce)
        self.reg_tracker.update_state(reg)
        self.accuracy_tracker.update_state(y, logits)
        return {m.name: m.result() for m in self.metrics}

    def regulariser_value(self, activations, variables):
        """R of the batch (scalar). An activation regulariser contributes 0 (value and gradient) on a batch of fewer
        than 2 examples, where no correlation exists: an epoch's last partial batch holds one example when
        n mod batch_size == 1. Decided at trace time when the batch size is static, else in-graph (`tf.cond`)."""
        if not self.reads_activations:
            return self.regulariser([], variables)
        dtype, size = activations[-1].dtype, activations[-1].shape[0]
        if size is not None:
            return self.regulariser(activations, variables) if size >= 2 else tf.zeros((), dtype)
        return tf.cond(tf.shape(activations[-1])[0] >= 2, lambda: self.regulariser(activations, variables),
                       lambda: tf.zeros((), dtype))

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


def train(spec, network, splits, regulariser, run_dir: Path, heartbeat=lambda: None, callbacks=()) -> TrainResult:
    """Train `network` (a zoo `Network`) on `splits` under `regulariser` as `spec` says, in `run_dir`.

    Resumes from `run_dir/checkpoints/last.npz` when present. Writes history.csv, tensorboard/, checkpoints/ and
    best.weights.h5 (the kept weights: best-val weights, or the last ones when `restore_best` is only_if_stopped and
    max_epochs was reached). Same spec and seed on CPU → the same final weights, interrupted or not. `callbacks`:
    extra Keras callbacks, run before the built-in ones (they may edit the epoch's logs).
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
    callbacks = [*callbacks, stopper, history, Checkpoint(checkpoint_path, spec.checkpoint_every, stopper, rows, clock),
                 Heartbeat(heartbeat),
                 TensorBoardScalars(run_dir / run_folder.TENSORBOARD)]

    if first_epoch < spec.max_epochs:
        steps = math.ceil(len(splits.x_train) / spec.batch_size)
        data = epoch_batches(splits.x_train, splits.y_train, spec.batch_size, spec.seed, first_epoch,
                             spec.max_epochs, spec.shuffle_buffer)
        model.fit(data, epochs=spec.max_epochs, initial_epoch=first_epoch, steps_per_epoch=steps, shuffle=False,
                  validation_data=(splits.x_val, splits.y_val), validation_batch_size=spec.batch_size,
                  callbacks=callbacks, verbose=1 if sys.stdout.isatty() else 0)

    epochs = rows[-1]["epoch"] if rows else first_epoch
    restore = stopper.best_weights is not None and (spec.restore_best == "always" or stopper.stopped)
    if restore:
        net.set_weights(stopper.best_weights)
    net.save_weights(str(run_dir / run_folder.WEIGHTS))

    def evaluate(x, y):
        return model.evaluate(x, y, batch_size=spec.batch_size, verbose=0, return_dict=True)

    train_m, val_m, test_m = (evaluate(splits.x_train, splits.y_train), evaluate(splits.x_val, splits.y_val),
                              evaluate(splits.x_test, splits.y_test))
    return TrainResult(
        train_accuracy=float(train_m["accuracy"]), val_accuracy=float(val_m["accuracy"]),
        test_accuracy=float(test_m["accuracy"]), val_loss=float(val_m["loss"]), epochs=epochs,
        best_epoch=stopper.best_epoch, kept_epoch=stopper.best_epoch if restore else epochs,
        stop_reason="early_stopping" if stopper.stopped else "max_epochs", restored_best=restore,
        iterations=int(keras.ops.convert_to_numpy(model.optimizer.iterations)),
        wall_seconds=clock["wall_seconds"], resumed_from_epoch=first_epoch)
