"""Checkpoints: everything needed to continue a run exactly, written atomically every epoch.

A checkpoint is an .npz of plain arrays (θ, the optimizer's state, the best θ so far) and one
JSON string with the rest (settings, epoch, step, the random generator's state, the history).
It is read with allow_pickle=False like every file fastnn opens.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, fields

import numpy as np

from .errors import FastnnError
from .model import ACTIVATIONS, DTYPES, LOSSES, atomic_write, parameter_count, read_npz
from .training import BACKENDS, OPTIMIZERS, EpochRecord, TrainConfig, TrainingState

CHECKPOINT_FORMAT = "fastnn-checkpoint"
CHECKPOINT_VERSION = 1
ARRAYS = ("theta", "state1", "state2", "best_theta")
# Settings that may differ on --resume: more epochs, another patience.
RESUMABLE_CHANGES = ("epochs", "patience")


def save_checkpoint(
    path: str | os.PathLike, config: TrainConfig, state: TrainingState, data_fingerprint: str
) -> None:
    meta = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "config": {**asdict(config), "hidden": list(config.hidden)},
        "data": data_fingerprint,
        "epoch": state.epoch,
        "step": state.step,
        "best_epoch": state.best_epoch,
        "best_accuracy": state.best_accuracy,
        "stopped_early": state.stopped_early,
        "rng_state": state.rng_state,
        "history": [asdict(record) for record in state.history],
    }
    arrays = {name: getattr(state, name) for name in ARRAYS}
    try:
        atomic_write(path, lambda file: np.savez(file, meta=np.array(json.dumps(meta)), **arrays))
    except OSError as error:
        raise FastnnError(
            f"{path}: cannot write the checkpoint: {error.strerror or error}"
        ) from None


def load_checkpoint(path: str | os.PathLike) -> tuple[TrainConfig, TrainingState, str]:
    """(settings, state, data fingerprint) of a checkpoint; FastnnError for anything else."""
    arrays = read_npz(path, "fastnn checkpoint")
    try:
        meta = json.loads(str(arrays["meta"]))
        arrays = {name: arrays[name] for name in ARRAYS}
        if meta.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("no fastnn checkpoint header")
        if meta["version"] > CHECKPOINT_VERSION:
            raise FastnnError(
                f"{path}: checkpoint version {meta['version']} is newer than this fastnn reads"
            )
        settings = meta["config"]
        config = TrainConfig(**{**settings, "hidden": tuple(settings["hidden"])})
        state = TrainingState(
            **arrays,
            rng_state=meta["rng_state"],
            epoch=int(meta["epoch"]),
            step=int(meta["step"]),
            best_epoch=int(meta["best_epoch"]),
            best_accuracy=float(meta["best_accuracy"]),
            stopped_early=bool(meta["stopped_early"]),
            history=[EpochRecord(**record) for record in meta["history"]],
        )
        fingerprint = str(meta["data"])
        size = parameter_count(config.sizes())
        check_names(config)
    except FastnnError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError) as error:
        raise FastnnError(f"{path}: not a usable fastnn checkpoint ({error})") from None
    for name in ARRAYS:
        array = getattr(state, name)
        if array.shape != (size,) or array.dtype != np.dtype(config.dtype):
            raise FastnnError(f"{path}: array '{name}' does not match the settings it records")
        if not np.all(np.isfinite(array)):
            raise FastnnError(f"{path}: array '{name}' contains NaN or infinity")
    return config, state, fingerprint


def check_names(config: TrainConfig) -> None:
    """ValueError unless every named choice is one fastnn knows and every width is ≥ 1."""
    for name, known in (
        ("activation", ACTIVATIONS), ("loss", LOSSES), ("optimizer", OPTIMIZERS),
        ("dtype", DTYPES), ("backend", BACKENDS),
    ):  # fmt: skip
        if getattr(config, name) not in known:
            raise ValueError(f"unknown {name} {getattr(config, name)!r}")
    if not all(isinstance(width, int) and width >= 1 for width in config.hidden):
        raise ValueError(f"bad hidden widths {config.hidden!r}")


def data_fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    """A short hash of the training data, so a run is never resumed on other data."""
    digest = hashlib.sha256(str(images.shape).encode())
    digest.update(np.ascontiguousarray(images).data)
    digest.update(np.ascontiguousarray(labels).data)
    return digest.hexdigest()[:16]


def contradictions(saved: TrainConfig, explicit: dict) -> list[str]:
    """The settings given on the command line that differ from the checkpoint's."""
    names = {f.name for f in fields(TrainConfig)} - set(RESUMABLE_CHANGES)

    def shown(value) -> str:
        return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)

    return [
        f"--{name.replace('_', '-')} {shown(explicit[name])} "
        f"(checkpoint: {shown(getattr(saved, name))})"
        for name in sorted(names & explicit.keys())
        if explicit[name] != getattr(saved, name)
    ]
