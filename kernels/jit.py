"""The JIT options every kernel is compiled with, defined once.

fastmath: only reassociation, contraction (fused multiply-add) and no-signed-zeros. Reassociation
is what lets LLVM vectorise the sum of a dot product (../shared/PERF_NOTES.md, lesson 1: 3.6x).
We leave out the flags that assume no NaN or infinity ("nnan", "ninf"): divergence detection
and the stable softmax rely on NaN and infinity behaving as IEEE 754 says.

cache: compiled machine code is written to disk, so a second process loads it instead of
compiling again. Numba checks only the source file of the function it loads, not the kernels that
function calls, so a cache kept after a kernel changed could run stale code. fastnn therefore
keeps its cache in a folder named after a hash of every kernel source and the Numba version:
$XDG_CACHE_HOME/fastnn/numba/<hash> (default ~/.cache/fastnn/...). NUMBA_CACHE_DIR, when set,
is used as it is.
"""

import hashlib
import os
from pathlib import Path

import numba
import numba.experimental.function_type  # registers the Numba type of a KernelAddress
from numba import types
from numba.core.typing import Signature


def kernel_cache_dir() -> Path:
    """The cache folder for this exact set of kernel sources and this Numba."""
    digest = hashlib.sha256(numba.__version__.encode())
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.name.encode() + source.read_bytes())
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache_home / "fastnn" / "numba" / digest.hexdigest()[:16]


if not os.environ.get("NUMBA_CACHE_DIR"):
    os.environ["NUMBA_CACHE_DIR"] = str(kernel_cache_dir())
    numba.config.reload_config()

FASTMATH_FLAGS = {"reassoc", "contract", "nsz"}

JIT_OPTIONS = {
    "cache": True,
    "nogil": True,
    "fastmath": FASTMATH_FLAGS,
    "error_model": "numpy",
}


def kernel(function):
    """Compile a serial loop kernel."""
    return numba.njit(**JIT_OPTIONS)(function)


def parallel_kernel(function):
    """Compile a kernel whose outer `prange` loop is split across threads.

    Each `prange` iteration writes only the output slice it owns, so the result does not depend
    on the number of threads.
    """
    return numba.njit(parallel=True, **JIT_OPTIONS)(function)


def inlined_kernel(function):
    """Compile a small kernel into each kernel that calls it, not as a function of its own.

    For kernels that only cut views, do a little index arithmetic or pass arrays on to other
    kernels. Numba turns every kernel it compiles into machine code of its own and then once
    more inside each kernel that calls it; for these that is compile time spent for nothing
    (measured: 4-5 s of a cold start of `python -m fastnn.train`, for fused.py's tile_step and
    chunk_gradient, before the second became a KernelAddress; for chunk_count and chunk_bounds,
    8.9 against 9.8 s, medians of three cold starts). Not for kernels that the big kernels call
    in many places: inlining fused.py's views and tile_view made compiling slower (9.6 s).
    """
    return numba.njit(inline="always", **JIT_OPTIONS)(function)


class KernelAddress(types.WrapperAddressProtocol):
    """A kernel handed to a parallel kernel as an argument: the address of its machine code.

    Numba compiles a `prange` loop's body into a function of its own, wrapped twice, and copies
    the machine code of every kernel the body calls into each of those three functions and into
    the kernel that holds the loop, optimising and compiling it four times over. A kernel passed
    as a KernelAddress is compiled once, and the loop calls it through its address.
    Measured on fused.py, a fresh cache each time: compiling what the default training run
    needs took 30-32 s with the tile kernels compiled into the loops and 19-22 s with them
    passed this way, and the 784-10-10 epoch ran as fast (51.4 against 52.4 ms on 2 threads,
    best of 8, interleaved).

    `signature` gives the types of the arguments the caller passes, exactly (Numba's
    first-class function types). Called from Python, as it is when NUMBA_DISABLE_JIT=1, it runs
    the kernel itself; the signature, the address and `compile` exist only for compiled code,
    so the coverage run (NUMBA_DISABLE_JIT=1) cannot see them, and every compiled test of
    fused.train_epoch runs them.
    """

    def __init__(self, kernel, signature: Signature):
        self.kernel = kernel
        self._signature = signature

    def signature(self) -> Signature:  # pragma: no cover
        return self._signature

    def compile(self):  # pragma: no cover
        """Compile the kernel for this signature, or load it from the disk cache."""
        return self.kernel.get_compile_result(self._signature)

    def __wrapper_address__(self) -> int:  # pragma: no cover
        compiled = self.compile()
        name = compiled.fndesc.llvm_cfunc_wrapper_name  # its entry point for C-style calls
        return compiled.library.get_pointer_to_function(name)

    def __call__(self, *arguments):
        return self.kernel(*arguments)
