"""Compiling before training (training.compile_kernels): one set of compiled kernels serves every
depth, activation, loss and optimizer, so a machine compiles them once, and a later process, or a
deeper network, loads them from the disk cache and compiles nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from fastnn.training import tiny_run

# Numba's dispatchers count, per kernel, the signatures loaded from the cache (hits) and the ones
# they had to compile (misses). argv: sizes, activation, loss, optimizer, "train" or not, and
# "mostly-zero" for images that are 80% zeros.
# A warning that Numba could not run a parallel loop in parallel fails it: the tests of 1 and 2
# threads would pass all the same.
COMPILE_AND_COUNT = """
import json, sys, warnings
import numpy as np
from numba import NumbaPerformanceWarning
warnings.simplefilter("error", NumbaPerformanceWarning)  # e.g. a prange it could not parallelise
import fastnn.training
from fastnn.kernels import tile_math, tile_sparse, tile_threads
from fastnn.model import init_network
sizes = tuple(int(n) for n in sys.argv[1].split("-"))
activation, loss, optimizer = sys.argv[2:5]
images = np.random.default_rng(1).integers(0, 256, (300, sizes[0]), dtype=np.uint8)
if sys.argv[6:] == ["mostly-zero"]:  # as MNIST: a wide first layer skips the zeros
    images[np.random.default_rng(2).random(images.shape) < 0.8] = 0
codes = (fastnn.training.ACTIVATIONS[activation], fastnn.training.LOSSES[loss],
         fastnn.training.OPTIMIZERS[optimizer])
net = init_network(sizes, activation, loss, None, "float32", np.random.default_rng(0))
fastnn.training.compile_kernels(net, codes, (0.001, 0.0, 0.9, 0.999, 1e-8), 100, images)
if sys.argv[5] == "train":  # then an epoch of training: it must find its kernels compiled
    labels = np.arange(300) % sizes[-1]
    config = fastnn.training.TrainConfig(
        hidden=sizes[1:-1], activation=activation, loss=loss, optimizer=optimizer,
        epochs=1, dev_size=100, l2=0, beta1=0)
    fastnn.training.train(config, images, labels, n_classes=sizes[-1])
dispatchers = {
    "chunk_gradient": tile_threads.chunk_gradient, "update_block": tile_threads.update_block,
    "parallel_epoch": tile_threads.parallel_epoch, "forward_tiles": tile_threads.forward_tiles,
    "tile_forward": tile_math.tile_forward,
    "sparse_tile_forward": tile_sparse.sparse_tile_forward,
    "sparse_tile_backward": tile_sparse.sparse_tile_backward,
    "dense_tile_forward": tile_math.dense_tile_forward, "tile_step": tile_math.tile_step,
}
print(json.dumps({
    "hits": {name: len(d.stats.cache_hits) for name, d in dispatchers.items()},
    "misses": {name: len(d.stats.cache_misses) for name, d in dispatchers.items()},
    "signatures": {name: len(d.signatures) for name, d in dispatchers.items()},
}))
"""


def compile_in_new_process(cache_home: Path, *network: str) -> dict:
    environment = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    environment.pop("NUMBA_CACHE_DIR", None)  # set by fastnn.kernels.jit, if this process loaded it
    done = subprocess.run(
        [sys.executable, "-c", COMPILE_AND_COUNT, *network],
        env=environment, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_one_compile_serves_every_depth_and_a_second_process_loads_it(tmp_path) -> None:
    cold = compile_in_new_process(tmp_path, "784-10-10", "relu", "cross-entropy", "adam", "")
    called = ("chunk_gradient", "update_block", "parallel_epoch", "forward_tiles", "tile_forward")
    assert all(cold["misses"][name] == 1 for name in called), cold
    # Another process, three hidden layers, another activation, loss and optimizer, and an
    # epoch of training: the same compiled kernels, loaded, and nothing compiled.
    warm = compile_in_new_process(tmp_path, "784-30-20-16-10", "tanh", "mse", "sgd", "train")
    assert not any(warm["misses"].values()), warm
    assert all(warm["hits"][name] == 1 for name in called), warm
    # one signature each for the kernels training calls; the tile kernels come compiled inside
    # them (dense_tile_forward inside tile_forward, tile_step inside chunk_gradient), so their
    # own dispatchers hold none
    assert all(warm["signatures"][name] == 1 for name in called), warm
    assert warm["signatures"]["dense_tile_forward"] == warm["signatures"]["tile_step"] == 0
    # the first layer on the nonzero inputs alone, compiled only for the network that needs it
    sparse = ("sparse_tile_forward", "sparse_tile_backward")
    assert not any(cold["signatures"][name] for name in sparse), cold
    assert not any(warm["signatures"][name] for name in sparse), warm
    wide = compile_in_new_process(tmp_path, "784-64-10", "relu", "cross-entropy", "adam", "train",
                                  "mostly-zero")  # fmt: skip
    assert all(wide["misses"][name] == 1 for name in sparse), wide
    assert all(wide["hits"][name] == 1 for name in called), wide
    assert not any(wide["misses"][name] for name in called), wide
    again = compile_in_new_process(tmp_path, "784-100-10", "relu", "mse", "sgd", "", "mostly-zero")
    assert not any(again["misses"].values()), again
    assert all(again["hits"][name] == 1 for name in sparse), again


def test_the_tiny_run_passes_the_types_training_passes() -> None:
    """uint8 images to the epoch and to predict, as train() keeps them for both, or the floats
    it makes of other images; C arrays and int64 labels and order. A difference would compile
    a second time."""
    for inputs in ("uint8", "float32"):
        epoch_arguments, predict_arguments = tiny_run(
            (784, 7, 10), "float32", (0, 0, 2), (0.001, 0, 0.9, 0.999, 1e-8), 100, False, inputs
        )
        theta, state1, state2, X, labels, order, sizes = epoch_arguments[:7]
        assert X.dtype == inputs and X.flags.c_contiguous
        assert theta.dtype == state1.dtype == state2.dtype == np.float32
        assert labels.dtype == order.dtype == sizes.dtype == np.int64
        assert all(isinstance(value, float) for value in epoch_arguments[10:15])
        assert predict_arguments[2].dtype == inputs and predict_arguments[2].flags.c_contiguous
