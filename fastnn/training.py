"""Training: the dev split, the epoch loop, dev accuracy, early stopping, the two backends.

The random generator lives here, in Python, for both backends: it draws the initial weights,
the dev split and each epoch's order, so `--backend numba` and `--backend numpy` step through
the same samples in the same order and can be compared number for number.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from types import SimpleNamespace

import numpy as np

from . import oracle
from .errors import FastnnError
from .kernels.codes import ADAM, MOMENTUM, SGD
from .model import ACTIVATIONS, DTYPES, LOSSES, Network, init_network, parameter_count

OPTIMIZERS = {"sgd": SGD, "momentum": MOMENTUM, "adam": ADAM}
BACKENDS = ("numba", "numpy")
PREDICT_CHUNK = 1000


@dataclass
class TrainConfig:
    """Everything that decides a run; the command line's flags map one to one onto it."""

    hidden: tuple[int, ...] = (10,)
    activation: str = "relu"
    loss: str = "cross-entropy"
    init: str | None = None  # None: he for relu, glorot otherwise
    optimizer: str = "adam"
    lr: float = 0.001
    l2: float = 0.0
    epochs: int = 40
    batch_size: int | None = 100  # None: the whole training set, one step an epoch
    dev_size: int = 5000
    patience: int | None = None  # None: no early stopping
    seed: int = 0
    backend: str = "numba"
    dtype: str = "float32"
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def sizes(self, n_inputs: int = 784, n_classes: int = 10) -> tuple[int, ...]:
        return (n_inputs, *self.hidden, n_classes)


@dataclass
class EpochRecord:
    epoch: int
    loss: float
    train_accuracy: float
    dev_accuracy: float
    seconds: float


@dataclass
class TrainResult:
    network: Network
    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    compile_seconds: float = 0.0

    def history_dicts(self) -> list[dict]:
        return [asdict(record) for record in self.history]


class TrainingDiverged(FastnnError):
    """The loss or the weights stopped being finite numbers."""


def numba_train_epoch(
    theta: np.ndarray, state1: np.ndarray, state2: np.ndarray, X: np.ndarray,
    labels: np.ndarray, order: np.ndarray, sizes: np.ndarray, *settings: float,
) -> tuple[float, int, int]:  # fmt: skip
    """network.train_epoch on the tiled, threaded kernels (kernels/tile_*.py), any depth; X as
    uint8 pixels or floats."""
    from .kernels import tile_plumbing  # Numba loads with the first network that trains on it

    with ctrl_c_deferred():
        return tile_plumbing.train_epoch(theta, state1, state2, X, labels, order, sizes, *settings)


def numba_predict(
    outputs: np.ndarray, theta: np.ndarray, X: np.ndarray, sizes: np.ndarray, *settings: int
) -> None:
    """network.predict on the tiled kernels, any depth."""
    from .kernels import tile_plumbing

    with ctrl_c_deferred():
        return tile_plumbing.predict(outputs, theta, X, sizes, *settings)


@contextmanager
def ctrl_c_deferred() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) back until the body is done, then raise it there.

    Numba hands the kernels passed by address (tile_plumbing.KernelAddress) to compiled code
    through calls into Python that do not survive a KeyboardInterrupt raised inside them: it
    came out as "TypeError: _get_wrapper_address() missing 1 required positional argument",
    a traceback instead of a clean stop. Nothing is lost by waiting: Python handles a signal
    only between its own steps, never while a kernel runs. Only the main thread receives
    signals; elsewhere, when Ctrl-C is ignored, or under a handler installed outside Python, the
    body just runs.
    """
    handler = signal.getsignal(signal.SIGINT)
    in_main_thread = threading.current_thread() is threading.main_thread()
    if not in_main_thread or handler in (None, signal.SIG_IGN):
        yield
        return
    pressed: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: pressed.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)
        if pressed:
            signal.raise_signal(signal.SIGINT)


def backend_functions(name: str) -> SimpleNamespace:
    """train_epoch and predict of the named backend; both have the same signatures."""
    if name == "numba":
        return SimpleNamespace(train_epoch=numba_train_epoch, predict=numba_predict)
    if name == "numpy":
        return SimpleNamespace(train_epoch=oracle.train_epoch, predict=oracle.predict)
    raise FastnnError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")


def to_inputs(images: np.ndarray, dtype: str) -> np.ndarray:
    """Samples as rows, C-contiguous, in the network's float type: uint8 pixels are scaled to
    [0, 1] (divided by 255); floats are used as given."""
    if images.dtype == np.uint8:
        inputs = np.array(images, dtype=DTYPES[dtype], order="C")  # a copy: divided in place
        inputs /= DTYPES[dtype](255)
        return inputs
    return np.ascontiguousarray(images, dtype=DTYPES[dtype])


def split_rows(
    n_samples: int, dev_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out `dev_size` random samples: (training rows, dev rows), each ascending."""
    if not 0 <= dev_size < n_samples:
        raise FastnnError(f"--dev-size {dev_size} must be at least 0 and below {n_samples}")
    order = rng.permutation(n_samples)
    return np.sort(order[dev_size:]), np.sort(order[:dev_size])


def predict_outputs(net: Network, X: np.ndarray, backend: str = "numba") -> np.ndarray:
    """The network's output layer A[L] for every row of X, shape (N, k). X as to_inputs takes
    it: uint8 pixels or floats (used as given). The numba kernels read uint8 pixels as they are
    and scale each as they read it (the same bits as to_inputs); for the oracle they are scaled
    here, PREDICT_CHUNK rows at a time, so that no float copy of all of X is made."""
    outputs = np.empty((X.shape[0], net.sizes[-1]), dtype=net.dtype)
    as_bytes = backend == "numba" and X.dtype == np.uint8
    step = PREDICT_CHUNK if X.dtype == np.uint8 and not as_bytes else max(1, X.shape[0])
    for first in range(0, X.shape[0], step):
        rows = X[first : first + step]
        backend_functions(backend).predict(
            outputs[first : first + step],
            net.theta,
            np.ascontiguousarray(rows) if as_bytes else to_inputs(rows, net.dtype.name),
            net.layer_sizes,
            ACTIVATIONS[net.activation],
            LOSSES[net.loss],
            PREDICT_CHUNK,
        )
    return outputs


def accuracy(net: Network, X: np.ndarray, labels: np.ndarray, backend: str = "numba") -> float:
    if len(labels) == 0:
        return float("nan")
    return float(np.mean(predict_outputs(net, X, backend).argmax(axis=1) == labels))


@dataclass
class TrainingState:
    """Everything that changes while training: what a checkpoint holds to continue exactly."""

    theta: np.ndarray
    state1: np.ndarray  # momentum's velocity, or Adam's first moment
    state2: np.ndarray  # Adam's second moment
    best_theta: np.ndarray
    rng_state: dict  # the generator's state after `epoch` epochs: the next epoch's order
    epoch: int = 0  # epochs completed
    step: int = 0  # updates made (Adam's t)
    best_epoch: int = 0
    best_accuracy: float = -1.0
    stopped_early: bool = False
    history: list[EpochRecord] = field(default_factory=list)


def train(
    config: TrainConfig,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    resume: TrainingState | None = None,
    on_state: Callable[[TrainingState], None] | None = None,
    on_slow_compile: Callable[[], None] | None = None,
    n_classes: int = 10,
) -> TrainResult:
    """Split off the dev set, train for config.epochs, keep the best weights if patience is set.

    `train_images` are (N, n_inputs), uint8 pixels (scaled to [0, 1]) or floats (used as
    given); `train_labels` integers 0 .. n_classes - 1. `resume` continues a run
    from its state after some epochs; `on_state` sees the state after every epoch (checkpoints);
    `on_slow_compile` is called once if compiling the kernels is still going on after
    SLOW_COMPILE_SECONDS (it is, on a machine's first run).
    """
    rng = np.random.default_rng(config.seed)
    net = init_network(
        config.sizes(train_images.shape[1], n_classes),
        config.activation,
        config.loss,
        config.init,
        config.dtype,
        rng,
    )
    rows, dev_rows = split_rows(len(train_labels), config.dev_size, rng)
    labels = train_labels[rows].astype(np.int64)
    dev_labels = train_labels[dev_rows].astype(np.int64)
    # uint8 pixels stay bytes for the numba kernels, which scale them as they read them: the
    # training images are not copied (the kernels read the rows rows[order] of the caller's),
    # and the dev images are predicted as bytes too (predict_outputs)
    as_bytes = config.backend == "numba" and train_images.dtype == np.uint8
    dev_X = train_images[dev_rows] if as_bytes else to_inputs(train_images[dev_rows], config.dtype)
    if as_bytes:
        X, X_labels = np.ascontiguousarray(train_images), train_labels.astype(np.int64)
    else:
        X, X_labels = to_inputs(train_images[rows], config.dtype), labels
        rows = np.arange(len(rows))
    backend = backend_functions(config.backend)
    n_samples = len(labels)
    batch_size = n_samples if config.batch_size is None else min(config.batch_size, n_samples)
    if resume is None:
        state = TrainingState(
            net.theta, np.zeros_like(net.theta), np.zeros_like(net.theta), net.theta.copy(), {}
        )
    else:
        state = resume
        net.theta = state.theta
        rng.bit_generator.state = state.rng_state
    codes = (
        ACTIVATIONS[config.activation],
        LOSSES[config.loss],
        OPTIMIZERS[config.optimizer],
    )
    beta1 = config.momentum if config.optimizer == "momentum" else config.beta1
    # floats whatever the caller gave: the kernels are compiled for float arguments (tiny_run)
    hyper = tuple(float(value) for value in (config.lr, config.l2, beta1, config.beta2, config.eps))

    result = TrainResult(network=net, history=state.history)
    if config.backend == "numba":
        with call_if_slow(on_slow_compile, SLOW_COMPILE_SECONDS):
            result.compile_seconds = compile_kernels(net, codes, hyper, batch_size, X)

    while state.epoch < config.epochs and not state.stopped_early:
        epoch = state.epoch + 1
        started = time.perf_counter()
        # Full batch: one step on every sample; the order changes nothing but rounding.
        order = rng.permutation(n_samples) if batch_size < n_samples else np.arange(n_samples)
        total_loss, correct, steps = backend.train_epoch(
            state.theta, state.state1, state.state2, X, X_labels, rows[order], net.layer_sizes,
            *codes, *hyper, state.step, batch_size,
        )  # fmt: skip
        loss = total_loss / n_samples
        if not np.isfinite(loss) or not np.all(np.isfinite(state.theta)):
            raise TrainingDiverged(
                f"training diverged in epoch {epoch}: the loss is {loss:g}; "
                f"try a smaller learning rate than --lr {config.lr:g}"
            )
        dev_accuracy = accuracy(net, dev_X, dev_labels, config.backend)
        record = EpochRecord(
            epoch, float(loss), correct / n_samples, dev_accuracy, time.perf_counter() - started
        )
        state.history.append(record)
        state.epoch, state.step = epoch, state.step + steps
        state.rng_state = rng.bit_generator.state
        if config.patience is not None and len(dev_labels):
            if dev_accuracy > state.best_accuracy:
                state.best_accuracy, state.best_epoch = dev_accuracy, epoch
                state.best_theta[:] = state.theta
            elif epoch - state.best_epoch >= config.patience:
                state.stopped_early = True
        if on_epoch is not None:
            on_epoch(record)
        if on_state is not None:
            on_state(state)
    result.stopped_early = state.stopped_early
    if config.patience is not None and state.best_epoch:
        net.theta = state.best_theta.copy()
        result.best_epoch = state.best_epoch
    else:
        result.best_epoch = len(state.history)
    return result


# Loading the kernels from the disk cache takes about 0.3 s; compiling them, several seconds on a
# machine's first run (bench/README.md gives the figures).
SLOW_COMPILE_SECONDS = 1.0


@contextmanager
def call_if_slow(callback: Callable[[], None] | None, seconds: float) -> Iterator[None]:
    """Run the body; if it is still running after `seconds`, call `callback` once, from a
    timer thread. The callback has returned by the time the body's caller goes on."""
    if callback is None:
        yield
        return
    timer = threading.Timer(seconds, callback)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()


def compile_kernels(
    net: Network, codes: tuple, hyper: tuple, batch_size: int, X: np.ndarray | None = None
) -> float:
    """Compile (or load from the disk cache) what training on X will call; returns the seconds
    taken.

    Runs one tiny epoch and one tiny prediction on arrays of the types training passes, so the
    timed epochs never include compilation. Every depth, activation, loss and optimizer runs the
    same compiled kernels (kernels/tile_plumbing.py), so only a machine's first run of a float
    type compiles; later runs load them. A first layer that will run on X's nonzero inputs
    alone (tile_plumbing.sparse_first_layer) needs two kernels more, compiled the first time
    one does. Without X, those for uint8 images and a dense first layer.
    """
    from .kernels import tile_plumbing

    started = time.perf_counter()
    sparse = X is not None and tile_plumbing.sparse_first_layer(X, net.layer_sizes)
    inputs = "uint8" if X is None else X.dtype.name
    epoch_arguments, predict_arguments = tiny_run(
        net.sizes, net.dtype.name, codes, hyper, batch_size, sparse, inputs
    )
    numba_train_epoch(*epoch_arguments)
    numba_predict(*predict_arguments)
    return time.perf_counter() - started


def tiny_run(
    sizes: Sequence[int],
    dtype: str,
    codes: Sequence[int],
    hyper: Sequence[float],
    batch_size: int,
    sparse: bool = False,
    inputs: str = "uint8",
) -> tuple[tuple, tuple]:
    """Arguments for a two-sample epoch and prediction, of the Numba types training passes:
    C arrays of the network's float type for θ and its states, images of the `inputs` type for
    both (uint8 pixels, as train() keeps them for the epoch and the dev set, or the floats it
    makes of other images), int64 labels and order. The images are all 0 if `sparse`, so that a
    wide enough first layer runs on their nonzero inputs (tile_plumbing.py), else all 1."""
    theta = np.zeros(parameter_count(tuple(sizes)), dtype)
    images = np.full((2, sizes[0]), 0 if sparse else 1, inputs)
    epoch_arguments = (
        theta, np.zeros_like(theta), np.zeros_like(theta), images,
        np.zeros(2, np.int64), np.arange(2), np.array(sizes, np.int64),
        *(int(code) for code in codes), *(float(value) for value in hyper), 0,
        min(int(batch_size), 2),
    )  # fmt: skip
    predict_arguments = (
        np.empty((2, sizes[-1]), dtype), theta, images,
        np.array(sizes, np.int64), int(codes[0]), int(codes[1]), PREDICT_CHUNK,
    )  # fmt: skip
    return epoch_arguments, predict_arguments
