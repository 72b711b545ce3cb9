"""Shared by the benchmarks: the real MNIST, thread counts, the smoke subset, machine info.

The real MNIST comes from the folder $FASTNN_DATA names. Unset or not holding the four IDX
files, the benchmarks that need it are skipped with the reason, or fail when
FASTNN_REQUIRE_DATA=1 (as in CI).

`pytest bench --benchmark-disable` (the CI smoke run: each body runs once, untimed) keeps every
implementation of every kernel and epoch but only the small shapes: the others are deselected.
FASTNN_BENCH_ALL=1 keeps them all, to check every case against the oracle once.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
from pathlib import Path

import numba
import pytest
import threadpoolctl
import workloads

from fastnn.data import load_mnist_dir
from fastnn.errors import FastnnError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FULL_RUN_MARKER = "full_run"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        f"{FULL_RUN_MARKER}: a large case, left out of `pytest bench --benchmark-disable` "
        "unless FASTNN_BENCH_ALL=1",
    )
    load_torch_first()
    # One thread count for every implementation; kept until the process ends, so the machine
    # info saved at the end of the session shows it.
    threads = workloads.bench_threads()
    numba.set_num_threads(threads)
    threadpoolctl.threadpool_limits(limits=threads, user_api="blas")


def load_torch_first() -> None:
    """Import PyTorch, when installed, before Numba starts its threads.

    Both run their threads on GNU OpenMP (libgomp), and PyTorch brings its own copy. Once Numba
    has started its threads on the system's libgomp, PyTorch loaded afterwards uses that copy
    instead, and its many small operations ran 3-4x slower: one 784-10-10 epoch with nn.Linear
    took 2.7-7.0 s, against 0.9 s with torch imported first. Numba's epoch is the same either
    way (54-56 ms against 55-62 ms, measured in the same two processes).
    """
    if importlib.util.find_spec("torch") is not None:
        import torch  # noqa: F401


def is_smoke_run(config) -> bool:
    disabled = config.getoption("benchmark_disable", default=False)
    return bool(disabled) and os.environ.get("FASTNN_BENCH_ALL") != "1"


def pytest_collection_modifyitems(config, items):
    if not is_smoke_run(config):
        return
    kept = [item for item in items if item.get_closest_marker(FULL_RUN_MARKER) is None]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


# ---- the real MNIST ----------------------------------------------------------------------


def _no_data(problem: str):
    if os.environ.get("FASTNN_REQUIRE_DATA") == "1":
        pytest.fail(f"{problem}, and FASTNN_REQUIRE_DATA=1 says the real MNIST must be there")
    pytest.skip(f"{problem}; the benchmarks run on the real MNIST (set FASTNN_DATA=DIR)")


def mnist_folder() -> Path:
    """The folder $FASTNN_DATA names; a relative one is taken from here, then the project root."""
    value = os.environ.get("FASTNN_DATA", "")
    if not value:
        _no_data("FASTNN_DATA is not set")
    given = Path(value)
    candidates = [given] if given.is_absolute() else [Path.cwd() / given, PROJECT_ROOT / given]
    for folder in candidates:
        if folder.is_dir():
            return folder
    _no_data(f"FASTNN_DATA={value} is not a folder")


@pytest.fixture(scope="session")
def mnist():
    """The real MNIST (fastnn.data.Dataset): train_images uint8 (60000, 784), train_labels."""
    try:
        return load_mnist_dir(mnist_folder())
    except FastnnError as error:
        _no_data(f"FASTNN_DATA does not hold the MNIST files: {error}")


@pytest.fixture(scope="session")
def kernel_workloads(mnist):
    return workloads.Workloads(mnist.train_images, mnist.train_labels)


@pytest.fixture(scope="session")
def epoch_data(mnist):
    """The 60,000 training images as the epoch reads them: X float32 rows, labels, order."""
    return workloads.epoch_inputs(mnist.train_images, mnist.train_labels, "float32")


# ---- machine info saved with --benchmark-json ----------------------------------------------


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def pytest_benchmark_update_machine_info(config, machine_info):
    """Versions, thread counts, the BLAS kernel NumPy uses, and the environment that moves it."""
    try:
        numba_layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        numba_layer = None
    torch = sys.modules.get("torch")
    machine_info["fastnn"] = {
        "versions": {name: _version(name) for name in ("numpy", "numba", "torch", "fastnn-loops")},
        "threads": {
            "benchmarks": workloads.bench_threads(),
            "numba": numba.get_num_threads(),
            "numba_pool": numba.config.NUMBA_NUM_THREADS,
            "numba_threading_layer": numba_layer,
            "torch": torch.get_num_threads() if torch is not None else None,
            "cpu_count": os.cpu_count(),
        },
        "threadpools": [
            {
                key: pool.get(key)
                for key in (
                    "user_api",
                    "internal_api",
                    "version",
                    "architecture",
                    "threading_layer",
                    "num_threads",
                    "prefix",
                    "filepath",
                )
            }
            for pool in threadpoolctl.threadpool_info()
        ],
        "environment": {
            name: os.environ.get(name)
            for name in (
                "OPENBLAS_CORETYPE",
                "OPENBLAS_L2_SIZE",
                "NUMBA_NUM_THREADS",
                "OMP_NUM_THREADS",
                "FASTNN_BENCH_ALL",
            )
        },
        "smoke_run": is_smoke_run(config),
    }
