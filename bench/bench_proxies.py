"""What each zero-cost proxy costs per architecture on the NB201 network (C=16, N=5) with CIFAR-10 batches.

For a seeded sample of architectures, every proxy builds the network, initialises it and
scores it (``harness.proxies.ProxyScorer``, the same call ``nas-harness rank --proxy``
makes), and the seconds of each architecture are kept. The batches are drawn once, as in a
ranking, and their cost is reported apart. Writes results/bench/proxies.json and .md. Run,
e.g.:
    .venv/bin/python bench/bench_proxies.py --data-dir /work/shared/data/cifar10-jpeg.tar.gz --archs 5 --threads 1
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.evaluation.rank import select_architectures  # noqa: E402
from harness.jsonsafe import dumps  # noqa: E402
from harness.oneshot.data import load_dataset  # noqa: E402
from harness.proxies import PROXIES, ProxyConfig, ProxyScorer, proxy_batches  # noqa: E402
from harness.space import NUM_ARCHITECTURES  # noqa: E402

OUT = ROOT / "results" / "bench"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="CIFAR-10 (tarball, pickles or image folder)")
    parser.add_argument("--archs", type=int, default=5, help="architectures sampled (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample, the batches and the initialisation")
    parser.add_argument("--proxies", nargs="+", default=list(PROXIES), help="proxies to time (default: all)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--C", type=int, default=16)
    parser.add_argument("--N", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT / "proxies")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    config = ProxyConfig(C=args.C, N=args.N, batch_size=args.batch_size, batches=args.batches,
                         init_seed=args.seed, batch_seed=args.seed)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    dataset = load_dataset("cifar10", args.data_dir)
    load_seconds = time.perf_counter() - start
    start = time.perf_counter()
    batches = proxy_batches(dataset, config)
    batch_seconds = time.perf_counter() - start
    archs = select_architectures("sample", args.archs, args.seed)
    rows = {}
    for name in args.proxies:
        scorer = ProxyScorer(name, dataset, config, batches)
        measured = [scorer.score(arch) for arch in archs]
        seconds = np.array([s for _, s in measured])
        rows[name] = {"seconds": seconds.tolist(), "scores": [v for v, _ in measured],
                      "mean_seconds": float(seconds.mean()), "median_seconds": float(np.median(seconds)),
                      "max_seconds": float(seconds.max()),
                      "hours_for_all_architectures": float(seconds.mean()) * NUM_ARCHITECTURES / 3600}
        print(f"{name}: {seconds.mean():.3f} s per architecture (max {seconds.max():.3f})", flush=True)
    load_after = os.getloadavg()[0]
    document = {
        "what": "seconds per architecture of each proxy: network built, initialised and scored (batches drawn once)",
        "proxy_config": config.__dict__, "threads": args.threads, "architectures": [a.to_string() for a in archs],
        "dataset_load_seconds": load_seconds, "batch_seconds": batch_seconds,
        "machine": {"cpus": os.cpu_count(), "platform": platform.machine(), "torch": torch.__version__,
                    "load_average_before": load_before, "load_average_after": load_after},
        "proxies": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(dumps(document, indent=1) + "\n")
    lines = [f"# Zero-cost proxies: cost per architecture (C={config.C}, N={config.N}, CIFAR-10)", "",
             f"{len(archs)} architectures (seeded sample, seed {args.seed}), {config.batches} train batches of "
             f"{config.batch_size} images, {args.threads} torch thread(s), float32 on the CPU; "
             f"{os.cpu_count()} CPUs ({platform.machine()}), 1-minute load average {load_before:.2f} before and "
             f"{load_after:.2f} after. Each figure covers building the network, initialising it and scoring it; "
             f"drawing the batches (once per ranking) took {1000 * batch_seconds:.1f} ms.", "",
             "| proxy | mean s / arch | median | max | hours for all 15,625 |", "|---|---:|---:|---:|---:|"]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['mean_seconds']:.3f} | {row['median_seconds']:.3f} | "
                     f"{row['max_seconds']:.3f} | {row['hours_for_all_architectures']:.2f} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
