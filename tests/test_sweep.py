"""python -m fastnn.sweep: a strict grid, identical weights wherever a configuration runs (this
process, local worker processes, a Dask LocalCluster, the training command), nothing lost when a
worker is killed or the sweep is interrupted, and the files, table and figures it leaves.

All on small subsets of the real MNIST (tests/cli_helpers.py).
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import (
    TRAIN,
    assert_identical_npz,
    assert_one_line_error,
    real_subset,
    run_in_process,
    run_module,
    without_seconds,
)

from fastnn import sweep

SWEEP = "fastnn.sweep"
PROG = "python -m fastnn.sweep"

# Four tiny configurations: 2500 images trained on, 500 dev, 1000 test.
GRID = ["--lr", "0.001", "0.003", "--seed", "0", "1", "--epochs", "2", "--dev-size", "500"]
# Four configurations of a second or two each, so that a kill lands in the middle of one.
SLOW_GRID = [
    "--hidden", "128", "--lr", "0.001", "0.003", "--seed", "0", "1",
    "--epochs", "12", "--dev-size", "1000",
]  # fmt: skip
SCORE_COLUMNS = [
    "dev_accuracy", "test_accuracy", "best_epoch", "epochs_run", "seconds", "threads", "status",
    "error",
]  # fmt: skip
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return real_subset(tmp_path_factory, 3000, 1000)


@pytest.fixture(scope="module")
def larger(tmp_path_factory) -> Path:
    return real_subset(tmp_path_factory, 8000, 500)


def run_sweep(argv: list, capsys) -> tuple[int, str, str]:
    """`python -m fastnn.sweep ARGV` in this process: (exit status, stdout, stderr)."""
    return run_in_process(sweep.main, PROG, argv, capsys)


def serial_sweep(data: Path, grid: list, folder: Path) -> tuple[Path, str]:
    """The grid run one configuration after another in a `python -m fastnn.sweep` process:
    (its folder, its output)."""
    out = folder / "sweep"
    done = run_module(SWEEP, "--out", out, "--data", data, "--workers", 1, *grid)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "in this process, one at a time" in done.stdout
    return out, done.stdout


@pytest.fixture(scope="module")
def serial(small, tmp_path_factory) -> tuple[Path, str]:
    return serial_sweep(small, GRID, tmp_path_factory.mktemp("serial"))


@pytest.fixture(scope="module")
def slow_serial(larger, tmp_path_factory) -> Path:
    return serial_sweep(larger, SLOW_GRID, tmp_path_factory.mktemp("slow_serial"))[0]


def read_csv(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def read_rows(out: Path) -> list[dict]:
    return json.loads((out / "results.json").read_text())["rows"]


def assert_same_results(first: Path, second: Path) -> None:
    """The same configurations, bit-identical weights, the same scores and histories, each
    trained with one Numba thread."""
    names = sorted(path.name for path in (first / "runs").iterdir())
    assert names == sorted(path.name for path in (second / "runs").iterdir())
    for name in names:
        if name.endswith(".npz"):
            assert_identical_npz(first / "runs" / name, second / "runs" / name)
    for a, b in zip(read_rows(first), read_rows(second), strict=True):
        assert a["threads"] == b["threads"] == 1
        assert a.pop("seconds") is not None and b.pop("seconds") is not None
        a["history"], b["history"] = without_seconds(a["history"]), without_seconds(b["history"])
        assert a == b


# ---- the grid is checked before any work ---------------------------------------------------


@pytest.mark.parametrize(
    ("values", "named"),
    [
        (["--lr", "0.001", "-1"], "'-1'"),
        (["--hidden", "10", "32,0"], "'32,0'"),
        (["--activation", "relu", "swish"], "swish"),
        (["--batch-size", "100", "abc"], "'abc'"),
        (["--seed", "0", "1", "0"], "--seed: 0 is given twice"),
        (["--lr", "0.001", "1e-3"], "--lr: 0.001 is given twice"),
        (["--batch-size", "100", "2600"], "--batch-size 2600"),
        (["--dev-size", "500", "3000"], "--dev-size 3000"),
        (["--dev-size", "0"], "--dev-size 0"),
        (["--patience", "2", "--dev-size", "500", "0"], "--dev-size 0"),
        (["--workers", "0"], "'0'"),
    ],
)
def test_a_bad_value_anywhere_stops_the_sweep_before_any_work(
    values, named, small, tmp_path, capsys, monkeypatch
) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a configuration was trained")

    monkeypatch.setattr(sweep, "run_configuration", refuse)
    out = tmp_path / "sweep"
    argv = ["--out", out, "--data", small, "--dev-size", "500", *values]
    status, _, err = run_sweep(argv, capsys)
    assert status == 2
    assert_one_line_error(err, named)
    assert not out.exists()


def test_help_offers_every_training_setting_and_none_of_the_single_run_files() -> None:
    text = run_module(SWEEP, "--help").stdout
    for option in ["--hidden", "--lr", "--seed", "--optimizer", "--batch-size", "--patience"]:
        assert f"{option} " in text
    for option in ["--save", "--resume", "--checkpoint", "--metrics", "--threads"]:
        assert option not in text
    for option in ["--out", "--workers", "--scheduler", "--data"]:
        assert option in text


# ---- identical wherever it runs ------------------------------------------------------------


def test_serial_run_writes_every_row_table_best_model_and_figures(serial, small) -> None:
    out, stdout = serial
    rows = read_csv(out / "results.csv")
    assert len(rows) == 4
    settings = list(sweep.config_settings(sweep.TrainConfig()))
    assert list(rows[0])[: 2 + len(settings)] == ["run", "id", *settings]
    assert all(column in rows[0] for column in SCORE_COLUMNS)
    assert [(row["lr"], row["seed"]) for row in rows] == [
        ("0.001", "0"), ("0.001", "1"), ("0.003", "0"), ("0.003", "1"),
    ]  # fmt: skip
    assert {row["status"] for row in rows} == {"ok"}
    full = read_rows(out)
    for row in full:
        assert len(row["history"]) == row["epochs_run"] == 2
        assert 0.5 < row["dev_accuracy"] < 1 and 0.5 < row["test_accuracy"] < 1
        saved = json.loads((out / "runs" / f"{row['id']}.json").read_text())
        assert saved["dev_accuracy"] == row["dev_accuracy"]

    # The printed table: best dev accuracy first; the best model is that row's network.
    table = stdout[stdout.index("dev acc") :].splitlines()[1:5]
    printed = [float(line.split()[2].rstrip("%")) for line in table]
    assert printed == sorted(printed, reverse=True)
    best = max(full, key=lambda row: (row["dev_accuracy"], -row["run"]))
    assert printed[0] == pytest.approx(100 * best["dev_accuracy"], abs=0.005)
    assert_identical_npz(out / "best_model.npz", out / "runs" / f"{best['id']}.npz")
    assert "[4/4]" in stdout and "done 4/4" in stdout  # not a terminal: one line per row

    for name in ["dev_accuracy.png", "learning_curves.png"]:
        content = (out / name).read_bytes()
        assert content.startswith(PNG_SIGNATURE) and len(content) > 10_000


def test_the_best_is_picked_by_dev_accuracy_never_by_test_accuracy(serial) -> None:
    out, _ = serial
    rows = read_rows(out)
    for row in rows:  # make the dev-worst the test-best
        row["test_accuracy"] = 1 - row["dev_accuracy"]
    best = sweep.best_row(rows)
    assert best["dev_accuracy"] == max(row["dev_accuracy"] for row in rows)


def test_training_command_gives_the_weights_the_sweep_saved(serial, small, tmp_path) -> None:
    out, _ = serial
    row = read_rows(out)[3]  # lr 0.003, seed 1
    model = tmp_path / "model.npz"
    done = run_module(
        TRAIN, "--data", small, "--lr", "0.003", "--seed", "1", "--epochs", "2",
        "--dev-size", "500", "--threads", "1", "--save", model,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert_identical_npz(model, out / "runs" / f"{row['id']}.npz")


# Two local worker processes and a Dask LocalCluster give the serial results: below, where a
# worker is killed on the way.


# ---- the output folder ---------------------------------------------------------------------


def copy_folder(source: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(source, target)
    return target


def test_rerun_skips_what_is_finished(serial, small, tmp_path, capsys, monkeypatch) -> None:
    out = copy_folder(serial[0], tmp_path / "sweep")
    (out / "runs" / f"{read_rows(out)[1]['id']}.json").unlink()  # as if it never finished
    trained = []
    real = sweep.run_configuration

    def counting(settings, data):
        trained.append((settings["lr"], settings["seed"]))
        return real(settings, data)

    monkeypatch.setattr(sweep, "run_configuration", counting)
    status, stdout, err = run_sweep(["--out", out, "--data", small, "--workers", 1, *GRID], capsys)
    assert status == 0, err
    assert "3 finished already, 1 to run" in stdout
    assert trained == [(0.001, 1)]
    assert_same_results(serial[0], out)

    status, stdout, err = run_sweep(["--out", out, "--data", small, *GRID], capsys)
    assert status == 0, err
    assert "4 finished already, 0 to run" in stdout and trained == [(0.001, 1)]


def test_an_out_folder_of_another_grid_is_refused(serial, small, tmp_path, capsys) -> None:
    out = copy_folder(serial[0], tmp_path / "sweep")
    other = [*GRID[:-2], "--dev-size", "600", "--l2", "0.001", "--seed", "0", "1", "2"]
    status, _, err = run_sweep(["--out", out, "--data", small, *other], capsys)
    assert status == 2
    assert_one_line_error(
        err, "holds a different sweep", "--dev-size was 500, now 600", "--seed was 0 1, now 0 1 2"
    )


def test_an_out_folder_of_other_data_is_refused(serial, tmp_path_factory, tmp_path, capsys) -> None:
    out = copy_folder(serial[0], tmp_path / "sweep")
    other = real_subset(tmp_path_factory, 3000, 1000, first=3000)
    status, _, err = run_sweep(["--out", out, "--data", other, *GRID], capsys)
    assert status == 2
    assert_one_line_error(err, "holds a different sweep", "the data was")


def test_a_folder_that_is_not_a_sweep_is_refused(small, tmp_path, capsys) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    status, _, err = run_sweep(["--out", tmp_path, "--data", small, *GRID], capsys)
    assert status == 2
    assert_one_line_error(err, "no sweep.json")


def test_without_matplotlib_it_says_how_to_install_and_still_writes_results(
    serial, small, tmp_path, capsys, monkeypatch
) -> None:
    out = copy_folder(serial[0], tmp_path / "sweep")
    for name in ["results.csv", "results.json", "dev_accuracy.png", "learning_curves.png"]:
        (out / name).unlink()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    status, stdout, err = run_sweep(["--out", out, "--data", small, *GRID], capsys)
    assert status == 0, err
    assert 'pip install "fastnn-loops[plot]"' in stdout
    assert len(read_csv(out / "results.csv")) == 4 and len(read_rows(out)) == 4
    assert not (out / "dev_accuracy.png").exists()


# ---- failures ------------------------------------------------------------------------------


def test_a_diverging_configuration_is_recorded_and_the_sweep_goes_on(
    small, tmp_path, capsys
) -> None:
    out = tmp_path / "sweep"
    argv = ["--out", out, "--data", small, "--workers", 1, "--optimizer", "sgd"]
    argv += ["--lr", "0.1", "1e30", "--epochs", "2", "--dev-size", "500"]
    status, stdout, err = run_sweep(argv, capsys)
    assert status == 0, err
    good, diverged = read_rows(out)
    assert good["status"] == "ok" and good["error"] is None
    assert diverged["status"] == "failed" and "diverged in epoch 1" in diverged["error"]
    assert diverged["dev_accuracy"] is None and diverged["weights_sha256"] is None
    assert read_csv(out / "results.csv")[1]["status"] == "failed"
    assert "failed: training diverged" in stdout
    assert not (out / "runs" / f"{diverged['id']}.npz").exists()
    # recorded: a rerun does not try it again
    status, stdout, err = run_sweep(argv, capsys)
    assert "2 finished already, 0 to run" in stdout


def worker_processes(pid: int) -> list:
    """The processes a sweep started to train in: multiprocessing 'spawn' children (local pool
    workers, or Dask worker processes), not its resource tracker."""
    import psutil

    children = psutil.Process(pid).children(recursive=True)
    return [child for child in children if "spawn_main" in " ".join(child.cmdline())]


def start_sweep(*argv) -> subprocess.Popen:
    """The sweep in its own process group, as a terminal runs it (Ctrl-C reaches the group)."""
    return subprocess.Popen(
        [sys.executable, "-m", SWEEP, *map(str, argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def read_until(process: subprocess.Popen, prefix: str, seen: list[str]) -> None:
    """Read the sweep's output lines into `seen` until one starts with `prefix`."""
    for line in process.stdout:
        seen.append(line)
        if line.startswith(prefix):
            return
    raise AssertionError(f"no line starting {prefix!r} in:\n{''.join(seen)}")


def assert_every_row_once(out: Path, n: int) -> None:
    rows = read_csv(out / "results.csv")
    assert len(rows) == n and len({row["id"] for row in rows}) == n
    assert {row["status"] for row in rows} == {"ok"}
    assert len(list((out / "runs").glob("*.json"))) == n


def kill_a_worker_after_the_first_row(process: subprocess.Popen, seen: list[str]) -> None:
    """kill -9 the worker process that is using the CPU most: one in the middle of training."""
    read_until(process, "[1/", seen)
    workers = worker_processes(process.pid)
    assert workers, "no worker processes found"
    for worker in workers:
        worker.cpu_percent()  # starts the count
    time.sleep(0.5)
    usage = {worker.pid: worker.cpu_percent() for worker in workers}
    busiest = max(workers, key=lambda worker: usage[worker.pid])
    assert usage[busiest.pid] > 5, f"no worker is training: {usage}"  # an idle one uses ~0%
    busiest.kill()


def test_dask_local_cluster_with_a_worker_killed_gives_the_serial_results(
    larger, slow_serial, tmp_path
) -> None:
    out = tmp_path / "sweep"
    process = start_sweep(
        "--out", out, "--data", larger, "--scheduler", "local", "--workers", 2, *SLOW_GRID
    )
    seen: list[str] = []
    try:
        kill_a_worker_after_the_first_row(process, seen)
        stdout, stderr = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, "".join(seen) + stdout + stderr
    output = "".join(seen) + stdout
    assert "on a LocalCluster of 2 workers, 2 threads" in output
    # Not asserted: the "left the cluster" line. The sweep polls the worker list once a second,
    # and on a loaded machine the nanny's restart can fall between two polls (seen in CI).
    assert_every_row_once(out, 4)
    assert_same_results(slow_serial, out)


def test_killed_local_worker_then_ctrl_c_then_rerun_every_row_once_and_identical(
    larger, slow_serial, tmp_path
) -> None:
    out = tmp_path / "sweep"
    argv = ["--out", out, "--data", larger, "--workers", 2, *SLOW_GRID]
    process = start_sweep(*argv)
    seen: list[str] = []
    try:
        kill_a_worker_after_the_first_row(process, seen)
        read_until(process, "a worker process died; a new one trains again", seen)
        workers = worker_processes(process.pid)
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches every process
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert "in 2 worker processes" in "".join(seen)
    assert process.returncode == 130, "".join(seen) + stdout + stderr
    assert "Traceback" not in stderr, stderr
    assert (
        "interrupted:" in stderr and "run the same command again: python -m fastnn.sweep" in stderr
    )
    saved = len(list((out / "runs").glob("*.json")))
    assert 1 <= saved < 4
    assert f"interrupted: {saved} of 4 configurations are finished" in stderr
    assert len(read_csv(out / "results.csv")) == saved
    time.sleep(0.5)
    assert workers and not [worker for worker in workers if worker.is_running()]

    done = run_module(SWEEP, *argv)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{saved} finished already, {4 - saved} to run" in done.stdout
    assert_every_row_once(out, 4)
    assert_same_results(slow_serial, out)


def train_unless_seed_1(settings: dict) -> dict:
    """A worker's task that dies, as a killed process does, on the configurations of seed 1."""
    if settings["seed"] == 1:
        os._exit(9)
    return sweep.run_in_worker(settings)


def test_a_configuration_that_kills_its_worker_every_time_is_failed_after_three(small) -> None:
    dataset = sweep.resolve_data(str(small))
    data = sweep.SweepData(
        dataset.train_images, dataset.train_labels, dataset.test_images, dataset.test_labels
    )
    args = sweep.build_parser().parse_args(["--out", "unused", *GRID])
    configurations = sweep.expand(sweep.grid_from_args(args))
    lost = []
    runner = sweep.LocalRunner(data, 2, lost.append, task=train_unless_seed_1)
    outcomes = {
        (configuration.config.lr, configuration.config.seed): outcome
        for configuration, outcome in runner.run(configurations, lambda: None)
    }
    assert len(outcomes) == 4
    for (_, seed), outcome in outcomes.items():
        if seed == 1:
            assert outcome["status"] == "failed" and outcome["lost"]
            assert outcome["error"] == f"its worker process died {sweep.MAX_ATTEMPTS} times"
        else:
            assert outcome["status"] == "ok", outcome
    # Only the configuration a worker was training when it died is run again: twice each.
    assert sorted(configuration.run for configuration in lost) == [2, 2, 4, 4]
    assert runner.pool == []
    runner.stop()
    assert runner.leaving == []


def two_seeds_no_images() -> tuple[list, sweep.SweepData]:
    """Two configurations (seeds 0 and 1) and no images: for workers whose task trains nothing."""
    args = sweep.build_parser().parse_args(["--out", "unused", "--seed", "0", "1"])
    no_images = np.zeros((0, 784), np.uint8)
    data = sweep.SweepData(no_images, np.zeros(0, np.uint8), None, None)
    return sweep.expand(sweep.grid_from_args(args)), data


def slow_on_seed_0(settings: dict) -> dict:
    """A worker's task that takes 4 s on seed 0 and no time on the others."""
    if settings["seed"] == 0:
        time.sleep(4)
    return {"seed": settings["seed"]}


def test_a_worker_with_nothing_left_to_train_ends_at_once() -> None:
    """Not when the sweep ends: the sweep writes its results and figures meanwhile."""
    configurations, data = two_seeds_no_images()
    runner = sweep.LocalRunner(data, 2, lambda configuration: None, task=slow_on_seed_0)
    ended_while_seed_0_trained = None
    for _, outcome in runner.run(configurations, lambda: None):
        if outcome["seed"] == 1:
            (idle,) = runner.leaving
            idle.process.join(3)
            ended_while_seed_0_trained = not idle.process.is_alive() and len(runner.pool) == 1
    assert ended_while_seed_0_trained
    busy = runner.leaving[-1].process
    runner.stop()
    assert runner.leaving == [] and not busy.is_alive()


def scipy_and_numba(settings: dict) -> dict:
    """A worker's task: whether its process has loaded Numba and SciPy, or blocked SciPy."""

    def state(name: str) -> str:
        if name not in sys.modules:
            return "absent"
        return "blocked" if sys.modules[name] is None else "loaded"

    return {name: state(name) for name in ("numba", "scipy")}


def test_a_local_worker_loads_numba_without_scipy() -> None:
    """Like a command (cli.without_scipy): Numba would import SciPy, where it is installed, to
    look for a BLAS that fastnn's loops never call; 0.25 s of each worker's start."""
    pytest.importorskip("scipy")
    configurations, data = two_seeds_no_images()
    runner = sweep.LocalRunner(
        data, 2, lambda configuration: None, task=scipy_and_numba, warm=configurations[0].settings
    )
    try:
        outcomes = [outcome for _, outcome in runner.run(configurations, lambda: None)]
    finally:
        runner.stop()
    assert outcomes == [{"numba": "loaded", "scipy": "blocked"}] * 2


def test_a_local_cluster_worker_runs_without_scipy() -> None:
    """--scheduler local: the LocalCluster's workers are the sweep's own processes too."""
    pytest.importorskip("distributed")
    pytest.importorskip("scipy")
    _, data = two_seeds_no_images()
    runner = sweep.DaskRunner(data, "local", 1, print)
    try:
        loaded = runner.client.submit(scipy_and_numba, {}).result(timeout=120)
    finally:
        runner.close()
    assert loaded["scipy"] == "blocked"


# ---- the display ---------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_status_line_updates_in_place(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    stream = Terminal()
    rows: dict = {}
    progress = sweep.Progress(3, rows, ["lr"], stream=stream)
    progress.tick()
    row = {
        "run": 1, "id": "a", "lr": 0.003, "status": "ok", "dev_accuracy": 0.9,
        "test_accuracy": 0.8, "epochs_run": 2, "seconds": 1.0, "error": None,
    }  # fmt: skip
    rows["a"] = row
    progress.finished(row)
    progress.close()
    text = stream.getvalue()
    assert text.startswith("\r\x1b[Kdone 0/3, running 0, left 3; best: none yet")
    assert "\r\x1b[K[1/3] lr 0.003: dev 90.00%, test 80.00%, 2 epochs, 1.0 s\n" in text
    assert "\r\x1b[Kdone 1/3, running 0, left 2; best dev 90.00% (lr 0.003)" in text
    assert text.endswith("\r\x1b[K")
    assert np.all([len(line) <= 100 for line in text.split("\r")])
