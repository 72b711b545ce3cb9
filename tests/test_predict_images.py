"""python -m fastnn.predict model.npz --image FILE ...: digits from image files, as a user meets it.

The network is trained here on the real MNIST (the seeds' 784-10-10 network, a few epochs on
the training set: a second or two). The images are real image files written here: real MNIST
test digits rendered again large, off-centre and in either colour scheme, as PNG and JPEG, and
bad files. What the command prints, the CSV it writes and the images it saves are checked
against the network's own outputs.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import (
    PREDICT,
    PREDICT_PROG,
    assert_one_line_error,
    real_mnist,
    run_in_process,
    run_module,
)
from PIL import Image
from test_images import BAD_FILES, draw_digit, huge_png, rerender, save

import fastnn.predict
from fastnn.images import read_digit
from fastnn.model import save_model
from fastnn.training import TrainConfig, predict_outputs, to_inputs, train

N_DIGITS = 40  # real test digits rendered again

# "seven.png  7  98.50%   9   0.95%   3   0.50%"
RESULT_LINE = re.compile(r"^(\S.*?)\s+" + r"\s+".join([r"(\d)\s+(\d+\.\d\d)%"] * 3) + r"\s*$")


def trained_model(folder: Path, loss: str, epochs: int) -> Path:
    """The seeds' network trained on the real MNIST training set, one thread, saved."""
    import numba

    mnist = real_mnist()
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        config = TrainConfig(hidden=(10,), loss=loss, epochs=epochs, dev_size=1000, seed=0)
        result = train(config, mnist.train_images, mnist.train_labels)
    finally:
        numba.set_num_threads(threads)
    path = folder / f"{loss}.npz"
    save_model(path, result.network)
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return trained_model(tmp_path_factory.mktemp("model"), "cross-entropy", 5)


def predict(argv: list, capsys) -> tuple[int, str, str]:
    """`python -m fastnn.predict ARGV` in this process: (exit status, stdout, stderr)."""
    return run_in_process(fastnn.predict.main, PREDICT_PROG, argv, capsys)


def printed_results(out: str) -> dict[str, list[tuple[int, float]]]:
    """{file: [(digit, percent) x 3]} from the printed result lines."""
    results = {}
    for line in out.splitlines():
        found = RESULT_LINE.match(line)
        if found:
            values = found.groups()[1:]
            results[found.group(1)] = [
                (int(values[i]), float(values[i + 1])) for i in range(0, 6, 2)
            ]
    return results


def network_outputs(model: Path, files: list[Path]) -> np.ndarray:
    """The network's outputs for the prepared files, computed here without the command."""
    from fastnn.model import load_model

    net = load_model(model)
    digits = np.stack([read_digit(path).reshape(-1) for path in files])
    return predict_outputs(net, to_inputs(digits, str(net.dtype)))


# ---- real MNIST digits, rendered again, are still recognised ------------------------------------


@pytest.fixture(scope="module")
def rendered(model, tmp_path_factory) -> tuple[list[Path], np.ndarray]:
    """Real test digits the network gets right as MNIST has them, rendered again 3 to 8 times
    larger, off-centre on a larger page, dark on light or light on dark, as PNG or JPEG."""
    from fastnn.model import load_model

    mnist = real_mnist()
    net = load_model(model)
    images, labels = mnist.test_images[:400], mnist.test_labels[:400]
    right = predict_outputs(net, to_inputs(images, str(net.dtype))).argmax(axis=1) == labels
    chosen = np.nonzero(right)[0][:N_DIGITS]
    folder = tmp_path_factory.mktemp("rendered")
    files = []
    for n, index in enumerate(chosen):
        scale = 3 + n % 6
        side = 28 * scale
        canvas = (side + 60 + 17 * (n % 9), side + 40 + 23 * (n % 4))
        at = (canvas[0] - side - 5 * (n % 3), 7 * (n % 5))  # towards the top right
        page = rerender(images[index].reshape(28, 28), scale, canvas, at)
        if n % 2:  # every other one light on dark
            page = Image.eval(page, lambda value: 255 - value)
        suffix, options = ("jpg", {"quality": 85}) if n % 3 == 0 else ("png", {})
        files.append(save(page, folder / f"digit {n:02d} of {labels[index]}.{suffix}", **options))
    return files, labels[chosen]


def test_real_digits_rendered_again_are_recognised(model, rendered, tmp_path, capsys) -> None:
    files, labels = rendered
    table = tmp_path / "guesses.csv"
    status, out, err = predict([model, "--image", *files, "--out", table], capsys)
    assert status == 0, err
    printed = printed_results(out)
    assert sorted(printed) == sorted(str(path) for path in files)
    guessed = np.array([printed[str(path)][0][0] for path in files])
    # The network is right on every one of these digits as MNIST has them; rendered again and
    # prepared again, it may miss one or two whose strokes moved by a pixel.
    print(f"{np.sum(guessed == labels)} of {N_DIGITS} rendered digits recognised")
    assert np.sum(guessed == labels) >= N_DIGITS - 2, list(zip(guessed, labels, strict=True))


def test_printed_top_three_and_csv_are_the_networks_outputs(model, rendered, tmp_path, capsys):
    files = rendered[0][:12]
    table = tmp_path / "guesses.csv"
    status, out, err = predict([model, "--image", *files, "--out", table], capsys)
    assert status == 0, err
    assert f"wrote {len(files)} predictions to {table}" in out
    outputs = network_outputs(model, files)
    printed = printed_results(out)

    lines = table.read_text().splitlines()
    assert lines[0] == "file,label,probability"
    rows = list(csv.reader(lines[1:]))
    assert [row[0] for row in rows] == [str(path) for path in files]  # names with spaces too
    for path, row, output in zip(files, rows, outputs, strict=True):
        likeliest = np.argsort(-output, kind="stable")[:3]
        assert [digit for digit, _ in printed[str(path)]] == likeliest.tolist()
        for (_, percent), unit in zip(printed[str(path)], likeliest, strict=True):
            assert percent == pytest.approx(100 * output[unit], abs=0.005 + 1e-6)
        assert int(row[1]) == likeliest[0]
        assert float(row[2]) == pytest.approx(output[likeliest[0]], abs=5e-7 + 1e-9)
        assert 0.1 <= float(row[2]) <= 1


def test_save_seen_keeps_what_the_network_saw(model, rendered, tmp_path, capsys) -> None:
    files = rendered[0][:6]
    # A second file of the same name, in another folder: saved as <name>-2.png.
    again_source = tmp_path / "other" / files[0].name
    again_source.parent.mkdir()
    again_source.write_bytes(files[0].read_bytes())
    seen = tmp_path / "seen"
    status, out, err = predict(
        [model, "--image", *files, again_source, "--save-seen", seen], capsys
    )
    assert status == 0, err
    assert f"in {seen}" in out
    saved = sorted(seen.iterdir())
    assert len(saved) == len(files) + 1
    for path in [*files, again_source]:
        stem = path.stem if path != again_source else f"{path.stem}-2"
        with Image.open(seen / f"{stem}.png") as image:
            assert image.format == "PNG" and image.mode == "L" and image.size == (28, 28)
            assert np.array_equal(np.asarray(image), read_digit(path))


def test_drawn_digits_as_python_m(model, tmp_path) -> None:
    """The real command in a child process, on digits drawn with a pen-like stroke."""
    files = [
        save(draw_digit(7, (600, 400), (350, 60, 160, 280), 22), tmp_path / "seven.png"),
        save(draw_digit(1, (200, 300), (80, 40, 50, 220), 16), tmp_path / "one.jpg", quality=85),
    ]
    done = run_module(PREDICT, model, "--image", *files)
    assert done.returncode == 0, done.stderr
    printed = printed_results(done.stdout)
    assert printed[str(files[0])][0][0] == 7
    assert printed[str(files[1])][0][0] == 1
    assert "three likeliest digits" in done.stdout


def test_a_squared_error_network_shows_outputs_scaled_to_one(tmp_path, capsys) -> None:
    """An mse network's outputs are sigmoids, not probabilities: they are scaled to sum to 1,
    and the command says so."""
    model = trained_model(tmp_path, "mse", 1)
    path = save(draw_digit(7, (600, 400), (350, 60, 160, 280), 22), tmp_path / "seven.png")
    table = tmp_path / "guesses.csv"
    status, out, err = predict([model, "--image", path, "--out", table], capsys)
    assert status == 0, err
    assert "squared-error" in out
    outputs = network_outputs(model, [path])[0]
    probability = float(table.read_text().splitlines()[1].split(",")[2])
    assert probability == pytest.approx(outputs.max() / outputs.sum(), abs=1e-6)


# ---- bad input: one line, status 2, nothing written ------------------------------------------


@pytest.mark.parametrize(
    "bad", ["text named .png", "empty file", "blank white", "huge", "truncated", "faint smudge"]
)
def test_a_bad_image_is_one_line_and_status_2(bad, model, tmp_path) -> None:
    make, needle = BAD_FILES[bad]
    path = make(tmp_path / "digit.png")
    done = run_module(PREDICT, model, "--image", path)
    assert done.returncode == 2
    assert_one_line_error(done.stderr, str(path), needle)
    assert done.stderr.startswith(f"{PREDICT_PROG}: error: ")


def test_one_bad_file_among_good_ones_writes_nothing(model, rendered, tmp_path, capsys) -> None:
    huge = huge_png(tmp_path / "huge.png")
    table, seen = tmp_path / "guesses.csv", tmp_path / "seen"
    status, _, err = predict(
        [model, "--image", *rendered[0][:3], huge, "--out", table, "--save-seen", seen], capsys
    )
    assert status == 2
    assert_one_line_error(err, str(huge), "40,000,000")
    assert not table.exists()
    assert not seen.exists()


BAD_FLAGS = {
    "--save-seen without --image": (["--save-seen", "seen"], "--save-seen goes with --image"),
    "--image with --csv": (["--image", "IMAGE", "--csv", "IMAGE"], "--image goes without --csv"),
    "--image with --data": (["--image", "IMAGE", "--data", "."], "--image goes without"),
    "missing image": (["--image", "nowhere.png"], "no such file"),
    "--image and nothing": (["--image"], "--image"),
    "--save-seen is a file": (["--image", "IMAGE", "--save-seen", "IMAGE"], "name a folder"),
}


@pytest.mark.parametrize("bad", list(BAD_FLAGS))
def test_bad_flags_are_one_line_and_status_2(bad, model, tmp_path, capsys) -> None:
    image = save(draw_digit(7), tmp_path / "seven.png")
    flags, needle = BAD_FLAGS[bad]
    flags = [image if flag == "IMAGE" else flag for flag in flags]
    status, _, err = predict([model, *flags], capsys)
    assert status == 2
    assert_one_line_error(err, needle)
    assert not (tmp_path / "seen").exists()


def test_help_explains_images() -> None:
    done = run_module(PREDICT, "--help")
    assert done.returncode == 0, done.stderr
    for words in ("--image", "--save-seen", "file,label,probability", "centre of mass", "[plot]"):
        assert words in done.stdout, words
