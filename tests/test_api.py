"""The Python API: fastnn.load_mnist, train, load and Model.

What it learns is checked on the real MNIST (the default network's accuracy, and the same
weights as `python -m fastnn.train`, bit for bit); the rest on small data made here, with any
number of features and any integer labels; bad input must raise a ValueError naming the problem.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from cli_helpers import SUBPROCESS_TIMEOUT, TRAIN, real_mnist
from data_helpers import mnist_dir

import fastnn
from fastnn import oracle
from fastnn.model import MODEL_FORMAT_VERSION, model_arrays

# ---- on the real MNIST -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_model() -> fastnn.Model:
    """The default network, every setting as its default, on the whole training set."""
    X, y, _, _ = fastnn.load_mnist(mnist_dir())
    return fastnn.train(X, y, threads=1)


def test_load_mnist_returns_the_four_arrays() -> None:
    X, y, X_test, y_test = fastnn.load_mnist(mnist_dir())
    assert (X.shape, X.dtype, y.shape) == ((60000, 784), np.uint8, (60000,))
    assert (X_test.shape, y_test.shape) == ((10000, 784), (10000,))
    assert set(np.unique(y)) == set(range(10))


def test_load_mnist_finds_fastnn_data(monkeypatch) -> None:
    monkeypatch.setenv("FASTNN_DATA", str(mnist_dir()))
    _, y, _, _ = fastnn.load_mnist()
    np.testing.assert_array_equal(y, real_mnist().train_labels)


def test_default_network_reaches_93_5_percent(default_model) -> None:
    mnist = real_mnist()
    assert default_model.sizes == (784, 10, 10)
    assert len(default_model.history) == 40
    assert default_model.score(mnist.test_images, mnist.test_labels) >= 0.935


def test_same_weights_as_the_command_line_bit_for_bit(default_model, tmp_path) -> None:
    saved = tmp_path / "cli.npz"
    env = {**os.environ, "FASTNN_DATA": str(mnist_dir()), "NUMBA_NUM_THREADS": "2"}
    done = subprocess.run(
        [sys.executable, "-m", TRAIN, "--save", str(saved)],
        capture_output=True, text=True, env=env, timeout=SUBPROCESS_TIMEOUT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    from_cli = fastnn.load(saved)
    for (W, b), (W_cli, b_cli) in zip(default_model.weights, from_cli.weights, strict=True):
        np.testing.assert_array_equal(W, W_cli)
        np.testing.assert_array_equal(b, b_cli)
    # the epoch table printed by the command is the history the API records
    for record in default_model.history[:3]:
        assert f"{record.epoch:5d}  {record.loss:9.4f}" in done.stdout


def test_floats_are_used_as_given_and_uint8_is_scaled() -> None:
    mnist = real_mnist()
    X, y = mnist.train_images[:1200], mnist.train_labels[:1200]
    settings = {"epochs": 2, "dev_size": 200, "threads": 1}
    from_bytes = fastnn.train(X, y, **settings)
    from_floats = fastnn.train(X.astype(np.float32) / np.float32(255), y, **settings)
    np.testing.assert_array_equal(from_bytes.network.theta, from_floats.network.theta)
    unscaled = fastnn.train(X.astype(np.float32), y, **settings)
    assert not np.array_equal(unscaled.network.theta, from_bytes.network.theta)


# ---- small data made here: any features, any labels ------------------------------------------


def blobs(n: int = 600, features: int = 5, labels=(-3, 7, 42), seed: int = 1):
    """Gaussian clusters, one per label, far enough apart that a network separates them."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 3.0, size=(len(labels), features))
    y = rng.choice(np.array(labels), size=n)
    X = centres[np.searchsorted(np.sort(labels), y)] + rng.normal(0.0, 0.5, size=(n, features))
    return X, y


@pytest.fixture(scope="module")
def small_model() -> fastnn.Model:
    X, y = blobs()
    return fastnn.train(X, y, hidden=(8, 6), epochs=30, dev_size=100, batch_size=50, threads=1)


def test_any_features_and_any_integer_labels(small_model, tmp_path) -> None:
    X, y = blobs(seed=1)
    assert small_model.sizes == (5, 8, 6, 3)
    np.testing.assert_array_equal(small_model.classes, [-3, 7, 42])
    assert set(small_model.predict(X)) <= {-3, 7, 42}
    assert small_model.score(X, y) > 0.95
    small_model.save(tmp_path / "m.npz")
    again = fastnn.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(again.predict(X), small_model.predict(X))
    np.testing.assert_array_equal(again.classes, [-3, 7, 42])


def test_weights_are_read_only_views_named_as_in_the_math(small_model) -> None:
    W1, b1, W3 = small_model.W1, small_model.b1, small_model.W3
    assert (W1.shape, b1.shape, W3.shape) == ((8, 5), (8,), (3, 6))
    assert np.shares_memory(W1, small_model.network.theta), "no copy"
    with pytest.raises(ValueError, match="read-only"):
        W1[0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        small_model.classes[0] = 0
    with pytest.raises(AttributeError):
        _ = small_model.W4
    assert {"W1", "b1", "W3", "b3"} <= set(dir(small_model))
    assert [W.shape for W, _ in small_model.weights] == [(8, 5), (6, 8), (3, 6)]


def test_forward_returns_every_intermediate_as_the_oracle_computes_it(small_model) -> None:
    X, _ = blobs(n=7, seed=2)
    values = small_model.forward(X)
    assert list(values) == ["A0", "Z1", "A1", "Z2", "A2", "Z3", "A3"]
    A = X.T.astype(np.float32)
    np.testing.assert_array_equal(values["A0"], A)
    for l, (W, b) in enumerate(small_model.weights, start=1):
        Z = oracle.dense_forward(W.astype(np.float64), A.astype(np.float64), b)
        np.testing.assert_allclose(values[f"Z{l}"], Z, rtol=1e-5, atol=1e-5)
        A = oracle.relu_forward(Z) if l < 3 else oracle.softmax_forward(Z)
        np.testing.assert_allclose(values[f"A{l}"], A, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(values["A3"].T, small_model.predict_proba(X), atol=1e-6)


def test_predict_proba_rows_sum_to_one_for_both_losses() -> None:
    X, y = blobs(n=300)
    for loss in ("cross-entropy", "mse"):
        model = fastnn.train(X, y, loss=loss, epochs=3, dev_size=0, batch_size=30, threads=1)
        probabilities = model.predict_proba(X)
        assert probabilities.shape == (300, 3)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_callback_and_verbose_follow_each_epoch(capsys) -> None:
    X, y = blobs(n=300)
    seen = []
    model = fastnn.train(
        X, y, epochs=4, dev_size=50, batch_size=25, callback=seen.append, verbose=True
    )
    assert [record.epoch for record in seen] == [1, 2, 3, 4]
    assert seen == model.history
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["epoch", "loss", "train", "acc", "dev", "acc", "seconds"]
    assert len(out.splitlines()) == 5


def test_patience_keeps_the_best_dev_epoch() -> None:
    X, y = blobs(n=400)
    model = fastnn.train(X, y, epochs=30, patience=2, dev_size=100, batch_size=50, lr=0.05)
    best = max(record.dev_accuracy for record in model.history)
    assert model.history[model.best_epoch - 1].dev_accuracy == best


def test_threads_setting_is_restored() -> None:
    import numba

    before = numba.get_num_threads()
    X, y = blobs(n=200)
    fastnn.train(X, y, epochs=1, dev_size=0, batch_size=20, threads=1)
    assert numba.get_num_threads() == before


def test_version_1_model_files_still_load(small_model, tmp_path) -> None:
    arrays = model_arrays(small_model.network)
    arrays["format_version"] = np.array(1)
    del arrays["classes"]
    np.savez(tmp_path / "old.npz", **arrays)
    old = fastnn.load(tmp_path / "old.npz")
    np.testing.assert_array_equal(old.classes, [0, 1, 2])
    assert MODEL_FORMAT_VERSION == 2


def test_fastnn_train_is_callable_after_the_command_module_is_imported() -> None:
    import fastnn.train  # binds the module over the function on the package

    X, y = blobs(n=200)
    model = fastnn.train(X, y, epochs=1, dev_size=0, batch_size=20, threads=1)
    assert isinstance(model, fastnn.Model)
    assert callable(fastnn.train.main)


def test_help_is_an_overview() -> None:
    text = fastnn.__doc__
    for name in ("load_mnist", "train", "load", "Model", "forward", "W1", "sklearn"):
        assert name in text
    for function in (fastnn.load_mnist, fastnn.load, fastnn.Model.predict, fastnn.Model.forward):
        assert function.__doc__


# ---- bad input: a ValueError naming the problem, never a crash in a kernel -------------------

X_OK, Y_OK = blobs(n=200)

BAD_TRAINING = {
    "1-D X": ((X_OK[:, 0], Y_OK), {}, "2-D"),
    "3-D X": ((X_OK.reshape(200, 5, 1), Y_OK), {}, "2-D"),
    "NaN": ((np.where(np.eye(200, 5) > 0, np.nan, X_OK), Y_OK), {}, "NaN"),
    "infinity": ((np.full((200, 5), np.inf), Y_OK), {}, "infinity"),
    "text X": ((np.full((200, 5), "a"), Y_OK), {}, "numbers"),
    "y too short": ((X_OK, Y_OK[:-1]), {}, "one label per sample"),
    "fractional labels": ((X_OK, Y_OK + 0.5), {}, "whole numbers"),
    "text labels": ((X_OK, Y_OK.astype(str)), {}, "whole numbers"),
    "one class": ((X_OK, np.zeros(200, int)), {}, "two distinct classes"),
    "dev set too large": ((X_OK, Y_OK), {"dev_size": 5000}, "dev_size"),
    "batch too large": ((X_OK, Y_OK), {"dev_size": 100, "batch_size": 150}, "batch_size"),
    "no features": ((np.empty((200, 0)), Y_OK), {"dev_size": 10}, "no features"),
    "unknown activation": ((X_OK, Y_OK), {"activation": "gelu"}, "activation"),
    "negative lr": ((X_OK, Y_OK), {"lr": -1.0}, "lr"),
    "zero epochs": ((X_OK, Y_OK), {"epochs": 0}, "epochs"),
    "zero width": ((X_OK, Y_OK), {"hidden": (10, 0)}, "hidden"),
    "too many threads": ((X_OK, Y_OK), {"threads": 10_000}, "threads"),
    "patience without dev": ((X_OK, Y_OK), {"patience": 2, "dev_size": 0}, "dev_size"),
}


@pytest.mark.parametrize("args, settings, named", BAD_TRAINING.values(), ids=BAD_TRAINING)
def test_bad_training_input_is_a_value_error(args, settings, named) -> None:
    with pytest.raises(ValueError, match=named) as raised:
        fastnn.train(*args, **{"dev_size": 50, **settings})
    assert isinstance(raised.value, fastnn.FastnnError)


def test_predicting_other_data_is_a_value_error(small_model) -> None:
    with pytest.raises(ValueError, match="5"):
        small_model.predict(np.zeros((3, 784)))
    with pytest.raises(ValueError, match="NaN"):
        small_model.predict_proba(np.full((3, 5), np.nan))
    with pytest.raises(ValueError, match="2-D"):
        small_model.forward(np.zeros(5))
    with pytest.raises(ValueError, match="one label per sample"):
        small_model.score(np.zeros((3, 5)), [1, 2])
    assert small_model.predict(np.zeros((0, 5))).shape == (0,)


def test_diverging_training_raises_training_diverged() -> None:
    X, y = blobs(n=200)
    with pytest.raises(fastnn.TrainingDiverged, match="diverged"):
        fastnn.train(X * 1e6, y, optimizer="sgd", lr=1e6, epochs=3, dev_size=0, batch_size=200)
