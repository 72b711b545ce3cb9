"""The figures of a trained network, drawn with matplotlib (the [plot] extra).

Each figure has two functions: `<name>_figure(...)` draws it and returns the matplotlib Figure
(a notebook shows it inline), and `plot_<name>(..., path)` draws it and saves it as a PNG,
atomically. They take plain numbers and arrays, never a model file, so they draw whatever the
project computed:

    learning curves      history: per-epoch dicts (epoch, loss, train_accuracy, dev_accuracy)
    confusion matrix     counts (k, k), rows the true digit
    mistakes             images, true and predicted digits, the network's outputs
    first layer          rows of W1 as 28 × 28 images, one shared scale centred on zero
    accuracy per digit   right and total per digit

matplotlib is imported inside the functions, and only its Agg canvas is used: no window, no
global pyplot state. Without matplotlib they raise MissingMatplotlib, which says how to install
the extra.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import FastnnError
from .model import atomic_write

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PLOT_EXTRA = 'pip install "fastnn-loops[plot]"'
DPI = 100
# Sizes in points at DPI: 9 pt is 12.5 pixels, the smallest text on any figure.
STYLE = {
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "figure.titlesize": 14,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
RIGHT_COLOUR = "#2e7d32"  # green: the true digit, the diagonal
WRONG_COLOUR = "#c62828"  # red: a wrong answer
OTHER_COLOUR = "#9e9e9e"
TRAIN_COLOUR = "#1565c0"
DEV_COLOUR = "#ef6c00"


class MissingMatplotlib(FastnnError):
    """matplotlib is not installed; the message says how to install the extra."""


def require_matplotlib() -> None:
    """Raise MissingMatplotlib unless matplotlib can be imported: call it before long work."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MissingMatplotlib(
            f"drawing figures needs matplotlib, which is not installed: {PLOT_EXTRA}"
        ) from None


@contextmanager
def style() -> Iterator[None]:
    require_matplotlib()
    import matplotlib

    with matplotlib.rc_context(STYLE):
        yield


def new_figure(width: float, height: float) -> Figure:
    """A Figure on the Agg canvas, in inches, laid out by matplotlib's constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save(figure: Figure, path: str | os.PathLike) -> Path:
    """Write the figure as a PNG at DPI, atomically; FastnnError if the file cannot be written."""
    path = Path(path)
    with style():
        try:
            atomic_write(path, lambda file: figure.savefig(file, format="png", dpi=DPI))
        except OSError as error:
            raise FastnnError(
                f"{path}: cannot write the figure: {error.strerror or error}"
            ) from None
    return path


# ---- 1. learning curves -----------------------------------------------------------------------


def history_rows(history: Sequence[Mapping[str, Any] | Any]) -> list[dict[str, Any]]:
    """Per-epoch dicts, from dicts (the --metrics JSON) or records with those attributes."""
    keys = ("epoch", "loss", "train_accuracy", "dev_accuracy")
    return [
        {key: row[key] if isinstance(row, Mapping) else getattr(row, key) for key in keys}
        for row in history
    ]


def percent_or_nan(value: float | None) -> float:
    return float("nan") if value is None else 100 * float(value)


def learning_curves_figure(
    history: Sequence[Mapping[str, Any]], title: str | None = None
) -> Figure:
    """Two panels per epoch: the training loss, and the train and dev accuracy (%).

    `history` is the "history" list of the --metrics JSON: dicts with epoch, loss,
    train_accuracy, dev_accuracy (None without a dev set); fastnn.EpochRecord objects also do.
    """
    rows = history_rows(history)
    if not rows:
        raise FastnnError("the history is empty: no epoch to draw")
    from matplotlib.ticker import MaxNLocator

    epochs = np.array([row["epoch"] for row in rows], dtype=np.int64)
    loss = np.array([row["loss"] for row in rows], dtype=np.float64)
    train = np.array([percent_or_nan(row["train_accuracy"]) for row in rows])
    dev = np.array([percent_or_nan(row["dev_accuracy"]) for row in rows])
    marker = "o" if len(rows) <= 60 else None
    with style():
        figure = new_figure(11, 4.4)
        loss_axes, accuracy_axes = figure.subplots(1, 2)
        loss_axes.plot(epochs, loss, marker=marker, markersize=3, color=TRAIN_COLOUR)
        loss_axes.set(
            title="Training loss J", xlabel="epoch", ylabel="loss (mean over the epoch's batches)"
        )
        accuracy_axes.plot(
            epochs, train, marker=marker, markersize=3, color=TRAIN_COLOUR, label="train"
        )
        if np.isfinite(dev).any():
            accuracy_axes.plot(
                epochs, dev, marker=marker, markersize=3, color=DEV_COLOUR, label="dev"
            )
            best = int(np.nanargmax(dev))
            accuracy_axes.plot(
                epochs[best], dev[best], marker="*", markersize=14, color=DEV_COLOUR,
                linestyle="none", label=f"best dev: {dev[best]:.2f}% (epoch {epochs[best]})",
            )  # fmt: skip
        else:
            accuracy_axes.plot([], [], linestyle="none", label="dev: none (no dev set)")
        accuracy_axes.set(title="Accuracy", xlabel="epoch", ylabel="accuracy (%)")
        accuracy_axes.legend(loc="lower right")
        for axes in (loss_axes, accuracy_axes):
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
            axes.grid(alpha=0.3)
            if len(rows) == 1:
                axes.set_xlim(epochs[0] - 1, epochs[0] + 1)
        figure.suptitle(title or f"Learning curves: {len(rows)} epochs")
    return figure


def plot_learning_curves(
    history: list[dict], path: str | os.PathLike, title: str | None = None
) -> None:
    """Draw learning_curves_figure(history, title) and save it as a PNG at `path`."""
    save(learning_curves_figure(history, title), path)


# ---- 2. confusion matrix ----------------------------------------------------------------------


def confusion_matrix_figure(matrix: np.ndarray, title: str | None = None) -> Figure:
    """Counts in every cell; off-diagonal cells coloured by count on their own scale, so that
    the large diagonal (green, counts in bold) cannot wash out the confusions."""
    matrix = np.asarray(matrix, dtype=np.int64)
    k = matrix.shape[0]
    off_diagonal = np.ma.masked_array(matrix.astype(np.float64), mask=np.eye(k, dtype=bool))
    highest = max(int(off_diagonal.max() or 0), 1)
    total, right = int(matrix.sum()), int(np.trace(matrix))
    with style():
        import matplotlib

        # The masked diagonal: light green.
        colours = matplotlib.colormaps["Reds"].with_extremes(bad="#c8e6c9")
        figure = new_figure(8.6, 7.4)
        axes = figure.subplots()
        image = axes.imshow(off_diagonal, cmap=colours, vmin=0, vmax=highest)
        cell_font = 10 if k <= 10 else 9
        for true in range(k):
            for predicted in range(k):
                count = int(matrix[true, predicted])
                if true == predicted:
                    colour, weight = "#1b5e20", "bold"
                elif count == 0:
                    colour, weight = "#b0b0b0", "normal"
                else:
                    dark = count > 0.55 * highest
                    colour, weight = ("white" if dark else "black"), "normal"
                axes.text(
                    predicted, true, str(count), ha="center", va="center",
                    fontsize=cell_font, color=colour, fontweight=weight,
                )  # fmt: skip
        axes.set_xticks(range(k))
        axes.set_yticks(range(k))
        axes.set(xlabel="predicted digit", ylabel="true digit")
        axes.xaxis.set_label_position("top")
        axes.xaxis.tick_top()
        axes.tick_params(length=0)
        for spine in axes.spines.values():
            spine.set_visible(False)
        from matplotlib.ticker import MaxNLocator

        bar = figure.colorbar(image, ax=axes, shrink=0.8)
        bar.locator = MaxNLocator(integer=True)
        bar.update_ticks()
        bar.set_label("images taken for another digit (off-diagonal cells)")
        accuracy = f"{100 * right / total:.2f}%" if total else "n/a"
        axes.set_title(
            title or f"Confusion matrix: {total:,} test images, {right:,} right ({accuracy})",
            pad=12,
        )
        figure.supxlabel(
            "Green diagonal: right answers (bold). Red cells: wrong answers, darker = more often.",
            fontsize=10,
        )
    return figure


def plot_confusion_matrix(
    matrix: np.ndarray, path: str | os.PathLike, title: str | None = None
) -> None:
    """Draw confusion_matrix_figure(matrix, title) and save it as a PNG at `path`."""
    save(confusion_matrix_figure(matrix, title), path)


# ---- 3. the mistakes --------------------------------------------------------------------------


def confidence_text(value: float) -> str:
    """A share as a percentage that never rounds a wrong answer's 0.99996 up to 100% or a small
    share down to 0%: '97.3%', '99.996%', '0.042%', '3.1e-05%'."""
    value = float(value)
    if value <= 0 or value >= 1:
        return f"{100 * value:.1f}%"
    if value < 0.001:
        return f"{100 * value:.2g}%"
    decimals = 1
    while round(100 * value, decimals) == 100 and decimals < 6:
        decimals += 1
    if round(100 * value, decimals) == 100:
        return f">{100 - 10.0**-decimals:.{decimals}f}%"
    return f"{100 * value:.{decimals}f}%"


def output_text(value: float, output_name: str) -> str:
    """A probability as a percentage (confidence_text); any other output as a number."""
    return confidence_text(value) if output_name == "probability" else f"{value:.3f}"


def mistakes_figure(
    images: np.ndarray,
    true_labels: Sequence[int],
    predicted: Sequence[int],
    outputs: np.ndarray,
    indices: Sequence[int] | None = None,
    output_name: str = "probability",
    title: str | None = None,
) -> Figure:
    """Each image (28 × 28, ink dark) titled with its true and predicted digit and the output
    for the predicted digit, beside a bar chart of its k outputs (true digit green, predicted
    red). `indices` number the images in the titles (their place in the test set)."""
    images = np.asarray(images)
    outputs = np.asarray(outputs, dtype=np.float64)
    n, k = outputs.shape
    if n == 0:
        raise FastnnError("no mistakes to draw")
    indices = list(range(n)) if indices is None else [int(i) for i in indices]
    pairs_per_row = 1 if n == 1 else 2
    rows = -(-n // pairs_per_row)
    with style():
        from matplotlib.patches import Patch

        figure = new_figure(5.4 * pairs_per_row + (1.2 if n == 1 else 0), 2.3 * rows + 1.2)
        grid = figure.add_gridspec(rows, 2 * pairs_per_row, width_ratios=[1, 1.5] * pairs_per_row)
        for i in range(n):
            row, pair = divmod(i, pairs_per_row)
            true, guess = int(true_labels[i]), int(predicted[i])
            image_axes = figure.add_subplot(grid[row, 2 * pair])
            image_axes.imshow(images[i].reshape(28, 28), cmap="gray_r", interpolation="nearest")
            image_axes.set_xticks([])
            image_axes.set_yticks([])
            for spine in image_axes.spines.values():
                spine.set(visible=True, color=OTHER_COLOUR, linewidth=0.8)
            image_axes.set_title(
                f"test image {indices[i]}\ntrue {true}, predicted {guess}\n"
                f"{output_name} {output_text(outputs[i, guess], output_name)}",
                fontsize=10,
            )
            bar_axes = figure.add_subplot(grid[row, 2 * pair + 1])
            colours = [OTHER_COLOUR] * k
            colours[true], colours[guess] = RIGHT_COLOUR, WRONG_COLOUR
            bar_axes.bar(range(k), outputs[i], color=colours)
            # The true digit's bar is often too short to see: its value is written on it.
            height = outputs[i, true]
            bar_axes.text(
                true, height + 0.04 if height < 0.7 else height - 0.04,
                output_text(height, output_name), rotation=90, ha="center",
                va="bottom" if height < 0.7 else "top", fontsize=9,
                color=RIGHT_COLOUR if height < 0.7 else "white",
            )  # fmt: skip
            bar_axes.set_xticks(range(k))
            for digit, label in enumerate(bar_axes.get_xticklabels()):
                if digit in (true, guess):
                    label.set(color=colours[digit], fontweight="bold")
            bar_axes.set_ylim(0, 1)
            bar_axes.set_yticks([0, 0.5, 1])
            bar_axes.set_xlabel("digit", fontsize=10, labelpad=1)
            bar_axes.set_ylabel(output_name, fontsize=10)
            bar_axes.grid(axis="y", alpha=0.3)
        figure.legend(
            handles=[
                Patch(color=RIGHT_COLOUR, label="true digit"),
                Patch(color=WRONG_COLOUR, label="predicted digit"),
                Patch(color=OTHER_COLOUR, label="other digits"),
            ],
            loc="outside lower center",
            ncols=3,
        )
        named = "The most confident mistake" if n == 1 else f"The {n} most confident mistakes"
        figure.suptitle(title or f"{named} on the test images")
    return figure


def plot_mistakes(
    images: np.ndarray,
    true_labels: Sequence[int],
    predicted: Sequence[int],
    outputs: np.ndarray,
    path: str | os.PathLike,
    indices: Sequence[int] | None = None,
    output_name: str = "probability",
    title: str | None = None,
) -> None:
    """Draw mistakes_figure(...) and save it as a PNG at `path`."""
    figure = mistakes_figure(images, true_labels, predicted, outputs, indices, output_name, title)
    save(figure, path)


# ---- 4. what the first layer looks for --------------------------------------------------------


def first_layer_scale(
    W1: np.ndarray, units: Sequence[int], percentile: float = 99.0
) -> tuple[float, float]:
    """The colour scale ±limit of first_layer_figure, and the share of the drawn weights beyond
    it: limit is the `percentile`-th percentile of |w| over the rows `units` of W1."""
    magnitudes = np.abs(np.asarray(W1, dtype=np.float64)[list(units)])
    limit = float(np.percentile(magnitudes, percentile)) or float(magnitudes.max()) or 1.0
    return limit, float(np.mean(magnitudes > limit))


def first_layer_figure(
    W1: np.ndarray,
    units: Sequence[int] | None = None,
    title: str | None = None,
    percentile: float = 99.0,
) -> Figure:
    """Row j of W1 (hidden, 784) as a 28 × 28 image for each unit j in `units` (default all):
    a diverging colour map centred on zero, one symmetric scale shared by every panel.

    The scale is ±(the `percentile`-th percentile of |w| over the units drawn), so that a few
    large weights do not wash out the rest; the colour bar's arrows stand for the weights
    beyond it, drawn in its end colours. percentile=100 scales to the largest weight.
    """
    W1 = np.asarray(W1, dtype=np.float64)
    if W1.ndim != 2 or W1.shape[1] != 28 * 28:
        raise FastnnError(f"W1 is {list(W1.shape)}: drawing its rows as images needs 784 inputs")
    units = list(range(W1.shape[0])) if units is None else [int(unit) for unit in units]
    if not units:
        raise FastnnError("no units to draw")
    limit, beyond = first_layer_scale(W1, units, percentile)
    # At most 8 columns (5 up to 10 units), rows as evenly filled as they can be.
    rows = -(-len(units) // (8 if len(units) > 10 else 5))
    columns = -(-len(units) // rows)
    with style():
        figure = new_figure(max(1.3 * columns + 1.7, 8.5), 1.45 * rows + 1.7)
        panels = figure.subplots(rows, columns, squeeze=False)
        for place, axes in enumerate(panels.flat):
            axes.set_xticks([])
            axes.set_yticks([])
            if place >= len(units):
                axes.set_visible(False)
                continue
            for spine in axes.spines.values():
                spine.set(visible=True, color=OTHER_COLOUR, linewidth=0.8)
            unit = units[place]
            image = axes.imshow(
                W1[unit].reshape(28, 28), cmap="RdBu_r", vmin=-limit, vmax=limit,
                interpolation="nearest",
            )  # fmt: skip
            axes.set_title(f"unit {unit}", fontsize=10, pad=3)
        bar = figure.colorbar(
            image, ax=panels, shrink=0.9 if rows > 1 else 1.0, aspect=25,
            extend="both" if beyond > 0 else "neither",
        )  # fmt: skip
        bar.set_label("weight W1[unit, pixel]")
        figure.suptitle(
            title or "What the first layer looks for: each unit's weights on the pixels"
        )
        scale = f"One colour scale for all panels, ±{limit:.3g}"
        if beyond > 0:
            scale += f"; the {100 * beyond:.1f}% of weights beyond it take the end colours"
        figure.supxlabel(
            "Each panel: one hidden unit's 784 weights, laid out as the 28 × 28 image.\n"
            "Red: ink on that pixel raises the unit's input z; blue: lowers it; white: no effect."
            f"\n{scale}.",
            fontsize=10,
        )
    return figure


def plot_first_layer(
    W1: np.ndarray,
    path: str | os.PathLike,
    units: Sequence[int] | None = None,
    title: str | None = None,
    percentile: float = 99.0,
) -> None:
    """Draw first_layer_figure(W1, units, title, percentile) and save it as a PNG at `path`."""
    save(first_layer_figure(W1, units, title, percentile), path)


# ---- 5. accuracy per digit --------------------------------------------------------------------


def accuracy_per_digit_figure(
    correct: Sequence[int], totals: Sequence[int], title: str | None = None
) -> Figure:
    """One bar per digit: the share of its test images the network got right, the value on
    the bar, and a dashed line at the accuracy over all images."""
    correct = np.asarray(correct, dtype=np.int64)
    totals = np.asarray(totals, dtype=np.int64)
    k = len(totals)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(totals > 0, 100 * correct / totals, np.nan)
    overall = 100 * correct.sum() / totals.sum() if totals.sum() else float("nan")
    with style():
        figure = new_figure(9, 4.8)
        axes = figure.subplots()
        worst = int(np.nanargmin(shares)) if np.isfinite(shares).any() else -1
        colours = [WRONG_COLOUR if digit == worst else TRAIN_COLOUR for digit in range(k)]
        bars = axes.bar(range(k), np.nan_to_num(shares), color=colours)
        # Inside the bars' tops, in white, where the dashed line cannot cross them.
        axes.bar_label(
            bars, labels=[f"{share:.1f}%" if np.isfinite(share) else "n/a" for share in shares],
            label_type="edge", padding=-18, color="white", fontsize=10, fontweight="bold",
        )  # fmt: skip
        axes.axhline(overall, color="black", linestyle="--", linewidth=1)
        axes.set_xticks(range(k), [f"{digit}\n({total})" for digit, total in enumerate(totals)])
        axes.set_ylim(0, 109)
        axes.set_yticks(range(0, 101, 20))
        axes.set(xlabel="true digit (its number of test images)", ylabel="accuracy (%)")
        axes.set_title(
            title
            or f"Accuracy per digit on {int(totals.sum()):,} test images\n"
            f"dashed line: all digits, {overall:.2f}%; red: the hardest digit"
        )
    return figure


def plot_accuracy_per_digit(
    correct: Sequence[int],
    totals: Sequence[int],
    path: str | os.PathLike,
    title: str | None = None,
) -> None:
    """Draw accuracy_per_digit_figure(correct, totals, title) and save it as a PNG at `path`."""
    save(accuracy_per_digit_figure(correct, totals, title), path)
