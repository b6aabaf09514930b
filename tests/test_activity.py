"""Did the regulariser act? The per-step accounting in history.csv and DONE.json, and where it is shown."""
import dataclasses

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from model.analysis import accuracies
from model.analysis import activity_table as activity_report
from model.regularisers import registry as regularisers
from model.runs import execute, run_folder
from model.runs.spec import Spec
from model.runs.training import RegularisedModel
from model.zoo import digits
from model.zoo.catalogue import get_network


def with_a_dead_neuron(network):
    """digits/0 whose first hidden neuron has a zero kernel column and bias: ReLU(0) = 0 on every example, and its
    gradient is 0 too, so it stays constant through training."""
    def build():
        net = network.build_model()
        kernel, bias = net.layers[1].get_weights()
        kernel[:, 0], bias[0] = 0.0, 0.0
        net.layers[1].set_weights([kernel, bias])
        return net

    return dataclasses.replace(network, build_model=build)


def run_with_dead_neuron(tmp_path, profile):
    spec = Spec.from_dict({"network": "digits/0", "regulariser": "t1", "weight": 0.1, "batch_size": 256,
                           "max_epochs": 2, "profile": profile, "output_root": str(tmp_path / profile),
                           "optimizer": {"learning_rate": 0.05}})
    network = with_a_dead_neuron(get_network(spec.network))
    prepared = execute.Prepared(spec, network, network.load_data(),
                                regularisers.make("t1", **spec.regulariser_options))
    record, trained = execute.run(prepared)
    assert trained
    return spec, record, pd.read_csv(spec.run_dir / run_folder.HISTORY)


@pytest.mark.parametrize("profile", ["paper", "corrected"])
def test_a_constant_neuron_zeroes_the_paper_profiles_regulariser_and_not_the_corrected_one(tmp_path, profile):
    spec, record, history = run_with_dead_neuron(tmp_path, profile)
    activity = run_folder.read_done(spec.run_dir)["regulariser_activity"]
    assert activity == record["regulariser_activity"]
    steps = 2 * 5  # 1077 training examples in batches of 256, 2 epochs
    assert activity["steps"] == steps == record["iterations"]
    # the ratio: every step where the paper profile takes the gradients apart anyway, else every 10th (step 0)
    assert activity["grad_ratio_steps"] == (steps if profile == "paper" else 1)
    assert activity["grad_ratio_min"] <= activity["grad_ratio_median"] <= activity["grad_ratio_max"]
    if profile == "corrected":  # one measured step: its ratio is the mean, the median and the range
        assert activity["grad_ratio_min"] == activity["grad_ratio_max"] == pytest.approx(activity["mean_grad_ratio"])
    assert (history["reg_constant_neurons"] >= 1).all() and activity["mean_constant_neurons"] >= 1
    if profile == "paper":  # dead_neurons: zero_grad
        assert (history["reg_applied"] == 0.0).all() and (history["reg_zeroed_dead_neurons"] == 1.0).all()
        assert activity["applied"] == 0 and activity["zeroed_dead_neurons"] == steps
        assert activity["applied_fraction"] == 0.0 and activity["flagged"] and activity["mean_grad_ratio"] == 0.0
        assert activity["grad_ratio_max"] == 0.0 and activity["grad_ratio_under_1pct"] == 1.0
        assert record["warnings"] == [activity["warning"]] and "acted in 0 of 10 steps" in activity["warning"]
    else:
        assert (history["reg_applied"] == 1.0).all() and activity["applied"] == steps
        assert activity["applied_fraction"] == 1.0 and not activity["flagged"] and record["warnings"] == []
        assert activity["mean_grad_ratio"] > 0
    assert "reg_effective" not in history
    events = (spec.run_dir / run_folder.TENSORBOARD / "train").glob("events.out.tfevents*")
    tags = {v.tag for path in events for e in tf.compat.v1.train.summary_iterator(str(path)) for v in e.summary.value}
    assert {"epoch_reg_applied", "epoch_reg_zeroed_dead_neurons", "epoch_reg_constant_neurons"} <= tags

    frame = accuracies.collect(spec.output_root).frame
    assert frame["reg_applied_fraction"].tolist() == [activity["applied_fraction"]]
    for column, key in accuracies.ACTIVITY_FIELDS.items():  # how strongly, and the constant neurons, beside it
        assert frame[column].tolist() == [activity[key]], column
    section = activity_report.section(frame, {"digits/0": {"t1": {"weight": 0.1}}}, "digits")
    assert ("Selected cells under 50 %: digits/0 T1 (ω = 0.1, 0 %)" in section) == (profile == "paper")
    assert ("**0 %!**" in section) == (profile == "paper") and ("100 %*" in section) == (profile == "corrected")
    assert activity_report.flagged_cells(frame, {"digits/0": {"t1": {"weight": 0.1}}}) == (
        [("digits/0", "t1", 0.1, 0.0)] if profile == "paper" else [])


def duplicate_neuron_model(zero_length_bars):
    """A model whose first (frozen) layer has two identical neurons: on the batches below both output exactly
    (0, 2, 0, 2), so their correlation is exactly 1 and an MST death is exactly 0."""
    frozen = keras.layers.Dense(2, use_bias=False, trainable=False, kernel_initializer=keras.initializers.Constant(
        [[1.0, 1.0], [1.0, 1.0], [0.0, 0.0]]))
    glorot = keras.initializers.GlorotUniform
    net = keras.Sequential([keras.Input((3,)), frozen,
                            keras.layers.Dense(4, activation="relu", kernel_initializer=glorot(0)),
                            keras.layers.Dense(3, kernel_initializer=glorot(1))])
    reg = regularisers.make("t1", zero_length_bars=zero_length_bars)
    model = RegularisedModel(net, reg, 0.1, train_pass=True, zero_nonfinite=False, val_batch_mean=False)
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    return model


def test_the_zero_length_bar_policy_is_counted_as_such():
    rng = np.random.default_rng(0)
    x = np.array([[0, 0, 0], [1, 1, 0], [0, 0, 0], [1, 1, 0]] * 2, np.float32)
    x[:, 2] = rng.random(8)
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1], np.int32)
    zeroed = duplicate_neuron_model("zero_loss").fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    assert zeroed.history["reg_zeroed_zero_length_bars"] == [1.0, 1.0]
    assert zeroed.history["reg_applied"] == [0.0, 0.0] and zeroed.history["reg_grad_ratio"][0] == 0.0
    kept = duplicate_neuron_model("keep").fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    assert kept.history["reg_applied"] == [1.0, 1.0] and kept.history["reg_zeroed_zero_length_bars"] == [0.0, 0.0]


def test_a_batch_of_one_is_counted_as_skipped():
    net = digits.build_mlp((8, 6), dropout=False)
    model = RegularisedModel(net, regularisers.make("corr"), 1.0, train_pass=True, zero_nonfinite=False,
                             val_batch_mean=False)
    model.compile(optimizer="sgd")
    x, y = np.random.default_rng(0).random((5, 8, 8, 1), np.float32), np.zeros(5, np.int32)
    history = model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0).history  # batches of 4 and 1
    assert history["reg_skipped_small_batch"] == [0.5] and history["reg_applied"] == [0.5]
    totals = dict(zip(("applied", "dead", "bars", "nonfinite", "skipped"), model.activity.totals.numpy()[:5]))
    assert totals == {"applied": 1.0, "dead": 0.0, "bars": 0.0, "nonfinite": 0.0, "skipped": 1.0}


def test_the_gradient_ratio_is_the_ratio_of_global_norms():
    net = digits.build_mlp((8, 6), dropout=False)
    model = RegularisedModel(net, regularisers.make("l2"), 0.5, train_pass=True, zero_nonfinite=False,
                             val_batch_mean=False)
    model.compile(optimizer=keras.optimizers.SGD(0.0))  # lr 0: the weights stay those of the hand computation
    x, y = np.random.default_rng(1).random((6, 8, 8, 1), np.float32), np.arange(6, dtype=np.int32)
    with tf.GradientTape(persistent=True) as tape:
        ce = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, net(x), from_logits=True))
        reg = 0.5 * tf.add_n([tf.reduce_sum(tf.square(w)) for w in net.trainable_variables])
    expected = float(tf.linalg.global_norm(tape.gradient(reg, net.trainable_variables))
                     / tf.linalg.global_norm(tape.gradient(ce, net.trainable_variables)))
    history = model.fit(x, y, batch_size=6, epochs=1, shuffle=False, verbose=0).history
    assert history["reg_grad_ratio"][0] == pytest.approx(expected, rel=1e-5)
    assert "reg_constant_neurons" not in history and history["reg_applied"] == [1.0]


def strength_frame():
    """Hand-made accuracies rows for digits/0: the baseline (2 seeds, no activity record, as ω = 0 runs are), and
    T1 at three weights (2 seeds): 1e-5 acts negligibly, 0.01 acts, 0.1 acts and holds 2.5× the constant neurons of
    the lowest weight; T2 at 0.01 never acts; C at 0.01 was recorded before the ratio's median (mean only)."""
    cols = ["network", "regulariser", "weight", "seed", "test_accuracy", "reg_applied_fraction",
            "reg_grad_ratio_median", "reg_grad_ratio_min", "reg_grad_ratio_max", "reg_grad_ratio_under_1pct",
            "reg_grad_ratio_mean", "reg_constant_neurons"]
    rows = []
    for seed in (0, 1):
        rows += [("digits/0", "none", 0.0, seed, 0.96, None, None, None, None, None, None, None),
                 ("digits/0", "t1", 1e-05, seed, 0.96, 1.0, 0.001 + seed * 0.001, 0.0, 0.02 + seed, 0.9, 0.002, 17.0),
                 ("digits/0", "t1", 0.01, seed, 0.95, 1.0, 0.3, 0.01, 2.0, 0.1, 0.4, 20.0 + seed),
                 ("digits/0", "t1", 0.1, seed, 0.50, 1.0, 1.5, 0.2, 9.0, 0.0, 2.0, 42.0 + seed),
                 ("digits/0", "t2", 0.01, seed, 0.96, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 17.0),
                 ("digits/0", "corr", 0.01, seed, 0.96, 1.0, None, None, None, None, 0.005, 16.0)]
    return pd.DataFrame(rows, columns=cols)


def test_how_strongly_it_acted_and_what_it_did_to_the_neurons_per_cell():
    cells = activity_report.cell_activity(strength_frame()).set_index(["regulariser", "weight"])
    weak, fine, killer = cells.loc[("t1", 1e-05)], cells.loc[("t1", 0.01)], cells.loc[("t1", 0.1)]
    assert (weak["ratio_median"], weak["ratio_min"], weak["ratio_max"]) == (pytest.approx(0.0015), 0.0, 1.02)
    assert weak["negligible"] and not fine["negligible"] and not killer["negligible"]
    assert not cells.loc[("t2", 0.01), "negligible"] and cells.loc[("t2", 0.01), "inactive"]  # inactive is stronger
    older = cells.loc[("corr", 0.01)]  # recorded before the median: the mean decides, no range
    assert older["ratio_from"] == "mean" and older["negligible"] and np.isnan(older["ratio_min"])
    # the baseline records no constant neurons: each regulariser's lowest weight is the reference
    assert killer["reference_kind"] == "lowest ω" and killer["constant_reference"] == 17.0 and killer["killing"]
    assert not fine["killing"] and pd.isna(weak["reference_kind"]) and not weak["killing"]
    # with a baseline that records them, the baseline is the reference
    frame = strength_frame()
    frame.loc[frame["regulariser"] == "none", "reg_constant_neurons"] = 21.0
    cells = activity_report.cell_activity(frame).set_index(["regulariser", "weight"])
    assert cells.loc[("t1", 0.1), "reference_kind"] == "baseline" and cells.loc[("t1", 0.1), "killing"]
    assert not cells.loc[("t1", 1e-05), "killing"]


def test_each_flag_reaches_the_reports_top_lines_and_its_section():
    frame = strength_frame()
    selected = {"digits/0": {"t1": {"weight": 1e-05}, "t2": {"weight": 0.01}, "corr": {"weight": 0.01}}}
    assert activity_report.negligible_cells(frame, selected) == [("digits/0", "t1", 1e-05, pytest.approx(0.0015)),
                                                                  ("digits/0", "corr", 0.01, 0.005)]
    lines = activity_report.top_line(frame, {"a": selected, "b": {"digits/0": {"t1": {"weight": 0.1}}}})
    text = "\n".join(lines)
    assert "acted in fewer than 50 % of the training steps** (digits/0 T2 (ω = 0.01: 0 %))" in text
    assert "the regulariser's effect was negligible**" in text and "digits/0 T1 (ω = 1e-05: median 0.0015)" in text
    assert ("the regulariser is killing neurons**: constant neurons per batch ≥ 2× the reference's (digits/0 T1 "
            "(ω = 0.1: 42.5 against 17.0, lowest ω))") in text
    section = activity_report.section(frame, selected, "digits")
    assert "**0.0015 [0, 1] negligible***" in section and "0.005 (mean)" in section
    assert "**42.5 (2.5×) killing**" in section and "lowest ω" in section
    assert "Selected cells negligible: digits/0 T1 (ω = 1e-05, median 0.0015)" in section
    healthy = {"digits/0": {"t1": {"weight": 0.01}}}
    assert activity_report.top_line(frame, {"a": healthy}) == []
