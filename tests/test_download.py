"""download_mnist against real HTTP servers on 127.0.0.1: fallback from bad mirrors, checksums,
no partial files left behind, no second download of a good file.

Most cases serve a tiny synthetic MNIST (with MNIST_SHA256 patched to match) to stay fast; one
serves the real files from $FASTNN_DATA against the real checksums.
"""

from __future__ import annotations

import functools
import gzip
import os
import re
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from data_helpers import MNIST_NAMES, mnist_dir, uncompressed_sha256, write_idx_dir

from fastnn import data
from fastnn.data import download_mnist, load_mnist_dir, resolve_data
from fastnn.errors import FastnnError

GZ_NAMES = sorted(f"{name}.gz" for name in MNIST_NAMES.values())
TIMEOUT = 10.0


@dataclass
class Mirror:
    url: str
    requests: list[str] = field(default_factory=list)  # request paths, in order


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        super().do_GET()


class _ShortBodyHandler(_QuietHandler):
    """Promises the whole file in Content-Length, sends half, and hangs up."""

    def do_GET(self) -> None:
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        content = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content[: len(content) // 2])
        self.close_connection = True


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep loopback requests away from any proxy the environment names."""
    for name in (
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def serve() -> Iterator[Callable[..., Mirror]]:
    """serve(folder) starts an HTTP server for ``folder`` on a free loopback port."""
    servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(folder: Path, handler: type[_QuietHandler] = _QuietHandler) -> Mirror:
        server = ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=str(folder))
        )
        mirror = Mirror(url=f"http://127.0.0.1:{server.server_address[1]}/mnist/")
        server.requests = mirror.requests  # type: ignore[attr-defined]
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        servers.append((server, thread))
        return mirror

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def refused_url() -> str:
    """A loopback URL where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


@dataclass
class Synthetic:
    """A tiny MNIST, served as ``<name>.gz`` from ``site/mnist/``; MNIST_SHA256 matches it."""

    site: Path
    arrays: dict[str, np.ndarray]

    @property
    def files(self) -> Path:
        return self.site / "mnist"

    def copy_site(self, to: Path) -> Path:
        shutil.copytree(self.site, to)
        return to


@pytest.fixture
def synthetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Synthetic:
    files = tmp_path / "site" / "mnist"
    arrays = write_idx_dir(files, n_train=40, n_test=12, gz=True, seed=5)
    checksums = {name: uncompressed_sha256(files / f"{name}.gz") for name in MNIST_NAMES.values()}
    monkeypatch.setattr(data, "MNIST_SHA256", checksums)
    return Synthetic(site=tmp_path / "site", arrays=arrays)


def _assert_downloaded(dest: Path, synthetic: Synthetic) -> None:
    assert sorted(os.listdir(dest)) == GZ_NAMES
    dataset = load_mnist_dir(dest)
    for role, array in synthetic.arrays.items():
        np.testing.assert_array_equal(getattr(dataset, role), array, err_msg=role)


def _corrupt_inside(gz_path: Path) -> None:
    """Flip payload bytes and re-gzip: a well-formed .gz whose content is wrong."""
    content = bytearray(gzip.decompress(gz_path.read_bytes()))
    content[-5] ^= 0xFF
    gz_path.write_bytes(gzip.compress(bytes(content)))


def test_good_mirror(serve, synthetic: Synthetic, tmp_path: Path) -> None:
    mirror = serve(synthetic.site)
    dest = tmp_path / "cache" / "nested"
    assert download_mnist(dest, [mirror.url], progress=False, timeout=TIMEOUT) == dest
    _assert_downloaded(dest, synthetic)
    assert sorted(mirror.requests) == sorted(f"/mnist/{name}" for name in GZ_NAMES)


def test_mirror_url_without_trailing_slash(serve, synthetic: Synthetic, tmp_path: Path) -> None:
    mirror = serve(synthetic.site)
    download_mnist(tmp_path / "dest", [mirror.url.rstrip("/")], progress=False, timeout=TIMEOUT)
    _assert_downloaded(tmp_path / "dest", synthetic)


def test_corrupted_file_falls_back_to_next_mirror(
    serve, synthetic: Synthetic, tmp_path: Path
) -> None:
    bad_site = synthetic.copy_site(tmp_path / "bad site")
    _corrupt_inside(bad_site / "mnist" / "train-images-idx3-ubyte.gz")
    bad, good = serve(bad_site), serve(synthetic.site)
    dest = tmp_path / "dest"
    download_mnist(dest, [bad.url, good.url], progress=False, timeout=TIMEOUT)
    _assert_downloaded(dest, synthetic)
    assert len(bad.requests) == 4
    assert good.requests == ["/mnist/train-images-idx3-ubyte.gz"]


def test_truncated_gzip_falls_back_to_next_mirror(
    serve, synthetic: Synthetic, tmp_path: Path
) -> None:
    bad_site = synthetic.copy_site(tmp_path / "bad site")
    labels = bad_site / "mnist" / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:-12])
    bad, good = serve(bad_site), serve(synthetic.site)
    dest = tmp_path / "dest"
    download_mnist(dest, [bad.url, good.url], progress=False, timeout=TIMEOUT)
    _assert_downloaded(dest, synthetic)
    assert good.requests == ["/mnist/t10k-labels-idx1-ubyte.gz"]


def test_connection_closed_early_falls_back_to_next_mirror(
    serve, synthetic: Synthetic, tmp_path: Path
) -> None:
    short = serve(synthetic.site, _ShortBodyHandler)
    dest = tmp_path / "dest"
    with pytest.raises(FastnnError) as caught:
        download_mnist(dest, [short.url], progress=False, timeout=TIMEOUT)
    # Reported as what happened on the wire, not as the truncated gzip that results.
    assert re.search(r"connection closed after \d+ of \d+ bytes|IncompleteRead", str(caught.value))
    assert os.listdir(dest) == []

    good = serve(synthetic.site)
    download_mnist(dest, [short.url, good.url], progress=False, timeout=TIMEOUT)
    _assert_downloaded(dest, synthetic)
    assert len(good.requests) == 4


def test_all_mirrors_fail_then_a_later_run_succeeds(
    serve, synthetic: Synthetic, tmp_path: Path, refused_url: str
) -> None:
    empty_site = tmp_path / "empty site"
    (empty_site / "mnist").mkdir(parents=True)
    not_found = serve(empty_site)
    corrupt_site = synthetic.copy_site(tmp_path / "corrupt site")
    _corrupt_inside(corrupt_site / "mnist" / "train-images-idx3-ubyte.gz")
    corrupt = serve(corrupt_site)
    dest = tmp_path / "dest"

    with pytest.raises(FastnnError) as caught:
        download_mnist(
            dest, [not_found.url, refused_url, corrupt.url], progress=False, timeout=TIMEOUT
        )
    message = str(caught.value)
    file_name = "train-images-idx3-ubyte.gz"
    assert f"{not_found.url}{file_name}: HTTP 404" in message
    assert f"{refused_url}{file_name}: cannot connect" in message
    assert f"{corrupt.url}{file_name}: SHA-256 of the uncompressed data is" in message
    assert "--data" in message and "FASTNN_DATA" in message
    assert str(dest / file_name) in message
    assert os.listdir(dest) == []  # no temporary or partial file left

    good = serve(synthetic.site)
    download_mnist(dest, [not_found.url, good.url], progress=False, timeout=TIMEOUT)
    _assert_downloaded(dest, synthetic)


def test_missing_everywhere_lists_every_url(serve, tmp_path: Path, synthetic: Synthetic) -> None:
    empty_sites = [tmp_path / "one", tmp_path / "two"]
    for site in empty_sites:
        (site / "mnist").mkdir(parents=True)
    mirrors = [serve(site) for site in empty_sites]
    dest = tmp_path / "dest"
    with pytest.raises(FastnnError) as caught:
        download_mnist(dest, [m.url for m in mirrors], progress=False, timeout=TIMEOUT)
    for mirror in mirrors:
        assert f"{mirror.url}train-images-idx3-ubyte.gz: HTTP 404 File not found" in str(
            caught.value
        )
    assert os.listdir(dest) == []


def test_valid_files_are_not_downloaded_again(serve, synthetic: Synthetic, tmp_path: Path) -> None:
    mirror = serve(synthetic.site)
    dest = tmp_path / "dest"
    download_mnist(dest, [mirror.url], progress=False, timeout=TIMEOUT)
    mirror.requests.clear()

    download_mnist(dest, [mirror.url], progress=False, timeout=TIMEOUT)
    assert mirror.requests == []

    # A damaged file, and one that was stored uncompressed: only the damaged one is fetched.
    (dest / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b not really gzip")
    train_labels = dest / "train-labels-idx1-ubyte.gz"
    (dest / "train-labels-idx1-ubyte").write_bytes(gzip.decompress(train_labels.read_bytes()))
    train_labels.unlink()
    download_mnist(dest, [mirror.url], progress=False, timeout=TIMEOUT)
    assert mirror.requests == ["/mnist/t10k-labels-idx1-ubyte.gz"]
    np.testing.assert_array_equal(load_mnist_dir(dest).test_labels, synthetic.arrays["test_labels"])


def test_interrupt_leaves_no_partial_file(
    serve, synthetic: Synthetic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = serve(synthetic.site)
    dest = tmp_path / "dest"
    dest.mkdir()

    def interrupted_replace(source: object, target: object) -> None:
        assert len(os.listdir(dest)) == 1  # the verified temporary file, about to be renamed
        raise KeyboardInterrupt

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(data.os, "replace", interrupted_replace)
        download_mnist(dest, [mirror.url], progress=False, timeout=TIMEOUT)
    assert os.listdir(dest) == []


def test_progress_line(
    serve, synthetic: Synthetic, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = serve(synthetic.site)
    download_mnist(tmp_path / "dest", [mirror.url], progress=True, timeout=TIMEOUT)
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.split("\n")
    assert len(lines) == 5 and lines[-1] == ""  # one line per file, each finished by a newline
    assert lines[0].startswith(f"\rdownloading train-images-idx3-ubyte.gz from {mirror.url}: ")
    assert all(line.endswith("100% of 0.0 MB") for line in lines[:4])


def test_destination_under_a_regular_file(serve, synthetic: Synthetic, tmp_path: Path) -> None:
    mirror = serve(synthetic.site)
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    dest = blocker / "mnist"
    with pytest.raises(FastnnError, match="cannot create the download folder") as caught:
        download_mnist(dest, [mirror.url], progress=False, timeout=TIMEOUT)
    assert str(dest) in str(caught.value)
    assert mirror.requests == []


def test_unwritable_destination_is_not_blamed_on_the_mirrors(
    serve, synthetic: Synthetic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a read-only folder does for a user who is not root, simulated so it runs as root."""
    mirror = serve(synthetic.site)
    dest = tmp_path / "dest"

    def refuse(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(data.tempfile, "mkstemp", refuse)
    with pytest.raises(FastnnError, match="cannot write to the download folder") as caught:
        download_mnist(dest, [mirror.url, mirror.url], progress=False, timeout=TIMEOUT)
    assert f"{dest}: cannot write to the download folder: Permission denied" in str(caught.value)
    assert mirror.requests == []


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="root writes into a read-only folder anyway",
)
def test_read_only_destination(serve, synthetic: Synthetic, tmp_path: Path) -> None:
    mirror = serve(synthetic.site)
    dest = tmp_path / "read only"
    dest.mkdir()
    dest.chmod(0o500)
    try:
        with pytest.raises(FastnnError, match="cannot write to the download folder") as caught:
            download_mnist(dest, [mirror.url], progress=False, timeout=TIMEOUT)
        assert str(dest) in str(caught.value)
    finally:
        dest.chmod(0o700)


def test_resolve_data_downloads_into_the_cache(
    serve, synthetic: Synthetic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = serve(synthetic.site)
    monkeypatch.delenv("FASTNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(data, "MIRRORS", (mirror.url,))
    dataset = resolve_data(progress=False)
    assert dataset.source == str(tmp_path / "xdg" / "fastnn")
    np.testing.assert_array_equal(dataset.train_images, synthetic.arrays["train_images"])
    assert len(mirror.requests) == 4

    mirror.requests.clear()
    resolve_data(progress=False)
    assert mirror.requests == []  # loaded from the cache


def test_real_mnist_download(serve, tmp_path: Path, refused_url: str) -> None:
    """The real files and the real checksums: the .gz bytes differ from the public mirrors', the
    uncompressed bytes do not."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "mnist").symlink_to(mnist_dir(), target_is_directory=True)
    mirror = serve(site)
    dest = tmp_path / "dest"
    download_mnist(dest, [refused_url, mirror.url], progress=False, timeout=TIMEOUT)
    assert sorted(os.listdir(dest)) == GZ_NAMES
    dataset = load_mnist_dir(dest)
    assert dataset.train_images.shape == (60000, 784)
    assert dataset.test_labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
