"""python -m fastnn.show: see what a saved network learned, as figures and an index.html.

    python -m fastnn.train --save model.npz --metrics run.json
    python -m fastnn.show model.npz --out figures --metrics run.json

writes into the folder figures/: learning_curves.png (needs --metrics), confusion_matrix.png,
mistakes.png, first_layer.png, accuracy_per_digit.png and index.html, which shows them all
with the run's settings and scores. The confusion matrix, the most frequent confusions and the
accuracy per digit are also printed as text, and need no matplotlib.

From Python (a notebook shows the figures inline):

    found = fastnn.show.analyse(model, X_test, y_test)     # numbers only
    drawn = fastnn.show.draw(found, model, X_test, model.history_dicts())
    drawn["confusion_matrix"]                              # a matplotlib Figure
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import cli, figures, report
from .api import Model, load
from .data import resolve_data
from .errors import FastnnError
from .model import atomic_write, parameter_count
from .training import BACKENDS, SLOW_COMPILE_SECONDS, call_if_slow

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PROG = "python -m fastnn.show"
HISTORY_KEYS = ("epoch", "loss", "train_accuracy", "dev_accuracy")
FILES = {
    "learning_curves": "learning_curves.png",
    "confusion_matrix": "confusion_matrix.png",
    "mistakes": "mistakes.png",
    "first_layer": "first_layer.png",
    "accuracy_per_digit": "accuracy_per_digit.png",
}
INDEX = "index.html"
METRICS_HINT = (
    "train with `python -m fastnn.train --save model.npz --metrics run.json` "
    "and add `--metrics run.json` here"
)


def output_folder(text: str) -> Path:
    """A folder to write in: it may not exist yet, but must not be a file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a file; name a folder")
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = cli.Parser(
        prog=PROG,
        description="Draw what a saved network learned: learning curves (with --metrics), the "
        "confusion matrix on the test images, its most confident mistakes, the first layer's "
        "weights as images and the accuracy per digit, as PNG files in --out with an "
        "index.html that shows them all. The confusion matrix and the accuracy per digit are "
        'also printed as text. Figures need matplotlib: pip install "fastnn-loops[plot]".',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("model", type=cli.existing_file, help="a model file from --save")
    parser.add_argument(
        "--out",
        type=output_folder,
        required=True,
        metavar="DIR",
        help="the folder to write the PNG files and index.html in (made if missing)",
    )
    parser.add_argument(
        "--metrics",
        type=cli.existing_file,
        metavar="PATH",
        help="the JSON that `python -m fastnn.train --metrics PATH` wrote for this model: "
        "the learning curves and the run's settings come from it",
    )
    parser.add_argument(
        "--data",
        metavar="PATH",
        help="where the MNIST test images are: as for python -m fastnn.train",
    )
    parser.add_argument(
        "--mistakes",
        type=cli.whole_number(1),
        metavar="N",
        default=10,
        help="how many of the most confident mistakes to draw",
    )
    parser.add_argument(
        "--units",
        type=cli.whole_number(1),
        metavar="N",
        default=32,
        help="draw at most this many first-layer units (evenly spaced when there are more)",
    )
    parser.add_argument(
        "--confusions",
        type=cli.whole_number(1),
        metavar="N",
        default=5,
        help="how many of the most frequent confusions to name",
    )
    parser.add_argument("--backend", choices=BACKENDS, default="numba")
    parser.add_argument(
        "--threads", type=cli.whole_number(1), default=None, metavar="N",
        help="threads for the numba backend; default: all cores",
    )  # fmt: skip
    return parser


# ---- the metrics file -------------------------------------------------------------------------


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def read_metrics(path: Path) -> dict:
    """The --metrics JSON of a training run, checked enough to draw its history."""

    def fail(problem: str) -> FastnnError:
        return FastnnError(f"{path}: not a metrics file from python -m fastnn.train ({problem})")

    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise fail("not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise fail(f"not JSON: {error.msg} at line {error.lineno}") from None
    except OSError as error:
        raise FastnnError(f"{path}: cannot read: {error.strerror or error}") from None
    if not isinstance(metrics, dict) or not isinstance(metrics.get("history"), list):
        raise fail("no 'history' list")
    if not metrics["history"]:
        raise fail("the history is empty")
    for place, row in enumerate(metrics["history"], start=1):
        if not isinstance(row, dict) or any(key not in row for key in HISTORY_KEYS):
            raise fail(f"history entry {place} lacks one of {', '.join(HISTORY_KEYS)}")
        for key in HISTORY_KEYS:
            if not (is_number(row[key]) or (key == "dev_accuracy" and row[key] is None)):
                raise fail(f"history entry {place}: {key} is {row[key]!r}, not a number")
    if not isinstance(metrics.get("config", {}), dict):
        raise fail("'config' is not an object")
    return metrics


def check_same_run(net: Model, metrics: dict, model_path: Path, metrics_path: Path) -> None:
    """Refuse a metrics file that describes another network than the model file holds."""
    config = metrics.get("config", {})
    hidden = config.get("hidden")
    if isinstance(hidden, list) and tuple(hidden) != tuple(net.sizes[1:-1]):
        described = "-".join(str(n) for n in (net.sizes[0], *hidden, net.sizes[-1]))
        raise FastnnError(
            f"{metrics_path} is the run of a {described} network, but {model_path} holds a "
            f"{shape_text(net)} network: give the metrics of the run that saved this model"
        )
    for name in ("activation", "loss"):
        if name in config and config[name] != getattr(net, name):
            raise FastnnError(
                f"{metrics_path} is the run of a network with {name} {config[name]}, but "
                f"{model_path} has {getattr(net, name)}: not the same run"
            )


# ---- what is computed -------------------------------------------------------------------------


def shape_text(net: Model) -> str:
    return "-".join(str(n) for n in net.sizes)


def percent(value: object) -> str:
    return f"{100 * value:.2f}%" if is_number(value) else "n/a"


def page_facts(
    net: Model, model_path: Path, source: str, n_test: int, right: int, metrics: dict | None
) -> list[tuple[str, str]]:
    facts = [
        ("model file", str(model_path)),
        ("network", f"{shape_text(net)}, {net.activation} hidden, {net.loss} loss, {net.dtype}"),
        ("parameters", f"{parameter_count(net.sizes):,}"),
        ("test images", f"{n_test:,} from {source}"),
        ("test accuracy (measured now)", f"{100 * right / n_test:.2f}% ({right:,} right)"),
    ]
    if metrics is not None:
        facts += [
            ("test accuracy (at the end of training)", percent(metrics.get("test_accuracy"))),
            ("dev accuracy (kept epoch)", percent(metrics.get("dev_accuracy"))),
            ("epochs run", str(metrics.get("epochs", len(metrics["history"])))),
            ("kept the weights of epoch", str(metrics.get("best_epoch", "n/a"))),
            ("stopped early", str(metrics.get("stopped_early", "n/a"))),
        ]
        if is_number(metrics.get("seconds")):
            facts.append(("training time", f"{metrics['seconds']:.1f} s"))
    return facts


def rarely_inked_text(weights: np.ndarray, images: np.ndarray, share: float = 0.01) -> str:
    """How large the weights are on pixels almost never inked (the frame) and on the others:
    a weight on a pixel that is 0 in nearly every image hardly ever takes part in z."""
    rare = (images > 0).mean(axis=0) < share
    if not rare.any() or rare.all():
        return f"{'no' if rare.all() else 'every'} pixel is inked in {share:.0%} of the test images"
    magnitude = np.abs(weights)
    return (
        f"the {int(rare.sum())} pixels inked in under {share:.0%} of the test images (mostly the "
        f"frame; seldom part of z) have mean |w| {magnitude[:, rare].mean():.3g}, the other "
        f"{int((~rare).sum())} pixels {magnitude[:, ~rare].mean():.3g}"
    )


@dataclass
class Findings:
    """What the command reports about a network on labelled images, before any drawing."""

    labels: np.ndarray  # (N,) the true digits
    outputs: np.ndarray  # (N, 10) the probabilities, float64
    predicted: np.ndarray  # (N,)
    matrix: np.ndarray  # (10, 10) counts, row = true digit
    confusions: list[report.Confusion]  # the most frequent, largest first
    mistakes: np.ndarray  # indices of the most confident mistakes, most confident first
    units: np.ndarray  # the first-layer units drawn
    units_text: str
    scale_text: str
    frame_text: str

    @property
    def right(self) -> int:
        return int(np.trace(self.matrix))


def analyse(
    model: Model, images: np.ndarray, labels: np.ndarray, *, n_mistakes: int = 10,
    max_units: int = 32, n_confusions: int = 5, backend: str = "numba",
) -> Findings:  # fmt: skip
    """The confusion matrix, confusions, mistakes and first-layer units of `model` on the
    images (N, 784) and their labels, as python -m fastnn.show reports them.

    With sigmoid outputs (mse) the probabilities are the sigmoids divided by their sum, as
    Model.predict_proba and python -m fastnn.predict give them.
    """
    labels = np.asarray(labels).astype(np.int64)
    outputs = model.predict_proba(images, backend).astype(np.float64)
    predicted = outputs.argmax(axis=1)
    matrix = report.confusion_matrix(labels, predicted, 10)
    W1 = model.W1
    units = report.sample_units(W1.shape[0], max_units)
    limit, beyond = figures.first_layer_scale(W1, units)
    return Findings(
        labels=labels,
        outputs=outputs,
        predicted=predicted,
        matrix=matrix,
        confusions=report.top_confusions(matrix, n_confusions),
        mistakes=report.most_confident_mistakes(outputs, labels, n_mistakes),
        units=units,
        units_text=report.describe_units(units, W1.shape[0]),
        scale_text=(
            f"one colour scale for all, centred on zero: ±{limit:.3g}, which holds 99% of the "
            f"weights drawn; the {100 * beyond:.1f}% beyond it take the end colours"
        ),
        frame_text=rarely_inked_text(W1[units], images),
    )


def draw(
    found: Findings, model: Model, images: np.ndarray, history: list[dict] | None = None
) -> dict[str, Figure]:
    """Every figure, as matplotlib Figures keyed as FILES is (a notebook shows them inline):
    the learning curves only with a history, the mistakes only if there are any."""
    drawn = {}
    if history:
        drawn["learning_curves"] = figures.learning_curves_figure(history)
    drawn["confusion_matrix"] = figures.confusion_matrix_figure(found.matrix)
    if len(found.mistakes):
        chosen = found.mistakes
        drawn["mistakes"] = figures.mistakes_figure(
            images[chosen], found.labels[chosen], found.predicted[chosen],
            found.outputs[chosen], indices=chosen,
        )  # fmt: skip
    drawn["first_layer"] = figures.first_layer_figure(model.W1, units=found.units)
    correct, totals = report.accuracy_per_class(found.matrix)
    drawn["accuracy_per_digit"] = figures.accuracy_per_digit_figure(correct, totals)
    return drawn


def captions(found: Findings, model: Model, history: list[dict] | None) -> dict[str, tuple]:
    """(heading, caption) of each figure on the page."""
    n_epochs = len(history) if history else 0
    named = "; ".join(str(confusion) for confusion in found.confusions) or "none"
    sigmoid_note = (
        "" if model.loss == "cross-entropy"
        else " (its sigmoid outputs divided by their sum, as predict_proba gives them)"
    )  # fmt: skip
    frame = found.frame_text[0].upper() + found.frame_text[1:]
    return {
        "learning_curves": (
            "Learning curves",
            f"{n_epochs} epochs. Left: the training loss, averaged over each epoch's batches. "
            "Right: the accuracy on each batch before its update (train) and on the held-out "
            "dev images after the epoch (dev).",
        ),
        "confusion_matrix": (
            "Confusion matrix",
            f"On the {int(found.matrix.sum()):,} test images: row = true digit, column = the "
            f"network's answer. The most frequent confusions: {named}.",
        ),
        "mistakes": (
            "The most confident mistakes",
            f"The {len(found.mistakes)} test images the network got wrong with the highest "
            f"probability for its answer, each beside its 10 probabilities{sigmoid_note}.",
        ),
        "first_layer": (
            "What the first layer looks for",
            "Each panel is one hidden unit's row of W1, the 784 weights it gives the pixels, "
            "laid out as the 28 × 28 image: red where ink raises the unit's input z, blue where "
            f"it lowers it; {found.scale_text}. Shown: {found.units_text}. {frame}.",
        ),
        "accuracy_per_digit": (
            "Accuracy per digit",
            "The share of each digit's test images the network got right; the dashed line is "
            "the accuracy over all of them.",
        ),
    }


def print_findings(found: Findings) -> None:
    n = len(found.labels)
    print(f"test accuracy: {100 * found.right / n:.2f}% on {n} images\n")
    print("confusion matrix (rows: the true digit; columns: the digit the network answered)")
    print(report.format_confusion_matrix(found.matrix) + "\n")
    if found.confusions:
        print("most frequent confusions:")
    else:
        print("no confusions: every answer is right")
    for confusion in found.confusions:
        print(f"  {confusion}")
    print("\naccuracy per digit")
    print(report.format_accuracy_per_class(found.matrix) + "\n")
    if len(found.mistakes) == 1:
        print("the most confident mistake (test image: true -> predicted):")
    elif len(found.mistakes):
        print(f"the {len(found.mistakes)} most confident mistakes (test image: true -> predicted):")
    for index in found.mistakes.tolist():
        guess = int(found.predicted[index])
        probability = figures.confidence_text(found.outputs[index, guess])
        print(f"  {index}: {found.labels[index]} -> {guess} (probability {probability})")
    print(f"first layer: drawing {found.units_text}")
    print(f"  {found.frame_text}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cli.set_threads(args.threads)
    model = load(args.model)
    print(
        f"model: {args.model} ({shape_text(model)}, {model.activation}, {model.loss}, "
        f"{model.dtype})"
    )
    if model.sizes[0] != 784 or model.sizes[-1] != 10:
        raise FastnnError(
            f"{args.model}: the network is {shape_text(model)}; the figures are of MNIST, "
            "which needs 784 inputs (28 × 28 images) and 10 outputs"
        )
    if not np.array_equal(model.classes, np.arange(10)):
        raise FastnnError(
            f"{args.model}: its outputs stand for the labels {list(map(int, model.classes))}; "
            "the figures are of the MNIST digits 0 to 9"
        )
    metrics = read_metrics(args.metrics) if args.metrics else None
    if metrics is not None:
        check_same_run(model, metrics, args.model, args.metrics)
    history = metrics["history"] if metrics else None
    out: Path = args.out
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FastnnError(f"{out}: cannot make the folder: {error.strerror or error}") from None
    dataset = resolve_data(args.data)
    if dataset.test_images is None:
        raise FastnnError(
            f"{dataset.source}: has no test set; the figures need the MNIST test images "
            "(a folder of the four IDX files)"
        )
    images, labels = dataset.test_images, dataset.test_labels
    if len(labels) == 0:
        raise FastnnError(f"{dataset.source}: the test set is empty")
    print(f"data: {dataset.source} ({len(labels)} test images)")

    # The first call compiles (or loads) the kernels: one image, so that the note can only be
    # about compiling.
    with call_if_slow(cli.say_compiling if args.backend == "numba" else None, SLOW_COMPILE_SECONDS):
        model.predict_proba(images[:1], args.backend)
    found = analyse(
        model, images, labels, n_mistakes=args.mistakes, max_units=args.units,
        n_confusions=args.confusions, backend=args.backend,
    )  # fmt: skip
    print_findings(found)

    notes: list[str] = []
    on_page: list[report.Figure] = []
    try:
        figures.require_matplotlib()
    except figures.MissingMatplotlib as missing:
        notes.append(f"No figures: {missing}.")
        print(f"\nno figures: {missing}")
    else:
        print()
        headings = captions(found, model, history)
        for key, figure in draw(found, model, images, history).items():
            path = figures.save(figure, out / FILES[key])
            print(f"wrote {path}", flush=True)
            on_page.append(report.Figure(FILES[key], *headings[key]))
        if not len(found.mistakes):
            notes.append("No mistakes figure: the network got every test image right.")
            print("mistakes: none to draw, every test image is right")
    if metrics is None:
        notes.append(f"Learning curves skipped: they need the run's history; {METRICS_HINT}.")
        print(f"learning curves: skipped, they need the run's history; {METRICS_HINT}")

    page = report.index_html(
        title=f"fastnn: what the {shape_text(model)} network in {args.model.name} learned",
        facts=page_facts(model, args.model, dataset.source, len(labels), found.right, metrics),
        settings=metrics.get("config") if metrics else None,
        matrix=found.matrix,
        confusions=found.confusions,
        figures=on_page,
        notes=notes,
    )
    index = out / INDEX
    write_text(index, page)
    print(f"wrote {index}: open it in a browser")
    return 0


def write_text(path: Path, text: str) -> None:
    try:
        atomic_write(path, lambda file: file.write(text.encode("utf-8")))
    except OSError as error:
        raise FastnnError(f"{path}: cannot write: {error.strerror or error}") from None


def entry_point() -> None:
    cli.run(PROG, lambda: main(sys.argv[1:]))


if __name__ == "__main__":
    entry_point()
