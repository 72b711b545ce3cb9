"""Every loop kernel against its NumPy oracle, float64 and float32, on odd sizes and m = 1.

Outputs are preallocated full of NaN, so a kernel that reads its output before writing it, or
leaves part of it unwritten, fails. Each output's dtype must be the input dtype: float32 in,
float32 out. Tolerances: 1e-10 relative for float64, 1e-5 for float32, plus, where terms are
summed or cancel, an absolute floor of that same fraction of the terms' size (terms_atol): a dot
product whose terms cancel to near 0 is exact only relative to its terms, in any summation order.
"""

from __future__ import annotations

import itertools

import numba
import numpy as np
import pytest
from compare import assert_close, rtol_for

from fastnn import oracle
from fastnn.kernels import activations, dense, network, optimizers, output
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

DTYPES = [pytest.param(np.float64, id="float64"), pytest.param(np.float32, id="float32")]

# (n_out, n_in, m): odd sizes on purpose, a single sample, a single unit, and MNIST's own width.
DENSE_SHAPES = [
    pytest.param(3, 7, 5, id="3x7-m5"),
    pytest.param(7, 3, 1, id="7x3-m1"),
    pytest.param(1, 1, 1, id="1x1-m1"),
    pytest.param(5, 784, 13, id="5x784-m13"),
    pytest.param(10, 33, 64, id="10x33-m64"),
]

# (n, m) for elementwise kernels.
ELEMENTWISE_SHAPES = [
    pytest.param(3, 5, id="3x5"),
    pytest.param(7, 1, id="7x1"),
    pytest.param(1, 1, id="1x1"),
    pytest.param(10, 37, id="10x37"),
]

HIDDEN = {"relu": RELU, "sigmoid": SIGMOID, "tanh": TANH}
LOSSES = {"cross-entropy": CROSS_ENTROPY, "mse": SQUARED_ERROR}
OPTIMIZERS = {"sgd": SGD, "momentum": MOMENTUM, "adam": ADAM}


def random(rng: np.random.Generator, shape, dtype=np.float64, scale: float = 1.0) -> np.ndarray:
    return (scale * rng.standard_normal(shape)).astype(dtype)


def unwritten(shape, dtype) -> np.ndarray:
    """An output buffer full of NaN: any element the kernel fails to write stays NaN."""
    return np.full(shape, np.nan, dtype=dtype)


def one_hot(labels: np.ndarray, k: int, dtype) -> np.ndarray:
    """(k, m): column s is one-hot at labels[s]."""
    return np.eye(k, dtype=dtype)[labels].T.copy()


def terms_atol(dtype, magnitude: np.ndarray) -> float:
    """Absolute tolerance for a result computed from terms of total size `magnitude` (|W|·|A|
    for a dot product, |dA| for dA·(1 − A²)). Where the terms cancel, the result is small and
    its relative error large in any correct implementation (fused multiply-add or not), but the
    error relative to the terms stays at the rounding of the dtype."""
    return rtol_for(dtype) * float(np.max(magnitude, initial=0))


def with_kinks(Z: np.ndarray) -> np.ndarray:
    """Z with every third value exactly 0 and every seventh −0.0: the ReLU kink, both signs."""
    Z = Z.copy()
    Z.flat[::3] = 0.0
    Z.flat[1::7] = -0.0
    return Z


# ---- (1), (8), (9), (10): the dense layer ---------------------------------------------------


@pytest.mark.parametrize(("n_out", "n_in", "m"), DENSE_SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_forward(n_out, n_in, m, dtype):
    rng = np.random.default_rng(1)
    W, A, b = (
        random(rng, (n_out, n_in), dtype),
        random(rng, (n_in, m), dtype),
        random(rng, n_out, dtype),
    )
    Z = unwritten((n_out, m), dtype)
    dense.dense_forward(Z, W, A, b)
    magnitude = np.abs(W) @ np.abs(A) + np.abs(b)[:, None]
    assert_close(
        Z,
        oracle.dense_forward(W, A, b),
        rtol=rtol_for(dtype),
        atol=terms_atol(dtype, magnitude),
        what="Z",
    )


@pytest.mark.parametrize(("n_out", "n_in", "m"), DENSE_SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_backward(n_out, n_in, m, dtype):
    rng = np.random.default_rng(2)
    dZ, A_prev = random(rng, (n_out, m), dtype), random(rng, (n_in, m), dtype)
    dW, db = unwritten((n_out, n_in), dtype), unwritten(n_out, dtype)
    dense.dense_backward(dW, db, dZ, A_prev)
    expected_dW, expected_db = oracle.dense_backward(dZ, A_prev)
    rtol = rtol_for(dtype)
    assert_close(
        dW,
        expected_dW,
        rtol=rtol,
        atol=terms_atol(dtype, np.abs(dZ) @ np.abs(A_prev).T / m),
        what="dW",
    )
    assert_close(
        db, expected_db, rtol=rtol, atol=terms_atol(dtype, np.abs(dZ).sum(axis=1) / m), what="db"
    )


@pytest.mark.parametrize(("n_out", "n_in", "m"), DENSE_SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_backward_input(n_out, n_in, m, dtype):
    rng = np.random.default_rng(3)
    dZ, W = random(rng, (n_out, m), dtype), random(rng, (n_out, n_in), dtype)
    dA_prev = unwritten((n_in, m), dtype)
    dense.dense_backward_input(dA_prev, dZ, W)
    assert_close(
        dA_prev,
        oracle.dense_backward_input(dZ, W),
        rtol=rtol_for(dtype),
        atol=terms_atol(dtype, np.abs(W).T @ np.abs(dZ)),
        what="dA_prev",
    )


def test_dense_kernels_do_not_depend_on_the_thread_count():
    """Each prange iteration owns its output slice, so 1 thread and many give identical bits."""
    rng = np.random.default_rng(4)
    W, A, b = random(rng, (13, 31)), random(rng, (31, 9)), random(rng, 13)
    dZ = random(rng, (13, 9))

    def run():
        Z, dW, db, dA = np.empty((13, 9)), np.empty((13, 31)), np.empty(13), np.empty((31, 9))
        dense.dense_forward(Z, W, A, b)
        dense.dense_backward(dW, db, dZ, A)
        dense.dense_backward_input(dA, dZ, W)
        return Z, dW, db, dA

    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        serial = run()
    finally:
        numba.set_num_threads(threads)
    parallel = run()
    for name, one, many in zip(("Z", "dW", "db", "dA_prev"), serial, parallel, strict=True):
        assert np.array_equal(one, many), f"{name} changes with the number of threads"


# ---- (2), (11): hidden activations ---------------------------------------------------------

FORWARD = {
    "relu": (activations.relu_forward, oracle.relu_forward),
    "sigmoid": (activations.sigmoid_forward, oracle.sigmoid_forward),
    "tanh": (activations.tanh_forward, oracle.tanh_forward),
}


@pytest.mark.parametrize(("n", "m"), ELEMENTWISE_SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", FORWARD)
def test_activation_forward(name, n, m, dtype):
    kernel, reference = FORWARD[name]
    Z = with_kinks(random(np.random.default_rng(5), (n, m), dtype, scale=3.0))
    A = unwritten((n, m), dtype)
    kernel(A, Z)
    assert_close(A, reference(Z), rtol=rtol_for(dtype), atol=1e-300, what=f"{name}(Z)")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", FORWARD)
def test_activation_forward_saturates_finitely(name, dtype):
    """Logits near ±1000: e^1000 overflows, yet σ and tanh must come out exactly 0/−1 and 1."""
    Z = np.array([[-1000.0, -999.5, -40.0, 0.0, 40.0, 999.5, 1000.0]], dtype=dtype)
    A = unwritten(Z.shape, dtype)
    kernel, reference = FORWARD[name]
    kernel(A, Z)
    with np.errstate(over="ignore"):  # the oracle's e^1000 overflows to inf on purpose
        expected = reference(Z)
    assert np.all(np.isfinite(A)), f"{name} is not finite at ±1000: {A}"
    assert_close(A, expected, rtol=rtol_for(dtype), atol=1e-300, what=f"{name}(±1000)")


@pytest.mark.parametrize(
    "name",
    [
        "relu",
        "sigmoid",
        "tanh",
    ],
)
def test_activation_forward_propagates_nan_and_infinity(name):
    """A NaN or infinite Z must come out as the oracle says: a NaN that a hidden layer turns into
    a finite number hides divergence from the loss (kernels/jit.py keeps IEEE NaN semantics)."""
    Z = np.array([[np.nan, np.inf, -np.inf, 0.5]])
    A = unwritten(Z.shape, np.float64)
    kernel, reference = FORWARD[name]
    kernel(A, Z)
    assert_close(A, reference(Z), rtol=1e-15, what=f"{name}(NaN, ±inf)")


BACKWARD = {
    "relu": (activations.relu_backward, oracle.relu_backward),
    "sigmoid": (activations.sigmoid_backward, oracle.sigmoid_backward),
    "tanh": (activations.tanh_backward, oracle.tanh_backward),
}


@pytest.mark.parametrize(("n", "m"), ELEMENTWISE_SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKWARD)
def test_activation_backward(name, n, m, dtype):
    rng = np.random.default_rng(6)
    Z = with_kinks(random(rng, (n, m), dtype, scale=3.0))
    dA = random(rng, (n, m), dtype)
    A = unwritten((n, m), dtype)
    FORWARD[name][0](A, Z)
    kernel, reference = BACKWARD[name]
    # relu's backward reads Z; sigmoid's and tanh's read their output A.
    second = Z if name == "relu" else A
    dZ = unwritten((n, m), dtype)
    kernel(dZ, dA, second)
    # 1 − A² and 1 − A cancel where |A| → 1: the terms are of size |dA| (|A| ≤ 1).
    atol = terms_atol(dtype, np.abs(dA))
    assert_close(dZ, reference(dA, second), rtol=rtol_for(dtype), atol=atol, what=f"d{name}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_backward_is_exactly_zero_on_the_kink(dtype):
    """g'(0) = 0 for ReLU, as the oracle's `Z > 0` says, for +0.0 and −0.0 alike."""
    Z = np.array([[0.0, -0.0, 1e-300 if dtype == np.float64 else 1e-40, -1e-30, 2.0, -2.0]])
    Z = Z.astype(dtype)
    dA = np.full(Z.shape, 3.0, dtype=dtype)
    dZ, A = unwritten(Z.shape, dtype), unwritten(Z.shape, dtype)
    activations.relu_backward(dZ, dA, Z)
    activations.relu_forward(A, Z)
    assert np.array_equal(dZ, np.array([[0, 0, 3, 0, 3, 0]], dtype=dtype)), dZ
    assert np.array_equal(dZ, oracle.relu_backward(dA, Z))
    assert np.array_equal(A, np.array([[0, 0, Z[0, 2], 0, 2, 0]], dtype=dtype)), A


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_is_exact(dtype):
    """ReLU only selects: its output must equal the oracle's bit for bit, kinks included."""
    Z = with_kinks(random(np.random.default_rng(7), (9, 11), dtype))
    A = unwritten(Z.shape, dtype)
    activations.relu_forward(A, Z)
    assert A.dtype == dtype
    assert np.array_equal(A, oracle.relu_forward(Z))


# ---- (3)-(7): the output layer -------------------------------------------------------------

OUTPUT_SHAPES = [
    pytest.param(3, 5, id="k3-m5"),
    pytest.param(10, 1, id="k10-m1"),
    pytest.param(1, 3, id="k1-m3"),
    pytest.param(7, 64, id="k7-m64"),
]


def extreme_logits(k: int, m: int, dtype, rng) -> np.ndarray:
    """Logits near ±1000: columns all near +1000, all near −1000, and mixed ±1000."""
    Z = rng.uniform(-1, 1, (k, m))
    signs = rng.choice([-1.0, 1.0], size=(k, m))
    signs[:, 0::3] = 1.0
    signs[:, 1::3] = -1.0
    return (Z + 1000 * signs).astype(dtype)


@pytest.mark.parametrize(("k", "m"), OUTPUT_SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("logits", ["normal", "extreme"])
def test_softmax_forward(k, m, dtype, logits):
    rng = np.random.default_rng(8)
    Z = random(rng, (k, m), dtype, 3.0) if logits == "normal" else extreme_logits(k, m, dtype, rng)
    A = unwritten((k, m), dtype)
    output.softmax_forward(A, Z)
    rtol = rtol_for(dtype)
    assert np.all(np.isfinite(A)), A
    assert np.all((A >= 0) & (A <= 1)), A
    assert_close(A.sum(axis=0), np.ones(m, dtype), rtol=0, atol=10 * rtol, what="column sums")
    assert_close(A, oracle.softmax_forward(Z), rtol=rtol, atol=1e-300, what="softmax(Z)")


@pytest.mark.parametrize(("k", "m"), OUTPUT_SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("logits", ["normal", "extreme"])
def test_cross_entropy_loss(k, m, dtype, logits):
    rng = np.random.default_rng(9)
    Z = random(rng, (k, m), dtype, 3.0) if logits == "normal" else extreme_logits(k, m, dtype, rng)
    Y = one_hot(rng.integers(0, k, m), k, dtype)
    loss = output.cross_entropy_loss(Z, Y)
    assert np.isfinite(loss)
    # A scalar comes back to Python as a Python float whatever the arrays' dtype, so both sides
    # are compared as float64; the atol covers float32 logits of size 1000 (ulp 6e-5).
    atol = 0.0 if dtype == np.float64 else rtol_for(dtype) * float(np.max(np.abs(Z)))
    assert_close(
        np.float64(loss),
        np.float64(oracle.cross_entropy_loss(Z, Y)),
        rtol=rtol_for(dtype),
        atol=atol,
        what="cross-entropy",
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_loss_of_known_extreme_logits(dtype):
    """Z = (1000, −1000, 0): the right class costs log(1 + e^−1000 + e^−2000) = 0 to double
    precision, the wrong one 2000 + that; softmax of the same column is exactly (1, 0, 0)."""
    Z = np.array([[1000.0, 1000.0], [-1000.0, -1000.0], [0.0, 0.0]], dtype=dtype)
    Y = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], dtype=dtype)
    loss = output.cross_entropy_loss(Z, Y)
    assert_close(np.float64(loss), np.float64(1000.0), rtol=1e-12, what="(0 + 2000) / 2")
    A = unwritten(Z.shape, dtype)
    output.softmax_forward(A, Z)
    assert np.array_equal(A, np.array([[1, 1], [0, 0], [0, 0]], dtype=dtype)), A


@pytest.mark.parametrize(("k", "m"), OUTPUT_SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_mse_loss(k, m, dtype):
    rng = np.random.default_rng(10)
    A = rng.uniform(0, 1, (k, m)).astype(dtype)
    Y = one_hot(rng.integers(0, k, m), k, dtype)
    loss = output.mse_loss(A, Y)
    assert_close(
        np.float64(loss), np.float64(oracle.mse_loss(A, Y)), rtol=rtol_for(dtype), what="mse"
    )


@pytest.mark.parametrize(("k", "m"), OUTPUT_SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_output_error(k, m, dtype):
    rng = np.random.default_rng(11)
    A = rng.uniform(0, 1, (k, m)).astype(dtype)
    Y = one_hot(rng.integers(0, k, m), k, dtype)
    E = unwritten((k, m), dtype)
    output.output_error(E, A, Y)
    # A − Y is one rounding in either implementation: it must match exactly.
    assert_close(E, oracle.output_error(A, Y), rtol=0, what="A − Y")


# ---- (12)-(15): L2 and the optimizers --------------------------------------------------------

VECTOR_SIZES = [pytest.param(1, id="p1"), pytest.param(7, id="p7"), pytest.param(1003, id="p1003")]
LEARNING_RATE, BETA1, BETA2, EPSILON = 0.01, 0.9, 0.999, 1e-8


def update_atol(dtype) -> float:
    """θ ~ N(0, 1): float32 rounds at about 1e-7 absolute, so values near 0 need a floor."""
    return 0.0 if dtype == np.float64 else 1e-6


@pytest.mark.parametrize("size", VECTOR_SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_l2_penalty(size, dtype):
    W = random(np.random.default_rng(12), size, dtype).reshape(-1, 1)
    penalty = optimizers.l2_penalty(W, 0.003)
    assert_close(
        np.float64(penalty),
        np.float64(oracle.l2_penalty(W, 0.003)),
        rtol=rtol_for(dtype),
        what="(λ/2) ΣW²",
    )


@pytest.mark.parametrize("size", VECTOR_SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_l2_backward(size, dtype):
    rng = np.random.default_rng(13)
    W, dW = random(rng, size, dtype), random(rng, size, dtype)
    expected = dW + dtype(0.003) * W  # oracle.backward's line for (12)
    optimizers.l2_backward(dW, W, 0.003)
    assert_close(dW, expected, rtol=rtol_for(dtype), atol=update_atol(dtype), what="dW + λW")


def run_optimizer(implementation, name, theta, dtheta_steps, dtype):
    """Apply `name`'s update once per gradient in `dtheta_steps`; returns θ and the states."""
    theta, state1, state2 = theta.copy(), np.zeros_like(theta), np.zeros_like(theta)
    for step, dtheta in enumerate(dtheta_steps, start=1):
        if name == "sgd":
            implementation.sgd_update(theta, dtheta, LEARNING_RATE)
        elif name == "momentum":
            implementation.momentum_update(theta, state1, dtheta, LEARNING_RATE, BETA1)
        else:
            implementation.adam_update(
                theta, state1, state2, dtheta, LEARNING_RATE, BETA1, BETA2, EPSILON, step
            )
    return theta, state1, state2


@pytest.mark.parametrize("size", VECTOR_SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_update(name, size, dtype):
    """Three steps, so momentum's velocity and Adam's bias correction (step t = 1, 2, 3) count."""
    rng = np.random.default_rng(14)
    theta = random(rng, size, dtype)
    steps = [random(rng, size, dtype) for _ in range(3)]
    actual = run_optimizer(optimizers, name, theta, steps, dtype)
    expected = run_optimizer(oracle, name, theta, steps, dtype)
    atol = update_atol(dtype)
    for what, got, want in zip(("θ", "state1", "state2"), actual, expected, strict=True):
        assert_close(got, want, rtol=rtol_for(dtype), atol=atol, what=f"{name} {what}")
    assert not np.array_equal(actual[0], theta), "the update did not change θ in place"


# ---- network.py: the whole network on flat buffers -----------------------------------------

NETWORK_SIZES = [
    pytest.param((7, 5, 3), id="7-5-3"),
    pytest.param((13, 7, 5, 3), id="13-7-5-3"),
]


def random_theta(sizes, dtype, rng) -> np.ndarray:
    p = sum(n_out * n_in + n_out for n_in, n_out in itertools.pairwise(sizes))
    return (0.7 * rng.standard_normal(p)).astype(dtype)


def block(buffer: np.ndarray, sizes, layer: int, capacity: int, m: int) -> np.ndarray:
    """Layer `layer`'s (sizes[layer], m) block of a flat activation buffer, spelled out here
    rather than taken from network.layer_view, so a slip there cannot hide in both places."""
    offset = sum(sizes[1:layer]) * capacity
    return buffer[offset : offset + sizes[layer] * m].reshape(sizes[layer], m)


def network_batch(sizes, m, dtype, rng):
    A0 = rng.uniform(0, 1, (sizes[0], m)).astype(dtype)
    Y = one_hot(rng.integers(0, sizes[-1], m), sizes[-1], dtype)
    return A0, Y


def numba_forward_backward(theta, A0, Y, sizes, hidden, loss, weight_decay, capacity):
    """forward, batch_loss and backward of kernels/network.py on fresh NaN-filled buffers."""
    sizes_array = np.array(sizes, dtype=np.int64)
    units = sum(sizes[1:]) * capacity
    Zs, As, dZs, dAs = (unwritten(units, theta.dtype) for _ in range(4))
    dtheta = unwritten(theta.size, theta.dtype)
    network.forward(Zs, As, theta, A0, sizes_array, hidden, loss, capacity)
    value = network.batch_loss(Zs, As, theta, Y, sizes_array, loss, weight_decay, capacity)
    network.backward(
        dtheta, dZs, dAs, theta, A0, Y, Zs, As, sizes_array, hidden, loss, weight_decay, capacity
    )
    return Zs, As, value, dtheta


def network_rtol(dtype) -> float:
    return rtol_for(dtype)


def network_atol(dtype) -> float:
    """float32 values near 0 after several layers (or steps) of rounding: measured at up to
    5e-7 absolute against the float32 oracle, so a floor of 1e-6."""
    return 0.0 if dtype == np.float64 else 1e-6


@pytest.mark.parametrize("m", [1, 5])
@pytest.mark.parametrize("sizes", NETWORK_SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("loss", LOSSES)
def test_network_forward_loss_and_backward(loss, hidden, dtype, sizes, m):
    """Z[l], A[l], J and dθ of one batch, with L2 on, in buffers with room for more samples."""
    rng = np.random.default_rng(15)
    theta = random_theta(sizes, dtype, rng)
    A0, Y = network_batch(sizes, m, dtype, rng)
    weight_decay, capacity = 0.01, m + 2
    Zs, As, value, dtheta = numba_forward_backward(
        theta, A0, Y, sizes, HIDDEN[hidden], LOSSES[loss], weight_decay, capacity
    )
    expected_Zs, expected_As = oracle.forward(theta, A0, sizes, HIDDEN[hidden], LOSSES[loss])
    rtol, atol = network_rtol(dtype), network_atol(dtype)
    for l in range(1, len(sizes)):
        Z, A = block(Zs, sizes, l, capacity, m), block(As, sizes, l, capacity, m)
        assert_close(Z, expected_Zs[l - 1], rtol=rtol, atol=atol, what=f"Z[{l}]")
        assert_close(A, expected_As[l], rtol=rtol, atol=atol, what=f"A[{l}]")
    expected_value = oracle.batch_loss(
        expected_Zs, expected_As, theta, Y, sizes, LOSSES[loss], weight_decay
    )
    assert_close(np.float64(value), np.float64(expected_value), rtol=rtol, what="J")
    expected_dtheta = oracle.backward(
        theta, Y, expected_Zs, expected_As, sizes, HIDDEN[hidden], LOSSES[loss], weight_decay
    )
    assert_close(dtheta, expected_dtheta, rtol=rtol, atol=atol, what="dθ")


def run_epoch(implementation, theta, X, labels, order, sizes, codes, hyper, step, batch_size):
    theta, state1, state2 = theta.copy(), np.zeros_like(theta), np.zeros_like(theta)
    totals = implementation.train_epoch(
        theta, state1, state2, X, labels, order, np.array(sizes, dtype=np.int64),
        *codes, *hyper, step, batch_size,
    )  # fmt: skip
    return totals, (theta, state1, state2)


EPOCH_CASES = [
    pytest.param("relu", "cross-entropy", 0.0, 5, id="relu-ce-b5"),
    pytest.param("sigmoid", "mse", 0.01, 4, id="sigmoid-mse-l2-b4"),
    pytest.param("tanh", "cross-entropy", 0.01, 23, id="tanh-ce-l2-fullbatch"),
    pytest.param("relu", "mse", 0.0, 1, id="relu-mse-b1"),
]


@pytest.mark.parametrize(("hidden", "loss", "weight_decay", "batch_size"), EPOCH_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_train_epoch(optimizer, dtype, hidden, loss, weight_decay, batch_size):
    """23 samples: batches of 5 leave a last batch of 3. Starts at step 4, as a later epoch does,
    so Adam's bias correction must count from the step it is given."""
    sizes, n_samples = (13, 7, 5, 3), 23
    rng = np.random.default_rng(16)
    theta = random_theta(sizes, dtype, rng)
    X = rng.uniform(0, 1, (n_samples, sizes[0])).astype(dtype)
    labels = rng.integers(0, sizes[-1], n_samples)
    order = rng.permutation(n_samples)
    codes = (HIDDEN[hidden], LOSSES[loss], OPTIMIZERS[optimizer])
    hyper = (0.05, weight_decay, BETA1, BETA2, EPSILON)
    args = (theta, X, labels, order, sizes, codes, hyper, 4, batch_size)
    (total, correct, steps), state = run_epoch(network, *args)
    (expected_total, expected_correct, expected_steps), expected_state = run_epoch(oracle, *args)
    assert steps == expected_steps == -(-n_samples // batch_size)
    assert correct == expected_correct
    # float32: both sides update in float32, but the kernels contract a·b + c into one fused
    # multiply-add and the oracle rounds twice. Adam's step α·m̂/(√v̂ + ε) is a ratio of two such
    # values, so where the gradient is tiny the ratio's few-ulp error is scaled by α (0.05):
    # measured 1.4e-6 absolute on θ after five steps; the floor is α·1e-4 = 5e-6 for Adam.
    rtol, atol = network_rtol(dtype), network_atol(dtype)
    if dtype == np.float32 and optimizer == "adam":
        atol = hyper[0] * 1e-4
    assert_close(np.float64(total), np.float64(expected_total), rtol=rtol, what="Σ m·J")
    for what, got, want in zip(("θ", "state1", "state2"), state, expected_state, strict=True):
        assert_close(got, want, rtol=rtol, atol=atol, what=what)


@pytest.mark.parametrize("chunk", [3, 7, 100])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", LOSSES)
def test_predict(loss, dtype, chunk):
    """7 samples in chunks of 3 (a short last chunk), of 7, and of more than there are."""
    sizes = (13, 7, 5, 3)
    rng = np.random.default_rng(17)
    theta = random_theta(sizes, dtype, rng)
    X = rng.uniform(0, 1, (7, sizes[0])).astype(dtype)
    sizes_array = np.array(sizes, dtype=np.int64)
    outputs, expected = unwritten((7, 3), dtype), unwritten((7, 3), dtype)
    network.predict(outputs, theta, X, sizes_array, TANH, LOSSES[loss], chunk)
    oracle.predict(expected, theta, X, sizes_array, TANH, LOSSES[loss], chunk)
    assert_close(outputs, expected, rtol=network_rtol(dtype), atol=network_atol(dtype), what="A[L]")
