"""The tile arithmetic: forward and backward for a tile of samples, any number of layers.

What training runs is these kernels, called by tile_threads.py (which splits a batch between
threads) through tile_plumbing.py (which hands them to Numba). Each one computes what a
per-equation kernel of dense.py, activations.py or output.py computes, and says which; the
tests check them against those and against the NumPy oracle.

Legend, as in the per-equation kernels: L layers; sizes[0] = n_in inputs, sizes[l] units of
layer l, sizes[L] = k classes; n_out, n_in the units and inputs of one layer; m samples in a
batch; `count` samples in a tile (at most TILE); s a sample, j a unit, i an input, c a class.
Gradients are d + what they are the gradient of (dW, db, dZ, dA).

Layout: inside a tile every array holds one sample per row, (count, units): A[s, j] here is
A[j, s] in the math and in the per-equation kernels, which hold samples as columns. A row is
then one sample's whole layer, so every long loop, over the inputs i, runs along a row of
contiguous numbers, and one kernel serves every layer (but a sparse first one, below):

    forward, l = 1..L:  (1) Z[l] = W[l]·A[l−1] + b[l]     dense_tile_forward
                        (2) A[l] = g(Z[l]), l < L          network.hidden_forward, in place
    output:             (3) softmax, (4), (6)             softmax_cross_entropy_tile
                        or sigmoid, (5), (7)              sigmoid_squared_error_tile
    backward, l = L..1: (8) (9) dW[l], db[l]               dense_tile_backward
                        (10) dA[l−1] = W[l]ᵀ·dZ[l], l > 1   dense_tile_backward_input
                        (11) dZ[l−1] = dA[l−1] ⊙ g'        network.hidden_backward, in place

Register tiles: the two long kernels compute five units × four samples at once. The 20 running
sums share their loads, so each weight read serves four samples and each input five units
(../shared/PERF_NOTES.md, lesson 2); 20 sums and 9 loaded vectors fit in the 32 vector
registers. Units go in blocks of UNIT_BLOCK, and a block's weights (10 × 784 numbers, 31 KB in
float32) stay in the core's cache while every sample of the tile passes them.

Images: A0, the tile's inputs, is gathered from the rows order[first:first + count] of X and
scaled as it is read (gather_tile), so X can stay uint8 pixels (divided by 255) or be floats
(divided by 1: used as given).

Mostly-zero images (MNIST) and a wide first layer: the first layer's (1), (8) and (9) run on
the nonzero inputs alone, with W[1] transposed (tile_sparse.py, whose sparse_tile_forward and
sparse_tile_backward tile_step receives by address); tile_plumbing.sparse_first_layer says when.

tile_forward, (1) and (2) for every layer, serves training and prediction as one compiled
function, which tile_step receives by its address (tile_plumbing.KernelAddress says why).
"""

import math

from .activations import sigmoid
from .codes import CROSS_ENTROPY
from .jit import addressed_kernel, inlined_kernel, kernel
from .network import bias_view, hidden_backward, hidden_forward, weights_view

TILE = 64  # samples a tile holds: 64 × 784 inputs, 200 KB in float32, stay in the core's cache
UNIT_BLOCK = 10  # units whose weights stay in cache while the tile's samples pass them


@kernel
def gather_tile(A0, X, order, first, divisor):
    """A0[s, :] = X[order[first + s], :] / divisor: the tile's inputs, in A0's float type.

    Equals network.gather_batch's A0 (transposed) after training.to_inputs, bit for bit: the
    pixel converted to the float type, then divided, as to_inputs does. A division, not a
    multiplication by 1/255, which rounds 126 of the 256 pixel values differently in float32.

    Eight rows at a time: the rows lie anywhere in X, and each one read alone waits for memory
    before the next is asked for; eight in one loop wait together (bench/README, 784-10-10).
    """
    # X (N, n_in) uint8 or float, order (N,) -> A0 (count, n_in)
    count, n_in = A0.shape
    real = A0.dtype.type
    denominator = real(divisor)
    s = 0
    while s + 8 <= count:
        r = first + s
        x0, x1, x2, x3 = X[order[r]], X[order[r + 1]], X[order[r + 2]], X[order[r + 3]]
        x4, x5, x6, x7 = X[order[r + 4]], X[order[r + 5]], X[order[r + 6]], X[order[r + 7]]
        a0, a1, a2, a3 = A0[s], A0[s + 1], A0[s + 2], A0[s + 3]
        a4, a5, a6, a7 = A0[s + 4], A0[s + 5], A0[s + 6], A0[s + 7]
        for i in range(n_in):
            a0[i] = real(x0[i]) / denominator
            a1[i] = real(x1[i]) / denominator
            a2[i] = real(x2[i]) / denominator
            a3[i] = real(x3[i]) / denominator
            a4[i] = real(x4[i]) / denominator
            a5[i] = real(x5[i]) / denominator
            a6[i] = real(x6[i]) / denominator
            a7[i] = real(x7[i]) / denominator
        s += 8
    gathered = s
    for s in range(gathered, count):  # the last count mod 8 rows: one at a time
        row, inputs = X[order[first + s]], A0[s]
        for i in range(n_in):
            inputs[i] = real(row[i]) / denominator


@kernel
def dense_tile_forward(Z, W, b, A):
    """Equals dense_forward(Zᵀ, W, Aᵀ, b), five units by four samples at a time:
    (1) Z[s, j] = b[j] + Σ_i W[j, i]·A[s, i]."""
    # W (n_out, n_in), b (n_out,), A (count, n_in) -> Z (count, n_out)
    n_out, n_in = W.shape
    count = A.shape[0]
    zero = W.dtype.type(0)
    for block_first in range(0, n_out, UNIT_BLOCK):
        block_last = min(n_out, block_first + UNIT_BLOCK)
        s = 0
        while s + 4 <= count:
            a0, a1, a2, a3 = A[s], A[s + 1], A[s + 2], A[s + 3]
            j = block_first
            while j + 5 <= block_last:
                w0, w1, w2, w3, w4 = W[j], W[j + 1], W[j + 2], W[j + 3], W[j + 4]
                z00 = z01 = z02 = z03 = z10 = z11 = z12 = z13 = zero  # z<unit><sample>
                z20 = z21 = z22 = z23 = z30 = z31 = z32 = z33 = zero
                z40 = z41 = z42 = z43 = zero
                for i in range(n_in):
                    p0, p1, p2, p3 = a0[i], a1[i], a2[i], a3[i]
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
                    bias = b[j + u]
                    Z[s, j + u], Z[s + 1, j + u] = z0 + bias, z1 + bias
                    Z[s + 2, j + u], Z[s + 3, j + u] = z2 + bias, z3 + bias
                j += 5
            tiled_units = j
            for j in range(tiled_units, block_last):  # the block's last units: one by four
                w = W[j]
                z0 = z1 = z2 = z3 = zero
                for i in range(n_in):
                    z0 += w[i] * a0[i]
                    z1 += w[i] * a1[i]
                    z2 += w[i] * a2[i]
                    z3 += w[i] * a3[i]
                Z[s, j], Z[s + 1, j] = z0 + b[j], z1 + b[j]
                Z[s + 2, j], Z[s + 3, j] = z2 + b[j], z3 + b[j]
            s += 4
        tiled_samples = s
        for s in range(tiled_samples, count):  # the last count mod 4 samples: one at a time
            a = A[s]
            for j in range(block_first, block_last):
                w = W[j]
                total = zero
                for i in range(n_in):
                    total += w[i] * a[i]
                Z[s, j] = total + b[j]


@kernel
def dense_tile_backward(dW, db, dZ, A, overwrite):
    """Equals dense_backward(dW, db, dZᵀ, Aᵀ) before its division by m, added to dW and db
    (or written over them, if `overwrite`), five units by four samples at a time:
    (8) dW[j, i] += Σ_s dZ[s, j]·A[s, i] and (9) db[j] += Σ_s dZ[s, j].

    `overwrite` zeroes a block of dW's rows just before its sums go in, while the rows are in
    the core's cache: cheaper than zeroing all of dW first, which sends it to memory and back.
    """
    # dZ (count, n_out), A (count, n_in) -> dW (n_out, n_in), db (n_out,), accumulated
    n_out, n_in = dW.shape
    count = A.shape[0]
    bias_tile_backward(db, dZ, overwrite)
    # forward: Z[s, j] = b[j] + Σ_i W[j, i]·A[s, i]  =>  ∂Z[s, j]/∂W[j, i] = A[s, i]
    for block_first in range(0, n_out, UNIT_BLOCK):
        block_last = min(n_out, block_first + UNIT_BLOCK)
        if overwrite:
            for j in range(block_first, block_last):
                row = dW[j]
                for i in range(n_in):
                    row[i] = 0
        s = 0
        while s + 4 <= count:
            a0, a1, a2, a3 = A[s], A[s + 1], A[s + 2], A[s + 3]
            d0, d1, d2, d3 = dZ[s], dZ[s + 1], dZ[s + 2], dZ[s + 3]
            j = block_first
            while j + 5 <= block_last:
                g0, g1, g2, g3, g4 = dW[j], dW[j + 1], dW[j + 2], dW[j + 3], dW[j + 4]
                e00, e01, e02, e03 = d0[j], d1[j], d2[j], d3[j]  # e<unit><sample> = dZ[s, j]
                e10, e11, e12, e13 = d0[j + 1], d1[j + 1], d2[j + 1], d3[j + 1]
                e20, e21, e22, e23 = d0[j + 2], d1[j + 2], d2[j + 2], d3[j + 2]
                e30, e31, e32, e33 = d0[j + 3], d1[j + 3], d2[j + 3], d3[j + 3]
                e40, e41, e42, e43 = d0[j + 4], d1[j + 4], d2[j + 4], d3[j + 4]
                for i in range(n_in):
                    p0, p1, p2, p3 = a0[i], a1[i], a2[i], a3[i]
                    g0[i] += e00 * p0 + e01 * p1 + e02 * p2 + e03 * p3
                    g1[i] += e10 * p0 + e11 * p1 + e12 * p2 + e13 * p3
                    g2[i] += e20 * p0 + e21 * p1 + e22 * p2 + e23 * p3
                    g3[i] += e30 * p0 + e31 * p1 + e32 * p2 + e33 * p3
                    g4[i] += e40 * p0 + e41 * p1 + e42 * p2 + e43 * p3
                j += 5
            tiled_units = j
            for j in range(tiled_units, block_last):  # the block's last units: one by four
                g = dW[j]
                e0, e1, e2, e3 = d0[j], d1[j], d2[j], d3[j]
                for i in range(n_in):
                    g[i] += e0 * a0[i] + e1 * a1[i] + e2 * a2[i] + e3 * a3[i]
            s += 4
        tiled_samples = s
        for s in range(tiled_samples, count):  # the last count mod 4 samples: one at a time
            a = A[s]
            for j in range(block_first, block_last):
                g = dW[j]
                e = dZ[s, j]
                for i in range(n_in):
                    g[i] += e * a[i]


@inlined_kernel
def bias_tile_backward(db, dZ, overwrite):
    """Equals dense_backward's db before its division by m, added to db (or written over it, if
    `overwrite`): (9) db[j] += Σ_s dZ[s, j]. For the dense and the sparse first layer alike."""
    # dZ (count, n_out) -> db (n_out,), accumulated
    count, n_out = dZ.shape
    if overwrite:
        for j in range(n_out):
            db[j] = 0
    for s in range(count):
        for j in range(n_out):
            db[j] += dZ[s, j]


@inlined_kernel
def dense_tile_backward_input(dA, dZ, W, dZ_T, sums, overwrite):
    """Equals dense_backward_input(dAᵀ, dZᵀ, W): (10) dA[s, i] = Σ_j dZ[s, j]·W[j, i],
    computed by dense_tile_backward's register tile, which adds Σ_s dZ[s, j]·A[s, i] to
    dW[j, i]: there with W's rows for A's and a copy dZᵀ for dZ, so that each row of W
    loaded serves four samples' sums (a loop adding dZ[s, j]·W[j, :] to dA[s, :] one j at a
    time reached a third of the tile's speed). `sums` receives Σ_j dZ[s, j], unused.
    `overwrite` is True, passed as a run-time flag: with the literal True, Numba compiled
    dense_tile_backward a second time (0.7 s of a cold start)."""
    # dZ (count, n_out), W (n_out, n_in); dZ_T (n_out, count), sums (count,) -> dA (count, n_in)
    count, n_out = dZ.shape
    for j in range(n_out):
        for s in range(count):
            dZ_T[j, s] = dZ[s, j]
    dense_tile_backward(dA, sums, dZ_T, W, overwrite)


@kernel
def softmax_cross_entropy_tile(dZ, Z, labels, order, first):
    """Equals softmax_forward, cross_entropy_loss × count and output_error on the tile:
    (3) A = softmax(Z), (4) Σ_s −log A[s, y_s] read from the logits, (6) dZ = A − Y.
    Returns the summed loss. Up to rounding: A is e times 1/Σe here, e / Σe there, so in
    float32 they can differ by two units in the last place (1/Σe is rounded once more)."""
    # Z (count, k) logits, labels (N,) -> dZ (count, k)
    count, k = Z.shape
    loss_sum = 0.0
    for s in range(count):
        z, dz = Z[s], dZ[s]
        largest = z[0]
        for c in range(1, k):
            largest = max(largest, z[c])
        total = 0.0
        for c in range(k):
            e = math.exp(z[c] - largest)  # every exponent ≤ 0: no overflow
            dz[c] = e
            total += e
        label = labels[order[first + s]]
        loss_sum -= z[label] - largest - math.log(total)  # (4) −log A[s, y], finite everywhere
        # k divisions by the float64 total took 1.3 of the 784-10-10 epoch's 47 ms on one thread
        share = dz.dtype.type(1 / total)
        for c in range(k):
            dz[c] = dz[c] * share  # (3)
        dz[label] -= 1  # (6) dZ = A − Y
    return loss_sum


@kernel
def sigmoid_squared_error_tile(dZ, Z, labels, order, first):
    """Equals sigmoid_forward, mse_loss × count, output_error and sigmoid_backward on the tile:
    (3) A = σ(Z), (5) Σ_s ½ Σ_c (A − Y)², (7) dA = A − Y, dZ = dA ⊙ A ⊙ (1 − A).
    Returns the summed loss."""
    # Z (count, k) logits, labels (N,) -> dZ (count, k)
    count, k = Z.shape
    loss_sum = 0.0
    for s in range(count):
        label = labels[order[first + s]]
        for c in range(k):
            a = sigmoid(Z[s, c])  # (3)
            error = a - (1 if c == label else 0)  # (7) dA = A − Y
            loss_sum += 0.5 * error * error  # (5)
            dZ[s, c] = error * a * (1 - a)  # (7)
    return loss_sum


@kernel
def output_tile(A, Z, loss):
    """Equals softmax_forward(Aᵀ, Zᵀ) for cross-entropy, sigmoid_forward(Aᵀ, Zᵀ) otherwise:
    (3), one sample (row) at a time. A may be Z itself."""
    # Z (count, k) logits -> A (count, k)
    count, k = Z.shape
    for s in range(count):
        if loss == CROSS_ENTROPY:
            largest = Z[s, 0]
            for c in range(1, k):
                largest = max(largest, Z[s, c])
            total = 0.0
            for c in range(k):
                e = math.exp(Z[s, c] - largest)
                A[s, c] = e
                total += e
            for c in range(k):
                A[s, c] = A[s, c] / total
        else:
            for c in range(k):
                A[s, c] = sigmoid(Z[s, c])


@kernel
def count_correct_tile(Z, labels, order, first):
    """Equals network.count_correct on the logits: softmax and sigmoid keep their order."""
    # Z (count, k) -> int
    count, k = Z.shape
    correct = 0
    for s in range(count):
        best = 0
        for c in range(1, k):
            if Z[s, c] > Z[s, best]:
                best = c
        if best == labels[order[first + s]]:
            correct += 1
    return correct


@kernel
def scratch_size(sizes, sparse):
    """Numbers one tile's scratch holds: the dense part (dense_scratch_size) and, with a
    `sparse` first layer, then gather_nonzero's values (tile_sparse.sparse_views)."""
    return dense_scratch_size(sizes) + (sparse_list_size(sizes[0]) if sparse else 0)


@inlined_kernel
def dense_scratch_size(sizes):
    """A0 and every layer's A (TILE rows each), two buffers for dZ and dA of the widest layer,
    dZᵀ and the sums for dense_tile_backward_input."""
    total, widest = sizes[0], 0
    for l in range(1, sizes.size):
        total += sizes[l]
        widest = max(widest, sizes[l])
    return TILE * (total + 3 * widest + 1)


@inlined_kernel
def sparse_list_size(n_in):
    """Entries of gather_nonzero's two lists of a tile: TILE samples' nonzero inputs (n_in + 3
    each, with the padding to 4), n_in inputs' samples (TILE + 3 each)."""
    return TILE * (n_in + 3) + n_in * (TILE + 3)


@kernel
def index_scratch_size(sizes, sparse):
    """Integers one tile's index scratch holds: gather_nonzero's lists of nonzero inputs and
    samples and their lengths with a `sparse` first layer (tile_sparse.sparse_views), none
    otherwise."""
    n_in = sizes[0]
    return sparse_list_size(n_in) + TILE + n_in if sparse else 0


@inlined_kernel
def tile_view(scratch, offset, count, units):
    """scratch[offset:offset + count·units] as a (count, units) array."""
    return scratch[offset : offset + count * units].reshape((count, units))


@addressed_kernel
def tile_forward(scratch, theta, count, sizes, hidden, first_dense_layer):
    """(1) for layers first_dense_layer..L and (2) for every hidden layer, for the `count`
    samples whose inputs A0 gather_tile has put at the start of the scratch
    (first_dense_layer = 1), or whose Z[1] sparse_tile_forward has put in A[1]'s block
    (first_dense_layer = 2). The top layer's logits Z[L] are left in its block of the scratch;
    returns that block's offset. Training (tile_step) and prediction (forward_tiles) call it by
    the address of its machine code, so that both run one compiled copy of it.

    Scratch layout: A0 (TILE, n_in), then A[l] (TILE, sizes[l]) for l = 1..L; Z[l] is computed
    into A[l]'s place and activated there, so the backward pass takes g'(Z[l]) from A[l].
    tile_step puts its dZ and dA buffers, dZᵀ and the sums after them; with a sparse first
    layer, A0's block is unused and the lists of the nonzero inputs come last
    (tile_sparse.sparse_views)."""
    n_layers = sizes.size - 1
    A_prev = tile_view(scratch, 0, count, sizes[0])
    offset = TILE * sizes[0]
    for l in range(1, n_layers + 1):
        A = tile_view(scratch, offset, count, sizes[l])
        if l >= first_dense_layer:
            W, b = weights_view(theta, sizes, l), bias_view(theta, sizes, l)
            dense_tile_forward(A, W, b, A_prev)
        if l < n_layers:
            hidden_forward(A, A, hidden)  # (2) in place: elementwise
            offset += TILE * sizes[l]
        A_prev = A
    return offset


@inlined_kernel
def tile_step(
    dtheta, scratch, indices, theta, X, labels, order, first, count, sizes, hidden, loss,
    divisor, sparse, overwrite, tile_forward, sparse_tile_forward, sparse_tile_backward,
):  # fmt: skip
    """Equals network.forward, batch_loss × count, count_correct and backward for the samples
    order[first:first + count], with the gradients added to dθ (or written over it, if
    `overwrite`) before their division by m and without L2 (12), which the update adds.
    Returns (Σ loss, correct). `tile_forward` (above), `sparse_tile_forward` and
    `sparse_tile_backward` (tile_sparse.py) come by their addresses. With `sparse`, the first
    layer runs on the nonzero inputs (the sparse kernels), with θ's and dθ's first layer
    transposed."""
    # theta, dtheta (p,) laid out as network.py says; scratch (scratch_size(sizes, sparse),),
    # indices (index_scratch_size(sizes, sparse),)
    n_layers = sizes.size - 1
    k = sizes[n_layers]
    if sparse:
        sparse_tile_forward(scratch, indices, theta, X, order, first, count, sizes, divisor)
        top = tile_forward(scratch, theta, count, sizes, hidden, 2)
    else:
        gather_tile(tile_view(scratch, 0, count, sizes[0]), X, order, first, divisor)
        top = tile_forward(scratch, theta, count, sizes, hidden, 1)
    Z_top = tile_view(scratch, top, count, k)
    correct = count_correct_tile(Z_top, labels, order, first)
    # the two buffers dZ and dA take turns, after every activation
    widest = 0
    for l in range(1, n_layers + 1):
        widest = max(widest, sizes[l])
    buffers = top + TILE * k
    transposed = buffers + 2 * TILE * widest  # dZᵀ, then TILE sums
    dZ_at = buffers
    dZ = tile_view(scratch, dZ_at, count, k)
    if loss == CROSS_ENTROPY:
        loss_sum = softmax_cross_entropy_tile(dZ, Z_top, labels, order, first)
    else:
        loss_sum = sigmoid_squared_error_tile(dZ, Z_top, labels, order, first)
    turn = 0
    offset = top
    for l in range(n_layers, 0, -1):
        offset -= TILE * sizes[l - 1]  # A[l − 1]'s block; A0's is at 0
        A_prev = tile_view(scratch, offset, count, sizes[l - 1])
        W = weights_view(theta, sizes, l)
        dW, db = weights_view(dtheta, sizes, l), bias_view(dtheta, sizes, l)
        if l == 1 and sparse:
            sparse_tile_backward(dtheta, scratch, indices, count, sizes, dZ_at, overwrite)
        else:
            dense_tile_backward(dW, db, dZ, A_prev, overwrite)
        if l > 1:
            turn = 1 - turn
            dA_at = buffers + turn * TILE * widest
            dA_prev = tile_view(scratch, dA_at, count, sizes[l - 1])
            dZ_T = tile_view(scratch, transposed, sizes[l], count)
            sums = scratch[transposed + TILE * widest : transposed + TILE * widest + count]
            # (10); count > 0 is True, known only at run time (dense_tile_backward_input says why)
            dense_tile_backward_input(dA_prev, dZ, W, dZ_T, sums, count > 0)
            # (11) in place, elementwise; ReLU's g'(Z) from A: A > 0 exactly where Z > 0
            hidden_backward(dA_prev, dA_prev, A_prev, A_prev, hidden)
            dZ, dZ_at = dA_prev, dA_at
    return loss_sum, correct
