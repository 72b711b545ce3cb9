"""Properties the kernels must have for any input hypothesis can find, not only the seeds we chose.

softmax: every column a probability distribution, unchanged by adding a constant to a column;
cross-entropy: the same shift invariance, and −mean log of the softmax at the label;
dense_forward: shapes and values for any (n_out, n_in, m); ReLU: idempotent and exact.
"""

from __future__ import annotations

import numpy as np
from compare import assert_close, rtol_for
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fastnn import oracle
from fastnn.kernels import activations, dense, output

SETTINGS = settings(max_examples=60, deadline=None)

DTYPES = st.sampled_from([np.float64, np.float32])
SIZES = st.integers(min_value=1, max_value=17)


@st.composite
def matrices(draw, bound: float = 1000.0, dtype=None, shape=None):
    """A (rows, columns) array of finite floats in [−bound, bound], float64 or float32."""
    dtype = dtype or draw(DTYPES)
    shape = shape or (draw(SIZES), draw(SIZES))
    elements = st.floats(-bound, bound, width=np.dtype(dtype).itemsize * 8)
    return draw(hnp.arrays(dtype, shape, elements=elements))


def softmax(Z: np.ndarray) -> np.ndarray:
    A = np.full_like(Z, np.nan)
    output.softmax_forward(A, Z)
    return A


def shift_rtol(dtype, largest: float) -> float:
    """Adding c rounds Z + c by up to eps·|Z + c|, and e^(z − M) turns an error δ of the exponent
    into a relative error δ of A; two such roundings per column (z and M), both sides."""
    return rtol_for(dtype) + 8 * float(np.finfo(dtype).eps) * largest


@SETTINGS
@given(Z=matrices())
def test_softmax_columns_are_distributions(Z):
    A = softmax(Z)
    assert A.dtype == Z.dtype and A.shape == Z.shape
    assert np.all(np.isfinite(A))
    assert np.all((A >= 0) & (A <= 1))
    k = Z.shape[0]
    # Each of k terms rounds once, and the division once more.
    assert_close(
        A.sum(axis=0, dtype=np.float64),
        np.ones(Z.shape[1]),
        rtol=0,
        atol=4 * k * float(np.finfo(Z.dtype).eps),
        what="column sums",
    )
    # The largest logit of a column gets the largest probability.
    columns = np.arange(Z.shape[1])
    assert np.all(A[Z.argmax(axis=0), columns] == A.max(axis=0))


@SETTINGS
@given(data=st.data())
def test_softmax_and_cross_entropy_ignore_a_constant_added_to_a_column(data):
    Z = data.draw(matrices(bound=100.0))
    shifts = data.draw(
        hnp.arrays(np.float64, Z.shape[1], elements=st.floats(-100, 100)), label="shifts"
    )
    shifted = (Z + shifts.astype(Z.dtype)).astype(Z.dtype)
    rtol = shift_rtol(Z.dtype, 200.0)
    assert_close(softmax(shifted), softmax(Z), rtol=rtol, atol=1e-30, what="softmax(Z + c)")

    labels = data.draw(hnp.arrays(np.int64, Z.shape[1], elements=st.integers(0, Z.shape[0] - 1)))
    Y = np.eye(Z.shape[0], dtype=Z.dtype)[labels].T.copy()
    loss, shifted_loss = output.cross_entropy_loss(Z, Y), output.cross_entropy_loss(shifted, Y)
    # The loss is a difference of logits of size ≤ 200: its error is absolute, ~eps·200.
    assert_close(np.float64(shifted_loss), np.float64(loss), rtol=rtol, atol=rtol * 200, what="J")


@SETTINGS
@given(data=st.data())
def test_cross_entropy_is_mean_minus_log_softmax_at_the_label(data):
    Z = data.draw(matrices(bound=30.0, dtype=np.float64))
    labels = data.draw(hnp.arrays(np.int64, Z.shape[1], elements=st.integers(0, Z.shape[0] - 1)))
    Y = np.eye(Z.shape[0])[labels].T.copy()
    loss = output.cross_entropy_loss(Z, Y)
    A = softmax(Z)
    assert loss >= 0
    expected = -np.mean(np.log(A[labels, np.arange(Z.shape[1])]))
    # log A loses A's relative rounding, 1e-16 absolute per term: 1e-12 is generous.
    assert_close(np.float64(loss), np.float64(expected), rtol=1e-10, atol=1e-12, what="J")


@SETTINGS
@given(n_out=SIZES, n_in=SIZES, m=SIZES, dtype=DTYPES, seed=st.integers(0, 2**32 - 1))
def test_dense_forward_shapes_and_values(n_out, n_in, m, dtype, seed):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n_out, n_in)).astype(dtype)
    A = rng.standard_normal((n_in, m)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    Z = np.full((n_out, m), np.nan, dtype=dtype)
    dense.dense_forward(Z, W, A, b)
    magnitude = np.abs(W) @ np.abs(A) + np.abs(b)[:, None]
    assert_close(
        Z,
        oracle.dense_forward(W, A, b),
        rtol=rtol_for(dtype),
        atol=rtol_for(dtype) * float(magnitude.max()),
        what=f"Z ({n_out}, {m})",
    )


@SETTINGS
@given(Z=matrices())
def test_relu_is_idempotent_and_exact(Z):
    A, AA = np.full_like(Z, np.nan), np.full_like(Z, np.nan)
    activations.relu_forward(A, Z)
    activations.relu_forward(AA, A)
    assert A.dtype == Z.dtype
    assert np.array_equal(AA, A)
    assert np.all(A >= 0)
    assert np.array_equal(A[Z > 0], Z[Z > 0])
    assert np.array_equal(A, oracle.relu_forward(Z))


@SETTINGS
@given(Z=matrices(bound=50.0, dtype=np.float64))
def test_sigmoid_and_tanh_symmetries(Z):
    """σ(−z) = 1 − σ(z) and tanh(−z) = −tanh(z); both stay in their ranges."""
    A, A_negated = np.empty_like(Z), np.empty_like(Z)
    activations.sigmoid_forward(A, Z)
    activations.sigmoid_forward(A_negated, np.ascontiguousarray(-Z))
    assert np.all((A >= 0) & (A <= 1))
    assert_close(A_negated, 1 - A, rtol=0, atol=4e-16, what="σ(−Z) against 1 − σ(Z)")
    activations.tanh_forward(A, Z)
    activations.tanh_forward(A_negated, np.ascontiguousarray(-Z))
    assert np.all((A >= -1) & (A <= 1))
    assert np.array_equal(A_negated, -A)
