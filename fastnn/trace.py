"""One image traced through the equations: every number the network computes for it, in order.

    python -m fastnn.trace model.npz --index 0          test image 0 of MNIST
    python -m fastnn.trace model.npz --image digit.png  a digit image, prepared as MNIST was
    python -m fastnn.trace model.npz --json trace.json  also every array, by its name in the math

The walk is the README's table, one image as a column A0 (784, 1), m = 1:

    forward, l = 1..L:   (1) Z[l] = W[l]·A[l−1] + b[l], then (2) A[l] = g(Z[l]) below the top,
                         (3) A[L] = softmax(Z[L]) at the top (or (2) with g = sigmoid, for (5))
    loss:                (4) cross-entropy, or (5) squared error, for the image's true label
    backward, l = L..1:  (6) or (7) at the top, (8) dW[l] and (9) db[l] every layer,
                         (10) dA[l−1] and (11) dZ[l−1] while l > 1

Each step calls the very kernel training calls (fastnn.kernels), and the NumPy oracle's function
of the same name (fastnn.oracle) on the oracle's own chain of values from the same image, and
records the largest difference between the two.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import cli, kernels, oracle
from .data import resolve_data
from .errors import FastnnError
from .model import Network, atomic_write, load_model
from .training import SLOW_COMPILE_SECONDS, call_if_slow, predict_outputs, to_inputs

PROG = "python -m fastnn.trace"

# The equations as the README's table "The equations and their kernels" writes them.
EQUATIONS = {
    1: "Z[l] = W[l]·A[l−1] + b[l]",
    2: "A[l] = g(Z[l]): ReLU max(0, z), sigmoid 1/(1 + e^−z), tanh",
    3: "A[L] = softmax(Z[L]), each column shifted by its maximum",
    4: "J = −(1/m) Σ Y ⊙ log A[L]",
    5: "J = (1/2m) Σ (A[L] − Y)² (sigmoid output)",
    6: "dZ[L] = A[L] − Y (softmax + cross-entropy)",
    7: "dA[L] = A[L] − Y, dZ[L] = dA[L] ⊙ A[L] ⊙ (1 − A[L]) (sigmoid + squared error)",
    8: "dW[l] = dZ[l]·A[l−1]ᵀ / m",
    9: "db[l] = Σ dZ[l] / m",
    10: "dA[l−1] = W[l]ᵀ·dZ[l]",
    11: "dZ[l] = dA[l] ⊙ g′(Z[l]): ReLU 1 where z > 0 else 0, sigmoid A(1 − A), tanh 1 − A²",
}

# How many of an array's largest entries a summary names, and how long a vector is shown whole.
LARGEST_SHOWN = 5
SHOWN_IN_FULL = 10
IMAGE_SIDE = 28
INK_SHADES = " .:-=+*#%@"  # from blank to full ink, for the 28 × 28 picture of A0


@dataclass(frozen=True)
class Step:
    """One equation applied to the image: what it computed, with which kernel, how exactly."""

    equation: int  # its number in the README's table
    instance: str  # the equation for this layer, e.g. "Z1 = W1·A0 + b1"
    kernel: str  # module.function in kernels/ (fastnn.kernels); the oracle's has the same name
    name: str  # the value's name in the math: "Z1", "J", "dW2", ...
    value: np.ndarray | float
    oracle_difference: float  # largest |kernel − oracle|
    phase: str  # "forward", "loss" or "backward"
    layer: int

    @property
    def text(self) -> str:
        """The equation as the README writes it."""
        return EQUATIONS[self.equation]


@dataclass(repr=False)
class Trace:
    """Every step of one image through the network, and what the network makes of it.

    print(trace) shows it as the command does; trace.arrays holds every array by its name in
    the math; trace.write_json(path) writes them all.
    """

    sizes: tuple[int, ...]
    activation: str
    loss_name: str
    dtype: str
    A0: np.ndarray  # the image as a column (n_in, 1), in the network's float type
    Y: np.ndarray  # its label one-hot, (k, 1)
    label: int
    label_given: bool  # False: the label is the predicted digit, assumed for want of one
    predicted: int  # the digit predict gives (fastnn.training.predict_outputs ... argmax)
    steps: list[Step] = field(default_factory=list)
    classes: tuple[int, ...] = tuple(range(10))  # the label each output row stands for

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        """Every array of the trace by its name in the math: A0, Y, Z1, A1, ..., dW1, db1."""
        named = {"A0": self.A0, "Y": self.Y}
        named.update((s.name, s.value) for s in self.steps if isinstance(s.value, np.ndarray))
        return named

    @property
    def J(self) -> float:
        """The loss (4) or (5) for the label."""
        return next(float(s.value) for s in self.steps if s.name == "J")

    @property
    def output(self) -> np.ndarray:
        """A[L], the network's output for the image, (k, 1)."""
        return self.arrays[f"A{len(self.sizes) - 1}"]

    @property
    def largest_output(self) -> int:
        """The label of A[L]'s largest row: the trace's own answer."""
        return self.classes[int(self.output.argmax())]

    @property
    def largest_oracle_difference(self) -> float:
        return max(step.oracle_difference for step in self.steps)

    def to_json(self) -> dict:
        """Every array as nested lists (columns stay (n, 1)), the loss, label and prediction,
        and each step's equation, kernel and difference from the oracle."""
        document: dict = {
            "model": {
                "sizes": list(self.sizes),
                "activation": self.activation,
                "loss": self.loss_name,
                "dtype": self.dtype,
            },
            "label": self.label,
            "label_given": self.label_given,
            "predicted": self.predicted,
            "classes": list(self.classes),
            "J": self.J,
        }
        document.update((name, array.tolist()) for name, array in self.arrays.items())
        document["steps"] = [
            {
                "equation": step.equation,
                "text": step.text,
                "instance": step.instance,
                "kernel": step.kernel,
                "name": step.name,
                "shape": list(np.shape(step.value)),
                "oracle_difference": step.oracle_difference,
            }
            for step in self.steps
        ]
        return document

    def write_json(self, path: str | os.PathLike) -> None:
        """Write to_json() to `path`, atomically (the old file or the new one, never half)."""
        text = json.dumps(self.to_json(), indent=1) + "\n"
        try:
            atomic_write(path, lambda file: file.write(text.encode()))
        except OSError as error:
            raise FastnnError(f"{path}: cannot write: {error.strerror or error}") from None

    def __repr__(self) -> str:
        shape = "-".join(map(str, self.sizes))
        return (
            f"fastnn.trace.Trace({shape}, label {self.label}, predicted {self.predicted}, "
            f"J = {self.J:.6g}, {len(self.steps)} steps)"
        )

    def __str__(self) -> str:
        return self.report()

    def report(self) -> str:
        """The trace as text: per step the equation, the kernel, the shape, the values and the
        difference from the oracle; then the loss and the predicted digit."""
        L = len(self.sizes) - 1
        lines = [f"A0: the image as a column, {describe_shape(self.A0)}, pixels scaled to [0, 1]"]
        lines += indent(summarise("A0", self.A0, self.sizes[0]))
        if self.A0.size == IMAGE_SIDE * IMAGE_SIDE:
            lines += indent(["pixel (r, c) is row r, column c of the 28 × 28 image:"])
            lines += indent(picture(self.A0))
        label_note = "" if self.label_given else " (no label given: the predicted digit assumed)"
        lines += [
            f"Y: the label {self.label} one-hot, {describe_shape(self.Y)}{label_note}",
            "",
            "Each step calls its kernel in kernels/, and the NumPy oracle's function of the "
            "same name (fastnn/oracle.py)",
            "on the oracle's own values from the same image; the largest difference is shown.",
        ]
        heading = None
        for step in self.steps:
            if step.phase == "loss":
                title = f"loss, for the label {self.label}"
            else:
                title = f"{step.phase}, layer {step.layer} of {L}"
            if title != heading:
                lines += ["", f"== {title}"]
                heading = title
            n_in = self.sizes[step.layer - 1] if step.layer else 0
            lines += [
                f"({step.equation}) {step.text}",
                f"     {step.instance}   kernel {step.kernel}   {describe_shape(step.value)}",
                *indent(summarise(step.name, step.value, n_in), 5),
                f"     largest |kernel − oracle|: {step.oracle_difference:.1e}",
            ]
        top = self.largest_output
        if top == self.predicted:
            agree = f"fastnn's predict gives {self.predicted} too"
        else:
            agree = f"but fastnn's predict gives {self.predicted}"
        row = int(self.output.argmax())
        lines += [
            "",
            f"predicted digit: {top}, the largest entry of A{L} "
            f"(A{L}[{row}] = {number(self.output[row, 0])}); {agree}",
            f"true label: {self.label}{label_note}; loss J = {self.J:.6g}",
            f"largest difference from the oracle over all {len(self.steps)} steps: "
            f"{self.largest_oracle_difference:.1e} ({self.dtype})",
        ]
        return "\n".join(lines)


# ---- the walk --------------------------------------------------------------------------------


class _Chains:
    """The kernels' chain of values and the oracle's, side by side, from the same image."""

    def __init__(self, dtype: np.dtype, A0: np.ndarray, Y: np.ndarray) -> None:
        self.dtype = dtype
        self.kernel = {"A0": A0, "Y": Y}
        self.oracle = {"A0": A0, "Y": Y}
        self.steps: list[Step] = []

    def apply(
        self,
        kernel: str,
        outputs: Sequence[tuple[str, tuple[int, ...]] | str],
        inputs: Sequence[str | np.ndarray],
        equations: Sequence[int],
        instances: Sequence[str],
        phase: str,
        layer: int,
    ) -> None:
        """Call kernels.<kernel> (outputs first, then inputs, as every kernel takes them) and
        oracle.<function> on the inputs, each from its own chain; record one step per output.

        An input named by a string is a value of the chains; an array (W, b) is shared by both.
        An output given as a bare name is the number a loss kernel returns.
        """
        module_name, function_name = kernel.split(".")
        module = importlib.import_module(f"{kernels.__name__}.{module_name}")
        kernel_function = getattr(module, function_name)
        oracle_function = getattr(oracle, function_name)
        kernel_inputs = [self.kernel[x] if isinstance(x, str) else x for x in inputs]
        oracle_inputs = [self.oracle[x] if isinstance(x, str) else x for x in inputs]
        oracle_values = oracle_function(*oracle_inputs)
        if isinstance(outputs[0], str):  # a loss: the kernel returns J
            names = list(outputs)
            kernel_values = [float(kernel_function(*kernel_inputs))]
            oracle_values = [float(oracle_values)]
        else:
            names = [name for name, _ in outputs]
            kernel_values = [np.zeros(shape, dtype=self.dtype) for _, shape in outputs]
            kernel_function(*kernel_values, *kernel_inputs)
            if not isinstance(oracle_values, tuple):
                oracle_values = (oracle_values,)
        for name, equation, instance, mine, theirs in zip(
            names, equations, instances, kernel_values, oracle_values, strict=True
        ):
            self.kernel[name], self.oracle[name] = mine, theirs
            difference = float(np.max(np.abs(np.asarray(mine) - np.asarray(theirs))))
            self.steps.append(
                Step(equation, instance, kernel, name, mine, difference, phase, layer)
            )


def network_of(model: object) -> Network:
    """The internal Network of a fastnn Model, a Network itself, or a model file's path."""
    if isinstance(model, Network):
        return model
    if isinstance(model, (str, os.PathLike)):
        return load_model(model)
    network = getattr(model, "network", None)
    if isinstance(network, Network):
        return network
    raise FastnnError(
        f"cannot trace a {type(model).__name__}: give a fastnn model, a Network or a model file"
    )


def labels_of(net: Network) -> tuple[int, ...]:
    """The label each output row stands for: the network's classes, or 0 .. k-1."""
    classes = getattr(net, "classes", None)
    return tuple(range(net.sizes[-1])) if classes is None else tuple(int(c) for c in classes)


def trace(model: object, image: np.ndarray, label: int | None = None) -> Trace:
    """Walk one image through every numbered equation of the README, with the kernels.

    `model`: a fastnn model (its `.network`), a fastnn.model.Network, or a model file's path.
    `image`: n_in pixels in any shape ((28, 28) or (784,)): uint8 is scaled to [0, 1] as
    training scales it (fastnn.training.to_inputs), floats are used as given.
    `label`: the image's true label, for the loss (4) or (5) and the gradients; None takes the
    digit the network predicts (the Trace says so).
    """
    net = network_of(model)
    dtype = np.dtype(net.dtype)
    pixels = np.asarray(image)
    if pixels.dtype != np.uint8 and pixels.dtype.kind != "f":
        raise FastnnError(f"the image must be uint8 pixels or floats, not {pixels.dtype}")
    if pixels.size != net.sizes[0]:
        raise FastnnError(
            f"the image has {pixels.size} values; the network takes {net.sizes[0]} inputs"
        )
    X = to_inputs(pixels.reshape(1, -1), str(dtype))  # (1, n_in), as predict takes rows
    if not np.all(np.isfinite(X)):
        raise FastnnError("the image holds NaN or infinity")
    k = net.sizes[-1]
    classes = labels_of(net)
    predicted = classes[int(predict_outputs(net, pixels.reshape(1, -1)).argmax(axis=1)[0])]
    label_given = label is not None
    if label is None:
        label = predicted
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or label not in classes:
        raise FastnnError(
            f"the label must be one of the network's labels {describe(classes)}, not {label!r}"
        )
    label = int(label)
    row = classes.index(label)  # the output row that stands for the label
    A0 = np.ascontiguousarray(X.reshape(-1, 1))  # samples are columns: (n_in, 1)
    Y = np.zeros((k, 1), dtype=dtype)
    Y[row, 0] = 1
    chains = _Chains(dtype, A0, Y)
    layers = net.parameters()
    L = len(layers)
    g = net.activation

    for l, (W, b) in enumerate(layers, start=1):
        shape = (W.shape[0], 1)
        chains.apply(
            "dense.dense_forward", [(f"Z{l}", shape)], [W, f"A{l - 1}", b],
            [1], [f"Z{l} = W{l}·A{l - 1} + b{l}"], "forward", l,
        )  # fmt: skip
        if l < L:
            chains.apply(
                f"activations.{g}_forward", [(f"A{l}", shape)], [f"Z{l}"],
                [2], [f"A{l} = {g}(Z{l})"], "forward", l,
            )  # fmt: skip
        elif net.loss == "cross-entropy":
            chains.apply(
                "output.softmax_forward", [(f"A{l}", shape)], [f"Z{l}"],
                [3], [f"A{l} = softmax(Z{l})"], "forward", l,
            )  # fmt: skip
        else:  # squared error reads a sigmoid output: (2) with g = sigmoid, at the top
            chains.apply(
                "activations.sigmoid_forward", [(f"A{l}", shape)], [f"Z{l}"],
                [2], [f"A{l} = sigmoid(Z{l}), the output layer"], "forward", l,
            )  # fmt: skip

    if net.loss == "cross-entropy":  # read from the logits: finite even where A rounds to 0
        chains.apply(
            "output.cross_entropy_loss", ["J"], [f"Z{L}", "Y"],
            [4], [f"J = −log A{L}[{row}] (m = 1, Y one-hot at {row})"], "loss", 0,
        )  # fmt: skip
    else:
        chains.apply(
            "output.mse_loss", ["J"], [f"A{L}", "Y"],
            [5], [f"J = ½ Σ (A{L} − Y)² (m = 1)"], "loss", 0,
        )  # fmt: skip

    top = (k, 1)
    if net.loss == "cross-entropy":
        chains.apply(
            "output.output_error", [(f"dZ{L}", top)], [f"A{L}", "Y"],
            [6], [f"dZ{L} = A{L} − Y"], "backward", L,
        )  # fmt: skip
    else:
        chains.apply(
            "output.output_error", [(f"dA{L}", top)], [f"A{L}", "Y"],
            [7], [f"dA{L} = A{L} − Y"], "backward", L,
        )  # fmt: skip
        chains.apply(
            "activations.sigmoid_backward", [(f"dZ{L}", top)], [f"dA{L}", f"A{L}"],
            [7], [f"dZ{L} = dA{L} ⊙ A{L} ⊙ (1 − A{L})"], "backward", L,
        )  # fmt: skip
    for l in range(L, 0, -1):
        W, _ = layers[l - 1]
        chains.apply(
            "dense.dense_backward", [(f"dW{l}", W.shape), (f"db{l}", (W.shape[0],))],
            [f"dZ{l}", f"A{l - 1}"], [8, 9],
            [f"dW{l} = dZ{l}·A{l - 1}ᵀ / 1", f"db{l} = Σ dZ{l} / 1 (one column)"],
            "backward", l,
        )  # fmt: skip
        if l > 1:
            below = (W.shape[1], 1)
            chains.apply(
                "dense.dense_backward_input", [(f"dA{l - 1}", below)], [f"dZ{l}", W],
                [10], [f"dA{l - 1} = W{l}ᵀ·dZ{l}"], "backward", l,
            )  # fmt: skip
            # (11) belongs to layer l − 1, the one whose Z it differentiates through
            derivative = {
                "relu": (f"dA{l - 1}", f"Z{l - 1}", f"[Z{l - 1} > 0]"),
                "sigmoid": (f"dA{l - 1}", f"A{l - 1}", f"A{l - 1} ⊙ (1 − A{l - 1})"),
                "tanh": (f"dA{l - 1}", f"A{l - 1}", f"(1 − A{l - 1}²)"),
            }[g]
            chains.apply(
                f"activations.{g}_backward", [(f"dZ{l - 1}", below)], list(derivative[:2]),
                [11], [f"dZ{l - 1} = dA{l - 1} ⊙ {derivative[2]}"], "backward", l - 1,
            )  # fmt: skip

    return Trace(
        net.sizes, net.activation, net.loss, str(dtype), A0, Y, label, label_given, predicted,
        chains.steps, classes,
    )  # fmt: skip


# ---- text ------------------------------------------------------------------------------------


def describe(labels: Sequence[int]) -> str:
    """0-9 for a run of consecutive labels, else the list."""
    if list(labels) == list(range(labels[0], labels[0] + len(labels))):
        return f"{labels[0]}-{labels[-1]}"
    return ", ".join(map(str, labels))


def describe_shape(value: np.ndarray | float) -> str:
    shape = np.shape(value)
    return "a number" if shape == () else f"shape {shape}"


def number(value: float) -> str:
    return f"{value:.4g}"


def indent(lines: list[str], spaces: int = 2) -> list[str]:
    return [" " * spaces + line for line in lines]


def where(index: tuple[int, ...], shape: tuple[int, ...], n_in: int) -> str:
    """An entry's place: "[5]" in a column, "[3, 412]" in a matrix, and the pixel's (row,
    column) in the 28 × 28 image when the index runs over the image's pixels."""
    if len(shape) == 2 and shape[1] == 1:
        index = index[:1]
    text = f"[{', '.join(map(str, index))}]"
    over_pixels = n_in == IMAGE_SIDE * IMAGE_SIDE and (
        shape[0] == n_in if len(index) == 1 else shape[-1] == n_in
    )
    if over_pixels:
        pixel = index[-1]
        text += f" = pixel ({pixel // IMAGE_SIDE}, {pixel % IMAGE_SIDE})"
    return text


def summarise(name: str, value: np.ndarray | float, n_in: int = 0) -> list[str]:
    """A number or a vector of 10 or fewer in full; a larger array as shape, min, max, norm,
    how many entries are not zero, and its largest entries (by size) and where they are."""
    if np.ndim(value) == 0:
        return [f"{name} = {float(value):.6g}"]
    array = np.asarray(value)
    if array.size <= SHOWN_IN_FULL:
        flat = array.ravel()
        cells = [number(v) for v in flat.tolist()]
        width = max(len(cell) for cell in cells) + 1
        label_width = max(len(name), 3)
        return [
            "row".rjust(label_width) + "".join(str(i).rjust(width) for i in range(flat.size)),
            name.rjust(label_width) + "".join(cell.rjust(width) for cell in cells),
        ]
    magnitude = np.abs(array).ravel()
    order = np.argsort(-magnitude, kind="stable")[:LARGEST_SHOWN]
    largest = [
        f"{number(array.flat[i])} at {where(np.unravel_index(i, array.shape), array.shape, n_in)}"
        for i in order.tolist()
    ]
    return [
        f"{name}: min {number(array.min())}, max {number(array.max())}, "
        f"norm {number(np.linalg.norm(array))}, {np.count_nonzero(array)} of {array.size} not 0",
        f"largest by size: {'; '.join(largest)}",
    ]


def picture(A0: np.ndarray) -> list[str]:
    """The 28 × 28 image as text in a frame, two characters a pixel, denser ones for more ink."""
    pixels = np.clip(A0.reshape(IMAGE_SIDE, IMAGE_SIDE), 0, 1)
    shades = np.rint(pixels * (len(INK_SHADES) - 1)).astype(int)
    edge = "+" + "-" * (2 * IMAGE_SIDE) + "+"
    rows = ["|" + "".join(INK_SHADES[s] * 2 for s in row) + "|" for row in shades.tolist()]
    return [edge, *rows, edge]


# ---- the command -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = cli.Parser(
        prog=PROG,
        description="Walk one image through every numbered equation of the README, forward "
        "(1)-(3), the loss (4) or (5) and backward (6)-(11), with the kernels training uses: "
        "for each step the equation, the kernel, the shape, the values, and the largest "
        "difference from the NumPy oracle; then the predicted digit.",
    )
    parser.add_argument("model", type=cli.existing_file, help="a model file from --save")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--index",
        type=cli.whole_number(0),
        metavar="N",
        help="trace MNIST test image N, counting from 0 (default: 0)",
    )
    source.add_argument(
        "--image",
        type=cli.existing_file,
        metavar="FILE",
        help="trace a PNG or JPEG digit, prepared as MNIST was (needs Pillow: the [plot] extra)",
    )
    parser.add_argument(
        "--label",
        type=int,
        metavar="D",
        help="with --image: the digit it really is, for the loss and the gradients "
        "(default: the predicted digit, and the output says so)",
    )
    parser.add_argument(
        "--data",
        metavar="PATH",
        help="where the MNIST test images are, as for python -m fastnn.train (default: "
        "$FASTNN_DATA, else the cache folder, else a download)",
    )
    parser.add_argument(
        "--json",
        type=cli.output_path,
        metavar="PATH",
        help="also write every array of the trace (A0, Z1, A1, ..., dW1, db1), the loss J, the "
        "label and the predicted digit to this JSON file",
    )
    return parser


def read_image_file(path: Path) -> np.ndarray:
    """The 28 × 28 uint8 image the network sees, from fastnn.images (imported only here)."""
    try:
        from .images import read_digit
    except ModuleNotFoundError as error:
        if error.name != f"{__package__}.images":
            raise
        raise FastnnError(
            "--image needs fastnn.images, which this installation of fastnn does not have"
        ) from None
    return read_digit(path)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.label is not None and args.image is None:
        parser.error("--label goes with --image; a test image has its own label")
    net = load_model(args.model)
    shape = "-".join(str(n) for n in net.sizes)
    print(f"model: {args.model} ({shape}, {net.activation}, {net.loss}, {net.dtype})")
    if args.image is not None:
        image, label = read_image_file(args.image), args.label
        print(f"image: {args.image}, prepared as MNIST was (28 × 28)")
    else:
        index = 0 if args.index is None else args.index
        dataset = resolve_data(args.data)
        if dataset.test_images is None:
            raise FastnnError(f"{dataset.source}: has no test set; use --image to trace a file")
        count = len(dataset.test_labels)
        if index >= count:
            raise FastnnError(
                f"--index {index} is out of range: {dataset.source} has {count} test images "
                f"(0-{count - 1})"
            )
        image, label = dataset.test_images[index], int(dataset.test_labels[index])
        print(f"image: test image {index} of {dataset.source}, label {label}")
    if image.size != net.sizes[0]:
        raise FastnnError(
            f"{args.model}: the network takes {net.sizes[0]} inputs; the image has {image.size}"
        )
    # The first call of each kernel on a machine compiles it (later runs load it from a cache).
    with call_if_slow(cli.say_compiling, SLOW_COMPILE_SECONDS):
        result = trace(net, image, label)
    print(result.report())
    if args.json:
        result.write_json(args.json)
        print(f"wrote every array of the trace to {args.json}")
    return 0


def entry_point() -> None:
    cli.run(PROG, lambda: main(sys.argv[1:]))


if __name__ == "__main__":
    entry_point()
