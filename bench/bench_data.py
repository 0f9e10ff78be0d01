"""Speed of the data path: batch pipeline images/s on one core, and CIFAR-10 load times.

The pipeline (shuffle, random crop + flip, normalise to float) runs on a CIFAR-shaped
25,000-image split with torch limited to one thread; each figure is the best of a few
epochs, since the machine is shared. Loading is timed on a real CIFAR-10 source when
one is found (--data-dir, default ../shared/data/cifar10-jpeg.tar.gz): the first load
decodes and writes a cache in a temporary folder, later loads read that cache.

Writes results/bench/data.json and prints a table. Run: .venv/bin/python bench/bench_data.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.oneshot.augment import iterate_batches  # noqa: E402
from harness.oneshot.data import load_dataset  # noqa: E402

OUT = ROOT / "results" / "bench"
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
CIFAR_MEAN, CIFAR_STD = (0.491, 0.482, 0.447), (0.247, 0.243, 0.261)
TARGET_IMAGES_PER_SECOND = 20_000


def pipeline_rate(x: torch.Tensor, y: torch.Tensor, batch_size: int, epochs: int, **options) -> float:
    """Best images/s over ``epochs`` full passes of ``iterate_batches``."""
    generator = torch.Generator().manual_seed(0)
    best = 0.0
    for _ in range(epochs):
        start, seen = time.perf_counter(), 0
        for images, _labels in iterate_batches(x, y, batch_size, generator, mean=CIFAR_MEAN, std=CIFAR_STD,
                                               **options):
            seen += len(images)
        best = max(best, seen / (time.perf_counter() - start))
    return best


def measure_pipeline(epochs: int) -> dict[str, float]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (25_000, 3, 32, 32), dtype=torch.uint8, generator=generator)
    y = torch.randint(0, 10, (25_000,), generator=generator)
    cases = {
        "batch64_augment": dict(batch_size=64),
        "batch64_augment_channels_last": dict(batch_size=64, channels_last=True),
        "batch64_no_augment": dict(batch_size=64, augment=False),
        "batch256_augment": dict(batch_size=256),
    }
    return {name: pipeline_rate(x, y, epochs=epochs, **case) for name, case in cases.items()}


def measure_load(source: Path) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        dataset = load_dataset("cifar10", source, cache)
        cold = time.perf_counter() - start
        warm = min(_timed(lambda: load_dataset("cifar10", source, cache)) for _ in range(3))
        unverified = min(_timed(lambda: load_dataset("cifar10", source, cache, verify=False)) for _ in range(3))
    return {
        "source": str(source),
        "first_load_seconds": cold,
        "cached_load_seconds": warm,
        "cached_load_seconds_without_checksum": unverified,
        "sizes": [len(dataset.train_y), len(dataset.valid_y), len(dataset.test_y)],
        "mean": [round(v, 4) for v in dataset.mean],
        "std": [round(v, 4) for v in dataset.std],
    }


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_SOURCE, help="a CIFAR-10 source to time loading")
    parser.add_argument("--no-load", action="store_true", help="time only the batch pipeline")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()

    torch.set_num_threads(1)
    rates = measure_pipeline(args.epochs)
    load = None if args.no_load or not args.data_dir.exists() else measure_load(args.data_dir)
    results = {
        "machine": {"cpus": os.cpu_count(), "torch_threads": 1, "python": platform.python_version(),
                    "torch": torch.__version__, "platform": platform.platform()},
        "pipeline_images_per_second": rates,
        "cifar10_load": load,
        "targets": {"batch64_augment_images_per_second": TARGET_IMAGES_PER_SECOND},
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "data.json").write_text(json.dumps(results, indent=2) + "\n")
    for name, rate in rates.items():
        print(f"pipeline {name:<32} {rate:>10,.0f} img/s")
    print(f"(target for batch64_augment: > {TARGET_IMAGES_PER_SECOND:,} img/s on one core)")
    if load:
        print(f"CIFAR-10 first load (decode + cache): {load['first_load_seconds']:.2f} s   from {load['source']}")
        print(f"CIFAR-10 cached load:                 {load['cached_load_seconds']:.2f} s "
              f"({load['cached_load_seconds_without_checksum']:.2f} s without the SHA-256 check)")
        print(f"sizes train/valid/test {load['sizes']}, mean {load['mean']}, std {load['std']}")
    print(f"written: {OUT / 'data.json'}")


if __name__ == "__main__":
    main()
