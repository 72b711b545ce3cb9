"""The Dask side of python -m fastnn.sweep, imported only with --scheduler (the [dask] extra)."""

from __future__ import annotations

import signal
import threading

from distributed import WorkerPlugin

from .cli import without_scipy


class LocalWorkerSetup(WorkerPlugin):
    """What each worker process of the LocalCluster that a sweep starts (--scheduler local)
    does first, those the nanny restarts included.

    Ctrl-C in the terminal reaches those processes too; the sweep closes them itself, so they
    ignore it instead of each printing a traceback. And, as the sweep's own worker processes
    do, they run without SciPy (cli.without_scipy). A cluster the sweep did not start is left
    as it is."""

    name = "fastnn-sweep-local-worker"

    def setup(self, worker) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        without_scipy()
