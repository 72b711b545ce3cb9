"""Dense (fully connected) layer, forward and backward.

Sizes: m samples, n_in inputs, n_out units; s a sample, j a unit, i an input. Samples are
columns, as in the math.

    (1)  Z = W·A + b                    Z[j, s] = b[j] + Σ_i W[j, i] · A[i, s]
    (8)  dW = dZ·Aᵀ / m                 dW[j, i] = Σ_s dZ[j, s] · A[i, s] / m
    (9)  db = Σ_s dZ / m                db[j] = Σ_s dZ[j, s] / m
    (10) dA_prev = Wᵀ·dZ                dA_prev[i, s] = Σ_j W[j, i] · dZ[j, s]

Argument order everywhere: outputs first, then inputs.
"""

from numba import prange

from .jit import parallel_kernel


@parallel_kernel
def dense_forward(Z, W, A, b):
    """(1) Z = W·A + b."""
    # W (n_out, n_in), A (n_in, m), b (n_out,) -> Z (n_out, m)
    n_out, n_in = W.shape
    m = A.shape[1]
    for j in prange(n_out):  # iteration j owns row Z[j, :]
        for s in range(m):
            Z[j, s] = b[j]
        for i in range(n_in):
            w = W[j, i]
            # The inner loop runs along a row of A, so it reads memory in order and vectorises.
            for s in range(m):
                Z[j, s] += w * A[i, s]


@parallel_kernel
def dense_backward(dW, db, dZ, A_prev):
    """(8) dW = dZ·A_prevᵀ / m and (9) db = Σ_s dZ / m."""
    # dZ (n_out, m), A_prev (n_in, m) -> dW (n_out, n_in), db (n_out,)
    n_out, m = dZ.shape
    n_in = A_prev.shape[0]
    zero = dW.dtype.type(0)  # accumulate in the arrays' own precision, float32 or float64
    for j in prange(n_out):  # iteration j owns row dW[j, :] and db[j]
        # forward: Z[j, s] = b[j] + Σ_i W[j, i]·A[i, s]  =>  ∂Z[j, s]/∂W[j, i] = A[i, s]
        for i in range(n_in):
            total = zero
            for s in range(m):
                total += dZ[j, s] * A_prev[i, s]
            dW[j, i] = total / m
        # ∂Z[j, s]/∂b[j] = 1
        total = zero
        for s in range(m):
            total += dZ[j, s]
        db[j] = total / m


@parallel_kernel
def dense_backward_input(dA_prev, dZ, W):
    """(10) dA_prev = Wᵀ·dZ: the gradient handed to the layer below."""
    # dZ (n_out, m), W (n_out, n_in) -> dA_prev (n_in, m)
    n_out, n_in = W.shape
    m = dZ.shape[1]
    for i in prange(n_in):  # iteration i owns row dA_prev[i, :]
        # forward: Z[j, s] = b[j] + Σ_i W[j, i]·A[i, s]  =>  ∂Z[j, s]/∂A[i, s] = W[j, i]
        for s in range(m):
            dA_prev[i, s] = 0.0
        for j in range(n_out):
            w = W[j, i]
            for s in range(m):
                dA_prev[i, s] += w * dZ[j, s]
