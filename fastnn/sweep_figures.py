"""The figures of a sweep (python -m fastnn.sweep), drawn with matplotlib (the [plot] extra).

    dev_accuracy.png      dev accuracy for each value of each swept setting, with the spread
                          over the seeds
    learning_curves.png   dev accuracy and training loss per epoch of the best configurations

matplotlib is imported inside write_figures: without it, ImportError, and the sweep says how to
install it.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

import numpy as np

from .model import atomic_write

MAX_LINES = 6  # above this many combinations of the other settings, one line: the best of them
DPI = 100


def import_matplotlib() -> None:
    """Import what write_figures draws with, ahead of time; nothing if matplotlib is missing
    (write_figures then says so)."""
    with suppress(ImportError):
        for module in ("matplotlib.figure", "matplotlib.backends.backend_agg"):
            importlib.import_module(module)


def write_figures(out: Path, rows: Sequence[dict], grid: dict[str, list], top: int) -> list[Path]:
    """Draw the sweep's figures into `out`, each written atomically; returns their paths."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    from .sweep import rank, swept_settings

    swept = swept_settings(grid)
    ok = [row for row in rows if row["status"] == "ok" and row["dev_accuracy"] is not None]
    n_failed = len(rows) - len(ok)
    paths = []
    if swept and ok:
        figure = dev_accuracy_figure(Figure, ok, grid, swept, n_failed)
        paths.append(save(figure, out / "dev_accuracy.png"))
    best = [row for row in rank(ok)[:top] if row["history"]]
    if best:
        paths.append(save(learning_curves_figure(Figure, best, swept), out / "learning_curves.png"))
    return paths


def save(figure, path: Path) -> Path:
    atomic_write(path, lambda file: figure.savefig(file, format="png", dpi=DPI))
    return path


def label(row: dict, settings: Sequence[str]) -> str:
    from .sweep import spell

    return ", ".join(f"{dest.replace('_', '-')} {spell(dest, row[dest])}" for dest in settings)


def dev_accuracy_figure(Figure, rows, grid, swept, n_failed):
    """One panel per swept setting (the seed aside): for each of its values, the mean dev
    accuracy over the seeds, with a bar from the worst seed to the best; one line for each
    combination of the other swept settings (or, when there are many, for the best of them,
    with every configuration as a grey dot)."""
    from .sweep import spell

    factors = [dest for dest in swept if dest != "seed"] or ["seed"]
    n_seeds = len(grid["seed"]) if "seed" in grid and "seed" not in factors else 1
    columns = min(len(factors), 3)
    panel_rows = -(-len(factors) // columns)
    width = max(5.2 * columns, 7.0)
    figure = Figure(figsize=(width, 4.4 * panel_rows + 0.8), layout="constrained")
    axes = np.atleast_1d(figure.subplots(panel_rows, columns, squeeze=False)).ravel()
    for ax in axes[len(factors) :]:
        ax.set_visible(False)
    for ax, dest in zip(axes, factors, strict=False):
        values = [spell(dest, value) for value in grid[dest]]
        x = np.arange(len(values))
        others = [other for other in factors if other != dest and other != "seed"]
        groups: dict[str, dict[str, list[float]]] = {}
        for row in rows:
            per_value = groups.setdefault(label(row, others), {})
            per_value.setdefault(spell(dest, row[dest]), []).append(100 * row["dev_accuracy"])
        if len(groups) <= MAX_LINES:
            for g, (name, per_value) in enumerate(sorted(groups.items())):
                shift = (g - (len(groups) - 1) / 2) * 0.05
                draw_line(ax, x + shift, values, per_value, name or "mean over the seeds")
        else:
            for row in rows:
                position = values.index(spell(dest, row[dest]))
                jitter = (hash(row["id"]) % 21 - 10) / 100
                ax.plot(position + jitter, 100 * row["dev_accuracy"], ".", color="0.7", zorder=1)
            best = {}
            for value in values:
                means = [
                    (np.mean(per_value[value]), name)
                    for name, per_value in groups.items()
                    if value in per_value
                ]
                if means:
                    best[value] = groups[max(means)[1]][value]
            draw_line(ax, x, values, best, "best of the other settings")
            ax.plot([], [], ".", color="0.7", label="each configuration")
        ax.set_xticks(x, values)
        ax.set_xlim(-0.5, len(values) - 0.5)
        ax.set_xlabel(dest.replace("_", "-"))
        ax.set_ylabel("dev accuracy (%)")
        ax.set_title(f"dev accuracy by --{dest.replace('_', '-')}")
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize="small")
    notes = [f"bars: worst to best of {n_seeds} seeds, marker: their mean"] if n_seeds > 1 else []
    if n_failed:
        notes.append(f"{n_failed} failed configurations not shown")
    notes_line = f"\n({'; '.join(notes)})" if notes else ""
    figure.suptitle(f"Dev accuracy for each value of each swept setting{notes_line}")
    return figure


def draw_line(ax, x, values, per_value: dict[str, list[float]], name: str) -> None:
    """Mean over the seeds at each value, with a bar from the lowest to the highest."""
    present = [i for i, value in enumerate(values) if value in per_value]
    means = np.array([np.mean(per_value[values[i]]) for i in present])
    low = means - np.array([np.min(per_value[values[i]]) for i in present])
    high = np.array([np.max(per_value[values[i]]) for i in present]) - means
    ax.errorbar(np.asarray(x)[present], means, yerr=[low, high], marker="o", capsize=4, label=name)


def learning_curves_figure(Figure, rows, swept):
    """Dev accuracy and training loss per epoch, for each of the best configurations; a ring
    marks the epoch whose weights were kept."""
    figure = Figure(figsize=(12, 5), layout="constrained")
    accuracy_axes, loss_axes = figure.subplots(1, 2)
    longest = max(len(row["history"]) for row in rows)
    marker = "." if longest <= 40 else None  # dots on long curves only thicken the line
    losses = []
    for rank_, row in enumerate(rows, start=1):
        epochs = [record["epoch"] for record in row["history"]]
        dev = [100 * (record["dev_accuracy"] or np.nan) for record in row["history"]]
        loss = [record["loss"] for record in row["history"]]
        settings = label(row, swept) or "the configuration"
        name = f"{rank_}. {settings} ({100 * row['dev_accuracy']:.2f}%)"
        (line,) = accuracy_axes.plot(epochs, dev, marker=marker, label=name)
        best = row["best_epoch"]
        if best and best <= len(dev):
            accuracy_axes.plot(best, dev[best - 1], "o", mfc="none", ms=10, color=line.get_color())
        loss_axes.plot(epochs, loss, marker=marker, color=line.get_color(), label=name)
        losses += [value for value in loss if value > 0]
    accuracy_axes.set_title("dev accuracy after each epoch")
    accuracy_axes.set_xlabel("epoch")
    accuracy_axes.set_ylabel("dev accuracy (%)")
    accuracy_axes.legend(fontsize="small")
    loss_axes.set_title("training loss (mean over the epoch's batches)")
    loss_axes.set_xlabel("epoch")
    loss_axes.set_ylabel("loss")
    if losses and max(losses) > 20 * min(losses):
        from matplotlib.ticker import ScalarFormatter

        loss_axes.set_yscale("log")  # the first epochs would flatten the rest
        for axis in (loss_axes.yaxis.set_major_formatter, loss_axes.yaxis.set_minor_formatter):
            axis(ScalarFormatter())  # 0.4, not 4 × 10⁻¹
    for ax in (accuracy_axes, loss_axes):
        ax.grid(True, alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    figure.suptitle(f"Learning curves of the {len(rows)} best configurations by dev accuracy")
    return figure
