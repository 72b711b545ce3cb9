"""What the commands share: argument checks, one-line errors, exit statuses, and how their
processes start (without SciPy) and end (without Python's last garbage collections).

Exit statuses: 0 done, 1 training diverged, 2 bad input (flags, files, downloads), 130 stopped
by Ctrl-C.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import FastnnError

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 1
EXIT_INTERRUPTED = 130


class Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr (usage is one --help away), status 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive finite number")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number ≥ 0")
    return abs(value)  # -0 is 0


def whole_number(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be at least {minimum}")
        return value

    parse.__name__ = f"whole number ≥ {minimum}"
    return parse


def output_path(text: str) -> Path:
    """A file to write: its folder must exist and be writable, and it must not be a folder."""
    path = Path(text)
    folder = path.parent
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder; name a file")
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"the folder of {text!r} does not exist: {folder}")
    if not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write in the folder of {text!r}: {folder}")
    return path


def existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text!r}: no such file")
    return path


def set_threads(threads: int | None) -> int:
    """Use `threads` threads (capped by NUMBA_NUM_THREADS); returns the number in use."""
    import numba

    if threads is not None:
        if threads > numba.config.NUMBA_NUM_THREADS:
            raise FastnnError(
                f"--threads {threads} is more than NUMBA_NUM_THREADS "
                f"({numba.config.NUMBA_NUM_THREADS}) allows"
            )
        numba.set_num_threads(threads)
    return numba.get_num_threads()


def run(prog: str, main: Callable[[], int]) -> None:
    """Run a command; a FastnnError or Ctrl-C becomes one line and an exit status, no traceback."""
    from .training import TrainingDiverged

    with fastnn_process():
        try:
            status = main()
        except TrainingDiverged as error:
            print(f"{prog}: {error}", file=sys.stderr)
            status = EXIT_DIVERGED
        except FastnnError as error:
            print(f"{prog}: error: {error}", file=sys.stderr)
            status = EXIT_BAD_INPUT
        except KeyboardInterrupt:
            print(f"{prog}: interrupted", file=sys.stderr)
            status = EXIT_INTERRUPTED
        sys.exit(status)


@contextmanager
def fastnn_process() -> Iterator[None]:
    """The whole life of a process that is fastnn's own (a command, a sweep's worker process),
    not a Python session that imports fastnn, which keeps its SciPy and its usual exit:

    - it runs without SciPy (without_scipy);
    - it ends without the garbage collections that Python runs as it tears itself down: after
      Numba had loaded they took 0.13 s, to free memory that the system takes back anyway.
      Everything else at exit still runs: atexit handlers, waiting for threads, flushing stdout
      and stderr. (Objects that exist at the end are no longer collected: a file must be
      closed by then.)
    """
    without_scipy()
    try:
        yield
    finally:
        gc.freeze()


def without_scipy() -> None:
    """Run this process as on a machine without SciPy, unless SciPy is imported already.

    Numba's first compile or cache load imports SciPy, where it is installed, only to learn
    whether compiled code could call its BLAS (for np.dot and np.linalg); fastnn's kernels are
    loops and call neither. The import took 0.25 s: a sweep worker's warm-up took 0.63-0.76 s
    with it and 0.41-0.43 s without.
    """
    sys.modules.setdefault("scipy", None)  # None: `import scipy` raises ImportError


def say_compiling() -> None:
    """The note a command prints when compiling its kernels is taking a while."""
    print(
        "compiling the loop kernels: the first run on this machine does this once, "
        "later runs load them from a cache",
        flush=True,
    )
