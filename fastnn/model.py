"""The network: its shape, its parameters, how they start, and how they are saved and loaded.

All parameters live end to end in one flat vector θ (see kernels/network.py for the layout), so
an optimizer updates them with one loop and a model file stores them as named arrays W1, b1, ...
"""

from __future__ import annotations

import glob
import itertools
import os
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .errors import FastnnError
from .kernels.codes import CROSS_ENTROPY, RELU, SIGMOID, SQUARED_ERROR, TANH

ACTIVATIONS = {"relu": RELU, "sigmoid": SIGMOID, "tanh": TANH}
LOSSES = {"cross-entropy": CROSS_ENTROPY, "mse": SQUARED_ERROR}
INITS = ("he", "glorot", "uniform")
DTYPES = {"float32": np.float32, "float64": np.float64}

MODEL_FORMAT = "fastnn-model"
# Version 2 added `classes`, the label each output unit stands for; version 1 files are read
# with the labels 0 .. k-1.
MODEL_FORMAT_VERSION = 2


@dataclass
class Network:
    """Layer sizes (784, ..., 10), the hidden activation, the loss, the flat θ, and the label
    each output unit stands for (`classes`, default 0 .. k-1)."""

    sizes: tuple[int, ...]
    activation: str
    loss: str
    theta: np.ndarray
    classes: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.classes is None:
            self.classes = np.arange(self.sizes[-1], dtype=np.int64)

    @property
    def layer_sizes(self) -> np.ndarray:
        return np.array(self.sizes, dtype=np.int64)

    @property
    def dtype(self) -> np.dtype:
        return self.theta.dtype

    def parameters(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """[(W1, b1), (W2, b2), ...] as views into θ: W[l] (sizes[l], sizes[l-1])."""
        return layer_parameters(self.theta, self.sizes)


def parameter_count(sizes: tuple[int, ...]) -> int:
    return sum(n_out * n_in + n_out for n_in, n_out in itertools.pairwise(sizes))


def layer_parameters(theta: np.ndarray, sizes: tuple[int, ...]) -> list[tuple[np.ndarray, ...]]:
    """[(W1, b1), ...] as views into a flat vector laid out as kernels/network.py says."""
    views, offset = [], 0
    for n_in, n_out in itertools.pairwise(sizes):
        weights_end = offset + n_out * n_in
        views.append(
            (
                theta[offset:weights_end].reshape(n_out, n_in),
                theta[weights_end : weights_end + n_out],
            )
        )
        offset = weights_end + n_out
    return views


def default_init(activation: str) -> str:
    """He suits ReLU; Glorot suits sigmoid and tanh."""
    return "he" if activation == "relu" else "glorot"


def init_network(
    sizes: tuple[int, ...],
    activation: str = "relu",
    loss: str = "cross-entropy",
    init: str | None = None,
    dtype: str = "float32",
    rng: np.random.Generator | None = None,
) -> Network:
    """A fresh network. he: W ~ N(0, 2/n_in); glorot: W ~ U(±√(6/(n_in + n_out))); biases 0.
    uniform: W and b ~ U(−0.5, 0.5), the seeds' initialisation."""
    rng = rng if rng is not None else np.random.default_rng()
    init = init or default_init(activation)
    theta = np.zeros(parameter_count(sizes), dtype=np.float64)
    for W, b in layer_parameters(theta, sizes):
        n_out, n_in = W.shape
        if init == "he":
            W[:] = rng.normal(0.0, np.sqrt(2.0 / n_in), size=W.shape)
        elif init == "glorot":
            limit = np.sqrt(6.0 / (n_in + n_out))
            W[:] = rng.uniform(-limit, limit, size=W.shape)
        elif init == "uniform":
            W[:] = rng.uniform(-0.5, 0.5, size=W.shape)
            b[:] = rng.uniform(-0.5, 0.5, size=b.shape)
        else:
            raise FastnnError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
    return Network(tuple(int(n) for n in sizes), activation, loss, theta.astype(DTYPES[dtype]))


# ---- model files -----------------------------------------------------------------------------


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Call write(file) on a temporary file beside `path`, then rename it into place.

    Killing the process at any instant leaves either the old file or the new one, never half.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    prefix, suffix = f".{path.name}.", ".tmp"
    for stale in folder.glob(glob.escape(prefix) + "*" + suffix):  # left by a killed process
        stale.unlink(missing_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    try:
        os.chmod(temporary, 0o666 & ~current_umask())  # as open() would make it, not mkstemp's 0600
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def model_arrays(net: Network) -> dict[str, np.ndarray]:
    """What a model file holds: format, version, shape, activation, loss, classes, W1, b1, ..."""
    arrays = {
        "format": np.array(MODEL_FORMAT),
        "format_version": np.array(MODEL_FORMAT_VERSION),
        "sizes": net.layer_sizes,
        "activation": np.array(net.activation),
        "loss": np.array(net.loss),
        "classes": np.asarray(net.classes, dtype=np.int64),
    }
    for l, (W, b) in enumerate(net.parameters(), start=1):
        arrays[f"W{l}"], arrays[f"b{l}"] = W, b
    return arrays


def save_model(path: str | os.PathLike, net: Network) -> None:
    """Store the network with np.savez, atomically; refuses weights that are not finite."""
    if not np.all(np.isfinite(net.theta)):
        raise FastnnError(f"{path}: not saved: the weights contain NaN or infinity")
    try:
        atomic_write(path, lambda file: np.savez(file, **model_arrays(net)))
    except OSError as error:
        raise FastnnError(f"{path}: cannot write the model: {error.strerror or error}") from None


def read_npz(path: str | os.PathLike, what: str) -> dict[str, np.ndarray]:
    """Every array of an .npz file, read without unpickling; FastnnError for anything else."""
    if not Path(path).exists():
        raise FastnnError(f"{path}: no such file")
    if Path(path).is_dir():
        raise FastnnError(f"{path}: is a folder, not a {what}")
    if not zipfile.is_zipfile(path):
        raise FastnnError(f"{path}: not a {what} (not a .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except MemoryError:
        raise FastnnError(f"{path}: not a {what} (an entry is too large to read)") from None
    except Exception as error:  # a damaged zip fails in many ways: zipfile, zlib, numpy's header
        reason = "it holds pickled objects" if "pickle" in str(error) else f"unreadable: {error}"
        raise FastnnError(f"{path}: not a {what} ({reason})") from None


def load_model(path: str | os.PathLike) -> Network:
    """Read a model file written by save_model, refusing anything else (pickles included)."""
    arrays = read_npz(path, "fastnn model file")
    if not isinstance(arrays, dict) or str(arrays.get("format", "")) != MODEL_FORMAT:
        raise FastnnError(f"{path}: not a fastnn model file (no 'format' entry '{MODEL_FORMAT}')")
    return network_from_arrays(path, arrays)


def network_from_arrays(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Network:
    def fail(problem: str) -> FastnnError:
        return FastnnError(f"{path}: {problem}")

    version = arrays.get("format_version")
    if version is None or version.shape != () or version.dtype.kind not in "iu":
        raise fail("no valid 'format_version'")
    if int(version) > MODEL_FORMAT_VERSION:
        raise fail(
            f"model format version {int(version)} is newer than this fastnn reads "
            f"({MODEL_FORMAT_VERSION}); upgrade fastnn"
        )
    for name in ("sizes", "activation", "loss"):
        if name not in arrays:
            raise fail(f"missing array '{name}'")
    sizes = arrays["sizes"]
    if sizes.ndim != 1 or sizes.size < 2 or sizes.dtype.kind not in "iu" or np.any(sizes < 1):
        raise fail("'sizes' must be a list of at least two positive whole numbers")
    activation, loss = str(arrays["activation"]), str(arrays["loss"])
    if activation not in ACTIVATIONS:
        raise fail(f"unknown activation {activation!r}")
    if loss not in LOSSES:
        raise fail(f"unknown loss {loss!r}")
    sizes = tuple(int(n) for n in sizes)
    dtype = arrays.get("W1", np.empty(0)).dtype
    if dtype not in (np.float32, np.float64):
        raise fail(f"weights must be float32 or float64, not {dtype}")
    # Every array is checked against `sizes` before anything sized by `sizes` is allocated.
    for l, (n_in, n_out) in enumerate(itertools.pairwise(sizes), start=1):
        for name, shape in ((f"W{l}", (n_out, n_in)), (f"b{l}", (n_out,))):
            if name not in arrays:
                raise fail(f"missing array '{name}'")
            array = arrays[name]
            if array.shape != shape or array.dtype != dtype:
                raise fail(
                    f"array '{name}' is {array.dtype}{list(array.shape)}, "
                    f"expected {np.dtype(dtype)}{list(shape)}"
                )
            if not np.all(np.isfinite(array)):
                raise fail(f"array '{name}' contains NaN or infinity")
    classes = arrays.get("classes", np.arange(sizes[-1], dtype=np.int64))
    if (
        classes.shape != (sizes[-1],)
        or classes.dtype.kind not in "iu"
        or np.any(np.diff(classes) <= 0)
    ):
        raise fail(f"'classes' must be {sizes[-1]} increasing whole numbers, one per output")
    net = Network(
        sizes,
        activation,
        loss,
        np.empty(parameter_count(sizes), dtype=dtype),
        classes.astype(np.int64),
    )
    for l, (W, b) in enumerate(net.parameters(), start=1):
        W[:], b[:] = arrays[f"W{l}"], arrays[f"b{l}"]
    return net
