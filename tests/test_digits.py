"""The embedded digits zoo: a fixed stratified split and MLPs whose initial weights the zoo fixes."""
import numpy as np
import pytest

from model.errors import SpecError
from model.runs.training import neuron_layers, uses_train_pass
from model.zoo import digits
from model.zoo.catalogue import get_network


def test_split_is_fixed_stratified_and_disjoint():
    a, b = digits.load_splits(), digits.load_splits()
    assert (len(a.y_train), len(a.y_val), len(a.y_test)) == (1077, 360, 360)
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.x_train.dtype == np.float32 and a.x_train.shape[1:] == (8, 8, 1) and a.y_train.dtype == np.int32
    assert 0.0 <= a.x_train.min() and a.x_train.max() <= 1.0
    for y in (a.y_train, a.y_val, a.y_test):  # stratified: every class in proportion
        counts = np.bincount(y, minlength=10) / len(y)
        assert np.all(np.abs(counts - 0.1) < 0.02)
    rows = {x.tobytes() for x in a.x_train}
    assert sum(x.tobytes() in rows for x in a.x_test) <= 2  # digits has a few duplicate images, no shared rows


def test_initial_weights_fixed_by_the_zoo_and_shared_by_network_1():
    zero, one, two = (get_network(f"digits/{i}") for i in range(3))
    m0, m0_again, m1 = zero.build_model(), zero.build_model(), one.build_model()
    for a, b, c in zip(m0.get_weights(), m0_again.get_weights(), m1.get_weights()):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    m2 = two.build_model()
    assert [layer.units for layer in neuron_layers(m2)] == [48, 40, 32, 24, 16, 10]
    assert [layer.units for layer in neuron_layers(m0)] == [64, 48, 32, 10]
    assert m0(digits.load_splits().x_val[:5]).shape == (5, 10)
    assert uses_train_pass(m0, "auto") and not uses_train_pass(m1, "auto") and not uses_train_pass(m0, "inference")
    assert zero.block == "digits" and zero.name == "digits/0"


def test_unknown_network_id_is_a_spec_error():
    with pytest.raises(SpecError, match="'digits/7': unknown id; expected one of 0, 1, 2"):
        get_network("digits/7")
