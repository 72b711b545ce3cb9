"""The Dask side of python -m fastnn.sweep, imported only with --scheduler (the [dask] extra)."""

from __future__ import annotations

import signal
import threading

from distributed import WorkerPlugin


class IgnoreCtrlC(WorkerPlugin):
    """Ctrl-C in the terminal that started a LocalCluster reaches its worker processes too; the
    sweep closes them itself, so they ignore it instead of each printing a traceback. Applied
    to every worker, those the nanny restarts included."""

    name = "fastnn-sweep-ignore-ctrl-c"

    def setup(self, worker) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
