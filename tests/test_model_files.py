"""Model files: save_model/load_model round trips, and load_model refusing every file that is not
a fastnn model, each with a FastnnError naming the file. Fuzzing: random bytes, truncations and
byte flips of a valid file give a FastnnError or a valid network, never another exception.
"""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import ZIP_CORRUPTIONS, corrupt_zip_directory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastnn.errors import FastnnError
from fastnn.model import (
    ACTIVATIONS,
    LOSSES,
    MODEL_FORMAT_VERSION,
    Network,
    init_network,
    load_model,
    model_arrays,
    parameter_count,
    save_model,
)

ROUND_TRIPS = {
    "default 784-10-10 float32": ((784, 10, 10), "relu", "cross-entropy", "float32"),
    "two hidden float64": ((784, 32, 16, 10), "tanh", "cross-entropy", "float64"),
    "odd sizes, sigmoid, mse": ((3, 7, 5), "sigmoid", "mse", "float32"),
    "no hidden layer": ((5, 3), "relu", "mse", "float64"),
}


def network(sizes=(784, 10, 10), activation="relu", loss="cross-entropy", dtype="float32"):
    rng = np.random.default_rng(sum(sizes))
    return init_network(sizes, activation, loss, "uniform", dtype, rng)


@pytest.mark.parametrize("sizes, activation, loss, dtype", ROUND_TRIPS.values(),
                         ids=ROUND_TRIPS.keys())  # fmt: skip
def test_round_trip(sizes, activation, loss, dtype, tmp_path) -> None:
    net = network(sizes, activation, loss, dtype)
    path = tmp_path / "model.npz"
    save_model(path, net)
    loaded = load_model(path)
    assert loaded.sizes == sizes
    assert (loaded.activation, loaded.loss) == (activation, loss)
    assert loaded.dtype == np.dtype(dtype)
    assert loaded.theta.shape == net.theta.shape
    assert np.array_equal(loaded.theta, net.theta)
    for (W, b), (W_loaded, b_loaded) in zip(net.parameters(), loaded.parameters(), strict=True):
        assert np.array_equal(W, W_loaded) and np.array_equal(b, b_loaded)
    assert [path.name for path in tmp_path.iterdir()] == ["model.npz"]


def test_save_refuses_weights_that_are_not_finite(tmp_path) -> None:
    net = network()
    net.theta[5] = np.inf
    path = tmp_path / "model.npz"
    with pytest.raises(FastnnError, match="NaN or infinity") as raised:
        save_model(path, net)
    assert str(path) in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_save_replaces_an_existing_model(tmp_path) -> None:
    path = tmp_path / "model.npz"
    save_model(path, network((3, 4, 2)))
    save_model(path, network((3, 5, 2)))
    assert load_model(path).sizes == (3, 5, 2)
    assert [path.name for path in tmp_path.iterdir()] == ["model.npz"]


def test_saved_model_has_the_usual_permissions(tmp_path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    path = tmp_path / "model.npz"
    save_model(path, network((3, 4, 2)))
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


# ---- files load_model must refuse ------------------------------------------------------------


def saved_arrays(**changes) -> dict[str, np.ndarray]:
    """The arrays of a valid 784-10-10 model file, with `changes` (None deletes an entry)."""
    arrays = model_arrays(network())
    arrays = {name: np.array(array) for name, array in arrays.items()}
    for name, value in changes.items():
        if value is None:
            del arrays[name]
        else:
            arrays[name] = value
    return arrays


def with_nan(name: str, value=np.nan) -> np.ndarray:
    array = saved_arrays()[name].copy()
    array.flat[3] = value
    return array


BAD_ARRAYS = {
    "newer format version": ({"format_version": np.array(MODEL_FORMAT_VERSION + 1)}, "newer"),
    "no format entry": ({"format": None}, "not a fastnn model"),
    "other format name": ({"format": np.array("something-else")}, "not a fastnn model"),
    "no format version": ({"format_version": None}, "format_version"),
    "missing W2": ({"W2": None}, "W2"),
    "missing b1": ({"b1": None}, "b1"),
    "missing sizes": ({"sizes": None}, "sizes"),
    "W2 of the wrong shape": ({"W2": np.zeros((10, 11), np.float32)}, "W2"),
    "W1 transposed": ({"W1": np.zeros((784, 10), np.float32)}, "W1"),
    "b2 of the wrong shape": ({"b2": np.zeros((10, 1), np.float32)}, "b2"),
    "integer weights": ({"W1": np.zeros((10, 784), np.int64)}, "int64"),
    "integer W2 only": ({"W2": np.zeros((10, 10), np.int32)}, "W2"),
    "float16 weights": ({"W1": np.zeros((10, 784), np.float16)}, "float16"),
    "mixed float32 and float64": ({"b2": np.zeros(10, np.float64)}, "b2"),
    "NaN in W2": ({"W2": with_nan("W2")}, "NaN"),
    "infinity in b1": ({"b1": with_nan("b1", -np.inf)}, "infinity"),
    "unknown activation": ({"activation": np.array("softplus")}, "activation"),
    "unknown loss": ({"loss": np.array("hinge")}, "loss"),
    "sizes with a zero": ({"sizes": np.array([784, 0, 10])}, "sizes"),
    "sizes as floats": ({"sizes": np.array([784.0, 10.0, 10.0])}, "sizes"),
    "sizes that disagree with W1": ({"sizes": np.array([784, 11, 10])}, "W1"),
}


@pytest.mark.parametrize("changes, needle", BAD_ARRAYS.values(), ids=BAD_ARRAYS.keys())
def test_load_refuses_bad_content(changes, needle, tmp_path) -> None:
    path = tmp_path / "model.npz"
    np.savez(path, **saved_arrays(**changes))
    with pytest.raises(FastnnError) as raised:
        load_model(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: "), message
    assert needle in message


@pytest.mark.parametrize("where", ["an extra entry", "W2"])
def test_load_refuses_pickled_content(where, tmp_path) -> None:
    """An object array is stored as a pickle inside the .npz: loading must not unpickle it."""
    payload = np.array([{"weights": 1}, [1, 2]], dtype=object)
    name = "extra" if where == "an extra entry" else "W2"
    path = tmp_path / "model.npz"
    np.savez(path, **saved_arrays(**{name: payload}))
    with pytest.raises(FastnnError, match="pickle") as raised:
        load_model(path)
    assert str(raised.value).startswith(f"{path}: ")


def valid_file_bytes(tmp_path: Path, sizes=(784, 10, 10)) -> bytes:
    path = tmp_path / "valid.npz"
    save_model(path, network(sizes))
    return path.read_bytes()


@pytest.mark.parametrize("keep", [0, 1, 4, 30, 100, 0.5, -22, -1])
def test_load_refuses_a_truncated_file(keep, tmp_path) -> None:
    content = valid_file_bytes(tmp_path)
    end = int(len(content) * keep) if isinstance(keep, float) else keep
    path = tmp_path / "model.npz"
    path.write_bytes(content[:end])
    with pytest.raises(FastnnError) as raised:
        load_model(path)
    assert str(raised.value).startswith(f"{path}: ")


NOT_ZIP = {
    "text": b"W1,b1,W2,b2\n1,2,3,4\n",
    "a bare .npy": b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, "
    b"'shape': (2,), }" + b" " * 50 + b"\n" + b"\x00" * 8,
    "a pickle": b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94K\x01s.",
    "gzip": b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00",
}


@pytest.mark.parametrize("content", NOT_ZIP.values(), ids=NOT_ZIP.keys())
def test_load_refuses_a_file_that_is_not_a_zip(content, tmp_path) -> None:
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    with pytest.raises(FastnnError, match="not a fastnn model") as raised:
        load_model(path)
    assert str(raised.value).startswith(f"{path}: ")


def test_load_names_a_missing_file_and_a_folder(tmp_path) -> None:
    with pytest.raises(FastnnError, match="no such file"):
        load_model(tmp_path / "absent.npz")
    with pytest.raises(FastnnError, match="folder") as raised:
        load_model(tmp_path)
    assert str(tmp_path) in str(raised.value)


@pytest.mark.parametrize(
    "sizes", [np.array([784, 2**40, 10]), np.array([784, 2**62, 10], dtype=np.uint64)],
    ids=["2**40 wide", "2**62 wide"],
)  # fmt: skip
def test_load_refuses_absurd_sizes_without_allocating(sizes, tmp_path) -> None:
    path = tmp_path / "model.npz"
    np.savez(path, **saved_arrays(sizes=sizes))
    with pytest.raises(FastnnError) as raised:
        load_model(path)
    assert str(raised.value).startswith(f"{path}: ")


@pytest.mark.parametrize("corruption", ZIP_CORRUPTIONS)
def test_load_refuses_a_corrupt_zip_directory(corruption, tmp_path) -> None:
    path = tmp_path / "model.npz"
    path.write_bytes(corrupt_zip_directory(valid_file_bytes(tmp_path), corruption))
    with pytest.raises(FastnnError) as raised:
        load_model(path)
    assert str(raised.value).startswith(f"{path}: ")


# ---- fuzzing ---------------------------------------------------------------------------------

# derandomize: the same examples every run, so a failure here is a fact, not a coin toss.
FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
# A tiny network, so the zip and .npy headers are most of the file rather than 30 KB of weights.
TINY = (3, 2, 2)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> tuple[Path, bytes]:
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "model.npz"
    save_model(path, network(TINY))
    return folder / "fuzzed.npz", path.read_bytes()


def load_or_refuse(path: Path, content: bytes) -> None:
    """The only two outcomes allowed: a FastnnError naming the file, or a valid network."""
    path.write_bytes(content)
    try:
        net = load_model(path)
    except FastnnError as error:
        assert str(error).startswith(f"{path}: "), str(error)
        return
    assert isinstance(net, Network)
    assert len(net.sizes) >= 2 and all(size >= 1 for size in net.sizes)
    assert net.activation in ACTIVATIONS and net.loss in LOSSES
    assert net.dtype in (np.float32, np.float64)
    assert net.theta.shape == (parameter_count(net.sizes),)
    assert all(math.isfinite(value) for value in net.theta.tolist())


@FUZZ
@given(content=st.binary(max_size=3000))
def test_fuzz_random_bytes(tiny_model, content) -> None:
    load_or_refuse(tiny_model[0], content)


@FUZZ
@given(content=st.binary(min_size=22, max_size=200))
def test_fuzz_random_bytes_in_a_zip_envelope(tiny_model, content) -> None:
    """Random bytes that start like a zip: PK, a local header signature."""
    load_or_refuse(tiny_model[0], b"PK\x03\x04" + content)


@FUZZ
@given(data=st.data())
def test_fuzz_truncations(tiny_model, data) -> None:
    path, content = tiny_model
    end = data.draw(st.integers(0, len(content) - 1), label="end")
    load_or_refuse(path, content[:end])


@FUZZ
@given(data=st.data())
def test_fuzz_byte_flips(tiny_model, data) -> None:
    """Up to four bytes set to random values, half of them in the zip's central directory (the
    last part of the file, where one byte decides how every member is read)."""
    path, content = tiny_model
    directory = content.find(b"PK\x01\x02")
    position = st.one_of(st.integers(0, len(content) - 1), st.integers(directory, len(content) - 1))
    flips = data.draw(
        st.lists(st.tuples(position, st.integers(0, 255)), min_size=1, max_size=4), label="flips"
    )
    changed = bytearray(content)
    for where, value in flips:
        changed[where] = value
    load_or_refuse(path, bytes(changed))


def test_every_byte_of_the_zip_directory_changed(tiny_model) -> None:
    """The deterministic twin of the fuzz: each byte of the central directory set to 0xFF, and
    with its lowest bit flipped, one at a time."""
    path, content = tiny_model
    escaped = {}
    for where in range(content.find(b"PK\x01\x02"), len(content)):
        original = content[where]
        for value in {0xFF, original ^ 0x01} - {original}:
            changed = bytearray(content)
            changed[where] = value
            try:
                load_or_refuse(path, bytes(changed))
            except AssertionError:
                raise
            except Exception as error:
                escaped.setdefault(f"{type(error).__name__}: {error}"[:70], (where, value))
    assert not escaped, f"exceptions other than FastnnError (first position, value): {escaped}"


def test_fuzz_byte_flips_only_in_weights_load_or_refuse(tiny_model) -> None:
    """Changes inside the data of W1 (caught by the zip's CRC): always a FastnnError."""
    path, content = tiny_model
    rng = np.random.default_rng(3)
    W1 = network(TINY).parameters()[0][0]
    start = content.find(W1.tobytes())
    assert start > 0
    for _ in range(50):
        changed = bytearray(content)
        position = start + int(rng.integers(W1.nbytes))
        changed[position] ^= int(rng.integers(1, 256))
        path.write_bytes(changed)
        with pytest.raises(FastnnError, match="CRC"):
            load_model(path)
