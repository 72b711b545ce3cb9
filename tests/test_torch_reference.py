"""fastnn's gradients against an independent framework's: PyTorch autograd, float64.

The same network (same W and b values), the same batch of real MNIST digits (random pixels when
$FASTNN_DATA is unset), the loss written from its definition with torch's own operations:

    cross-entropy   J = mean over samples of −log softmax(Z)[label]  (torch's cross_entropy)
    squared error   J = (1/2m) Σ (σ(Z) − Y)², a sigmoid output layer
    L2              J += (λ/2) Σ W², over weights only, never biases

Every gradient tensor, dW[l] and db[l] of every layer, must match kernels.network.backward to
1e-10 relative, with an absolute floor of 1e-10 × the tensor's largest entry: the two sum the
same products in different orders, so an entry that cancels to near 0 keeps only that floor's
worth of agreement. torch is not a dependency of fastnn: without it these tests are skipped.
"""

from __future__ import annotations

import numpy as np
import pytest
from compare import assert_close
from data_helpers import mnist_dir

from fastnn.data import load_mnist_dir
from fastnn.kernels import network
from fastnn.model import ACTIVATIONS, LOSSES, init_network, layer_parameters

torch = pytest.importorskip(
    "torch", reason="PyTorch is the independent reference; install torch to run these tests"
)

M = 33  # samples in the batch: odd on purpose
RTOL = 1e-10
SIZES = {"one-hidden": (784, 17, 10), "two-hidden": (784, 13, 7, 10)}


@pytest.fixture(scope="module")
def batch() -> tuple[np.ndarray, np.ndarray]:
    """A0 (784, M) pixels in [0, 1] and their labels (M,): real digits when MNIST is available.

    mnist_dir() skips when $FASTNN_DATA is unset; here that falls back to random pixels, since
    the gradients are checked on any input. With FASTNN_REQUIRE_DATA=1 it fails instead.
    """
    try:
        folder = mnist_dir()
    except pytest.skip.Exception:
        rng = np.random.default_rng(0)
        return rng.uniform(0, 1, (784, M)), rng.integers(0, 10, M)
    dataset = load_mnist_dir(folder)
    images, labels = dataset.train_images[1000 : 1000 + M], dataset.train_labels[1000 : 1000 + M]
    return np.ascontiguousarray(images.T / 255.0), labels.astype(np.int64)


def parameters(sizes, activation, loss) -> np.ndarray:
    """fastnn's own initialisation, with biases made non-zero so db is tested for real."""
    rng = np.random.default_rng(3)
    net = init_network(sizes, activation, loss, dtype="float64", rng=rng)
    for _, b in net.parameters():
        b[:] = rng.normal(0.0, 0.1, b.shape)
    return net.theta


def fastnn_loss_and_gradient(theta, A0, labels, sizes, activation, loss, weight_decay):
    """batch_loss and backward of kernels/network.py on the batch."""
    sizes_array = np.array(sizes, dtype=np.int64)
    hidden, loss_code = ACTIVATIONS[activation], LOSSES[loss]
    Y = np.eye(sizes[-1])[labels].T.copy()
    units = sum(sizes[1:]) * M
    Zs, As, dZs, dAs = (np.full(units, np.nan) for _ in range(4))
    dtheta = np.full_like(theta, np.nan)
    network.forward(Zs, As, theta, A0, sizes_array, hidden, loss_code, M)
    value = network.batch_loss(Zs, As, theta, Y, sizes_array, loss_code, weight_decay, M)
    network.backward(
        dtheta, dZs, dAs, theta, A0, Y, Zs, As, sizes_array, hidden, loss_code, weight_decay, M
    )
    return value, dtheta


def torch_loss_and_gradients(theta, A0, labels, sizes, activation, loss, weight_decay):
    """The same network written in torch; autograd gives [(dW1, db1), ...]."""
    layers = [
        (
            torch.tensor(W, dtype=torch.float64, requires_grad=True),
            torch.tensor(b, dtype=torch.float64, requires_grad=True),
        )
        for W, b in layer_parameters(theta, sizes)
    ]
    g = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}[activation]
    A = torch.tensor(A0, dtype=torch.float64)
    for l, (W, b) in enumerate(layers, start=1):
        Z = W @ A + b[:, None]
        A = g(Z) if l < len(layers) else Z
    target = torch.tensor(labels, dtype=torch.int64)
    if loss == "cross-entropy":
        J = torch.nn.functional.cross_entropy(Z.T, target)  # mean over the samples
    else:
        Y = torch.nn.functional.one_hot(target, sizes[-1]).T.to(torch.float64)
        J = ((torch.sigmoid(Z) - Y) ** 2).sum() / (2 * M)
    if weight_decay:
        J = J + weight_decay / 2 * sum((W**2).sum() for W, _ in layers)
    J.backward()
    return J.item(), [(W.grad.numpy(), b.grad.numpy()) for W, b in layers]


@pytest.mark.parametrize("weight_decay", [0.0, 0.01], ids=["no-l2", "l2"])
@pytest.mark.parametrize("depth", SIZES)
@pytest.mark.parametrize("loss", ["cross-entropy", "mse"])
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_gradients_match_torch_autograd(batch, activation, loss, depth, weight_decay):
    A0, labels = batch
    sizes = SIZES[depth]
    theta = parameters(sizes, activation, loss)
    value, dtheta = fastnn_loss_and_gradient(
        theta, A0, labels, sizes, activation, loss, weight_decay
    )
    expected_value, expected_gradients = torch_loss_and_gradients(
        theta, A0, labels, sizes, activation, loss, weight_decay
    )
    assert_close(np.float64(value), np.float64(expected_value), rtol=RTOL, what="J")
    gradients = layer_parameters(dtheta, sizes)
    for l, ((dW, db), (expected_dW, expected_db)) in enumerate(
        zip(gradients, expected_gradients, strict=True), start=1
    ):
        for name, actual, expected in ((f"dW{l}", dW, expected_dW), (f"db{l}", db, expected_db)):
            assert np.max(np.abs(expected)) > 0, f"{name} is all zero: nothing to compare"
            floor = RTOL * float(np.max(np.abs(expected)))
            assert_close(actual, expected, rtol=RTOL, atol=floor, what=name)
