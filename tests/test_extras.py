"""`import fastnn` and every command's --help need no extra: scikit-learn, matplotlib, Pillow
and Dask are imported only by the features that use them, which then say how to install them.
Numba too loads only when a network first trains or predicts on the kernels.

Each check runs in a new Python in which importing any of the extras fails, as on a machine
where only `pip install fastnn-loops` was run.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

EXTRAS = ("sklearn", "matplotlib", "PIL", "dask", "distributed")

# A meta-path finder that refuses the extras and anything under them.
BLOCK = f"""
import sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {EXTRAS!r}:
            raise ImportError(f"No module named {{name!r}} (blocked by the test)")
sys.meta_path.insert(0, Refuse())
"""

COMMANDS = ("train", "predict", "trace", "show", "sweep")


def run_without_extras(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCK + code], capture_output=True, text=True, timeout=300
    )


def test_import_fastnn_and_train_need_no_extra() -> None:
    done = run_without_extras(
        "import numpy as np, fastnn\n"
        "rng = np.random.default_rng(0)\n"
        "X, y = rng.normal(size=(60, 4)), np.arange(60) % 2\n"
        "model = fastnn.train(X, y, epochs=1, dev_size=0, batch_size=10, threads=1)\n"
        "print(model.predict(X).shape)\n"
        f"assert not any(m.split('.')[0] in {EXTRAS!r} for m in sys.modules)\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(60,)"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_needs_no_extra(command) -> None:
    done = run_without_extras(
        f"import sys, runpy; sys.argv = ['fastnn.{command}', '--help']\n"
        f"runpy.run_module('fastnn.{command}', run_name='__main__')"
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def test_numba_loads_with_the_first_training_not_with_import() -> None:
    """`import fastnn` and the commands' modules leave Numba (0.3 s to import, more to set up)
    unloaded: a sweep's main process, which only hands out work, never loads it."""
    modules = ", ".join(f"fastnn.{command}" for command in COMMANDS)
    done = run_without_extras(
        f"import numpy as np, fastnn, {modules}\n"
        "print('numba' in sys.modules)\n"
        "X, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2\n"
        "fastnn.train(X, y, epochs=1, dev_size=0, batch_size=10, threads=1)\n"
        "print('numba' in sys.modules)\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]


SCIPY_AFTER_TRAINING = (
    "import sys, numpy as np, fastnn\n"
    "from fastnn import cli\n"
    "def main():\n"
    "    X, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2\n"
    "    fastnn.train(X, y, epochs=1, dev_size=0, batch_size=10, threads=1)\n"
    "    try:\n"
    "        import scipy\n"
    "    except ImportError:\n"
    "        print('numba' in sys.modules, 'blocked')\n"
    "    else:\n"
    "        print('numba' in sys.modules, 'importable')\n"
    "    return 0\n"
)


@pytest.mark.parametrize(
    ("how", "scipy"), [("cli.run('test', main)", "blocked"), ("main()", "importable")]
)
def test_a_command_trains_without_scipy_a_session_keeps_it(how, scipy) -> None:
    """Numba's first compile or cache load imports SciPy, where it is installed, only to look
    for a BLAS that fastnn's loops never call: a command (cli.run) runs without it; a Python
    session that imports fastnn, and trains, still has it."""
    pytest.importorskip("scipy")
    done = subprocess.run(
        [sys.executable, "-c", SCIPY_AFTER_TRAINING + how],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", scipy]


def test_the_sklearn_module_says_how_to_install_it() -> None:
    done = run_without_extras("import fastnn.sklearn")
    assert done.returncode != 0
    assert 'pip install "fastnn-loops[sklearn]"' in done.stderr
