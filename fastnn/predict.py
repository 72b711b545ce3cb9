"""python -m fastnn.predict: use a saved network.

    python -m fastnn.predict model.npz                              accuracy on the MNIST test set
    python -m fastnn.predict model.npz --csv test.csv --out sub.csv a Kaggle submission
    python -m fastnn.predict model.npz --image 7.png 3.jpg         your own digits

A labelled CSV (a Kaggle train.csv) also gets its accuracy reported. Images are prepared as
MNIST's were (fastnn.images.prepare_digit); --out then writes file,label,probability, and
--save-seen DIR keeps the 28 x 28 image the network saw of each.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

import numpy as np

from . import cli
from .data import load_kaggle_csv, resolve_data
from .errors import FastnnError
from .images import read_digit, save_digit
from .model import Network, atomic_write, load_model
from .training import (
    BACKENDS,
    SLOW_COMPILE_SECONDS,
    call_if_slow,
    predict_outputs,
)

PROG = "python -m fastnn.predict"


DESCRIPTION = """\
Use a saved fastnn network: report its accuracy on the MNIST test images (the default),
predict the digits of a Kaggle digit-recognizer CSV and write a submission file (--csv),
or read digits you wrote yourself from PNG or JPEG files and print the three likeliest
digits of each, with their probabilities (--image).
"""
IMAGE_EPILOG = """\
Each --image holds one digit, and is prepared as MNIST's digits were:
  grey levels; a light digit on black (an image whose border is light is inverted);
  cropped to the ink; the longer side scaled to 20 pixels, keeping the aspect ratio;
  placed in a 28 x 28 frame by its centre of mass.
Reading images needs Pillow: pip install "fastnn-loops[plot]"
"""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown; the description's and epilog's lines kept as written."""


def build_parser() -> argparse.ArgumentParser:
    parser = cli.Parser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=IMAGE_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("model", type=cli.existing_file, help="a model file from --save")
    parser.add_argument(
        "--data",
        metavar="PATH",
        help="where the MNIST test images are: as for python -m fastnn.train",
    )
    parser.add_argument(
        "--csv", type=cli.existing_file, metavar="PATH", help="predict this Kaggle CSV instead"
    )
    parser.add_argument(
        "--image",
        nargs="+",
        type=cli.existing_file,
        metavar="FILE",
        help="predict the digit in each of these images (PNG, JPEG) instead",
    )
    parser.add_argument(
        "--out",
        type=cli.output_path,
        metavar="PATH",
        help="with --csv: write the predictions here as ImageId,Label (ImageId from 1); with "
        "--image: as file,label,probability, one row per image",
    )
    parser.add_argument(
        "--save-seen",
        type=folder_to_write,
        metavar="DIR",
        help="with --image: save the 28 x 28 image the network saw of each FILE as "
        "DIR/<name>.png (DIR is made if missing)",
    )
    parser.add_argument("--backend", choices=BACKENDS, default="numba")
    parser.add_argument("--threads", type=cli.whole_number(1), default=None)
    return parser


def folder_to_write(text: str) -> Path:
    """A folder to write into: it may be missing, but then its parent must exist."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a file; name a folder")
    if not path.exists() and not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"the folder holding {text!r} does not exist")
    return path


def submission_text(labels: np.ndarray) -> str:
    rows = [f"{image_id},{label}" for image_id, label in enumerate(labels.tolist(), start=1)]
    return "ImageId,Label\n" + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.image and (args.csv or args.data):
        parser.error("--image goes without --csv and --data")
    if args.out and not (args.csv or args.image):
        parser.error("--out goes with --csv or --image")
    if args.save_seen and not args.image:
        parser.error("--save-seen goes with --image")
    cli.set_threads(args.threads)
    net = load_model(args.model)
    shape = "-".join(str(n) for n in net.sizes)
    print(f"model: {args.model} ({shape}, {net.activation}, {net.loss}, {net.dtype})")
    if net.sizes[0] != 784 or net.sizes[-1] != 10:
        raise FastnnError(
            f"{args.model}: the network is {shape}; MNIST needs 784 inputs, 10 outputs"
        )

    if args.image:
        return predict_images(net, args.image, args.out, args.save_seen, args.backend)
    if args.csv:
        images, labels = load_kaggle_csv(args.csv)
        source = str(args.csv)
    else:
        dataset = resolve_data(args.data)
        if dataset.test_images is None:
            raise FastnnError(f"{dataset.source}: has no test set; use --csv to predict a CSV")
        images, labels, source = dataset.test_images, dataset.test_labels, dataset.source
    compile_once(net, images, args.backend)  # uint8 pixels or floats: predict_outputs takes both
    predicted = predict_outputs(net, images, args.backend).argmax(axis=1)
    if labels is not None:
        correct = float(np.mean(predicted == labels))
        print(f"accuracy: {100 * correct:.2f}% on {len(labels)} images from {source}")
    if args.out:
        text = submission_text(predicted)
        try:
            atomic_write(args.out, lambda file: file.write(text.encode()))
        except OSError as error:
            raise FastnnError(f"{args.out}: cannot write: {error.strerror or error}") from None
        print(f"wrote {len(predicted)} predictions to {args.out}")
    elif labels is None:
        print(f"{source} has no labels: add --out PATH to write the predictions")
    return 0


def compile_once(net: Network, inputs: np.ndarray, backend: str) -> None:
    """Predict the first image alone: the first call compiles (or loads) the kernels, and with
    one image the note printed if it is slow can only be about compiling."""
    with call_if_slow(cli.say_compiling if backend == "numba" else None, SLOW_COMPILE_SECONDS):
        predict_outputs(net, inputs[:1], backend)


def probabilities(net: Network, outputs: np.ndarray) -> np.ndarray:
    """Each row of the output layer as probabilities: softmax's already are; a squared-error
    network's sigmoid outputs are divided by their sum."""
    if net.loss == "cross-entropy":
        return outputs
    return outputs / outputs.sum(axis=1, keepdims=True)


def predict_images(
    net: Network, paths: list[Path], out: Path | None, save_seen: Path | None, backend: str
) -> int:
    """--image: read and prepare every file first (a bad one stops everything, with nothing
    written), then print the three likeliest digits of each, then write --out and --save-seen."""
    digits = np.stack([read_digit(path) for path in paths])  # (n, 28, 28) uint8
    inputs = digits.reshape(len(paths), -1)  # pixels, scaled as predict_outputs reads them
    compile_once(net, inputs, backend)
    chances = probabilities(net, predict_outputs(net, inputs, backend))
    top = np.argsort(-chances, axis=1, kind="stable")[:, :3]
    if net.loss != "cross-entropy":
        print("(a squared-error network: its sigmoid outputs, scaled to sum to 1)")
    names = [str(path) for path in paths]
    width = max(len(name) for name in names)
    print(f"{'image':<{width}}  three likeliest digits")
    for name, row, order in zip(names, chances, top, strict=True):
        guesses = "   ".join(f"{net.classes[unit]} {100 * row[unit]:6.2f}%" for unit in order)
        print(f"{name:<{width}}  {guesses}")

    if out:
        text = io.StringIO(newline="")
        table = csv.writer(text, lineterminator="\n")
        table.writerow(["file", "label", "probability"])
        for name, row, order in zip(names, chances, top, strict=True):
            table.writerow([name, int(net.classes[order[0]]), f"{row[order[0]]:.6f}"])
        try:
            atomic_write(out, lambda file: file.write(text.getvalue().encode()))
        except OSError as error:
            raise FastnnError(f"{out}: cannot write: {error.strerror or error}") from None
        print(f"wrote {len(names)} predictions to {out}")
    if save_seen:
        try:
            save_seen.mkdir(exist_ok=True)
        except OSError as error:
            raise FastnnError(f"{save_seen}: cannot make the folder: {error.strerror}") from None
        seen_names = seen_file_names(paths)
        for digit, seen_name in zip(digits, seen_names, strict=True):
            save_digit(save_seen / seen_name, digit)
        print(f"saved the {len(paths)} images the network saw (28 x 28) in {save_seen}")
    return 0


def seen_file_names(paths: list[Path]) -> list[str]:
    """<name>.png for each file (7.jpg -> 7.png); a name met again gets -2, -3 ..."""
    names: list[str] = []
    for path in paths:
        name, number = f"{path.stem}.png", 2
        while name in names:
            name, number = f"{path.stem}-{number}.png", number + 1
        names.append(name)
    return names


def entry_point() -> None:
    cli.run(PROG, lambda: main(sys.argv[1:]))


if __name__ == "__main__":
    entry_point()
