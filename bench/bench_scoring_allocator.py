"""What glibc's malloc setting (``harness.oneshot.allocator.keep_freed_memory``) saves when scoring architectures.

Scores the same seeded sample of architectures with a trained supernet, by the fast protocol
of ``rank`` (bf16, BatchNorm recalibrated on 160 train images, 500 valid images), in two
fresh processes one after the other: one with the setting (``keep``), one with glibc's
defaults (``plain``); the setting is process-wide, hence the processes. Each reports wall
and CPU seconds (CPU seconds hold up when the machine is shared). Writes
results/bench/scoring-allocator.json and .md. Run, e.g.:
    .venv/bin/python bench/bench_scoring_allocator.py --checkpoint results/supernets/spos-c16n1-e100 --archs 60
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "results" / "bench"
VARIANTS = ("keep", "plain")


def score(variant: str, checkpoint: str, data_dir: str, archs: int, seed: int) -> dict:
    """One variant in this process: warm up on 5 architectures, then time ``archs`` of them."""
    import torch

    torch.set_num_threads(1)
    if variant == "keep":
        from harness.oneshot.allocator import keep_freed_memory

        keep_freed_memory()
    from harness.evaluation.rank import select_architectures
    from harness.oneshot.data import DataSettings
    from harness.oneshot.scoring import ScoringConfig, SupernetScorer, supernet_from_checkpoint

    dataset = DataSettings(dataset="cifar10", data_dir=data_dir).load()
    scoring = ScoringConfig(calibration_images=160, eval_images=500, precision="bf16").resolved()
    model, _ = supernet_from_checkpoint(checkpoint, dataset, "average", "cpu")
    scorer = SupernetScorer(model, dataset, scoring)
    chosen = select_architectures("sample", archs + 5, seed=seed)
    scorer.score_many(chosen[:5])
    wall, cpu = time.perf_counter(), time.process_time()
    scorer.score_many(chosen[5:])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"variant": variant, "architectures": archs, "wall_seconds": wall, "cpu_seconds": cpu,
            "cpu_seconds_per_architecture": cpu / archs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(ROOT / "results" / "supernets" / "spos-c16n1-e100"))
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--archs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # a child process's one variant
    args = parser.parse_args(argv)
    if args.variant:
        print(json.dumps(score(args.variant, args.checkpoint, args.data_dir, args.archs, args.seed)))
        return 0
    load = os.getloadavg()[0]
    rows = []
    for variant in VARIANTS:
        child = subprocess.run([sys.executable, __file__, "--variant", variant, "--checkpoint", args.checkpoint,
                                "--data-dir", args.data_dir, "--archs", str(args.archs), "--seed", str(args.seed)],
                               capture_output=True, text=True, check=True)
        rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]))
    saving = 1.0 - rows[0]["cpu_seconds"] / rows[1]["cpu_seconds"]
    document = {"checkpoint": args.checkpoint, "protocol": "bf16, 160 calibration + 500 valid images, 1 thread",
                "machine": f"{os.cpu_count()} CPUs ({platform.machine()})", "load_average_before": load,
                "rows": rows, "cpu_saving": saving}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "scoring-allocator.json").write_text(json.dumps(document, indent=2) + "\n")
    lines = ["# Scoring with and without the malloc setting", "",
             f"{args.archs} architectures of `{Path(args.checkpoint).name}` by the fast protocol "
             f"({document['protocol']}); {document['machine']}, 1-minute load average {load:.2f} before.", "",
             "| variant | CPU s | CPU s / arch | wall s |", "|---|---:|---:|---:|"]
    lines += [f"| {r['variant']} | {r['cpu_seconds']:.1f} | {r['cpu_seconds_per_architecture']:.3f} | "
              f"{r['wall_seconds']:.1f} |" for r in rows]
    lines += ["", f"CPU time saved by `keep`: {100 * saving:.0f}%."]
    (OUT / "scoring-allocator.md").write_text("\n".join(lines) + "\n")
    print(f"cpu saving {100 * saving:.0f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
