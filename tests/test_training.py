"""Training: early stopping by the protocol, kept weights, data order, gradient policies, forward passes.

Quirks (docs/quirks.md): Q-restore-best, Q-dead-neurons, Q-reg-forward.
"""
import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from model.regularisers import registry
from model.runs import callbacks, run_folder
from model.runs.spec import Spec
from model.runs.training import RegularisedModel, epoch_batches, make_optimizer, train
from model.zoo.catalogue import get_network


def digits_spec(tmp_path, **fields):
    base = {"network": "digits/0", "regulariser": "none", "batch_size": 128, "max_epochs": 3, "patience": 20,
            "checkpoint_every": 2, "output_root": str(tmp_path),
            "optimizer": {"learning_rate": 0.05, "schedule": "constant"}}
    return Spec.from_dict({**base, **fields})


def run_train(spec, callbacks=(), regulariser=None):
    network = get_network(spec.network)
    reg = regulariser or registry.make(spec.regulariser, sampling=spec.sampling, **spec.regulariser_options)
    return train(spec, network, network.load_data(), reg, spec.run_dir, callbacks=callbacks)


class ScriptedValLoss(keras.callbacks.Callback):
    """Replaces the epoch's val_loss by a scripted sequence and keeps each epoch's weights."""

    def __init__(self, losses):
        super().__init__()
        self.losses, self.weights = losses, {}

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = self.losses[epoch]
        self.weights[epoch + 1] = self.model.network.get_weights()


def saved_weights(spec):
    net = get_network(spec.network).build_model()
    net.load_weights(str(spec.run_dir / run_folder.WEIGHTS))
    return net.get_weights()


def assert_same_weights(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


# Scripted sequence, patience 2: best at epoch 3 (0.5); epoch 5 equals it (not a strict improvement); epochs 4, 5, 6
# are the 3 = patience + 1 non-improving epochs, so training stops after epoch 6 and restores epoch 3's weights.
SCRIPT = [1.0, 0.8, 0.5, 0.6, 0.5, 0.7, 0.1, 0.1]


def test_early_stopping_follows_the_protocol_on_a_scripted_val_loss(tmp_path):
    spec = digits_spec(tmp_path, patience=2, max_epochs=8)
    script = ScriptedValLoss(SCRIPT)
    outcome = run_train(spec, callbacks=[script])
    assert (outcome.epochs, outcome.best_epoch, outcome.kept_epoch) == (6, 3, 3)
    assert outcome.stop_reason == "early_stopping" and outcome.restored_best
    assert_same_weights(saved_weights(spec), script.weights[3])
    history = (spec.run_dir / run_folder.HISTORY).read_text().splitlines()
    assert len(history) == 1 + 6
    assert history[0] == "epoch,loss,ce,reg,accuracy,val_loss,val_accuracy,lr,seconds"


@pytest.mark.parametrize("restore_best, kept", [("always", 3), ("only_if_stopped", 5)])
def test_weights_kept_at_max_epochs_depend_on_restore_best(tmp_path, restore_best, kept):
    spec = digits_spec(tmp_path, patience=2, max_epochs=5, restore_best=restore_best)
    script = ScriptedValLoss(SCRIPT)
    outcome = run_train(spec, callbacks=[script])
    assert (outcome.epochs, outcome.stop_reason, outcome.kept_epoch) == (5, "max_epochs", kept)
    assert_same_weights(saved_weights(spec), script.weights[kept])


def test_same_seed_same_weights_and_resume_from_checkpoint_is_exact(tmp_path):
    full = digits_spec(tmp_path / "full", network="digits/1", regulariser="t1", weight=0.01, max_epochs=4)
    first = run_train(full)
    again = digits_spec(tmp_path / "again", network="digits/1", regulariser="t1", weight=0.01, max_epochs=4)
    assert run_train(again).test_accuracy == first.test_accuracy
    assert_same_weights(saved_weights(full), saved_weights(again))
    # An interrupted run: train 2 epochs (checkpoint at 2), then continue the same run folder to 4 epochs.
    part = digits_spec(tmp_path / "part", network="digits/1", regulariser="t1", weight=0.01, max_epochs=2)
    run_train(part)
    resumed = run_train(part.replace(max_epochs=4))
    assert resumed.resumed_from_epoch == 2 and resumed.epochs == 4 and resumed.iterations == first.iterations
    assert_same_weights(saved_weights(full), saved_weights(part))
    rows = [r.split(",")[:-1] for r in (part.run_dir / run_folder.HISTORY).read_text().splitlines()]  # drop seconds
    assert rows == [r.split(",")[:-1] for r in (full.run_dir / run_folder.HISTORY).read_text().splitlines()]


def test_train_pass_and_inference_pass_agree_without_dropout(tmp_path):
    a = run_train(digits_spec(tmp_path / "a", regulariser="t2", weight=0.1, reg_forward="train_pass"))
    b = run_train(digits_spec(tmp_path / "b", regulariser="t2", weight=0.1, reg_forward="inference"))
    assert a.val_loss == pytest.approx(b.val_loss, rel=1e-5)
    for x, y in zip(saved_weights(digits_spec(tmp_path / "a", regulariser="t2", weight=0.1)),
                    saved_weights(digits_spec(tmp_path / "b", regulariser="t2", weight=0.1))):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)


class NanOnFirstKernel:
    """A regulariser whose gradient is NaN for the first layer's kernel only (a constant neuron: Q-dead-neurons)."""

    uses_activations, pairing, xla, options = False, "numpy", False, {}

    def value_and_diagnostics(self, activations, weights):
        return tf.sqrt(tf.reduce_sum(weights[0]) * 0.0), registry.Diagnostics.none()  # 0, d/dw = 0 · inf = NaN


def test_nonfinite_regulariser_gradient_zeroed_per_variable_or_failing(tmp_path):
    zeroed = digits_spec(tmp_path / "z", regulariser="t1", weight=1.0, reg_nonfinite="zero_per_variable")
    plain = digits_spec(tmp_path / "p", regulariser="none")
    outcome = run_train(zeroed, regulariser=NanOnFirstKernel())
    run_train(plain)
    assert_same_weights(saved_weights(zeroed), saved_weights(plain))  # only the regulariser part was dropped
    history = pd.read_csv(zeroed.run_dir / run_folder.HISTORY)
    assert outcome.epochs == 3 and len(history) == 3
    assert (history["reg_zeroed_nonfinite"] == 1.0).all() and (history["reg_applied"] == 0.0).all()
    assert "reg_constant_neurons" not in history  # a weight regulariser samples no neurons
    assert outcome.regulariser_activity["zeroed_nonfinite"] == outcome.regulariser_activity["steps"] == 27
    assert outcome.regulariser_activity["flagged"]
    failing = digits_spec(tmp_path / "f", regulariser="t1", weight=1.0)
    with pytest.raises(FloatingPointError, match=r"^epoch 1: the training loss's gradient for \S+/kernel became NaN "
                                                 r"\(regulariser t1, weight 1.0, learning rate 0.05\)$"):
        run_train(failing, regulariser=NanOnFirstKernel())


def test_epoch_batches_permute_each_epoch_by_seed_and_epoch():
    x = np.arange(10, dtype=np.float32)[:, None]
    y = np.arange(10, dtype=np.int32)
    for buffer in (None, 4):
        epochs = [np.concatenate([b[1].numpy() for b in epoch_batches(x, y, 3, 7, e, e + 1, buffer)])
                  for e in range(3)]
        assert all(sorted(e) == list(range(10)) for e in epochs)
        assert not np.array_equal(epochs[0], epochs[1])
        whole = np.concatenate([b[1].numpy() for b in epoch_batches(x, y, 3, 7, 0, 3, buffer)])
        np.testing.assert_array_equal(whole, np.concatenate(epochs))  # resuming at epoch e gives the same order
        assert [len(b[1]) for b in epoch_batches(x, y, 3, 7, 0, 1, buffer)] == [3, 3, 3, 1]
        other = np.concatenate([b[1].numpy() for b in epoch_batches(x, y, 3, 8, 0, 1, buffer)])
        assert not np.array_equal(other, epochs[0])


def test_exponential_decay_is_stepwise_in_optimizer_iterations():
    spec = Spec.from_dict({"network": "digits/0", "regulariser": "none",
                           "optimizer": {"schedule": "exponential_decay", "decay_steps": 10, "decay_rate": 0.5}})
    optimizer = make_optimizer(spec.optimizer)
    schedule = optimizer._learning_rate
    assert [float(schedule(s)) for s in (0, 9, 10, 25)] == pytest.approx([0.01, 0.01, 0.005, 0.0025])
    assert optimizer.nesterov and optimizer.momentum == 0.9


def test_validation_loss_per_example_or_mean_of_batch_means():
    network = get_network("digits/0").build_model()
    splits = get_network("digits/0").load_data()
    x, y = splits.x_val[:300], splits.y_val[:300]  # batches of 256 and 44
    per_example = keras.losses.sparse_categorical_crossentropy(y, network(x), from_logits=True).numpy()
    for batch_mean, expected in ((False, per_example.mean()),
                                 (True, (per_example[:256].mean() + per_example[256:].mean()) / 2)):
        model = RegularisedModel(network, registry.make("none"), 0.0, train_pass=True, zero_nonfinite=False,
                                 val_batch_mean=batch_mean)
        model.compile(optimizer="sgd")
        result = model.evaluate(x, y, batch_size=256, verbose=0, return_dict=True)
        assert result["loss"] == pytest.approx(expected, rel=1e-5)


def test_tensorboard_scalars_learning_rate_and_hparams_read_back_by_tensorboard(tmp_path):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    from tensorboard.plugins.hparams import plugin_data_pb2

    spec = digits_spec(tmp_path, max_epochs=2, regulariser="t2", weight=0.01, sampling=0.5, seed=3)
    result = run_train(spec)
    board = spec.run_dir / run_folder.TENSORBOARD
    files = list(board.rglob("events.out.tfevents*"))
    assert {f.parent.name for f in files} == {"tensorboard", "train", "validation"}

    train_events = event_accumulator.EventAccumulator(str(board / "train"), size_guidance={"tensors": 0})
    train_events.Reload()
    lr = train_events.Tensors("epoch_learning_rate")
    assert [e.step for e in lr] == [1, 2]
    assert [float(tf.make_ndarray(e.tensor_proto)) for e in lr] == pytest.approx([0.05, 0.05])
    assert {"epoch_loss", "epoch_ce", "epoch_reg", "epoch_accuracy"} <= set(train_events.Tags()["tensors"])

    session = event_accumulator.EventAccumulator(str(board))
    session.Reload()
    content = session.PluginTagToContent("hparams")
    data = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    values = {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind"))
              for k, v in data.session_start_info.hparams.items()}
    assert values == {"network": "digits/0", "regulariser": "t2", "weight": 0.01, "sampling": 0.5, "seed": 3.0,
                      "profile": "corrected"}
    assert data.session_start_info.group_name == spec.task_id

    # the dashboard's metrics: the kept weights' numbers (those of DONE.json), at the kept epoch, test accuracy too
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert [m.name.tag for m in experiment.metric_infos] == [f"kept/{name}" for name in callbacks.KEPT_METRICS]
    session = event_accumulator.EventAccumulator(str(board), size_guidance={"tensors": 0})
    session.Reload()
    for name in callbacks.KEPT_METRICS:
        [event] = session.Tensors(f"kept/{name}")
        assert event.step == result.kept_epoch
        assert float(tf.make_ndarray(event.tensor_proto)) == pytest.approx(getattr(result, name), rel=1e-6)
