"""MNIST in, as uint8 arrays: the four IDX files, a Kaggle CSV, or a checked download.

Where the data comes from (``resolve_data``), first match wins:

1. the ``data`` argument (the command line's ``--data``): a folder of IDX files, or a Kaggle
   ``train.csv``;
2. the ``FASTNN_DATA`` environment variable, the same;
3. the cache folder (``$XDG_CACHE_HOME/fastnn``, by default ``~/.cache/fastnn``) if it holds the
   four files;
4. a download from the public mirrors into the cache folder, checked against the SHA-256 of each
   uncompressed file.

A gzipped file that decompresses to over a megabyte (the MNIST images) is decompressed once and
kept in ``<cache folder>/unpacked``, 55 MB for MNIST, named by the SHA-256 of its gzipped bytes:
later runs read it there, 0.3 s sooner. Delete the folder at any time; it is made again.

Every array comes back as uint8: images ``(n, 784)``, one row per image in row-major 28x28 order,
labels ``(n,)`` in 0..9. Every problem a user can cause (a missing, truncated or corrupt file, a
failed download) raises ``FastnnError`` with a message that names the file and the problem.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import sys
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from fastnn.errors import FastnnError
from fastnn.model import atomic_write

__all__ = [
    "MIRRORS",
    "MNIST_FILES",
    "MNIST_SHA256",
    "Dataset",
    "cache_dir",
    "download_mnist",
    "load_kaggle_csv",
    "load_mnist_dir",
    "read_idx",
    "resolve_data",
]

MNIST_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# Of the uncompressed files: mirrors re-compress, so the .gz bytes differ from mirror to mirror.
MNIST_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

# Each serves "<name>.gz" for the four names in MNIST_FILES.
MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

IMAGE_ROWS = 28
IMAGE_COLS = 28
PIXELS = IMAGE_ROWS * IMAGE_COLS
N_CLASSES = 10

KAGGLE_PIXEL_COLUMNS = tuple(f"pixel{i}" for i in range(PIXELS))
KAGGLE_TRAIN_HEADER = ("label", *KAGGLE_PIXEL_COLUMNS)

DATA_ENV_VAR = "FASTNN_DATA"
HOW_TO_SUPPLY_BY_HAND = (
    "To supply MNIST by hand, put the four files ("
    + ", ".join(f"{name}.gz" for name in MNIST_FILES.values())
    + "; gzipped or not) in a folder and pass --data DIR or set FASTNN_DATA=DIR."
)

GZIP_MAGIC = b"\x1f\x8b"
IDX_MAGIC_LABELS = 0x00000801
IDX_MAGIC_IMAGES = 0x00000803
IDX_KINDS = {IDX_MAGIC_LABELS: "IDX labels", IDX_MAGIC_IMAGES: "IDX images"}

UNPACK_MIN_BYTES = 1 << 20  # gzipped files that decompress to more are kept decompressed
DOWNLOAD_CHUNK_BYTES = 1 << 16
HASH_CHUNK_BYTES = 1 << 20
CSV_BLOCK_ROWS = 4096
USER_AGENT = "fastnn (MNIST download; Python urllib)"


@dataclass(frozen=True)
class Dataset:
    """MNIST images and labels as uint8 arrays, and where they came from.

    ``test_images`` and ``test_labels`` are None when the source has no labelled test set
    (a Kaggle ``train.csv``).
    """

    train_images: np.ndarray  # (n_train, 784) uint8, C-contiguous
    train_labels: np.ndarray  # (n_train,) uint8 in 0..9
    test_images: np.ndarray | None  # (n_test, 784) uint8, C-contiguous
    test_labels: np.ndarray | None  # (n_test,) uint8 in 0..9
    source: str  # the folder or CSV file, for messages


# --------------------------------------------------------------------------------------------
# IDX files


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one unsigned-byte IDX file, gzipped or plain (told apart by its first two bytes).

    Returns labels (1 dimension) as shape ``(n,)`` and images (3 dimensions) as ``(n, rows*cols)``,
    both uint8. Raises FastnnError for anything but a complete, well-formed file.
    """
    array, _ = _read_idx(path)
    return array


def _read_idx(
    path: str | os.PathLike[str], expected_magic: int | None = None
) -> tuple[np.ndarray, tuple[int, ...]]:
    """read_idx, also returning the dimension sizes the header declares.

    ``expected_magic`` (IDX_MAGIC_IMAGES or IDX_MAGIC_LABELS) narrows what is accepted.
    """
    content = _read_file_bytes(path)
    if bytes(content[:2]) == GZIP_MAGIC:
        content = _unpacked(path, content)
    if not content:
        raise _file_error(path, "empty file")

    if len(content) < 4:
        raise _file_error(
            path, f"truncated header: {len(content)} bytes, the magic number alone is 4"
        )
    magic = int.from_bytes(content[:4], "big")
    accepted = (expected_magic,) if expected_magic is not None else tuple(IDX_KINDS)
    if magic not in accepted:
        expected_text = " or ".join(f"0x{m:08X} ({IDX_KINDS[m]})" for m in accepted)
        raise _file_error(path, f"bad magic number 0x{magic:08X}, expected {expected_text}")

    # The last byte of the magic number is the number of dimensions; each size is a big-endian
    # uint32 after it.
    n_dims = magic & 0xFF
    header_bytes = 4 + 4 * n_dims
    if len(content) < header_bytes:
        raise _file_error(
            path,
            f"truncated header: {len(content)} bytes, a {n_dims}-dimensional IDX header is "
            f"{header_bytes}",
        )
    dims = tuple(
        int.from_bytes(content[offset : offset + 4], "big") for offset in range(4, header_bytes, 4)
    )

    # Compared as Python ints before any array exists, so a header that claims 2**31 images in a
    # tiny file fails here instead of asking for a terabyte.
    payload_bytes = len(content) - header_bytes
    declared_bytes = math.prod(dims)
    shape_text = "x".join(str(d) for d in dims)
    if payload_bytes < declared_bytes:
        raise _file_error(
            path,
            f"truncated: the header declares {shape_text} = {declared_bytes} data bytes but the "
            f"file holds {payload_bytes}",
        )
    if payload_bytes > declared_bytes:
        raise _file_error(
            path,
            f"{payload_bytes - declared_bytes} bytes of trailing data after the "
            f"{declared_bytes} data bytes the header declares ({shape_text})",
        )

    # A view on what _read_all read is an ordinary array that callers may shuffle or modify in
    # place; on bytes it is read-only, and a copy (about 20 ms for the training images) makes it
    # one.
    array = np.frombuffer(content, dtype=np.uint8, offset=header_bytes)
    if not array.flags.writeable:
        array = array.copy()
    if n_dims == 3:
        array = array.reshape(dims[0], dims[1] * dims[2])
    return array, dims


def _read_all(file: BinaryIO) -> memoryview:
    """The rest of an open file, read into memory that NumPy allocates, so that the arrays
    viewing it are ordinary arrays: writable and, when large, on huge pages (NumPy asks for
    them): the kernels' reads of rows in random order ran 5% faster than from a bytearray."""
    content = np.empty(os.fstat(file.fileno()).st_size - file.tell(), np.uint8)
    size = file.readinto(content)
    content = content[:size]  # the file shrank while being read
    rest = file.read()  # ...or grew
    if rest:
        content = np.concatenate([content, np.frombuffer(rest, np.uint8)])
    return memoryview(content)


def _read_file_bytes(path: str | os.PathLike[str]) -> memoryview:
    try:
        with open(path, "rb") as file:
            return _read_all(file)
    except FileNotFoundError as error:
        raise _file_error(path, "file not found") from error
    except OSError as error:
        raise _file_error(path, f"cannot read: {error.strerror or error}") from error


def _unpacked(path: str | os.PathLike[str], compressed: memoryview) -> bytes | memoryview:
    """A gzipped file's content, decompressed.

    The decompressed bytes of a file over UNPACK_MIN_BYTES are kept in the cache folder
    (``unpacked/<SHA-256 of the gzipped bytes>``) and read from there the next time: for the
    training images, 0.01 s to read 47 MB and 0.01 s to hash the 9.7 MB gzipped file, against
    0.16 s to decompress them. Keeping a copy is best effort: a cache folder that cannot be
    written costs only the time.
    """
    size = int.from_bytes(compressed[-4:], "little")  # gzip's trailer: the size mod 2**32
    if size < UNPACK_MIN_BYTES:
        return _gunzip(path, compressed)
    kept = cache_dir() / "unpacked" / hashlib.sha256(compressed).hexdigest()
    with suppress(OSError), open(kept, "rb") as file:
        content = _read_all(file)
        if len(content) % 2**32 == size:
            return content
    content = _gunzip(path, compressed)
    with suppress(OSError):
        kept.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(kept, lambda file: file.write(content))
    return content


def _gunzip(path: str | os.PathLike[str], compressed: memoryview) -> bytes:
    try:
        return gzip.decompress(compressed)
    except EOFError as error:
        raise _file_error(path, "truncated gzip data (the compressed stream ends early)") from error
    except (OSError, zlib.error) as error:
        raise _file_error(path, f"corrupt gzip data ({error})") from error


def _file_error(path: str | os.PathLike[str], problem: str) -> FastnnError:
    return FastnnError(f"{os.fspath(path)}: {problem}")


# --------------------------------------------------------------------------------------------
# A folder of the four IDX files


def _candidate_paths(folder: Path, name: str) -> list[Path]:
    """Where a file called ``name`` may be: the .gz form first, the form downloads write."""
    dotted = name.replace("-idx", ".idx")  # "train-images.idx3-ubyte", as some archives name it
    names = [f"{name}.gz", name, f"{dotted}.gz", dotted]
    return [folder / candidate for candidate in dict.fromkeys(names)]


def _find_mnist_file(folder: Path, name: str) -> Path | None:
    for candidate in _candidate_paths(folder, name):
        if candidate.is_file():
            return candidate
    return None


def _holds_all_mnist_files(folder: Path) -> bool:
    return all(_find_mnist_file(folder, name) is not None for name in MNIST_FILES.values())


def load_mnist_dir(folder: str | os.PathLike[str]) -> Dataset:
    """Load the four MNIST IDX files from ``folder``, each as ``<name>`` or ``<name>.gz``
    (also ``train-images.idx3-ubyte`` for ``train-images-idx3-ubyte``, as some archives name it).

    Checks that images are 28x28, that each image file has as many images as its label file has
    labels, and that labels are in 0..9. Checksums are not verified: a folder may hold a subset.
    """
    folder = Path(folder)
    if not folder.exists():
        raise _file_error(folder, "MNIST folder not found")
    if not folder.is_dir():
        raise _file_error(folder, "not a folder (expected a folder holding the four MNIST files)")

    found: dict[str, Path] = {}
    missing: list[str] = []
    for role, name in MNIST_FILES.items():
        path = _find_mnist_file(folder, name)
        if path is None:
            looked_for = ", ".join(p.name for p in _candidate_paths(folder, name))
            missing.append(f"{name} (looked for {looked_for})")
        else:
            found[role] = path
    if missing:
        raise _file_error(folder, "missing MNIST files: " + "; ".join(missing))

    train_images, train_labels = _load_split(found["train_images"], found["train_labels"])
    test_images, test_labels = _load_split(found["test_images"], found["test_labels"])
    return Dataset(train_images, train_labels, test_images, test_labels, source=str(folder))


def _load_split(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images, (n_images, rows, cols) = _read_idx(images_path, IDX_MAGIC_IMAGES)
    labels, (n_labels,) = _read_idx(labels_path, IDX_MAGIC_LABELS)
    if (rows, cols) != (IMAGE_ROWS, IMAGE_COLS):
        raise _file_error(
            images_path, f"images are {rows}x{cols}, expected {IMAGE_ROWS}x{IMAGE_COLS}"
        )
    if n_images == 0:
        raise _file_error(images_path, "holds no images")
    if n_images != n_labels:
        raise FastnnError(
            f"{images_path} holds {n_images} images but {labels_path} holds {n_labels} labels"
        )
    _check_labels(labels_path, labels)
    return images, labels


def _check_labels(path: Path, labels: np.ndarray) -> None:
    out_of_range = labels >= N_CLASSES
    if out_of_range.any():
        first = int(np.argmax(out_of_range))
        raise _file_error(
            path, f"label {labels[first]} at index {first} is outside 0..{N_CLASSES - 1}"
        )


# --------------------------------------------------------------------------------------------
# Kaggle "digit-recognizer" CSV


def load_kaggle_csv(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Load a Kaggle digit-recognizer CSV: ``train.csv`` (label, pixel0..pixel783) or
    ``test.csv`` (pixel0..pixel783, no labels).

    Returns ``(images, labels)``: images ``(n, 784)`` uint8, labels ``(n,)`` uint8 or None.
    Values may be written as "7" or "7.0"; anything else that is not a whole number in range
    raises FastnnError naming the line and column. Blank lines are skipped.
    """
    lines = _read_csv_lines(path)
    header = tuple(field.strip().strip('"') for field in lines[0].split(","))
    if header == KAGGLE_TRAIN_HEADER:
        has_labels = True
    elif header == KAGGLE_PIXEL_COLUMNS:
        has_labels = False
    else:
        shown = ",".join(header)
        if len(shown) > 60:
            shown = shown[:60] + "..."
        raise _file_error(
            path,
            "line 1 is not a Kaggle digit-recognizer header: expected "
            "'label,pixel0,...,pixel783' (train.csv) or 'pixel0,...,pixel783' (test.csv), "
            f"found '{shown}' ({len(header)} columns)",
        )

    numbered_rows = [
        (line_number, line) for line_number, line in enumerate(lines[1:], start=2) if line.strip()
    ]
    if not numbered_rows:
        raise _file_error(path, "no data rows after the header")
    # Blocks keep the float64 fallback's memory small and an error's search short.
    blocks = [
        _parse_csv_block(path, header, numbered_rows[start : start + CSV_BLOCK_ROWS])
        for start in range(0, len(numbered_rows), CSV_BLOCK_ROWS)
    ]
    table = np.concatenate(blocks)

    if has_labels:
        return np.ascontiguousarray(table[:, 1:]), table[:, 0].copy()
    return table, None


def _read_csv_lines(path: str | os.PathLike[str]) -> list[str]:
    try:
        with open(path, encoding="utf-8-sig") as file:
            text = file.read()
    except FileNotFoundError as error:
        raise _file_error(path, "file not found") from error
    except UnicodeDecodeError as error:
        raise _file_error(path, f"not UTF-8 text ({error.reason})") from error
    except OSError as error:
        raise _file_error(path, f"cannot read: {error.strerror or error}") from error
    if not text.strip():
        raise _file_error(path, "empty file")
    # Not str.splitlines, which also splits at form feeds and the like and would throw the line
    # numbers off from what an editor shows.
    return text.split("\n")


def _parse_csv_block(
    path: str | os.PathLike[str], header: tuple[str, ...], numbered_rows: list[tuple[int, str]]
) -> np.ndarray:
    """Rows of (line number, text) parsed into a uint8 table, or FastnnError naming the line."""
    for line_number, line in numbered_rows:
        n_values = line.count(",") + 1
        if n_values != len(header):
            raise _file_error(
                path, f"line {line_number} has {n_values} values, expected {len(header)}"
            )
    rows = [line for _, line in numbered_rows]
    highest = np.full(len(header), 255)
    if header[0] == "label":
        highest[0] = N_CLASSES - 1

    # The common case: numpy's C parser straight into uint8. It refuses 256, -1, 1.5, 7.0, nan
    # and text alike, so on failure the slower float64 parse below finds out which.
    try:
        table = np.loadtxt(rows, dtype=np.uint8, delimiter=",", comments=None, ndmin=2)
    except ValueError:
        table = None
    if table is not None:
        _check_csv_values(path, header, numbered_rows, table <= highest)
        return table

    try:
        values = np.loadtxt(rows, dtype=np.float64, delimiter=",", comments=None, ndmin=2)
    except ValueError as error:
        raise _first_non_number_error(path, header, numbered_rows, error) from None
    with np.errstate(invalid="ignore"):
        valid = (
            np.isfinite(values) & (values == np.floor(values)) & (values >= 0) & (values <= highest)
        )
    _check_csv_values(path, header, numbered_rows, valid)
    return values.astype(np.uint8)


def _check_csv_values(
    path: str | os.PathLike[str],
    header: tuple[str, ...],
    numbered_rows: list[tuple[int, str]],
    valid: np.ndarray,
) -> None:
    if valid.all():
        return
    row, column = (int(i) for i in np.argwhere(~valid)[0])
    line_number, line = numbered_rows[row]
    text = line.split(",")[column].strip()
    highest = N_CLASSES - 1 if header[column] == "label" else 255
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        problem = f"{text!r} is not a finite number"
    elif not number.is_integer():
        problem = f"{text!r} is not a whole number"
    else:
        problem = f"{text} is outside 0..{highest}"
    raise _file_error(path, f"line {line_number}, column {header[column]}: {problem}")


def _first_non_number_error(
    path: str | os.PathLike[str],
    header: tuple[str, ...],
    numbered_rows: list[tuple[int, str]],
    parse_error: ValueError,
) -> FastnnError:
    for line_number, line in numbered_rows:
        for column, field in zip(header, line.split(","), strict=True):
            try:
                np.float64(field.strip())
            except ValueError:
                return _file_error(
                    path, f"line {line_number}, column {column}: {field.strip()!r} is not a number"
                )
    # numpy's parser refused something np.float64 accepts: report what the parser said.
    first, last = numbered_rows[0][0], numbered_rows[-1][0]
    return _file_error(path, f"lines {first}-{last}: cannot read as numbers ({parse_error})")


# --------------------------------------------------------------------------------------------
# Download


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/fastnn``, by default ``~/.cache/fastnn``."""
    xdg_cache = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says to ignore a relative path.
    base = Path(xdg_cache) if os.path.isabs(xdg_cache) else Path.home() / ".cache"
    return base / "fastnn"


class _MirrorFailed(Exception):
    """One URL did not give a verified file; the message is the reason, and the next mirror is
    tried."""


def download_mnist(
    dest: str | os.PathLike[str],
    mirrors: Sequence[str] = MIRRORS,
    *,
    progress: bool = True,
    timeout: float = 30.0,
) -> Path:
    """Download the four MNIST files as ``<name>.gz`` into ``dest`` and return ``dest``.

    Each file is tried from the mirrors in turn and kept only if the SHA-256 of its uncompressed
    bytes matches MNIST_SHA256; a file already in ``dest`` and intact is not downloaded again.
    A file is written under a temporary name and renamed when verified, so ``dest`` never holds a
    partial file, even after an interrupt.
    """
    folder = Path(dest)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _file_error(
            folder, f"cannot create the download folder: {error.strerror or error}"
        ) from error

    for name in MNIST_FILES.values():
        expected_sha256 = MNIST_SHA256[name]
        existing = _find_mnist_file(folder, name)
        if existing is not None and _is_intact(existing, expected_sha256):
            continue
        _download_from_any_mirror(
            folder / f"{name}.gz", expected_sha256, mirrors, progress, timeout
        )
    return folder


def _is_intact(path: Path, expected_sha256: str) -> bool:
    try:
        return _uncompressed_sha256(path) == expected_sha256
    except _MirrorFailed:
        return False


def _uncompressed_sha256(path: Path) -> str:
    """SHA-256 of the file's content, decompressed first if it is gzipped."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as raw:
            is_gzipped = raw.read(2) == GZIP_MAGIC
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw) if is_gzipped else raw
            while chunk := stream.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
    except EOFError as error:
        raise _MirrorFailed("truncated gzip data") from error
    except (OSError, zlib.error) as error:
        raise _MirrorFailed(f"not a valid gzip file ({error})") from error
    return digest.hexdigest()


def _download_from_any_mirror(
    target: Path, expected_sha256: str, mirrors: Sequence[str], progress: bool, timeout: float
) -> None:
    failures: list[str] = []
    for mirror in mirrors:
        url = (mirror if mirror.endswith("/") else mirror + "/") + target.name
        try:
            _download_verified(url, mirror, target, expected_sha256, progress, timeout)
            return
        except _MirrorFailed as failure:
            failures.append(f"  {url}: {failure}")
    tried = "\n".join(failures) if failures else "  (no mirrors given)"
    raise _file_error(
        target, f"could not download from any mirror:\n{tried}\n{HOW_TO_SUPPLY_BY_HAND}"
    )


def _download_verified(
    url: str, mirror: str, target: Path, expected_sha256: str, progress: bool, timeout: float
) -> None:
    """Fetch ``url`` into ``target`` if its content checks out, else raise _MirrorFailed."""
    try:
        handle, temp_name = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".part"
        )
    except OSError as error:
        # Not the mirror's fault: no other mirror would do better.
        raise _file_error(
            target.parent, f"cannot write to the download folder: {error.strerror or error}"
        ) from error
    temp_path = Path(temp_name)
    status = _ProgressLine(f"downloading {target.name} from {mirror}") if progress else None
    outcome = " stopped"
    try:
        with os.fdopen(handle, "wb") as temp_file:
            _fetch(url, temp_file, status, timeout)
        actual_sha256 = _uncompressed_sha256(temp_path)
        if actual_sha256 != expected_sha256:
            raise _MirrorFailed(
                f"SHA-256 of the uncompressed data is {actual_sha256}, expected {expected_sha256}"
            )
        os.replace(temp_path, target)
        outcome = ""
    except _MirrorFailed as failure:
        outcome = f" failed: {failure}"
        raise
    finally:
        # After os.replace there is nothing left to remove; after any failure, including
        # KeyboardInterrupt, this is what keeps partial files out of the folder.
        temp_path.unlink(missing_ok=True)
        if status:
            status.finish(outcome)


def _fetch(url: str, out: BinaryIO, status: _ProgressLine | None, timeout: float) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    received = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length_header = response.headers.get("Content-Length", "")
            total = int(length_header) if length_header.isdigit() else None
            while chunk := response.read(DOWNLOAD_CHUNK_BYTES):
                out.write(chunk)
                received += len(chunk)
                if status:
                    status.update(received, total)
    except urllib.error.HTTPError as error:
        error.close()
        raise _MirrorFailed(f"HTTP {error.code} {error.reason}") from error
    except urllib.error.URLError as error:
        raise _MirrorFailed(f"cannot connect ({error.reason})") from error
    except TimeoutError as error:
        raise _MirrorFailed(f"timed out after {timeout:g} s") from error
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise _MirrorFailed(f"{type(error).__name__}: {error}") from error
    if total is not None and received != total:
        raise _MirrorFailed(f"connection closed after {received} of {total} bytes")


class _ProgressLine:
    """One line on stderr, rewritten in place with '\\r' as a download advances."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.last_shown = ""

    def update(self, received: int, total: int | None) -> None:
        if total:
            text = f"{100 * received // total}% of {total / 1e6:.1f} MB"
        else:
            text = f"{received / 1e6:.1f} MB"
        if text != self.last_shown:  # a redraw per chunk would flood a slow terminal
            self.last_shown = text
            sys.stderr.write(f"\r{self.label}: {text}")
            sys.stderr.flush()

    def finish(self, suffix: str) -> None:
        if not self.last_shown:
            sys.stderr.write(f"{self.label}:")
        sys.stderr.write(f"{suffix}\n")
        sys.stderr.flush()


# --------------------------------------------------------------------------------------------
# Choosing the source


def resolve_data(
    data: str | os.PathLike[str] | None = None, *, download: bool = True, progress: bool = True
) -> Dataset:
    """Load MNIST from ``data``, else $FASTNN_DATA, else the cache folder, else a download.

    ``data`` and $FASTNN_DATA name a folder of the four IDX files or a Kaggle train .csv file.
    With ``download=False`` a missing cache raises FastnnError instead of downloading.
    """
    if data is not None:
        return _load_named_source(Path(data), "")
    from_env = os.environ.get(DATA_ENV_VAR, "")
    if from_env:
        return _load_named_source(Path(from_env), f" (from {DATA_ENV_VAR})")

    cache = cache_dir()
    if _holds_all_mnist_files(cache):
        return load_mnist_dir(cache)
    if not download:
        raise FastnnError(
            f"no MNIST data: no --data given, {DATA_ENV_VAR} is not set, and the cache folder "
            f"{cache} does not hold the four files; downloading is switched off. "
            + HOW_TO_SUPPLY_BY_HAND
        )
    # MIRRORS read at call time, so a caller (or a test) can point downloads elsewhere.
    download_mnist(cache, MIRRORS, progress=progress)
    return load_mnist_dir(cache)


def _load_named_source(path: Path, origin: str) -> Dataset:
    if not path.exists():
        raise _file_error(
            path,
            f"not found{origin}; expected a folder of the four MNIST IDX files or a Kaggle "
            "train.csv",
        )
    if path.is_dir():
        return load_mnist_dir(path)
    if path.suffix.lower() == ".csv":
        images, labels = load_kaggle_csv(path)
        if labels is None:
            raise _file_error(
                path, "has no label column (a Kaggle test.csv?); training needs train.csv"
            )
        return Dataset(images, labels, None, None, source=str(path))
    raise _file_error(path, f"expected a folder of MNIST IDX files or a Kaggle .csv file{origin}")
