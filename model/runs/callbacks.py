"""The Keras callbacks of one run: the protocol's early stopping, history.csv, resumable checkpoints, TensorBoard
scalars, the claim's heartbeat and the polite stop on a signal. Each is a `keras.callbacks.Callback` that
`model.runs.training.train` composes.
"""
import csv
import io
import json
import logging
import math
import time
import zipfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from model import atomic
from model.errors import DataError
from model.runs.activity_record import COLUMNS as ACTIVITY_COLUMNS
from model.runs.stop_request import Interrupted, StopRequest

log = logging.getLogger(__name__)

CHECKPOINT = "last.npz"
HISTORY_COLUMNS = ("loss", "ce", "reg", "accuracy", *ACTIVITY_COLUMNS, "val_loss", "val_accuracy")  # then lr, seconds


class EarlyStopping(keras.callbacks.Callback):
    """The protocol's early stopping: strict improvement of `monitor`, stop after `patience + 1` epochs without.

    Keeps a copy of the best weights; restoring them is the caller's choice (Q-restore-best in docs/quirks.md).
    Epochs are counted from 1.
    """

    def __init__(self, network, monitor: str, patience: int):
        super().__init__()
        self.network, self.monitor, self.patience = network, monitor, patience
        self.best, self.best_epoch, self.wait, self.best_weights, self.stopped = None, 0, 0, None, False

    def improved(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best if self.monitor == "val_accuracy" else value < self.best

    def on_epoch_end(self, epoch, logs=None):
        value = float(logs[self.monitor])
        if not math.isfinite(value):
            raise FloatingPointError(f"epoch {epoch + 1}: {self.monitor} became non-finite ({value})")
        if self.improved(value):
            self.best, self.best_epoch, self.wait = value, epoch + 1, 0
            self.best_weights = self.network.get_weights()
        else:
            self.wait += 1
            if self.wait > self.patience:
                self.stopped = True
                self.model.stop_training = True

    def state(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load(self, state: dict, best_weights: list | None) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        self.best_weights = best_weights


class History(keras.callbacks.Callback):
    """Per-epoch rows (epoch, metrics, val metrics, lr, seconds) rewritten atomically to `history.csv`."""

    def __init__(self, path: Path, rows: list[dict], clock):
        super().__init__()
        self.path, self.rows, self.clock = path, rows, clock

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.started
        self.clock["wall_seconds"] += seconds
        ordered = [k for k in HISTORY_COLUMNS if k in logs] + sorted(k for k in logs if k not in HISTORY_COLUMNS)
        row = {"epoch": epoch + 1, **{k: float(logs[k]) for k in ordered},
               "lr": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)), "seconds": seconds}
        self.rows.append(row)
        log.info("epoch %d: %s", epoch + 1, ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "epoch"))
        write_history(self.path, self.rows)


def write_history(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic.write_text(path, out.getvalue())


class Checkpoint(keras.callbacks.Callback):
    """Every `every` epochs, one atomic `checkpoints/last.npz`: model variables (weights and seed-generator states),
    optimiser variables, the regulariser-activity totals and measured ratios, early-stopping state and best weights,
    history rows, epoch and wall seconds so far."""

    def __init__(self, path: Path, every: int, stopper: EarlyStopping, rows: list, clock: dict):
        super().__init__()
        self.path, self.every, self.stopper, self.rows, self.clock = path, every, stopper, rows, clock
        self.saved_epoch = None  # the epoch of the last checkpoint this callback wrote

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0 and not self.model.stop_training:
            self.save(epoch + 1)

    def save(self, epoch: int) -> None:
        """Checkpoint now, at the end of `epoch` (counted from 1)."""
        save_checkpoint(self.path, self.model, self.stopper, epoch, self.rows, self.clock["wall_seconds"])
        self.saved_epoch = epoch


def save_checkpoint(path: Path, model: keras.Model, stopper: EarlyStopping, epoch: int, rows: list,
                    wall_seconds: float) -> None:
    arrays = {f"model_{i}": v.numpy() for i, v in enumerate(model.network.variables)}
    arrays |= {f"optimizer_{i}": v.numpy() for i, v in enumerate(model.optimizer.variables)}
    if model.activity is not None:
        arrays["activity_totals"] = model.activity.totals.numpy()
        arrays["activity_ratios"] = np.asarray(model.activity.ratios, np.float64)
    for i, w in enumerate(stopper.best_weights or []):
        arrays[f"best_{i}"] = w
    state = {"epoch": epoch, "stopper": stopper.state(), "has_best": stopper.best_weights is not None,
             "history": rows, "wall_seconds": wall_seconds}
    arrays["state"] = np.array(json.dumps(state))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic.write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path, model: keras.Model, stopper: EarlyStopping) -> dict:
    """Restore a checkpoint written by `save_checkpoint` into a compiled model; return its state dict.

    A checkpoint that cannot be read back (cut short, damaged, or written for another model) raises `DataError`
    naming the file and what to do, instead of failing the run on every rerun with a bare zip or key error."""
    try:
        return _load_checkpoint(path, model, stopper)
    except (OSError, EOFError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile) as err:
        raise DataError(f"{path}: damaged checkpoint, cannot resume from it ({type(err).__name__}: "
                        f"{' '.join(str(err).split())[:200]}); delete it to restart this run from epoch 0, or rerun "
                        "with --force") from None


def _load_checkpoint(path: Path, model: keras.Model, stopper: EarlyStopping) -> dict:
    with np.load(path) as data:
        state = json.loads(str(data["state"]))
        for i, v in enumerate(model.network.variables):
            v.assign(data[f"model_{i}"])
        for i, v in enumerate(model.optimizer.variables):
            v.assign(data[f"optimizer_{i}"])
        if model.activity is not None:
            if "activity_totals" in data:
                model.activity.totals.assign(data["activity_totals"])
                if "activity_ratios" in data:
                    model.activity.ratios = data["activity_ratios"].tolist()
                else:
                    log.warning("%s: checkpoint from before the measured ratios were kept: their median and range "
                                "will cover only the steps after epoch %d", path, state["epoch"])
            else:
                log.warning("%s: checkpoint from before the activity accounting: the regulariser_activity record "
                            "will count only the steps after epoch %d", path, state["epoch"])
        best = [data[f"best_{i}"] for i in range(len(model.network.weights))] if state["has_best"] else None
    stopper.load(state["stopper"], best)
    return state


class TensorBoardScalars(keras.callbacks.Callback):
    """Per-epoch scalars as TensorBoard event files: train metrics and the learning rate under `train/`, val_* under
    `validation/`; and the run's hyper-parameters (`hparams`: name → str, float, int or bool) for TensorBoard's HParams
    dashboard, one session per run folder, so a sweep's grid can be compared there (`tensorboard --logdir
    <output_root>`).

    The scalars are written with TensorFlow's own summary writer and the "scalars" plugin tag; the HParams summary
    needs the `tensorboard` package (the optional extra `tensorboard`), imported here only, and is left out, with
    one log line, when it is not installed.
    """

    def __init__(self, log_dir: Path, hparams: dict | None = None, trial_id: str | None = None):
        super().__init__()
        self.log_dir = Path(log_dir)
        self.hparams, self.trial_id = hparams, trial_id
        self.writers = {}

    def writer(self, split: str):
        if split not in self.writers:
            self.writers[split] = tf.summary.create_file_writer(str(self.log_dir / split) if split else
                                                                str(self.log_dir))
        return self.writers[split]

    def on_train_begin(self, logs=None):
        if not self.hparams:
            return
        try:
            from tensorboard.plugins.hparams import api as hp
        except ImportError:
            log.info("no HParams summary: the tensorboard package is not installed (pip install tensorboard)")
            return
        with self.writer("").as_default():
            hp.hparams(self.hparams, trial_id=self.trial_id)

    def on_epoch_end(self, epoch, logs=None):
        from tensorflow.core.framework import summary_pb2

        plugin = summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
        metadata = summary_pb2.SummaryMetadata(plugin_data=plugin)
        lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        for key, value in [*logs.items(), ("learning_rate", lr)]:
            split, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            with self.writer(split).as_default():
                tf.summary.write(f"epoch_{name}", tf.constant(float(value)), step=epoch + 1, metadata=metadata)
        for writer in self.writers.values():  # on disk with the epoch's checkpoint: a stopped run loses no epoch
            writer.flush()

    def on_train_end(self, logs=None):
        for writer in self.writers.values():
            writer.close()


KEPT_METRICS = ("train_accuracy", "val_accuracy", "test_accuracy", "val_loss")  # of the kept weights, as in DONE.json


def write_kept_metrics(log_dir: Path, hparams: dict, result: dict, step: int) -> bool:
    """The HParams dashboard's metrics of one run: `kept/<name>` scalars of the kept weights (`result`: name →
    value for each of `KEPT_METRICS`, the numbers DONE.json records, test accuracy included) at the kept epoch
    `step`, and the experiment's config naming those metrics only (the dashboard would otherwise show the last
    epoch's value of every per-epoch scalar, which is not the run's result when best weights were restored).
    Returns False, writing nothing, when the `tensorboard` package is not installed."""
    try:
        from tensorboard.plugins.hparams import api as hp
    except ImportError:
        return False
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        hp.hparams_config(hparams=[hp.HParam(name) for name in hparams],
                          metrics=[hp.Metric(f"kept/{name}", display_name=f"{name} (kept epoch)")
                                   for name in KEPT_METRICS])
        for name in KEPT_METRICS:
            tf.summary.scalar(f"kept/{name}", float(result[name]), step=step)
    writer.close()
    return True


class Heartbeat(keras.callbacks.Callback):
    """Calls `beat()` (the run claim's heartbeat) after every epoch."""

    def __init__(self, beat):
        super().__init__()
        self.beat = beat

    def on_epoch_end(self, epoch, logs=None):
        self.beat()


class StopOnSignal(keras.callbacks.Callback):
    """Stops training when `request` (a `StopRequest`: SIGTERM or SIGINT came) asks, within its grace time.

    At an epoch's end (this callback runs last, after the epoch was recorded): checkpoint that epoch through
    `checkpoint` unless it just did, and stop with Keras's own `model.stop_training`; `interrupted` then tells the
    trainer not to finish the run. Within an epoch, at each step's end: when the rest of the epoch (estimated from
    the last epoch's duration, or this epoch's time per step) would not end within the grace time left, raise
    `Interrupted` at once, so the partial epoch never reaches the history or early stopping; the run resumes from
    its last checkpoint. An epoch on which early stopping fired is left to finish the run (no checkpoint of it would
    resume as the same run).
    """

    def __init__(self, request: StopRequest, checkpoint: Checkpoint, steps_per_epoch: int):
        super().__init__()
        self.request, self.checkpoint, self.steps = request, checkpoint, steps_per_epoch
        self.interrupted, self.last_epoch_seconds, self.epoch = False, None, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.epoch_started = epoch, time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if not self.request.requested:
            return
        elapsed = time.perf_counter() - self.epoch_started
        if self.last_epoch_seconds is not None:
            left = self.last_epoch_seconds - elapsed
        else:  # the first epoch of this attempt: steps left at this epoch's pace, and a second for validation
            left = elapsed / (batch + 1) * (self.steps - batch - 1) + 1.0
        if left > self.request.remaining():
            self._interrupt(f"at step {batch + 1} of epoch {self.epoch + 1}")

    def on_train_begin(self, logs=None):
        if self.request.requested:
            self._interrupt("before the first step")

    def _interrupt(self, where: str):
        saved = self.checkpoint.saved_epoch
        raise Interrupted(self.request.signum, f"{where}; the run resumes from " +
                          (f"its checkpoint of epoch {saved}" if saved else "the start (no checkpoint yet)"))

    def on_epoch_end(self, epoch, logs=None):
        self.last_epoch_seconds = time.perf_counter() - self.epoch_started
        if not self.request.requested or self.model.stop_training:
            return
        if self.checkpoint.saved_epoch != epoch + 1:
            self.checkpoint.save(epoch + 1)
        log.warning("stopping after epoch %d (checkpointed): the run resumes from there", epoch + 1)
        self.interrupted = True
        self.model.stop_training = True
