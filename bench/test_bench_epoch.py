"""A whole training epoch, five ways in one benchmark group, on the 60,000 real training images.

    numba          fastnn.training.backend_functions("numba").train_epoch
    numpy          backend_functions("numpy").train_epoch, the oracle
    torch-nn       nn.Linear + autograd + torch.optim        (bench/torch_reference.py)
    torch-tensors  hand-written tensor math, manual backward (bench/torch_reference.py)
    floor          one read of every training image (uint8) in the epoch's order

numba reads the images as uint8 pixels, as training does; the others read the floats
training.to_inputs makes of them, prepared before the timing.

Groups read "epoch 784-10-10 batch 100 float32" (600 steps of 100 samples) and "gradient step
784-10-10 full batch 60000 float32" (train_epoch with batch_size = N: one step). The training
defaults throughout: ReLU, cross-entropy, Adam (α = 0.002), He initialisation, float32.

Every round starts from the same fresh θ and zero optimizer state (benchmark.pedantic's setup,
not timed), so every round does the same work. Before timing, each implementation is checked
against the oracle from that same state (check_against_oracle); that run also compiles numba.

Two more groups, "threads: epoch 784-10-10 batch 100 float32" and "threads: gradient step
784-10-10 full batch 60000 float32", time the numba epoch on one thread and on the benchmark
thread count (2 unless NUMBA_NUM_THREADS says otherwise). Both, because a step's fixed cost of
starting and joining its parallel loops weighs on 600 steps of 100 samples and not on one step
of 60,000.

One more group, "peak: ...", times kernels/tile_math.py's register tile on data that stays in
the core's fastest cache, on every thread: the multiply-adds per second the arithmetic reaches
when it never waits for memory. bench/report.py sets each epoch's rate beside it (extra_info
"multiply_adds": Case.multiply_adds), and, where numba's first layer skips the zero pixels
(kernels/tile_sparse.py), the rate of the multiply-adds it does ("performed_multiply_adds").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numba
import numpy as np
import pytest
from workloads import (
    BETA1,
    BETA2,
    EPOCH_CASES,
    EPOCH_CORRECT_FRACTION,
    EPOCH_LOSS_RTOL,
    EPS,
    FULL_BATCH,
    HIDDEN,
    LEARNING_RATE,
    LOSS,
    MINI_BATCH,
    OPTIMIZER,
    PEAK_CALLS,
    SMOKE_EPOCH_CASES,
    TIGHT_LOSS_RTOL,
    TIGHT_STEPS,
    TIGHT_THETA_ATOL,
    WEIGHT_DECAY,
    Case,
    Epoch,
    bench_threads,
    initial_theta,
    peak_probe,
    read_rows,
    require_torch,
    rounds,
    run_peak_probe,
)

from fastnn.kernels.tile_plumbing import sparse_first_layer
from fastnn.training import backend_functions

IMPLEMENTATIONS = ("numba", "numpy", "torch-nn", "torch-tensors", "floor")
THREADS_CASES = (Case(10, MINI_BATCH, "float32"), Case(10, FULL_BATCH, "float32"))
THREAD_COUNTS = (1, max(2, bench_threads()))


class EpochResult(NamedTuple):
    loss: float  # summed batch loss × batch size, as train_epoch returns it
    correct: int
    steps: int
    theta: np.ndarray


@dataclass
class Trainer:
    """One implementation's epoch: setup(order) gives fresh arguments, run(*arguments) trains
    and returns (loss, correct, steps), theta(arguments) is θ afterwards."""

    setup: Callable[[np.ndarray], tuple]
    run: Callable[..., tuple]
    theta: Callable[[tuple], np.ndarray]

    def run_once(self, order: np.ndarray) -> EpochResult:
        arguments = self.setup(order)
        loss, correct, steps = self.run(*arguments)
        return EpochResult(float(loss), int(correct), int(steps), self.theta(arguments).copy())


def trainer(implementation: str, case: Case, data: Epoch) -> Trainer:
    theta0 = initial_theta(case)
    sizes = np.array(case.sizes, np.int64)
    batch_size = case.batch_size(len(data.labels))
    if implementation == "torch-nn":
        torch_reference = require_torch()

        def setup_nn(order):
            model = torch_reference.nn_model(theta0, sizes, HIDDEN)
            optimizer = torch_reference.nn_optimizer(
                model, OPTIMIZER, LEARNING_RATE, WEIGHT_DECAY, BETA1, BETA2, EPS
            )
            return model, optimizer, data.X, data.labels, order, batch_size, WEIGHT_DECAY

        def theta_of_model(arguments):
            return torch_reference.nn_theta(arguments[0])

        return Trainer(setup_nn, torch_reference.nn_train_epoch, theta_of_model)

    if implementation == "torch-tensors":
        train_epoch = require_torch().tensors_train_epoch
    else:  # looked up at each test, so a new numba dispatch is what gets measured
        train_epoch = backend_functions(implementation).train_epoch
    X = data.images if implementation == "numba" else data.X  # as training.train hands them

    def setup(order):
        theta = theta0.copy()
        return (
            theta, np.zeros_like(theta), np.zeros_like(theta), X, data.labels, order,
            sizes, HIDDEN, LOSS, OPTIMIZER, LEARNING_RATE, WEIGHT_DECAY, BETA1, BETA2, EPS,
            0, batch_size,
        )  # fmt: skip

    return Trainer(setup, train_epoch, lambda arguments: arguments[0])


def epoch_order(case: Case, data: Epoch) -> np.ndarray:
    """A mini-batch epoch's permutation; full batch steps through the samples in order, as
    training.train does (the order changes nothing but rounding)."""
    return data.order if case.batch else np.arange(len(data.labels))


def epoch_group(case: Case, n_samples: int) -> str:
    if case.batch:
        return f"epoch {case.shape} batch {case.batch} {case.dtype}"
    return f"gradient step {case.shape} full batch {n_samples} {case.dtype}"


_oracle_results: dict[tuple[Case, int], EpochResult] = {}


def oracle_result(case: Case, data: Epoch, order: np.ndarray) -> EpochResult:
    """The oracle's epoch over `order` (a prefix of the case's order), computed once."""
    key = (case, len(order))
    if key not in _oracle_results:
        _oracle_results[key] = trainer("numpy", case, data).run_once(order)
    return _oracle_results[key]


def check_against_oracle(train: Trainer, case: Case, data: Epoch, order: np.ndarray) -> None:
    """Two checks from the oracle's starting state (tolerances: bench/workloads.py).

    First TIGHT_STEPS steps, tight: loss, correct predictions and θ must all agree. Then, for a
    mini-batch epoch, the whole epoch, looser: float32 Adam trajectories that start equal
    drift apart over 600 steps, so only the loss and the accuracy can be held to the oracle's.
    """
    tight_order = np.ascontiguousarray(order[: TIGHT_STEPS * case.batch_size(len(order))])
    actual, expected = train.run_once(tight_order), oracle_result(case, data, tight_order)
    assert actual.steps == expected.steps
    assert actual.loss == pytest.approx(expected.loss, rel=TIGHT_LOSS_RTOL)
    assert abs(actual.correct - expected.correct) <= max(1, len(tight_order) // 1000)
    assert np.max(np.abs(actual.theta - expected.theta)) <= TIGHT_THETA_ATOL
    if len(tight_order) == len(order):
        return
    actual, expected = train.run_once(order), oracle_result(case, data, order)
    assert actual.steps == expected.steps
    assert actual.loss == pytest.approx(expected.loss, rel=EPOCH_LOSS_RTOL)
    assert abs(actual.correct - expected.correct) <= EPOCH_CORRECT_FRACTION * len(order)
    assert np.all(np.isfinite(actual.theta))


def time_epochs(benchmark, train: Trainer, order: np.ndarray, n_rounds: int) -> None:
    """Every round gets fresh θ and optimizer state from setup, which is not timed."""
    benchmark.pedantic(train.run, setup=lambda: (train.setup(order), {}), rounds=n_rounds)


def epoch_params():
    for case in EPOCH_CASES:
        marks = () if case in SMOKE_EPOCH_CASES else (pytest.mark.full_run,)
        for implementation in IMPLEMENTATIONS:
            yield pytest.param(case, implementation, marks=marks, id=f"{case.id}-{implementation}")


@pytest.mark.parametrize(("case", "implementation"), list(epoch_params()))
def test_epoch(benchmark, request, epoch_data, case, implementation):
    n_samples = len(epoch_data.labels)
    order = epoch_order(case, epoch_data)
    benchmark.group = epoch_group(case, n_samples)
    benchmark.extra_info.update(
        suite="epoch", implementation=implementation, sizes=case.shape,
        batch=case.batch_size(n_samples), dtype=case.dtype, threads=numba.get_num_threads(),
    )  # fmt: skip

    if implementation == "floor":
        n_chunks = numba.get_num_threads()
        total = read_rows(epoch_data.images, order, n_chunks)
        assert total == np.sum(epoch_data.images, dtype=np.int64)
        benchmark(read_rows, epoch_data.images, order, n_chunks)
        return
    benchmark.extra_info["multiply_adds"] = case.multiply_adds(len(order))
    if implementation == "numba" and sparse_first_layer(epoch_data.images, np.array(case.sizes)):
        per_row = np.count_nonzero(epoch_data.images, axis=1)  # no copy of the images
        share = per_row[order].sum() / (len(order) * epoch_data.images.shape[1])
        benchmark.extra_info["performed_multiply_adds"] = case.multiply_adds(len(order), share)

    train = trainer(implementation, case, epoch_data)
    check_against_oracle(train, case, epoch_data, order)
    time_epochs(benchmark, train, order, rounds(request.config))


@pytest.mark.parametrize("threads", THREAD_COUNTS, ids=lambda n: f"{n}-threads")
@pytest.mark.parametrize("case", THREADS_CASES, ids=lambda case: case.id)
def test_epoch_threads(benchmark, request, epoch_data, case, threads):
    """numba on 1 thread and on the benchmark count, in their own group: the ratio shows."""
    if threads > numba.config.NUMBA_NUM_THREADS:
        pytest.skip(f"numba has {numba.config.NUMBA_NUM_THREADS} thread(s) (NUMBA_NUM_THREADS)")
    n_samples = len(epoch_data.labels)
    order = epoch_order(case, epoch_data)
    benchmark.group = f"threads: {epoch_group(case, n_samples)}"
    benchmark.extra_info.update(
        suite="threads", implementation=f"numba {threads} thread{'s' if threads > 1 else ''}",
        sizes=case.shape, batch=case.batch_size(n_samples), dtype=case.dtype, threads=threads,
    )  # fmt: skip
    train = trainer("numba", case, epoch_data)
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        check_against_oracle(train, case, epoch_data, order)
        time_epochs(benchmark, train, order, rounds(request.config))
    finally:
        numba.set_num_threads(previous)


def test_peak(benchmark):
    """The register tile with its data in cache, on every benchmark thread: the peak beside
    which bench/report.py sets the epochs' multiply-adds per second."""
    threads = numba.get_num_threads()
    probe = peak_probe(threads)
    benchmark.group = f"peak: the 5×4 register tile, data in cache, {threads} threads"
    benchmark.extra_info.update(
        suite="peak", implementation="numba", threads=threads, multiply_adds=probe.multiply_adds
    )
    run_peak_probe(*probe, 1)
    units, samples = probe.W.shape[1], probe.A.shape[1]
    for t in range(threads):
        expected = probe.A[t] @ probe.W[t].T + probe.b[t, :units]
        np.testing.assert_allclose(probe.Z[t, :samples], expected, rtol=1e-5, atol=1e-5)
    benchmark.pedantic(run_peak_probe, args=(*probe, PEAK_CALLS), rounds=9, warmup_rounds=1)
