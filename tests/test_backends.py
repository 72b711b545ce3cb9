"""--backend numba against --backend numpy: the same run, number for number, on real MNIST.

fastnn.training draws the weights, the dev split and every epoch's order in Python for both
backends, so with one seed the two step through the same samples in the same order and must agree
to rounding: float64 losses to 1e-10 relative and final weights to 1e-9 after 3 epochs.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from compare import assert_close
from data_helpers import mnist_dir

from fastnn.data import load_mnist_dir
from fastnn.training import TrainConfig, predict_outputs, to_inputs, train

N_IMAGES = 2000
BASE = TrainConfig(hidden=(17,), epochs=3, batch_size=100, dev_size=500, dtype="float64", seed=7)

# A learning rate that moves each optimizer a useful distance in 3 epochs without diverging.
LEARNING_RATES = {"sgd": 0.2, "momentum": 0.05, "adam": 0.002}
FULL_BATCH_LEARNING_RATES = {"sgd": 1.0, "momentum": 0.5, "adam": 0.02}

LOSS_RTOL, WEIGHTS_RTOL, WEIGHTS_ATOL = 1e-10, 1e-9, 1e-12
# float32: the kernels do the optimizer's scalar arithmetic in float64 and round once, NumPy
# rounds at each float32 operation (and sums dot products in another order). After 45 steps,
# measured: at most 2.4e-7 relative on the epoch losses, 1.8e-7 absolute on weights of size up
# to 1.2. Gates: the house 1e-5 relative for the loss, 2e-6 absolute (10x) for the weights.
FLOAT32_LOSS_RTOL, FLOAT32_WEIGHTS_ATOL = 1e-5, 2e-6


@pytest.fixture(scope="module")
def mnist_subset() -> tuple[np.ndarray, np.ndarray]:
    dataset = load_mnist_dir(mnist_dir())
    return dataset.train_images[:N_IMAGES], dataset.train_labels[:N_IMAGES]


def run(config: TrainConfig, data, **changes):
    return train(dataclasses.replace(config, **changes), *data)


def assert_backends_agree(
    config, data, *, loss_rtol, weights_rtol, weights_atol, min_dev_accuracy=0.5
):
    numba_result = run(config, data, backend="numba")
    numpy_result = run(config, data, backend="numpy")
    numba_history, numpy_history = numba_result.history, numpy_result.history
    assert len(numba_history) == len(numpy_history) == config.epochs
    assert_close(
        np.array([record.loss for record in numba_history]),
        np.array([record.loss for record in numpy_history]),
        rtol=loss_rtol,
        what="loss of each epoch",
    )
    for numba_record, numpy_record in zip(numba_history, numpy_history, strict=True):
        # Accuracies count argmax hits: the same outputs up to rounding pick the same classes.
        assert numba_record.train_accuracy == numpy_record.train_accuracy, numba_record
        assert numba_record.dev_accuracy == numpy_record.dev_accuracy, numba_record
    assert_close(
        numba_result.network.theta,
        numpy_result.network.theta,
        rtol=weights_rtol,
        atol=weights_atol,
        what="final θ",
    )
    # Training actually happened: the loss fell and the network beats chance on held-out digits.
    assert numba_history[-1].loss < numba_history[0].loss
    assert numba_history[-1].dev_accuracy > min_dev_accuracy


FLOAT64 = {"loss_rtol": LOSS_RTOL, "weights_rtol": WEIGHTS_RTOL, "weights_atol": WEIGHTS_ATOL}


@pytest.mark.parametrize("batch_size", [100, None], ids=["batch100", "full-batch"])
@pytest.mark.parametrize("optimizer", LEARNING_RATES)
def test_numba_and_numpy_backends_agree_float64(mnist_subset, optimizer, batch_size):
    if batch_size is None:
        # Full batch: 3 epochs are 3 steps, so a larger step, and a gate only above chance.
        config = dataclasses.replace(
            BASE, optimizer=optimizer, lr=FULL_BATCH_LEARNING_RATES[optimizer], batch_size=None
        )
        assert_backends_agree(config, mnist_subset, **FLOAT64, min_dev_accuracy=0.2)
    else:
        config = dataclasses.replace(BASE, optimizer=optimizer, lr=LEARNING_RATES[optimizer])
        assert_backends_agree(config, mnist_subset, **FLOAT64)


VARIANTS = [
    # Sigmoid + squared error learns slowly: 3 epochs reach ~58% dev accuracy, so gate at 30%.
    pytest.param(
        {"activation": "sigmoid", "loss": "mse", "l2": 1e-3, "hidden": (13,), "lr": 0.01},
        0.3,
        id="sigmoid-mse-l2",
    ),
    pytest.param(
        {"activation": "tanh", "l2": 1e-4, "hidden": (13, 7), "optimizer": "momentum", "lr": 0.05},
        0.5,
        id="tanh-ce-l2-two-hidden",
    ),
]


@pytest.mark.parametrize(("changes", "min_dev_accuracy"), VARIANTS)
def test_backends_agree_on_other_activations_losses_and_depths(
    mnist_subset, changes, min_dev_accuracy
):
    config = dataclasses.replace(BASE, **changes)
    assert_backends_agree(config, mnist_subset, **FLOAT64, min_dev_accuracy=min_dev_accuracy)


@pytest.mark.parametrize("optimizer", LEARNING_RATES)
def test_numba_and_numpy_backends_agree_float32(mnist_subset, optimizer):
    config = dataclasses.replace(
        BASE, optimizer=optimizer, lr=LEARNING_RATES[optimizer], dtype="float32"
    )
    assert_backends_agree(
        config,
        mnist_subset,
        loss_rtol=FLOAT32_LOSS_RTOL,
        weights_rtol=0.0,
        weights_atol=FLOAT32_WEIGHTS_ATOL,
    )


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_same_seed_gives_identical_weights(mnist_subset, backend):
    config = dataclasses.replace(BASE, backend=backend, epochs=2)
    first, second = run(config, mnist_subset), run(config, mnist_subset)
    assert first.network.theta.dtype == np.float64
    assert np.array_equal(first.network.theta, second.network.theta)
    assert [r.loss for r in first.history] == [r.loss for r in second.history]


def test_different_seeds_give_different_weights(mnist_subset):
    config = dataclasses.replace(BASE, epochs=1)
    first, second = run(config, mnist_subset, seed=1), run(config, mnist_subset, seed=2)
    assert first.network.theta.shape == second.network.theta.shape
    assert not np.array_equal(first.network.theta, second.network.theta)
    assert np.max(np.abs(first.network.theta - second.network.theta)) > 1e-2


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_predicting_bytes_equals_predicting_their_floats(mnist_subset, dtype):
    """predict_outputs hands uint8 pixels to the numba kernels as they are (they scale them as
    they read them): the outputs are those of the floats to_inputs makes, bit for bit, and the
    oracle's agree with them (it scales its chunks of rows itself)."""
    images, labels = mnist_subset
    config = dataclasses.replace(BASE, hidden=(17, 9), epochs=1, dtype=dtype)
    net = run(config, (images, labels)).network
    rows = images[-1203:]  # more rows than the oracle's chunks of PREDICT_CHUNK
    from_bytes = predict_outputs(net, rows, "numba")
    assert np.array_equal(from_bytes, predict_outputs(net, to_inputs(rows, dtype), "numba"))
    rtol = 1e-12 if dtype == "float64" else 1e-5
    oracle = predict_outputs(net, rows, "numpy")
    assert_close(from_bytes, oracle, rtol=rtol, atol=rtol, what="A[L]")
