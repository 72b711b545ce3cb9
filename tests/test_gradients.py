"""The whole network's gradient against central finite differences of its own loss, float64.

For every hidden activation × loss × depth (7-5-3, 7-5-4-3 and 7-5-4-4-3, m = 4), with and
without L2: the analytic dθ against (J(θ + ε·e_i) − J(θ − ε·e_i)) / 2ε of the loss, three times,
each against its own loss: the per-equation kernels (backward() and batch_loss()), the tiled
path training runs (one step of its epoch), and the NumPy oracle. Then the fused softmax +
cross-entropy gradient dZ = A − Y against the unfused chain it replaces.

Central differences with ε = 1e-6 are exact to about ε²·|J‴| ≈ 1e-12 plus rounding
1e-16·J/ε ≈ 1e-10, so the check is: |analytic − FD| ≤ 1e-6·|FD| + 1e-8.
"""

from __future__ import annotations

import itertools

import numba
import numpy as np
import pytest
from compare import assert_close

from fastnn import oracle
from fastnn.kernels import activations, network, output, tile_plumbing
from fastnn.kernels.codes import CROSS_ENTROPY, RELU, SGD, SIGMOID, SQUARED_ERROR, TANH

EPSILON = 1e-6
FD_RTOL, FD_ATOL = 1e-6, 1e-8
M = 4

HIDDEN = {"relu": RELU, "sigmoid": SIGMOID, "tanh": TANH}
LOSSES = {"cross-entropy": CROSS_ENTROPY, "mse": SQUARED_ERROR}
SIZES = {"one-hidden": (7, 5, 3), "two-hidden": (7, 5, 4, 3), "three-hidden": (7, 5, 4, 4, 3)}


class NumbaNetwork:
    """forward + batch_loss and forward + backward of kernels/network.py, on its flat buffers."""

    def __init__(self, sizes, hidden, loss, weight_decay, m):
        self.sizes = np.array(sizes, dtype=np.int64)
        self.hidden, self.loss, self.weight_decay, self.capacity = hidden, loss, weight_decay, m
        units = sum(sizes[1:]) * m
        self.Zs, self.As, self.dZs, self.dAs = (np.empty(units) for _ in range(4))

    def loss_value(self, theta, A0, Y):
        network.forward(
            self.Zs, self.As, theta, A0, self.sizes, self.hidden, self.loss, self.capacity
        )
        return network.batch_loss(
            self.Zs, self.As, theta, Y, self.sizes, self.loss, self.weight_decay, self.capacity
        )

    def gradient(self, theta, A0, Y):
        self.loss_value(theta, A0, Y)
        dtheta = np.full_like(theta, np.nan)
        network.backward(
            dtheta, self.dZs, self.dAs, theta, A0, Y, self.Zs, self.As, self.sizes,
            self.hidden, self.loss, self.weight_decay, self.capacity,
        )  # fmt: skip
        return dtheta

    def hidden_logits(self, theta, A0):
        """Every hidden Z[l], flattened: to check the batch sits away from the ReLU kink."""
        network.forward(
            self.Zs, self.As, theta, A0, self.sizes, self.hidden, self.loss, self.capacity
        )
        return self.Zs[: sum(self.sizes[1:-1]) * self.capacity]


class TiledNetwork(NumbaNetwork):
    """The tiled path's loss and dθ, read from one step of tile_plumbing.train_epoch on the M
    samples: it returns m·J measured before the step, and plain gradient descent with α = 1
    leaves θ − dθ."""

    def step(self, theta, A0, Y, learning_rate):
        stepped = theta.copy()
        X, labels = A0.T.copy(), Y.argmax(axis=0)
        total, _, _ = tile_plumbing.train_epoch(
            stepped, np.zeros_like(theta), np.zeros_like(theta), X, labels, np.arange(M),
            self.sizes, self.hidden, self.loss, SGD, learning_rate, self.weight_decay,
            0.9, 0.999, 1e-8, 0, M,
        )  # fmt: skip
        return total / M, theta - stepped

    def loss_value(self, theta, A0, Y):
        return self.step(theta, A0, Y, 0.0)[0]

    def gradient(self, theta, A0, Y):
        return self.step(theta, A0, Y, 1.0)[1]


class OracleNetwork:
    """The same three calls, on fastnn/oracle.py."""

    def __init__(self, sizes, hidden, loss, weight_decay, m):
        self.sizes, self.hidden, self.loss, self.weight_decay = sizes, hidden, loss, weight_decay

    def loss_value(self, theta, A0, Y):
        Zs, As = oracle.forward(theta, A0, self.sizes, self.hidden, self.loss)
        return oracle.batch_loss(Zs, As, theta, Y, self.sizes, self.loss, self.weight_decay)

    def gradient(self, theta, A0, Y):
        Zs, As = oracle.forward(theta, A0, self.sizes, self.hidden, self.loss)
        return oracle.backward(
            theta, Y, Zs, As, self.sizes, self.hidden, self.loss, self.weight_decay
        )

    def hidden_logits(self, theta, A0):
        Zs, _ = oracle.forward(theta, A0, self.sizes, self.hidden, self.loss)
        return np.concatenate([Z.ravel() for Z in Zs[:-1]])


IMPLEMENTATIONS = {"numba": NumbaNetwork, "tiled": TiledNetwork, "numpy": OracleNetwork}


@pytest.fixture(autouse=True)
def one_numba_thread():
    """Finite differences call the tiny network hundreds of times; starting the parallel
    kernels' threads costs milliseconds a call on a busy machine and changes no bit of the result
    (test_kernels.py checks that one thread and many agree), so these tests run on one."""
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(threads)


def finite_difference_gradient(loss_value, theta: np.ndarray) -> np.ndarray:
    """Central differences, one parameter at a time."""
    gradient = np.empty_like(theta)
    for i in range(theta.size):
        shifted = theta.copy()
        shifted[i] = theta[i] + EPSILON
        above = loss_value(shifted)
        shifted[i] = theta[i] - EPSILON
        below = loss_value(shifted)
        gradient[i] = (above - below) / (2 * EPSILON)
    return gradient


def problem(sizes, seed: int = 0):
    """θ, a batch of M random inputs, and one-hot labels that use every class."""
    rng = np.random.default_rng(seed)
    p = sum(n_out * n_in + n_out for n_in, n_out in itertools.pairwise(sizes))
    theta = rng.normal(0.0, 0.8, p)
    A0 = rng.uniform(-1, 1, (sizes[0], M))
    labels = np.arange(M) % sizes[-1]
    Y = np.eye(sizes[-1])[labels].T.copy()
    return theta, A0, Y


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("weight_decay", [0.0, 0.05], ids=["no-l2", "l2"])
@pytest.mark.parametrize("depth", SIZES)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_backward_matches_finite_differences(hidden, loss, depth, weight_decay, implementation):
    sizes = SIZES[depth]
    theta, A0, Y = problem(sizes)
    net = IMPLEMENTATIONS[implementation](sizes, HIDDEN[hidden], LOSSES[loss], weight_decay, M)
    # ReLU has no derivative at 0: the differences would straddle the kink if some hidden Z
    # came within about ε of it. This seed keeps every hidden Z well away; say so if it changes.
    assert np.min(np.abs(net.hidden_logits(theta, A0))) > 1e-3
    analytic = net.gradient(theta, A0, Y)
    numeric = finite_difference_gradient(lambda t: net.loss_value(t, A0, Y), theta)
    assert np.max(np.abs(numeric)) > 1e-3, "a vanishing gradient would check nothing"
    assert_close(
        analytic, numeric, rtol=FD_RTOL, atol=FD_ATOL, what="dθ against finite differences"
    )


def test_finite_differences_would_catch_a_wrong_gradient():
    """The check is not vacuous: dropping the (12) L2 term from dθ must fail it."""
    sizes = SIZES["one-hidden"]
    theta, A0, Y = problem(sizes)
    with_l2 = NumbaNetwork(sizes, TANH, CROSS_ENTROPY, 0.05, M)
    without_l2 = NumbaNetwork(sizes, TANH, CROSS_ENTROPY, 0.0, M)
    numeric = finite_difference_gradient(lambda t: with_l2.loss_value(t, A0, Y), theta)
    with pytest.raises(AssertionError, match="differ beyond"):
        assert_close(without_l2.gradient(theta, A0, Y), numeric, rtol=FD_RTOL, atol=FD_ATOL)


# ---- (6): the fused softmax + cross-entropy gradient ----------------------------------------


def softmax_columns(Z: np.ndarray) -> np.ndarray:
    A = np.empty_like(Z)
    output.softmax_forward(A, Z)
    return A


@pytest.mark.parametrize(("k", "m"), [(3, 5), (10, 1), (7, 4)])
def test_fused_softmax_cross_entropy_gradient_equals_the_unfused_chain(k, m):
    """dZ = A − Y against the chain it replaces: dJ/dA = −Y / (m·A) through the softmax
    Jacobian ∂A[i]/∂Z[j] = A[i]·(δ_ij − A[j]), column by column; kernels give per-sample
    gradients (no 1/m), so the chain is multiplied by m."""
    rng = np.random.default_rng(k * 100 + m)
    Z = 2.0 * rng.standard_normal((k, m))
    Y = np.eye(k)[rng.integers(0, k, m)].T.copy()
    A = softmax_columns(Z)
    fused = np.empty_like(Z)
    output.output_error(fused, A, Y)

    dA = -Y / (m * A)  # ∂J/∂A of J = −(1/m) Σ Y log A
    chain = np.empty_like(Z)
    for s in range(m):
        jacobian = np.diag(A[:, s]) - np.outer(A[:, s], A[:, s])  # symmetric
        chain[:, s] = jacobian @ dA[:, s]
    assert_close(fused, m * chain, rtol=1e-10, atol=1e-15, what="A − Y against Jacobian·dJ/dA")

    def loss_of_Z(flat):
        return output.cross_entropy_loss(flat.reshape(k, m), Y)

    numeric = finite_difference_gradient(loss_of_Z, Z.ravel().copy()).reshape(k, m)
    assert_close(fused, m * numeric, rtol=FD_RTOL, atol=FD_ATOL, what="A − Y against FD of J(Z)")


@pytest.mark.parametrize(("k", "m"), [(3, 5), (10, 1)])
def test_sigmoid_squared_error_gradient_equals_finite_differences(k, m):
    """(7): dZ = (A − Y) ⊙ A ⊙ (1 − A) is m·∂J/∂Z of J = (1/2m) Σ (σ(Z) − Y)²."""
    rng = np.random.default_rng(k + m)
    Z = 2.0 * rng.standard_normal((k, m))
    Y = np.eye(k)[rng.integers(0, k, m)].T.copy()
    A, dA, dZ = np.empty_like(Z), np.empty_like(Z), np.empty_like(Z)
    activations.sigmoid_forward(A, Z)
    output.output_error(dA, A, Y)
    activations.sigmoid_backward(dZ, dA, A)

    def loss_of_Z(flat):
        A_shifted = np.empty((k, m))
        activations.sigmoid_forward(A_shifted, flat.reshape(k, m))
        return output.mse_loss(A_shifted, Y)

    numeric = finite_difference_gradient(loss_of_Z, Z.ravel().copy()).reshape(k, m)
    assert_close(dZ, m * numeric, rtol=FD_RTOL, atol=FD_ATOL, what="(A − Y)·A(1 − A) against FD")
