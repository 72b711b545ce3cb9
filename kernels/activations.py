"""Hidden-layer activations, forward and backward.

Sizes: n units, m samples. Z, A, dA, dZ are all (n, m).

    (2)  A = g(Z), elementwise:
         ReLU     A = max(0, Z)
         sigmoid  A = 1 / (1 + e^(−Z))
         tanh     A = tanh(Z)
    (11) dZ = dA ⊙ g'(Z):
         ReLU     g'(z) = 1 where z > 0, else 0 (0 exactly on the kink z = 0)
         sigmoid  g'(z) = A ⊙ (1 − A)
         tanh     g'(z) = 1 − A²

Argument order everywhere: outputs first, then inputs.
"""

import math

from .jit import inlined_kernel, kernel


@inlined_kernel
def relu_forward(A, Z):
    """(2) A = max(0, Z)."""
    # Z (n, m) -> A (n, m)
    n, m = Z.shape
    for i in range(n):
        for s in range(m):
            z = Z[i, s]
            A[i, s] = 0 if z <= 0 else z  # written so that NaN stays NaN


@inlined_kernel
def relu_backward(dZ, dA, Z):
    """(11) dZ = dA ⊙ [Z > 0]."""
    # dA (n, m), Z (n, m) -> dZ (n, m)
    n, m = Z.shape
    for i in range(n):
        for s in range(m):
            # forward: A = max(0, Z); the derivative is 1 where Z > 0 and 0 elsewhere, kink included
            dZ[i, s] = dA[i, s] if Z[i, s] > 0 else 0


@kernel
def sigmoid(z):
    """σ(z) = 1 / (1 + e^(−z)) for one number, never computing an e^x that overflows.

    For z < 0 the same value is e^z / (1 + e^z), whose exponent is negative.
    """
    if z >= 0:
        return 1 / (1 + math.exp(-z))
    e = math.exp(z)
    return e / (1 + e)


@inlined_kernel
def sigmoid_forward(A, Z):
    """(2) A = 1 / (1 + e^(−Z))."""
    # Z (n, m) -> A (n, m)
    n, m = Z.shape
    for i in range(n):
        for s in range(m):
            A[i, s] = sigmoid(Z[i, s])


@inlined_kernel
def sigmoid_backward(dZ, dA, A):
    """(11) dZ = dA ⊙ A ⊙ (1 − A)."""
    # dA (n, m), A (n, m) -> dZ (n, m)
    n, m = A.shape
    for i in range(n):
        for s in range(m):
            # forward: A = σ(Z); σ'(Z) = σ(Z)·(1 − σ(Z)) = A·(1 − A)
            a = A[i, s]
            dZ[i, s] = dA[i, s] * a * (1 - a)


@inlined_kernel
def tanh_forward(A, Z):
    """(2) A = tanh(Z)."""
    # Z (n, m) -> A (n, m)
    n, m = Z.shape
    for i in range(n):
        for s in range(m):
            A[i, s] = math.tanh(Z[i, s])


@inlined_kernel
def tanh_backward(dZ, dA, A):
    """(11) dZ = dA ⊙ (1 − A²)."""
    # dA (n, m), A (n, m) -> dZ (n, m)
    n, m = A.shape
    for i in range(n):
        for s in range(m):
            # forward: A = tanh(Z); tanh'(Z) = 1 − tanh(Z)² = 1 − A²
            a = A[i, s]
            dZ[i, s] = dA[i, s] * (1 - a * a)
