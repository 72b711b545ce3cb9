"""python -m fastnn.show and the figures behind it: every PNG and the page written for a small
network trained on real MNIST, the printed tables checked against scikit-learn's confusion
matrix of the network's own predictions, the text without matplotlib, bad files refused in one
line, and each drawing function on its own (valid PNGs, no text under 9 pt).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import (
    SUBPROCESS_TIMEOUT,
    assert_one_line_error,
    real_subset,
    run_in_process,
)

import fastnn
import fastnn.show
import fastnn.train
from fastnn import figures, report
from fastnn.data import load_mnist_dir
from fastnn.model import init_network, save_model

SHOW_PROG = "python -m fastnn.show"
N_TRAIN, N_TEST, DEV = 2000, 1000, 300
HIDDEN = 40  # wider than --units 16, so the units are sampled: every 3rd
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CONFUSION_LINE = re.compile(r"^\s+(\d) taken for (\d): (\d+) times?$", re.MULTILINE)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return real_subset(tmp_path_factory, N_TRAIN, N_TEST)


def run_quietly(main, argv: list) -> tuple[int, str]:
    """main(argv) with stdout captured: (status, stdout). For module fixtures, where capsys
    cannot go; the Numba thread count that --threads sets is put back, as run_in_process does."""
    import numba

    threads = numba.get_num_threads()
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            status = main([str(arg) for arg in argv])
    finally:
        numba.set_num_threads(threads)
    return status, out.getvalue()


@pytest.fixture(scope="module")
def run(small: Path, tmp_path_factory) -> dict:
    """A 784-40-10 network trained 3 epochs on 1700 real images, and what show made of it."""
    folder = tmp_path_factory.mktemp("show")
    model, metrics = folder / "model.npz", folder / "run.json"
    status, _ = run_quietly(
        fastnn.train.main,
        ["--data", small, "--dev-size", DEV, "--hidden", HIDDEN, "--epochs", 3, "--threads", 1,
         "--save", model, "--metrics", metrics],
    )  # fmt: skip
    assert status == 0
    out_dir = folder / "figures"
    status, out = run_quietly(
        fastnn.show.main,
        [model, "--out", out_dir, "--metrics", metrics, "--data", small, "--threads", 1,
         "--units", 16, "--mistakes", 6],
    )  # fmt: skip
    assert status == 0
    return {"model": model, "metrics": metrics, "out_dir": out_dir, "out": out, "data": small}


@pytest.fixture(scope="module")
def expected(run: dict) -> dict:
    """The network's predictions on the test images, from the Python API, and their counts."""
    from sklearn.metrics import confusion_matrix

    test = load_mnist_dir(run["data"])
    labels = test.test_labels.astype(np.int64)
    predicted = fastnn.load(run["model"]).predict(test.test_images)
    return {
        "labels": labels,
        "predicted": predicted,
        "matrix": confusion_matrix(labels, predicted, labels=range(10)),
        "images": test.test_images,
    }


def assert_png(path: Path, min_width: int = 500, min_height: int = 300) -> tuple[int, int]:
    """A real PNG of a sensible size that is not one flat colour; returns (width, height)."""
    from PIL import Image

    content = path.read_bytes()
    assert content.startswith(PNG_SIGNATURE), f"{path} is not a PNG"
    assert len(content) > 10_000, f"{path} is only {len(content)} bytes"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        width, height = image.size
        extremes = image.convert("L").getextrema()
    assert width >= min_width and height >= min_height, (path, width, height)
    assert extremes[1] - extremes[0] > 100, f"{path} is nearly one flat colour"
    return width, height


def printed_matrix(out: str) -> np.ndarray:
    lines = out.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("true \\ predicted"))
    assert lines[start].split()[3:] == [str(digit) for digit in range(10)]
    rows = [line.split() for line in lines[start + 1 : start + 11]]
    assert [int(row[0]) for row in rows] == list(range(10))
    return np.array([[int(cell) for cell in row[1:]] for row in rows])


def printed_accuracy(out: str) -> dict[str, tuple[int, int, str]]:
    """{digit or 'all': (images, right, 'xx.xx%')} from the accuracy-per-digit table."""
    table = out.split("accuracy per digit\n", 1)[1].split("\n\n", 1)[0].split("\n")
    assert table[0].split() == ["digit", "images", "right", "accuracy"]
    cells = [row.split() for row in table[1:]]
    return {digit: (int(images), int(right), share) for digit, images, right, share in cells}


# ---- the command on a real network ------------------------------------------------------------


def test_writes_every_figure_and_a_page_that_shows_them(run: dict) -> None:
    out_dir: Path = run["out_dir"]
    for name in fastnn.show.FILES.values():
        assert_png(out_dir / name)
        assert f"wrote {out_dir / name}" in run["out"]
    page = (out_dir / fastnn.show.INDEX).read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert sorted(sources) == sorted(fastnn.show.FILES.values())
    settings = json.loads(run["metrics"].read_text())["config"]
    assert f"<td>{settings['optimizer']}</td>" in page
    accuracy = re.search(r"test accuracy: (\d+\.\d\d)% on 1000 images", run["out"])
    assert accuracy and f"{accuracy.group(1)}%" in page
    assert "Learning curves skipped" not in page


def test_printed_confusion_matrix_is_sklearns_of_the_networks_predictions(
    run: dict, expected: dict
) -> None:
    assert np.array_equal(printed_matrix(run["out"]), expected["matrix"])
    assert expected["matrix"].sum() == N_TEST


def test_the_predictions_agree_with_a_numpy_forward_pass(run: dict, expected: dict) -> None:
    """The network read independently of fastnn's kernels: ReLU(W1 x + b1), then the largest
    of W2 a + b2 (softmax keeps the order), in float64."""
    with np.load(run["model"], allow_pickle=False) as arrays:
        W1, b1, W2, b2 = (arrays[name].astype(np.float64) for name in ("W1", "b1", "W2", "b2"))
    X = expected["images"].astype(np.float64) / 255
    predicted = (np.maximum(X @ W1.T + b1, 0) @ W2.T + b2).argmax(axis=1)
    # float32 kernels against float64: only a near-tie could differ.
    assert np.mean(predicted == expected["predicted"]) >= 0.998


def test_the_named_confusions_are_the_largest_off_diagonal_counts(
    run: dict, expected: dict
) -> None:
    named = [tuple(map(int, found)) for found in CONFUSION_LINE.findall(run["out"])]
    assert len(named) == 5
    matrix = expected["matrix"]
    off_diagonal = sorted(
        (int(matrix[t, p]) for t in range(10) for p in range(10) if t != p), reverse=True
    )
    assert [count for _, _, count in named] == off_diagonal[:5]
    for true, predicted, count in named:
        assert true != predicted and matrix[true, predicted] == count
    page = (run["out_dir"] / fastnn.show.INDEX).read_text()
    true, predicted, count = named[0]
    assert f"{true} taken for {predicted}: {count} times" in page


def test_accuracy_per_digit_matches(run: dict, expected: dict) -> None:
    table = printed_accuracy(run["out"])
    labels, predicted = expected["labels"], expected["predicted"]
    for digit in range(10):
        mine = labels == digit
        right = int(np.sum(predicted[mine] == digit))
        assert table[str(digit)][:2] == (int(mine.sum()), right)
        assert table[str(digit)][2] == f"{100 * right / mine.sum():.2f}%"
    assert table["all"][:2] == (N_TEST, int(np.sum(predicted == labels)))


def test_names_the_most_confident_mistakes_and_the_units_drawn(run: dict, expected: dict) -> None:
    outputs = fastnn.load(run["model"]).predict_proba(expected["images"])
    wrong = np.flatnonzero(outputs.argmax(axis=1) != expected["labels"])
    confidence = outputs[wrong].max(axis=1)
    listed = re.findall(r"^  (\d+): (\d) -> (\d) \(probability", run["out"], re.MULTILINE)
    assert len(listed) == 6
    most_confident = wrong[np.argsort(-confidence, kind="stable")[:6]]
    assert [int(index) for index, _, _ in listed] == most_confident.tolist()
    for index, true, guess in listed:
        assert int(true) == expected["labels"][int(index)]
        assert int(guess) == expected["predicted"][int(index)] != int(true)
    every_third = ", ".join(str(unit) for unit in range(0, HIDDEN, 3))
    assert f"14 of the 40 hidden units (every 3rd): {every_third}" in run["out"]


def test_analyse_and_draw_give_the_same_from_python(run: dict, expected: dict) -> None:
    model = fastnn.load(run["model"])
    found = fastnn.show.analyse(model, expected["images"], expected["labels"], n_mistakes=6)
    assert np.array_equal(found.matrix, expected["matrix"])
    drawn = fastnn.show.draw(found, model, expected["images"])
    assert sorted(drawn) == sorted(set(fastnn.show.FILES) - {"learning_curves"})
    history = json.loads(run["metrics"].read_text())["history"]
    with_curves = fastnn.show.draw(found, model, expected["images"], history)
    assert len(with_curves["learning_curves"].axes[0].lines[0].get_xdata()) == 3


def test_without_metrics_the_learning_curves_are_skipped_with_the_way_to_get_them(
    run: dict, tmp_path: Path
) -> None:
    status, out = run_quietly(
        fastnn.show.main, [run["model"], "--out", tmp_path, "--data", run["data"]]
    )
    assert status == 0
    assert "learning curves: skipped" in out and "--metrics run.json" in out
    assert not (tmp_path / "learning_curves.png").exists()
    assert (tmp_path / "confusion_matrix.png").exists()
    page = (tmp_path / "index.html").read_text()
    assert "learning_curves.png" not in page and "Learning curves skipped" in page


def test_without_matplotlib_it_says_how_to_install_it_and_still_prints_the_tables(
    run: dict, tmp_path: Path
) -> None:
    blocked = (
        "import sys, runpy; sys.modules['matplotlib'] = None; "
        f"sys.argv = ['{SHOW_PROG}', *sys.argv[1:]]; "
        "runpy.run_module('fastnn.show', run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-c", blocked, run["model"], "--out", tmp_path, "--data", run["data"],
         "--threads", "1"],
        capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert 'pip install "fastnn-loops[plot]"' in done.stdout
    assert np.array_equal(printed_matrix(done.stdout), printed_matrix(run["out"]))
    assert printed_accuracy(done.stdout) == printed_accuracy(run["out"])
    assert list(tmp_path.glob("*.png")) == []
    page = (tmp_path / "index.html").read_text()
    assert "<img" not in page and "fastnn-loops[plot]" in page


# ---- bad input: one line, status 2 ------------------------------------------------------------


def show(argv: list, capsys) -> tuple[int, str, str]:
    return run_in_process(fastnn.show.main, SHOW_PROG, argv, capsys)


def test_a_file_that_is_not_a_model_is_one_line_and_status_2(
    run: dict, tmp_path: Path, capsys
) -> None:
    text = tmp_path / "model.npz"
    text.write_text("not a model\n")
    status, _, err = show([text, "--out", tmp_path / "out", "--data", run["data"]], capsys)
    assert status == 2
    assert_one_line_error(err, str(text), "not a fastnn model file")
    assert not (tmp_path / "out").exists()


def test_a_network_that_is_not_for_mnist_is_refused(tmp_path: Path, capsys) -> None:
    model = tmp_path / "three.npz"
    save_model(model, init_network((784, 5, 3), rng=np.random.default_rng(0)))
    status, _, err = show([model, "--out", tmp_path / "out"], capsys)
    assert status == 2
    assert_one_line_error(err, "784-5-3", "10 outputs")


@pytest.mark.parametrize("problem", ["not json", "no history", "another network"])
def test_a_bad_metrics_file_is_one_line_and_status_2(
    run: dict, tmp_path: Path, capsys, problem: str
) -> None:
    metrics = tmp_path / "run.json"
    if problem == "not json":
        metrics.write_text("{epoch 1")
        needle = "not JSON"
    elif problem == "no history":
        metrics.write_text(json.dumps({"test_accuracy": 0.9}))
        needle = "history"
    else:
        other = json.loads(run["metrics"].read_text())
        other["config"]["hidden"] = [128]
        metrics.write_text(json.dumps(other))
        needle = "784-128-10"
    status, _, err = show([run["model"], "--out", tmp_path / "out", "--metrics", metrics], capsys)
    assert status == 2
    assert_one_line_error(err, str(metrics), needle)


def test_out_that_is_a_file_is_refused(run: dict, tmp_path: Path, capsys) -> None:
    taken = tmp_path / "taken"
    taken.write_text("")
    status, _, err = show([run["model"], "--out", taken], capsys)
    assert status == 2
    assert_one_line_error(err, "--out", "is a file")


# ---- the drawing functions ----------------------------------------------------------------------

HISTORY = [
    {"epoch": 1, "loss": 0.9, "train_accuracy": 0.71, "dev_accuracy": 0.85, "seconds": 0.1},
    {"epoch": 2, "loss": 0.4, "train_accuracy": 0.88, "dev_accuracy": 0.90, "seconds": 0.1},
    {"epoch": 3, "loss": 0.3, "train_accuracy": 0.91, "dev_accuracy": 0.89, "seconds": 0.1},
]


def smallest_font(figure) -> float:
    from matplotlib.text import Text

    return min(text.get_fontsize() for text in figure.findobj(Text) if text.get_text().strip())


def test_plot_learning_curves_draws_a_small_history(tmp_path: Path) -> None:
    path = tmp_path / "curves.png"
    assert figures.plot_learning_curves(HISTORY, path, title="three epochs") is None
    width, height = assert_png(path)
    assert width == 11 * figures.DPI and height == round(4.4 * figures.DPI)
    figure = figures.learning_curves_figure(HISTORY)
    loss_axes, accuracy_axes = figure.axes
    assert list(loss_axes.lines[0].get_ydata()) == [0.9, 0.4, 0.3]
    assert np.allclose(accuracy_axes.lines[1].get_ydata(), [85, 90, 89])
    assert "best dev: 90.00% (epoch 2)" in [t.get_text() for t in accuracy_axes.get_legend().texts]
    assert smallest_font(figure) >= 9


def test_plot_learning_curves_without_a_dev_set_and_for_one_epoch(tmp_path: Path) -> None:
    no_dev = [{**row, "dev_accuracy": None} for row in HISTORY[:1]]
    figures.plot_learning_curves(no_dev, tmp_path / "one.png")
    assert_png(tmp_path / "one.png")
    # null in the --metrics JSON, NaN in TrainResult.history_dicts(): both mean no dev set.
    for dev in (None, float("nan")):
        rows = [{**row, "dev_accuracy": dev} for row in HISTORY]
        legend = figures.learning_curves_figure(rows).axes[1].get_legend()
        assert "dev: none (no dev set)" in [text.get_text() for text in legend.texts]
    with pytest.raises(fastnn.FastnnError, match="empty"):
        figures.learning_curves_figure([])


def test_every_figure_keeps_its_text_at_9_points_or_more() -> None:
    rng = np.random.default_rng(0)
    matrix = rng.integers(0, 30, size=(10, 10)) + np.diag(rng.integers(800, 1100, size=10))
    outputs = rng.dirichlet(np.ones(10), size=4)
    drawn = [
        figures.confusion_matrix_figure(matrix),
        figures.mistakes_figure(
            rng.integers(0, 256, size=(4, 784)), [1, 2, 3, 4], outputs.argmax(axis=1), outputs
        ),
        figures.first_layer_figure(rng.normal(size=(40, 784)), units=range(0, 40, 3)),
        figures.accuracy_per_digit_figure(np.diag(matrix), matrix.sum(axis=1)),
    ]
    for figure in drawn:
        assert smallest_font(figure) >= 9


def test_the_first_layer_scale_is_symmetric_and_shared() -> None:
    W1 = np.random.default_rng(1).normal(size=(12, 784))
    figure = figures.first_layer_figure(W1, units=[0, 5, 11])
    limit, beyond = figures.first_layer_scale(W1, [0, 5, 11])
    images = [axes.images[0] for axes in figure.axes if axes.images]
    assert len(images) == 3
    assert {image.get_clim() for image in images} == {(-limit, limit)}
    assert limit == pytest.approx(np.percentile(np.abs(W1[[0, 5, 11]]), 99))
    assert beyond == pytest.approx(0.01, abs=0.002)


# ---- the report's arithmetic --------------------------------------------------------------------


def test_confusion_matrix_and_top_confusions_on_known_counts() -> None:
    labels = np.array([4, 4, 4, 9, 7, 7, 1, 1])
    predicted = np.array([9, 9, 4, 4, 2, 2, 1, 1])
    matrix = report.confusion_matrix(labels, predicted)
    assert matrix[4, 9] == 2 and matrix[7, 2] == 2 and matrix[9, 4] == 1 and matrix[1, 1] == 2
    assert matrix.sum() == len(labels)
    named = [str(confusion) for confusion in report.top_confusions(matrix, 5)]
    assert named == ["4 taken for 9: 2 times", "7 taken for 2: 2 times", "9 taken for 4: 1 time"]


@pytest.mark.parametrize(
    ("n_units", "max_units", "expected"),
    [(10, 32, list(range(10))), (128, 32, list(range(0, 128, 4))), (33, 32, list(range(0, 33, 2)))],
)
def test_sample_units_is_even_and_at_most_the_limit(n_units, max_units, expected) -> None:
    assert report.sample_units(n_units, max_units).tolist() == expected


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.973, "97.3%"), (0.99996, "99.996%"), (0.00042, "0.042%"), (1.0, "100.0%")],
)
def test_confidence_never_rounds_a_wrong_answer_to_100_percent(value, text) -> None:
    assert figures.confidence_text(value) == text
