"""PyTorch CPU counterparts of the kernels and of an epoch, for the benchmarks to compare with.

Not a dependency of fastnn: the benchmarks import this module only when torch is installed.

Kernels: the oracle's names, arguments and returns (fastnn/oracle.py), on tensors; samples are
columns, as there. Optimizer updates change their tensors in place, as torch.optim does inside.

Epochs, two ways, over the same batches in the same order as kernels.network.train_epoch:
  nn_train_epoch        nn.Linear layers, autograd, torch.optim (what a PyTorch user writes)
  tensors_train_epoch   hand-written tensor math with a manual backward pass; the same
                        signature as train_epoch, updating the caller's numpy θ in place
Both use samples as rows, (m, 784), the layout PyTorch's layers expect.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F
import workloads
from torch import nn

from fastnn.kernels.codes import ADAM, CROSS_ENTROPY, MOMENTUM, RELU, SGD, SIGMOID, TANH

torch.set_num_threads(workloads.bench_threads())


# ---- kernels, with the oracle's signatures ------------------------------------------------


def dense_forward(W, A, b):
    return torch.addmm(b[:, None], W, A)  # (1)


def dense_backward(dZ, A_prev):
    m = dZ.shape[1]
    return dZ @ A_prev.T / m, dZ.sum(dim=1) / m  # (8), (9)


def dense_backward_input(dZ, W):
    return W.T @ dZ  # (10)


def relu_forward(Z):
    return torch.relu(Z)  # (2)


def relu_backward(dA, Z):
    return dA * (Z > 0)  # (11)


def sigmoid_forward(Z):
    return torch.sigmoid(Z)  # (2)


def sigmoid_backward(dA, A):
    return dA * A * (1 - A)  # (7), (11)


def tanh_forward(Z):
    return torch.tanh(Z)  # (2)


def tanh_backward(dA, A):
    return dA * (1 - A * A)  # (11)


def softmax_forward(Z):
    return torch.softmax(Z, dim=0)  # (3)


def cross_entropy_loss(Z, Y):
    return F.cross_entropy(Z.T, Y.T)  # (4): Y as class probabilities, mean over samples


def mse_loss(A, Y):
    return F.mse_loss(A, Y, reduction="sum") / (2 * A.shape[1])  # (5)


def output_error(A, Y):
    return A - Y  # (6), (7)


def sgd_update(theta, dtheta, learning_rate):
    theta.add_(dtheta, alpha=-learning_rate)  # (13)


def momentum_update(theta, velocity, dtheta, learning_rate, beta):
    velocity.mul_(beta).add_(dtheta)  # (14), as torch.optim.SGD(momentum=β, dampening=0)
    theta.add_(velocity, alpha=-learning_rate)  # (14)


def adam_update(theta, moment1, moment2, dtheta, learning_rate, beta1, beta2, epsilon, step):
    """(15), written as torch.optim.Adam's single-tensor implementation writes it."""
    moment1.lerp_(dtheta, 1 - beta1)
    moment2.mul_(beta2).addcmul_(dtheta, dtheta, value=1 - beta2)
    correction1, correction2 = 1 - beta1**step, 1 - beta2**step
    denominator = (moment2.sqrt() / math.sqrt(correction2)).add_(epsilon)
    theta.addcdiv_(moment1, denominator, value=-learning_rate / correction1)


# ---- an epoch with nn.Linear, autograd and torch.optim ---------------------------------------

HIDDEN_MODULES = {RELU: nn.ReLU, SIGMOID: nn.Sigmoid, TANH: nn.Tanh}


def layer_views(theta: torch.Tensor, sizes) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """[(W1, b1), ...] as views into the flat θ, laid out as kernels/network.py says."""
    views, offset = [], 0
    for n_in, n_out in itertools.pairwise(sizes):
        n_in, n_out = int(n_in), int(n_out)
        W = theta[offset : offset + n_out * n_in].view(n_out, n_in)
        offset += n_out * n_in
        views.append((W, theta[offset : offset + n_out]))
        offset += n_out
    return views


def nn_model(theta: np.ndarray, sizes, hidden: int) -> nn.Sequential:
    """Linear layers holding a copy of θ; nn.Linear's weight is (n_out, n_in), as W is."""
    layers = []
    for W, b in layer_views(torch.from_numpy(theta), sizes):
        linear = nn.Linear(W.shape[1], W.shape[0], dtype=W.dtype)
        with torch.no_grad():
            linear.weight.copy_(W)
            linear.bias.copy_(b)
        layers += [linear, HIDDEN_MODULES[hidden]()]
    return nn.Sequential(*layers[:-1])


def nn_optimizer(model, optimizer, learning_rate, weight_decay, beta1, beta2, eps):
    """torch.optim for the optimizer code; L2 (12) on the weights only, as fastnn applies it."""
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    biases = [p for name, p in model.named_parameters() if name.endswith("bias")]
    groups = [{"params": weights, "weight_decay": weight_decay}, {"params": biases}]
    if optimizer == SGD:
        return torch.optim.SGD(groups, lr=learning_rate)
    if optimizer == MOMENTUM:
        return torch.optim.SGD(groups, lr=learning_rate, momentum=beta1)
    if optimizer == ADAM:
        return torch.optim.Adam(groups, lr=learning_rate, betas=(beta1, beta2), eps=eps)
    raise ValueError(f"unknown optimizer code {optimizer}")


def nn_theta(model: nn.Sequential) -> np.ndarray:
    """The model's parameters as fastnn's flat θ: W1, b1, W2, b2, ..."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).numpy()


def nn_train_epoch(model, optimizer, X, labels, order, batch_size, weight_decay=0.0):
    """One epoch over the samples in `order`, cross-entropy loss.

    Returns (summed batch loss × batch size, correct predictions, steps), as train_epoch does.
    """
    X, labels, order = torch.from_numpy(X), torch.from_numpy(labels), torch.from_numpy(order)
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    total_loss, correct, steps = 0.0, 0, 0
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        inputs, targets = X[batch], labels[batch]
        optimizer.zero_grad()
        logits = model(inputs)
        loss = F.cross_entropy(logits, targets)
        loss.backward()
        batch_loss = loss.item()
        if weight_decay:  # the (12) term of the loss; the optimizer adds λ·W to the gradient
            batch_loss += sum(
                0.5 * weight_decay * float(W.detach().square().sum()) for W in weights
            )
        optimizer.step()
        total_loss += len(batch) * batch_loss
        correct += int((logits.argmax(dim=1) == targets).sum())
        steps += 1
    return total_loss, correct, steps


# ---- an epoch as hand-written tensor math ------------------------------------------------------


def hidden_forward(Z, hidden):
    return {RELU: torch.relu, SIGMOID: torch.sigmoid, TANH: torch.tanh}[hidden](Z)  # (2)


def hidden_backward(dA, Z, A, hidden):
    if hidden == RELU:
        return dA * (Z > 0)  # (11)
    return dA * A * (1 - A) if hidden == SIGMOID else dA * (1 - A * A)  # (11)


def update(theta, state1, state2, dtheta, optimizer, learning_rate, beta1, beta2, eps, step):
    if optimizer == SGD:
        sgd_update(theta, dtheta, learning_rate)
    elif optimizer == MOMENTUM:
        momentum_update(theta, state1, dtheta, learning_rate, beta1)
    else:
        adam_update(theta, state1, state2, dtheta, learning_rate, beta1, beta2, eps, step)


def tensors_train_epoch(
    theta, state1, state2, X, labels, order, sizes, hidden, loss, optimizer,
    learning_rate, weight_decay, beta1, beta2, eps, step, batch_size,
):  # fmt: skip
    """kernels.network.train_epoch in PyTorch tensors: same batches, same returns; θ and the
    optimizer state (numpy arrays) are updated in place through tensors sharing their memory.

    Samples are rows here, so every equation appears transposed: Z (m, n_out) = A·Wᵀ + b.
    """
    if loss != CROSS_ENTROPY:
        raise ValueError("tensors_train_epoch implements the cross-entropy loss only")
    theta, state1, state2 = (
        torch.from_numpy(theta),
        torch.from_numpy(state1),
        torch.from_numpy(state2),
    )
    X, labels, order = torch.from_numpy(X), torch.from_numpy(labels), torch.from_numpy(order)
    dtheta = torch.empty_like(theta)
    layers, gradients = layer_views(theta, sizes), layer_views(dtheta, sizes)
    n_layers = len(layers)
    capacity = min(batch_size, len(order))
    total_loss, correct, steps = 0.0, 0, 0
    for start in range(0, len(order), capacity):
        batch = order[start : start + capacity]
        A0, targets = X[batch], labels[batch]
        m = len(batch)
        Zs, As = [], [A0]
        for l, (W, b) in enumerate(layers, start=1):
            Zs.append(torch.addmm(b, As[-1], W.T))  # (1)
            if l < n_layers:
                As.append(hidden_forward(Zs[-1], hidden))  # (2)
        log_A = torch.log_softmax(Zs[-1], dim=1)  # (3), as logarithms
        batch_loss = F.nll_loss(log_A, targets).item()  # (4)
        if weight_decay:
            batch_loss += sum(0.5 * weight_decay * float(W.square().sum()) for W, _ in layers)
        total_loss += m * batch_loss
        correct += int((log_A.argmax(dim=1) == targets).sum())
        dZ = log_A.exp()
        dZ[torch.arange(m), targets] -= 1  # (6) dZ = A − Y
        for l in range(n_layers, 0, -1):
            (W, _), (dW, db) = layers[l - 1], gradients[l - 1]
            torch.mm(dZ.T, As[l - 1], out=dW).div_(m)  # (8)
            torch.sum(dZ, dim=0, out=db).div_(m)  # (9)
            if weight_decay:
                dW.add_(W, alpha=weight_decay)  # (12)
            if l > 1:
                dZ = hidden_backward(dZ @ W, Zs[l - 2], As[l - 1], hidden)  # (10), (11)
        steps += 1
        update(
            theta, state1, state2, dtheta, optimizer, learning_rate, beta1, beta2, eps, step + steps
        )
    return total_loss, correct, steps
