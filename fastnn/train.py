"""python -m fastnn.train: train a network on MNIST and report its accuracy on the test images.

Run with --help for every flag. Each epoch prints one line; the end prints the test accuracy.
The command is fastnn.api.fit, the function behind fastnn.train(X, y, ...), with flags for its
keyword arguments: the same settings and seed give the same weights from either.

Once imported, this module is also what the name `fastnn.train` finds on the package (Python
binds a package's submodule over the package's attribute of the same name), so calling the
module calls fastnn.api.train: `fastnn.train(X, y)` works whichever way it is reached.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import types
from dataclasses import replace
from pathlib import Path

import numpy as np

from . import api, cli
from .api import epoch_header, epoch_line, fit
from .checkpoint import (
    RESUMABLE_CHANGES,
    contradictions,
    data_fingerprint,
    load_checkpoint,
    save_checkpoint,
)
from .data import resolve_data
from .errors import FastnnError
from .model import ACTIVATIONS, DTYPES, INITS, LOSSES, atomic_write, save_model
from .training import BACKENDS, OPTIMIZERS, EpochRecord, TrainConfig, TrainingState

PROG = "python -m fastnn.train"
N_CLASSES = 10  # MNIST's digits, whichever of them a data set holds
DEFAULTS = TrainConfig()


def hidden_widths(text: str) -> tuple[int, ...]:
    """'10' or '128,64': the hidden layers' widths, each at least 1."""
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of widths"
        ) from None
    if any(width < 1 for width in widths):
        raise argparse.ArgumentTypeError(f"{text!r}: every hidden width must be at least 1")
    return widths


def batch_size(text: str) -> int | None:
    """A whole number ≥ 1, or 'full' (None): the whole training set in one step."""
    return None if text == "full" else cli.whole_number(1)(text)


def build_parser() -> argparse.ArgumentParser:
    parser = cli.Parser(
        prog=PROG,
        description="Train a fully connected network on MNIST with loop kernels compiled by "
        "Numba (or the NumPy oracle), then report its accuracy on the 10,000 test images.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--data",
        metavar="PATH",
        help="a folder with the four MNIST IDX files (.gz or not), or a Kaggle train.csv; "
        "default: $FASTNN_DATA, else ~/.cache/fastnn, else download there",
    )
    data.add_argument(
        "--dev-size",
        type=cli.whole_number(0),
        default=DEFAULTS.dev_size,
        help="training images held out to measure dev accuracy each epoch",
    )
    model = parser.add_argument_group("network")
    model.add_argument(
        "--hidden",
        type=hidden_widths,
        default="10",
        help="hidden layer widths, comma-separated: 128,64 is 784-128-64-10",
    )
    model.add_argument(
        "--activation",
        choices=list(ACTIVATIONS),
        default=DEFAULTS.activation,
        help="hidden-layer activation",
    )
    model.add_argument(
        "--loss",
        choices=list(LOSSES),
        default=DEFAULTS.loss,
        help="cross-entropy: softmax output; mse: sigmoid output, squared error",
    )
    model.add_argument(
        "--init",
        choices=INITS,
        default=None,
        help="weight initialisation; default he for relu, glorot otherwise; "
        "uniform is the seeds' U(-0.5, 0.5)",
    )
    model.add_argument("--dtype", choices=list(DTYPES), default=DEFAULTS.dtype)
    optim = parser.add_argument_group("training")
    optim.add_argument("--optimizer", choices=list(OPTIMIZERS), default=DEFAULTS.optimizer)
    optim.add_argument("--lr", type=cli.positive_float, default=DEFAULTS.lr, help="learning rate")
    optim.add_argument(
        "--l2",
        type=cli.non_negative_float,
        default=DEFAULTS.l2,
        help="L2 weight decay λ: J += (λ/2)·ΣW²",
    )
    optim.add_argument("--epochs", type=cli.whole_number(1), default=DEFAULTS.epochs)
    optim.add_argument(
        "--batch-size",
        type=batch_size,
        default=DEFAULTS.batch_size,
        help="samples per step, or 'full' for full-batch gradient descent",
    )
    optim.add_argument(
        "--patience",
        type=cli.whole_number(0),
        default=None,
        help="stop after this many epochs without a better dev accuracy, and "
        "keep the best weights; default: no early stopping",
    )
    optim.add_argument(
        "--seed",
        type=int,
        default=DEFAULTS.seed,
        help="the same seed (and thread count) gives the same run",
    )
    run = parser.add_argument_group("running")
    run.add_argument(
        "--backend",
        choices=BACKENDS,
        default=DEFAULTS.backend,
        help="numba: the loop kernels; numpy: the vectorised oracle",
    )
    run.add_argument(
        "--threads",
        type=cli.whole_number(1),
        default=None,
        help="threads for the numba backend; default: all cores (NUMBA_NUM_THREADS)",
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "--save", type=cli.output_path, metavar="PATH", help="write the trained network here (.npz)"
    )
    output.add_argument(
        "--checkpoint",
        type=cli.output_path,
        metavar="PATH",
        help="after every epoch, save all that --resume needs here (atomically)",
    )
    output.add_argument(
        "--resume",
        type=cli.existing_file,
        metavar="PATH",
        help="continue the run saved in this checkpoint; its settings apply, --epochs may grow",
    )
    output.add_argument(
        "--metrics",
        type=cli.output_path,
        metavar="PATH",
        help="write the run's settings, per-epoch history and scores here as JSON",
    )
    output.add_argument(
        "--curves",
        type=cli.output_path,
        metavar="PATH",
        help="draw the learning curves (loss, train and dev accuracy per epoch) into this PNG; "
        'needs matplotlib: pip install "fastnn-loops[plot]"',
    )
    return parser


def flag_groups() -> list[tuple[str, list[argparse.Action]]]:
    """The flags of build_parser(), by group (title, actions): for commands that take the same
    flags, such as python -m fastnn.sweep, so that they check every value as strictly."""
    parser = build_parser()
    return [
        (group.title, list(group._group_actions))  # argparse keeps its groups private
        for group in parser._action_groups
        if group._group_actions
    ]


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        hidden=args.hidden,  # argparse runs hidden_widths on the default "10" too
        activation=args.activation,
        loss=args.loss,
        init=args.init,
        optimizer=args.optimizer,
        lr=args.lr,
        l2=args.l2,
        epochs=args.epochs,
        batch_size=args.batch_size,
        dev_size=args.dev_size,
        patience=args.patience,
        seed=args.seed,
        backend=args.backend,
        dtype=args.dtype,
    )


def describe(config: TrainConfig, threads: int) -> str:
    shape = "-".join(str(n) for n in config.sizes())
    output = "softmax + cross-entropy" if config.loss == "cross-entropy" else "sigmoid + mse"
    batch = "full batch" if config.batch_size is None else f"batch {config.batch_size}"
    where = f"numba, {threads} thread{'s' if threads > 1 else ''}"
    backend = where if config.backend == "numba" else "numpy"
    return (
        f"network {shape}, {config.activation} hidden, {output}; {config.optimizer} "
        f"lr {config.lr:g}, {batch}, {config.dtype}; {backend}"
    )


def explicit_options(argv: list[str] | None) -> dict:
    """Only the options the user typed, with their parsed values."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return vars(parser.parse_args(argv))


def settings(
    args: argparse.Namespace, argv: list[str] | None
) -> tuple[TrainConfig, tuple[TrainingState, str] | None]:
    """The run's settings and, with --resume, the state to continue from."""
    if not args.resume:
        return config_from_args(args), None
    saved, state, fingerprint = load_checkpoint(args.resume)
    explicit = explicit_options(argv)
    conflicts = contradictions(saved, explicit)
    if conflicts:
        raise FastnnError(
            f"{args.resume}: these settings contradict the checkpoint: {'; '.join(conflicts)}"
        )
    changes = {name: explicit[name] for name in RESUMABLE_CHANGES if name in explicit}
    return replace(saved, **changes), (state, fingerprint)


def check_sizes(config: TrainConfig, n_train: int) -> int:
    """The number of images trained on, once the dev set is held out."""
    if config.dev_size >= n_train:
        raise FastnnError(
            f"--dev-size {config.dev_size} must be smaller than the {n_train} training images"
        )
    if config.patience is not None and config.dev_size == 0:
        raise FastnnError("--patience watches the dev accuracy: it needs --dev-size of at least 1")
    n_fit = n_train - config.dev_size
    if config.batch_size is not None and config.batch_size > n_fit:
        raise FastnnError(
            f"--batch-size {config.batch_size} is larger than the {n_fit} images trained on"
        )
    return n_fit


def resume_hint(args: argparse.Namespace, checkpoint_path: Path | None) -> str:
    """What a stopped run left, read from the checkpoint file itself, and how to continue."""
    if not checkpoint_path:
        return "nothing saved (with --checkpoint PATH a run can be resumed)"
    try:
        epoch = load_checkpoint(checkpoint_path)[1].epoch
    except FastnnError:
        return "stopped before the first epoch ended: no checkpoint yet"
    command = [*PROG.split(), "--resume", str(checkpoint_path)]
    if args.data:
        command += ["--data", str(args.data)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    return (
        f"the checkpoint {checkpoint_path} holds epoch {epoch}. "
        f"Continue with: {shlex.join(command)}"
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.curves:
        require_matplotlib()
    started = time.perf_counter()
    config, resumed = settings(args, argv)
    checkpoint_path = args.checkpoint or args.resume
    threads = cli.set_threads(args.threads)
    dataset = resolve_data(args.data)
    n_fit = check_sizes(config, len(dataset.train_labels))
    fingerprint = None
    if checkpoint_path:
        fingerprint = data_fingerprint(dataset.train_images, dataset.train_labels)
    resume_state = None
    if resumed is not None:
        resume_state, saved_fingerprint = resumed
        if saved_fingerprint != fingerprint:
            raise FastnnError(f"{args.resume}: was trained on other data than {dataset.source}")
    has_test = dataset.test_images is not None
    print(describe(config, threads))
    test_part = f", {len(dataset.test_labels)} test" if has_test else ", no test set (CSV)"
    print(f"data: {dataset.source} ({n_fit} train, {config.dev_size} dev{test_part})")
    if resume_state is not None:
        print(f"resuming {args.resume} after epoch {resume_state.epoch}")

    header_printed = False

    def print_row(record: EpochRecord) -> None:
        """An epoch's line; the table's header comes with the first, after any compiling note."""
        nonlocal header_printed
        if not header_printed:
            print(epoch_header())
            header_printed = True
        print(epoch_line(record), flush=True)

    def write_checkpoint(state: TrainingState) -> None:
        save_checkpoint(checkpoint_path, config, state, fingerprint)

    try:
        result = fit(
            config,
            dataset.train_images,
            dataset.train_labels,
            classes=np.arange(N_CLASSES),
            on_epoch=[print_row],
            resume=resume_state,
            on_state=write_checkpoint if checkpoint_path else None,
            on_slow_compile=cli.say_compiling,
        )
    except KeyboardInterrupt:
        print("\ninterrupted; " + resume_hint(args, checkpoint_path), file=sys.stderr)
        return cli.EXIT_INTERRUPTED
    net = result.network
    if result.stopped_early:
        print(f"early stop: no better dev accuracy for {config.patience} epochs")
    if config.patience is not None:
        print(f"kept the weights of epoch {result.best_epoch}, the best on the dev set")
    dev_accuracy = result.history[result.best_epoch - 1].dev_accuracy
    test_accuracy = None
    if has_test:
        predicted = result.predict(dataset.test_images, config.backend)
        test_accuracy = float(np.mean(predicted == dataset.test_labels))
    seconds = time.perf_counter() - started
    if test_accuracy is not None:
        print(f"test accuracy: {100 * test_accuracy:.2f}% on {len(dataset.test_labels)} images")
    else:
        print(
            "no official test set in a CSV: the final score is the dev accuracy, "
            f"{100 * dev_accuracy:.2f}%"
        )
    print(
        f"total time: {seconds:.1f} s "
        f"(of which compiling or loading kernels: {result.compile_seconds:.1f} s)"
    )

    if args.save:
        save_model(args.save, net)
        print(f"saved the network to {args.save}")
    if args.metrics:
        write_metrics(args.metrics, config, result, dev_accuracy, test_accuracy, seconds, threads)
        print(f"wrote metrics to {args.metrics}")
    if args.curves:
        from .figures import plot_learning_curves

        title = f"Learning curves: {describe(config, threads).split(';')[0]}"
        plot_learning_curves(result.history_dicts(), args.curves, title=title)
        print(f"drew the learning curves in {args.curves}")
    return 0


def require_matplotlib() -> None:
    """Refuse --curves before training when matplotlib is missing, not after."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise FastnnError('--curves needs matplotlib: pip install "fastnn-loops[plot]"') from None


def finite_or_null(value: object) -> object:
    """The metrics with NaN (no dev set) as null, so the file is strict JSON."""
    if isinstance(value, dict):
        return {key: finite_or_null(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_null(item) for item in value]
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_metrics(
    path: Path, config: TrainConfig, result: api.Model, dev_accuracy: float,
    test_accuracy: float | None, seconds: float, threads: int,
) -> None:  # fmt: skip
    metrics = {
        "test_accuracy": test_accuracy,
        "dev_accuracy": dev_accuracy,
        "epochs": len(result.history),
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "seconds": seconds,
        "compile_seconds": result.compile_seconds,
        "threads": threads,
        "config": {**vars(config), "hidden": list(config.hidden)},
        "history": result.history_dicts(),
    }
    text = json.dumps(finite_or_null(metrics), indent=2, allow_nan=False)
    try:
        atomic_write(path, lambda file: file.write(text.encode() + b"\n"))
    except OSError as error:
        raise FastnnError(f"{path}: cannot write the metrics: {error.strerror or error}") from None


def entry_point() -> None:
    cli.run(PROG, lambda: main(sys.argv[1:]))


class CallableModule(types.ModuleType):
    """This module, callable as fastnn.api.train (see the module's docstring for why)."""

    def __call__(self, *args, **kwargs) -> api.Model:
        return api.train(*args, **kwargs)


if __name__ == "__main__":
    entry_point()
else:
    sys.modules[__name__].__class__ = CallableModule
