"""python -m fastnn.train and python -m fastnn.predict as a user meets them: --help, refusing bad
input before any work, what a run prints and writes, Kaggle CSV in and out, awkward paths,
divergence, a cache folder that cannot be created, and runs that must repeat bit for bit.

Most runs train a few epochs on a small folder cut from the real MNIST, in this process
(cli.run around main, as `python -m` does); a subprocess where the process itself is the subject.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numba
import numpy as np
import pytest
from cli_helpers import (
    EPOCH_LINE,
    PREDICT,
    PREDICT_PROG,
    SUBPROCESS_TIMEOUT,
    TRAIN,
    TRAIN_PROG,
    assert_identical_npz,
    assert_one_line_error,
    epoch_lines,
    npz_arrays,
    printed_test_accuracy,
    real_mnist,
    real_subset,
    run_in_process,
    run_module,
    train,
    write_kaggle_csv,
    write_real_subset,
)
from data_helpers import MNIST_NAMES, mnist_dir, write_idx_dir

import fastnn.predict
import fastnn.train
import fastnn.training
from fastnn.model import load_model

TRAIN_FLAGS = (
    "--data", "--hidden", "--activation", "--loss", "--init", "--optimizer", "--lr", "--l2",
    "--epochs", "--batch-size", "--dev-size", "--patience", "--seed", "--backend", "--threads",
    "--dtype", "--save", "--metrics", "--checkpoint", "--resume",
)  # fmt: skip
# fastnn.predict has no training flags: these are all it takes besides the model file.
PREDICT_FLAGS = ("--data", "--csv", "--out", "--backend", "--threads")

N_TRAIN, N_TEST, DEV = 3000, 1000, 500  # the small real folder: 2500 images trained on
N_FIT = N_TRAIN - DEV
HISTORY_KEYS = {"epoch", "loss", "train_accuracy", "dev_accuracy", "seconds"}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return real_subset(tmp_path_factory, N_TRAIN, N_TEST)


def small_run(small: Path, *extra) -> list:
    """A quick run on the small folder: one thread, so no test waits on a busy second core."""
    return ["--data", small, "--dev-size", DEV, "--threads", 1, *extra]


# ---- --help ----------------------------------------------------------------------------------


def test_train_help_lists_every_flag() -> None:
    done = run_module(TRAIN, "--help")
    assert done.returncode == 0, done.stderr
    missing = [flag for flag in TRAIN_FLAGS if flag not in done.stdout]
    assert not missing, f"--help does not mention {missing}"
    assert done.stderr == ""


def test_predict_help_lists_every_flag() -> None:
    done = run_module(PREDICT, "--help")
    assert done.returncode == 0, done.stderr
    missing = [flag for flag in PREDICT_FLAGS if flag not in done.stdout]
    assert not missing, f"--help does not mention {missing}"
    assert "model" in done.stdout
    assert done.stderr == ""


# ---- bad input: one line, status 2, nothing done ------------------------------------------


BAD_FLAGS = {
    "lr 0": (["--lr", "0"], "--lr"),
    "lr -1": (["--lr", "-1"], "--lr"),
    "lr nan": (["--lr", "nan"], "--lr"),
    "lr inf": (["--lr", "inf"], "--lr"),
    "lr abc": (["--lr", "abc"], "--lr"),
    "epochs 0": (["--epochs", "0"], "--epochs"),
    "batch size 0": (["--batch-size", "0"], "--batch-size"),
    "hidden 0": (["--hidden", "0"], "--hidden"),
    "hidden 10,0": (["--hidden", "10,0"], "--hidden"),
    "hidden x": (["--hidden", "x"], "--hidden"),
    "activation": (["--activation", "softplus"], "--activation"),
    "loss": (["--loss", "hinge"], "--loss"),
    "optimizer": (["--optimizer", "rmsprop"], "--optimizer"),
    "init": (["--init", "zeros"], "--init"),
    "backend": (["--backend", "cuda"], "--backend"),
    "dtype": (["--dtype", "float16"], "--dtype"),
    "patience -1": (["--patience", "-1"], "--patience"),
    "threads 0": (["--threads", "0"], "--threads"),
    "more threads than Numba has": (["--threads", "100000"], "--threads"),
    "dev size = training set": (["--dev-size", str(N_TRAIN)], "--dev-size"),
    "dev size > training set": (["--dev-size", str(N_TRAIN + 1)], "--dev-size"),
    "batch larger than trained on": (
        ["--dev-size", str(DEV), "--batch-size", str(N_FIT + 1)],
        "--batch-size",
    ),
}


@pytest.fixture(scope="module")
def random_folder(tmp_path_factory) -> Path:
    """Valid IDX files of random pixels, as many as the small folder: bad input needs no MNIST."""
    folder = tmp_path_factory.mktemp("random_idx")
    write_idx_dir(folder, N_TRAIN, 100, gz=False)
    return folder


@pytest.fixture
def no_training(monkeypatch):
    """Makes any attempt to train fail the test: bad input must be refused before that."""

    def refuse(*args, **kwargs):
        raise AssertionError("training started despite bad input")

    monkeypatch.setattr(fastnn.train, "fit", refuse)


@pytest.mark.parametrize("argv, flag", BAD_FLAGS.values(), ids=BAD_FLAGS.keys())
def test_bad_flag_is_one_line_status_2(argv, flag, random_folder, tmp_path, capsys, no_training):
    save, metrics = tmp_path / "model.npz", tmp_path / "metrics.json"
    status, out, err = train(
        ["--data", random_folder, "--threads", 1, "--save", save, "--metrics", metrics, *argv],
        capsys,
    )
    assert status == 2
    assert_one_line_error(err, flag)
    assert err.startswith(f"{TRAIN_PROG}: error:")
    assert out == "", "nothing may be printed on stdout before the input is checked"
    assert list(tmp_path.iterdir()) == []


def test_largest_batch_that_fits_is_accepted(small, capsys) -> None:
    """The boundary of 'batch size larger than the training set': exactly the set is fine."""
    status, out, err = train(small_run(small, "--epochs", 1, "--batch-size", N_FIT), capsys)
    assert status == 0, err
    assert f"batch {N_FIT}" in out
    assert len(epoch_lines(out)) == 1


@pytest.mark.parametrize("option", ["--save", "--metrics", "--checkpoint"])
def test_output_in_missing_folder(option, random_folder, tmp_path, capsys, no_training) -> None:
    target = tmp_path / "no such folder" / "file.out"
    status, out, err = train(["--data", random_folder, option, target], capsys)
    assert status == 2
    assert_one_line_error(err, option, "no such folder")
    assert out == ""
    assert not target.parent.exists()


def test_data_that_does_not_exist(tmp_path, capsys, no_training) -> None:
    missing = tmp_path / "nowhere"
    status, out, err = train(["--data", missing], capsys)
    assert status == 2
    assert_one_line_error(err, str(missing))
    assert out == ""


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_truncated_data_file_is_named(gz, tmp_path, capsys, no_training) -> None:
    write_idx_dir(tmp_path, 100, 20, gz=gz)
    broken = tmp_path / (MNIST_NAMES["train_images"] + (".gz" if gz else ""))
    content = broken.read_bytes()
    broken.write_bytes(content[: len(content) // 2])
    status, out, err = train(["--data", tmp_path, "--dev-size", 10], capsys)
    assert status == 2
    assert_one_line_error(err, str(broken), "truncated")
    assert out == ""


def test_bad_input_through_python_dash_m(random_folder) -> None:
    """The real entry point, not just cli.run in this process: status 2, one line."""
    done = run_module(TRAIN, "--data", random_folder, "--lr", "0")
    assert done.returncode == 2
    assert_one_line_error(done.stderr, "--lr")
    assert done.stdout == ""
    done = run_module(TRAIN, "--data", random_folder, "--dev-size", N_TRAIN)
    assert done.returncode == 2
    assert_one_line_error(done.stderr, "--dev-size")


def test_a_command_exits_with_its_status_after_what_runs_at_exit() -> None:
    """cli.fastnn_process skips only Python's last garbage collections: atexit handlers still run,
    and what a command wrote without a newline still reaches stdout."""
    done = subprocess.run(
        [sys.executable, "-c",
         "import atexit\n"
         "from fastnn import cli\n"
         "atexit.register(lambda: print('at exit'))\n"
         "cli.run('test', lambda: print('done', end=' ') or 3)\n"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert done.stdout == "done at exit\n"


@pytest.mark.parametrize("zero", ["0.00", "0e0"])
def test_l2_accepts_any_spelling_of_zero(zero, small, capsys) -> None:
    status, _, err = train(small_run(small, "--epochs", 1, "--l2", zero), capsys)
    assert status == 0, err


def test_predict_refuses_a_file_that_is_not_a_model(tmp_path) -> None:
    fake = tmp_path / "model.npz"
    fake.write_text("not a model")
    done = run_module(PREDICT, fake)
    assert done.returncode == 2
    assert_one_line_error(done.stderr, str(fake))


# ---- what a run prints and writes ----------------------------------------------------------


def test_one_line_per_epoch_test_accuracy_and_metrics(small, tmp_path, capsys) -> None:
    metrics_path = tmp_path / "metrics.json"
    status, out, err = train(small_run(small, "--epochs", 3, "--metrics", metrics_path), capsys)
    assert status == 0, err
    epochs = epoch_lines(out)
    assert [epoch for epoch, *_ in epochs] == [1, 2, 3]
    printed = printed_test_accuracy(out)
    assert f"on {N_TEST} images" in out

    metrics = json.loads(metrics_path.read_text())
    assert {"test_accuracy", "dev_accuracy", "epochs", "seconds", "history"} <= metrics.keys()
    assert metrics["epochs"] == 3
    assert f"{100 * metrics['test_accuracy']:.2f}" == printed
    assert 0.5 < metrics["test_accuracy"] <= 1
    assert 0.5 < metrics["dev_accuracy"] <= 1
    assert metrics["seconds"] > 0
    history = metrics["history"]
    assert isinstance(history, list) and len(history) == 3
    for number, (record, line) in enumerate(zip(history, epochs, strict=True), start=1):
        assert set(record) == HISTORY_KEYS
        assert record["epoch"] == number == line[0]
        assert f"{record['loss']:.4f}" == f"{line[1]:.4f}"
        assert f"{100 * record['train_accuracy']:.2f}" == f"{line[2]:.2f}"
        assert f"{100 * record['dev_accuracy']:.2f}" == f"{line[3]:.2f}"
        assert record["seconds"] >= 0
    assert metrics["dev_accuracy"] == history[-1]["dev_accuracy"]
    assert history[-1]["loss"] < history[0]["loss"]


def refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def test_metrics_are_strict_json_without_a_dev_set(small, tmp_path, capsys) -> None:
    metrics_path = tmp_path / "metrics.json"
    status, _, err = train(
        ["--data", small, "--dev-size", 0, "--threads", 1, "--epochs", 1,
         "--metrics", metrics_path],
        capsys,
    )  # fmt: skip
    assert status == 0, err
    json.loads(metrics_path.read_text(), parse_constant=refuse_constant)


# ---- Kaggle CSV ------------------------------------------------------------------------------


def test_kaggle_csv_train_then_submission(tmp_path, capsys) -> None:
    mnist = real_mnist()
    n_train, n_test = 4000, 1000
    train_csv, test_csv = tmp_path / "train.csv", tmp_path / "test.csv"
    write_kaggle_csv(train_csv, mnist.train_images[:n_train], mnist.train_labels[:n_train])
    held_back = slice(n_train, n_train + n_test)
    write_kaggle_csv(test_csv, mnist.train_images[held_back], None)
    true_labels = mnist.train_labels[held_back]

    model, metrics_path = tmp_path / "model.npz", tmp_path / "metrics.json"
    status, out, err = train(
        ["--data", train_csv, "--dev-size", 500, "--epochs", 8, "--threads", 1,
         "--save", model, "--metrics", metrics_path],
        capsys,
    )  # fmt: skip
    assert status == 0, err
    assert "no test set" in out
    assert "test accuracy" not in out
    metrics = json.loads(metrics_path.read_text())
    assert metrics["test_accuracy"] is None
    final_line = next(
        line for line in out.splitlines() if "final score is the dev accuracy" in line
    )
    assert final_line.endswith(f"{100 * metrics['dev_accuracy']:.2f}%")

    submission = tmp_path / "submission.csv"
    done = run_module(PREDICT, model, "--csv", test_csv, "--out", submission)
    assert done.returncode == 0, done.stderr
    lines = submission.read_text().splitlines()
    assert lines[0] == "ImageId,Label"
    rows = [line.split(",") for line in lines[1:]]
    assert len(rows) == n_test
    assert [int(image_id) for image_id, _ in rows] == list(range(1, n_test + 1))
    predicted = np.array([int(label) for _, label in rows])
    assert set(predicted.tolist()) <= set(range(10))
    assert np.mean(predicted == true_labels) > 0.80


# ---- fastnn.predict agrees with what train printed ---------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_predict_reports_the_accuracy_train_printed(dtype, tmp_path, capsys) -> None:
    data = mnist_dir()
    model = tmp_path / "model.npz"
    status, out, err = train(
        ["--data", data, "--epochs", 1, "--threads", 1, "--dtype", dtype, "--save", model], capsys
    )
    assert status == 0, err
    trained = printed_test_accuracy(out)

    # No --data: fastnn.predict finds the test set through FASTNN_DATA, as a user would.
    done = run_module(PREDICT, model, env={**os.environ, "FASTNN_DATA": str(data)})
    assert done.returncode == 0, done.stderr
    assert f"accuracy: {trained}% on 10000 images" in done.stdout


# ---- paths with spaces and non-ASCII characters --------------------------------------------


def test_paths_with_spaces_and_non_ascii(tmp_path) -> None:
    data = write_real_subset(tmp_path / "MNIST dätä ü 数据", 1200, 200)
    outputs = tmp_path / "résultats et modèles"
    outputs.mkdir()
    model, metrics = outputs / "mödel № 1.npz", outputs / "métriques ø.json"
    done = run_module(
        TRAIN, "--data", data, "--dev-size", 200, "--epochs", 1, "--threads", 1,
        "--save", model, "--metrics", metrics,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert str(data) in done.stdout
    assert str(model) in done.stdout
    assert load_model(model).sizes == (784, 10, 10)
    assert json.loads(metrics.read_text(encoding="utf-8"))["epochs"] == 1

    done = run_module(PREDICT, model, "--data", data)
    assert done.returncode == 0, done.stderr
    assert "on 200 images" in done.stdout


# ---- divergence ------------------------------------------------------------------------------

# float32 SGD with this step overflows in the first epoch. (--lr 1e6 does not: the ReLUs die and
# the stable softmax keeps the loss finite, near 4.5e5, so nothing is detected.)
DIVERGING = ("--lr", "1e30", "--optimizer", "sgd")


def test_divergence_is_status_1_and_keeps_the_saved_model(small, tmp_path) -> None:
    model = tmp_path / "model.npz"
    good = run_module(TRAIN, *small_run(small, "--epochs", 1, "--save", model))
    assert good.returncode == 0, good.stderr
    before = model.read_bytes()
    os.utime(model, (1_000_000_000, 1_000_000_000))

    metrics = tmp_path / "diverged.json"
    done = run_module(
        TRAIN, *small_run(small, "--epochs", 2, *DIVERGING, "--save", model, "--metrics", metrics)
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert_one_line_error(done.stderr, "epoch 1", "smaller learning rate")
    assert "test accuracy" not in done.stdout
    assert model.read_bytes() == before
    assert model.stat().st_mtime == 1_000_000_000
    assert not metrics.exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.npz"]


# ---- the cache folder cannot be created ------------------------------------------------------


def test_cache_folder_that_cannot_be_created(tmp_path) -> None:
    """No --data, no FASTNN_DATA, and $XDG_CACHE_HOME/fastnn is a regular file: mkdir fails even
    for root. The command must say so in one line, status 2, without trying the network for long
    (the timeout turns a hang into a failure)."""
    blocker = tmp_path / "fastnn"
    blocker.write_text("a file where the cache folder should be")
    env = {name: value for name, value in os.environ.items() if name != "FASTNN_DATA"}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    env.pop("NUMBA_CACHE_DIR", None)
    done = run_module(TRAIN, "--epochs", 1, env=env, timeout=90)
    assert done.returncode == 2, done.stdout + done.stderr
    assert_one_line_error(done.stderr, str(blocker))
    assert blocker.read_text() == "a file where the cache folder should be"


# ---- runs that must repeat exactly ---------------------------------------------------------


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_one_and_two_threads_give_identical_weights(dtype, small, tmp_path, capsys) -> None:
    models = []
    for threads in (1, 2):
        model = tmp_path / f"threads{threads}.npz"
        status, out, err = train(
            ["--data", small, "--dev-size", DEV, "--epochs", 2, "--dtype", dtype,
             "--threads", threads, "--save", model],
            capsys,
        )  # fmt: skip
        assert status == 0, err
        assert f"{threads} thread" in out
        models.append(model)
    assert_identical_npz(*models)
    assert npz_arrays(models[0])["W1"].dtype == np.dtype(dtype)


def test_same_seed_same_weights_other_seed_other_weights(small, tmp_path, capsys) -> None:
    paths = {}
    for name, seed in (("first", 7), ("again", 7), ("other", 8)):
        paths[name] = tmp_path / f"{name}.npz"
        status, _, err = train(
            small_run(small, "--epochs", 2, "--seed", seed, "--save", paths[name]), capsys
        )
        assert status == 0, err
    assert_identical_npz(paths["first"], paths["again"])
    first, other = npz_arrays(paths["first"]), npz_arrays(paths["other"])
    assert not np.array_equal(first["W1"], other["W1"])


BACKEND_RUNS = {
    "default net": [],
    "two hidden layers, sigmoid, mse, momentum": [
        "--hidden", "32,16", "--activation", "sigmoid", "--loss", "mse",
        "--optimizer", "momentum", "--lr", "0.1",
    ],
}  # fmt: skip


@pytest.mark.parametrize("extra", BACKEND_RUNS.values(), ids=BACKEND_RUNS.keys())
def test_numpy_and_numba_backends_agree_on_the_loss_history(extra, small, tmp_path, capsys):
    histories = {}
    for backend in ("numba", "numpy"):
        metrics = tmp_path / f"{backend}.json"
        status, _, err = train(
            small_run(small, "--epochs", 3, "--dtype", "float64", "--backend", backend,
                      "--metrics", metrics, *extra),
            capsys,
        )  # fmt: skip
        assert status == 0, err
        histories[backend] = json.loads(metrics.read_text())["history"]
    numba_losses = [record["loss"] for record in histories["numba"]]
    numpy_losses = [record["loss"] for record in histories["numpy"]]
    assert len(numba_losses) == len(numpy_losses) == 3
    for epoch, (fast, oracle) in enumerate(zip(numba_losses, numpy_losses, strict=True), start=1):
        assert math.isfinite(fast)
        assert fast == pytest.approx(oracle, rel=1e-9, abs=0), f"epoch {epoch}"


# ---- a first run compiles for a while and says so -----------------------------------------

COMPILING = "compiling the loop kernels"


def slowed(function, seconds: float):
    def slow(*args, **kwargs):
        time.sleep(seconds)
        return function(*args, **kwargs)

    return slow


def test_call_if_slow_calls_back_once_and_only_when_slow() -> None:
    calls = []
    with fastnn.training.call_if_slow(lambda: calls.append("slow"), 0.05):
        time.sleep(0.3)
    assert calls == ["slow"]
    with fastnn.training.call_if_slow(lambda: calls.append("quick"), 0.5):
        pass
    time.sleep(0.6)  # the timer would have fired by now had it not been cancelled
    assert calls == ["slow"]


def test_a_slow_compile_is_announced_before_the_first_epoch(small, capsys, monkeypatch) -> None:
    """A machine's first run compiles for seconds (8-10 s here); it says so, not silently."""
    compile_kernels = fastnn.training.compile_kernels
    delay = 2 * fastnn.training.SLOW_COMPILE_SECONDS
    monkeypatch.setattr(fastnn.training, "compile_kernels", slowed(compile_kernels, delay))
    status, out, err = train(small_run(small, "--epochs", 1), capsys)
    assert status == 0, err
    lines = out.splitlines()
    notices = [n for n, line in enumerate(lines) if line.startswith(COMPILING)]
    header = [n for n, line in enumerate(lines) if line.split()[:2] == ["epoch", "loss"]]
    epochs = [n for n, line in enumerate(lines) if EPOCH_LINE.match(line)]
    assert len(notices) == 1 and len(header) == 1, out
    assert notices[0] < header[0] < epochs[0], out  # the note stays out of the epoch table


def test_a_start_from_compiled_kernels_says_nothing_of_compiling(small, capsys) -> None:
    train(small_run(small, "--epochs", 1), capsys)  # the first run in this process may compile
    status, out, err = train(small_run(small, "--epochs", 1), capsys)
    assert status == 0, err
    assert COMPILING not in out


def test_predict_announces_a_slow_compile(tmp_path, capsys, monkeypatch) -> None:
    data = mnist_dir()
    model = tmp_path / "model.npz"
    status, _, err = train(["--data", data, "--epochs", 1, "--save", model], capsys)
    assert status == 0, err
    delay = 2 * fastnn.training.SLOW_COMPILE_SECONDS
    monkeypatch.setattr(
        fastnn.predict, "predict_outputs", slowed(fastnn.predict.predict_outputs, delay)
    )
    status, out, err = run_in_process(
        fastnn.predict.main, PREDICT_PROG, [model, "--data", data], capsys
    )
    assert status == 0, err
    assert out.count(COMPILING) == 1, out
    assert "accuracy:" in out.split(COMPILING)[1], out


def test_a_long_prediction_is_not_called_compiling(tmp_path, capsys, monkeypatch) -> None:
    """Only the first, one-image call compiles; a slow prediction after it says nothing."""
    data = mnist_dir()
    model = tmp_path / "model.npz"
    status, _, err = train(["--data", data, "--epochs", 1, "--save", model], capsys)
    assert status == 0, err
    predict_outputs = fastnn.predict.predict_outputs
    delay = 2 * fastnn.training.SLOW_COMPILE_SECONDS

    def slow_when_many(net, X, backend):
        if len(X) > 1:
            time.sleep(delay)
        return predict_outputs(net, X, backend)

    monkeypatch.setattr(fastnn.predict, "predict_outputs", slow_when_many)
    status, out, err = run_in_process(
        fastnn.predict.main, PREDICT_PROG, [model, "--data", data], capsys
    )
    assert status == 0, err
    assert "accuracy:" in out, out
    assert COMPILING not in out, out


# ---- --curves ----------------------------------------------------------------------------------


def test_curves_draws_the_learning_curves_png(small, tmp_path, capsys) -> None:
    pytest.importorskip("matplotlib")
    from PIL import Image

    curves = tmp_path / "curves.png"
    status, out, err = train(small_run(small, "--epochs", 3, "--curves", curves), capsys)
    assert status == 0, err
    assert f"drew the learning curves in {curves}" in out
    with Image.open(curves) as image:
        assert image.format == "PNG"
        assert image.width >= 600 and image.height >= 300


def test_curves_without_matplotlib_is_refused_before_training(small, tmp_path) -> None:
    curves = tmp_path / "curves.png"
    argv = [str(a) for a in small_run(small, "--curves", curves)]
    block = (
        "import sys, runpy; sys.modules['matplotlib'] = None; "
        f"sys.argv = ['fastnn.train', *{argv!r}]; "
        "runpy.run_module('fastnn.train', run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-c", block], capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT
    )
    assert done.returncode == 2, done.stderr
    assert_one_line_error(done.stderr, "--curves")
    assert 'pip install "fastnn-loops[plot]"' in done.stderr
    assert done.stdout == "", "refused before anything else is done"
    assert not curves.exists()
