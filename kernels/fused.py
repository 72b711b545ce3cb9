"""One hidden layer, fused and split across threads: what training runs for 784-H-10.

The same equations as network.py, for a network with one hidden layer (any width, any hidden
activation, either loss), computed a tile of samples at a time so that each weight read from
memory is used for several samples, and each sample's input is read once per step:

    forward:   (1) Z1 = W1·A0 + b1     (2) A1 = g(Z1)
               (1) Z2 = W2·A1 + b2     (3) A2 = softmax(Z2), or sigmoid(Z2) with squared error
    loss:      (4) or (5)
    backward:  (6) dZ2 = A2 − Y, or (7) dZ2 = (A2 − Y) ⊙ A2 ⊙ (1 − A2)
               (8) (9) dW2, db2         (10) dA1 = W2ᵀ·dZ2     (11) dZ1 = dA1 ⊙ g'(Z1)
               (8) (9) dW1, db1
    update:    (12) L2, then (13), (14) or (15)

Threads: a batch of m samples is cut into `chunks` fixed by m alone (never by the number of
threads); `prange` iteration c owns chunk c and sums its samples' gradients into its own row
of `partial`. The step then sums the rows in chunk order. So 1 thread and 2 threads add the
same numbers in the same order and give bit-identical weights.

Layout: X holds samples as rows (N, n_in): row order[first + s] of X is column s of A0 in the
math. Inside a tile everything else is laid out as the math writes it, units as rows and samples
as columns: Z1[j, s], A1[j, s], dZ1[j, s] (H, count) and A2[c, s] (k, count). The small
second-layer loops then run along rows of `count` samples, which vectorise
(../shared/PERF_NOTES.md, lesson 3).
"""

import functools
import math

import numpy as np
from numba import prange, typeof, types

from .activations import (
    relu_backward,
    relu_forward,
    sigmoid,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)
from .jit import KernelAddress, inlined_kernel, kernel, parallel_kernel
from .network import (
    ADAM,
    CROSS_ENTROPY,
    MOMENTUM,
    RELU,
    SGD,
    SIGMOID,
    SQUARED_ERROR,
    TANH,
    count_correct,
)
from .optimizers import adam_update, l2_backward, l2_penalty, momentum_update, sgd_update
from .output import softmax_forward

TILE = 64  # samples whose activations are held at once in a chunk's scratch
CHUNK = 48  # samples a parallel piece of a batch takes at least: a batch of 100 is 2 pieces
MAX_CHUNKS = 8  # and at most this many pieces: enough to balance 2-8 threads
BLOCK = 4096  # parameters per parallel piece of the update


@inlined_kernel
def chunk_count(m):
    """How many pieces a batch of m samples is cut into: a function of m alone."""
    return max(1, min(MAX_CHUNKS, m // CHUNK))


@inlined_kernel
def chunk_bounds(m, chunks, c):
    """Samples [first, last) of chunk c, cut at multiples of 4 for the 4-sample loops."""
    groups = (m + 3) // 4
    return 4 * (c * groups // chunks), min(m, 4 * ((c + 1) * groups // chunks))


@kernel
def first_layer_forward(Z1, W1, b1, X, order, first):
    """(1) Z1[j, s] = b1[j] + Σ_i W1[j, i]·X[order[first + s], i] for the tile's samples.

    Five units × four samples at a time: the 20 sums share their loads, so each weight read
    from memory serves four samples and each pixel five units (../shared/PERF_NOTES.md,
    lesson 2). 20 running sums and 9 loaded vectors fit AVX-512's 32 vector registers; with
    H = 10 the units split into two blocks and no remainder.
    """
    # W1 (H, n_in), b1 (H,), X (N, n_in) -> Z1 (H, count)
    H, n_in = W1.shape
    count = Z1.shape[1]
    zero = W1.dtype.type(0)
    s = 0
    while s + 4 <= count:
        x0, x1 = X[order[first + s]], X[order[first + s + 1]]
        x2, x3 = X[order[first + s + 2]], X[order[first + s + 3]]
        j = 0
        while j + 5 <= H:
            w0, w1, w2, w3, w4 = W1[j], W1[j + 1], W1[j + 2], W1[j + 3], W1[j + 4]
            z00 = z01 = z02 = z03 = z10 = z11 = z12 = z13 = zero  # z<unit><sample>
            z20 = z21 = z22 = z23 = z30 = z31 = z32 = z33 = zero
            z40 = z41 = z42 = z43 = zero
            for i in range(n_in):
                p0, p1, p2, p3 = x0[i], x1[i], x2[i], x3[i]
                z00 += w0[i] * p0
                z01 += w0[i] * p1
                z02 += w0[i] * p2
                z03 += w0[i] * p3
                z10 += w1[i] * p0
                z11 += w1[i] * p1
                z12 += w1[i] * p2
                z13 += w1[i] * p3
                z20 += w2[i] * p0
                z21 += w2[i] * p1
                z22 += w2[i] * p2
                z23 += w2[i] * p3
                z30 += w3[i] * p0
                z31 += w3[i] * p1
                z32 += w3[i] * p2
                z33 += w3[i] * p3
                z40 += w4[i] * p0
                z41 += w4[i] * p1
                z42 += w4[i] * p2
                z43 += w4[i] * p3
            for u, z0, z1, z2, z3 in (
                (0, z00, z01, z02, z03), (1, z10, z11, z12, z13), (2, z20, z21, z22, z23),
                (3, z30, z31, z32, z33), (4, z40, z41, z42, z43),
            ):  # fmt: skip
                bias = b1[j + u]
                Z1[j + u, s], Z1[j + u, s + 1] = z0 + bias, z1 + bias
                Z1[j + u, s + 2], Z1[j + u, s + 3] = z2 + bias, z3 + bias
            j += 5
        tiled_units = j
        for j in range(tiled_units, H):  # the last H mod 5 units: one unit, four samples
            w = W1[j]
            z0 = z1 = z2 = z3 = zero
            for i in range(n_in):
                z0 += w[i] * x0[i]
                z1 += w[i] * x1[i]
                z2 += w[i] * x2[i]
                z3 += w[i] * x3[i]
            Z1[j, s], Z1[j, s + 1] = z0 + b1[j], z1 + b1[j]
            Z1[j, s + 2], Z1[j, s + 3] = z2 + b1[j], z3 + b1[j]
        s += 4
    tiled_samples = s
    for s in range(tiled_samples, count):  # the last count mod 4 samples: one at a time
        x = X[order[first + s]]
        for j in range(H):
            w = W1[j]
            total = zero
            for i in range(n_in):
                total += w[i] * x[i]
            Z1[j, s] = total + b1[j]


@kernel
def first_layer_gradient(gW1, gb1, dZ1, X, order, first):
    """(8) gW1[j, :] += Σ_s dZ1[j, s]·X[order[first + s], :] and (9) gb1[j] += Σ_s dZ1[j, s].

    Five units × four samples at a time, as in first_layer_forward: a row of gW1 is read and
    written once for four samples' terms, and each pixel loaded serves five units.
    """
    # dZ1 (H, count), X (N, n_in) -> gW1 (H, n_in), gb1 (H,), accumulated
    H, n_in = gW1.shape
    count = dZ1.shape[1]
    for j in range(H):
        d = dZ1[j]
        for s in range(count):
            gb1[j] += d[s]
    s = 0
    while s + 4 <= count:
        x0, x1 = X[order[first + s]], X[order[first + s + 1]]
        x2, x3 = X[order[first + s + 2]], X[order[first + s + 3]]
        j = 0
        while j + 5 <= H:
            g0, g1, g2, g3, g4 = gW1[j], gW1[j + 1], gW1[j + 2], gW1[j + 3], gW1[j + 4]
            u0, u1, u2, u3, u4 = dZ1[j], dZ1[j + 1], dZ1[j + 2], dZ1[j + 3], dZ1[j + 4]
            d00, d01, d02, d03 = u0[s], u0[s + 1], u0[s + 2], u0[s + 3]  # d<unit><sample>
            d10, d11, d12, d13 = u1[s], u1[s + 1], u1[s + 2], u1[s + 3]
            d20, d21, d22, d23 = u2[s], u2[s + 1], u2[s + 2], u2[s + 3]
            d30, d31, d32, d33 = u3[s], u3[s + 1], u3[s + 2], u3[s + 3]
            d40, d41, d42, d43 = u4[s], u4[s + 1], u4[s + 2], u4[s + 3]
            for i in range(n_in):
                p0, p1, p2, p3 = x0[i], x1[i], x2[i], x3[i]
                g0[i] += d00 * p0 + d01 * p1 + d02 * p2 + d03 * p3
                g1[i] += d10 * p0 + d11 * p1 + d12 * p2 + d13 * p3
                g2[i] += d20 * p0 + d21 * p1 + d22 * p2 + d23 * p3
                g3[i] += d30 * p0 + d31 * p1 + d32 * p2 + d33 * p3
                g4[i] += d40 * p0 + d41 * p1 + d42 * p2 + d43 * p3
            j += 5
        tiled_units = j
        for j in range(tiled_units, H):  # the last H mod 5 units: one unit, four samples
            g = gW1[j]
            u = dZ1[j]
            d0, d1, d2, d3 = u[s], u[s + 1], u[s + 2], u[s + 3]
            for i in range(n_in):
                g[i] += d0 * x0[i] + d1 * x1[i] + d2 * x2[i] + d3 * x3[i]
        s += 4
    tiled_samples = s
    for s in range(tiled_samples, count):  # the last count mod 4 samples: one at a time
        x = X[order[first + s]]
        for j in range(H):
            g = gW1[j]
            d = dZ1[j, s]
            for i in range(n_in):
                g[i] += d * x[i]


@kernel
def second_layer_forward(Z2, W2, b2, A1):
    """(1) Z2 = W2·A1 + b2 for the tile's samples: Z2[c, s] = b2[c] + Σ_j W2[c, j]·A1[j, s]."""
    # W2 (k, H), b2 (k,), A1 (H, count) -> Z2 (k, count)
    k, H = W2.shape
    count = A1.shape[1]
    for c in range(k):
        z = Z2[c]
        for s in range(count):
            z[s] = b2[c]
        for j in range(H):
            w, a = W2[c, j], A1[j]
            for s in range(count):  # along a row of samples: in order, vectorises
                z[s] += w * a[s]


@kernel
def second_layer_gradient(gW2, gb2, dA1, dZ2, W2, A1):
    """(8) gW2 += dZ2·A1ᵀ, (9) gb2 += Σ_s dZ2 and (10) dA1 = W2ᵀ·dZ2, for the tile's samples."""
    # dZ2 (k, count), W2 (k, H), A1 (H, count) -> gW2 (k, H), gb2 (k,) accumulated; dA1 (H, count)
    k, H = W2.shape
    count = A1.shape[1]
    zero = W2.dtype.type(0)
    for c in range(k):
        d = dZ2[c]
        total = zero
        for s in range(count):
            total += d[s]
        gb2[c] += total  # (9)
        for j in range(H):
            a = A1[j]
            total = zero
            for s in range(count):
                total += d[s] * a[s]
            gW2[c, j] += total  # (8)
    for j in range(H):  # (10) dA1[j, s] = Σ_c W2[c, j]·dZ2[c, s]
        row = dA1[j]
        for s in range(count):
            row[s] = 0
        for c in range(k):
            w, d = W2[c, j], dZ2[c]
            for s in range(count):
                row[s] += w * d[s]


@kernel
def tile_view(row, units, count):
    """The first units × count numbers of a scratch row, as a (units, count) C array."""
    return row[: units * count].reshape((units, count))


@kernel
def softmax_cross_entropy(A2, largest, exp_sum, labels, order, first):
    """(3) softmax, (4) cross-entropy and (6) dZ2 = A2 − Y for the tile, in place: A2 holds Z2
    on entry and dZ2 on return. Returns Σ loss.

    Per sample s (column s): M = largest[s] = max_c Z2[c, s], and
    −log A2[label, s] = log Σ_c e^(Z2[c, s] − M) − (Z2[label, s] − M), exact from the logits.
    Every loop but the label's runs along rows of samples, one class at a time.
    """
    # A2 (k, count); largest, exp_sum (count,): scratch
    k, count = A2.shape
    loss_sum = 0.0
    for s in range(count):
        largest[s] = A2[0, s]
        exp_sum[s] = 0
    for c in range(1, k):
        a = A2[c]
        for s in range(count):
            largest[s] = max(largest[s], a[s])
    for s in range(count):  # (4), the second term: the label's shifted logit
        loss_sum -= A2[labels[order[first + s]], s] - largest[s]
    for c in range(k):  # (3) e^(Z2 − M): every exponent ≤ 0, no overflow
        a = A2[c]
        for s in range(count):
            e = math.exp(a[s] - largest[s])
            a[s] = e
            exp_sum[s] += e
    for s in range(count):
        loss_sum += math.log(exp_sum[s])  # (4), the first term
    for c in range(k):  # (3) A2 = e^(Z2 − M) / Σ_c e^(Z2 − M)
        a = A2[c]
        for s in range(count):
            a[s] /= exp_sum[s]
    for s in range(count):  # (6) dZ2 = A2 − Y: Y is 1 at the label, 0 elsewhere
        A2[labels[order[first + s]], s] -= 1
    return loss_sum


@kernel
def sigmoid_squared_error(A2, largest, exp_sum, labels, order, first):
    """(3) sigmoid, (5) squared error and (7) dZ2 for the tile, in place: A2 holds Z2 on entry
    and dZ2 on return. Returns Σ loss."""
    # A2 (k, count); largest, exp_sum: unused (softmax_cross_entropy's scratch, so that both
    # output kernels take the same arguments)
    k, count = A2.shape
    loss_sum = 0.0
    for s in range(count):  # one sample (column) at a time
        label = labels[order[first + s]]
        for c in range(k):
            a = sigmoid(A2[c, s])  # (3) sigmoid output
            error = a - (1 if c == label else 0)  # (7) dA2 = A2 − Y
            loss_sum += 0.5 * error * error  # (5)
            A2[c, s] = error * a * (1 - a)  # (7) dZ2 = dA2 ⊙ A2 ⊙ (1 − A2)
    return loss_sum


@inlined_kernel
def tile_step(
    gW1, gb1, gW2, gb2, scratch, W1, b1, W2, b2, X, labels, order, first, count,
    g, g_derivative, output_layer,
):  # fmt: skip
    """Forward and backward for `count` samples order[first:first + count]; adds their
    gradients, not yet divided by m, to gW1, gb1, gW2, gb2. Returns (Σ loss, correct).

    g(A, Z) is the hidden activation (2), g_derivative(dZ, dA, Z, A) its (11), output_layer
    one of softmax_cross_entropy and sigmoid_squared_error: kernels chosen by train_epoch."""
    # W1 (H, n_in), b1 (H,), W2 (k, H), b2 (k,); X (N, n_in)
    # scratch (5, TILE·max(H, k)): room for the tile's Z1, A1, dZ1, A2 and two per-sample rows
    # gradients gW1, gb1, gW2, gb2 shaped like the parameters
    H = W1.shape[0]
    k = W2.shape[0]
    Z1 = tile_view(scratch[0], H, count)
    A1 = tile_view(scratch[1], H, count)
    dZ1 = tile_view(scratch[2], H, count)
    A2 = tile_view(scratch[3], k, count)
    per_sample = tile_view(scratch[4], 2, count)

    # (1) Z1 = W1·A0 + b1, (2) A1 = g(Z1), (1) Z2 = W2·A1 + b2 (kept in A2 for now)
    first_layer_forward(Z1, W1, b1, X, order, first)
    g(A1, Z1)
    second_layer_forward(A2, W2, b2, A1)
    # softmax and sigmoid both keep the order of Z2: its largest entry is the prediction
    correct = count_correct(A2, labels, order, first)
    # the output layer and its loss; A2 then holds dZ2
    loss_sum = output_layer(A2, per_sample[0], per_sample[1], labels, order, first)
    # (8) (9) for W2 and b2; (10) dA1 = W2ᵀ·dZ2, kept in dZ1 until (11)
    second_layer_gradient(gW2, gb2, dZ1, A2, W2, A1)
    # (11) dZ1 = dA1 ⊙ g'(Z1), in place: elementwise, each element read before it is written
    g_derivative(dZ1, dZ1, Z1, A1)
    # (8) dW1 = dZ1·A0ᵀ, (9) db1 = Σ_s dZ1
    first_layer_gradient(gW1, gb1, dZ1, X, order, first)
    return loss_sum, correct


@kernel
def views(flat, H, n_in, k):
    """(W1, b1, W2, b2) as views into a flat vector laid out as network.py says."""
    a = H * n_in
    b = a + H
    c = b + k * H
    return (
        flat[:a].reshape((H, n_in)),
        flat[a:b],
        flat[b:c].reshape((k, H)),
        flat[c : c + k],
    )


@kernel
def reduce_and_update_block(
    theta, state1, state2, dtheta, partial, chunks, m, sizes,
    learning_rate, weight_decay, beta1, beta2, eps, step, a, b, optimizer_step,
):  # fmt: skip
    """For θ[a:b]: dθ = Σ_chunks partial / m, (12) L2 on the weights unless weight_decay is
    None, then the update: optimizer_step is one of sgd_step, momentum_step and adam_step,
    chosen by train_epoch."""
    n_in, H, k = sizes[0], sizes[1], sizes[2]
    # Loops over views from 0 (not over range(a, b)): Numba then knows no index is negative,
    # skips the wraparound check and vectorises (measured 8x on the reduction).
    gradient, first_chunk = dtheta[a:b], partial[0, a:b]
    for i in range(gradient.size):
        gradient[i] = first_chunk[i]
    for c in range(1, chunks):  # fixed order: the same sum for any thread count
        chunk = partial[c, a:b]
        for i in range(gradient.size):
            gradient[i] += chunk[i]
    scale = theta.dtype.type(1 / m)
    for i in range(gradient.size):
        gradient[i] *= scale
    if weight_decay is not None:
        # W1 is θ[0, H·n_in), W2 is θ[W2_first, W2_first + k·H): decay their parts here
        W2_first = H * n_in + H
        for w_first, w_last in ((0, H * n_in), (W2_first, W2_first + k * H)):
            lo, hi = max(a, w_first), min(b, w_last)
            if lo < hi:
                l2_backward(dtheta[lo:hi], theta[lo:hi], weight_decay)
    optimizer_step(theta[a:b], state1[a:b], state2[a:b], dtheta[a:b],
                   learning_rate, beta1, beta2, eps, step)  # fmt: skip


@kernel
def chunk_gradient(
    gradient, scratch, theta, X, labels, order, first, last, sizes, g, g_derivative, output_layer,
):  # fmt: skip
    """The summed gradients (8), (9) of samples order[first:last], a tile at a time, written
    to `gradient` (laid out like θ). Returns (Σ loss, correct)."""
    n_in, H, k = sizes[0], sizes[1], sizes[2]
    W1, b1, W2, b2 = views(theta, H, n_in, k)
    for i in range(gradient.size):
        gradient[i] = 0
    gW1, gb1, gW2, gb2 = views(gradient, H, n_in, k)
    loss_sum = 0.0
    correct = 0
    for tile_first in range(first, last, TILE):
        count = min(TILE, last - tile_first)
        tile_loss, tile_correct = tile_step(
            gW1, gb1, gW2, gb2, scratch,
            W1, b1, W2, b2, X, labels, order, tile_first, count, g, g_derivative, output_layer,
        )  # fmt: skip
        loss_sum += tile_loss
        correct += tile_correct
    return loss_sum, correct


def train_epoch(theta, state1, state2, X, labels, order, sizes, hidden, loss, optimizer, *rest):
    """network.train_epoch for one hidden layer: same arguments, same returns."""
    return parallel_epoch(*epoch_arguments(theta, state1, state2, X, labels, order, sizes,
                                           hidden, loss, optimizer, *rest))  # fmt: skip


def epoch_arguments(
    theta, state1, state2, X, labels, order, sizes, hidden, loss, optimizer,
    learning_rate, weight_decay, *rest,
):  # fmt: skip
    """parallel_epoch's arguments for train_epoch's.

    The kernels this network needs come last, each handed over as the address of its machine
    code (jit.KernelAddress says why): chunk_gradient and reduce_and_update_block, and for them
    the hidden activation and its derivative, the output layer and the optimizer's step. So a
    run compiles only the activation, loss and optimizer it uses. A weight decay of 0 is passed
    as None, for which Numba leaves the L2 code (12) out of what it compiles.
    """
    if weight_decay == 0:
        weight_decay = None
    arrays = (theta, state1, state2, X, labels, order, sizes)
    array_types = (typeof(array) for array in arrays)
    kernels = kernel_addresses(*array_types, typeof(weight_decay), hidden, loss, optimizer)
    return (*arrays, learning_rate, weight_decay, *rest, *kernels)


# Compiling train_epoch's kernels in two halves of similar size, which two processes compile at
# once on a machine's first run, into the disk cache (training.compile_kernels). Only compiled
# code has anything to compile: the coverage run (NUMBA_DISABLE_JIT=1) never calls these two.


def compile_chunk_gradient(*train_epoch_arguments):  # pragma: no cover
    """Compile (or load from the disk cache) chunk_gradient, the tile's forward and backward
    pass, for train_epoch's arguments."""
    *_, chunk_gradient, _, _, _, _, _ = epoch_arguments(*train_epoch_arguments)  # the 6 kernels
    chunk_gradient.compile()


def compile_epoch_loop(*train_epoch_arguments):  # pragma: no cover
    """Compile (or load from the disk cache) parallel_epoch and every kernel it takes by address
    but chunk_gradient, for train_epoch's arguments. parallel_epoch needs only the types of the
    kernels it takes by address, not the kernels themselves."""
    arguments = epoch_arguments(*train_epoch_arguments)
    *_, _, update, g, g_derivative, output_layer, optimizer_step = arguments  # the 6 kernels
    for address in (update, g, g_derivative, output_layer, optimizer_step):
        address.compile()
    parallel_epoch.compile(tuple(typeof(argument) for argument in arguments))


# The hidden activation's derivative (11) in one signature for all three: g'(Z) needs Z for
# ReLU and A = g(Z) for sigmoid and tanh.


@kernel
def relu_derivative(dZ, dA, Z, A):
    relu_backward(dZ, dA, Z)


@kernel
def sigmoid_derivative(dZ, dA, Z, A):
    sigmoid_backward(dZ, dA, A)


@kernel
def tanh_derivative(dZ, dA, Z, A):
    tanh_backward(dZ, dA, A)


# The update in one signature for all three optimizers: (13), (14) and (15).


@kernel
def sgd_step(theta, state1, state2, dtheta, learning_rate, beta1, beta2, eps, step):
    sgd_update(theta, dtheta, learning_rate)


@kernel
def momentum_step(theta, state1, state2, dtheta, learning_rate, beta1, beta2, eps, step):
    momentum_update(theta, state1, dtheta, learning_rate, beta1)


@kernel
def adam_step(theta, state1, state2, dtheta, learning_rate, beta1, beta2, eps, step):
    adam_update(theta, state1, state2, dtheta, learning_rate, beta1, beta2, eps, step)


HIDDEN_KERNELS = {
    RELU: (relu_forward, relu_derivative),
    SIGMOID: (sigmoid_forward, sigmoid_derivative),
    TANH: (tanh_forward, tanh_derivative),
}
OUTPUT_KERNELS = {CROSS_ENTROPY: softmax_cross_entropy, SQUARED_ERROR: sigmoid_squared_error}
OUTPUT_ACTIVATIONS = {CROSS_ENTROPY: softmax_forward, SQUARED_ERROR: sigmoid_forward}  # predict
OPTIMIZER_STEPS = {SGD: sgd_step, MOMENTUM: momentum_step, ADAM: adam_step}


@functools.cache
def kernel_addresses(
    theta, state1, state2, X, labels, order, sizes, weight_decay, hidden, loss, optimizer
):  # fmt: skip
    """The kernels parallel_epoch takes, by address, for these Numba types and codes.

    Their signatures, argument by argument as they are called. The arrays parallel_epoch makes
    itself (dθ, the partial gradients, the scratch, their rows and tiles) are C arrays of θ's
    float type.
    """
    integer, real = types.int64, types.float64
    vector, matrix = types.Array(theta.dtype, 1, "C"), types.Array(theta.dtype, 2, "C")
    g, g_derivative = HIDDEN_KERNELS[hidden]
    g = KernelAddress(g, types.void(matrix, matrix))
    g_derivative = KernelAddress(g_derivative, types.void(matrix, matrix, matrix, matrix))
    output_layer = KernelAddress(
        OUTPUT_KERNELS[loss], real(matrix, vector, vector, labels, order, integer)
    )
    optimizer_step = KernelAddress(
        OPTIMIZER_STEPS[optimizer],
        types.void(vector, vector, vector, vector, real, real, real, real, integer),
    )
    gradient = types.Tuple((real, integer))(
        vector, matrix, theta, X, labels, order, integer, integer, sizes,
        *(types.FunctionType(kernel.signature()) for kernel in (g, g_derivative, output_layer)),
    )  # fmt: skip
    update = types.void(
        theta, state1, state2, vector, matrix, integer, integer, sizes,
        real, weight_decay, real, real, real, integer, integer, integer,
        types.FunctionType(optimizer_step.signature()),
    )  # fmt: skip
    return (
        KernelAddress(chunk_gradient, gradient),
        KernelAddress(reduce_and_update_block, update),
        g, g_derivative, output_layer, optimizer_step,
    )  # fmt: skip


@parallel_kernel
def parallel_epoch(
    theta, state1, state2, X, labels, order, sizes,
    learning_rate, weight_decay, beta1, beta2, eps, step, batch_size,
    chunk_gradient, reduce_and_update_block, g, g_derivative, output_layer, optimizer_step,
):  # fmt: skip
    """train_epoch's loop over the steps, compiled. Each step runs two parallel loops: every
    chunk's summed gradient (8), (9), then dθ and the update, a block of θ at a time."""
    n_samples = order.size
    n_in, H, k = sizes[0], sizes[1], sizes[2]
    p = theta.size
    capacity = min(batch_size, n_samples)
    chunks_max = chunk_count(capacity)
    dtype = theta.dtype
    partial = np.empty((chunks_max, p), dtype)  # row c: chunk c's Σ of per-sample gradients
    scratch = np.empty((chunks_max, 5, TILE * max(H, k)), dtype)  # k ≥ 2 classes: room for 2 rows
    losses = np.empty(chunks_max)
    corrects = np.empty(chunks_max, np.int64)
    dtheta = np.empty_like(theta)
    total_loss = 0.0
    correct = 0
    steps = 0
    for start in range(0, n_samples, capacity):
        m = min(capacity, n_samples - start)
        chunks = chunk_count(m)
        penalty = 0.0
        if weight_decay is not None:  # (12), on θ before this step's update
            W1, _, W2, _ = views(theta, H, n_in, k)
            penalty = l2_penalty(W1, weight_decay) + l2_penalty(W2, weight_decay)
        for c in prange(chunks):  # iteration c owns partial[c], losses[c], corrects[c], scratch[c]
            first, last = chunk_bounds(m, chunks, c)
            losses[c], corrects[c] = chunk_gradient(
                partial[c], scratch[c], theta, X, labels, order, start + first, start + last,
                sizes, g, g_derivative, output_layer,
            )  # fmt: skip
        steps += 1
        for block in prange((p + BLOCK - 1) // BLOCK):  # iteration owns θ[a:b] and its state
            a = block * BLOCK
            b = min(p, a + BLOCK)
            reduce_and_update_block(theta, state1, state2, dtheta, partial, chunks, m, sizes,
                                    learning_rate, weight_decay, beta1, beta2, eps,
                                    step + steps, a, b, optimizer_step)  # fmt: skip
        data_loss = 0.0
        for c in range(chunks):
            data_loss += losses[c]
            correct += corrects[c]
        total_loss += m * (data_loss / m + penalty)
    return total_loss, correct, steps


def predict(outputs, theta, X, sizes, hidden, loss, chunk):
    """network.predict for one hidden layer: same arguments. Runs forward_tiles with the
    hidden activation and the output activation this network uses, by address as in
    train_epoch, so that only those two are compiled."""
    matrix = types.Array(typeof(theta).dtype, 2, "C")
    activation = types.void(matrix, matrix)  # (A, Z): A = g(Z), the output written first
    g = KernelAddress(HIDDEN_KERNELS[hidden][0], activation)
    output_activation = KernelAddress(OUTPUT_ACTIVATIONS[loss], activation)
    order = np.arange(len(X))  # the tile kernels read rows X[order[s]]: here in turn
    forward_tiles(outputs, theta, X, order, sizes, g, output_activation)


@kernel
def forward_tiles(outputs, theta, X, order, sizes, g, output_activation):
    """(1), (2), (1), (3) a tile of samples at a time; g and output_activation are kernels
    A = f(Z), chosen by predict.

    One thread: it runs once an epoch on the dev set, and a parallel loop here would cost more
    seconds of compiling, the first time, than it saves.
    """
    # X (N, n_in) -> outputs (N, k): the top layer's A, samples as rows
    n_samples = X.shape[0]
    n_in, H, k = sizes[0], sizes[1], sizes[2]
    W1, b1, W2, b2 = views(theta, H, n_in, k)
    scratch = np.empty((3, TILE * max(H, k)), theta.dtype)
    for first in range(0, n_samples, TILE):
        count = min(TILE, n_samples - first)
        Z1 = tile_view(scratch[0], H, count)
        A1 = tile_view(scratch[1], H, count)
        A2 = tile_view(scratch[2], k, count)
        first_layer_forward(Z1, W1, b1, X, order, first)
        g(A1, Z1)
        second_layer_forward(A2, W2, b2, A1)
        output_activation(A2, A2)  # in place, one sample (column) at a time
        for s in range(count):
            for c in range(k):
                outputs[first + s, c] = A2[c, s]
