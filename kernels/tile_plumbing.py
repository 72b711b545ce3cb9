"""The Numba plumbing of the tiled path: what training calls, and how the kernels are handed over.

    train_epoch  equals network.train_epoch: runs tile_threads.parallel_epoch
    predict      equals network.predict: runs tile_threads.forward_tiles

Both take the same arguments as network.py's, for any number of layers, any activation, loss
and optimizer, and X as uint8 pixels (divided by 255 as they are read) or floats (as given).
A wide first layer on mostly-zero X runs on the nonzero inputs alone (tile_sparse.py;
sparse_first_layer says when), with its weights transposed in θ and the optimizer's state
while train_epoch runs (transpose_first_layer).
The activation, loss and optimizer travel as integer codes, read at run time, and the
hyperparameters as floats: so every network of one float type and one kind of X runs one
compiled specialisation of each kernel, whatever its depth, and a machine compiles it once.
The kernels that a parallel loop calls, or that both call, go over by address (KernelAddress).
"""

import functools

import numba.experimental.function_type  # noqa: F401 (registers a KernelAddress's Numba type)
import numpy as np
from numba import typeof, types
from numba.core.typing import Signature

from . import tile_math, tile_sparse, tile_threads
from .jit import addressed_kernel


class KernelAddress(types.WrapperAddressProtocol):
    """A kernel handed to a parallel kernel as an argument: the address of its machine code.

    Numba compiles a `prange` loop's body into a function of its own, wrapped twice, and copies
    the machine code of every kernel the body calls into each of those three functions and into
    the kernel that holds the loop, optimising and compiling it four times over. A kernel passed
    as a KernelAddress is compiled once, and the loop calls it through its address.
    Measured on the one-hidden-layer kernels this path replaced, a fresh cache each time:
    compiling what the default training run needs took 30-32 s with the tile kernels compiled
    into the loops and 19-22 s with them passed this way, and the 784-10-10 epoch ran as fast.
    So, too, a kernel that two kernels call is compiled once, not into each: tile_forward,
    called by chunk_gradient and by forward_tiles (predict compiled in 0.6 s instead of 1.2 s).
    The kernel must be an addressed_kernel (jit.py), which has the entry point for C calls.

    `signature` gives the types of the arguments the caller passes, exactly (Numba's
    first-class function types). Called from Python, as it is when NUMBA_DISABLE_JIT=1, it runs
    the kernel itself; the signature, the address and `compile` exist only for compiled code,
    so the coverage run (NUMBA_DISABLE_JIT=1) cannot see them, and every compiled test of
    train_epoch runs them.
    """

    def __init__(self, kernel, signature: Signature):
        self.kernel = kernel
        self._signature = signature

    def signature(self) -> Signature:  # pragma: no cover
        return self._signature

    def compile(self):  # pragma: no cover
        """Compile the kernel for this signature, or load it from the disk cache."""
        return self.kernel.get_compile_result(self._signature)

    def __wrapper_address__(self) -> int:  # pragma: no cover
        compiled = self.compile()
        name = compiled.fndesc.llvm_cfunc_wrapper_name  # its entry point for C-style calls
        address = compiled.library.get_pointer_to_function(name)
        if not address:  # a call through address 0 would end the process
            raise TypeError(f"{self.kernel.__name__} is not an addressed_kernel (jit.py)")
        return address

    def __call__(self, *arguments):
        return self.kernel(*arguments)


def input_divisor(X: np.ndarray) -> float:
    """What X's numbers are divided by as the kernels read them: 255 for uint8 pixels, which
    then become what training.to_inputs makes of them, bit for bit; 1 for floats."""
    return 255.0 if X.dtype == np.uint8 else 1.0


def train_epoch(
    theta, state1, state2, X, labels, order, sizes, hidden, loss, optimizer,
    learning_rate, weight_decay, beta1, beta2, eps, step, batch_size,
):  # fmt: skip
    """network.train_epoch on tiles and threads: same arguments, same returns. With a sparse
    first layer (sparse_first_layer), θ, state1 and state2 hold that layer's weights transposed
    while the epoch runs, and as network.py lays them out again when it returns or raises."""
    codes = (int(hidden), int(loss), int(optimizer))
    hyper = tuple(float(value) for value in (learning_rate, weight_decay, beta1, beta2, eps))
    arrays = (theta, state1, state2, X, labels, order, sizes)
    sparse = sparse_first_layer(X, sizes)
    kernels = kernel_addresses(*(typeof(array) for array in arrays), sparse)
    turned = []  # each array once, even if the caller passed one twice
    try:
        for array in (theta, state1, state2) if sparse else ():
            if not any(array is done for done in turned):
                transpose_first_layer(sizes, array)
                turned.append(array)
        return tile_threads.parallel_epoch(
            *arrays, *codes, *hyper, int(step), int(batch_size), input_divisor(X), sparse,
            *kernels,
        )  # fmt: skip
    finally:
        for array in turned:  # back, whatever happened
            transpose_first_layer(sizes, array, back=True)


def predict(outputs, theta, X, sizes, hidden, loss, chunk):
    """network.predict on tiles: same arguments (`chunk` is unused: a tile at a time)."""
    order = np.arange(X.shape[0])  # the tile kernels read rows X[order[s]]: here in turn
    tile_forward = tile_forward_address(typeof(theta), typeof(sizes))
    tile_threads.forward_tiles(
        outputs, theta, X, order, sizes, int(hidden), int(loss), input_divisor(X), tile_forward
    )


SPARSE_MIN_UNITS = 64  # a first layer this wide or wider runs on the nonzero inputs alone ...
SPARSE_MAX_DENSITY = 0.3  # ... when at most this share of the inputs is nonzero


def sparse_first_layer(X: np.ndarray, sizes: np.ndarray) -> bool:
    """Whether the first layer runs on the nonzero inputs alone (tile_sparse.py): when it has
    SPARSE_MIN_UNITS units or more (its loops over the units are then long enough to
    vectorise) and at most SPARSE_MAX_DENSITY of X's numbers are nonzero, judged on 1,024 of
    its rows or fewer, spread over it. MNIST's pixels are 19% nonzero."""
    if sizes[1] < SPARSE_MIN_UNITS or X.size == 0:
        return False
    rows = X[:: -(-X.shape[0] // 1024)]  # every ⌈N / 1024⌉-th row
    return np.count_nonzero(rows) <= SPARSE_MAX_DENSITY * rows.size


def transpose_first_layer(sizes: np.ndarray, *arrays: np.ndarray, back: bool = False) -> None:
    """Turn the first layer's weights, array[:n_out·n_in], from W (n_out, n_in) to Wᵀ
    (n_in, n_out) in each array, in place, as tile_sparse.py takes them; `back` from Wᵀ to W."""
    shape = (int(sizes[1]), int(sizes[0]))
    for array in arrays:
        weights = array[: shape[0] * shape[1]]
        weights[:] = weights.reshape(shape[::-1] if back else shape).T.ravel()


@functools.cache
def kernel_addresses(theta, state1, state2, X, labels, order, sizes, sparse):
    """chunk_gradient, update_block, tile_forward, sparse_tile_forward and sparse_tile_backward,
    by address, for these Numba types of the arrays.

    Their signatures, argument by argument as parallel_epoch calls them. The arrays it makes
    itself (dθ, the partial gradients, the scratch, their rows) are C arrays of θ's float type,
    the index scratch of int32. Without a `sparse` first layer, the two sparse kernels are
    stood in for by kernels that do nothing and are never called, so that a network that does
    not need the sparse ones does not compile them.
    """
    integer, real = types.int64, types.float64
    vector, matrix = types.Array(theta.dtype, 1, "C"), types.Array(theta.dtype, 2, "C")
    indices = types.Array(types.int32, 1, "C")
    tile_forward = tile_forward_address(theta, sizes)
    sparse_forward_signature = types.none(
        vector, indices, theta, X, order, integer, integer, sizes, real
    )
    sparse_backward_signature = types.none(
        vector, vector, indices, integer, sizes, integer, types.boolean
    )
    sparse_tile_forward = KernelAddress(
        tile_sparse.sparse_tile_forward if sparse else not_sparse_forward, sparse_forward_signature
    )
    sparse_tile_backward = KernelAddress(
        tile_sparse.sparse_tile_backward if sparse else not_sparse_backward,
        sparse_backward_signature,
    )
    chunk_signature = types.Tuple((real, integer))(
        vector, vector, indices, theta, X, labels, order, integer, integer, sizes, integer,
        integer, real, types.boolean, typeof(tile_forward), typeof(sparse_tile_forward),
        typeof(sparse_tile_backward),
    )  # fmt: skip
    update_signature = real(
        theta, state1, state2, vector, matrix, integer, integer, sizes,
        integer, real, real, real, real, real, integer, integer, integer,
    )  # fmt: skip
    return (
        KernelAddress(tile_threads.chunk_gradient, chunk_signature),
        KernelAddress(tile_threads.update_block, update_signature),
        tile_forward,
        sparse_tile_forward,
        sparse_tile_backward,
    )


@addressed_kernel
def not_sparse_forward(scratch, indices, theta, X, order, first, count, sizes, divisor):
    """Stands in for tile_sparse.sparse_tile_forward when the first layer is dense: not called."""


@addressed_kernel
def not_sparse_backward(dtheta, scratch, indices, count, sizes, dZ_at, overwrite):
    """Stands in for tile_sparse.sparse_tile_backward when the first layer is dense: not called."""


@functools.cache
def tile_forward_address(theta, sizes):
    """tile_math.tile_forward, by address, for these Numba types of θ and sizes: the scratch
    (a row of parallel_epoch's, or forward_tiles' own) is a C vector of θ's float type."""
    integer, vector = types.int64, types.Array(theta.dtype, 1, "C")
    signature = integer(vector, theta, integer, sizes, integer, integer)
    return KernelAddress(tile_math.tile_forward, signature)
