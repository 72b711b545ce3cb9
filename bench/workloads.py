"""What the benchmarks run on: real MNIST batches, realistic layer values, the epoch's state.

Every input comes from the real training images (ReLU sparsity, and so the speed of some code
paths, depends on the data: ../shared/PERF_NOTES.md, lesson 10). A kernel's inputs are the
values a training step would hand it: a batch of images, pushed through an initialised network
by the NumPy oracle (forward, loss, backward), gives Z1, A1, Z2, A2, dZ2, dA1, dZ1 and dθ.

Sizes: N training images (60,000), m samples in a batch, h hidden units, k = 10 classes.
Samples are columns, as in the kernels: A0 (784, m), Z1 (h, m), Z2 (k, m), Y (k, m).
"""

from __future__ import annotations

import functools
import itertools
import os
from dataclasses import dataclass
from typing import NamedTuple

import numba
import numpy as np
import pytest
from numba import prange

from fastnn import oracle
from fastnn.kernels.jit import parallel_kernel
from fastnn.kernels.tile_math import dense_tile_forward
from fastnn.model import ACTIVATIONS, LOSSES, init_network, layer_parameters
from fastnn.training import OPTIMIZERS, TrainConfig, to_inputs

SEED = 0
HIDDEN_SIZES = (10, 128, 512)
MINI_BATCH = 100
FULL_BATCH = None  # every training image in one batch
DTYPES = ("float32", "float64")

# The training defaults (python -m fastnn.train with no flags): ReLU, cross-entropy, Adam.
DEFAULTS = TrainConfig()
HIDDEN = ACTIVATIONS[DEFAULTS.activation]
LOSS = LOSSES[DEFAULTS.loss]
OPTIMIZER = OPTIMIZERS[DEFAULTS.optimizer]
LEARNING_RATE = DEFAULTS.lr
BETA1, BETA2, EPS = DEFAULTS.beta1, DEFAULTS.beta2, DEFAULTS.eps
WEIGHT_DECAY = DEFAULTS.l2

# Comparing with the oracle. Kernels: one call, within the tolerances of ../shared/STYLE.md (8),
# relative to the largest magnitude in the result (assert_close). Measured: numba and torch agree
# with NumPy to 1e-6 in float32, full batch (sums of 60,000 terms) included.
KERNEL_RTOL = {"float32": 1e-5, "float64": 1e-10}


# Epochs, float32, two checks (check_against_oracle in test_bench_epoch.py):
#   the first TIGHT_STEPS steps: loss within 1e-5 relative, θ within 4e-4 absolute, a fifth of
#   one Adam step (α = 2e-3): a wrong, missing or doubled step moves weights by about α, while
#   float32 implementations that sum in other orders stay within 6.4e-5 of the oracle after
#   ten steps (the largest measured, numba at 784-512-10).
#   the whole epoch: loss within 5e-3 relative, correct predictions within 0.1% of N, the same
#   number of steps. Float32 Adam trajectories separate over 600 steps: at 784-512-10, numba,
#   torch and NumPy end up to 1.6e-3 apart in the epoch loss and 0.19 apart in single weights,
#   while float64 agrees to 1e-15; nudging θ by one ulp moves the numba epoch loss by 1.2e-3.
TIGHT_STEPS = 10
TIGHT_LOSS_RTOL = 1e-5
TIGHT_THETA_ATOL = 4e-4
EPOCH_LOSS_RTOL = 5e-3
EPOCH_CORRECT_FRACTION = 1e-3


# ---- threads ---------------------------------------------------------------------------------


def bench_threads() -> int:
    """Threads for every implementation: $NUMBA_NUM_THREADS if set, else 2."""
    wanted = int(os.environ.get("NUMBA_NUM_THREADS") or 2)
    return max(1, min(wanted, numba.config.NUMBA_NUM_THREADS))


# ---- cases -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One network shape, batch size and float type."""

    hidden: int | tuple[int, ...]  # units of the hidden layer, or of each hidden layer
    batch: int | None  # None: the full batch, every training image
    dtype: str

    @property
    def sizes(self) -> tuple[int, ...]:
        hidden = self.hidden if isinstance(self.hidden, tuple) else (self.hidden,)
        return (784, *hidden, 10)

    def multiply_adds(self, n_samples: int, nonzero_share: float = 1.0) -> int:
        """Multiply-adds of an epoch (or a full-batch step) over n_samples, in the three dense
        products a layer's forward and backward passes make: (1) Z = W·A, (8) dW = dZ·Aᵀ and,
        above the first layer, (10) dA = Wᵀ·dZ. The elementwise work, the loss and the update
        are left out: they are under 1% at these sizes. With `nonzero_share` < 1, those of a
        first layer that skips the zero inputs: the first layer's (1) and (8) times that share."""
        products = [n_out * n_in for n_in, n_out in itertools.pairwise(self.sizes)]
        first_layer = 2 * products[0] * nonzero_share
        return round(n_samples * (first_layer + 3 * sum(products[1:])))

    @property
    def shape(self) -> str:
        return "-".join(str(n) for n in self.sizes)

    def batch_label(self, m: int) -> str:
        """How group names give the batch: "batch 100", or "full batch 60000"."""
        return f"batch {m}" if self.batch else f"full batch {m}"

    @property
    def id(self) -> str:
        return f"{self.shape}-{'b' + str(self.batch) if self.batch else 'full'}-{self.dtype}"

    def batch_size(self, n_samples: int) -> int:
        return self.batch or n_samples


KERNEL_CASES = tuple(
    Case(hidden, batch, dtype)
    for dtype in DTYPES
    for batch in (MINI_BATCH, FULL_BATCH)
    for hidden in HIDDEN_SIZES
)
DEEP_HIDDEN_SIZES = ((10, 10), (128, 64), (256, 128))  # two hidden layers
EPOCH_CASES = (
    *(Case(hidden, MINI_BATCH, "float32") for hidden in HIDDEN_SIZES),
    *(Case(hidden, MINI_BATCH, "float32") for hidden in DEEP_HIDDEN_SIZES),
    *(Case(hidden, FULL_BATCH, "float32") for hidden in HIDDEN_SIZES),
)
# What `pytest bench --benchmark-disable` (the CI smoke run) keeps: every kernel and every
# implementation, on the shapes that run in seconds.
SMOKE_KERNEL_CASES = (Case(10, MINI_BATCH, "float32"), Case(10, MINI_BATCH, "float64"))
SMOKE_EPOCH_CASES = (
    Case(10, MINI_BATCH, "float32"),
    Case((10, 10), MINI_BATCH, "float32"),
    Case(10, FULL_BATCH, "float32"),
)


# ---- the training images -----------------------------------------------------------------------


class Epoch(NamedTuple):
    """An epoch's inputs as training.train prepares them."""

    images: np.ndarray  # (N, 784) uint8 pixels, C-contiguous: what the numba backend reads
    X: np.ndarray  # (N, 784) floats in [0, 1], samples as rows, C-contiguous: the others'
    labels: np.ndarray  # (N,) int64
    order: np.ndarray  # (N,) int64, the epoch's permutation


def epoch_inputs(images: np.ndarray, labels: np.ndarray, dtype: str = "float32") -> Epoch:
    order = np.random.default_rng(SEED).permutation(len(labels))
    images = np.ascontiguousarray(images)
    return Epoch(images, to_inputs(images, dtype), np.ascontiguousarray(labels, np.int64), order)


def initial_theta(case: Case) -> np.ndarray:
    """θ of a freshly initialised network (He init for ReLU), the same for every implementation."""
    net = init_network(case.sizes, DEFAULTS.activation, DEFAULTS.loss, None, case.dtype,
                       np.random.default_rng(SEED))  # fmt: skip
    return net.theta


# ---- kernel inputs -------------------------------------------------------------------------------


class Workload:
    """One case's kernel inputs: a real batch through an initialised network, by the oracle.

    Names are the math's: layer 1 is the hidden layer (784 -> h), layer 2 the output (h -> 10).
    Every array is C-contiguous and of the case's dtype.
    """

    def __init__(self, case: Case, images: np.ndarray, labels: np.ndarray):
        n_samples = len(labels)
        rows = np.random.default_rng(SEED).permutation(n_samples)[: case.batch_size(n_samples)]
        self.case, self.m = case, len(rows)
        self.A0 = np.ascontiguousarray(to_inputs(images[rows], case.dtype).T)  # (784, m)
        self.Y = np.ascontiguousarray(np.eye(10, dtype=case.dtype)[labels[rows]].T)  # (10, m)
        self.theta = initial_theta(case)
        sizes = np.array(case.sizes, np.int64)
        (self.W1, self.b1), (self.W2, self.b2) = layer_parameters(self.theta, case.sizes)
        Zs, As = oracle.forward(self.theta, self.A0, sizes, HIDDEN, LOSS)
        self.Z1, self.A1, self.Z2, self.A2 = Zs[0], As[1], Zs[1], As[2]
        self.dtheta = oracle.backward(self.theta, self.Y, Zs, As, sizes, HIDDEN, LOSS, 0.0)
        self.dZ2 = oracle.output_error(self.A2, self.Y)
        self.dA1 = np.ascontiguousarray(oracle.dense_backward_input(self.dZ2, self.W2))
        self.dZ1 = oracle.relu_backward(self.dA1, self.Z1)
        # Optimizer state as after one step from zero, so the benchmarked update is step 2.
        self.velocity = self.dtheta.copy()
        self.moment1 = (1 - BETA1) * self.dtheta
        self.moment2 = (1 - BETA2) * self.dtheta**2
        for name, value in vars(self).items():
            if isinstance(value, np.ndarray):
                assert value.flags.c_contiguous and value.dtype == case.dtype, name

    # The sigmoid and tanh kernels see the same Z1, and A1 as their own activation gives it.
    @functools.cached_property
    def A1_sigmoid(self) -> np.ndarray:
        return oracle.sigmoid_forward(self.Z1)

    @functools.cached_property
    def A1_tanh(self) -> np.ndarray:
        return oracle.tanh_forward(self.Z1)

    @functools.cached_property
    def A2_sigmoid(self) -> np.ndarray:
        """The output layer of a squared-error network: mse_loss's input."""
        return oracle.sigmoid_forward(self.Z2)


class Workloads:
    """Builds workloads on demand and keeps only the latest: a full-batch float64 784-512-10
    workload holds about 2 GB, and the tests run case by case."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels
        self.latest: Workload | None = None

    def get(self, case: Case) -> Workload:
        if self.latest is None or self.latest.case != case:
            self.latest = None  # free the previous one before building the next
            self.latest = Workload(case, self.images, self.labels)
        return self.latest


# ---- comparing with the oracle ---------------------------------------------------------------


def assert_close(actual, expected, rtol: float, what: str) -> None:
    """Shape, then dtype, then values, each of a result or of a tuple of results.

    Values agree within rtol relative to the largest magnitude in `expected`, so elements near
    zero are held to the precision of the whole result, not to their own.
    """
    if isinstance(expected, tuple):
        assert isinstance(actual, tuple) and len(actual) == len(expected), what
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_close(a, e, rtol, f"{what}[{i}]")
        return
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    if expected.ndim:
        assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    np.testing.assert_allclose(
        actual, expected, rtol=rtol, atol=rtol * (scale or 1.0), err_msg=what
    )


# ---- the floor --------------------------------------------------------------------------------


@parallel_kernel
def read_rows(X, order, n_chunks):
    """The floor of an epoch: read every row X[order[j]] once, as the epoch's gather does.

    Returns the sum of X, so the read cannot be optimised away and can be checked. X is the
    uint8 images the numba epoch reads; each row is summed in integers.
    """
    # X (N, n_in), order (N,) -> scalar
    n = order.size
    partial = np.zeros(n_chunks)
    for c in prange(n_chunks):  # iteration c owns partial[c] and rows c·n/chunks .. (c+1)·n/chunks
        total = 0.0
        for j in range(c * n // n_chunks, (c + 1) * n // n_chunks):
            row = X[order[j]]
            row_total = 0
            for i in range(row.size):
                row_total += row[i]
            total += row_total
        partial[c] = total
    total = 0.0
    for c in range(n_chunks):
        total += partial[c]
    return total


# ---- the peak: what the arithmetic reaches with no memory in the way ---------------------------

# The register tile of kernels/tile_math.py on data that stays in the core's fastest cache:
# 10 units × 4 samples × 512 inputs (28 KB of float32) per call, each thread on its own copy.
PEAK_SHAPE = (10, 4, 512)  # units, samples, inputs
PEAK_CALLS = 2000  # calls per thread: about 40 M multiply-adds, about a millisecond


class PeakProbe(NamedTuple):
    Z: np.ndarray  # (threads, 16, units): rows 0-3 used; the padding keeps copies 640 B apart
    W: np.ndarray  # (threads, units, inputs)
    b: np.ndarray  # (threads, 16): entries 0-9 used
    A: np.ndarray  # (threads, samples, inputs)

    @property
    def multiply_adds(self) -> int:
        units, samples, inputs = PEAK_SHAPE
        return self.W.shape[0] * PEAK_CALLS * units * samples * inputs


def peak_probe(threads: int) -> PeakProbe:
    units, samples, inputs = PEAK_SHAPE
    rng = np.random.default_rng(SEED)
    return PeakProbe(
        np.zeros((threads, 16, units), np.float32),
        rng.uniform(-1, 1, (threads, units, inputs)).astype(np.float32),
        rng.uniform(-1, 1, (threads, 16)).astype(np.float32),
        rng.uniform(0, 1, (threads, samples, inputs)).astype(np.float32),
    )


@parallel_kernel
def run_peak_probe(Z, W, b, A, calls):
    """dense_tile_forward `calls` times on each thread's own copy: the multiply-adds per second
    that the tile reaches when it never waits for memory."""
    for t in prange(W.shape[0]):  # iteration t owns Z[t]
        samples = A.shape[1]
        units = W.shape[1]
        for _ in range(calls):
            dense_tile_forward(Z[t, :samples], W[t], b[t, :units], A[t])


# ---- PyTorch, when it is installed --------------------------------------------------------------


def require_torch():
    """bench/torch_reference.py, or skip the calling benchmark when torch is not installed."""
    pytest.importorskip(
        "torch",
        reason="PyTorch is not installed; it is not a fastnn dependency "
        "(pip install torch to include PyTorch CPU in the benchmarks)",
    )
    import torch_reference

    return torch_reference


def rounds(config) -> int:
    """Rounds of a benchmark.pedantic (the epochs): --benchmark-min-rounds, 5 by default."""
    return int(config.getoption("benchmark_min_rounds", default=5) or 5)
