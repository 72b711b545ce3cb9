"""fastnn from Python: load MNIST, train a network, look inside it, predict, save and load.

    >>> import fastnn
    >>> X_train, y_train, X_test, y_test = fastnn.load_mnist()
    >>> model = fastnn.train(X_train, y_train, epochs=10)
    >>> model.score(X_test, y_test)
    >>> model.W1.shape                      # (10, 784): one row of weights per hidden unit

`python -m fastnn.train` is built on the same functions: the same settings and seed give the
same weights, bit for bit, from either.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import numpy as np

from .errors import FastnnError
from .model import (
    ACTIVATIONS,
    DTYPES,
    INITS,
    LOSSES,
    Network,
    layer_parameters,
    load_model,
    save_model,
)
from .training import (
    BACKENDS,
    OPTIMIZERS,
    EpochRecord,
    TrainConfig,
    TrainingState,
    predict_outputs,
    to_inputs,
)
from .training import train as train_network

Callback = Callable[[EpochRecord], object]


# ---- data ------------------------------------------------------------------------------------


def load_mnist(
    data: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """MNIST as (X_train, y_train, X_test, y_test).

    Images are uint8 arrays (N, 784), one row per image, pixels 0-255; labels are int64 digits.
    The data is found as `python -m fastnn.train` finds it: `data` (a folder with the four IDX
    files, or a Kaggle train.csv), else the folder in $FASTNN_DATA, else the cache
    (~/.cache/fastnn), else a download there, checked against published SHA-256 sums. A Kaggle
    CSV has no test set: X_test and y_test are then None.
    """
    from .data import resolve_data

    dataset = resolve_data(None if data is None else str(data))
    return dataset.train_images, dataset.train_labels, dataset.test_images, dataset.test_labels


# ---- checking what a caller hands us ----------------------------------------------------------


def check_features(X: object, n_features: int | None = None, name: str = "X") -> np.ndarray:
    """X as a 2-D numeric array (samples, features), finite; ValueError (FastnnError) if not."""
    array = np.asarray(X)
    if array.dtype.kind not in "uif" or array.dtype == np.float16:
        raise FastnnError(f"{name} must hold numbers (uint8 pixels or floats), not {array.dtype}")
    if array.ndim != 2:
        raise FastnnError(f"{name} must be 2-D (samples, features); its shape is {array.shape}")
    if n_features is not None and array.shape[1] != n_features:
        raise FastnnError(
            f"{name} has {array.shape[1]} features per sample; the network takes {n_features}"
        )
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise FastnnError(f"{name} contains NaN or infinity")
    return array


def check_labels(y: object, n_samples: int) -> np.ndarray:
    """y as a 1-D int64 array of one label per sample; ValueError (FastnnError) if not."""
    labels = np.asarray(y)
    if labels.ndim != 1 or len(labels) != n_samples:
        raise FastnnError(
            f"y must be 1-D with one label per sample ({n_samples}); its shape is {labels.shape}"
        )
    if labels.dtype.kind == "f" and np.all(np.isfinite(labels)) and np.all(labels % 1 == 0):
        labels = labels.astype(np.int64)
    if labels.dtype.kind not in "iu":
        raise FastnnError(f"labels must be whole numbers, not {labels.dtype}")
    return labels.astype(np.int64)


def check_config(config: TrainConfig, n_samples: int) -> None:
    """Every setting in range, named as a keyword of train(); ValueError (FastnnError) if not."""

    def choose(name: str, value: object, choices: Sequence[str]) -> None:
        if value not in choices:
            raise FastnnError(f"{name}={value!r}: choose one of {', '.join(choices)}")

    choose("activation", config.activation, list(ACTIVATIONS))
    choose("loss", config.loss, list(LOSSES))
    choose("optimizer", config.optimizer, list(OPTIMIZERS))
    choose("backend", config.backend, BACKENDS)
    choose("dtype", config.dtype, list(DTYPES))
    if config.init is not None:
        choose("init", config.init, INITS)
    if not config.hidden or any(int(width) < 1 for width in config.hidden):
        raise FastnnError(f"hidden={config.hidden!r}: every hidden width must be at least 1")
    for name in ("lr", "momentum", "beta1", "beta2", "eps"):
        value = getattr(config, name)
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise FastnnError(f"{name}={value!r} must be a positive finite number")
    if not (isinstance(config.l2, int | float) and math.isfinite(config.l2) and config.l2 >= 0):
        raise FastnnError(f"l2={config.l2!r} must be a finite number ≥ 0")
    for name, minimum in (("epochs", 1), ("dev_size", 0)):
        value = getattr(config, name)
        if not isinstance(value, int | np.integer) or value < minimum:
            raise FastnnError(f"{name}={value!r} must be a whole number ≥ {minimum}")
    if config.patience is not None and (
        not isinstance(config.patience, int | np.integer) or config.patience < 0
    ):
        raise FastnnError(f"patience={config.patience!r} must be None or a whole number ≥ 0")
    if config.patience is not None and config.dev_size == 0:
        raise FastnnError("patience watches the dev accuracy: it needs dev_size of at least 1")
    if config.dev_size >= n_samples:
        raise FastnnError(
            f"dev_size={config.dev_size} must be smaller than the {n_samples} samples given"
        )
    n_fit = n_samples - config.dev_size
    if config.batch_size is not None:
        if not isinstance(config.batch_size, int | np.integer) or config.batch_size < 1:
            raise FastnnError(f"batch_size={config.batch_size!r}: a whole number ≥ 1, or 'full'")
        if config.batch_size > n_fit:
            raise FastnnError(
                f"batch_size={config.batch_size} is larger than the {n_fit} samples trained on "
                f"({n_samples} given, dev_size={config.dev_size} held out)"
            )


@contextmanager
def numba_threads(threads: int | None) -> Iterator[int]:
    """Run the body on `threads` Numba threads (None: as many as now), then restore the count."""
    import numba

    before = numba.get_num_threads()
    if threads is None:
        yield before
        return
    if not isinstance(threads, int | np.integer) or threads < 1:
        raise FastnnError(f"threads={threads!r} must be a whole number ≥ 1")
    if threads > numba.config.NUMBA_NUM_THREADS:
        raise FastnnError(
            f"threads={threads} is more than NUMBA_NUM_THREADS "
            f"({numba.config.NUMBA_NUM_THREADS}) allows"
        )
    numba.set_num_threads(int(threads))
    try:
        yield int(threads)
    finally:
        numba.set_num_threads(before)


# ---- the trained network ----------------------------------------------------------------------


@dataclass(eq=False)
class Model:
    """A trained network: predict with it, look at its weights, save it.

    Its weights and biases are named as in the math: `model.W1` is W[1], (units, inputs), and
    `model.b1` is b[1]; deeper layers are W2, b2, W3, ... They are read-only views into the
    parameters, so reading costs nothing and an accidental write raises instead of silently
    changing the model (`model.network.theta` is the writable flat vector, for those who mean
    it). Inputs to predict/score/forward are (samples, features): uint8 pixels are scaled to
    [0, 1], floats are used as given, as in training.
    """

    network: Network
    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    config: TrainConfig | None = None
    compile_seconds: float = 0.0

    # -- what it is
    @property
    def sizes(self) -> tuple[int, ...]:
        """Units per layer, inputs first: (784, 10, 10) for the default network."""
        return self.network.sizes

    @property
    def activation(self) -> str:
        return self.network.activation

    @property
    def loss(self) -> str:
        return self.network.loss

    @property
    def dtype(self) -> np.dtype:
        return self.network.dtype

    @property
    def classes(self) -> np.ndarray:
        """The label each output unit stands for, in order."""
        return read_only(self.network.classes)

    @property
    def weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """[(W1, b1), (W2, b2), ...], read-only views."""
        return [
            (read_only(W), read_only(b))
            for W, b in layer_parameters(self.network.theta, self.network.sizes)
        ]

    def __getattr__(self, name: str) -> np.ndarray:
        # W1, b1, W2, ...: only called for names the class does not define.
        if len(name) > 1 and name[0] in "Wb" and name[1:].isdigit():
            layer = int(name[1:])
            if 1 <= layer < len(self.network.sizes):
                return self.weights[layer - 1]["Wb".index(name[0])]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __dir__(self) -> list[str]:
        layers = range(1, len(self.network.sizes))
        return [*super().__dir__(), *(f"{p}{l}" for l in layers for p in "Wb")]

    def __repr__(self) -> str:
        shape = "-".join(str(n) for n in self.sizes)
        return f"fastnn.Model({shape}, {self.activation}, {self.loss}, {self.dtype})"

    # -- using it
    def predict_proba(self, X: np.ndarray, backend: str = "numba") -> np.ndarray:
        """(N, k): each sample's output layer A[L], one column per class, rows summing to 1.

        With softmax outputs these are the softmax probabilities; with the sigmoid outputs of
        `loss="mse"`, the k sigmoids divided by their sum.
        """
        return self.probabilities(check_features(X, self.sizes[0]), backend)

    def probabilities(self, inputs: np.ndarray, backend: str = "numba") -> np.ndarray:
        """predict_proba of inputs check_features has passed (uint8 is scaled by
        predict_outputs)."""
        outputs = predict_outputs(self.network, inputs, backend)
        if self.loss != "cross-entropy":
            outputs = outputs / outputs.sum(axis=1, keepdims=True)
        return outputs

    def predict(self, X: np.ndarray, backend: str = "numba") -> np.ndarray:
        """(N,): the label of the largest output for each sample."""
        return self.network.classes[self.predict_proba(X, backend).argmax(axis=1)]

    def score(self, X: np.ndarray, y: np.ndarray) -> float:
        """The fraction of samples whose predicted label is y."""
        X = check_features(X, self.sizes[0])
        labels = check_labels(y, len(X))
        if len(labels) == 0:
            raise FastnnError("score needs at least one sample")
        predicted = self.network.classes[self.probabilities(X).argmax(axis=1)]
        return float(np.mean(predicted == labels))

    def forward(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Every intermediate of the forward pass (1)-(3), computed by the per-equation kernels.

        Samples are columns, as in the math: {"A0": (784, m), "Z1": (10, m), "A1": (10, m),
        "Z2": (10, m), "A2": (10, m)} for the default network; deeper ones go on Z3, A3, ...
        Meant for a few samples at a time (it keeps every layer of every sample).
        """
        from .kernels import network as kernels

        inputs = to_inputs(check_features(X, self.sizes[0]), self.dtype.name)
        m = len(inputs)
        if m == 0:
            raise FastnnError("forward needs at least one sample")
        A0 = np.ascontiguousarray(inputs.T)
        sizes = self.network.layer_sizes
        units = int(sizes[1:].sum())
        Zs, As = np.empty(units * m, self.dtype), np.empty(units * m, self.dtype)
        kernels.forward(
            Zs, As, self.network.theta, A0, sizes,
            ACTIVATIONS[self.activation], LOSSES[self.loss], m,
        )  # fmt: skip
        values, offset = {"A0": A0}, 0
        for l, n in enumerate(self.sizes[1:], start=1):
            values[f"Z{l}"] = Zs[offset : offset + n * m].reshape(n, m)
            values[f"A{l}"] = As[offset : offset + n * m].reshape(n, m)
            offset += n * m
        return values

    def history_dicts(self) -> list[dict]:
        """The history as plain dicts, as `--metrics` writes it."""
        return [asdict(record) for record in self.history]

    def save(self, path: str | os.PathLike) -> None:
        """Write the network to an .npz file (atomically); fastnn.load reads it back."""
        save_model(path, self.network)


def read_only(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view


def load(path: str | os.PathLike) -> Model:
    """A Model from a file written by Model.save or `python -m fastnn.train --save`.

    The file is a plain .npz read with allow_pickle=False; anything else is refused with a
    FastnnError (a ValueError) naming the problem.
    """
    return Model(load_model(path))


# ---- training ---------------------------------------------------------------------------------


def epoch_header() -> str:
    return f"{'epoch':>5}  {'loss':>9}  {'train acc':>9}  {'dev acc':>8}  {'seconds':>7}"


def epoch_line(record: EpochRecord) -> str:
    """An epoch as the command line prints it: "    3     0.1898     81.84%    85.68%     0.19"."""
    dev = f"{100 * record.dev_accuracy:.2f}%" if np.isfinite(record.dev_accuracy) else "n/a"
    return (
        f"{record.epoch:5d}  {record.loss:9.4f}  {100 * record.train_accuracy:8.2f}%  "
        f"{dev:>8}  {record.seconds:7.2f}"
    )


def print_epochs(file=None) -> Callback:
    """A callback that prints the epoch table, its header before the first line."""
    printed_header = False

    def show(record: EpochRecord) -> None:
        nonlocal printed_header
        out = file or sys.stdout
        if not printed_header:
            print(epoch_header(), file=out)
            printed_header = True
        print(epoch_line(record), file=out, flush=True)

    return show


def train(
    X: np.ndarray,
    y: np.ndarray,
    *,
    hidden: int | Sequence[int] = TrainConfig.hidden,
    activation: str = TrainConfig.activation,
    loss: str = TrainConfig.loss,
    init: str | None = TrainConfig.init,
    optimizer: str = TrainConfig.optimizer,
    lr: float = TrainConfig.lr,
    l2: float = TrainConfig.l2,
    epochs: int = TrainConfig.epochs,
    batch_size: int | str | None = TrainConfig.batch_size,
    dev_size: int = TrainConfig.dev_size,
    patience: int | None = TrainConfig.patience,
    seed: int = TrainConfig.seed,
    backend: str = TrainConfig.backend,
    threads: int | None = None,
    dtype: str = TrainConfig.dtype,
    momentum: float = TrainConfig.momentum,
    beta1: float = TrainConfig.beta1,
    beta2: float = TrainConfig.beta2,
    eps: float = TrainConfig.eps,
    classes: Sequence[int] | None = None,
    callback: Callback | None = None,
    verbose: bool = False,
) -> Model:
    """Train a fully connected network on (X, y) and return it.

    X is (samples, features): uint8 pixels are scaled to [0, 1], floats are used as given. y
    holds one whole-number label per sample, any integers. The settings are
    `python -m fastnn.train`'s flags, with the same names and defaults: a network
    (features)-10-(classes), ReLU, softmax + cross-entropy, Adam at lr 0.001, 40 epochs of
    mini-batches of 100, 5,000 random samples held out as the dev set that reports accuracy
    after each epoch (dev_size=0: none), early stopping with `patience`, seed 0. `hidden` is
    one width or a sequence of widths (128, 64); `batch_size` None or "full" is full-batch
    gradient descent; `momentum` is the momentum optimizer's β; beta1, beta2, eps are Adam's.
    `classes` are the labels of the output units (default: the distinct values of y).

    `callback(record)` sees every epoch (a fastnn.EpochRecord: epoch, loss, train_accuracy,
    dev_accuracy, seconds); `verbose=True` prints the command line's epoch table. The model's
    `history` holds every epoch's record. A bad setting or input raises a ValueError
    (fastnn.FastnnError) naming it; a run whose loss stops being finite raises
    fastnn.TrainingDiverged.
    """
    config = TrainConfig(
        hidden=(int(hidden),) if isinstance(hidden, int | np.integer) else tuple(hidden),
        activation=activation,
        loss=loss,
        init=init,
        optimizer=optimizer,
        lr=lr,
        l2=l2,
        epochs=epochs,
        batch_size=None if batch_size == "full" else batch_size,
        dev_size=dev_size,
        patience=patience,
        seed=seed,
        backend=backend,
        dtype=dtype,
        momentum=momentum,
        beta1=beta1,
        beta2=beta2,
        eps=eps,
    )
    callbacks = [c for c in (print_epochs() if verbose else None, callback) if c is not None]
    return fit(config, X, y, classes=classes, threads=threads, on_epoch=callbacks)


def fit(
    config: TrainConfig,
    X: np.ndarray,
    y: np.ndarray,
    *,
    classes: Sequence[int] | None = None,
    threads: int | None = None,
    on_epoch: Sequence[Callback] = (),
    resume: TrainingState | None = None,
    on_state: Callable[[TrainingState], None] | None = None,
    on_slow_compile: Callable[[], None] | None = None,
) -> Model:
    """What train() and `python -m fastnn.train` both run: check, encode the labels, train.

    `resume`, `on_state` and `on_slow_compile` are the command line's checkpoints and its
    compiling notice (see fastnn.training.train).
    """
    X = check_features(X)
    labels = check_labels(y, len(X))
    check_config(config, len(X))
    if X.shape[1] < 1:
        raise FastnnError("X has no features")
    if classes is None:
        classes = np.unique(labels)
    classes = np.asarray(classes, dtype=np.int64)
    if classes.ndim != 1 or len(classes) < 2 or np.any(np.diff(classes) <= 0):
        found = ", ".join(str(c) for c in classes[:5])
        raise FastnnError(f"training needs at least two distinct classes; found: {found}")
    index = np.searchsorted(classes, labels)
    if np.any(index >= len(classes)) or np.any(
        classes[np.minimum(index, len(classes) - 1)] != labels
    ):
        raise FastnnError("y holds labels that are not among `classes`")

    def each_epoch(record: EpochRecord) -> None:
        for callback in on_epoch:
            callback(record)

    with numba_threads(threads):
        result = train_network(
            config,
            X,
            index,
            on_epoch=each_epoch,
            resume=resume,
            on_state=on_state,
            on_slow_compile=on_slow_compile,
            n_classes=len(classes),
        )
    result.network.classes = classes
    return Model(
        network=result.network,
        history=result.history,
        best_epoch=result.best_epoch,
        stopped_early=result.stopped_early,
        config=config,
        compile_seconds=result.compile_seconds,
    )
