"""Shared by the data tests: where the real MNIST is, and small valid IDX files to break.

Imported as ``from data_helpers import ...``: tests/ has no __init__.py, so pytest puts this folder
on sys.path.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
from pathlib import Path

import numpy as np
import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Spelled out rather than taken from fastnn.data, so a typo there cannot hide in both places.
MNIST_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def mnist_dir() -> Path:
    """The folder of the real MNIST files named by $FASTNN_DATA.

    Skips the calling test when it is unset or does not hold the four files, unless
    FASTNN_REQUIRE_DATA=1 (as in CI), where that is a failure. A relative path is taken from the
    current folder, then from the project root, since CI gives it relative to the root.
    """
    value = os.environ.get("FASTNN_DATA", "")
    if value:
        given = Path(value)
        candidates = [given] if given.is_absolute() else [Path.cwd() / given, PROJECT_ROOT / given]
        for folder in candidates:
            if all(_holds_file(folder, name) for name in MNIST_NAMES.values()):
                return folder.resolve()
        problem = f"FASTNN_DATA={value} is not a folder holding the four MNIST files"
    else:
        problem = "FASTNN_DATA is not set"
    if os.environ.get("FASTNN_REQUIRE_DATA") == "1":
        pytest.fail(f"{problem}, and FASTNN_REQUIRE_DATA=1 says the real MNIST must be there")
    pytest.skip(f"{problem}; the real-MNIST tests need it")


def _holds_file(folder: Path, name: str) -> bool:
    return (folder / name).is_file() or (folder / f"{name}.gz").is_file()


def mnist_file(folder: Path, name: str) -> Path:
    """``name`` in ``folder``, gzipped or not."""
    gzipped = folder / f"{name}.gz"
    return gzipped if gzipped.is_file() else folder / name


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: 1-D as labels (magic 0x801), 3-D as images (0x803)."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def uncompressed_sha256(path: Path) -> str:
    content = path.read_bytes()
    if content[:2] == b"\x1f\x8b":
        content = gzip.decompress(content)
    return hashlib.sha256(content).hexdigest()


def write_idx_dir(
    folder: Path, n_train: int, n_test: int, gz: bool, seed: int = 0
) -> dict[str, np.ndarray]:
    """Write four valid, small MNIST-format files of random 28x28 images into ``folder``.

    Returns what a loader should give back, by role: images as (n, 784), labels as (n,).
    """
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, size=n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, size=n_test, dtype=np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for role, array in arrays.items():
        content = idx_bytes(array)
        name = MNIST_NAMES[role]
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(content, mtime=0))
        else:
            (folder / name).write_bytes(content)
    return {
        role: array.reshape(len(array), -1) if array.ndim == 3 else array
        for role, array in arrays.items()
    }
