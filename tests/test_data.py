"""fastnn.data: the real MNIST against the facts its README gives, malformed files, Kaggle CSV,
where resolve_data looks, and fuzzing that only FastnnError ever escapes."""

from __future__ import annotations

import gzip
import re
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from data_helpers import (
    MNIST_NAMES,
    idx_bytes,
    mnist_dir,
    mnist_file,
    uncompressed_sha256,
    write_idx_dir,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastnn import data
from fastnn.data import (
    MNIST_FILES,
    MNIST_SHA256,
    Dataset,
    cache_dir,
    load_kaggle_csv,
    load_mnist_dir,
    read_idx,
    resolve_data,
)
from fastnn.errors import FastnnError

FUZZ_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# --------------------------------------------------------------------------------------------
# The real MNIST (facts from the README of the shared dataset folder)

FIRST_TRAIN_LABELS = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
FIRST_TEST_LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
TRAIN_DIGIT_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_DIGIT_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MEAN_TRAIN_PIXEL = 33.3184


@pytest.fixture(scope="module")
def real_mnist() -> Dataset:
    return load_mnist_dir(mnist_dir())


def test_real_mnist_shapes_and_dtypes(real_mnist: Dataset) -> None:
    expected_shapes = {
        "train_images": (60000, 784),
        "train_labels": (60000,),
        "test_images": (10000, 784),
        "test_labels": (10000,),
    }
    for role, shape in expected_shapes.items():
        array = getattr(real_mnist, role)
        assert array.shape == shape, role
        assert array.dtype == np.uint8, role
        assert array.flags.c_contiguous, role
    assert real_mnist.source == str(mnist_dir())


def test_real_mnist_first_labels(real_mnist: Dataset) -> None:
    assert real_mnist.train_labels[:10].tolist() == FIRST_TRAIN_LABELS
    assert real_mnist.test_labels[:10].tolist() == FIRST_TEST_LABELS


def test_real_mnist_digit_counts(real_mnist: Dataset) -> None:
    assert np.bincount(real_mnist.train_labels, minlength=10).tolist() == TRAIN_DIGIT_COUNTS
    assert np.bincount(real_mnist.test_labels, minlength=10).tolist() == TEST_DIGIT_COUNTS


def test_real_mnist_mean_training_pixel(real_mnist: Dataset) -> None:
    mean = real_mnist.train_images.mean(dtype=np.float64)
    assert mean == pytest.approx(MEAN_TRAIN_PIXEL, abs=1e-4)


def test_real_mnist_pixels_are_row_major_images(real_mnist: Dataset) -> None:
    # A 28x28 digit has blank borders: the outer rows and columns of every image stay dark.
    images = real_mnist.train_images[:1000].reshape(-1, 28, 28)
    assert images[:, 0, :].max() == 0
    assert images[:, :, 0].max() == 0
    assert images[:, 10:18, 10:18].mean() > 50


def test_real_files_match_mnist_sha256() -> None:
    folder = mnist_dir()
    for name in MNIST_FILES.values():
        assert uncompressed_sha256(mnist_file(folder, name)) == MNIST_SHA256[name], name


def test_mnist_sha256_matches_the_readme_table() -> None:
    readme = mnist_dir() / "README.md"
    if not readme.is_file():
        pytest.skip(f"{readme} is not there to compare with")
    table = dict(
        re.findall(r"^\|\s*([\w-]+)\s*\|.*\|\s*([0-9a-f]{64})\s*\|$", readme.read_text(), re.M)
    )
    assert table == MNIST_SHA256


def test_read_idx_real_labels() -> None:
    labels = read_idx(mnist_file(mnist_dir(), MNIST_NAMES["test_labels"]))
    assert labels.shape == (10000,)
    assert labels[:10].tolist() == FIRST_TEST_LABELS


def test_mnist_files_constant_names_the_four_files() -> None:
    assert MNIST_FILES == MNIST_NAMES


# --------------------------------------------------------------------------------------------
# Small valid folders


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzipped"])
def test_load_mnist_dir_round_trip(tmp_path: Path, gz: bool) -> None:
    expected = write_idx_dir(tmp_path, n_train=7, n_test=3, gz=gz)
    dataset = load_mnist_dir(tmp_path)
    for role, array in expected.items():
        loaded = getattr(dataset, role)
        assert loaded.dtype == np.uint8
        assert loaded.flags.c_contiguous and loaded.flags.writeable
        np.testing.assert_array_equal(loaded, array, err_msg=role)
    assert dataset.source == str(tmp_path)


def test_load_mnist_dir_accepts_dotted_names(tmp_path: Path) -> None:
    # As some archives ship them: "train-images.idx3-ubyte".
    expected = write_idx_dir(tmp_path, n_train=3, n_test=2, gz=False)
    for name in MNIST_NAMES.values():
        (tmp_path / name).rename(tmp_path / name.replace("-idx", ".idx"))
    dataset = load_mnist_dir(tmp_path)
    np.testing.assert_array_equal(dataset.train_labels, expected["train_labels"])


def test_read_idx_detects_gzip_by_content_not_name(tmp_path: Path) -> None:
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    gzipped_without_suffix = tmp_path / "labels-idx1-ubyte"
    gzipped_without_suffix.write_bytes(gzip.compress(idx_bytes(labels)))
    plain_with_suffix = tmp_path / "labels-idx1-ubyte.gz"
    plain_with_suffix.write_bytes(idx_bytes(labels))
    np.testing.assert_array_equal(read_idx(gzipped_without_suffix), labels)
    np.testing.assert_array_equal(read_idx(plain_with_suffix), labels)


def test_read_idx_images_shape(tmp_path: Path) -> None:
    images = np.arange(3 * 5 * 7, dtype=np.uint8).reshape(3, 5, 7)
    path = tmp_path / "odd-idx3-ubyte"
    path.write_bytes(idx_bytes(images))
    loaded = read_idx(path)
    assert loaded.shape == (3, 35)
    np.testing.assert_array_equal(loaded, images.reshape(3, 35))


def test_paths_with_spaces_and_non_ascii(tmp_path: Path) -> None:
    folder = tmp_path / "dätä dir" / "MNIST – ünïcode"
    expected = write_idx_dir(folder, n_train=4, n_test=2, gz=True)
    np.testing.assert_array_equal(load_mnist_dir(folder).train_images, expected["train_images"])
    np.testing.assert_array_equal(resolve_data(folder).test_labels, expected["test_labels"])

    csv_path = tmp_path / "dätä dir" / "träin data.csv"
    images, labels = _random_digits(3)
    _write_kaggle_csv(csv_path, images, labels)
    np.testing.assert_array_equal(load_kaggle_csv(csv_path)[0], images)


# --------------------------------------------------------------------------------------------
# Malformed IDX files: each a FastnnError that names the file


def _images_idx(n: int = 3, rows: int = 28, cols: int = 28) -> bytes:
    return idx_bytes(np.full((n, rows, cols), 7, dtype=np.uint8))


def _labels_idx(labels: list[int]) -> bytes:
    return idx_bytes(np.array(labels, dtype=np.uint8))


def _write(path: Path, content: bytes, gz: bool) -> Path:
    if gz:
        path = path.with_name(path.name + ".gz")
        content = gzip.compress(content)
    path.write_bytes(content)
    return path


def _expect_error(path: Path, *fragments: str) -> str:
    with pytest.raises(FastnnError) as caught:
        read_idx(path)
    message = str(caught.value)
    assert path.name in message
    for fragment in fragments:
        assert fragment in message
    return message


BROKEN_IDX = {
    "bad magic": (
        struct.pack(">I", 0x00000802) + b"\x00" * 20,
        "bad magic number 0x00000802",
    ),
    "not unsigned bytes": (
        struct.pack(">III", 0x00000D01, 1, 0) + b"\x00" * 4,
        "bad magic number 0x00000D01",
    ),
    "truncated payload": (_images_idx(3)[:-10], "truncated"),
    "truncated header": (_images_idx(3)[:10], "truncated header"),
    "magic only half there": (b"\x00\x00", "truncated header"),
    "trailing bytes": (_images_idx(3) + b"\x00\x01\x02", "3 bytes of trailing data"),
    "empty": (b"", "empty file"),
}


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzipped"])
@pytest.mark.parametrize("case", list(BROKEN_IDX))
def test_read_idx_rejects_broken_file(tmp_path: Path, case: str, gz: bool) -> None:
    content, fragment = BROKEN_IDX[case]
    path = _write(tmp_path / "train-images-idx3-ubyte", content, gz)
    _expect_error(path, fragment)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzipped"])
def test_header_claiming_2_31_images_fails_fast(tmp_path: Path, gz: bool) -> None:
    content = struct.pack(">IIII", 0x00000803, 2**31, 28, 28) + bytes(100)
    path = _write(tmp_path / "train-images-idx3-ubyte", content, gz)
    started = time.perf_counter()
    _expect_error(path, "truncated", "2147483648x28x28")
    assert time.perf_counter() - started < 1.0


def test_corrupt_gzip(tmp_path: Path) -> None:
    compressed = bytearray(gzip.compress(_images_idx(20)))
    compressed[len(compressed) // 2] ^= 0xFF
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(bytes(compressed))
    _expect_error(path, "gzip")


def test_truncated_gzip(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_images_idx(20))[:-30])
    _expect_error(path, "truncated gzip")


def test_missing_file(tmp_path: Path) -> None:
    _expect_error(tmp_path / "train-images-idx3-ubyte.gz", "not found")


def test_folder_instead_of_file(tmp_path: Path) -> None:
    folder = tmp_path / "train-images-idx3-ubyte"
    folder.mkdir()
    _expect_error(folder, "cannot read")


def _break_folder(folder: Path, role: str, content: bytes) -> Path:
    """A valid small folder with the file for ``role`` replaced by ``content`` (plain)."""
    write_idx_dir(folder, n_train=5, n_test=3, gz=False)
    path = folder / MNIST_NAMES[role]
    path.write_bytes(content)
    return path


def _expect_folder_error(folder: Path, *fragments: str) -> str:
    with pytest.raises(FastnnError) as caught:
        load_mnist_dir(folder)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message
    return message


def test_labels_where_images_belong(tmp_path: Path) -> None:
    _break_folder(tmp_path, "train_images", _labels_idx([1, 2, 3, 4, 5]))
    _expect_folder_error(
        tmp_path,
        "train-images-idx3-ubyte",
        "bad magic number 0x00000801, expected 0x00000803 (IDX images)",
    )


def test_image_and_label_counts_differ(tmp_path: Path) -> None:
    _break_folder(tmp_path, "test_labels", _labels_idx([1, 2]))
    _expect_folder_error(
        tmp_path, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "3 images", "2 labels"
    )


def test_images_of_the_wrong_size(tmp_path: Path) -> None:
    _break_folder(tmp_path, "train_images", _images_idx(5, rows=27, cols=28))
    _expect_folder_error(tmp_path, "train-images-idx3-ubyte", "27x28", "expected 28x28")


def test_label_outside_0_to_9(tmp_path: Path) -> None:
    _break_folder(tmp_path, "train_labels", _labels_idx([1, 2, 3, 10, 4]))
    _expect_folder_error(tmp_path, "train-labels-idx1-ubyte", "label 10 at index 3")


def test_no_images(tmp_path: Path) -> None:
    write_idx_dir(tmp_path, n_train=5, n_test=3, gz=False)
    (tmp_path / MNIST_NAMES["test_images"]).write_bytes(_images_idx(0))
    (tmp_path / MNIST_NAMES["test_labels"]).write_bytes(_labels_idx([]))
    _expect_folder_error(tmp_path, "t10k-images-idx3-ubyte", "no images")


def test_empty_file_in_folder(tmp_path: Path) -> None:
    _break_folder(tmp_path, "test_labels", b"")
    _expect_folder_error(tmp_path, "t10k-labels-idx1-ubyte", "empty file")


def test_missing_files_are_listed(tmp_path: Path) -> None:
    write_idx_dir(tmp_path, n_train=5, n_test=3, gz=True)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    message = _expect_folder_error(
        tmp_path, str(tmp_path), "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"
    )
    assert "train-images" not in message


def test_missing_folder(tmp_path: Path) -> None:
    _expect_folder_error(tmp_path / "nowhere", "nowhere", "not found")


def test_file_instead_of_folder(tmp_path: Path) -> None:
    path = tmp_path / "mnist.zip"
    path.write_bytes(b"PK")
    _expect_folder_error(path, "mnist.zip", "not a folder")


# --------------------------------------------------------------------------------------------
# Kaggle CSV

TRAIN_HEADER = "label," + ",".join(f"pixel{i}" for i in range(784))
TEST_HEADER = ",".join(f"pixel{i}" for i in range(784))


def _random_digits(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 784), dtype=np.uint8)
    images[:, :3] = [0, 255, 128]  # both ends of the range, always
    return images, rng.integers(0, 10, size=n, dtype=np.uint8)


def _csv_text(images: np.ndarray, labels: np.ndarray | None) -> str:
    header = TRAIN_HEADER if labels is not None else TEST_HEADER
    rows = images if labels is None else np.column_stack([labels, images])
    return header + "\n" + "".join(",".join(map(str, row)) + "\n" for row in rows.tolist())


def _write_kaggle_csv(path: Path, images: np.ndarray, labels: np.ndarray | None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_csv_text(images, labels), encoding="utf-8")
    return path


def test_kaggle_train_csv_round_trip(tmp_path: Path) -> None:
    images, labels = _random_digits(5)
    loaded_images, loaded_labels = load_kaggle_csv(
        _write_kaggle_csv(tmp_path / "train.csv", images, labels)
    )
    assert loaded_images.dtype == np.uint8 and loaded_labels.dtype == np.uint8
    assert loaded_images.flags.c_contiguous
    np.testing.assert_array_equal(loaded_images, images)
    np.testing.assert_array_equal(loaded_labels, labels)


def test_kaggle_test_csv_has_no_labels(tmp_path: Path) -> None:
    images, _ = _random_digits(4)
    loaded_images, loaded_labels = load_kaggle_csv(
        _write_kaggle_csv(tmp_path / "test.csv", images, None)
    )
    assert loaded_labels is None
    np.testing.assert_array_equal(loaded_images, images)


def test_kaggle_csv_single_row_crlf_bom_and_float_spelling(tmp_path: Path) -> None:
    images, labels = _random_digits(1)
    text = _csv_text(images, labels).replace(",255,", ",255.0,", 1).replace("\n", "\r\n")
    path = tmp_path / "train.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode() + b"\r\n\r\n")
    loaded_images, loaded_labels = load_kaggle_csv(path)
    np.testing.assert_array_equal(loaded_images, images)
    np.testing.assert_array_equal(loaded_labels, labels)


def _replace_field(text: str, line_number: int, column: int, value: str) -> str:
    lines = text.split("\n")
    fields = lines[line_number - 1].split(",")
    fields[column] = value
    lines[line_number - 1] = ",".join(fields)
    return "\n".join(lines)


def _expect_csv_error(tmp_path: Path, text: str | bytes, *fragments: str) -> str:
    path = tmp_path / "train set.csv"
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    with pytest.raises(FastnnError) as caught:
        load_kaggle_csv(path)
    message = str(caught.value)
    assert path.name in message
    for fragment in fragments:
        assert fragment in message
    return message


@pytest.fixture(scope="module")
def small_train_csv() -> str:
    return _csv_text(*_random_digits(4))


def test_csv_wrong_header(tmp_path: Path, small_train_csv: str) -> None:
    text = small_train_csv.replace("label,", "digit,", 1)
    _expect_csv_error(tmp_path, text, "line 1", "header", "digit,pixel0")


def test_csv_header_missing_a_column(tmp_path: Path, small_train_csv: str) -> None:
    text = small_train_csv.replace(",pixel783", "", 1)
    _expect_csv_error(tmp_path, text, "line 1", "784 columns")


def test_csv_row_of_the_wrong_length(tmp_path: Path, small_train_csv: str) -> None:
    lines = small_train_csv.split("\n")
    lines[2] = lines[2].rsplit(",", 1)[0]  # line 3 loses its last pixel
    _expect_csv_error(tmp_path, "\n".join(lines), "line 3 has 784 values, expected 785")


@pytest.mark.parametrize(
    ("column", "value", "fragment"),
    [
        (0, "10", "line 4, column label: 10 is outside 0..9"),
        (0, "-1", "line 4, column label: -1 is outside 0..9"),
        (5, "256", "line 4, column pixel4: 256 is outside 0..255"),
        (5, "-1", "line 4, column pixel4: -1 is outside 0..255"),
        (5, "1.5", "line 4, column pixel4: '1.5' is not a whole number"),
        (5, "nan", "line 4, column pixel4: 'nan' is not a finite number"),
        (5, "inf", "line 4, column pixel4: 'inf' is not a finite number"),
        (5, "", "line 4, column pixel4: '' is not a number"),
        (5, "abc", "line 4, column pixel4: 'abc' is not a number"),
        (784, "3 4", "line 4, column pixel783: '3 4' is not a number"),
    ],
)
def test_csv_bad_value(
    tmp_path: Path, small_train_csv: str, column: int, value: str, fragment: str
) -> None:
    _expect_csv_error(tmp_path, _replace_field(small_train_csv, 4, column, value), fragment)


def test_csv_empty(tmp_path: Path) -> None:
    _expect_csv_error(tmp_path, "", "empty file")
    _expect_csv_error(tmp_path, "\n  \n", "empty file")


def test_csv_header_only(tmp_path: Path) -> None:
    _expect_csv_error(tmp_path, TRAIN_HEADER + "\n", "no data rows")


def test_csv_not_utf8(tmp_path: Path, small_train_csv: str) -> None:
    _expect_csv_error(tmp_path, small_train_csv.encode() + b"\xff\xfe1,2\n", "not UTF-8")


def test_csv_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FastnnError, match=r"train\.csv: file not found"):
        load_kaggle_csv(tmp_path / "train.csv")


@pytest.fixture(scope="module")
def long_train_csv() -> tuple[str, np.ndarray, np.ndarray]:
    """More rows than one parse block, with a blank line in the middle."""
    images, labels = _random_digits(5000, seed=2)
    lines = _csv_text(images, labels).split("\n")
    lines.insert(100, "")
    return "\n".join(lines), images, labels


def test_csv_longer_than_one_block(tmp_path: Path, long_train_csv) -> None:
    text, images, labels = long_train_csv
    path = tmp_path / "train.csv"
    path.write_text(text)
    loaded_images, loaded_labels = load_kaggle_csv(path)
    np.testing.assert_array_equal(loaded_images, images)
    np.testing.assert_array_equal(loaded_labels, labels)


def test_csv_error_line_number_in_a_later_block(tmp_path: Path, long_train_csv) -> None:
    text, _, _ = long_train_csv
    _expect_csv_error(
        tmp_path, _replace_field(text, 4500, 9, "300"), "line 4500, column pixel8: 300"
    )
    _expect_csv_error(tmp_path, _replace_field(text, 4501, 0, "x"), "line 4501, column label")


# --------------------------------------------------------------------------------------------
# Gzipped files over a megabyte are kept decompressed in the cache folder


def _big_gzipped_images(folder: Path) -> tuple[Path, np.ndarray]:
    """A gzipped IDX file of 2,000 random images: 1.6 MB decompressed."""
    images = np.random.default_rng(1).integers(0, 256, size=(2000, 28, 28), dtype=np.uint8)
    path = folder / "images.gz"
    path.write_bytes(gzip.compress(idx_bytes(images), compresslevel=1))
    return path, images.reshape(2000, 784)


def test_a_big_gzipped_file_is_read_from_its_decompressed_copy(
    clean_environment: Path, tmp_path: Path
) -> None:
    path, images = _big_gzipped_images(tmp_path)
    first = read_idx(path)
    (copy,) = (clean_environment / "unpacked").iterdir()
    assert copy.read_bytes() == gzip.decompress(path.read_bytes())
    # The copy is what the second read returns: a copy that lost its end is not trusted (it
    # is decompressed again and rewritten), an intact one is
    copy.write_bytes(copy.read_bytes()[:-784])
    np.testing.assert_array_equal(read_idx(path), images)
    assert copy.stat().st_size == 16 + images.size
    marked = bytearray(copy.read_bytes())
    marked[16] ^= 0xFF
    copy.write_bytes(bytes(marked))
    again = read_idx(path)
    assert again[0, 0] == images[0, 0] ^ 0xFF
    np.testing.assert_array_equal(again[1:], first[1:])
    assert again.flags.writeable and first.flags.writeable


def test_the_copy_follows_the_content_not_the_name(clean_environment: Path, tmp_path: Path) -> None:
    path, images = _big_gzipped_images(tmp_path)
    read_idx(path)
    path.write_bytes(gzip.compress(idx_bytes(images[:1500].reshape(1500, 28, 28))))
    assert read_idx(path).shape == (1500, 784)
    assert len(list((clean_environment / "unpacked").iterdir())) == 2


def test_small_files_are_not_copied_and_an_unwritable_cache_costs_nothing(
    clean_environment: Path, tmp_path: Path
) -> None:
    expected = write_idx_dir(tmp_path / "small", 50, 20, gz=True)
    load_mnist_dir(tmp_path / "small")
    assert not clean_environment.exists()
    clean_environment.parent.mkdir(parents=True)
    clean_environment.write_text("a file where the cache folder would be")
    path, images = _big_gzipped_images(tmp_path)
    np.testing.assert_array_equal(read_idx(path), images)
    assert expected["train_images"].shape == (50, 784)


# --------------------------------------------------------------------------------------------
# Where resolve_data looks


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No FASTNN_DATA, and a cache folder inside tmp_path; returns that cache folder."""
    monkeypatch.delenv("FASTNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg cache"))
    return tmp_path / "xdg cache" / "fastnn"


def test_cache_dir_follows_xdg_cache_home(clean_environment: Path) -> None:
    assert cache_dir() == clean_environment


def test_cache_dir_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "fastnn"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/is/ignored")
    assert cache_dir() == tmp_path / ".cache" / "fastnn"


def test_resolve_data_precedence(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Told apart by their training-set sizes.
    write_idx_dir(tmp_path / "argument", n_train=3, n_test=1, gz=False)
    write_idx_dir(tmp_path / "environment", n_train=5, n_test=1, gz=True)
    write_idx_dir(clean_environment, n_train=7, n_test=1, gz=True)
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path / "environment"))

    assert len(resolve_data(tmp_path / "argument", download=False).train_labels) == 3
    assert len(resolve_data(str(tmp_path / "argument"), download=False).train_labels) == 3
    from_env = resolve_data(download=False)
    assert len(from_env.train_labels) == 5
    assert from_env.source == str(tmp_path / "environment")
    monkeypatch.delenv("FASTNN_DATA")
    from_cache = resolve_data(download=False)
    assert len(from_cache.train_labels) == 7
    assert from_cache.source == str(clean_environment)


def test_resolve_data_without_data_and_without_download(clean_environment: Path) -> None:
    with pytest.raises(FastnnError) as caught:
        resolve_data(download=False)
    message = str(caught.value)
    assert str(clean_environment) in message
    assert "FASTNN_DATA" in message and "--data" in message


def test_resolve_data_named_folder_missing(clean_environment: Path, tmp_path: Path) -> None:
    write_idx_dir(clean_environment, n_train=2, n_test=1, gz=True)  # not a fallback for a typo
    with pytest.raises(FastnnError, match="no such folder"):
        resolve_data(tmp_path / "no such folder")


def test_resolve_data_env_folder_missing(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path / "gone"))
    with pytest.raises(FastnnError, match=r"gone: not found \(from FASTNN_DATA\)"):
        resolve_data()


def test_resolve_data_kaggle_train_csv(clean_environment: Path, tmp_path: Path) -> None:
    images, labels = _random_digits(6)
    path = _write_kaggle_csv(tmp_path / "kaggle" / "train.csv", images, labels)
    dataset = resolve_data(path)
    np.testing.assert_array_equal(dataset.train_images, images)
    np.testing.assert_array_equal(dataset.train_labels, labels)
    assert dataset.test_images is None and dataset.test_labels is None
    assert dataset.source == str(path)


def test_resolve_data_kaggle_test_csv_has_no_labels(
    clean_environment: Path, tmp_path: Path
) -> None:
    path = _write_kaggle_csv(tmp_path / "test.csv", _random_digits(2)[0], None)
    with pytest.raises(FastnnError, match=r"test\.csv: has no label column"):
        resolve_data(path)


def test_resolve_data_other_file(clean_environment: Path, tmp_path: Path) -> None:
    path = tmp_path / "mnist.npz"
    path.write_bytes(b"\x00")
    with pytest.raises(FastnnError, match=r"mnist\.npz: expected a folder"):
        resolve_data(path)


# --------------------------------------------------------------------------------------------
# Fuzzing: whatever the bytes, FastnnError or a well-formed array


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


VALID_IMAGES_IDX = _images_idx(2, rows=3, cols=4)
VALID_LABELS_IDX = _labels_idx([0, 9, 4])


def _read_idx_or_fastnn_error(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    try:
        array = read_idx(path)
    except FastnnError as error:
        assert path.name in str(error)
        return
    payload = gzip.decompress(content) if content[:2] == b"\x1f\x8b" else content
    header_bytes = 8 if array.ndim == 1 else 16
    assert array.dtype == np.uint8
    assert array.ndim in (1, 2)
    assert array.size == len(payload) - header_bytes


@FUZZ_SETTINGS
@given(content=st.binary(max_size=64))
def test_fuzz_read_idx_random_bytes(fuzz_dir: Path, content: bytes) -> None:
    _read_idx_or_fastnn_error(fuzz_dir / "random-idx", content)


@FUZZ_SETTINGS
@given(
    valid=st.sampled_from([VALID_IMAGES_IDX, VALID_LABELS_IDX]),
    gz=st.booleans(),
    data_=st.data(),
)
def test_fuzz_read_idx_truncated(fuzz_dir: Path, valid: bytes, gz: bool, data_) -> None:
    content = gzip.compress(valid) if gz else valid
    cut = data_.draw(st.integers(0, len(content) - 1), label="cut")
    path = fuzz_dir / "truncated-idx"
    path.write_bytes(content[:cut])
    with pytest.raises(FastnnError, match="truncated-idx"):
        read_idx(path)


@FUZZ_SETTINGS
@given(
    valid=st.sampled_from([VALID_IMAGES_IDX, VALID_LABELS_IDX]),
    flips=st.lists(st.tuples(st.integers(0, 15), st.integers(1, 255)), min_size=1, max_size=3),
    gz=st.booleans(),
)
def test_fuzz_read_idx_flipped_header(
    fuzz_dir: Path, valid: bytes, flips: list[tuple[int, int]], gz: bool
) -> None:
    content = bytearray(valid)
    for position, mask in flips:
        content[position % len(content)] ^= mask
    raw = bytes(content)
    _read_idx_or_fastnn_error(fuzz_dir / "flipped-idx", gzip.compress(raw) if gz else raw)


@FUZZ_SETTINGS
@given(
    valid=st.sampled_from([VALID_IMAGES_IDX, VALID_LABELS_IDX]),
    position=st.integers(0, 200),
    mask=st.integers(1, 255),
)
def test_fuzz_read_idx_mutated_gzip(fuzz_dir: Path, valid: bytes, position: int, mask: int) -> None:
    content = bytearray(gzip.compress(valid))
    content[position % len(content)] ^= mask
    _read_idx_or_fastnn_error(fuzz_dir / "mutated-idx.gz", bytes(content))


def _load_csv_or_fastnn_error(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    try:
        images, labels = load_kaggle_csv(path)
    except FastnnError as error:
        assert path.name in str(error)
        return
    assert images.dtype == np.uint8
    assert images.ndim == 2 and images.shape[1] == 784 and images.shape[0] >= 1
    if labels is not None:
        assert labels.dtype == np.uint8
        assert labels.shape == (images.shape[0],)
        assert labels.max() <= 9


CSV_ALPHABET = st.sampled_from(list('0123456789,.-+e\n\r nai"x'))


@FUZZ_SETTINGS
@given(text=st.text(alphabet=CSV_ALPHABET, max_size=200) | st.text(max_size=100))
def test_fuzz_csv_random_text(fuzz_dir: Path, text: str) -> None:
    _load_csv_or_fastnn_error(fuzz_dir / "random.csv", text)


@FUZZ_SETTINGS
@given(
    edits=st.lists(
        st.tuples(st.integers(0, 10**6), st.integers(0, 3), st.text(CSV_ALPHABET, max_size=3)),
        min_size=1,
        max_size=4,
    ),
    labelled=st.booleans(),
)
def test_fuzz_csv_mutated(
    fuzz_dir: Path, edits: list[tuple[int, int, str]], labelled: bool
) -> None:
    images, labels = _random_digits(2)
    text = _csv_text(images, labels if labelled else None)
    for position, n_deleted, inserted in edits:
        # Most edits land in the data rows; the header is only 5% of the text.
        at = position % (len(text) + 1)
        text = text[:at] + inserted + text[at + n_deleted :]
    _load_csv_or_fastnn_error(fuzz_dir / "mutated.csv", text)


def test_mirror_addresses_end_in_a_slash() -> None:
    """Each file's address is the mirror's followed by its name."""
    assert all(url.endswith("/") for url in data.MIRRORS)


def test_a_read_only_data_folder_is_only_read(tmp_path: Path, capsys) -> None:
    """Training from a folder the user may not write to: nothing in it is created or changed.

    Tests run as root, whom a mode of 0o555 does not stop, so the check is that the folder's
    contents are exactly as before a whole training run, with the modes set as a user's would be.
    """
    import fastnn.train

    folder = tmp_path / "read-only data"
    folder.mkdir()
    write_idx_dir(folder, n_train=300, n_test=50, gz=True)

    def snapshot() -> dict:
        return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()}

    before = snapshot()
    for path in folder.iterdir():
        path.chmod(0o444)
    folder.chmod(0o555)
    try:
        status = fastnn.train.main(
            ["--data", str(folder), "--epochs", "1", "--dev-size", "50", "--threads", "1"]
        )
    finally:
        folder.chmod(0o755)
    assert status == 0
    assert "test accuracy" in capsys.readouterr().out
    assert snapshot() == before
