"""--checkpoint and --resume: a run stopped after k epochs (by --epochs, kill -9 or Ctrl-C) and
resumed ends with the very weights of a run never stopped; a resume that contradicts its
checkpoint, or runs on other data, or reads a broken checkpoint, is refused in one line.

Runs use a small folder cut from the real MNIST and one thread; the kill and Ctrl-C tests run
`python -m fastnn.train` as a child process.
"""

from __future__ import annotations

import json
import random
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import (
    TRAIN,
    TRAIN_PROG,
    ZIP_CORRUPTIONS,
    assert_identical_npz,
    assert_one_line_error,
    corrupt_zip_directory,
    epoch_lines,
    npz_arrays,
    real_subset,
    run_module,
    start_module,
    train,
    without_seconds,
)

import fastnn.train
from fastnn.checkpoint import load_checkpoint

N_TRAIN, N_TEST, DEV = 3000, 500, 500


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return real_subset(tmp_path_factory, N_TRAIN, N_TEST)


def on_small(small: Path, *extra) -> list:
    return ["--data", small, "--dev-size", DEV, "--threads", 1, *extra]


def checkpoint_arrays(path: Path) -> dict[str, np.ndarray]:
    arrays = npz_arrays(path)
    arrays.pop("meta")
    return arrays


# ---- stopped by --epochs, resumed: bit-identical ------------------------------------------

RUNS = {
    # name: (extra flags, epochs of the whole run, epochs before the stop)
    "default net": ([], 4, 2),
    "two hidden layers, momentum": (
        ["--hidden", "32,16", "--optimizer", "momentum", "--lr", "0.05"], 4, 1,
    ),
    # On this data the run stops early at epoch 11 (best epoch 9): after the resume point.
    "patience": (["--patience", "2"], 30, 5),
}  # fmt: skip


@pytest.mark.parametrize("extra, epochs, stop", RUNS.values(), ids=RUNS.keys())
def test_resumed_run_equals_uninterrupted_run(extra, epochs, stop, small, tmp_path, capsys):
    whole = {name: tmp_path / f"whole.{name}" for name in ("ckpt.npz", "npz", "json")}
    status, out, err = train(
        on_small(small, *extra, "--epochs", epochs, "--checkpoint", whole["ckpt.npz"],
                 "--save", whole["npz"], "--metrics", whole["json"]),
        capsys,
    )  # fmt: skip
    assert status == 0, err

    part = {name: tmp_path / f"part.{name}" for name in ("ckpt.npz", "npz", "json")}
    status, _, err = train(
        on_small(small, *extra, "--epochs", stop, "--checkpoint", part["ckpt.npz"]), capsys
    )
    assert status == 0, err
    assert load_checkpoint(part["ckpt.npz"])[1].epoch == stop
    status, out, err = train(
        ["--data", small, "--threads", 1, "--resume", part["ckpt.npz"], "--epochs", epochs,
         "--save", part["npz"], "--metrics", part["json"]],
        capsys,
    )  # fmt: skip
    assert status == 0, err
    assert f"resuming {part['ckpt.npz']} after epoch {stop}" in out
    assert epoch_lines(out)[0][0] == stop + 1

    assert_identical_npz(whole["npz"], part["npz"])
    # The checkpoints too: θ, the optimizer's state and the best θ.
    part_state = checkpoint_arrays(part["ckpt.npz"])
    for name, array in checkpoint_arrays(whole["ckpt.npz"]).items():
        assert np.array_equal(array, part_state[name]), name
    whole_metrics = json.loads(whole["json"].read_text())
    part_metrics = json.loads(part["json"].read_text())
    assert without_seconds(whole_metrics["history"]) == without_seconds(part_metrics["history"])
    for key in ("best_epoch", "stopped_early", "test_accuracy", "dev_accuracy", "epochs"):
        assert whole_metrics[key] == part_metrics[key], key
    if "--patience" in extra:
        assert whole_metrics["stopped_early"] and stop < whole_metrics["epochs"] < epochs


# ---- kill -9 and Ctrl-C ----------------------------------------------------------------------

KILL_RUN = ("--hidden", "64", "--epochs", "40")
STRAY = re.compile(r"^\.ckpt\.npz\..+\.tmp$")


@pytest.fixture(scope="module")
def reference(small, tmp_path_factory) -> Path:
    """The model of the run that kill -9 and Ctrl-C interrupt, trained without interruption."""
    model = tmp_path_factory.mktemp("reference") / "model.npz"
    done = run_module(TRAIN, *on_small(small, *KILL_RUN, "--save", model))
    assert done.returncode == 0, done.stderr
    return model


def wait_for_new_checkpoint(process: subprocess.Popen, path: Path, seen_inode) -> bool:
    """Wait until the child has (re)written the checkpoint; False if it ended first."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_ino != seen_inode:
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.005)
    process.kill()
    raise AssertionError("no checkpoint written within 120 s")


def test_kill_9_at_random_moments_then_resume(small, reference, tmp_path) -> None:
    """SIGKILL the run a few times at seeded random moments after a checkpoint was written; each
    time the checkpoint must load, and at most one temporary file (the write that was cut) may be
    left beside it. Resuming to the end must give the uninterrupted run's weights.

    What a kill leaves is recorded in `found`: a `.ckpt.npz.XXXX.tmp` appears when the kill lands
    inside atomic_write; nothing removes it later (a SIGKILLed process cannot, and a later run
    does not look for it), so they accumulate, one per unlucky kill, until deleted by hand.
    """
    chooser = random.Random(20240611)
    checkpoint, model = tmp_path / "ckpt.npz", tmp_path / "model.npz"
    first = on_small(small, *KILL_RUN, "--checkpoint", checkpoint, "--save", model)
    resume = ["--data", small, "--threads", 1, "--resume", checkpoint, "--save", model]
    strays: set[str] = set()
    found = []
    finished_early = False
    for round_ in range(3):
        before = checkpoint.stat().st_ino if checkpoint.exists() else None
        process = start_module(TRAIN, *(first if round_ == 0 else resume))
        if not wait_for_new_checkpoint(process, checkpoint, before):
            _, err = process.communicate()
            assert process.returncode == 0, err
            finished_early = True
            break
        time.sleep(chooser.uniform(0.0, 0.4))
        process.send_signal(signal.SIGKILL)
        process.communicate()
        if process.returncode == 0:  # it finished before the signal landed
            finished_early = True
            break
        assert process.returncode == -signal.SIGKILL

        _, state, _ = load_checkpoint(checkpoint)
        assert 1 <= state.epoch <= 40
        names = {path.name for path in tmp_path.iterdir()}
        # model.npz is checked below: a kill landing after the last epoch may leave it saved
        new_strays = names - strays - {"ckpt.npz", "model.npz"}
        assert all(STRAY.match(name) for name in new_strays), names
        assert len(new_strays) <= 1, f"more than one temporary file after one kill: {names}"
        if state.epoch < 40:
            assert not model.exists(), "the model is saved only at the end"
        strays |= new_strays
        found.append((state.epoch, sorted(new_strays)))

    if not finished_early:
        done = run_module(TRAIN, *resume)
        assert done.returncode == 0, done.stderr
    assert_identical_npz(reference, model)
    print(f"kill -9: (checkpoint epoch, temporary files left) per kill: {found}")


def test_ctrl_c_says_how_to_resume_and_resuming_is_identical(small, reference, tmp_path):
    checkpoint, model = tmp_path / "ckpt.npz", tmp_path / "model.npz"
    process = start_module(TRAIN, *on_small(small, *KILL_RUN, "--checkpoint", checkpoint))
    assert wait_for_new_checkpoint(process, checkpoint, None), "finished before a checkpoint"
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, out + err
    assert "Traceback" not in err
    assert "--resume" in err
    assert str(checkpoint) in err
    epoch = load_checkpoint(checkpoint)[1].epoch
    assert f"holds epoch {epoch}" in err
    assert [name.name for name in tmp_path.iterdir()] == ["ckpt.npz"]

    done = run_module(TRAIN, "--data", small, "--threads", 1, "--resume", checkpoint,
                      "--save", model)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert_identical_npz(reference, model)


def test_ctrl_c_hint_works_as_printed(small, tmp_path) -> None:
    checkpoint = tmp_path / "ckpt.npz"
    process = start_module(TRAIN, *on_small(small, *KILL_RUN, "--checkpoint", checkpoint))
    assert wait_for_new_checkpoint(process, checkpoint, None), "finished before a checkpoint"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130
    command = err.split("Continue with: ", 1)[1].strip()
    assert command.startswith(TRAIN_PROG + " ")
    args = shlex.split(command)[3:]
    done = subprocess.run(
        [sys.executable, "-m", TRAIN, *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr


def test_a_ctrl_c_during_a_kernel_call_is_raised_when_the_call_is_done(small, monkeypatch) -> None:
    """Not inside Numba's passing of the kernels by address, where it became a TypeError."""
    from fastnn.kernels import tile_plumbing

    images, labels = fastnn.load_mnist(small)[:2]
    real_epoch = tile_plumbing.train_epoch
    finished = []

    def interrupted_epoch(*arguments):
        signal.raise_signal(signal.SIGINT)  # Ctrl-C as the call starts
        finished.append(real_epoch(*arguments))
        return finished[-1]

    monkeypatch.setattr(tile_plumbing, "train_epoch", interrupted_epoch)
    with pytest.raises(KeyboardInterrupt):
        fastnn.train(images, labels, epochs=2, dev_size=DEV, threads=1)
    assert len(finished) == 1  # the first epoch ran to its end, then the Ctrl-C was raised


def test_ctrl_c_just_after_a_checkpoint_is_renamed_into_place(small, tmp_path, capsys,
                                                               monkeypatch):  # fmt: skip
    """Ctrl-C arriving in the instant after os.replace, simulated in this process."""
    real_save = fastnn.train.save_checkpoint

    def save_then_interrupt(*args, **kwargs):
        real_save(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(fastnn.train, "save_checkpoint", save_then_interrupt)
    checkpoint = tmp_path / "ckpt.npz"
    status, _, err = train(on_small(small, "--epochs", 3, "--checkpoint", checkpoint), capsys)
    assert status == 130
    assert load_checkpoint(checkpoint)[1].epoch == 1
    assert "--resume" in err
    assert "holds epoch 1" in err


# ---- what --resume accepts and refuses -------------------------------------------------------


@pytest.fixture
def one_epoch_checkpoint(small, tmp_path, capsys) -> Path:
    checkpoint = tmp_path / "ckpt.npz"
    status, _, err = train(on_small(small, "--epochs", 1, "--checkpoint", checkpoint), capsys)
    assert status == 0, err
    return checkpoint


def test_resume_refuses_contradicting_settings(small, one_epoch_checkpoint, capsys) -> None:
    status, out, err = train(
        ["--data", small, "--resume", one_epoch_checkpoint, "--lr", "0.01", "--hidden", "32"],
        capsys,
    )
    assert status == 2
    assert_one_line_error(err, str(one_epoch_checkpoint), "--lr 0.01", "--hidden 32")
    assert out == ""
    assert load_checkpoint(one_epoch_checkpoint)[1].epoch == 1


def test_resume_accepts_settings_that_agree(small, one_epoch_checkpoint, capsys) -> None:
    status, out, err = train(
        ["--data", small, "--threads", 1, "--resume", one_epoch_checkpoint, "--lr", "0.001",
         "--hidden", "10", "--dev-size", DEV, "--epochs", 2],
        capsys,
    )  # fmt: skip
    assert status == 0, err
    assert [line[0] for line in epoch_lines(out)] == [2]


def test_resume_with_more_epochs(small, one_epoch_checkpoint, tmp_path, capsys) -> None:
    metrics = tmp_path / "metrics.json"
    status, out, err = train(
        ["--data", small, "--threads", 1, "--resume", one_epoch_checkpoint, "--epochs", 3,
         "--metrics", metrics],
        capsys,
    )  # fmt: skip
    assert status == 0, err
    assert [line[0] for line in epoch_lines(out)] == [2, 3]
    assert [record["epoch"] for record in json.loads(metrics.read_text())["history"]] == [1, 2, 3]
    assert load_checkpoint(one_epoch_checkpoint)[1].epoch == 3


def test_resume_on_other_data_is_refused(one_epoch_checkpoint, tmp_path_factory, capsys):
    other = real_subset(tmp_path_factory, N_TRAIN, N_TEST, first=N_TRAIN)
    status, out, err = train(["--data", other, "--resume", one_epoch_checkpoint], capsys)
    assert status == 2
    assert_one_line_error(err, str(one_epoch_checkpoint), "other data")
    assert "epoch" not in out


def broken_checkpoints(good: Path) -> dict[str, bytes]:
    content = good.read_bytes()
    with np.load(good, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["theta"] = arrays["theta"].copy()
    arrays["theta"][3] = np.nan
    nan_file = good.with_name("nan.npz")
    np.savez(nan_file, **arrays)
    return {
        "truncated to half": content[: len(content) // 2],
        "truncated by 100 bytes": content[:-100],
        "not a zip": b"this is not a checkpoint\n",
        "empty": b"",
        "theta has NaN": nan_file.read_bytes(),
    }


@pytest.mark.parametrize(
    "kind", ["truncated to half", "truncated by 100 bytes", "not a zip", "empty", "theta has NaN"]
)
def test_broken_checkpoint_is_refused(kind, small, one_epoch_checkpoint, tmp_path, capsys):
    broken = tmp_path / "broken.npz"
    broken.write_bytes(broken_checkpoints(one_epoch_checkpoint)[kind])
    status, out, err = train(["--data", small, "--resume", broken], capsys)
    assert status == 2
    assert_one_line_error(err, str(broken))
    assert out == ""


def test_model_file_is_not_a_checkpoint(small, tmp_path, capsys) -> None:
    model = tmp_path / "model.npz"
    status, _, err = train(on_small(small, "--epochs", 1, "--save", model), capsys)
    assert status == 0, err
    status, _, err = train(["--data", small, "--resume", model], capsys)
    assert status == 2
    assert_one_line_error(err, str(model), "checkpoint")


@pytest.mark.parametrize("corruption", ZIP_CORRUPTIONS)
def test_checkpoint_with_corrupt_zip_header(corruption, small, one_epoch_checkpoint, tmp_path,
                                            capsys):  # fmt: skip
    broken = tmp_path / "broken.npz"
    broken.write_bytes(corrupt_zip_directory(one_epoch_checkpoint.read_bytes(), corruption))
    status, _, err = train(["--data", small, "--resume", broken], capsys)
    assert status == 2
    assert_one_line_error(err, str(broken))
