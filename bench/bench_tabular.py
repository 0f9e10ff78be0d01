"""Speed and memory of the tabular half: table load, vectorised lookups, `compare` wall time.

Writes results/bench/tabular.json and prints a table. Run: .venv/bin/python bench/bench_tabular.py
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "bench"
PYTHON = sys.executable

LOAD_SNIPPET = """
import resource, time
t = time.perf_counter()
from surrogates.analog_table import load_analog_benchmark
b = load_analog_benchmark()
elapsed = time.perf_counter() - t
print(elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def measure_load(cache_dir: str) -> tuple[float, float]:
    """Seconds (imports included) and peak RSS in MiB of loading the table in a fresh process."""
    env = {**os.environ, "NAS_HARNESS_CACHE": cache_dir}
    out = subprocess.run([PYTHON, "-c", LOAD_SNIPPET], env=env, cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1]) / 1024


def measure_lookups() -> float:
    from surrogates.analog_table import load_analog_benchmark

    table = load_analog_benchmark()
    rng = np.random.default_rng(0)
    indices = rng.integers(0, 15_625, size=1_000_000)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        val, test = table.query_indices(indices)
        best = min(best, time.perf_counter() - t)
    assert val.shape == test.shape == indices.shape
    return len(indices) / best


def measure_compare(mlflow: bool, tmp: str) -> float:
    args = [PYTHON, "-m", "harness.cli", "compare", "--methods", "random_search", "aging_evolution", "reinforce",
            "--seeds", "20", "--budget", "150", "--workers", "2", "--no-progress",
            "--out", os.path.join(tmp, f"compare-{mlflow}")]
    if mlflow:
        args += ["--tracking-uri", f"sqlite:///{tmp}/mlflow.db"]
    else:
        args.append("--no-mlflow")
    t = time.perf_counter()
    subprocess.run(args, cwd=ROOT, check=True, capture_output=True, text=True)
    return time.perf_counter() - t


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cold_s, cold_mib = measure_load(os.path.join(tmp, "cache"))
        warm = [measure_load(os.path.join(tmp, "cache")) for _ in range(3)]
        warm_s = min(w[0] for w in warm)
        warm_mib = max(w[1] for w in warm)
        lookups = measure_lookups()
        compare_plain = measure_compare(False, tmp)
        compare_mlflow = measure_compare(True, tmp)
    results = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "table_load_first_seconds": cold_s,
        "table_load_cached_seconds": warm_s,
        "table_load_peak_rss_mib": max(cold_mib, warm_mib),
        "vectorised_lookups_per_second": lookups,
        "compare_3x20x150_seconds_no_mlflow": compare_plain,
        "compare_3x20x150_seconds_mlflow": compare_mlflow,
        "targets": {"table_load_seconds": 0.3, "lookups_per_second": 1e6,
                    "compare_no_mlflow_seconds": 5, "compare_mlflow_seconds": 15},
    }
    (OUT / "tabular.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"table load, first time (parse data.anb, write cache): {cold_s:.3f} s (imports included)")
    print(f"table load, cached:                                   {warm_s:.3f} s   (target < 0.3 s)")
    print(f"peak RSS while loading:                               {results['table_load_peak_rss_mib']:.0f} MiB")
    print(f"vectorised lookups:                                   {lookups:,.0f} /s (target >= 1,000,000)")
    print(f"compare 3 methods x 20 seeds x 150 queries, no MLflow: {compare_plain:.2f} s wall (target < 5 s)")
    print(f"compare 3 methods x 20 seeds x 150 queries, MLflow:    {compare_mlflow:.2f} s wall (target < 15 s)")
    print(f"written: {OUT / 'tabular.json'}")


if __name__ == "__main__":
    main()
