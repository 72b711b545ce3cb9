"""The threads: an epoch whose every step splits its batch between threads, any depth.

Equals network.train_epoch (same arguments, same returns, the same numbers up to rounding),
with the arithmetic of tile_math.py. tile_plumbing.train_epoch is how training calls it.

A batch of m samples is cut into `chunks` fixed by m alone (never by the number of threads):
`prange` iteration c owns chunk c, runs tile_math.tile_step on its samples a tile at a time and
sums their dθ into its own row of `partial`. The same parallel loop, run a second time, then
sums the rows in chunk order, divides by m, adds (12) and updates θ, each iteration a block of θ
it owns (and (12)'s loss term of the block's weights, before the update). So 1 thread and 2
threads add the same numbers in the same order and give bit-identical weights.

chunk_gradient, update_block, tile_math's tile_forward and tile_sparse's sparse_tile_forward
and sparse_tile_backward reach parallel_epoch (and tile_forward forward_tiles) as the addresses of
their machine code (tile_plumbing.KernelAddress says why), so they arrive as arguments.
"""

import numpy as np
from numba import prange

from .jit import addressed_kernel, inlined_kernel, kernel, parallel_kernel
from .network import update
from .optimizers import l2_backward, l2_penalty
from .tile_math import (
    TILE,
    gather_tile,
    index_scratch_size,
    output_tile,
    scratch_size,
    tile_step,
    tile_view,
)

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


@addressed_kernel
def chunk_gradient(
    dtheta, scratch, indices, theta, X, labels, order, first, last, sizes, hidden, loss,
    divisor, sparse, tile_forward, sparse_tile_forward, sparse_tile_backward,
):  # fmt: skip
    """dθ summed over samples order[first:last], (8) and (9) before their division by m, a
    tile at a time. Returns (Σ loss, correct). A chunk holds a tile at least (chunk_count)."""
    loss_sum = 0.0
    correct = 0
    for tile_first in range(first, last, TILE):
        count = min(TILE, last - tile_first)
        tile_loss, tile_correct = tile_step(
            dtheta, scratch, indices, theta, X, labels, order, tile_first, count, sizes, hidden,
            loss, divisor, sparse,
            tile_first == first,  # the first tile writes dθ, the others add to it
            tile_forward, sparse_tile_forward, sparse_tile_backward,
        )  # fmt: skip
        loss_sum += tile_loss
        correct += tile_correct
    return loss_sum, correct


@addressed_kernel
def update_block(
    theta, state1, state2, dtheta, partial, chunks, m, sizes,
    optimizer, learning_rate, weight_decay, beta1, beta2, eps, step, a, b,
):  # fmt: skip
    """Equals network.update on θ[a:b], with dθ[a:b] = Σ_chunks partial / m, plus (12) on the
    weights when weight_decay ≠ 0, as network.backward adds it. Returns l2_penalty of the
    weights in θ[a:b] before the update (0 without weight decay), which parallel_epoch adds up
    over the blocks in order into (12)'s loss term."""
    # Loops over views from 0 (not over range(a, b)): Numba then knows no index is negative,
    # skips the wraparound check and vectorises (measured 8x on the reduction).
    dtheta_block, first_chunk = dtheta[a:b], partial[0, a:b]
    for i in range(dtheta_block.size):
        dtheta_block[i] = first_chunk[i]
    for c in range(1, chunks):  # fixed order: the same sum for any thread count
        chunk = partial[c, a:b]
        for i in range(dtheta_block.size):
            dtheta_block[i] += chunk[i]
    one_over_m = theta.dtype.type(1 / m)
    for i in range(dtheta_block.size):
        dtheta_block[i] *= one_over_m
    penalty = 0.0
    if weight_decay != 0:
        w_first = 0  # layer l's weights are θ[w_first, w_first + sizes[l]·sizes[l − 1])
        for l in range(1, sizes.size):
            w_last = w_first + sizes[l] * sizes[l - 1]
            lo, hi = max(a, w_first), min(b, w_last)
            if lo < hi:
                penalty += l2_penalty(theta[lo:hi], weight_decay)
                l2_backward(dtheta[lo:hi], theta[lo:hi], weight_decay)
            w_first = w_last + sizes[l]
    update(theta[a:b], state1[a:b], state2[a:b], dtheta[a:b], optimizer,
           learning_rate, beta1, beta2, eps, step)  # fmt: skip
    return penalty


@parallel_kernel
def parallel_epoch(
    theta, state1, state2, X, labels, order, sizes, hidden, loss, optimizer,
    learning_rate, weight_decay, beta1, beta2, eps, step, batch_size, divisor, sparse,
    chunk_gradient, update_block, tile_forward, sparse_tile_forward, sparse_tile_backward,
):  # fmt: skip
    """network.train_epoch's loop over the steps, X divided by `divisor` as it is read (255 for
    uint8 pixels, 1 for floats). With `sparse`, θ and its state arrive with the first layer's
    weights transposed (dθ is made so), and that layer's (1), (8), (9) run on the nonzero
    inputs (tile_sparse.py). Each step runs its parallel loop twice: over the chunks, every
    chunk's summed gradient (8), (9); then over the blocks of θ, dθ, (12) and the update."""
    n_samples = order.size
    p = theta.size
    capacity = min(batch_size, n_samples)
    chunks_max = chunk_count(capacity)
    dtype = theta.dtype
    partial = np.empty((chunks_max, p), dtype)  # row c: chunk c's Σ of per-sample dθ
    scratch = np.empty((chunks_max, scratch_size(sizes, sparse)), dtype)
    indices = np.empty((chunks_max, index_scratch_size(sizes, sparse)), np.int32)
    losses = np.empty(chunks_max)
    corrects = np.empty(chunks_max, np.int64)
    dtheta = np.empty_like(theta)
    blocks = (p + BLOCK - 1) // BLOCK
    block_penalties = np.zeros(blocks)  # block b's part of (12)'s loss term
    total_loss = 0.0
    correct = 0
    steps = 0
    for start in range(0, n_samples, capacity):
        m = min(capacity, n_samples - start)
        chunks = chunk_count(m)
        steps += 1
        # One parallel loop run twice, not two loops: Numba compiles each parallel loop into
        # functions of its own, and a second loop took 0.3 s more to compile
        for phase in range(2):
            tasks = chunks if phase == 0 else blocks  # (written in prange(), Numba ran it serially)
            for task in prange(tasks):
                if phase == 0:  # iteration c owns partial[c], losses[c], corrects[c], scratch[c]
                    c = task
                    first, last = chunk_bounds(m, chunks, c)
                    losses[c], corrects[c] = chunk_gradient(
                        partial[c], scratch[c], indices[c], theta, X, labels, order,
                        start + first, start + last, sizes, hidden, loss, divisor, sparse,
                        tile_forward, sparse_tile_forward, sparse_tile_backward,
                    )  # fmt: skip
                else:  # iteration `task` owns θ[a:b], its state and block_penalties[task]
                    a = task * BLOCK
                    b = min(p, a + BLOCK)
                    block_penalties[task] = update_block(
                        theta, state1, state2, dtheta, partial, chunks, m, sizes, optimizer,
                        learning_rate, weight_decay, beta1, beta2, eps, step + steps, a, b,
                    )  # fmt: skip
        penalty = 0.0  # (12), on θ before this step's update, block by block
        for task in range(blocks):
            penalty += block_penalties[task]
        data_loss = 0.0
        for c in range(chunks):
            data_loss += losses[c]
            correct += corrects[c]
        total_loss += m * (data_loss / m + penalty)
    return total_loss, correct, steps


@kernel
def forward_tiles(outputs, theta, X, order, sizes, hidden, loss, divisor, tile_forward):
    """Equals network.predict: the top layer's A for every row of X, a tile at a time.

    One thread: it runs once an epoch on the dev set, and a parallel loop here would cost more
    seconds of compiling, the first time, than it saves.
    """
    # X (N, n_in), order = 0..N-1 -> outputs (N, k): the top layer's A, samples as rows
    n_samples = X.shape[0]
    k = sizes[sizes.size - 1]
    scratch = np.empty(scratch_size(sizes, False), theta.dtype)
    for first in range(0, n_samples, TILE):
        count = min(TILE, n_samples - first)
        gather_tile(tile_view(scratch, 0, count, sizes[0]), X, order, first, divisor)
        top = tile_forward(scratch, theta, count, sizes, hidden, 1)
        output_tile(outputs[first : first + count], tile_view(scratch, top, count, k), loss)
