"""The one compare helper of the math tests: shape first, then dtype, then values.

Imported as ``from compare import assert_close``: tests/ has no __init__.py, so pytest puts this
folder on sys.path.

A failure says which check failed; for values it reports how many elements are off, the largest
absolute and relative differences and where they are, and the two numbers at each of those places.
NaN matches only NaN, and an infinity only the same infinity.
"""

from __future__ import annotations

import numpy as np

# What the tests mean by "the same number": float64 to about 1e-10 relative, float32 to about
# 1e-5 (STYLE.md, habit 8). A test that needs another tolerance says why beside it.
RTOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}


def rtol_for(dtype) -> float:
    return RTOL[np.dtype(dtype)]


def assert_close(actual, expected, *, rtol: float, atol: float = 0.0, what: str = "array") -> None:
    """Fail unless `actual` has the shape and dtype of `expected` and |actual − expected| ≤
    atol + rtol·|expected| everywhere."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        raise AssertionError(f"{what}: shape {actual.shape}, expected {expected.shape}")
    if actual.dtype != expected.dtype:
        raise AssertionError(f"{what}: dtype {actual.dtype}, expected {expected.dtype}")
    if actual.size == 0:
        return
    # Differences are measured in float64 whatever the dtype, so they do not round themselves.
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    both_nan = np.isnan(a) & np.isnan(e)
    same_infinity = np.isinf(a) & (a == e)
    with np.errstate(invalid="ignore", over="ignore"):
        difference = np.abs(a - e)
        allowed = atol + rtol * np.abs(e)
        wrong = ~((difference <= allowed) | both_nan | same_infinity)
    if not wrong.any():
        return

    difference = np.where(both_nan | same_infinity, 0.0, difference)
    difference = np.where(np.isnan(difference), np.inf, difference)  # NaN against a number
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(difference == 0, 0.0, difference / np.abs(e))

    def where(index) -> str:
        place = np.unravel_index(index, actual.shape) if actual.ndim else ()
        return f"at {tuple(int(i) for i in place)}: actual {a[place]!r}, expected {e[place]!r}"

    worst_abs, worst_rel = int(np.argmax(difference)), int(np.argmax(relative))
    raise AssertionError(
        f"{what}: {int(wrong.sum())} of {actual.size} values differ beyond "
        f"rtol={rtol:g}, atol={atol:g} ({actual.dtype})\n"
        f"  max abs difference {difference.flat[worst_abs]:.3e} {where(worst_abs)}\n"
        f"  max rel difference {relative.flat[worst_rel]:.3e} {where(worst_rel)}"
    )


def describe_difference(actual, expected) -> str:
    """'exact', or the largest absolute and relative differences: for messages and reports."""
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if np.array_equal(a, e, equal_nan=True):
        return "exact"
    difference = np.abs(a - e)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.max(np.where(difference == 0, 0.0, difference / np.abs(e)))
    return f"close: max abs {np.max(difference):.3e}, max rel {relative:.3e}"
