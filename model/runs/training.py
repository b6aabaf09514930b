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
from model.runs import run_folder
from model.runs.activity_accounting import ActivityAccounting
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


class RegularisedModel(keras.Model):
    """`network` trained on mean sparse CE (from logits) + `weight` · `regulariser(activations, weights)`.

    activations: outputs of `neuron_layers(network)` on the current batch, each (b, ...), logits last; taken from the
    training forward pass when `train_pass`, else from a second pass with training=False. Metrics: loss (CE + ω·R),
    ce, reg (R, unweighted), accuracy; with ω > 0 and `accounting` also the regulariser's activity
    (`model.runs.activity_accounting`: what happened to its gradient at each step). `zero_nonfinite`
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
        self.activity = ActivityAccounting(self.reads_activations, every_step=zero_nonfinite) \
            if self.accounting else None

    @property
    def metrics(self):
        extra = [self.activity] if self.accounting else []
        return [self.loss_tracker, self.ce_tracker, self.reg_tracker, self.accuracy_tracker, *extra]

    def call(self, x, training=False):
        return self.network(x, training=training)

    def make_train_function(self, force=False):
        """Keras' train function, one step per call; with the accounting's ratio measured on some steps only, a
        second compiled step (`train_step(data, measure=True)`) runs those (`ActivityAccounting.due`) and the
        ratio is read back after it, so the other steps carry no trace of the measurement."""
        if self.train_function is not None and not force:
            return self.train_function
        step = self._make_function(self.train_step)
        if not self.accounting:
            self.train_function = step
            return step
        measuring = step if self.activity.every_step else self._make_function(
            lambda data: self.train_step(data, measure=True))

        def train_function(iterator):
            if not self.activity.due(self.optimizer.iterations):
                return step(iterator)
            logs = measuring(iterator)
            self.activity.collect()
            return logs

        self.train_function = train_function
        return train_function

    def train_step(self, data, measure=False):
        x, y = data
        variables = self.network.trainable_variables
        apart = self.regularised and (self.zero_nonfinite or (self.accounting and measure))
        with tf.GradientTape(persistent=apart) as tape:
            # forward pass (training mode): the logits, and the activations R reads (Q-reg-forward)
            logits, activations = self.forward(x)
            # losses: mean CE, and R with what its policies did on this batch (one computation)
            ce = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
            reg, diagnostics, skipped = self.regulariser_value(activations, variables)
            weighted = self.weight * reg
            loss = ce + weighted
        # gradients of the loss; ∇CE and ω∇R apart where non-finite ω∇R are zeroed or the accounting measures them
        grads, parts, nonfinite = self.gradients(tape, loss, ce, weighted, variables, apart)
        # a non-finite gradient left now fails the run; `nonfinite_reason` reads the message (the variable's path)
        grads = [tf.debugging.check_numerics(g, f"{NONFINITE} {v.path}") for g, v in zip(grads, variables)]
        # the update
        self.optimizer.apply(grads, variables)
        # metrics, and what happened to the regulariser's gradient (model.runs.activity_accounting)
        self.loss_tracker.update_state(loss)
        self.ce_tracker.update_state(ce)
        self.reg_tracker.update_state(reg)
        self.accuracy_tracker.update_state(y, logits)
        if self.accounting:
            self.activity.update_state(diagnostics, skipped, nonfinite, parts)
        results = {}
        for m in self.metrics:
            r = m.result()
            results.update(r if isinstance(r, dict) else {m.name: r})
        return results

    def forward(self, x):
        """(logits (b, classes), the neuron layers' outputs R reads or []): from the training pass when
        `train_pass`, else from a second pass in inference mode."""
        if self.train_pass:
            activations = self.features(x, training=True)
            return activations[-1], activations if self.reads_activations else []
        logits = self.network(x, training=True)
        return logits, self.features(x, training=False) if self.reads_activations else []

    def gradients(self, tape, loss, ce, weighted, variables, apart):
        """(gradients to apply, (∇CE, ω∇R) per variable or None, some ω∇R zeroed as non-finite: bool scalar).

        `apart` (a persistent tape): a second backward pass. Under zero_nonfinite the applied gradient is
        ∇CE + ω∇R, ω∇R by its own backward pass with its non-finite values zeroed per variable; otherwise it is the
        gradient of the loss (the same bits whether or not the step measures), ∇CE comes from its own backward pass
        and ω∇R = ∇loss − ∇CE. ∇CE needs nothing of R, so TensorFlow runs that pass while the host kernel computes R
        (a measured step cost 1.4 ms more than another at N = 1010, against 2.9 ms with ω∇R's pass instead)."""
        if not apart:
            return tape.gradient(loss, variables), None, tf.constant(False)
        if not self.zero_nonfinite:
            ce_grads = tape.gradient(ce, variables)
            grads = tape.gradient(loss, variables)
            return grads, (ce_grads, [g - gc for g, gc in zip(grads, ce_grads)]), tf.constant(False)
        reg_grads = [tf.zeros_like(v) if g is None else g for g, v in zip(tape.gradient(weighted, variables),
                                                                           variables)]
        ce_grads = tape.gradient(ce, variables)
        finite = [tf.reduce_all(tf.math.is_finite(g)) for g in reg_grads]
        reg_grads = [tf.where(ok, gr, tf.zeros_like(gr)) for gr, ok in zip(reg_grads, finite)]
        return ([gc + gr for gc, gr in zip(ce_grads, reg_grads)], (ce_grads, reg_grads),
                tf.logical_not(tf.reduce_all(tf.stack(finite))))

    def regulariser_value(self, activations, variables):
        """(R of the batch (scalar), its `Diagnostics`, skipped: bool scalar). An activation regulariser contributes
        0 (value and gradient) on a batch of fewer than 2 examples, where no correlation exists (skipped): an
        epoch's last partial batch holds one example when n mod batch_size == 1. Decided at trace time when the
        batch size is static, else by the regulariser itself where it can (`Regulariser.small_batches`), else
        in-graph (`tf.cond`)."""
        if not self.regularised:
            return tf.zeros(()), Diagnostics.none(), tf.constant(False)
        if not self.reads_activations:
            return (*self.regulariser.value_and_diagnostics([], variables), tf.constant(False))
        dtype, size = activations[-1].dtype, activations[-1].shape[0]

        def compute():
            return (*self.regulariser.value_and_diagnostics(activations, variables), tf.constant(False))

        def skip():
            return tf.zeros((), dtype), Diagnostics.none(), tf.constant(True)

        if size is not None:
            return compute() if size >= 2 else skip()
        if self.regulariser.small_batches:
            return (*self.regulariser.value_and_diagnostics(activations, variables), tf.shape(activations[-1])[0] < 2)
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
    regulariser_activity: dict | None  # `ActivityAccounting.summary` over every step of the run; None when ω = 0
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
        regulariser_activity=None if model.activity is None else model.activity.summary(),
        xla=bool(model.jit_compile))
