"""Shared by the command-line, resume, model-file and learning tests: small MNIST folders cut
from the real data, running the two commands (in this process or as `python -m`), and reading
what they print and save.

Imported as ``from cli_helpers import ...`` (tests/ has no __init__.py, so pytest puts this
folder on sys.path).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from data_helpers import MNIST_NAMES, idx_bytes, mnist_dir

from fastnn import cli
from fastnn.data import Dataset, load_mnist_dir

TRAIN = "fastnn.train"
PREDICT = "fastnn.predict"
TRAIN_PROG = "python -m fastnn.train"
PREDICT_PROG = "python -m fastnn.predict"

# An epoch line: "    3     0.1898     81.84%    85.68%     0.19".
EPOCH_LINE = re.compile(
    r"^\s*(\d+)\s+(\S+)\s+(\d+\.\d\d)%\s+(\d+\.\d\d|nan)%\s+(\d+\.\d\d)\s*$", re.MULTILINE
)
TEST_ACCURACY_LINE = re.compile(r"^test accuracy: (\d+\.\d\d)% on (\d+) images$", re.MULTILINE)

# A child process that has not finished by then has hung: fail instead of waiting for CI.
SUBPROCESS_TIMEOUT = 300


# ---- data ------------------------------------------------------------------------------------


@functools.cache
def _real_mnist(folder: str) -> Dataset:
    return load_mnist_dir(folder)


def real_mnist() -> Dataset:
    """The real MNIST from $FASTNN_DATA, read once per session (skips as mnist_dir() does)."""
    return _real_mnist(str(mnist_dir()))


def write_real_subset(folder: Path, n_train: int, n_test: int, first: int = 0) -> Path:
    """Write real MNIST training images first..first+n_train and the first n_test test images
    into `folder` as the four uncompressed IDX files; returns `folder`."""
    mnist = real_mnist()
    arrays = {
        "train_images": mnist.train_images[first : first + n_train].reshape(-1, 28, 28),
        "train_labels": mnist.train_labels[first : first + n_train],
        "test_images": mnist.test_images[:n_test].reshape(-1, 28, 28),
        "test_labels": mnist.test_labels[:n_test],
    }
    folder.mkdir(parents=True, exist_ok=True)
    for role, array in arrays.items():
        (folder / MNIST_NAMES[role]).write_bytes(idx_bytes(array))
    return folder


_subsets: dict[tuple[int, int, int], Path] = {}


def real_subset(tmp_path_factory, n_train: int, n_test: int, first: int = 0) -> Path:
    """write_real_subset into a session temporary folder, once per session for each size."""
    key = (n_train, n_test, first)
    if key not in _subsets:
        folder = tmp_path_factory.mktemp(f"mnist_{n_train}_{n_test}_{first}")
        _subsets[key] = write_real_subset(folder, n_train, n_test, first)
    return _subsets[key]


def write_kaggle_csv(path: Path, images: np.ndarray, labels: np.ndarray | None) -> None:
    """A Kaggle digit-recognizer CSV: train.csv (label,pixel0..) or, without labels, test.csv."""
    columns = [f"pixel{i}" for i in range(784)]
    table = images.astype(np.int64)
    if labels is not None:
        columns = ["label", *columns]
        table = np.column_stack([labels.astype(np.int64), table])
    rows = "\n".join(",".join(map(str, row)) for row in table.tolist())
    path.write_text(",".join(columns) + "\n" + rows + "\n")


# ---- running the commands ---------------------------------------------------------------------


def run_module(
    module: str,
    *args: str | os.PathLike,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = SUBPROCESS_TIMEOUT,
) -> subprocess.CompletedProcess:
    """`python -m module args...` to completion; output as text."""
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )


def start_module(module: str, *args: str | os.PathLike, env=None) -> subprocess.Popen:
    """`python -m module args...` in the background, stdout and stderr as text pipes."""
    return subprocess.Popen(
        [sys.executable, "-m", module, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def run_in_process(main, prog: str, argv: list, capsys) -> tuple[int, str, str]:
    """What `python -m` does (cli.run around main) in this process: (status, stdout, stderr).

    The Numba thread count is put back afterwards: --threads changes it for the whole process.
    So is what cli.run does to a command's process as it starts and ends
    (cli.fastnn_process): this one goes on running tests.
    """
    import gc

    import numba

    threads = numba.get_num_threads()
    capsys.readouterr()
    try:
        cli.run(prog, lambda: main([str(arg) for arg in argv]))
    except SystemExit as exit_:
        status = exit_.code
    else:
        raise AssertionError("cli.run returned instead of exiting")
    finally:
        numba.set_num_threads(threads)
        gc.unfreeze()
        if "scipy" in sys.modules and sys.modules["scipy"] is None:
            del sys.modules["scipy"]
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(err: str, *needles: str) -> None:
    """A clean failure: exactly one line on stderr, no traceback, mentioning every needle."""
    assert "Traceback" not in err, err
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    for needle in needles:
        assert needle in err, f"{needle!r} not in the error: {err!r}"


def epoch_lines(out: str) -> list[tuple[int, float, float, float]]:
    """(epoch, loss, train %, dev %) for each epoch line printed."""
    return [
        (int(epoch), float(loss), float(train), float(dev))
        for epoch, loss, train, dev, _ in EPOCH_LINE.findall(out)
    ]


def printed_test_accuracy(out: str) -> str:
    """The two-decimal percentage of the final 'test accuracy:' line, as printed."""
    found = TEST_ACCURACY_LINE.findall(out)
    assert len(found) == 1, f"expected one test accuracy line in:\n{out}"
    return found[0][0]


# ---- files -----------------------------------------------------------------------------------


def npz_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def assert_identical_npz(first: Path, second: Path) -> None:
    """Same array names, and every array equal bit for bit (dtype and shape included)."""
    a, b = npz_arrays(first), npz_arrays(second)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        assert a[name].shape == b[name].shape, name
        assert np.array_equal(a[name], b[name]), f"array {name} differs"


def without_seconds(history: list[dict]) -> list[dict]:
    """A metrics history without the wall-clock field, which differs between any two runs."""
    return [{key: value for key, value in record.items() if key != "seconds"} for record in history]


def train(argv, capsys) -> tuple[int, str, str]:
    """`python -m fastnn.train ARGV` in this process: (exit status, stdout, stderr)."""
    import fastnn.train

    return run_in_process(fastnn.train.main, TRAIN_PROG, argv, capsys)


ZIP_CORRUPTIONS = ["compression method 99", "encrypted flag"]


def corrupt_zip_directory(content: bytes, corruption: str) -> bytes:
    """A .npz whose first central-directory entry claims an unsupported method or encryption:
    zipfile then raises NotImplementedError or RuntimeError, not BadZipFile."""
    content = bytearray(content)
    entry = content.find(b"PK\x01\x02")  # the central directory's first entry
    assert entry > 0
    if corruption == "compression method 99":
        content[entry + 10] = 99
    else:
        content[entry + 8] |= 1
    return bytes(content)
