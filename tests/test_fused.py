"""kernels/fused.py, the path training runs for one hidden layer, against the per-equation path
and the NumPy oracle; and its promise that the thread count changes no bit of the result."""

from __future__ import annotations

import itertools

import numba
import numpy as np
import pytest
from compare import assert_close

from fastnn import oracle
from fastnn.kernels import fused, network
from fastnn.kernels.network import (
    ADAM,
    CROSS_ENTROPY,
    MOMENTUM,
    RELU,
    SGD,
    SIGMOID,
    SQUARED_ERROR,
    TANH,
)
from fastnn.model import init_network

HIDDEN = {"relu": RELU, "sigmoid": SIGMOID, "tanh": TANH}
LOSSES = {"cross-entropy": CROSS_ENTROPY, "mse": SQUARED_ERROR}
OPTIMIZERS = {"sgd": SGD, "momentum": MOMENTUM, "adam": ADAM}
N_IN, N_SAMPLES = 29, 203  # odd sizes: every 4-sample and 4-unit loop has a remainder


def epoch(implementation, net, X, labels, order, optimizer, batch_size, weight_decay, step=0):
    theta = net.theta.copy()
    state1, state2 = np.zeros_like(theta), np.zeros_like(theta)
    returned = implementation.train_epoch(
        theta, state1, state2, X, labels, order, net.layer_sizes,
        HIDDEN[net.activation], LOSSES[net.loss], OPTIMIZERS[optimizer],
        0.05, weight_decay, 0.9, 0.999, 1e-8, step, batch_size,
    )  # fmt: skip
    return returned, (theta, state1, state2)


def problem(hidden_units, activation, loss, dtype, seed=0):
    rng = np.random.default_rng(seed)
    net = init_network((N_IN, hidden_units, 10), activation, loss, None, np.dtype(dtype).name, rng)
    # Pixels are ≥ 0 and often exactly 0, as in MNIST.
    X = np.maximum(rng.uniform(-0.5, 1, (N_SAMPLES, N_IN)), 0).astype(dtype)
    labels = rng.integers(0, 10, N_SAMPLES)
    return net, X, labels, rng.permutation(N_SAMPLES)


CASES = list(
    itertools.product(
        [3, 12],  # hidden units: fewer than one 5-unit block; two blocks and two units more
        HIDDEN,
        LOSSES,
        OPTIMIZERS,
    )
)


@pytest.mark.parametrize("batch_size", [1, 7, N_SAMPLES])
@pytest.mark.parametrize(("hidden_units", "activation", "loss", "optimizer"), CASES)
def test_fused_epoch_matches_the_per_equation_path(
    hidden_units, activation, loss, optimizer, batch_size
):
    net, X, labels, order = problem(hidden_units, activation, loss, np.float64)
    weight_decay = 0.01 if optimizer == "momentum" else 0.0
    args = (net, X, labels, order, optimizer, batch_size, weight_decay, 3)
    (total, correct, steps), state = epoch(fused, *args)
    (expected_total, expected_correct, expected_steps), expected = epoch(network, *args)
    assert (correct, steps) == (expected_correct, expected_steps)
    assert_close(np.float64(total), np.float64(expected_total), rtol=1e-10, what="Σ m·J")
    for what, got, want in zip(("θ", "state1", "state2"), state, expected, strict=True):
        assert_close(got, want, rtol=1e-9, atol=1e-12, what=what)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_size", [100, N_SAMPLES])
def test_fused_epoch_matches_the_oracle(dtype, batch_size):
    net, X, labels, order = problem(10, "relu", "cross-entropy", dtype)
    (total, correct, _), (theta, _, _) = epoch(fused, net, X, labels, order, "sgd", batch_size, 0)
    (expected_total, expected_correct, _), (expected, _, _) = epoch(
        oracle, net, X, labels, order, "sgd", batch_size, 0
    )
    assert correct == expected_correct
    rtol, atol = (1e-10, 1e-13) if dtype == np.float64 else (1e-5, 1e-6)
    assert_close(np.float64(total), np.float64(expected_total), rtol=rtol, what="Σ m·J")
    assert_close(theta, expected, rtol=rtol, atol=atol, what="θ")


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="without the JIT there are no threads")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_size", [100, 1000])
def test_fused_epoch_is_bit_identical_for_any_thread_count(dtype, batch_size):
    """Chunks are fixed by the batch size, never by the threads, and summed in chunk order."""
    rng = np.random.default_rng(1)
    net = init_network((N_IN, 33, 10), "relu", "cross-entropy", None, "float64", rng)
    net.theta = net.theta.astype(dtype)
    X = rng.uniform(0, 1, (2000, N_IN)).astype(dtype)
    labels, order = rng.integers(0, 10, 2000), rng.permutation(2000)
    results = []
    before = numba.get_num_threads()
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS, 1):
            numba.set_num_threads(threads)
            results.append(epoch(fused, net, X, labels, order, "adam", batch_size, 0.001))
    finally:
        numba.set_num_threads(before)
    (first, first_state), *others = results
    for returned, state in others:
        assert returned == first
        for got, want in zip(state, first_state, strict=True):
            assert np.array_equal(got, want)


@pytest.mark.parametrize("m", [1, 3, 4, 47, 48, 100, 383, 60000])
def test_chunks_cover_the_batch_once_at_multiples_of_four(m):
    chunks = fused.chunk_count(m)
    assert 1 <= chunks <= fused.MAX_CHUNKS
    bounds = [fused.chunk_bounds(m, chunks, c) for c in range(chunks)]
    assert bounds[0][0] == 0 and bounds[-1][1] == m
    for (first, last), (next_first, _) in itertools.pairwise(bounds):
        assert last == next_first and first % 4 == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", list(HIDDEN))
@pytest.mark.parametrize("loss", list(LOSSES))
def test_fused_predict_matches_the_oracle(dtype, activation, loss):
    net, X, _, _ = problem(9, activation, loss, dtype)
    outputs = np.full((N_SAMPLES, 10), np.nan, dtype)
    expected = np.full((N_SAMPLES, 10), np.nan, dtype)
    arguments = (net.theta, X, net.layer_sizes, HIDDEN[activation], LOSSES[loss], 1000)
    fused.predict(outputs, *arguments)
    oracle.predict(expected, *arguments)
    rtol, atol = (1e-10, 1e-15) if dtype == np.float64 else (1e-5, 1e-7)
    assert_close(outputs, expected, rtol=rtol, atol=atol, what="A2")
