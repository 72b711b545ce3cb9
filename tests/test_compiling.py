"""Compiling before training: the helper process that compiles half of the kernels on a cold
cache (training.compile_kernels), and what it must never do: lose work, outlive its run, or
leave this process waiting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numba
import pytest

import fastnn.training
from fastnn.training import compiled_mark, helper_process, wants_helper

PLAN = ((784, 10, 10), "float32", (0, 0, 2), (0.001, 0.0, 0.9, 0.999, 1e-8), 100)


def helper_code(body: str) -> str:
    """A stand-in for the helper: `body` runs with `plan` (sys.argv[1]) and `Path` defined."""
    return f"import os, sys, time; from pathlib import Path; plan = sys.argv[1]; {body}"


def wait_for(path: Path) -> None:
    for _ in range(600):
        if path.exists():
            return
        time.sleep(0.05)
    raise AssertionError(f"the helper never wrote {path}")


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_helper_gets_the_plan_and_is_waited_for(tmp_path, monkeypatch) -> None:
    out = tmp_path / "plan.json"
    # it sleeps first: the body is over long before it writes
    code = helper_code(f"time.sleep(0.5); Path({str(out)!r}).write_text(plan)")
    monkeypatch.setattr(fastnn.training, "HELPER_CODE", code)
    with helper_process(PLAN):
        pass
    assert json.loads(out.read_text()) == json.loads(json.dumps(PLAN))


@pytest.mark.parametrize("failure", [KeyboardInterrupt, RuntimeError])
def test_the_helper_is_stopped_when_this_process_stops(tmp_path, monkeypatch, failure) -> None:
    pid_file = tmp_path / "pid"
    code = helper_code(f"Path({str(pid_file)!r}).write_text(str(os.getpid())); time.sleep(120)")
    monkeypatch.setattr(fastnn.training, "HELPER_CODE", code)
    with pytest.raises(failure), helper_process(PLAN):
        wait_for(pid_file)
        raise failure
    assert not is_running(int(pid_file.read_text()))


def test_a_helper_that_overruns_is_stopped_and_the_run_goes_on(tmp_path, monkeypatch) -> None:
    pid_file = tmp_path / "pid"
    code = helper_code(f"Path({str(pid_file)!r}).write_text(str(os.getpid())); time.sleep(120)")
    monkeypatch.setattr(fastnn.training, "HELPER_CODE", code)
    monkeypatch.setattr(fastnn.training, "HELPER_TIMEOUT_SECONDS", 0.5)
    with helper_process(PLAN):
        wait_for(pid_file)
    assert not is_running(int(pid_file.read_text()))


def test_a_failing_helper_is_no_error_here(monkeypatch, capfd) -> None:
    monkeypatch.setattr(fastnn.training, "HELPER_CODE", "raise RuntimeError('broken helper')")
    with helper_process(PLAN):
        pass
    out, err = capfd.readouterr()
    assert out == err == ""  # the helper prints nothing, even its traceback


def test_a_helper_is_wanted_only_on_a_cold_cache_with_a_second_cpu(tmp_path, monkeypatch) -> None:
    mark = tmp_path / "compiled" / "mark"
    monkeypatch.setattr(numba.config, "DISABLE_JIT", False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert wants_helper(mark)
    mark.parent.mkdir()
    mark.touch()
    assert not wants_helper(mark)  # warm: a helper would only cost a process start
    mark.unlink()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert not wants_helper(mark)  # one CPU: the two halves would take turns
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(numba.config, "DISABLE_JIT", True)
    assert not wants_helper(mark)  # nothing is compiled


def test_the_mark_names_what_decides_the_kernels() -> None:
    sizes, dtype, codes = PLAN[:3]
    mark = compiled_mark(*PLAN)
    assert compiled_mark((784, 128, 10), dtype, codes, (0.1, 0.0, 0, 0, 0), 7) == mark
    assert compiled_mark(sizes, "float64", codes) != mark
    assert compiled_mark(sizes, dtype, (1, 0, 2)) != mark
    assert compiled_mark(sizes, dtype, (0, 0, 0)) != mark


# One process compiles with the helper on an empty cache; a second then loads everything. Numba's
# dispatchers count, per kernel, the signatures loaded from the cache (hits) and the ones it
# had to compile (misses).
COMPILE_AND_COUNT = """
import json, sys
import numpy as np
from fastnn.kernels import fused
from fastnn.model import init_network
from fastnn.training import compile_kernels, compiled_mark
import fastnn.training
helped = []
wants = fastnn.training.wants_helper
fastnn.training.wants_helper = lambda mark: helped.append(wants(mark)) or helped[-1]
net = init_network((784, 10, 10), "relu", "cross-entropy", None, "float32",
                   np.random.default_rng(0))
plan = (net.sizes, "float32", (0, 0, 2), (0.001, 0.0, 0.9, 0.999, 1e-8), 100)
compile_kernels(net, *plan[2:])
if sys.argv[1] == "train":  # then an epoch of training: it must find its kernels compiled
    images = np.random.default_rng(1).integers(0, 256, (300, 784), dtype=np.uint8)
    labels = np.arange(300) % 10
    config = fastnn.training.TrainConfig(epochs=1, dev_size=100, l2=0, beta1=0)
    fastnn.training.train(config, images, labels)
dispatchers = {name: getattr(fused, name) for name in (
    "chunk_gradient", "parallel_epoch", "reduce_and_update_block", "forward_tiles",
    "first_layer_forward", "first_layer_gradient", "softmax_cross_entropy", "adam_step")}
print(json.dumps({
    "helped": helped,
    "marked": compiled_mark(*plan).exists(),
    "hits": {name: len(d.stats.cache_hits) for name, d in dispatchers.items()},
    "misses": {name: len(d.stats.cache_misses) for name, d in dispatchers.items()},
    "signatures": {name: len(d.signatures) for name, d in dispatchers.items()},
}))
"""


def compile_in_new_process(cache_home: Path, then: str = "") -> dict:
    environment = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    environment.pop("NUMBA_CACHE_DIR")  # set by fastnn.kernels.jit in this process
    done = subprocess.run(
        [sys.executable, "-c", COMPILE_AND_COUNT, then],
        env=environment, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_helper_compiles_its_half_into_the_cache_and_a_second_run_loads_all(
    tmp_path,
) -> None:
    cold = compile_in_new_process(tmp_path)
    assert cold["helped"] == [True] and cold["marked"]
    # the helper compiled chunk_gradient and the tile kernels it calls; this process loaded it
    assert cold["misses"]["chunk_gradient"] == 0 and cold["hits"]["chunk_gradient"] == 1
    assert cold["misses"]["first_layer_gradient"] == 0
    assert cold["misses"]["parallel_epoch"] == 1  # this process's half
    assert cold["misses"]["softmax_cross_entropy"] == 1
    # a second run compiles nothing, neither before training nor in its first epoch (the
    # config's integers for floats included: train passes them as floats, like the tiny run)
    warm = compile_in_new_process(tmp_path, then="train")
    assert not any(warm["helped"])  # warm: no helper, here or in train()
    assert not any(warm["misses"].values()), warm
    assert warm["hits"]["chunk_gradient"] == warm["hits"]["parallel_epoch"] == 1
    # one signature each for the kernels training calls; the tile kernels come compiled inside
    # chunk_gradient and forward_tiles, so their own dispatchers hold none
    called = ("chunk_gradient", "parallel_epoch", "reduce_and_update_block", "forward_tiles")
    assert all(warm["signatures"][name] == 1 for name in called), warm
    assert max(warm["signatures"].values()) == 1, warm
