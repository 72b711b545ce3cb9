"""The NumPy oracle: every equation of kernels/ vectorised, one line each, in the same notation.

It is the reference the loop kernels are tested against, and a complete backend of its own
(`--backend numpy`): train_epoch and predict have the same signatures as the compiled ones in
kernels/network.py, and step through the samples in the same order.

Samples are columns: W (n_out, n_in), A (n_in, m), Z (n_out, m), Y (k, m) one-hot.
"""

import numpy as np

from .kernels.codes import ADAM, CROSS_ENTROPY, MOMENTUM, RELU, SGD, SIGMOID
from .model import layer_parameters

Array = np.ndarray


def dense_forward(W: Array, A: Array, b: Array) -> Array:
    return W @ A + b[:, None]  # (1)


def relu_forward(Z: Array) -> Array:
    return np.maximum(Z, 0)  # (2)


def sigmoid_forward(Z: Array) -> Array:
    return 1 / (1 + np.exp(-Z))  # (2)


def tanh_forward(Z: Array) -> Array:
    return np.tanh(Z)  # (2)


def softmax_forward(Z: Array) -> Array:
    E = np.exp(Z - Z.max(axis=0))  # (3), shifted by each column's maximum
    return E / E.sum(axis=0)  # (3)


def cross_entropy_loss(Z: Array, Y: Array) -> float:
    shifted = Z - Z.max(axis=0)
    log_A = shifted - np.log(np.exp(shifted).sum(axis=0))  # log softmax(Z), finite everywhere
    return -np.sum(Y * log_A) / Z.shape[1]  # (4)


def mse_loss(A: Array, Y: Array) -> float:
    return np.sum((A - Y) ** 2) / (2 * A.shape[1])  # (5)


def output_error(A: Array, Y: Array) -> Array:
    return A - Y  # (6) dZ for softmax + cross-entropy, (7) dA for squared error


def dense_backward(dZ: Array, A_prev: Array) -> tuple[Array, Array]:
    return dZ @ A_prev.T / dZ.shape[1], dZ.sum(axis=1) / dZ.shape[1]  # (8), (9)


def dense_backward_input(dZ: Array, W: Array) -> Array:
    return W.T @ dZ  # (10)


def relu_backward(dA: Array, Z: Array) -> Array:
    return dA * (Z > 0)  # (11)


def sigmoid_backward(dA: Array, A: Array) -> Array:
    return dA * A * (1 - A)  # (7), (11)


def tanh_backward(dA: Array, A: Array) -> Array:
    return dA * (1 - A**2)  # (11)


def l2_penalty(W: Array, weight_decay: float) -> float:
    return 0.5 * weight_decay * np.sum(W * W)  # (12)


def sgd_update(theta: Array, dtheta: Array, learning_rate: float) -> None:
    theta -= learning_rate * dtheta  # (13)


def momentum_update(
    theta: Array, velocity: Array, dtheta: Array, learning_rate: float, beta: float
) -> None:
    velocity[:] = beta * velocity + dtheta  # (14)
    theta -= learning_rate * velocity  # (14)


def adam_update(
    theta: Array,
    moment1: Array,
    moment2: Array,
    dtheta: Array,
    learning_rate: float,
    beta1: float,
    beta2: float,
    epsilon: float,
    step: int,
) -> None:
    moment1[:] = beta1 * moment1 + (1 - beta1) * dtheta  # (15)
    moment2[:] = beta2 * moment2 + (1 - beta2) * dtheta**2  # (15)
    m_hat, v_hat = moment1 / (1 - beta1**step), moment2 / (1 - beta2**step)  # (15)
    theta -= learning_rate * m_hat / (np.sqrt(v_hat) + epsilon)  # (15)


# ---- the whole network, same layout and signatures as kernels/network.py -------------------


def hidden_forward(Z: Array, hidden: int) -> Array:
    return {RELU: relu_forward, SIGMOID: sigmoid_forward}.get(hidden, tanh_forward)(Z)


def hidden_backward(dA: Array, Z: Array, A: Array, hidden: int) -> Array:
    if hidden == RELU:
        return relu_backward(dA, Z)
    return sigmoid_backward(dA, A) if hidden == SIGMOID else tanh_backward(dA, A)


def forward(
    theta: Array, A0: Array, sizes: Array, hidden: int, loss: int
) -> tuple[list[Array], list[Array]]:
    """(1)-(3) for every layer: the lists Z[1..L] and A[0..L]."""
    Zs, As = [], [A0]
    layers = layer_parameters(theta, sizes)
    for l, (W, b) in enumerate(layers, start=1):
        Zs.append(dense_forward(W, As[-1], b))
        if l < len(layers):
            As.append(hidden_forward(Zs[-1], hidden))
        else:
            As.append(softmax_forward(Zs[-1]) if loss == CROSS_ENTROPY else sigmoid_forward(Zs[-1]))
    return Zs, As


def batch_loss(
    Zs: list[Array],
    As: list[Array],
    theta: Array,
    Y: Array,
    sizes: Array,
    loss: int,
    weight_decay: float,
) -> float:
    """(4) or (5), plus (12)."""
    value = cross_entropy_loss(Zs[-1], Y) if loss == CROSS_ENTROPY else mse_loss(As[-1], Y)
    if weight_decay != 0:
        value += sum(l2_penalty(W, weight_decay) for W, _ in layer_parameters(theta, sizes))
    return value


def backward(
    theta: Array,
    Y: Array,
    Zs: list[Array],
    As: list[Array],
    sizes: Array,
    hidden: int,
    loss: int,
    weight_decay: float,
) -> Array:
    """(6)-(12) for every layer, top down: the flat dθ."""
    dtheta = np.empty_like(theta)
    layers, gradients = layer_parameters(theta, sizes), layer_parameters(dtheta, sizes)
    if loss == CROSS_ENTROPY:
        dZ = output_error(As[-1], Y)  # (6)
    else:
        dZ = sigmoid_backward(output_error(As[-1], Y), As[-1])  # (7)
    for l in range(len(layers), 0, -1):
        (W, _), (dW, db) = layers[l - 1], gradients[l - 1]
        dW[:], db[:] = dense_backward(dZ, As[l - 1])
        if weight_decay != 0:
            dW += weight_decay * W  # (12)
        if l > 1:
            dZ = hidden_backward(dense_backward_input(dZ, W), Zs[l - 2], As[l - 1], hidden)
    return dtheta


def update(
    theta: Array,
    state1: Array,
    state2: Array,
    dtheta: Array,
    optimizer: int,
    learning_rate: float,
    beta1: float,
    beta2: float,
    eps: float,
    step: int,
) -> None:
    if optimizer == SGD:
        sgd_update(theta, dtheta, learning_rate)
    elif optimizer == MOMENTUM:
        momentum_update(theta, state1, dtheta, learning_rate, beta1)
    elif optimizer == ADAM:
        adam_update(theta, state1, state2, dtheta, learning_rate, beta1, beta2, eps, step)


def train_epoch(
    theta: Array,
    state1: Array,
    state2: Array,
    X: Array,
    labels: Array,
    order: Array,
    sizes: Array,
    hidden: int,
    loss: int,
    optimizer: int,
    learning_rate: float,
    weight_decay: float,
    beta1: float,
    beta2: float,
    eps: float,
    step: int,
    batch_size: int,
) -> tuple[float, int, int]:
    """kernels.network.train_epoch, vectorised: same batches, same order, same returns."""
    n_samples = order.size
    capacity = min(batch_size, n_samples)
    total_loss, correct, steps = 0.0, 0, 0
    for start in range(0, n_samples, capacity):
        batch = order[start : start + capacity]
        A0 = X[batch].T
        Y = np.eye(sizes[-1], dtype=X.dtype)[labels[batch]].T
        Zs, As = forward(theta, A0, sizes, hidden, loss)
        total_loss += A0.shape[1] * batch_loss(Zs, As, theta, Y, sizes, loss, weight_decay)
        correct += int(np.sum(As[-1].argmax(axis=0) == labels[batch]))
        dtheta = backward(theta, Y, Zs, As, sizes, hidden, loss, weight_decay)
        steps += 1
        update(
            theta, state1, state2, dtheta, optimizer, learning_rate, beta1, beta2, eps, step + steps
        )
    return total_loss, correct, steps


def predict(
    outputs: Array, theta: Array, X: Array, sizes: Array, hidden: int, loss: int, chunk: int
) -> None:
    """kernels.network.predict, vectorised."""
    for start in range(0, X.shape[0], chunk):
        _, As = forward(theta, X[start : start + chunk].T, sizes, hidden, loss)
        outputs[start : start + chunk] = As[-1].T
