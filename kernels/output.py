"""The output layer: softmax with cross-entropy, or sigmoid with mean squared error.

Sizes: k classes, m samples. Z, A, Y, dZ are all (k, m); Y is one-hot.

    (3)  A = softmax(Z)     A[c, s] = e^(Z[c, s] − M[s]) / Σ_c' e^(Z[c', s] − M[s]),
                            M[s] = max_c Z[c, s] (subtracting it changes nothing but overflow)
    (4)  cross-entropy      J = −(1/m) Σ_s Σ_c Y[c, s] · log A[c, s]
    (5)  mean squared error J = (1/2m) Σ_s Σ_c (A[c, s] − Y[c, s])²
    (6)  softmax + cross-entropy:   dZ = A − Y
    (7)  sigmoid + squared error:   dA = A − Y, then dZ = dA ⊙ A ⊙ (1 − A)  (sigmoid_backward)

(6) and (7) share one kernel, output_error.

Gradients are per sample (no 1/m); the 1/m of the mean is applied once, in dW and db (8), (9).
Argument order everywhere: outputs first, then inputs.
"""

import math

from .jit import kernel


@kernel
def softmax_forward(A, Z):
    """(3) A = softmax(Z), each column (sample) separately, stable for any logits."""
    # Z (k, m) -> A (k, m)
    k, m = Z.shape
    for s in range(m):
        largest = Z[0, s]
        for c in range(1, k):
            largest = max(largest, Z[c, s])
        total = 0.0
        for c in range(k):
            e = math.exp(Z[c, s] - largest)  # every exponent ≤ 0: no overflow
            A[c, s] = e
            total += e
        for c in range(k):
            A[c, s] = A[c, s] / total


@kernel
def cross_entropy_loss(Z, Y):
    """(4) J = −(1/m) Σ Y ⊙ log A with A = softmax(Z), read from the logits.

    log A[c, s] = Z[c, s] − M[s] − log Σ_c' e^(Z[c', s] − M[s]) is exact and finite even where
    A[c, s] rounds to 0, which log(A) is not.
    """
    # Z (k, m), Y (k, m) -> scalar
    k, m = Z.shape
    loss = 0.0
    for s in range(m):
        largest = Z[0, s]
        for c in range(1, k):
            largest = max(largest, Z[c, s])
        total = 0.0
        for c in range(k):
            total += math.exp(Z[c, s] - largest)
        log_total = math.log(total)
        for c in range(k):
            if Y[c, s] != 0:
                loss -= Y[c, s] * (Z[c, s] - largest - log_total)
    return loss / m


@kernel
def output_error(E, A, Y):
    """E = A − Y: (6) dZ for softmax + cross-entropy, and (7) dA for squared error.

    For softmax + cross-entropy the softmax Jacobian and the derivative of −log collapse to
    A − Y; for ½(A − Y)² the derivative with respect to A is A − Y. Same loop, two equations.
    """
    # A (k, m), Y (k, m) -> E (k, m)
    k, m = A.shape
    for c in range(k):
        for s in range(m):
            E[c, s] = A[c, s] - Y[c, s]


@kernel
def mse_loss(A, Y):
    """(5) J = (1/2m) Σ (A − Y)²."""
    # A (k, m), Y (k, m) -> scalar
    k, m = A.shape
    loss = 0.0
    for c in range(k):
        for s in range(m):
            diff = A[c, s] - Y[c, s]
            loss += diff * diff
    return loss / (2 * m)
