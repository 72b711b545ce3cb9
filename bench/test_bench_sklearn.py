"""`fit` of fastnn's scikit-learn classifier against scikit-learn's own MLPClassifier, on MNIST.

Both get the same 60,000 real training images as float32 in [0, 1], the same network (784-10-10
or 784-128-10, ReLU, softmax + cross-entropy), the same optimizer (Adam, learning rate 0.001),
no L2 penalty (alpha=0, the command line's default l2; scikit-learn's default alpha=1e-4 costs
fastnn more, see the script below), batches of 100 samples shuffled every epoch, and exactly 10
epochs: tol=0 and n_iter_no_change larger than the epochs, no early stopping, so neither stops
sooner. One group per network, "fit 784-10-10 10 epochs batch 100 adam alpha 0 float32", with
the two implementations "fastnn" and "scikit-learn"; the 784-128-10 group is a full-run case.

Before timing, each implementation is fitted once (fastnn's kernels compile or load from the
cache then, so compiling is never timed) and that fit must score at least 0.9 on the 10,000 test
images. Every timed round fits a fresh clone of the estimator. Threads: fastnn's Numba and
scikit-learn's BLAS both get the benchmark thread count (conftest.py).

Run as a script, it times whole `fit` calls with time.perf_counter instead (median of 3 each,
after a warm-up fit), which is what a user sees, and the CPU seconds the process used:

    FASTNN_DATA=/path/to/mnist python bench/test_bench_sklearn.py [ALPHA]

ALPHA (default 0) is the L2 penalty both get; NUMBA_NUM_THREADS=1 runs both on one thread.
"""

from __future__ import annotations

import statistics
import sys
import time
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SklearnMLP
from workloads import bench_threads, rounds

from fastnn.sklearn import MLPClassifier

EPOCHS = 10
BATCH = 100
MIN_TEST_ACCURACY = 0.9
HIDDEN_SIZES = (10, 128)
SMOKE_HIDDEN = 10
IMPLEMENTATIONS = ("fastnn", "scikit-learn")
SETTINGS = dict(
    solver="adam",
    learning_rate_init=0.001,
    alpha=0.0,
    batch_size=BATCH,
    max_iter=EPOCHS,
    tol=0.0,
    n_iter_no_change=10 * EPOCHS,
    early_stopping=False,
    random_state=0,
)


def estimator(implementation: str, hidden: int, alpha: float = SETTINGS["alpha"]):
    settings = {**SETTINGS, "hidden_layer_sizes": (hidden,), "alpha": alpha}
    if implementation == "fastnn":
        return MLPClassifier(dtype="float32", **settings)
    return SklearnMLP(shuffle=True, **settings)


def as_floats(images: np.ndarray) -> np.ndarray:
    """uint8 pixels to float32 in [0, 1]: scikit-learn's MLP uses float32 input as float32."""
    return images.astype(np.float32) / np.float32(255)


def fit(model, X: np.ndarray, y: np.ndarray):
    with warnings.catch_warnings():
        # both reach max_iter on purpose
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


@pytest.fixture(scope="module")
def mnist_floats(mnist):
    if mnist.test_images is None:
        pytest.skip("the MNIST source has no test set to check the accuracy on")
    return (
        as_floats(mnist.train_images),
        mnist.train_labels.astype(np.int64),
        as_floats(mnist.test_images),
        mnist.test_labels.astype(np.int64),
    )


def fit_params():
    for hidden in HIDDEN_SIZES:
        marks = () if hidden == SMOKE_HIDDEN else (pytest.mark.full_run,)
        for implementation in IMPLEMENTATIONS:
            yield pytest.param(
                hidden, implementation, marks=marks, id=f"784-{hidden}-10-{implementation}"
            )


@pytest.mark.parametrize(("hidden", "implementation"), list(fit_params()))
def test_fit(benchmark, request, mnist_floats, hidden, implementation):
    X_train, y_train, X_test, y_test = mnist_floats
    benchmark.group = f"fit 784-{hidden}-10 {EPOCHS} epochs batch {BATCH} adam alpha 0 float32"
    benchmark.extra_info.update(
        suite="sklearn", implementation=implementation, sizes=f"784-{hidden}-10",
        epochs=EPOCHS, batch=BATCH, dtype="float32", threads=bench_threads(),
    )  # fmt: skip
    model = estimator(implementation, hidden)

    warm = fit(clone(model), X_train, y_train)  # compiles fastnn's kernels: never timed
    assert warm.n_iter_ == EPOCHS
    accuracy = warm.score(X_test, y_test)
    benchmark.extra_info["test_accuracy"] = accuracy
    assert accuracy >= MIN_TEST_ACCURACY

    benchmark.pedantic(
        fit,
        setup=lambda: ((clone(model), X_train, y_train), {}),
        rounds=rounds(request.config),
    )


# ---- whole fit calls, as a script -------------------------------------------------------------


def main(alpha: float = 0.0) -> int:
    import numba
    import threadpoolctl

    import fastnn

    X_train, y_train, X_test, y_test = fastnn.load_mnist()
    X_train, X_test = as_floats(X_train), as_floats(X_test)
    threads = numba.get_num_threads()
    threadpoolctl.threadpool_limits(limits=threads, user_api="blas")
    print(f"MNIST 60,000 images, {EPOCHS} epochs of batches of {BATCH}, Adam, alpha {alpha:g}, "
          f"float32; {threads} Numba thread(s), BLAS limited to {threads}; 3 fit calls each: "
          "wall seconds (median; all 3), CPU seconds of this process (median)")  # fmt: skip
    print(f"{'network':<11} {'implementation':<13} {'wall s':>7}  {'all 3':<18} {'CPU s':>6} "
          f"{'test acc':>8}")  # fmt: skip
    for hidden in HIDDEN_SIZES:
        wall, cpu = {}, {}
        for implementation in IMPLEMENTATIONS:
            model = estimator(implementation, hidden, alpha)
            fit(clone(model), X_train[:1000], y_train[:1000])  # warm-up: compiles fastnn
            walls, cpus = [], []
            for _ in range(3):
                started, started_cpu = time.perf_counter(), time.process_time()
                fitted = fit(clone(model), X_train, y_train)
                walls.append(time.perf_counter() - started)
                cpus.append(time.process_time() - started_cpu)
            wall[implementation] = statistics.median(walls)
            cpu[implementation] = statistics.median(cpus)
            every = ", ".join(f"{s:.2f}" for s in walls)
            print(
                f"{f'784-{hidden}-10':<11} {implementation:<13} {wall[implementation]:7.2f}  "
                f"{every:<18} {cpu[implementation]:6.2f} {fitted.score(X_test, y_test):8.4f}"
            )
        print(
            f"784-{hidden}-10: scikit-learn / fastnn = {wall['scikit-learn'] / wall['fastnn']:.1f}"
            f" (wall), {cpu['scikit-learn'] / cpu['fastnn']:.1f} (CPU)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(*(float(value) for value in sys.argv[1:2])))
