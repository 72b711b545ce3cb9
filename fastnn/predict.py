"""python -m fastnn.predict: use a saved network.

    python -m fastnn.predict model.npz                              accuracy on the MNIST test set
    python -m fastnn.predict model.npz --csv test.csv --out sub.csv a Kaggle submission

A labelled CSV (a Kaggle train.csv) also gets its accuracy reported.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from . import cli
from .data import load_kaggle_csv, resolve_data
from .errors import FastnnError
from .model import atomic_write, load_model
from .training import (
    BACKENDS,
    SLOW_COMPILE_SECONDS,
    call_if_slow,
    predict_outputs,
    to_inputs,
)

PROG = "python -m fastnn.predict"


def build_parser() -> argparse.ArgumentParser:
    parser = cli.Parser(
        prog=PROG,
        description="Report a saved fastnn network's accuracy on the MNIST test images, or "
        "predict the digits of a Kaggle digit-recognizer CSV and write a submission file.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
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
        "--out",
        type=cli.output_path,
        metavar="PATH",
        help="with --csv: write the predictions here as ImageId,Label (ImageId from 1)",
    )
    parser.add_argument("--backend", choices=BACKENDS, default="numba")
    parser.add_argument("--threads", type=cli.whole_number(1), default=None)
    return parser


def submission_text(labels: np.ndarray) -> str:
    rows = [f"{image_id},{label}" for image_id, label in enumerate(labels.tolist(), start=1)]
    return "ImageId,Label\n" + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.out and not args.csv:
        parser.error("--out goes with --csv")
    cli.set_threads(args.threads)
    net = load_model(args.model)
    shape = "-".join(str(n) for n in net.sizes)
    print(f"model: {args.model} ({shape}, {net.activation}, {net.loss}, {net.dtype})")
    if net.sizes[0] != 784 or net.sizes[-1] != 10:
        raise FastnnError(
            f"{args.model}: the network is {shape}; MNIST needs 784 inputs, 10 outputs"
        )

    if args.csv:
        images, labels = load_kaggle_csv(args.csv)
        source = str(args.csv)
    else:
        dataset = resolve_data(args.data)
        if dataset.test_images is None:
            raise FastnnError(f"{dataset.source}: has no test set; use --csv to predict a CSV")
        images, labels, source = dataset.test_images, dataset.test_labels, dataset.source
    inputs = to_inputs(images, str(net.dtype))
    # The first call compiles (or loads) the kernels: one image, so that the note can only be
    # about compiling, not about a long prediction.
    with call_if_slow(cli.say_compiling if args.backend == "numba" else None, SLOW_COMPILE_SECONDS):
        predict_outputs(net, inputs[:1], args.backend)
    predicted = predict_outputs(net, inputs, args.backend).argmax(axis=1)
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


def entry_point() -> None:
    cli.run(PROG, lambda: main(sys.argv[1:]))


if __name__ == "__main__":
    entry_point()
