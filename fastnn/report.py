"""What `python -m fastnn.show` reports, as numbers and text: no matplotlib needed.

The confusion matrix and the accuracy per digit come from the test labels and the network's
predictions; the most frequent confusions are named in words ("4 taken for 9: 23 times"); the
mistakes worth looking at are the wrong answers given with the highest confidence; the first
layer's units to draw are sampled evenly when the layer is wide. `index_html` puts it all on one
page beside the figures.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """Counts (n_classes, n_classes): row = true class, column = predicted class."""
    labels = np.asarray(labels, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    if labels.shape != predicted.shape:
        raise ValueError(f"{labels.shape[0]} labels but {predicted.shape[0]} predictions")
    cells = np.bincount(labels * n_classes + predicted, minlength=n_classes * n_classes)
    return cells.reshape(n_classes, n_classes)


@dataclass(frozen=True)
class Confusion:
    """`count` test images of `true` were predicted as `predicted`."""

    true: int
    predicted: int
    count: int

    def __str__(self) -> str:
        times = "time" if self.count == 1 else "times"
        return f"{self.true} taken for {self.predicted}: {self.count} {times}"


def top_confusions(matrix: np.ndarray, n: int = 5) -> list[Confusion]:
    """The n largest off-diagonal counts, largest first (ties: by true, then predicted digit);
    cells of zero are left out."""
    cells = [
        Confusion(true, predicted, int(matrix[true, predicted]))
        for true in range(matrix.shape[0])
        for predicted in range(matrix.shape[1])
        if true != predicted and matrix[true, predicted] > 0
    ]
    cells.sort(key=lambda cell: (-cell.count, cell.true, cell.predicted))
    return cells[:n]


def accuracy_per_class(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(correct, totals) per true class, from the diagonal and the row sums."""
    return np.diag(matrix).copy(), matrix.sum(axis=1)


def fraction_text(correct: int, total: int) -> str:
    return f"{100 * correct / total:.2f}%" if total else "n/a"


def format_confusion_matrix(matrix: np.ndarray) -> str:
    """The matrix as a text table: rows true digit, columns predicted digit, counts."""
    k = matrix.shape[0]
    width = max(5, len(str(int(matrix.max()))) + 1)
    header = "true \\ predicted" + "".join(f"{column:>{width}}" for column in range(k))
    lines = [header]
    for true in range(k):
        cells = "".join(f"{int(count):>{width}}" for count in matrix[true])
        lines.append(f"{true:>16}{cells}")
    return "\n".join(lines)


def format_accuracy_per_class(matrix: np.ndarray) -> str:
    """One line per true digit: its images, how many the network got right, the accuracy."""
    correct, totals = accuracy_per_class(matrix)
    lines = [f"{'digit':>5}  {'images':>6}  {'right':>6}  {'accuracy':>8}"]
    for digit, (right, total) in enumerate(zip(correct.tolist(), totals.tolist(), strict=True)):
        lines.append(f"{digit:>5}  {total:>6}  {right:>6}  {fraction_text(right, total):>8}")
    lines.append(
        f"{'all':>5}  {int(totals.sum()):>6}  {int(correct.sum()):>6}  "
        f"{fraction_text(int(correct.sum()), int(totals.sum())):>8}"
    )
    return "\n".join(lines)


def most_confident_mistakes(outputs: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Indices of up to n wrongly predicted samples, the highest output for the predicted class
    first (ties: lower index first)."""
    predicted = outputs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = outputs[wrong, predicted[wrong]]
    order = np.lexsort((wrong, -confidence.astype(np.float64)))
    return wrong[order[:n]]


def sample_units(n_units: int, max_units: int = 32) -> np.ndarray:
    """All units if there are at most max_units, else every s-th from 0, s = ceil(n/max_units):
    the same units every time, spread over the whole layer."""
    step = -(-n_units // max_units)
    return np.arange(0, n_units, step)


def describe_units(units: np.ndarray, n_units: int) -> str:
    """'all 10 units' or '32 of the 128 units (every 4th): 0, 4, 8, ..., 124'."""
    if len(units) == n_units:
        return f"all {n_units} hidden units"
    step = int(units[1] - units[0]) if len(units) > 1 else n_units
    listed = ", ".join(str(unit) for unit in units.tolist())
    return f"{len(units)} of the {n_units} hidden units (every {ordinal(step)}): {listed}"


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# ---- the page ---------------------------------------------------------------------------------


@dataclass
class Figure:
    """One figure on the page: its file (relative to the page), a heading and a caption."""

    file: str
    heading: str
    caption: str


PAGE_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em;
       color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th { background: #f3f3f3; }
td.name { text-align: left; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; }
img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figure { margin: 1.5em 0 2.5em; }
figcaption { max-width: 60em; }
.note { color: #8a4b00; }
"""


def html_table(rows: Sequence[tuple[str, str]]) -> str:
    cells = "".join(
        f'<tr><td class="name">{html.escape(name)}</td><td>{html.escape(value)}</td></tr>'
        for name, value in rows
    )
    return f"<table>{cells}</table>"


def confusion_html(matrix: np.ndarray) -> str:
    k = matrix.shape[0]
    head = "<tr><th>true \\ predicted</th>" + "".join(f"<th>{j}</th>" for j in range(k)) + "</tr>"
    body = "".join(
        f"<tr><th>{i}</th>"
        + "".join(
            f"<td><b>{int(matrix[i, j])}</b></td>" if i == j else f"<td>{int(matrix[i, j])}</td>"
            for j in range(k)
        )
        + "</tr>"
        for i in range(k)
    )
    return f"<table>{head}{body}</table>"


def accuracy_html(matrix: np.ndarray) -> str:
    correct, totals = accuracy_per_class(matrix)
    head = "<tr><th>digit</th><th>images</th><th>right</th><th>accuracy</th></tr>"
    body = "".join(
        f"<tr><th>{digit}</th><td>{total}</td><td>{right}</td>"
        f"<td>{fraction_text(right, total)}</td></tr>"
        for digit, (right, total) in enumerate(zip(correct.tolist(), totals.tolist(), strict=True))
    )
    return f"<table>{head}{body}</table>"


def index_html(
    title: str,
    facts: Sequence[tuple[str, str]],
    settings: Mapping[str, object] | None,
    matrix: np.ndarray,
    confusions: Sequence[Confusion],
    figures: Sequence[Figure],
    notes: Sequence[str],
) -> str:
    """The page: the run's facts and settings, every figure with its caption, the text tables."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{PAGE_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<h2>The network and its scores</h2>",
        html_table(facts),
    ]
    if settings:
        parts += [
            "<h2>The run's settings</h2>",
            html_table([(name, "—" if v is None else str(v)) for name, v in settings.items()]),
        ]
    parts += [f'<p class="note">{html.escape(note)}</p>' for note in notes]
    if confusions:
        items = "".join(f"<li>{html.escape(str(confusion))}</li>" for confusion in confusions)
        parts += ["<h2>The most frequent confusions</h2>", f"<ol>{items}</ol>"]
    for figure in figures:
        parts += [
            f"<h2>{html.escape(figure.heading)}</h2>",
            f'<figure><img src="{html.escape(figure.file)}" alt="{html.escape(figure.heading)}">',
            f"<figcaption>{html.escape(figure.caption)}</figcaption></figure>",
        ]
    parts += [
        "<h2>Confusion matrix (counts)</h2>",
        "<p>Rows: the true digit; columns: the digit the network answered; the diagonal, in "
        "bold, is right.</p>",
        confusion_html(matrix),
        "<h2>Accuracy per digit</h2>",
        accuracy_html(matrix),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
