"""python -m fastnn.sweep: train every combination of some settings and compare them.

    python -m fastnn.sweep --out sweep1 --hidden 10 32 128,64 --lr 0.001 0.003 --seed 0 1 2

Every training flag of `python -m fastnn.train` may take several values; the grid is the
product of the lists. Each configuration is one training with one Numba thread, run in
`--workers` local worker processes (default: one per core) or, with `--scheduler`, on a Dask
cluster. The dev accuracy picks the best configuration; the test accuracy is reported for each
but picks nothing.

What the output folder holds, each file written atomically:

    sweep.json         the grid and a fingerprint of the data: a rerun must match it
    runs/<id>.json     one finished configuration: its settings, scores and per-epoch history
    runs/<id>.npz      its trained network (a fastnn model file)
    results.csv/.json  one row per configuration, rewritten as each one finishes
    best_model.npz     the network with the best dev accuracy
    *.png              the figures (sweep_figures.py)

Running the same command again skips the configurations that have a runs/<id>.json.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib
import io
import itertools
import json
import os
import shlex
import shutil
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from . import cli
from .api import fit
from .checkpoint import data_fingerprint
from .data import Dataset, resolve_data
from .errors import FastnnError
from .model import Network, atomic_write, save_model
from .sweep_figures import import_matplotlib, write_figures
from .training import TrainConfig, ctrl_c_deferred

PROG = "python -m fastnn.sweep"
# The module, not the function fastnn.train (the Python API) that the package exports.
train_command = importlib.import_module("fastnn.train")
SPEC_FORMAT = "fastnn-sweep"
SPEC_VERSION = 1

# The training flags a sweep takes are those that set a field of TrainConfig; the others
# (--data, one for the whole sweep; --threads, always one; the single run's files) it does not.
SWEPT_FIELDS = frozenset(field.name for field in fields(TrainConfig))
SCORES = (
    "dev_accuracy", "test_accuracy", "best_epoch", "epochs_run", "seconds", "threads", "status",
    "error",
)  # fmt: skip
# A configuration whose worker process dies this many times is recorded as failed (not saved in
# runs/, so the next run of the sweep tries it again). Dask's own limit is its allowed-failures.
MAX_ATTEMPTS = 3
DEFAULT_TOP = 5


def core_count() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# ---- the command line ------------------------------------------------------------------------


def training_flag_groups() -> list[tuple[str, list[argparse.Action]]]:
    """The training command's flags, by group, as its own parser defines them (types,
    validators, choices, defaults, help): the sweep validates every value as strictly."""
    groups = []
    for title, actions in train_command.flag_groups():
        swept = [action for action in actions if action.dest in SWEPT_FIELDS]
        if swept:
            groups.append((title, swept))
    return groups


def training_action(dest: str) -> argparse.Action:
    """One of the training command's flags, e.g. 'data'."""
    for action in train_command.build_parser()._actions:
        if action.dest == dest:
            return action
    raise KeyError(dest)


def parsed_default(action: argparse.Action) -> object:
    """The flag's default as its type makes it (argparse converts string defaults)."""
    if isinstance(action.default, str) and action.type is not None:
        return action.type(action.default)
    return action.default


def spell(dest: str, value: object) -> str:
    """A setting's value as one writes it on the command line: 128,64; full; 0.001."""
    if value is None:
        return {"batch_size": "full", "init": "default", "patience": "none"}.get(dest, "none")
    if isinstance(value, tuple | list):
        return ",".join(str(item) for item in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def build_parser() -> argparse.ArgumentParser:
    parser = cli.Parser(
        prog=PROG,
        description="Train every combination of the given settings on MNIST, on every core of "
        "this machine or on a Dask cluster, and compare them by dev accuracy. Each training flag "
        "of python -m fastnn.train may take several values, separated by spaces; the grid is "
        "the product of the lists.",
        epilog="example: %(prog)s --out sweep1 --hidden 10 32 128,64 --lr 0.001 0.003 "
        "--seed 0 1 2 --epochs 10",
    )
    sweep = parser.add_argument_group("sweep")
    sweep.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help="folder for the results; run the same command again to finish an interrupted sweep",
    )
    sweep.add_argument(
        "--workers",
        type=cli.whole_number(1),
        default=core_count(),
        help="configurations trained at once, one worker process each, one Numba thread each "
        "(default: the number of cores, here %(default)s); with --scheduler local, the "
        "number of Dask worker processes",
    )
    sweep.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on the Dask cluster whose scheduler is at ADDRESS (e.g. tcp://host:8786), "
        "or 'local' for a LocalCluster of --workers processes on this machine",
    )
    sweep.add_argument(
        "--top",
        type=cli.whole_number(1),
        default=DEFAULT_TOP,
        help="the learning-curves figure shows this many best configurations "
        "(default: %(default)s)",
    )
    data = training_action("data")
    sweep.add_argument("--data", metavar=data.metavar, help=data.help)
    for title, actions in training_flag_groups():
        group = parser.add_argument_group(f"{title} (each flag takes one or more values)")
        for action in actions:
            default = parsed_default(action)
            shown = "" if default is None else f" (default: {spell(action.dest, default)})"
            group.add_argument(
                *action.option_strings,
                dest=action.dest,
                type=action.type,
                choices=action.choices,
                nargs="+",
                default=[default],
                metavar=action.metavar,
                help=(action.help or "") + shown,
            )
    return parser


def grid_from_args(args: argparse.Namespace) -> dict[str, list]:
    """Each training setting's list of values, in the order the training command lists its
    flags; a value given twice is refused."""
    grid = {}
    for _, actions in training_flag_groups():
        for action in actions:
            values = getattr(args, action.dest)
            for i, value in enumerate(values):
                if value in values[:i]:
                    raise FastnnError(
                        f"{flag(action.dest)}: {spell(action.dest, value)} is given twice"
                    )
            grid[action.dest] = values
    return grid


def swept_settings(grid: dict[str, list]) -> list[str]:
    """The settings given more than one value."""
    return [dest for dest, values in grid.items() if len(values) > 1]


@dataclass(frozen=True)
class Configuration:
    """One point of the grid: its place in the grid (1, 2, ...), its id, its settings."""

    run: int
    id: str
    config: TrainConfig

    @property
    def settings(self) -> dict:
        return config_settings(self.config)


def config_settings(config: TrainConfig) -> dict:
    """A configuration's settings under the names `--metrics` uses (fastnn.train.write_metrics)."""
    return {**vars(config), "hidden": list(config.hidden)}


def config_id(config: TrainConfig) -> str:
    """A short name for a configuration, the same wherever and whenever it runs."""
    text = json.dumps(config_settings(config), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def expand(grid: dict[str, list]) -> list[Configuration]:
    """The product of the lists, the last flag's values changing fastest."""
    configurations = []
    for run, values in enumerate(itertools.product(*grid.values()), start=1):
        config = train_command.config_from_args(
            argparse.Namespace(**dict(zip(grid, values, strict=True)))
        )
        configurations.append(Configuration(run, config_id(config), config))
    return configurations


def check_configurations(configurations: Sequence[Configuration], n_train: int) -> None:
    """What the training command checks once the data is known, for every configuration."""
    for configuration in configurations:
        config = configuration.config
        if config.dev_size == 0:
            raise FastnnError("--dev-size 0 leaves no dev images to compare configurations by")
        train_command.check_sizes(config, n_train)


def describe(settings: dict, swept: Sequence[str]) -> str:
    """The swept settings of a configuration: 'hidden 128,64, lr 0.001, seed 2'."""
    if not swept:
        return "the one configuration"
    return ", ".join(f"{dest.replace('_', '-')} {spell(dest, settings[dest])}" for dest in swept)


# ---- one configuration, wherever it runs --------------------------------------------------------


@dataclass(frozen=True)
class SweepData:
    """What every worker needs: the training images and, if any, the test images (uint8)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray | None
    test_labels: np.ndarray | None


# Numba's "workqueue" threading layer must not be entered by two threads at once; a Dask worker
# with several threads would do that. OpenMP and TBB may; before the first parallel call the
# layer is unknown, so the first training of a process takes the lock.
_workqueue_lock = threading.Lock()


def training_lock():
    import numba

    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = None
    return _workqueue_lock if layer in (None, "workqueue") else nullcontext()


def run_configuration(settings: dict, data: SweepData) -> dict:
    """Train one configuration with one Numba thread and score it on the dev and test images.

    Returns its scores, its per-epoch history and, if it trained, θ and the network's shape.
    A failed training (a diverging loss, or any error) comes back as status 'failed' with the
    reason; it does not raise, so the sweep goes on.
    """
    import numba

    numba.set_num_threads(1)  # per thread: a Dask worker runs each task in a thread of its own
    threads = numba.get_num_threads()
    config = TrainConfig(**{**settings, "hidden": tuple(settings["hidden"])})
    history = []
    started = time.perf_counter()
    outcome: dict = {"history": history, "epochs_run": 0, "threads": threads}
    try:
        with training_lock():
            result = fit(
                config,
                data.train_images,
                data.train_labels,
                classes=np.arange(train_command.N_CLASSES),
                on_epoch=[lambda record: history.append(asdict(record))],
            )
            net = result.network
            test_accuracy = None
            if data.test_images is not None:
                predicted = result.predict(data.test_images, config.backend)
                test_accuracy = float(np.mean(predicted == data.test_labels))
    except Exception as error:  # recorded, not raised: one bad configuration ends nothing
        message = " ".join(str(error).split()) or type(error).__name__
        outcome.update(status="failed", error=message, epochs_run=len(history))
    else:
        outcome.update(
            status="ok",
            error=None,
            dev_accuracy=result.history[result.best_epoch - 1].dev_accuracy,
            test_accuracy=test_accuracy,
            best_epoch=result.best_epoch,
            epochs_run=len(result.history),
            theta=net.theta,
            sizes=list(net.sizes),
            activation=net.activation,
            loss=net.loss,
        )
    outcome["seconds"] = time.perf_counter() - started
    return outcome


_worker_data: SweepData | None = None


def run_in_worker(settings: dict) -> dict:
    """A local worker's task: one configuration, on the images the worker was started with."""
    return run_configuration(settings, _worker_data)


def warm_up(settings: dict) -> None:
    """Load (or compile) the kernels a configuration trains with, on four blank images, while
    the sweep is still reading the data: the first real configuration then starts at once."""
    import numba

    numba.set_num_threads(1)
    config = {**settings, "epochs": 1, "dev_size": 1, "batch_size": None, "patience": None}
    with suppress(Exception):  # only time is at stake: the real training reports any error
        fit(
            TrainConfig(**{**config, "hidden": tuple(config["hidden"])}),
            np.zeros((4, 784), np.uint8),
            np.arange(4) % 2,
            classes=np.arange(train_command.N_CLASSES),
        )


def worker_main(connection, task: Callable[[dict], dict], warm: dict | None) -> None:
    """A local worker process: warm the kernels up for `warm`, receive the images (once), then
    train each configuration the sweep sends until it sends None. Ctrl-C is left to the sweep,
    which stops its workers itself. Like a command, it is a cli.fastnn_process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with cli.fastnn_process():
        serve(connection, task, warm)


def serve(connection, task: Callable[[dict], dict], warm: dict | None) -> None:
    global _worker_data
    if warm is not None:
        warm_up(warm)
    try:
        _worker_data = connection.recv()
    except EOFError:
        return
    if _worker_data is None:
        return
    while True:
        try:
            settings = connection.recv()
        except EOFError:
            return
        if settings is None:
            return
        connection.send(task(settings))


@contextmanager
def sigint_blocked() -> Iterator[None]:
    """Start worker processes with Ctrl-C blocked from their first instruction (a new program
    keeps the signal mask): Ctrl-C reaches every process of the terminal, and the sweep stops
    its workers itself, without a traceback from each. In this process a Ctrl-C pressed
    meanwhile waits, and arrives when the block ends.

    The mask alone is not enough here: a Ctrl-C that reached Python just before it is raised
    at Python's next check, which may fall inside the start, between launching the worker and
    sending it what it runs (the worker then dies with a traceback). So the Python handler too
    only notes a Ctrl-C meanwhile, and it is raised again once the start is done."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    with ctrl_c_deferred():
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


# ---- where configurations run ----------------------------------------------------------------

Completion = tuple[Configuration, dict]


class Runner:
    """Runs configurations and yields each (configuration, outcome) as it finishes; the
    `running` attribute is how many are in training now, for the progress display."""

    where = ""
    running = 0

    def run(self, todo: Sequence[Configuration], tick: Callable[[], None]) -> Iterator[Completion]:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop at once (Ctrl-C): whatever is running is dropped."""


class SerialRunner(Runner):
    """In this process, one after another."""

    def __init__(self, data: SweepData) -> None:
        self.data = data
        self.where = "in this process, one at a time"

    def run(self, todo, tick):
        for configuration in todo:
            self.running = 1
            tick()
            outcome = run_configuration(configuration.settings, self.data)
            self.running = 0
            yield configuration, outcome


@dataclass
class Worker:
    """A local worker process, the sweep's end of its pipe, and what it is training."""

    process: object
    connection: object
    configuration: Configuration | None = None
    fed: bool = False  # it has been sent the images, whole


class LocalRunner(Runner):
    """Worker processes on this machine, each with a pipe to the sweep, started with 'spawn'
    (a fork of a process that runs Numba's threads can deadlock). The images go to each worker
    once, when it starts. A worker that dies (kill -9, out of memory) is replaced, and the
    configuration it was training, and only that one, starts again on a new worker; one that
    has killed MAX_ATTEMPTS workers is recorded as failed."""

    TICK_SECONDS = 0.25

    def __init__(
        self,
        data: SweepData | None,
        workers: int,
        on_lost: Callable[[Configuration], None],
        task: Callable[[dict], dict] = run_in_worker,
        warm: dict | None = None,
    ) -> None:
        """`task` trains one configuration in a worker (a module-level function, so that the
        workers can import it by name); `warm` is a configuration whose kernels the workers
        load as they start. Without `data` yet, start() starts the workers and provide()
        sends it when it is there."""
        self.workers, self.on_lost, self.task, self.warm = workers, on_lost, task, warm
        self.pool: list[Worker] = []
        self.leaving: list[Worker] = []  # told to end, not yet joined
        self.payload: memoryview | None = None  # the images, pickled once for every worker
        if data is not None:
            self.set_data(data)

    @property
    def where(self) -> str:
        return f"in {self.workers} worker processes, one Numba thread each"

    def set_data(self, data: SweepData) -> None:
        """Pickle the images as Connection.send would (55 MB for MNIST), once for all workers:
        the worker's Connection.recv unpickles them."""
        from multiprocessing.reduction import ForkingPickler

        self.payload = ForkingPickler.dumps(data)

    def start(self) -> None:
        """Start the workers now: they import, warm up and wait while the data is read."""
        while len(self.pool) < self.workers:
            self.start_worker()

    def provide(self, data: SweepData) -> None:
        """The images, to every worker started without them, all at once: each is waiting for
        them, or soon will be, once its kernels are loaded."""
        self.set_data(data)
        senders = [
            threading.Thread(target=self.send_data, args=(worker,), daemon=True)
            for worker in self.pool
        ]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()

    def send_data(self, worker: Worker) -> None:
        try:
            worker.connection.send_bytes(self.payload)
        except OSError:
            pass  # it died: the run loop sees it and starts another
        else:
            worker.fed = True

    def start_worker(self) -> None:
        """Start a worker and add it to the pool, before sending it the images: a Ctrl-C during
        the send (it waits until the worker has loaded its kernels) must find it there to stop."""
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(
            target=worker_main, args=(theirs, self.task, self.warm), daemon=True
        )
        with sigint_blocked():
            process.start()
        theirs.close()
        worker = Worker(process, ours)
        self.pool.append(worker)
        if self.payload is not None:
            self.send_data(worker)

    def run(self, todo, tick):
        from multiprocessing.connection import wait as wait_for

        queue = list(todo)
        attempts = dict.fromkeys((c.id for c in todo), 0)
        deaths_at_start = 0
        try:
            while queue or any(worker.configuration for worker in self.pool):
                busy = sum(worker.configuration is not None for worker in self.pool)
                while len(self.pool) < min(self.workers, busy + len(queue)):
                    self.start_worker()
                for worker in self.pool:
                    if worker.configuration is None and queue:
                        worker.configuration = queue.pop(0)
                        worker.connection.send(worker.configuration.settings)
                self.running = sum(worker.configuration is not None for worker in self.pool)
                tick()
                watched = [worker.connection for worker in self.pool]
                watched += [worker.process.sentinel for worker in self.pool]
                ready = set(wait_for(watched, self.TICK_SECONDS))
                for worker in list(self.pool):
                    if worker.connection in ready:
                        try:
                            outcome = worker.connection.recv()
                        except (EOFError, OSError):
                            pass  # it died: its sentinel says so too
                        else:
                            configuration, worker.configuration = worker.configuration, None
                            deaths_at_start = 0
                            if not queue:  # nothing left for it: it ends while others train
                                self.dismiss(worker)
                            yield configuration, outcome
                            continue
                    if worker.process.is_alive():
                        continue
                    # The worker died: replace it, and run what it was training again.
                    self.pool.remove(worker)
                    worker.connection.close()
                    configuration = worker.configuration
                    if configuration is None:
                        deaths_at_start += 1
                        if deaths_at_start >= MAX_ATTEMPTS * self.workers:
                            raise FastnnError(
                                "the sweep's worker processes die as they start (exit code "
                                f"{worker.process.exitcode}); try --workers 1"
                            )
                        continue
                    attempts[configuration.id] += 1
                    if attempts[configuration.id] >= MAX_ATTEMPTS:
                        reason = f"its worker process died {MAX_ATTEMPTS} times"
                        yield configuration, lost_outcome(reason)
                    else:
                        queue.insert(0, configuration)
                        self.on_lost(configuration)
        finally:
            self.stop(wait=False)

    def dismiss(self, worker: Worker) -> None:
        """Tell an idle worker to end; stop() waits for it."""
        self.pool.remove(worker)
        self.leaving.append(worker)
        with suppress(OSError):
            worker.connection.send(None)

    def stop(self, wait: bool = True):
        """End every worker: idle ones when told, busy ones (Ctrl-C) at once. With `wait`, also
        wait until they have ended (the sweep writes its results and figures meanwhile)."""
        for worker in list(self.pool):
            # One not sent the images whole (Ctrl-C during the send) is killed: a None after
            # part of them would be no message it could read
            if worker.configuration is None and worker.fed and worker.process.is_alive():
                self.dismiss(worker)
            else:
                worker.process.kill()
                self.pool.remove(worker)
                self.leaving.append(worker)
        if not wait:
            return
        leaving, self.leaving = self.leaving, []
        for worker in leaving:
            worker.process.join(5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.connection.close()


def lost_outcome(reason: str) -> dict:
    """The outcome of a configuration whose worker never returned; not saved in runs/."""
    return {"status": "failed", "error": reason, "history": [], "epochs_run": 0, "lost": True}


class DaskRunner(Runner):
    """A Dask distributed cluster: a running one at `scheduler`, or a LocalCluster of worker
    processes ('local'). The images are scattered to every worker once, before any training;
    each configuration is one task. When a worker dies, the scheduler gives its task to another
    (up to its allowed-failures, 3 by default)."""

    TICK_SECONDS = 0.25

    def __init__(
        self, data: SweepData, scheduler: str, workers: int, say: Callable[[str], None]
    ) -> None:
        try:
            import distributed
        except ImportError:
            raise FastnnError(
                '--scheduler needs Dask distributed: pip install "fastnn-loops[dask]"'
            ) from None
        import logging

        self.data, self.scheduler, self.workers, self.say = data, scheduler, workers, say
        self.cluster = None
        try:
            if scheduler == "local":
                from .sweep_dask import LocalWorkerSetup

                self.cluster = distributed.LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
                self.client = distributed.Client(self.cluster)
                self.client.register_plugin(LocalWorkerSetup())
            else:
                self.client = distributed.Client(scheduler, timeout="10s")
        except (OSError, ValueError, TimeoutError) as error:
            if self.cluster is not None:
                self.cluster.close()
            reason = " ".join(str(error).split())
            raise FastnnError(f"--scheduler {scheduler}: cannot connect: {reason}") from None
        self.known = self.client.nthreads()
        threads = sum(self.known.values())
        self.threads = max(threads, 1)
        where = "a LocalCluster" if self.cluster else f"the Dask cluster at {scheduler}"
        self.where = f"on {where} of {len(self.known)} workers, {threads} threads"
        self.futures: list = []
        self.checked = time.perf_counter()

    def watch_workers(self) -> None:
        """Say when a worker leaves the cluster (its tasks go to others) or joins it."""
        if time.perf_counter() - self.checked < 1.0:
            return
        self.checked = time.perf_counter()
        workers = self.client.nthreads()
        for address in self.known.keys() - workers.keys():
            self.say(
                f"Dask worker {address} left the cluster; the scheduler gives what it was "
                "running to another worker"
            )
        for address in workers.keys() - self.known.keys():
            self.say(f"Dask worker {address} joined the cluster")
        self.known = workers
        self.threads = max(sum(workers.values()), 1)

    def run(self, todo, tick):
        import distributed

        data = self.client.scatter(self.data, broadcast=True)
        token = uuid.uuid4().hex[:8]
        by_key = {}
        for configuration in todo:
            future = self.client.submit(
                run_configuration,
                configuration.settings,
                data,
                key=f"fastnn-sweep-{configuration.id}-{token}",
                pure=False,
            )
            by_key[future.key] = configuration
            self.futures.append(future)
        pending = distributed.as_completed(self.futures)
        left = len(self.futures)
        while left:
            if not pending.has_ready():
                self.watch_workers()
                self.running = min(left, self.threads)
                tick()
                time.sleep(self.TICK_SECONDS)
                continue
            future = next(pending)
            left -= 1
            configuration = by_key[future.key]
            try:
                outcome = future.result()
            except Exception as error:  # KilledWorker: its workers died too often
                reason = " ".join(str(error).split()) or type(error).__name__
                outcome = lost_outcome(f"{type(error).__name__}: {reason}")
            yield configuration, outcome

    def stop(self):
        if self.futures:
            self.client.cancel(self.futures)
            self.futures = []

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


# ---- the output folder ---------------------------------------------------------------------------


def json_bytes(value: object) -> bytes:
    return json.dumps(train_command.finite_or_null(value), indent=2, allow_nan=False).encode()


def write_json(path: Path, value: object) -> None:
    text = json_bytes(value) + b"\n"
    try:
        atomic_write(path, lambda file: file.write(text))
    except OSError as error:
        raise FastnnError(f"{path}: cannot write: {error.strerror or error}") from None


def read_json(path: Path, what: str) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise FastnnError(f"{path}: not a readable {what}: {error}") from None
    if not isinstance(value, dict):
        raise FastnnError(f"{path}: not a {what}")
    return value


def prepare_out(out: Path) -> None:
    """Create the output folder; refuse a file, or a folder that holds something else."""
    if out.exists() and not out.is_dir():
        raise FastnnError(f"--out {out}: is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "sweep.json").exists():
        raise FastnnError(
            f"--out {out}: the folder holds other files and no sweep.json; name a new folder"
        )
    try:
        (out / "runs").mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FastnnError(f"--out {out}: cannot create it: {error.strerror or error}") from None


def grid_spec(grid: dict[str, list], fingerprint: str, source: str) -> dict:
    return {
        "format": SPEC_FORMAT,
        "format_version": SPEC_VERSION,
        "grid": {
            dest: [list(value) if isinstance(value, tuple) else value for value in values]
            for dest, values in grid.items()
        },
        "data_fingerprint": fingerprint,
        "data": source,
    }


def check_spec(out: Path, spec: dict) -> None:
    """Write the grid into a new output folder; in one that has it, refuse a different one."""
    path = out / "sweep.json"
    if not path.exists():
        write_json(path, spec)
        return
    saved = read_json(path, "sweep file")
    if saved.get("format") != SPEC_FORMAT:
        raise FastnnError(f"{path}: not a fastnn sweep file")
    differences = []
    old_grid, new_grid = saved.get("grid", {}), spec["grid"]
    for dest in dict.fromkeys([*new_grid, *old_grid]):
        old, new = old_grid.get(dest), new_grid.get(dest)
        if old != new:
            was = spell_list(dest, old)
            now = spell_list(dest, new)
            differences.append(f"{flag(dest)} was {was}, now {now}")
    if saved.get("data_fingerprint") != spec["data_fingerprint"]:
        differences.append(f"the data was {saved.get('data')}, now other images ({spec['data']})")
    if differences:
        raise FastnnError(
            f"--out {out} holds a different sweep: {'; '.join(differences)}. "
            "Name a new --out folder, or give the same settings to finish that sweep"
        )


def spell_list(dest: str, values: list | None) -> str:
    if values is None:
        return "not a setting"
    return " ".join(spell(dest, value) for value in values)


def run_paths(out: Path, configuration: Configuration) -> tuple[Path, Path]:
    return out / "runs" / f"{configuration.id}.json", out / "runs" / f"{configuration.id}.npz"


def weights_digest(theta: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(theta).tobytes()).hexdigest()


def make_row(configuration: Configuration, outcome: dict) -> dict:
    """A row of results.csv/json (with the history, which the CSV leaves out)."""
    row = {"run": configuration.run, "id": configuration.id, **configuration.settings}
    for score in SCORES:
        row[score] = outcome.get(score)
    row["weights_sha256"] = weights_digest(outcome["theta"]) if "theta" in outcome else None
    row["history"] = outcome.get("history", [])
    return row


def save_finished(out: Path, configuration: Configuration, outcome: dict) -> dict:
    """Save a finished configuration: its model file first, then its row, which marks it done."""
    row_path, model_path = run_paths(out, configuration)
    row = make_row(configuration, outcome)
    if outcome.get("lost"):
        return row  # not done: a rerun tries it again
    if outcome["status"] == "ok":
        net = Network(
            tuple(outcome["sizes"]), outcome["activation"], outcome["loss"], outcome["theta"]
        )
        save_model(model_path, net)
    write_json(row_path, row)
    return row


def load_finished(out: Path, configurations: Sequence[Configuration]) -> dict[str, dict]:
    """The rows saved by an earlier run of this sweep, by configuration id."""
    finished = {}
    for configuration in configurations:
        row_path, model_path = run_paths(out, configuration)
        if not row_path.exists():
            continue
        row = read_json(row_path, "sweep row")
        if row.get("status") == "ok" and not model_path.exists():
            continue  # its model file is gone: train it again
        finished[configuration.id] = {**row, "run": configuration.run}
    return finished


def write_results(out: Path, rows: Sequence[dict]) -> None:
    """results.json (every row, with its history) and results.csv (the same, no history), in
    grid order."""
    rows = sorted(rows, key=lambda row: row["run"])
    write_json(out / "results.json", {"rows": list(rows)})
    if not rows:
        return
    columns = [column for column in dict.fromkeys(itertools.chain(*rows)) if column != "history"]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(row.get(column)) for column in columns])
    data = text.getvalue().encode()
    try:
        atomic_write(out / "results.csv", lambda file: file.write(data))
    except OSError as error:
        raise FastnnError(f"{out / 'results.csv'}: cannot write: {error}") from None


def csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    if isinstance(value, float) and not np.isfinite(value):
        return ""
    return value


def rank(rows: Sequence[dict]) -> list[dict]:
    """Finished rows, best dev accuracy first (the grid's order breaks ties); failures last."""

    def key(row: dict) -> tuple:
        ok = row["status"] == "ok" and row["dev_accuracy"] is not None
        return (0, -row["dev_accuracy"], row["run"]) if ok else (1, 0.0, row["run"])

    return sorted(rows, key=key)


def best_row(rows: Sequence[dict]) -> dict | None:
    ranked = rank(rows)
    return ranked[0] if ranked and ranked[0]["status"] == "ok" else None


def write_best_model(out: Path, row: dict) -> None:
    source = out / "runs" / f"{row['id']}.npz"
    content = source.read_bytes()
    atomic_write(out / "best_model.npz", lambda file: file.write(content))


# ---- what the user sees ----------------------------------------------------------------------


def seconds(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.2f}" if value < 1 else f"{value:.1f}"


def percent(fraction: float | None) -> str:
    return "n/a" if fraction is None or not np.isfinite(fraction) else f"{100 * fraction:.2f}%"


class Progress:
    """Done, running, left and the best so far: one updating line on a terminal, plus a line
    for each configuration as it finishes (only those lines when the output is a file)."""

    def __init__(self, total: int, rows: dict, swept: Sequence[str], stream=None) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.total, self.rows, self.swept = total, rows, swept
        self.runner: Runner | None = None
        self.started = time.perf_counter()
        self.shown = ""

    def counts(self) -> str:
        done = len(self.rows)
        running = min(self.runner.running, self.total - done) if self.runner else 0
        failed = sum(row["status"] != "ok" for row in self.rows.values())
        left = self.total - done - running
        text = f"done {done}/{self.total}, running {running}, left {left}"
        return text + (f", failed {failed}" if failed else "")

    def best(self) -> str:
        row = best_row(list(self.rows.values()))
        if row is None:
            return "best: none yet"
        return f"best dev {percent(row['dev_accuracy'])} ({describe(row, self.swept)})"

    def status(self) -> str:
        elapsed = time.perf_counter() - self.started
        return f"{self.counts()}; {self.best()}; {elapsed:.0f} s"

    def clear(self) -> None:
        if self.tty and self.shown:
            self.stream.write("\r\x1b[K")
            self.shown = ""

    def tick(self) -> None:
        if self.tty:
            text = self.status()
            width = max(shutil.get_terminal_size((100, 24)).columns - 1, 20)
            text = text[:width]
            if text != self.shown:
                self.stream.write("\r\x1b[K" + text)
                self.stream.flush()
                self.shown = text

    def say(self, line: str) -> None:
        self.clear()
        print(line, file=self.stream, flush=True)
        self.tick()

    def finished(self, row: dict) -> None:
        head = f"[{len(self.rows)}/{self.total}] {describe(row, self.swept)}: "
        if row["status"] == "ok":
            text = (
                f"dev {percent(row['dev_accuracy'])}, test {percent(row['test_accuracy'])}, "
                f"{row['epochs_run']} epochs, {seconds(row['seconds'])} s"
            )
        else:
            text = f"failed: {row['error']}"
        if not self.tty:
            text += f"  ({self.counts()}; {self.best()})"
        self.say(head + text)

    def close(self) -> None:
        self.clear()


def table(rows: Sequence[dict], swept: Sequence[str]) -> str:
    """The results, best dev accuracy first."""
    shown = list(swept) or ["run"]
    headers = [dest.replace("_", "-") for dest in shown]
    headers += ["dev acc", "test acc", "best epoch", "epochs", "seconds", "status"]
    lines = []
    for row in rank(rows):
        cells = [spell(dest, row[dest]) for dest in shown]
        cells += [
            percent(row["dev_accuracy"]),
            percent(row["test_accuracy"]),
            str(row["best_epoch"] or ""),
            str(row["epochs_run"]),
            seconds(row["seconds"]),
            row["status"] if row["status"] == "ok" else f"failed: {row['error']}",
        ]
        lines.append(cells)
    widths = [
        max(len(headers[i]), *(len(line[i]) for line in lines)) for i in range(len(headers) - 1)
    ]
    text = []
    for cells in [headers, *lines]:
        text.append(
            "  ".join(c.rjust(w) for c, w in zip(cells[:-1], widths, strict=True))
            + "  "
            + cells[-1]
        )
    return "\n".join(line.rstrip() for line in text)


def fixed_settings(grid: dict[str, list]) -> str:
    return ", ".join(
        f"{dest.replace('_', '-')} {spell(dest, values[0])}"
        for dest, values in grid.items()
        if len(values) == 1
    )


def resume_hint(argv: Sequence[str]) -> str:
    return shlex.join(["python", "-m", "fastnn.sweep", *argv])


# ---- the command -------------------------------------------------------------------------------


def make_runner(
    args: argparse.Namespace,
    data: SweepData,
    n_todo: int,
    progress: Progress,
    local: LocalRunner | None,
) -> Runner:
    """Where to run: a Dask cluster, local worker processes (`local`, started already), or
    this process (--workers 1)."""
    if args.scheduler:
        return DaskRunner(data, args.scheduler, args.workers, progress.say)
    if local is not None and n_todo > 1:

        def on_lost(configuration: Configuration) -> None:
            progress.say(
                "a worker process died; a new one trains again what it was training: "
                + describe(configuration.settings, progress.swept)
            )

        local.on_lost = on_lost
        local.workers = min(local.workers, n_todo)
        local.provide(data)
        return local
    if local is not None:
        local.stop()
    import numba

    numba.set_num_threads(1)
    return SerialRunner(data)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    grid = grid_from_args(args)
    configurations = expand(grid)
    local = None
    if not args.scheduler and args.workers > 1 and len(configurations) > 1:
        # Started before the data is read: they import and load kernels meanwhile.
        local = LocalRunner(
            None, min(args.workers, len(configurations)), print, warm=configurations[0].settings
        )
        local.start()
    try:
        return run_sweep(args, argv, grid, configurations, local)
    finally:
        if local is not None:
            local.stop()  # waits until its workers have ended


def run_sweep(
    args: argparse.Namespace, argv: list[str], grid: dict[str, list],
    configurations: list[Configuration], local: LocalRunner | None,
) -> int:  # fmt: skip
    """main's work once the workers are starting: read the data, run what is not finished
    yet, report."""
    # matplotlib takes 0.3 s to import: meanwhile, in this thread, the data is read and
    # the first configurations train (the kernels release the GIL)
    threading.Thread(target=import_matplotlib, daemon=True).start()
    swept = swept_settings(grid)
    out: Path = args.out
    dataset: Dataset = resolve_data(args.data)
    check_configurations(configurations, len(dataset.train_labels))
    prepare_out(out)
    fingerprint = data_fingerprint(dataset.train_images, dataset.train_labels)
    check_spec(out, grid_spec(grid, fingerprint, dataset.source))

    rows = load_finished(out, configurations)  # by id; also the unsaved rows of lost ones
    unsaved: set[str] = set()
    todo = [c for c in configurations if c.id not in rows]
    data = SweepData(
        dataset.train_images, dataset.train_labels, dataset.test_images, dataset.test_labels
    )
    grid_text = " x ".join(f"{len(grid[dest])} {dest.replace('_', '-')}" for dest in swept)
    print(
        f"sweep: {len(configurations)} configuration{'s' if len(configurations) > 1 else ''}"
        + (f" ({grid_text})" if swept else "")
        + f"; {len(rows)} finished already, {len(todo)} to run"
    )
    print(f"same for all: {fixed_settings(grid)}")
    test_part = f", {len(dataset.test_labels)} test" if dataset.test_labels is not None else ""
    print(f"data: {dataset.source} ({len(dataset.train_labels)} training images{test_part})")

    progress = Progress(len(configurations), rows, swept)
    runner = None
    best_id = None
    started = time.perf_counter()
    try:
        if todo:
            runner = make_runner(args, data, len(todo), progress, local)
            progress.runner = runner
            print(f"running {runner.where}", flush=True)
            for configuration, outcome in runner.run(todo, progress.tick):
                row = save_finished(out, configuration, outcome)
                if outcome.get("lost"):
                    unsaved.add(configuration.id)
                rows[configuration.id] = row
                write_results(out, list(rows.values()))
                best = best_row(list(rows.values()))
                if best is not None and best["id"] != best_id:
                    write_best_model(out, best)
                    best_id = best["id"]
                progress.finished(row)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop the cleanup
        if runner is not None:
            runner.stop()
        progress.close()
        saved = len(rows) - len(unsaved)
        print(
            f"\ninterrupted: {saved} of {len(configurations)} configurations are finished and "
            f"saved in {out}; to run the other {len(configurations) - saved}, run the same "
            f"command again: {resume_hint(argv)}",
            file=sys.stderr,
        )
        return cli.EXIT_INTERRUPTED
    finally:
        progress.close()
        if isinstance(runner, DaskRunner):
            runner.close()
        if local is not None:
            local.stop(wait=False)  # started early, and not needed (nothing left to run) or done
    elapsed = time.perf_counter() - started
    report(out, rows, unsaved, todo, swept, grid, args.top, elapsed)
    return 0


def report(
    out: Path, rows: dict, unsaved: set[str], todo: list[Configuration], swept: list[str],
    grid: dict[str, list], top: int, elapsed: float,
) -> None:  # fmt: skip
    """The end of a sweep: results.csv and .json, the best model, the table and the figures."""
    all_rows = list(rows.values())
    write_results(out, all_rows)
    best = best_row(all_rows)
    if best is not None:
        write_best_model(out, best)
    print()
    print(table(all_rows, swept))
    print()
    failed = sum(row["status"] != "ok" for row in all_rows)
    if todo:
        print(
            f"ran {len(todo)} configurations in {elapsed:.1f} s"
            + (f"; {failed} failed" if failed else "")
        )
    if unsaved:
        print(
            f"{len(unsaved)} configurations lost their workers too often and are not saved: "
            "run the same command again to try them again"
        )
    if best is not None:
        print(
            f"best by dev accuracy: {describe(best, swept)}: dev {percent(best['dev_accuracy'])}, "
            f"test {percent(best['test_accuracy'])}; its network: {out / 'best_model.npz'}"
        )
    print(f"results: {out / 'results.csv'}, {out / 'results.json'}, runs in {out / 'runs'}")
    try:
        figures = write_figures(out, all_rows, grid, top=top)
    except ImportError:
        print('figures: not drawn, matplotlib is missing: pip install "fastnn-loops[plot]"')
    else:
        print("figures: " + ", ".join(str(path) for path in figures))


def entry_point() -> None:
    cli.run(PROG, lambda: main(sys.argv[1:]))


if __name__ == "__main__":
    # Run the copy imported as fastnn.sweep, not this __main__ one: what worker processes and
    # Dask are sent (run_configuration, SweepData) must be found there by that name.
    importlib.import_module("fastnn.sweep").entry_point()
