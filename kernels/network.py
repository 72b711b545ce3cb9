"""A whole network, any depth, built from the per-equation kernels: forward, backward, a step.

This is the reference path: each equation is one call of its kernel, layer by layer, exactly
as the math reads. `train_epoch` runs the epoch's mini-batch loop inside compiled code, so no
Python runs between steps.

Sizes: L layers; sizes[0] = n_in (784), sizes[l] = units of layer l, sizes[L] = k classes.
Parameters live end to end in one flat vector θ: for l = 1..L, W[l] (sizes[l], sizes[l-1])
then b[l] (sizes[l],). Activations live in flat buffers with room for `capacity` samples a
layer; a layer's block is viewed as (sizes[l], m) for a batch of m ≤ capacity samples.

    forward, l = 1..L:   (1) Z[l] = W[l]·A[l−1] + b[l]
                         (2) A[l] = g(Z[l]) for l < L;  (3) softmax or sigmoid for l = L
    loss:                (4) cross-entropy or (5) squared error, plus (12) the L2 term
    backward, l = L..1:  (6) or (7) at the top, (11) below, (8) (9) every layer, (10) l > 1
    update:              (13) gradient descent, (14) momentum or (15) Adam
"""

import numpy as np

from .activations import (
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)
from .codes import CROSS_ENTROPY, MOMENTUM, RELU, SGD, SIGMOID
from .dense import dense_backward, dense_backward_input, dense_forward
from .jit import inlined_kernel, kernel
from .optimizers import adam_update, l2_backward, l2_penalty, momentum_update, sgd_update
from .output import cross_entropy_loss, mse_loss, output_error, softmax_forward


@kernel
def weights_view(theta, sizes, layer):
    """W[layer] (sizes[layer], sizes[layer − 1]) as a view into θ; layer counts from 1."""
    offset = 0
    for l in range(1, layer):
        offset += sizes[l] * sizes[l - 1] + sizes[l]
    n_out, n_in = sizes[layer], sizes[layer - 1]
    return theta[offset : offset + n_out * n_in].reshape((n_out, n_in))


@kernel
def bias_view(theta, sizes, layer):
    """b[layer] (sizes[layer],) as a view into θ; layer counts from 1."""
    offset = 0
    for l in range(1, layer + 1):
        offset += sizes[l] * sizes[l - 1] + sizes[l]
    return theta[offset - sizes[layer] : offset]


@kernel
def layer_view(buffer, sizes, layer, capacity, m):
    """A layer's (sizes[layer], m) block of an activation buffer; layer counts from 1."""
    offset = 0
    for l in range(1, layer):
        offset += sizes[l] * capacity
    return buffer[offset : offset + sizes[layer] * m].reshape((sizes[layer], m))


@kernel
def layers_buffer(theta, sizes, capacity):
    """A flat buffer with room for `capacity` samples of every layer l = 1..L, θ's dtype."""
    units = 0
    for l in range(1, sizes.size):
        units += sizes[l]
    return np.empty(units * capacity, theta.dtype)


@kernel
def hidden_forward(A, Z, hidden):
    """(2) A = g(Z) for the hidden activation named by its code."""
    if hidden == RELU:
        relu_forward(A, Z)
    elif hidden == SIGMOID:
        sigmoid_forward(A, Z)
    else:
        tanh_forward(A, Z)


@kernel
def hidden_backward(dZ, dA, Z, A, hidden):
    """(11) dZ = dA ⊙ g'(Z) for the hidden activation named by its code."""
    if hidden == RELU:
        relu_backward(dZ, dA, Z)
    elif hidden == SIGMOID:
        sigmoid_backward(dZ, dA, A)
    else:
        tanh_backward(dZ, dA, A)


@kernel
def forward(Zs, As, theta, A0, sizes, hidden, loss, capacity):
    """(1)-(3) for every layer: fills Z[l] and A[l] of the m = A0.shape[1] samples."""
    # theta (p,), A0 (sizes[0], m) -> Zs, As: flat buffers of sizes[l] × capacity per layer
    n_layers = sizes.size - 1
    m = A0.shape[1]
    A_prev = A0
    for l in range(1, n_layers + 1):
        Z = layer_view(Zs, sizes, l, capacity, m)
        A = layer_view(As, sizes, l, capacity, m)
        dense_forward(Z, weights_view(theta, sizes, l), A_prev, bias_view(theta, sizes, l))
        if l < n_layers:
            hidden_forward(A, Z, hidden)
        elif loss == CROSS_ENTROPY:
            softmax_forward(A, Z)
        else:
            sigmoid_forward(A, Z)
        A_prev = A


@kernel
def batch_loss(Zs, As, theta, Y, sizes, loss, weight_decay, capacity):
    """(4) or (5) on the batch forward() just computed, plus the (12) L2 term."""
    # Y (k, m) one-hot -> scalar
    n_layers = sizes.size - 1
    m = Y.shape[1]
    if loss == CROSS_ENTROPY:
        value = cross_entropy_loss(layer_view(Zs, sizes, n_layers, capacity, m), Y)
    else:
        value = mse_loss(layer_view(As, sizes, n_layers, capacity, m), Y)
    if weight_decay != 0:
        for l in range(1, n_layers + 1):
            value += l2_penalty(weights_view(theta, sizes, l), weight_decay)
    return value


@kernel
def backward(dtheta, dZs, dAs, theta, A0, Y, Zs, As, sizes, hidden, loss, weight_decay, capacity):
    """(6)-(12) for every layer, top down: fills dθ for the batch forward() just computed."""
    # theta, dtheta (p,), A0 (sizes[0], m), Y (k, m); dZs, dAs: scratch shaped like Zs, As
    n_layers = sizes.size - 1
    m = A0.shape[1]
    L = n_layers
    A_top = layer_view(As, sizes, L, capacity, m)
    dZ_top = layer_view(dZs, sizes, L, capacity, m)
    if loss == CROSS_ENTROPY:
        output_error(dZ_top, A_top, Y)  # (6) dZ = A − Y
    else:
        dA_top = layer_view(dAs, sizes, L, capacity, m)
        output_error(dA_top, A_top, Y)  # (7) dA = A − Y
        sigmoid_backward(dZ_top, dA_top, A_top)  # (7) dZ = dA ⊙ A ⊙ (1 − A)
    for l in range(L, 0, -1):
        dZ = layer_view(dZs, sizes, l, capacity, m)
        A_prev = A0 if l == 1 else layer_view(As, sizes, l - 1, capacity, m)
        dW = weights_view(dtheta, sizes, l)
        dense_backward(dW, bias_view(dtheta, sizes, l), dZ, A_prev)  # (8), (9)
        if weight_decay != 0:
            l2_backward(dW.ravel(), weights_view(theta, sizes, l).ravel(), weight_decay)  # (12)
        if l > 1:
            dA_prev = layer_view(dAs, sizes, l - 1, capacity, m)
            dense_backward_input(dA_prev, dZ, weights_view(theta, sizes, l))  # (10)
            Z_prev = layer_view(Zs, sizes, l - 1, capacity, m)
            dZ_prev = layer_view(dZs, sizes, l - 1, capacity, m)
            hidden_backward(dZ_prev, dA_prev, Z_prev, A_prev, hidden)  # (11)


@inlined_kernel
def update(theta, state1, state2, dtheta, optimizer, learning_rate, beta1, beta2, eps, step):
    """(13), (14) or (15) on the whole flat θ."""
    if optimizer == SGD:
        sgd_update(theta, dtheta, learning_rate)
    elif optimizer == MOMENTUM:
        momentum_update(theta, state1, dtheta, learning_rate, beta1)
    else:
        adam_update(theta, state1, state2, dtheta, learning_rate, beta1, beta2, eps, step)


@kernel
def gather_batch(A0, Y, X, labels, order, start):
    """A0[:, j] = X[order[start + j], :] and Y[:, j] = one-hot(labels[order[start + j]]).

    X holds samples as rows (N, n_in); the math wants them as columns.
    """
    # X (N, n_in), labels (N,), order (N,) -> A0 (n_in, m), Y (k, m)
    n_in, m = A0.shape
    k = Y.shape[0]
    for j in range(m):
        sample = order[start + j]
        row = X[sample]
        for i in range(n_in):
            A0[i, j] = row[i]
        for c in range(k):
            Y[c, j] = 0
        Y[labels[sample], j] = 1


@kernel
def count_correct(A_top, labels, order, start):
    """How many samples' largest output is their label."""
    # A_top (k, m) -> int
    k, m = A_top.shape
    correct = 0
    for j in range(m):
        best = 0
        for c in range(1, k):
            if A_top[c, j] > A_top[best, j]:
                best = c
        if best == labels[order[start + j]]:
            correct += 1
    return correct


@kernel
def train_epoch(
    theta,
    state1,
    state2,
    X,
    labels,
    order,
    sizes,
    hidden,
    loss,
    optimizer,
    learning_rate,
    weight_decay,
    beta1,
    beta2,
    eps,
    step,
    batch_size,
):
    """One epoch of mini-batch gradient descent over the samples in `order`.

    Returns (summed batch loss × batch size, correct predictions, steps taken): the loss and
    accuracy of each batch are measured on its forward pass, before its update.
    """
    # theta, state1, state2 (p,); X (N, n_in); labels (N,); order (N,) a permutation
    n_samples = order.size
    n_layers = sizes.size - 1
    capacity = min(batch_size, n_samples)
    Zs, As = layers_buffer(theta, sizes, capacity), layers_buffer(theta, sizes, capacity)
    dZs, dAs = layers_buffer(theta, sizes, capacity), layers_buffer(theta, sizes, capacity)
    dtheta = np.empty_like(theta)
    A0_buffer = np.empty(sizes[0] * capacity, theta.dtype)
    Y_buffer = np.empty(sizes[n_layers] * capacity, theta.dtype)
    total_loss = 0.0
    correct = 0
    steps = 0
    for start in range(0, n_samples, capacity):
        m = min(capacity, n_samples - start)
        A0 = A0_buffer[: sizes[0] * m].reshape((sizes[0], m))
        Y = Y_buffer[: sizes[n_layers] * m].reshape((sizes[n_layers], m))
        gather_batch(A0, Y, X, labels, order, start)
        forward(Zs, As, theta, A0, sizes, hidden, loss, capacity)
        total_loss += m * batch_loss(Zs, As, theta, Y, sizes, loss, weight_decay, capacity)
        A_top = layer_view(As, sizes, n_layers, capacity, m)
        correct += count_correct(A_top, labels, order, start)
        backward(
            dtheta, dZs, dAs, theta, A0, Y, Zs, As, sizes, hidden, loss, weight_decay, capacity
        )
        steps += 1
        t = step + steps
        update(theta, state1, state2, dtheta, optimizer, learning_rate, beta1, beta2, eps, t)
    return total_loss, correct, steps


@kernel
def predict(outputs, theta, X, sizes, hidden, loss, chunk):
    """The network's output A[L] for every row of X, `chunk` samples at a time."""
    # X (N, n_in) -> outputs (N, k): the top layer's A, samples as rows again
    n_samples = X.shape[0]
    n_layers = sizes.size - 1
    k = sizes[n_layers]
    capacity = min(chunk, n_samples)
    Zs, As = layers_buffer(theta, sizes, capacity), layers_buffer(theta, sizes, capacity)
    A0_buffer = np.empty(sizes[0] * capacity, theta.dtype)
    Y_unused = np.empty(k * capacity, theta.dtype)
    labels_unused = np.zeros(n_samples, np.int64)
    order = np.arange(n_samples)
    for start in range(0, n_samples, capacity):
        m = min(capacity, n_samples - start)
        A0 = A0_buffer[: sizes[0] * m].reshape((sizes[0], m))
        gather_batch(A0, Y_unused[: k * m].reshape((k, m)), X, labels_unused, order, start)
        forward(Zs, As, theta, A0, sizes, hidden, loss, capacity)
        A_top = layer_view(As, sizes, n_layers, capacity, m)
        for j in range(m):
            for c in range(k):
                outputs[start + j, c] = A_top[c, j]
