"""Turn a saved pytest-benchmark JSON into a Markdown table of medians and ratios, and a chart.

    pytest bench --benchmark-json=RESULTS.json
    python bench/report.py RESULTS.json [--out DIR]

Prints the Markdown and writes it to DIR/report.md (DIR defaults to bench-out), plus a bar
chart DIR/report.png when matplotlib is installed (the project's `plot` extra).

One table per suite (epochs, threads, kernels, peak), one row per benchmark group: the median
time of each implementation, then ratios of medians. A ratio "a / b" below 1 means a is faster:
numba / numpy, numba / torch..., x / floor (how far an epoch is from one read of its input),
and numba 1 thread / numba 2 threads (the speed-up of the second thread).

Then the arithmetic: for every epoch and full-batch step whose benchmarks carry
extra_info["multiply_adds"], the multiply-adds per second each implementation achieved
(multiply-adds / median), beside the peak that the run's "peak" probe measured, and numba's
share of that peak.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

SUITE_TITLES = {
    "epoch": "Epochs",
    "threads": "Threads",
    "kernel": "Kernels",
    "peak": "Peak (the probe)",
}
ZEROS_SKIPPED = "numba, zeros skipped"  # the multiply-adds numba does, not those of the dense math
IMPLEMENTATION_ORDER = (
    "numba", ZEROS_SKIPPED, "numba 1 thread", "numpy", "torch", "torch-nn", "torch-tensors",
    "floor",
)  # fmt: skip
RATIOS = (
    ("numba", "numpy"),
    ("numba", "torch"),
    ("numba", "torch-nn"),
    ("numba", "torch-tensors"),
    ("numba", "floor"),
    ("numpy", "floor"),
    ("torch-nn", "floor"),
    ("torch-tensors", "floor"),
)
THREADS_NAME = re.compile(r"numba (\d+) threads")


class ReportError(Exception):
    pass


def load_results(path: Path) -> dict:
    try:
        results = json.loads(path.read_text())
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReportError(f"{path}: not a pytest-benchmark JSON file ({error})") from None
    if not isinstance(results, dict) or not isinstance(results.get("benchmarks"), list):
        raise ReportError(f"{path}: not a pytest-benchmark JSON file (no 'benchmarks' list)")
    if not results["benchmarks"]:
        raise ReportError(
            f"{path}: holds no benchmarks (was the run made with --benchmark-disable?)"
        )
    return results


def medians_by_suite(results: dict) -> dict[str, dict[str, dict[str, float]]]:
    """{suite: {group: {implementation: median seconds}}}, in the order the run made them."""
    suites: dict[str, dict[str, dict[str, float]]] = {}
    for bench in results["benchmarks"]:
        extra = bench.get("extra_info") or {}
        suite = extra.get("suite", "other")
        group = bench.get("group") or bench["name"]
        implementation = extra.get("implementation", bench["name"])
        suites.setdefault(suite, {}).setdefault(group, {})[implementation] = bench["stats"][
            "median"
        ]
    return suites


def implementation_columns(groups: dict[str, dict[str, float]]) -> list[str]:
    """Every implementation in the suite: known ones in IMPLEMENTATION_ORDER, "numba N threads"
    after "numba 1 thread", others last in the order they first appear."""
    names = []
    for medians in groups.values():
        names += [name for name in medians if name not in names]

    def rank(name: str) -> tuple[int, int]:
        if name in IMPLEMENTATION_ORDER:
            return IMPLEMENTATION_ORDER.index(name), 0
        threads = THREADS_NAME.fullmatch(name)
        if threads:
            return IMPLEMENTATION_ORDER.index("numba 1 thread"), int(threads.group(1))
        return len(IMPLEMENTATION_ORDER), 0

    return sorted(names, key=rank)


def ratio_columns(names: list[str]) -> list[tuple[str, str]]:
    pairs = [(a, b) for a, b in RATIOS if a in names and b in names]
    if "numba 1 thread" in names:
        pairs += [("numba 1 thread", name) for name in names if THREADS_NAME.fullmatch(name)]
    return pairs


def format_time(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_ratio(a: float | None, b: float | None) -> str:
    return "–" if a is None or b is None or b == 0 else f"{a / b:.3g}"


def suite_table(groups: dict[str, dict[str, float]]) -> list[str]:
    names = implementation_columns(groups)
    pairs = ratio_columns(names)
    header = ["group", *names, *(f"{a} / {b}" for a, b in pairs)]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" + "---:|" * (len(header) - 1),
    ]
    for group, medians in groups.items():
        cells = [group, *(format_time(medians.get(name)) for name in names)]
        cells += [format_ratio(medians.get(a), medians.get(b)) for a, b in pairs]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def multiply_add_rates(results: dict) -> tuple[dict[str, dict[str, float]], float | None]:
    """({epoch group: {implementation: multiply-adds per second}}, the peak probe's rate)."""
    rates: dict[str, dict[str, float]] = {}
    peak = None
    for bench in results["benchmarks"]:
        extra = bench.get("extra_info") or {}
        work, median = extra.get("multiply_adds"), bench["stats"]["median"]
        if not work or not median:
            continue
        if extra.get("suite") == "peak":
            peak = work / median
        elif extra.get("suite") == "epoch":
            group = bench.get("group") or bench["name"]
            rates.setdefault(group, {})[extra.get("implementation", bench["name"])] = work / median
            if extra.get("performed_multiply_adds"):
                rates[group][ZEROS_SKIPPED] = extra["performed_multiply_adds"] / median
    return rates, peak


def format_rate(rate: float | None) -> str:
    return "–" if rate is None else f"{rate / 1e9:.3g} G/s"


def arithmetic_table(results: dict) -> list[str]:
    """Multiply-adds per second of each implementation, and numba's share of the peak."""
    rates, peak = multiply_add_rates(results)
    if not rates:
        return []
    names = implementation_columns(rates)
    skipped = ZEROS_SKIPPED in names
    shares = ["numba", ZEROS_SKIPPED] if skipped else ["numba"]
    header = ["group", *names, "peak (probe)", *(f"{name} / peak" for name in shares)]
    lines = [
        f"Multiply-adds per second: an epoch's (1) Z = W·A, (8) dW = dZ·Aᵀ and (10) dA = Wᵀ·dZ "
        f"over its samples, divided by the median time. The peak is the probe's: the tile "
        f"with its data in cache, on every thread ({format_rate(peak)}).",
    ]
    if skipped:
        lines.append(
            f"`{ZEROS_SKIPPED}` counts only the multiply-adds numba does: with a wide first "
            f"layer and mostly-zero images it skips the zero pixels' (kernels/tile_sparse.py)."
        )
    lines += [
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" + "---:|" * (len(header) - 1),
    ]
    for group, by_name in rates.items():
        share_texts = [
            "–" if by_name.get(name) is None or not peak else f"{by_name[name] / peak:.2f}"
            for name in shares
        ]
        cells = [group, *(format_rate(by_name.get(name)) for name in names)]
        lines.append("| " + " | ".join([*cells, format_rate(peak), *share_texts]) + " |")
    return lines


def library_file(filepath: str | None) -> str | None:
    """A thread pool's library, short: the path inside site-packages when it is there, so that
    two copies of one library (PyTorch's own libgomp and the system's) tell apart."""
    if not filepath:
        return None
    return filepath.rpartition("site-packages/")[2]


def machine_lines(results: dict) -> list[str]:
    machine = results.get("machine_info") or {}
    fastnn = machine.get("fastnn") or {}
    versions = fastnn.get("versions") or {}
    threads = fastnn.get("threads") or {}
    environment = fastnn.get("environment") or {}
    cpu = machine.get("cpu") or {}
    commit = results.get("commit_info") or {}
    rows = [
        ("date", results.get("datetime")),
        ("commit", f"{commit.get('id', '?')[:12]}{' (dirty)' if commit.get('dirty') else ''}"),
        ("cpu", f"{cpu.get('brand_raw', '?')}, {cpu.get('count', '?')} logical cores"),
        ("python", machine.get("python_version")),
        *((name, versions.get(name) or "not installed") for name in ("numpy", "numba", "torch")),
        ("threads", ", ".join(f"{k} {v}" for k, v in threads.items() if v is not None)),
    ]
    for pool in fastnn.get("threadpools") or []:
        keys = ("internal_api", "version", "architecture", "threading_layer", "prefix")
        details = " ".join(str(pool[key]) for key in keys if pool.get(key))
        where = library_file(pool.get("filepath"))
        details += f", {pool.get('num_threads')} threads" + (f", `{where}`" if where else "")
        rows.append((pool.get("user_api"), details))
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        value = environment.get(name)
        rows.append((name, "unset" if value is None else f"`{value}`"))
    if fastnn.get("smoke_run"):
        rows.append(("note", "smoke run: small shapes only"))
    return ["| | |", "|---|---|", *(f"| {key} | {value} |" for key, value in rows)]


def markdown(results: dict) -> str:
    suites = medians_by_suite(results)
    lines = ["# fastnn benchmarks", "", "## Machine", "", *machine_lines(results), ""]
    lines += [
        "Medians of each benchmark's rounds. A ratio a / b is median(a) / median(b): "
        "below 1, a is faster. `floor` is one read of the training images in the epoch's order.",
        "",
    ]
    for suite, groups in suites.items():
        lines += [f"## {SUITE_TITLES.get(suite, suite)}", "", *suite_table(groups), ""]
    arithmetic = arithmetic_table(results)
    if arithmetic:
        lines += ["## Arithmetic", "", *arithmetic, ""]
    return "\n".join(lines)


def chart_suites(results: dict) -> dict[str, dict[str, dict[str, float]]]:
    """The suites the chart shows: those with two implementations or more to compare (the peak
    probe's, numba's alone, is in its table)."""
    suites = medians_by_suite(results)
    return {suite: groups for suite, groups in suites.items()
            if len(implementation_columns(groups)) > 1}  # fmt: skip


def write_chart(results: dict, path: Path) -> None:
    """Per suite of chart_suites, each group's medians relative to numpy's (else to the first
    implementation's), as horizontal bars on a log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suites = chart_suites(results)
    heights = [1.2 + 0.25 * len(groups) * max(1.0, len(implementation_columns(groups)) / 3)
               for groups in suites.values()]  # fmt: skip
    figure, axes = plt.subplots(
        len(suites), 1, figsize=(10, sum(heights)), height_ratios=heights, squeeze=False
    )
    for axis, (suite, groups) in zip(axes[:, 0], suites.items(), strict=True):
        names = implementation_columns(groups)
        reference = "numpy" if "numpy" in names else names[0]
        bar = 0.8 / len(names)
        smallest = 1.0
        for i, name in enumerate(names):
            positions, values = [], []
            for row, medians in enumerate(groups.values()):
                if name in medians and medians.get(reference):
                    positions.append(row + (i - (len(names) - 1) / 2) * bar)
                    values.append(medians[name] / medians[reference])
            axis.barh(positions, values, height=bar, label=name)
            smallest = min([smallest, *values])
        axis.axvline(1.0, color="black", linewidth=0.8)
        axis.set_xscale("log")
        axis.set_xlim(left=smallest / 2)  # bars start at the left edge: keep the shortest visible
        axis.set_yticks(range(len(groups)), list(groups), fontsize=7)
        axis.set_ylim(len(groups) - 0.5, -0.5)  # first group on top
        axis.set_xlabel(f"median time relative to {reference} (log scale; left is faster)")
        axis.set_title(SUITE_TITLES.get(suite, suite))
        axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="JSON from pytest --benchmark-json=FILE")
    parser.add_argument("--out", type=Path, default=Path("bench-out"), help="output folder")
    args = parser.parse_args(argv)
    try:
        results = load_results(args.results)
    except ReportError as error:
        print(f"report: {error}", file=sys.stderr)
        return 2
    text = markdown(results)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.md").write_text(text + "\n", encoding="utf-8")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(
            "report: matplotlib is not installed, so no chart; the table is in "
            f"{args.out / 'report.md'} (pip install matplotlib, or the project's `plot` extra)",
            file=sys.stderr,
        )
        return 0
    if not chart_suites(results):
        print(f"report: nothing to compare, so no chart; wrote {args.out / 'report.md'}",
              file=sys.stderr)  # fmt: skip
        return 0
    write_chart(results, args.out / "report.png")
    print(f"report: wrote {args.out / 'report.md'} and {args.out / 'report.png'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
