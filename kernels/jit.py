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
    # Numba gives every function an entry point for calls from C as well as the one for calls
    # from Python; only the kernels that are called by address use it (addressed_kernel)
    "no_cfunc_wrapper": True,
}


def kernel(function):
    """Compile a serial loop kernel."""
    return numba.njit(**JIT_OPTIONS)(function)


def addressed_kernel(function):
    """Compile a serial kernel that other kernels call by the address of its machine code
    (tile_plumbing.KernelAddress): with the entry point for calls from C, which that takes."""
    return numba.njit(**{**JIT_OPTIONS, "no_cfunc_wrapper": False})(function)


def parallel_kernel(function):
    """Compile a kernel whose outer `prange` loop is split across threads.

    Each `prange` iteration writes only the output slice it owns, so the result does not depend
    on the number of threads.
    """
    return numba.njit(parallel=True, **JIT_OPTIONS)(function)


def inlined_kernel(function):
    """Compile a small kernel into each kernel that calls it, not as a function of its own.

    For kernels that only cut views, do a little index arithmetic or pass arrays on to other
    kernels, and for a kernel that the tiled path calls from one place (an activation inside
    network.hidden_forward or hidden_backward, an optimizer inside network.update, update and
    l2_backward inside update_block). Numba turns every kernel it compiles into machine code of
    its own and then once more inside each kernel that calls it; for these that is compile time
    spent for nothing (measured on the one-hidden-layer kernels the tiled path replaced, for
    chunk_count and chunk_bounds: 8.9 against 9.8 s, medians of three cold starts of `python -m
    fastnn.train`; for the activations, the optimizers and update, 0.5-1 s less). Not for
    kernels that the big kernels call in many places: inlining the views there made compiling
    slower (9.6 s).
    """
    return numba.njit(inline="always", **JIT_OPTIONS)(function)
