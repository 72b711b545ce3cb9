"""bench/report.py on a small made-up pytest-benchmark JSON: the tables, ratios, machine info,
the chart, and the messages when something is missing. Needs no data and no benchmarks run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import report

REPORT_SCRIPT = Path(report.__file__)

EPOCH_GROUP = "epoch 784-10-10 batch 100 float32"
KERNEL_GROUP = "dense_forward 784-128-10 batch 100 float32"
THREADS_GROUP = "threads: epoch 784-10-10 batch 100 float32"
PEAK_GROUP = "peak: the 5×4 register tile, data in cache, 2 threads"


def benchmark_entry(group: str, suite: str, implementation: str, median: float) -> dict:
    stats = {"min": median * 0.9, "max": median * 1.2, "mean": median, "median": median}
    return {
        "group": group,
        "name": f"test_x[{implementation}]",
        "fullname": f"bench/test_x.py::test_x[{implementation}]",
        "params": None,
        "extra_info": {"suite": suite, "implementation": implementation},
        "stats": {**stats, "stddev": 0.0, "rounds": 5, "iterations": 1},
    }


def made_up_results() -> dict:
    return {
        "machine_info": {
            "python_version": "3.11.7",
            "cpu": {"brand_raw": "Test CPU", "count": 2},
            "fastnn": {
                "versions": {"numpy": "2.4.6", "numba": "0.68.1", "torch": "2.13.0"},
                "threads": {"benchmarks": 2, "numba": 2, "torch": 2},
                "threadpools": [
                    {
                        "user_api": "blas",
                        "internal_api": "openblas",
                        "version": "0.3.31",
                        "architecture": "SkylakeX",
                        "threading_layer": "pthreads",
                        "num_threads": 2,
                        "filepath": "/venv/lib/site-packages/scipy_openblas64/lib/o.so",
                    },
                    {
                        "user_api": "openmp",
                        "prefix": "libgomp",
                        "num_threads": 2,
                        "filepath": "/usr/lib/x86_64-linux-gnu/libgomp.so.1",
                    },
                    {
                        "user_api": "openmp",
                        "prefix": "libgomp",
                        "num_threads": 2,
                        "filepath": "/venv/lib/site-packages/torch/lib/libgomp-a34b.so.1",
                    },
                ],
                "environment": {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": None},
            },
        },
        "commit_info": {"id": "0123456789abcdef", "dirty": False},
        "datetime": "2025-01-01T00:00:00+00:00",
        "version": "5.3.1",
        "benchmarks": [
            benchmark_entry(KERNEL_GROUP, "kernel", "numba", 0.001),
            benchmark_entry(KERNEL_GROUP, "kernel", "numpy", 0.002),
            benchmark_entry(KERNEL_GROUP, "kernel", "torch", 0.004),
            benchmark_entry(EPOCH_GROUP, "epoch", "numba", 0.020),
            benchmark_entry(EPOCH_GROUP, "epoch", "numpy", 0.040),
            benchmark_entry(EPOCH_GROUP, "epoch", "torch-nn", 0.080),
            benchmark_entry(EPOCH_GROUP, "epoch", "torch-tensors", 0.060),
            benchmark_entry(EPOCH_GROUP, "epoch", "floor", 0.005),
            benchmark_entry(THREADS_GROUP, "threads", "numba 1 thread", 0.030),
            benchmark_entry(THREADS_GROUP, "threads", "numba 2 threads", 0.020),
            benchmark_entry(PEAK_GROUP, "peak", "numba", 0.010),
        ],
    }


MULTIPLY_ADDS = {EPOCH_GROUP: 1_000_000_000, PEAK_GROUP: 500_000_000}


def with_multiply_adds(results: dict) -> dict:
    """Every epoch benchmark but the floor, and the peak, carry their multiply-adds."""
    for bench in results["benchmarks"]:
        extra = bench["extra_info"]
        if bench["group"] in MULTIPLY_ADDS and extra["implementation"] != "floor":
            extra["multiply_adds"] = MULTIPLY_ADDS[bench["group"]]
    return results


@pytest.fixture
def results_file(tmp_path) -> Path:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(made_up_results()))
    return path


def table_rows(text: str) -> dict[str, dict[str, str]]:
    """{group: {column: cell}} from every Markdown table whose first column is "group"."""
    rows, header = {}, None
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|"):
            header = None
        elif cells[0] == "group":
            header = cells
        elif header and not set(cells[0]) <= {"-", ":"}:
            rows[cells[0]] = dict(zip(header, cells, strict=True))
    return rows


def test_tables_hold_medians_and_ratios(results_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert report.main([str(results_file), "--out", str(out)]) == 0
    text = (out / "report.md").read_text(encoding="utf-8")
    assert capsys.readouterr().out.strip() == text.strip()
    rows = table_rows(text)

    kernel = rows[KERNEL_GROUP]
    assert (kernel["numba"], kernel["numpy"], kernel["torch"]) == ("1 ms", "2 ms", "4 ms")
    assert kernel["numba / numpy"] == "0.5"
    assert kernel["numba / torch"] == "0.25"

    epoch = rows[EPOCH_GROUP]
    assert epoch["floor"] == "5 ms"
    assert epoch["numba / numpy"] == "0.5"
    assert epoch["numba / torch-nn"] == "0.25"
    assert epoch["numba / torch-tensors"] == "0.333"
    assert epoch["numba / floor"] == "4"
    assert epoch["numpy / floor"] == "8"
    assert epoch["torch-nn / floor"] == "16"

    threads = rows[THREADS_GROUP]
    assert threads["numba 1 thread / numba 2 threads"] == "1.5"
    assert "numba / numpy" not in threads


def test_suites_are_separate_tables_in_run_order(results_file, tmp_path):
    report.main([str(results_file), "--out", str(tmp_path)])
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    titles = [line for line in text.splitlines() if line.startswith("## ")]
    assert titles == ["## Machine", "## Kernels", "## Epochs", "## Threads", "## Peak (the probe)"]


def test_arithmetic_sets_each_rate_beside_the_probes_peak(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(with_multiply_adds(made_up_results())))
    assert report.main([str(path), "--out", str(tmp_path)]) == 0
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    arithmetic = text.split("## Arithmetic")[1]
    row = table_rows(arithmetic)[EPOCH_GROUP]
    # 1e9 multiply-adds in 20 ms is 50 G/s; the peak, 5e8 in 10 ms, is 50 G/s as well
    assert (row["numba"], row["numpy"], row["torch-nn"]) == ("50 G/s", "25 G/s", "12.5 G/s")
    assert (row["peak (probe)"], row["numba / peak"]) == ("50 G/s", "1.00")
    assert "floor" not in row  # one read of the images does no arithmetic
    assert report.ZEROS_SKIPPED not in row  # no benchmark said it skipped any


def test_arithmetic_shows_the_multiply_adds_numba_does_beside_the_dense_count(tmp_path):
    results = with_multiply_adds(made_up_results())
    for bench in results["benchmarks"]:
        if bench["group"] == EPOCH_GROUP and bench["extra_info"]["implementation"] == "numba":
            bench["extra_info"]["performed_multiply_adds"] = 400_000_000
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    assert report.main([str(path), "--out", str(tmp_path)]) == 0
    arithmetic = (tmp_path / "report.md").read_text(encoding="utf-8").split("## Arithmetic")[1]
    row = table_rows(arithmetic)[EPOCH_GROUP]
    # 4e8 of the dense count's 1e9 in 20 ms: 20 G/s, 0.4 of the 50 G/s peak
    assert (row["numba"], row[report.ZEROS_SKIPPED]) == ("50 G/s", "20 G/s")
    assert (row["numba / peak"], row[f"{report.ZEROS_SKIPPED} / peak"]) == ("1.00", "0.40")


def test_without_multiply_adds_there_is_no_arithmetic_table(results_file, tmp_path):
    report.main([str(results_file), "--out", str(tmp_path)])
    assert "## Arithmetic" not in (tmp_path / "report.md").read_text(encoding="utf-8")


def test_machine_and_versions_are_recorded(results_file, tmp_path):
    report.main([str(results_file), "--out", str(tmp_path)])
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "| torch | 2.13.0 |" in text
    assert "| numba | 0.68.1 |" in text
    assert (
        "| blas | openblas 0.3.31 SkylakeX pthreads, 2 threads, `scipy_openblas64/lib/o.so` |"
        in text
    )
    # two copies of one library: the path tells which is whose
    assert "| openmp | libgomp, 2 threads, `/usr/lib/x86_64-linux-gnu/libgomp.so.1` |" in text
    assert "| openmp | libgomp, 2 threads, `torch/lib/libgomp-a34b.so.1` |" in text
    assert "| OPENBLAS_CORETYPE | `Haswell` |" in text
    assert "| OPENBLAS_L2_SIZE | unset |" in text
    assert "0123456789ab" in text


def test_without_matplotlib_the_table_is_still_written(results_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    assert report.main([str(results_file), "--out", str(tmp_path)]) == 0
    assert "matplotlib is not installed" in capsys.readouterr().err
    assert (tmp_path / "report.md").is_file()
    assert not (tmp_path / "report.png").exists()


def test_chart_is_a_png(results_file, tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib (the `chart` extra) is not installed")
    assert report.main([str(results_file), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not a pytest-benchmark JSON file"),
        ('{"benchmarks": []}', "--benchmark-disable"),
        ('{"machine_info": {}}', "no 'benchmarks' list"),
    ],
)
def test_unusable_input_is_an_error(tmp_path, capsys, content, message):
    path = tmp_path / "results.json"
    path.write_text(content)
    assert report.main([str(path), "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_command_line(results_file, tmp_path):
    completed = subprocess.run(
        [sys.executable, str(REPORT_SCRIPT), str(results_file), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert EPOCH_GROUP in completed.stdout
    assert (tmp_path / "o" / "report.md").is_file()


def test_chart_leaves_out_what_has_nothing_to_compare():
    """The peak probe (numba alone) is in its table, not in the chart."""
    assert set(report.chart_suites(made_up_results())) == {"kernel", "epoch", "threads"}


def test_no_chart_when_nothing_is_compared(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="matplotlib (the `chart` extra) is not installed")
    results = made_up_results()
    results["benchmarks"] = [b for b in results["benchmarks"] if b["group"] == PEAK_GROUP]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    assert report.main([str(path), "--out", str(tmp_path)]) == 0
    assert "nothing to compare, so no chart" in capsys.readouterr().err
    assert (tmp_path / "report.md").is_file()
    assert not (tmp_path / "report.png").exists()
