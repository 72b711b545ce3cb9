"""Parameter updates, applied to all parameters at once as one flat vector θ.

Sizes: p parameters (every W and b of every layer, laid end to end). α is the learning rate,
t the step number counted from 1.

    (12) L2 weight decay    J += (λ/2) Σ W²,  dW += λ·W   (weights only, never biases)
    (13) gradient descent   θ = θ − α·dθ
    (14) momentum           v = β·v + dθ,  θ = θ − α·v
    (15) Adam               M1 = β1·M1 + (1 − β1)·dθ,  M2 = β2·M2 + (1 − β2)·dθ²,
                            θ = θ − α · (M1 / (1 − β1^t)) / (√(M2 / (1 − β2^t)) + ε)

Argument order everywhere: outputs (updated in place) first, then inputs. Scalars are cast to
θ's precision first, so float32 updates run in float32 throughout (as NumPy's do).
"""

import math

from .jit import inlined_kernel, kernel


@kernel
def l2_penalty(W, weight_decay):
    """(12) the loss term (λ/2) Σ W²."""
    # W (any shape, flattened) -> scalar
    total = 0.0
    for w in W.ravel():
        total += w * w
    return 0.5 * weight_decay * total


@inlined_kernel
def l2_backward(dW, W, weight_decay):
    """(12) dW = dW + λ·W."""
    # dW (p_w,), W (p_w,): one layer's weights as a flat slice
    decay = W.dtype.type(weight_decay)
    for i in range(W.size):
        dW[i] += decay * W[i]


@inlined_kernel
def sgd_update(theta, dtheta, learning_rate):
    """(13) θ = θ − α·dθ."""
    # theta (p,), dtheta (p,)
    alpha = theta.dtype.type(learning_rate)
    for i in range(theta.size):
        theta[i] -= alpha * dtheta[i]


@inlined_kernel
def momentum_update(theta, velocity, dtheta, learning_rate, beta):
    """(14) v = β·v + dθ, θ = θ − α·v."""
    # theta (p,), velocity (p,), dtheta (p,)
    alpha, beta = theta.dtype.type(learning_rate), theta.dtype.type(beta)
    for i in range(theta.size):
        velocity[i] = beta * velocity[i] + dtheta[i]
        theta[i] -= alpha * velocity[i]


@inlined_kernel
def adam_update(theta, moment1, moment2, dtheta, learning_rate, beta1, beta2, epsilon, step):
    """(15) Adam with bias correction; `step` is t, counted from 1."""
    # theta (p,), moment1 (p,), moment2 (p,), dtheta (p,)
    real = theta.dtype.type
    # M1 / (1 − β1^t) as M1 · (1 / (1 − β1^t)): a division costs several multiplications, and
    # three of them an element took half the update's time (measured on 784-10-10: 5.6 ms an
    # epoch with three divisions, 3.0 ms with one)
    unbias1, unbias2 = real(1 / (1 - beta1**step)), real(1 / (1 - beta2**step))
    alpha, epsilon = real(learning_rate), real(epsilon)
    # 1 − β from the float64 β: in float32, 1 − 0.999f is 1.3e-5 off 0.001
    keep1, take1, keep2, take2 = real(beta1), real(1 - beta1), real(beta2), real(1 - beta2)
    for i in range(theta.size):
        g = dtheta[i]
        moment1[i] = keep1 * moment1[i] + take1 * g
        moment2[i] = keep2 * moment2[i] + take2 * g * g
        moment1_hat = moment1[i] * unbias1
        moment2_hat = moment2[i] * unbias2
        theta[i] -= alpha * moment1_hat / (math.sqrt(moment2_hat) + epsilon)
