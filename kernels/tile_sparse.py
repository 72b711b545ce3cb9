"""The first layer on a tile's nonzero inputs alone: (1) and (8) without the zeros.

An MNIST image has 147 nonzero pixels of 784 on average. A zero input adds nothing to
(1) Z[s, j] = b[j] + Σ_i W[j, i]·A[s, i] or to (8) dW[j, i] += Σ_s dZ[s, j]·A[s, i], so for
images that are mostly zeros these kernels visit only the nonzero inputs: a fifth of the
first layer's multiply-adds. Each says which dense tile kernel of tile_math.py it equals; the
sums are the same up to rounding (the zeros they skip add exactly nothing, the order of the
rest differs), as long as the weights and gradients are finite: the dense kernels multiply an
infinite weight by a zero pixel into NaN, these never read it.

Layout: the first layer's W transposed, W_T (n_in, n_out), so that the weights of one input to
every unit are one contiguous row, and the loops over the units vectorise. tile_plumbing turns
the first layer of θ (and of the optimizer's state and so of dθ) to this layout before an
epoch and back after it; the update is elementwise and does not mind.

    gather_nonzero   a tile's nonzero inputs, listed by sample and by input
    sparse_forward   (1) for the first layer          equals dense_tile_forward(Z, W, b, A0)
    sparse_backward  (8), (9) for the first layer     equals dense_tile_backward(dW, db, dZ, A0)

Both come down to one loop, add_picked_rows: a row of Z plus rows of W_T picked by the
sample's nonzero inputs, or a row of dW_T plus rows of dZ picked by the samples in which that
input is nonzero, each picked row scaled by its input's value; (9) is tile_math's, as for a
dense layer.

sparse_tile_forward and sparse_tile_backward, at the end, run them on a tile's scratch, where
tile_math.tile_step (which receives them by address) keeps everything else of the tile.
"""

from .jit import addressed_kernel, inlined_kernel
from .network import bias_view
from .tile_math import TILE, bias_tile_backward, dense_scratch_size, sparse_list_size, tile_view


@inlined_kernel
def transposed_weights_view(theta, sizes):
    """W[1]ᵀ (n_in, n_out) as a view into θ, where tile_plumbing has put it transposed."""
    return theta[: sizes[0] * sizes[1]].reshape((sizes[0], sizes[1]))


@inlined_kernel
def gather_nonzero(
    input_values, nonzero_inputs, inputs_per_sample,
    sample_values, nonzero_samples, samples_per_input, X, order, first, divisor,
):  # fmt: skip
    """The tile's nonzero inputs, listed twice, each list padded to a multiple of 4 with
    entries of value 0 that pick row 0 (and add nothing):
    by sample: sample s's nonzero inputs, nonzero_inputs[s, :inputs_per_sample[s]], in
    increasing order, and their values input_values[s, t] = X[order[first + s],
    nonzero_inputs[s, t]] / divisor, as gather_tile scales them;
    by input: the samples input i is nonzero in, nonzero_samples[i, :samples_per_input[i]], in
    increasing order, and the same values in sample_values[i]."""
    # X (N, n_in), order (N,) -> input_values, nonzero_inputs (count, n_in + 3),
    # inputs_per_sample (count,), sample_values, nonzero_samples (n_in, count + 3),
    # samples_per_input (n_in,)
    count = inputs_per_sample.size
    n_in = samples_per_input.size
    real = input_values.dtype.type
    denominator = real(divisor)
    for i in range(n_in):
        samples_per_input[i] = 0
    for s in range(count):
        row, inputs, values = X[order[first + s]], nonzero_inputs[s], input_values[s]
        n = 0
        for i in range(n_in):  # without a branch: i is written, and kept only if row[i] ≠ 0
            inputs[n] = i
            n += row[i] != 0
        for t in range(n):
            i = inputs[t]
            value = real(row[i]) / denominator
            values[t] = value
            place = samples_per_input[i]
            nonzero_samples[i, place], sample_values[i, place] = s, value
            samples_per_input[i] = place + 1
        while n % 4 != 0:
            inputs[n], values[n] = 0, 0
            n += 1
        inputs_per_sample[s] = n
    for i in range(n_in):
        while samples_per_input[i] % 4 != 0:
            place = samples_per_input[i]
            nonzero_samples[i, place], sample_values[i, place] = 0, 0
            samples_per_input[i] = place + 1


@inlined_kernel
def add_picked_rows(row, rows, picks, scales, n):
    """row += Σ_{t < n} scales[t]·rows[picks[t]], n a multiple of 4: what (1) and (8) both
    become on the nonzero inputs alone. Four picked rows at a time, so that `row` is read and
    written once for every four of them."""
    # rows (r, n_row), picks, scales (≥ n,) -> row (n_row,), accumulated
    for t in range(0, n, 4):
        r0, r1, r2, r3 = rows[picks[t]], rows[picks[t + 1]], rows[picks[t + 2]], rows[picks[t + 3]]
        c0, c1, c2, c3 = scales[t], scales[t + 1], scales[t + 2], scales[t + 3]
        for j in range(row.size):
            row[j] += c0 * r0[j] + c1 * r1[j] + c2 * r2[j] + c3 * r3[j]


@inlined_kernel
def sparse_forward(Z, W_T, b, input_values, nonzero_inputs, inputs_per_sample):
    """Equals dense_tile_forward(Z, W, b, A0) with W_T = Wᵀ, up to rounding and for finite W,
    over A0's nonzero inputs: (1) Z[s, :] = b + Σ_{i: A0[s, i] ≠ 0} A0[s, i]·W_T[i, :]."""
    # W_T (n_in, n_out), b (n_out,), the by-sample lists of gather_nonzero -> Z (count, n_out)
    count, n_out = Z.shape
    for s in range(count):
        z = Z[s]
        for j in range(n_out):
            z[j] = b[j]
        add_picked_rows(z, W_T, nonzero_inputs[s], input_values[s], inputs_per_sample[s])


@inlined_kernel
def sparse_backward(
    dW_T, db, dZ, sample_values, nonzero_samples, samples_per_input, overwrite
):  # fmt: skip
    """Equals dense_tile_backward(dW, db, dZ, A0, overwrite) with dW_T = dWᵀ, up to rounding
    and for finite dZ, over A0's nonzero inputs, an input at a time:
    (8) dW_T[i, :] += Σ_{s: A0[s, i] ≠ 0} A0[s, i]·dZ[s, :] and (9) db[j] += Σ_s dZ[s, j]."""
    # dZ (count, n_out), the by-input lists of gather_nonzero
    # -> dW_T (n_in, n_out), db (n_out,), accumulated
    n_out = dZ.shape[1]
    n_in = dW_T.shape[0]
    bias_tile_backward(db, dZ, overwrite)  # (9)
    # forward: Z[s, j] = b[j] + Σ_i W_T[i, j]·A0[s, i]  =>  ∂Z[s, j]/∂W_T[i, j] = A0[s, i]
    for i in range(n_in):
        row = dW_T[i]
        if overwrite:
            for j in range(n_out):
                row[j] = 0
        add_picked_rows(row, dZ, nonzero_samples[i], sample_values[i], samples_per_input[i])


@inlined_kernel
def sparse_views(scratch, indices, count, sizes):
    """gather_nonzero's lists for a tile of `count` samples, by sample (input_values,
    nonzero_inputs, inputs_per_sample) and by input (sample_values, nonzero_samples,
    samples_per_input), cut from the end of the scratch and from the index scratch."""
    # scratch (scratch_size(sizes, True),), indices (index_scratch_size(sizes, True),)
    n_in = sizes[0]
    at = dense_scratch_size(sizes)
    by_sample = TILE * (n_in + 3)
    input_values = tile_view(scratch, at, count, n_in + 3)
    sample_values = tile_view(scratch, at + by_sample, n_in, count + 3)
    nonzero_inputs = tile_view(indices, 0, count, n_in + 3)
    nonzero_samples = tile_view(indices, by_sample, n_in, count + 3)
    at = sparse_list_size(n_in)
    inputs_per_sample = indices[at : at + count]
    samples_per_input = indices[at + TILE : at + TILE + n_in]
    return (
        input_values, nonzero_inputs, inputs_per_sample,
        sample_values, nonzero_samples, samples_per_input,
    )  # fmt: skip


@addressed_kernel
def sparse_tile_forward(scratch, indices, theta, X, order, first, count, sizes, divisor):
    """Equals gather_tile, then dense_tile_forward(Z[1], W[1], b[1], A0), up to rounding, on
    the tile's nonzero inputs: their lists (gather_nonzero) into the end of
    the scratch and the index scratch, then (1) Z[1] into A[1]'s block, where
    tile_forward(…, first_dense_layer=2) goes on from. θ's first layer is transposed.
    tile_step calls it by its address: a network that does not need it does not compile it."""
    # theta (p,) with W[1]ᵀ (n_in, sizes[1]), X (N, n_in), order (N,) -> scratch, indices
    (
        input_values, nonzero_inputs, inputs_per_sample,
        sample_values, nonzero_samples, samples_per_input,
    ) = sparse_views(scratch, indices, count, sizes)  # fmt: skip
    gather_nonzero(
        input_values, nonzero_inputs, inputs_per_sample,
        sample_values, nonzero_samples, samples_per_input, X, order, first, divisor,
    )  # fmt: skip
    Z = tile_view(scratch, TILE * sizes[0], count, sizes[1])
    W_T, b = transposed_weights_view(theta, sizes), bias_view(theta, sizes, 1)
    sparse_forward(Z, W_T, b, input_values, nonzero_inputs, inputs_per_sample)


@addressed_kernel
def sparse_tile_backward(dtheta, scratch, indices, count, sizes, dZ_at, overwrite):
    """Equals dense_tile_backward(dW[1], db[1], dZ[1], A0, overwrite), up to rounding, on the
    tile's nonzero inputs (sparse_backward), from the lists sparse_tile_forward
    made and dZ[1] at scratch[dZ_at:]; dθ's first layer is transposed like θ's. tile_step calls
    it by its address, as sparse_tile_forward."""
    # dtheta (p,) with dW[1]ᵀ (n_in, sizes[1]); scratch, indices -> dW[1]ᵀ, db[1] in dtheta
    _, _, _, sample_values, nonzero_samples, samples_per_input = sparse_views(
        scratch, indices, count, sizes
    )
    dW_T, db = transposed_weights_view(dtheta, sizes), bias_view(dtheta, sizes, 1)
    dZ = tile_view(scratch, dZ_at, count, sizes[1])
    sparse_backward(dW_T, db, dZ, sample_values, nonzero_samples, samples_per_input, overwrite)
