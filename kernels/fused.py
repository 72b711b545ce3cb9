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

Layout: samples are rows, X (N, n_in): row s of X is column s of A0 in the math. Inside a
tile, per-sample values are rows too: Z1[s, j] here is Z1[j, s] in the math.
"""

import math

import numpy as np
from numba import prange

from .activations import sigmoid, sigmoid_forward
from .jit import kernel, parallel_kernel
from .network import CROSS_ENTROPY, hidden_backward, hidden_forward, update
from .optimizers import l2_backward, l2_penalty
from .output import softmax_forward

TILE = 16  # samples whose activations are held at once in a chunk's scratch
CHUNK = 48  # samples a parallel piece of a batch takes at least: a batch of 100 is 2 pieces
MAX_CHUNKS = 8  # and at most this many pieces: enough to balance 2-8 threads
BLOCK = 4096  # parameters per parallel piece of the update


@kernel
def chunk_count(m):
    """How many pieces a batch of m samples is cut into: a function of m alone."""
    return max(1, min(MAX_CHUNKS, m // CHUNK))


@kernel
def chunk_bounds(m, chunks, c):
    """Samples [first, last) of chunk c, cut at multiples of 4 for the 4-sample loops."""
    groups = (m + 3) // 4
    return 4 * (c * groups // chunks), min(m, 4 * ((c + 1) * groups // chunks))


@kernel
def first_layer_forward(Z1, W1, b1, X, order, first, count):
    """(1) Z1[s, j] = b1[j] + Σ_i W1[j, i]·X[order[first + s], i] for the tile's samples.

    Four units × four samples at a time: the 16 sums share their loads, so each weight and each
    pixel read from memory is used four times (../shared/PERF_NOTES.md, lesson 2).
    """
    # W1 (H, n_in), b1 (H,), X (N, n_in) -> Z1 (count, H), samples as rows
    H, n_in = W1.shape
    zero = W1.dtype.type(0)
    s = 0
    while s + 4 <= count:
        x0, x1 = X[order[first + s]], X[order[first + s + 1]]
        x2, x3 = X[order[first + s + 2]], X[order[first + s + 3]]
        j = 0
        while j + 4 <= H:
            w0, w1, w2, w3 = W1[j], W1[j + 1], W1[j + 2], W1[j + 3]
            z00 = z01 = z02 = z03 = z10 = z11 = z12 = z13 = zero  # z<unit><sample>
            z20 = z21 = z22 = z23 = z30 = z31 = z32 = z33 = zero
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
            for u, z0, z1, z2, z3 in (
                (0, z00, z01, z02, z03), (1, z10, z11, z12, z13),
                (2, z20, z21, z22, z23), (3, z30, z31, z32, z33),
            ):  # fmt: skip
                bias = b1[j + u]
                Z1[s, j + u], Z1[s + 1, j + u] = z0 + bias, z1 + bias
                Z1[s + 2, j + u], Z1[s + 3, j + u] = z2 + bias, z3 + bias
            j += 4
        tiled_units = j
        for j in range(tiled_units, H):  # the last H mod 4 units: one unit, four samples
            w = W1[j]
            z0 = z1 = z2 = z3 = zero
            for i in range(n_in):
                z0 += w[i] * x0[i]
                z1 += w[i] * x1[i]
                z2 += w[i] * x2[i]
                z3 += w[i] * x3[i]
            Z1[s, j], Z1[s + 1, j] = z0 + b1[j], z1 + b1[j]
            Z1[s + 2, j], Z1[s + 3, j] = z2 + b1[j], z3 + b1[j]
        s += 4
    tiled_samples = s
    for s in range(tiled_samples, count):  # the last count mod 4 samples: one at a time
        x = X[order[first + s]]
        for j in range(H):
            w = W1[j]
            total = zero
            for i in range(n_in):
                total += w[i] * x[i]
            Z1[s, j] = total + b1[j]


@kernel
def first_layer_gradient(gW1, gb1, dZ1, X, order, first, count):
    """(8) gW1[j, :] += Σ_s dZ1[s, j]·X[order[first + s], :] and (9) gb1[j] += Σ_s dZ1[s, j].

    Four units × four samples at a time: a row of gW1 is read and written once for four
    samples' terms, and each pixel loaded serves four units.
    """
    # dZ1 (count, H), X (N, n_in) -> gW1 (H, n_in), gb1 (H,), accumulated
    H, n_in = gW1.shape
    for j in range(H):
        for s in range(count):
            gb1[j] += dZ1[s, j]
    s = 0
    while s + 4 <= count:
        x0, x1 = X[order[first + s]], X[order[first + s + 1]]
        x2, x3 = X[order[first + s + 2]], X[order[first + s + 3]]
        r0, r1, r2, r3 = dZ1[s], dZ1[s + 1], dZ1[s + 2], dZ1[s + 3]  # the four samples' dZ1
        j = 0
        while j + 4 <= H:  # four rows of gW1 at once: each pixel loaded serves four units
            g0, g1, g2, g3 = gW1[j], gW1[j + 1], gW1[j + 2], gW1[j + 3]
            d00, d01, d02, d03 = r0[j], r1[j], r2[j], r3[j]  # d<unit><sample>
            d10, d11, d12, d13 = r0[j + 1], r1[j + 1], r2[j + 1], r3[j + 1]
            d20, d21, d22, d23 = r0[j + 2], r1[j + 2], r2[j + 2], r3[j + 2]
            d30, d31, d32, d33 = r0[j + 3], r1[j + 3], r2[j + 3], r3[j + 3]
            for i in range(n_in):
                p0, p1, p2, p3 = x0[i], x1[i], x2[i], x3[i]
                g0[i] += d00 * p0 + d01 * p1 + d02 * p2 + d03 * p3
                g1[i] += d10 * p0 + d11 * p1 + d12 * p2 + d13 * p3
                g2[i] += d20 * p0 + d21 * p1 + d22 * p2 + d23 * p3
                g3[i] += d30 * p0 + d31 * p1 + d32 * p2 + d33 * p3
            j += 4
        tiled_units = j
        for j in range(tiled_units, H):  # the last H mod 4 units: one unit, four samples
            g = gW1[j]
            d0, d1, d2, d3 = r0[j], r1[j], r2[j], r3[j]
            for i in range(n_in):
                g[i] += d0 * x0[i] + d1 * x1[i] + d2 * x2[i] + d3 * x3[i]
        s += 4
    tiled_samples = s
    for s in range(tiled_samples, count):  # the last count mod 4 samples: one at a time
        x = X[order[first + s]]
        for j in range(H):
            g = gW1[j]
            d = dZ1[s, j]
            for i in range(n_in):
                g[i] += d * x[i]


@kernel
def second_layer_forward(Z2, W2, b2, A1, count):
    """(1) Z2[s, c] = b2[c] + Σ_j W2[c, j]·A1[s, j] for the tile's samples."""
    # W2 (k, H), b2 (k,), A1 (TILE, H) -> Z2 (TILE, k), samples as rows
    k, H = W2.shape
    zero = W2.dtype.type(0)
    for s in range(count):
        for c in range(k):
            total = zero
            for j in range(H):
                total += W2[c, j] * A1[s, j]
            Z2[s, c] = total + b2[c]


@kernel
def tile_step(
    gW1, gb1, gW2, gb2, Z1, A1, dZ1, A2,
    W1, b1, W2, b2, X, labels, order, first, count, hidden, loss,
):  # fmt: skip
    """Forward and backward for `count` samples order[first:first + count]; adds their
    gradients, not yet divided by m, to gW1, gb1, gW2, gb2. Returns (Σ loss, correct)."""
    # W1 (H, n_in), b1 (H,), W2 (k, H), b2 (k,); X (N, n_in)
    # scratch: Z1, A1, dZ1, A2 (TILE, max(H, k)), of which the first H (A2: k) columns are used
    # gradients gW1, gb1, gW2, gb2 shaped like the parameters
    H = W1.shape[0]
    k = W2.shape[0]
    zero = W1.dtype.type(0)
    loss_sum = 0.0
    correct = 0

    # (1) Z1 = W1·A0 + b1, (2) A1 = g(Z1), (1) Z2 = W2·A1 + b2 (kept in A2 for now)
    first_layer_forward(Z1, W1, b1, X, order, first, count)
    hidden_forward(A1[:count], Z1[:count], hidden)  # elementwise: rows or columns alike
    second_layer_forward(A2, W2, b2, A1, count)

    for s in range(count):
        label = labels[order[first + s]]
        best = 0
        for c in range(1, k):
            if A2[s, c] > A2[s, best]:
                best = c
        if best == label:
            correct += 1
        if loss == CROSS_ENTROPY:
            # (3) softmax, shifted by the largest logit; (4) −log A2[label] from the logits
            largest = A2[s, best]
            shifted_label_logit = A2[s, label] - largest
            exp_sum = 0.0
            for c in range(k):
                e = math.exp(A2[s, c] - largest)
                exp_sum += e
                A2[s, c] = e
            loss_sum += math.log(exp_sum) - shifted_label_logit
            for c in range(k):
                # (6) dZ2 = A2 − Y, stored in place of A2
                A2[s, c] = A2[s, c] / exp_sum - (1 if c == label else 0)
        else:
            for c in range(k):
                a = sigmoid(A2[s, c])  # (3) sigmoid output
                error = a - (1 if c == label else 0)  # (7) dA2 = A2 − Y
                loss_sum += 0.5 * error * error  # (5)
                A2[s, c] = error * a * (1 - a)  # (7) dZ2 = dA2 ⊙ A2 ⊙ (1 − A2), in place
        # A2[s, :] now holds dZ2 for sample s.
        for c in range(k):
            d = A2[s, c]
            gb2[c] += d  # (9) db2 = Σ_s dZ2
            for j in range(H):
                gW2[c, j] += d * A1[s, j]  # (8) dW2 = dZ2·A1ᵀ
        for j in range(H):  # (10) dA1 = W2ᵀ·dZ2, kept in dZ1 until (11) below
            total = zero
            for c in range(k):
                total += W2[c, j] * A2[s, c]
            dZ1[s, j] = total

    # (11) dZ1 = dA1 ⊙ g'(Z1), in place: elementwise, each element read before it is written
    hidden_backward(dZ1[:count], dZ1[:count], Z1[:count], A1[:count], hidden)
    # (8) dW1 = dZ1·A0ᵀ, (9) db1 = Σ_s dZ1
    first_layer_gradient(gW1, gb1, dZ1, X, order, first, count)
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
    optimizer, learning_rate, weight_decay, beta1, beta2, eps, step, a, b,
):  # fmt: skip
    """For θ[a:b]: dθ = Σ_chunks partial / m, (12) L2 on the weights, then the update."""
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
    if weight_decay != 0:
        # W1 is θ[0, H·n_in), W2 is θ[W2_first, W2_first + k·H): decay their parts here
        W2_first = H * n_in + H
        for w_first, w_last in ((0, H * n_in), (W2_first, W2_first + k * H)):
            lo, hi = max(a, w_first), min(b, w_last)
            if lo < hi:
                l2_backward(dtheta[lo:hi], theta[lo:hi], weight_decay)
    update(theta[a:b], state1[a:b], state2[a:b], dtheta[a:b], optimizer,
           learning_rate, beta1, beta2, eps, step)  # fmt: skip


@parallel_kernel
def parallel_step(
    theta, state1, state2, dtheta, partial, losses, corrects, scratch, X, labels, order, start, m,
    sizes, hidden, loss, optimizer, learning_rate, weight_decay, beta1, beta2, eps, step,
):  # fmt: skip
    """One step on the m samples order[start:start + m], in two parallel loops:
    every chunk's summed gradient (8), (9), then dθ and the update, a block of θ at a time."""
    # partial (chunks, p): row c is chunk c's Σ of per-sample gradients; losses, corrects (chunks,)
    n_in, H, k = sizes[0], sizes[1], sizes[2]
    chunks = chunk_count(m)
    W1, b1, W2, b2 = views(theta, H, n_in, k)
    for c in prange(chunks):  # iteration c owns partial[c], losses[c], corrects[c], scratch[c]
        gradient = partial[c]
        gradient[:] = 0
        gW1, gb1, gW2, gb2 = views(gradient, H, n_in, k)
        Z1 = scratch[c, 0]
        A1 = scratch[c, 1]
        dZ1 = scratch[c, 2]
        A2 = scratch[c, 3]  # (TILE, max(H, k)): the first k columns are used
        first, last = chunk_bounds(m, chunks, c)
        loss_sum = 0.0
        correct = 0
        for tile_first in range(first, last, TILE):
            count = min(TILE, last - tile_first)
            tile_loss, tile_correct = tile_step(
                gW1, gb1, gW2, gb2, Z1, A1, dZ1, A2,
                W1, b1, W2, b2, X, labels, order, start + tile_first, count, hidden, loss,
            )  # fmt: skip
            loss_sum += tile_loss
            correct += tile_correct
        losses[c] = loss_sum
        corrects[c] = correct

    p = theta.size
    for block in prange((p + BLOCK - 1) // BLOCK):  # iteration owns θ[a:b] and its state
        a = block * BLOCK
        b = min(p, a + BLOCK)
        reduce_and_update_block(theta, state1, state2, dtheta, partial, chunks, m, sizes,
                                optimizer, learning_rate, weight_decay, beta1, beta2, eps,
                                step, a, b)  # fmt: skip


@kernel
def train_epoch(
    theta, state1, state2, X, labels, order, sizes, hidden, loss, optimizer,
    learning_rate, weight_decay, beta1, beta2, eps, step, batch_size,
):  # fmt: skip
    """network.train_epoch for one hidden layer: same arguments, same returns."""
    n_samples = order.size
    n_in, H, k = sizes[0], sizes[1], sizes[2]
    capacity = min(batch_size, n_samples)
    chunks_max = chunk_count(capacity)
    dtype = theta.dtype
    partial = np.empty((chunks_max, theta.size), dtype)
    scratch = np.empty((chunks_max, 4, TILE, max(H, k)), dtype)
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
        if weight_decay != 0:  # (12), on θ before this step's update
            W1, _, W2, _ = views(theta, H, n_in, k)
            penalty = l2_penalty(W1, weight_decay) + l2_penalty(W2, weight_decay)
        parallel_step(
            theta, state1, state2, dtheta, partial, losses, corrects, scratch, X, labels, order,
            start, m, sizes, hidden, loss, optimizer, learning_rate, weight_decay, beta1, beta2,
            eps, step + steps + 1,
        )  # fmt: skip
        data_loss = 0.0
        for c in range(chunks):
            data_loss += losses[c]
            correct += corrects[c]
        total_loss += m * (data_loss / m + penalty)
        steps += 1
    return total_loss, correct, steps


@kernel
def predict(outputs, theta, X, sizes, hidden, loss, chunk):
    """network.predict for one hidden layer: (1), (2), (1), (3) a tile of samples at a time.

    One thread: it runs once an epoch on the dev set, and a parallel loop here would cost more
    seconds of compiling, the first time, than it saves.
    """
    # X (N, n_in) -> outputs (N, k): the top layer's A, samples as rows
    n_samples = X.shape[0]
    n_in, H, k = sizes[0], sizes[1], sizes[2]
    W1, b1, W2, b2 = views(theta, H, n_in, k)
    order = np.arange(n_samples)
    n_tiles = (n_samples + TILE - 1) // TILE
    Z1 = np.empty((TILE, H), theta.dtype)
    A1 = np.empty((TILE, H), theta.dtype)
    for tile in range(n_tiles):
        first = tile * TILE
        count = min(TILE, n_samples - first)
        first_layer_forward(Z1, W1, b1, X, order, first, count)
        hidden_forward(A1[:count], Z1[:count], hidden)
        logits = outputs[first : first + count]
        second_layer_forward(logits, W2, b2, A1, count)
        if loss == CROSS_ENTROPY:
            softmax_forward(logits.T, logits.T)  # in place, one sample (column of .T) at a time
        else:
            sigmoid_forward(logits, logits)
