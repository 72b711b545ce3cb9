"""The tiled path training runs (kernels/tile_math.py, tile_threads.py, tile_plumbing.py), for
one, two and three hidden layers: each tile kernel against the per-equation kernel it says it
equals, the whole epoch against the per-equation path and the NumPy oracle, uint8 pixels against
the floats they stand for, and the promise that the thread count changes no bit of the result."""

from __future__ import annotations

import itertools

import numba
import numpy as np
import pytest
from compare import assert_close

from fastnn import oracle
from fastnn.kernels import (
    activations,
    dense,
    network,
    output,
    tile_math,
    tile_plumbing,
    tile_sparse,
    tile_threads,
)
from fastnn.kernels.codes import (
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
N_IN, N_SAMPLES = 29, 203  # odd sizes: every 4-sample and 5-unit loop has a remainder
# Hidden layers: fewer units than one 5-unit tile; a 10-unit block and two units more; two and
# three hidden layers whose widths leave remainders everywhere.
DEPTHS = {"3": (3,), "12": (12,), "13-7": (13, 7), "12-9-11": (12, 9, 11)}


def epoch(implementation, net, X, labels, order, optimizer, batch_size, weight_decay, step=0):
    theta = net.theta.copy()
    state1, state2 = np.zeros_like(theta), np.zeros_like(theta)
    returned = implementation.train_epoch(
        theta, state1, state2, X, labels, order, net.layer_sizes,
        HIDDEN[net.activation], LOSSES[net.loss], OPTIMIZERS[optimizer],
        0.05, weight_decay, 0.9, 0.999, 1e-8, step, batch_size,
    )  # fmt: skip
    return returned, (theta, state1, state2)


def problem(hidden, activation, loss, dtype, seed=0, n_samples=N_SAMPLES):
    rng = np.random.default_rng(seed)
    sizes = (N_IN, *hidden, 10)
    net = init_network(sizes, activation, loss, None, np.dtype(dtype).name, rng)
    # Pixels are ≥ 0 and often exactly 0, as in MNIST.
    X = np.maximum(rng.uniform(-0.5, 1, (n_samples, N_IN)), 0).astype(dtype)
    labels = rng.integers(0, 10, n_samples)
    return net, X, labels, rng.permutation(n_samples)


def assert_same_epoch(got, expected, rtol, atol):
    (total, correct, steps), state = got
    (expected_total, expected_correct, expected_steps), expected_state = expected
    assert (correct, steps) == (expected_correct, expected_steps)
    assert_close(np.float64(total), np.float64(expected_total), rtol=rtol, what="Σ m·J")
    for what, value, want in zip(("θ", "state1", "state2"), state, expected_state, strict=True):
        assert_close(value, want, rtol=rtol, atol=atol, what=what)


# ---- each tile kernel against the per-equation kernel it equals ------------------------------

TILE_SHAPES = [(3, 5, 1), (7, 29, 9), (12, 13, 4), (23, 6, 11)]  # (n_out, n_in, count)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("n_out", "n_in", "count"), TILE_SHAPES)
def test_dense_tile_kernels_equal_the_per_equation_kernels(n_out, n_in, count, dtype):
    rng = np.random.default_rng(n_out * n_in)
    W, b = rng.normal(size=(n_out, n_in)).astype(dtype), rng.normal(size=n_out).astype(dtype)
    A, dZ = rng.normal(size=(count, n_in)).astype(dtype), rng.normal(size=(count, n_out))
    dZ = dZ.astype(dtype)
    rtol, atol = (1e-12, 1e-13) if dtype == np.float64 else (1e-5, 1e-5)

    Z, expected = np.full((count, n_out), np.nan, dtype), np.full((n_out, count), np.nan, dtype)
    tile_math.dense_tile_forward(Z, W, b, A)
    dense.dense_forward(expected, W, A.T.copy(), b)
    assert_close(Z, expected.T, rtol=rtol, atol=atol, what="(1) Z")

    dW, db = np.ones_like(W), np.ones_like(b)  # the tile kernel adds to what is there
    dW_ref, db_ref = np.empty_like(W), np.empty_like(b)
    tile_math.dense_tile_backward(dW, db, dZ, A, False)
    dense.dense_backward(dW_ref, db_ref, dZ.T.copy(), A.T.copy())
    assert_close(dW, 1 + count * dW_ref, rtol=rtol, atol=atol, what="(8) dW")
    assert_close(db, 1 + count * db_ref, rtol=rtol, atol=atol, what="(9) db")
    dW, db = np.full_like(W, np.nan), np.full_like(b, np.nan)  # or writes over it
    tile_math.dense_tile_backward(dW, db, dZ, A, True)
    assert_close(dW, count * dW_ref, rtol=rtol, atol=atol, what="(8) dW written")
    assert_close(db, count * db_ref, rtol=rtol, atol=atol, what="(9) db written")

    dA, dA_ref = np.full((count, n_in), np.nan, dtype), np.empty((n_in, count), dtype)
    dZ_T, sums = np.full((n_out, count), np.nan, dtype), np.full(count, np.nan, dtype)
    tile_math.dense_tile_backward_input(dA, dZ, W, dZ_T, sums, True)
    dense.dense_backward_input(dA_ref, dZ.T.copy(), W)
    assert_close(dA, dA_ref.T, rtol=rtol, atol=atol, what="(10) dA")


def sparse_pixels(rng, shape, density=0.2):
    """uint8 pixels, about `density` of them nonzero, as in MNIST; below density 1, the first
    row all zeros and the second all nonzero, the two ends of what a row can be."""
    pixels = rng.integers(1, 256, shape, dtype=np.uint8) * (rng.random(shape) < density)
    if density < 1:
        pixels[0], pixels[1] = 0, rng.integers(1, 256, shape[1])
    return pixels.astype(np.uint8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("density", [0.2, 1.0])
@pytest.mark.parametrize(("n_out", "n_in", "count"), [*TILE_SHAPES, (70, 29, 13), (9, 40, 64)])
def test_sparse_tile_kernels_equal_the_dense_tile_kernels(n_out, n_in, count, density, dtype):
    """tile_sparse.py's first layer, on the nonzero inputs alone, against the dense tile
    kernels it says it equals, on inputs from none to all nonzero in a row; at density 1 every
    list is as long as it can be, padding included."""
    rng = np.random.default_rng(n_out + n_in)
    X = sparse_pixels(rng, (count + 5, n_in), density)
    order = rng.permutation(count + 5)
    order[3:5] = 0, 1  # the all-zero and the all-nonzero rows are in the tile
    W, b = rng.normal(size=(n_out, n_in)).astype(dtype), rng.normal(size=n_out).astype(dtype)
    W_T = W.T.copy()
    dZ = rng.normal(size=(count, n_out)).astype(dtype)
    rtol, atol = (1e-12, 1e-13) if dtype == np.float64 else (1e-5, 1e-5)

    A0 = np.empty((count, n_in), dtype)
    tile_math.gather_tile(A0, X, order, 3, 255.0)
    # the lists' rows as sparse_views cuts them, and one column more that must stay untouched
    input_values = np.full((count, n_in + 4), np.nan, dtype)
    nonzero_inputs = np.full((count, n_in + 4), -1, np.int32)
    sample_values = np.full((n_in, count + 4), np.nan, dtype)
    nonzero_samples = np.full((n_in, count + 4), -1, np.int32)
    inputs_per_sample, samples_per_input = np.full(count, -1, np.int32), np.full(n_in, -1, np.int32)
    by_sample = (input_values, nonzero_inputs, inputs_per_sample)
    by_input = (sample_values, nonzero_samples, samples_per_input)
    tile_sparse.gather_nonzero(*by_sample, *by_input, X, order, 3, 255.0)
    assert np.isnan(input_values[:, -1]).all() and (nonzero_inputs[:, -1] == -1).all()
    assert np.isnan(sample_values[:, -1]).all() and (nonzero_samples[:, -1] == -1).all()
    for s in range(count):  # by sample, then padded to a multiple of 4 with 0, picking row 0
        nonzero, padded = np.flatnonzero(A0[s]), inputs_per_sample[s]
        assert padded == 4 * -(-nonzero.size // 4)
        assert np.array_equal(nonzero_inputs[s, : nonzero.size], nonzero)
        assert np.array_equal(input_values[s, : nonzero.size], A0[s, nonzero])  # bit for bit
        assert not input_values[s, nonzero.size : padded].any()
        assert not nonzero_inputs[s, nonzero.size : padded].any()
    for i in range(n_in):  # by input, the same
        listed, padded = np.flatnonzero(A0[:, i]), samples_per_input[i]
        assert padded == 4 * -(-listed.size // 4)
        assert np.array_equal(nonzero_samples[i, : listed.size], listed)
        assert np.array_equal(sample_values[i, : listed.size], A0[listed, i])
        assert not sample_values[i, listed.size : padded].any()
        assert not nonzero_samples[i, listed.size : padded].any()

    Z, expected = np.full((count, n_out), np.nan, dtype), np.full((count, n_out), np.nan, dtype)
    tile_sparse.sparse_forward(Z, W_T, b, *by_sample)
    tile_math.dense_tile_forward(expected, W, b, A0)
    assert_close(Z, expected, rtol=rtol, atol=atol, what="(1) Z")

    dW, db = np.ones_like(W), np.ones_like(b)  # both add to what is there
    dW_T, db_sparse = np.ones_like(W_T), np.ones_like(b)
    tile_math.dense_tile_backward(dW, db, dZ, A0, False)
    tile_sparse.sparse_backward(dW_T, db_sparse, dZ, *by_input, False)
    assert_close(dW_T.T, dW, rtol=rtol, atol=atol, what="(8) dW")
    assert_close(db_sparse, db, rtol=rtol, atol=atol, what="(9) db")
    dW_T, db_sparse = np.full_like(W_T, np.nan), np.full_like(b, np.nan)  # or write over it
    tile_math.dense_tile_backward(dW, db, dZ, A0, True)
    tile_sparse.sparse_backward(dW_T, db_sparse, dZ, *by_input, True)
    assert_close(dW_T.T, dW, rtol=rtol, atol=atol, what="(8) dW written")
    assert_close(db_sparse, db, rtol=rtol, atol=atol, what="(9) db written")


@pytest.mark.parametrize("count", [1, 6])
def test_output_tiles_equal_the_per_equation_kernels(count):
    rng = np.random.default_rng(count)
    k = 7
    Z = rng.normal(0, 3, (count, k))
    Z[0, :2] = (1000, -1000)  # logits near ±1000: no overflow
    labels, order = rng.integers(0, k, count), np.arange(count)
    Y = np.eye(k)[labels].T.copy()

    dZ, A = np.empty_like(Z), np.empty((k, count))
    loss_sum = tile_math.softmax_cross_entropy_tile(dZ, Z, labels, order, 0)
    output.softmax_forward(A, Z.T.copy())
    expected_dZ = np.empty_like(A)
    output.output_error(expected_dZ, A, Y)
    assert_close(dZ, expected_dZ.T, rtol=1e-12, atol=1e-15, what="(6) dZ")
    expected_loss = count * output.cross_entropy_loss(Z.T.copy(), Y)
    assert_close(loss_sum, expected_loss, rtol=1e-12, what="(4)")
    probabilities = np.empty_like(Z)
    tile_math.output_tile(probabilities, Z, CROSS_ENTROPY)
    assert_close(probabilities, A.T, rtol=1e-12, atol=1e-300, what="(3) softmax")

    loss_sum = tile_math.sigmoid_squared_error_tile(dZ, Z, labels, order, 0)
    activations.sigmoid_forward(A, Z.T.copy())
    dA = np.empty_like(A)
    output.output_error(dA, A, Y)
    activations.sigmoid_backward(expected_dZ, dA, A)
    assert_close(dZ, expected_dZ.T, rtol=1e-12, atol=1e-15, what="(7) dZ")
    assert_close(loss_sum, count * output.mse_loss(A, Y), rtol=1e-12, what="(5)")
    tile_math.output_tile(probabilities, Z, SQUARED_ERROR)
    assert_close(probabilities, A.T, rtol=1e-12, what="(3) sigmoid")

    expected_correct = network.count_correct(A, labels, order, 0)
    assert tile_math.count_correct_tile(Z, labels, order, 0) == expected_correct


def test_the_softmax_tile_is_within_two_bits_of_softmax_forward_in_float32():
    """The tile multiplies e by 1/Σe where softmax_forward divides e by Σe: in float32 they
    may differ by two units in the last place (1/Σe is rounded once more), no more."""
    rng = np.random.default_rng(5)
    count, k = 64, 10
    Z = rng.normal(0, 3, (count, k)).astype(np.float32)
    labels, order = rng.integers(0, k, count), np.arange(count)
    Y = np.eye(k, dtype=np.float32)[labels].T.copy()
    dZ, A = np.empty_like(Z), np.empty((k, count), np.float32)
    tile_math.softmax_cross_entropy_tile(dZ, Z, labels, order, 0)
    output.softmax_forward(A, Z.T.copy())
    expected_dZ = np.empty_like(A)
    output.output_error(expected_dZ, A, Y)
    others = Y.T == 0  # where dZ is A itself
    assert np.all(np.abs(dZ - A.T)[others] <= 2 * np.spacing(A.T[others]))
    assert np.abs(dZ - expected_dZ.T).max() <= 2 * np.spacing(np.float32(1))  # A − 1 at labels


def test_gather_scales_pixels_as_training_did():
    """Rows that hold every pixel value, among those gather_tile reads eight at a time and
    among those it reads one at a time after them: tiles of 19 (8 + 8 + 3), 16 (no rows after
    the eights) and 4 (none read eight at a time)."""
    rng = np.random.default_rng(3)
    n_in = 259
    X = rng.integers(0, 256, (30, n_in), dtype=np.uint8)
    X[0, :256], X[1, :256] = np.arange(256), np.arange(255, -1, -1)  # every pixel value
    order = rng.permutation(30)
    first = 3
    order[first + 13], order[first + 17] = 1, 0  # in the second eight, and after the eights
    order[first + 2] = 0  # in the first eight, and in the tile of 4
    for dtype, count in itertools.product((np.float32, np.float64), (19, 16, 4)):
        A0 = np.empty((count, n_in), dtype)
        tile_math.gather_tile(A0, X, order, first, tile_plumbing.input_divisor(X))
        expected = X[order[first : first + count]].astype(dtype) / dtype(255)  # to_inputs
        assert np.array_equal(A0, expected)  # bit for bit
    floats = X.astype(np.float64) / 255
    for dtype in (np.float32, np.float64):  # floats as given, in A0's float type
        A0 = np.empty((19, n_in), dtype)
        tile_math.gather_tile(A0, floats, order, first, tile_plumbing.input_divisor(floats))
        assert np.array_equal(A0, floats[order[first : first + 19]].astype(dtype))


# ---- the whole epoch ---------------------------------------------------------------------------

CASES = [
    *itertools.product(DEPTHS, HIDDEN, LOSSES, OPTIMIZERS, [7]),
    *itertools.product(DEPTHS, ["relu"], ["cross-entropy"], OPTIMIZERS, [1, 100, N_SAMPLES]),
]


@pytest.mark.parametrize(("depth", "activation", "loss", "optimizer", "batch_size"), CASES)
def test_tiled_epoch_matches_the_per_equation_path(depth, activation, loss, optimizer, batch_size):
    net, X, labels, order = problem(DEPTHS[depth], activation, loss, np.float64)
    weight_decay = 0.01 if optimizer == "momentum" else 0.0
    args = (net, X, labels, order, optimizer, batch_size, weight_decay, 3)
    got, expected = epoch(tile_plumbing, *args), epoch(network, *args)
    assert_same_epoch(got, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("batch_size", [7, 100])
def test_l2_over_several_blocks_of_the_update_matches_the_per_equation_path(batch_size):
    """(12)'s loss term is summed a block of the update at a time (tile_threads.BLOCK
    parameters each), and the blocks' sums added in order: here more than one block."""
    net, X, labels, order = problem((150,), "relu", "cross-entropy", np.float64)
    assert net.theta.size > tile_threads.BLOCK
    args = (net, X, labels, order, "adam", batch_size, 0.01, 3)
    got, expected = epoch(tile_plumbing, *args), epoch(network, *args)
    assert_same_epoch(got, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_size", [100, N_SAMPLES])
@pytest.mark.parametrize("depth", DEPTHS)
def test_tiled_epoch_matches_the_oracle(depth, dtype, batch_size):
    net, X, labels, order = problem(DEPTHS[depth], "relu", "cross-entropy", dtype)
    got = epoch(tile_plumbing, net, X, labels, order, "adam", batch_size, 0.001)
    expected = epoch(oracle, net, X, labels, order, "adam", batch_size, 0.001)
    # float32: Adam divides by √v, which magnifies rounding in the smallest gradients
    rtol, atol = (1e-9, 1e-12) if dtype == np.float64 else (1e-4, 1e-5)
    assert_same_epoch(got, expected, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("depth", ["12", "13-7"])
def test_uint8_pixels_train_as_the_floats_they_stand_for(depth, dtype):
    net, _, labels, order = problem(DEPTHS[depth], "relu", "cross-entropy", dtype)
    pixels = np.random.default_rng(5).integers(0, 256, (N_SAMPLES, N_IN), dtype=np.uint8)
    floats = pixels.astype(dtype) / dtype(255)  # what training.to_inputs makes of them
    got = epoch(tile_plumbing, net, pixels, labels, order, "sgd", 7, 0.0)
    from_floats = epoch(tile_plumbing, net, floats, labels, order, "sgd", 7, 0.0)
    assert got[0] == from_floats[0]
    for state, state_from_floats in zip(got[1], from_floats[1], strict=True):
        assert np.array_equal(state, state_from_floats)  # bit for bit
    expected = epoch(network, net, floats, labels, order, "sgd", 7, 0.0)
    rtol, atol = (1e-9, 1e-12) if dtype == np.float64 else (1e-5, 1e-6)
    assert_same_epoch(got, expected, rtol=rtol, atol=atol)


def same_epoch_on_any_thread_count(net, X, labels, order, batch_size):
    """An Adam epoch on 1 thread, on all of numba's, and on 1 again: the returns and θ and
    both states must be the same bits every time. Returns the first run's (returns, state)."""
    results = []
    before = numba.get_num_threads()
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS, 1):
            numba.set_num_threads(threads)
            results.append(epoch(tile_plumbing, net, X, labels, order, "adam", batch_size, 0.001))
    finally:
        numba.set_num_threads(before)
    (first, first_state), *others = results
    for returned, state in others:
        assert returned == first
        for got, want in zip(state, first_state, strict=True):
            assert np.array_equal(got, want)
    return first, first_state


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="without the JIT there are no threads")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_size", [100, 1000])
@pytest.mark.parametrize("hidden", [(33,), (33, 17), (33, 17, 12)])
def test_tiled_epoch_is_bit_identical_for_any_thread_count(hidden, dtype, batch_size):
    """Chunks are fixed by the batch size, never by the threads, and summed in chunk order."""
    net, _, labels, order = problem(hidden, "relu", "cross-entropy", dtype, 1, n_samples=2000)
    X = np.random.default_rng(2).integers(0, 256, (2000, N_IN), dtype=np.uint8)
    same_epoch_on_any_thread_count(net, X, labels, order, batch_size)


# First layers wide enough for tile_sparse.py (SPARSE_MIN_UNITS), on pixels that are mostly 0
SPARSE_DEPTHS = {"70": (70,), "64-13": (64, 13), "66-9-11": (66, 9, 11)}


def sparse_problem(hidden, dtype, seed=0, n_samples=N_SAMPLES):
    net, _, labels, order = problem(hidden, "relu", "cross-entropy", dtype, seed, n_samples)
    pixels = sparse_pixels(np.random.default_rng(seed + 1), (n_samples, N_IN))
    X = pixels.astype(dtype) / dtype(255)  # as training.to_inputs makes them
    assert tile_plumbing.sparse_first_layer(X, net.layer_sizes)
    return net, X, labels, order


def test_the_first_layer_runs_on_nonzero_inputs_when_wide_and_mostly_zero():
    rng = np.random.default_rng(4)
    sparse, dense = sparse_pixels(rng, (500, N_IN)), rng.integers(1, 256, (500, N_IN))
    wide, narrow = np.array([N_IN, tile_plumbing.SPARSE_MIN_UNITS, 10]), np.array([N_IN, 63, 10])
    assert tile_plumbing.sparse_first_layer(sparse, wide)
    assert not tile_plumbing.sparse_first_layer(sparse, narrow)
    assert not tile_plumbing.sparse_first_layer(dense.astype(np.uint8), wide)
    assert not tile_plumbing.sparse_first_layer(sparse[:0], wide)
    # judged on every ⌈N / 1024⌉-th row: here every 3rd of 3,000, where exactly 30% (9 of 30
    # inputs) are nonzero; the other rows, all nonzero, are not looked at
    X = np.ones((3000, 30), np.uint8)
    X[::3, 9:] = 0
    assert tile_plumbing.sparse_first_layer(X, np.array([30, 64, 10]))
    X[::3, 9] = 1  # 10 of 30 nonzero: over the line
    assert not tile_plumbing.sparse_first_layer(X, np.array([30, 64, 10]))


def test_the_first_layer_turns_to_its_transpose_and_back():
    sizes = np.array([3, 4, 2])
    theta = np.arange(12 + 4 + 8 + 2, dtype=np.float64)
    turned = theta.copy()
    tile_plumbing.transpose_first_layer(sizes, turned)
    assert np.array_equal(turned[:12].reshape(3, 4), theta[:12].reshape(4, 3).T)
    assert np.array_equal(turned[12:], theta[12:])
    tile_plumbing.transpose_first_layer(sizes, turned, back=True)
    assert np.array_equal(turned, theta)


SPARSE_CASES = [
    *itertools.product(SPARSE_DEPTHS, ["relu"], OPTIMIZERS, [7]),
    # one sample a step; two chunks; one chunk of two tiles (64 + 26); five chunks of 40-44
    *itertools.product(["70"], ["tanh"], ["adam"], [1, 100, 90, N_SAMPLES]),
]


@pytest.mark.parametrize(("depth", "activation", "optimizer", "batch_size"), SPARSE_CASES)
def test_sparse_first_layer_epoch_matches_the_per_equation_path(
    depth, activation, optimizer, batch_size
):
    """A whole epoch with the first layer on the nonzero inputs: θ, the optimizer's state
    (both back in network.py's layout), the loss and the count against network.py's, with
    (12) on for momentum."""
    net, X, labels, order = sparse_problem(SPARSE_DEPTHS[depth], np.float64)
    net.activation = activation
    weight_decay = 0.01 if optimizer == "momentum" else 0.0
    args = (net, X, labels, order, optimizer, batch_size, weight_decay, 3)
    got, expected = epoch(tile_plumbing, *args), epoch(network, *args)
    assert_same_epoch(got, expected, rtol=1e-9, atol=1e-12)


def test_sparse_layer_without_hidden_layers_matches_the_per_equation_path():
    """A network with no hidden layer and 64 classes: the sparse layer is the output layer."""
    rng = np.random.default_rng(6)
    net = init_network((N_IN, 64), "relu", "cross-entropy", None, "float64", rng)
    X = sparse_pixels(rng, (N_SAMPLES, N_IN)) / 255.0
    labels, order = rng.integers(0, 64, N_SAMPLES), rng.permutation(N_SAMPLES)
    assert tile_plumbing.sparse_first_layer(X, net.layer_sizes)
    args = (net, X, labels, order, "adam", 7, 0.0, 3)
    got, expected = epoch(tile_plumbing, *args), epoch(network, *args)
    assert_same_epoch(got, expected, rtol=1e-9, atol=1e-12)


def test_the_first_layer_turns_back_when_the_epoch_raises(monkeypatch):
    net, X, labels, order = sparse_problem((70,), np.float64)
    theta, state1 = net.theta.copy(), np.arange(net.theta.size, dtype=np.float64)
    state2 = state1 * 2
    before = (theta.copy(), state1.copy(), state2.copy())

    def interrupted(*arguments):
        raise KeyboardInterrupt

    monkeypatch.setattr(tile_threads, "parallel_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tile_plumbing.train_epoch(
            theta, state1, state2, X, labels, order, net.layer_sizes, RELU, CROSS_ENTROPY, ADAM,
            0.05, 0.0, 0.9, 0.999, 1e-8, 0, 7,
        )  # fmt: skip
    for got, want in zip((theta, state1, state2), before, strict=True):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("depth", SPARSE_DEPTHS)
def test_sparse_first_layer_epoch_matches_the_oracle(depth):
    net, X, labels, order = sparse_problem(SPARSE_DEPTHS[depth], np.float32)
    got = epoch(tile_plumbing, net, X, labels, order, "adam", 100, 0.001)
    expected = epoch(oracle, net, X, labels, order, "adam", 100, 0.001)
    assert_same_epoch(got, expected, rtol=1e-4, atol=1e-5)  # float32: as the dense path


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="without the JIT there are no threads")
@pytest.mark.parametrize("batch_size", [100, 1000])
def test_sparse_first_layer_epoch_is_bit_identical_for_any_thread_count(batch_size):
    net, _, labels, order = sparse_problem((70, 17), np.float32, 1, n_samples=2000)
    X = sparse_pixels(np.random.default_rng(2), (2000, N_IN))  # uint8, as training passes them
    assert tile_plumbing.sparse_first_layer(X, net.layer_sizes)
    first, first_state = same_epoch_on_any_thread_count(net, X, labels, order, batch_size)
    from_floats = epoch(tile_plumbing, net, X / np.float32(255), labels, order, "adam",
                        batch_size, 0.001)  # fmt: skip
    assert from_floats[0] == first  # uint8 pixels train as the floats they stand for
    for got, want in zip(from_floats[1], first_state, strict=True):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("m", [1, 3, 4, 47, 48, 100, 383, 60000])
def test_chunks_cover_the_batch_once_at_multiples_of_four(m):
    chunks = tile_threads.chunk_count(m)
    assert 1 <= chunks <= tile_threads.MAX_CHUNKS
    bounds = [tile_threads.chunk_bounds(m, chunks, c) for c in range(chunks)]
    assert bounds[0][0] == 0 and bounds[-1][1] == m
    for (first, last), (next_first, _) in itertools.pairwise(bounds):
        assert last == next_first and first % 4 == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", list(HIDDEN))
@pytest.mark.parametrize("loss", list(LOSSES))
@pytest.mark.parametrize("depth", ["12", "13-7", "12-9-11"])
def test_tiled_predict_matches_the_oracle(depth, dtype, activation, loss):
    net, X, _, _ = problem(DEPTHS[depth], activation, loss, dtype)
    outputs = np.full((N_SAMPLES, 10), np.nan, dtype)
    expected = np.full((N_SAMPLES, 10), np.nan, dtype)
    arguments = (net.theta, X, net.layer_sizes, HIDDEN[activation], LOSSES[loss], 1000)
    tile_plumbing.predict(outputs, *arguments)
    oracle.predict(expected, *arguments)
    rtol, atol = (1e-10, 1e-15) if dtype == np.float64 else (1e-5, 1e-7)
    assert_close(outputs, expected, rtol=rtol, atol=atol, what="A[L]")
