"""Every kernel three ways, one benchmark group each: Numba loops, the NumPy oracle, PyTorch CPU.

Each kernel runs where and as a training step runs it, on what the step would hand it (a real
MNIST batch through an initialised network, bench/workloads.py):

    dense_forward, dense_backward     layer 1 (784 -> h), where nearly all the arithmetic is
    dense_backward_input              layer 2 (h -> 10): the network never calls it on layer 1
    relu, sigmoid, tanh               the hidden layer (h, m)
    softmax, cross-entropy, mse,      the output layer (10, m): they depend on the batch only,
    output_error                      so they are measured once per batch size, not per h
    sgd, momentum, adam               the whole flat θ: they depend on the network only

Groups read "dense_forward 784-128-10 batch 100 float32"; the benchmarks in a group are named
by their implementation: numba, numpy, torch. Each checks one call against the oracle before it
is timed; for numba that call also compiles, so compilation is never timed.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np
import pytest
from workloads import (
    BETA1,
    BETA2,
    EPS,
    HIDDEN_SIZES,
    KERNEL_CASES,
    KERNEL_RTOL,
    LEARNING_RATE,
    MINI_BATCH,
    SMOKE_KERNEL_CASES,
    Case,
    Workload,
    assert_close,
    require_torch,
)

from fastnn import oracle
from fastnn.kernels import activations, dense, optimizers, output
from fastnn.model import parameter_count

IMPLEMENTATIONS = ("numba", "numpy", "torch")
ADAM_STEP = 2  # the workload's optimizer state is as after step 1


@dataclass(frozen=True)
class Kernel:
    """A kernel, named alike in kernels/, fastnn/oracle.py and bench/torch_reference.py.

    Arguments are Workload arrays by name. The oracle and torch take (*updates, *inputs,
    *scalars) and return their result; the numba kernel takes (*outputs, *updates, *inputs,
    *scalars) and fills arrays shaped like `outputs`. `updates` are changed in place by all.
    """

    module: ModuleType
    name: str
    scope: str  # "layer": h and m matter; "output": only m; "parameters": only the network
    inputs: tuple[str, ...]
    outputs: tuple[str, ...] = ()
    updates: tuple[str, ...] = ()
    scalars: tuple = ()

    def applies_to(self, case: Case) -> bool:
        if self.scope == "output":
            return case.hidden == HIDDEN_SIZES[0]
        if self.scope == "parameters":
            return case.batch == MINI_BATCH
        return True

    def group(self, case: Case, m: int) -> str:
        if self.scope == "output":
            return f"{self.name} 10 classes {case.batch_label(m)} {case.dtype}"
        if self.scope == "parameters":
            p = parameter_count(case.sizes)
            return f"{self.name} {case.shape} ({p:,} parameters) {case.dtype}"
        return f"{self.name} {case.shape} {case.batch_label(m)} {case.dtype}"

    def oracle_result(self, w: Workload):
        function, arguments, result = self.prepare("numpy", w)
        return result(function(*arguments))

    def prepare(self, implementation: str, w: Workload):
        """(function, arguments, result) for one implementation: result(returned) is what to
        compare with the oracle. State to update is a fresh copy, so every check sees the same
        step from the workload's state."""
        state = [getattr(w, name).copy() for name in self.updates]
        inputs = [getattr(w, name) for name in self.inputs]
        if implementation == "numba":
            outputs = [np.empty_like(getattr(w, name)) for name in self.outputs]
            function = getattr(self.module, self.name)
            arguments = (*outputs, *state, *inputs, *self.scalars)
            filled = outputs + state
        elif implementation == "numpy":
            function, arguments = getattr(oracle, self.name), (*state, *inputs, *self.scalars)
            filled = state
        else:
            torch_reference = require_torch()
            function = getattr(torch_reference, self.name)
            # Tensors share the arrays' memory: updated state shows in `state`.
            tensors = [torch_reference.torch.from_numpy(a) for a in state + inputs]
            arguments = (*tensors, *self.scalars)
            filled = state

        def result(returned):
            return one_or_tuple(filled) if filled else to_numpy(returned)

        return function, arguments, result


def one_or_tuple(arrays):
    return arrays[0] if len(arrays) == 1 else tuple(arrays)


def to_numpy(returned):
    """A kernel's return value with torch tensors made numpy arrays; anything else unchanged."""
    if isinstance(returned, tuple):
        return tuple(to_numpy(value) for value in returned)
    return returned.numpy() if hasattr(returned, "numpy") else returned


LAYER, OUTPUT, PARAMETERS = "layer", "output", "parameters"
SGD_STATE, MOMENTUM_STATE = ("theta",), ("theta", "velocity")
ADAM_STATE = ("theta", "moment1", "moment2")
KERNELS = (
    Kernel(dense, "dense_forward", LAYER, ("W1", "A0", "b1"), outputs=("Z1",)),
    Kernel(dense, "dense_backward", LAYER, ("dZ1", "A0"), outputs=("W1", "b1")),
    Kernel(dense, "dense_backward_input", LAYER, ("dZ2", "W2"), outputs=("dA1",)),
    Kernel(activations, "relu_forward", LAYER, ("Z1",), outputs=("A1",)),
    Kernel(activations, "relu_backward", LAYER, ("dA1", "Z1"), outputs=("dZ1",)),
    Kernel(activations, "sigmoid_forward", LAYER, ("Z1",), outputs=("A1",)),
    Kernel(activations, "sigmoid_backward", LAYER, ("dA1", "A1_sigmoid"), outputs=("dZ1",)),
    Kernel(activations, "tanh_forward", LAYER, ("Z1",), outputs=("A1",)),
    Kernel(activations, "tanh_backward", LAYER, ("dA1", "A1_tanh"), outputs=("dZ1",)),
    Kernel(output, "softmax_forward", OUTPUT, ("Z2",), outputs=("A2",)),
    Kernel(output, "cross_entropy_loss", OUTPUT, ("Z2", "Y")),
    Kernel(output, "mse_loss", OUTPUT, ("A2_sigmoid", "Y")),
    Kernel(output, "output_error", OUTPUT, ("A2", "Y"), outputs=("dZ2",)),
    Kernel(optimizers, "sgd_update", PARAMETERS, ("dtheta",), updates=SGD_STATE,
           scalars=(LEARNING_RATE,)),
    Kernel(optimizers, "momentum_update", PARAMETERS, ("dtheta",), updates=MOMENTUM_STATE,
           scalars=(LEARNING_RATE, BETA1)),
    Kernel(optimizers, "adam_update", PARAMETERS, ("dtheta",), updates=ADAM_STATE,
           scalars=(LEARNING_RATE, BETA1, BETA2, EPS, ADAM_STEP)),
)  # fmt: skip


def kernel_params():
    """Case by case (a workload is built once per case), then kernel, then implementation."""
    for case in KERNEL_CASES:
        marks = () if case in SMOKE_KERNEL_CASES else (pytest.mark.full_run,)
        for kernel in KERNELS:
            if kernel.applies_to(case):
                for implementation in IMPLEMENTATIONS:
                    yield pytest.param(
                        case, kernel, implementation, marks=marks,
                        id=f"{kernel.name}-{case.id}-{implementation}",
                    )  # fmt: skip


@pytest.mark.parametrize(("case", "kernel", "implementation"), list(kernel_params()))
def test_kernel(benchmark, kernel_workloads, case, kernel, implementation):
    w = kernel_workloads.get(case)
    benchmark.group = kernel.group(case, w.m)
    benchmark.extra_info.update(
        suite="kernel", implementation=implementation, kernel=kernel.name,
        sizes=case.shape, batch=w.m, dtype=case.dtype,
    )  # fmt: skip
    expected = kernel.oracle_result(w)
    function, arguments, result = kernel.prepare(implementation, w)

    # The check before timing; for numba this first call also compiles.
    returned = function(*arguments)
    assert_close(result(returned), expected, KERNEL_RTOL[case.dtype], benchmark.group)

    benchmark(function, *arguments)
