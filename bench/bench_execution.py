"""What the executors cost and buy on this machine; writes results/bench/execution.{json,md}.

1. Ray's fixed cost: starting a local Ray instance with 2 CPUs and shutting it down.
2. Per-task overhead of Ray against the local process pool on a tabular compare (3 methods x
   20 seeds x 150 queries, 2 workers, no MLflow): (wall time - fixed cost) / tasks, each the
   best of ``--rounds`` runs of the real command.
3. The speed-up of ``rank`` from 1 to 2 workers (local processes and Ray), on a committed
   supernet with the fast protocol (bf16, 160 calibration and 500 valid images), one torch
   thread per worker; the rankings are checked to be identical.

    .venv/bin/python bench/bench_execution.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
SUPERNET = ROOT / "results" / "supernets" / "spos-c16n1-e100"


def timed(args: list[str], env: dict | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})})
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return seconds


def ray_fixed_cost(rounds: int) -> float:
    code = ("import ray; ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, "
            "configure_logging=False); ray.shutdown()")
    return min(timed([PYTHON, "-c", code]) for _ in range(rounds))


def compare_seconds(executor: str, out: Path, rounds: int) -> float:
    args = [PYTHON, "-m", "harness.cli", "compare", "--methods", "random_search", "aging_evolution", "reinforce",
            "--seeds", "20", "--budget", "150", "--workers", "2", "--no-mlflow", "--no-progress",
            "--executor", executor]
    best = float("inf")
    for i in range(rounds):
        best = min(best, timed([*args, "--out", str(out / f"{executor}-{i}")]))
    return best


def rank_seconds(executor: str, workers: int, out: Path, data_dir: str, archs: int) -> tuple[float, str]:
    folder = out / f"rank-{executor}-{workers}"
    args = [PYTHON, "-m", "harness.cli", "rank", "--checkpoint", str(SUPERNET), "--archs", str(archs),
            "--precision", "bf16", "--calibration-images", "160", "--eval-images", "500", "--threads", "1",
            "--workers", str(workers), "--executor", executor, "--data-dir", data_dir, "--no-mlflow",
            "--no-progress", "--out", str(folder)]
    seconds = timed(args)
    return seconds, (folder / "ranking.csv").read_text()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--archs", type=int, default=200, help="architectures the rank runs score")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        # the first rank decodes CIFAR-10 into the cache; do it before anything is timed
        rank_seconds("local", 1, scratch / "warm", args.data_dir, 4)
        fixed = ray_fixed_cost(args.rounds)
        local = compare_seconds("local", scratch, args.rounds)
        ray = compare_seconds("ray", scratch, args.rounds)
        tasks = 3 * 20
        ranks = {}
        rankings = {}
        for executor, workers in (("local", 1), ("local", 2), ("ray", 2)):
            ranks[f"{executor}-{workers}"], rankings[f"{executor}-{workers}"] = rank_seconds(
                executor, workers, scratch, args.data_dir, args.archs)
    identical = len(set(rankings.values())) == 1
    result = {
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "load_average_before": load_before, "load_average_after": os.getloadavg()[0]},
        "ray_start_and_shutdown_seconds": fixed,
        "compare": {"tasks": tasks, "local_pool_seconds": local, "ray_seconds": ray,
                    "ray_overhead_per_task_seconds": (ray - fixed - local) / tasks,
                    "setting": "3 methods x 20 seeds x 150 queries, 2 workers, no MLflow, best of rounds"},
        "rank": {"architectures": args.archs, "protocol": "bf16, 160 calibration + 500 valid images, 1 thread/worker",
                 "supernet": str(SUPERNET.relative_to(ROOT)), "seconds": ranks,
                 "speedup_local_2_workers": ranks["local-1"] / ranks["local-2"],
                 "speedup_ray_2_workers": ranks["local-1"] / ranks["ray-2"],
                 "identical_rankings": identical},
        "rounds": args.rounds,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "execution.json").write_text(json.dumps(result, indent=1) + "\n")
    c, r = result["compare"], result["rank"]
    lines = [
        "# Executors on this machine", "",
        f"{result['machine']['cpus']} CPUs ({result['machine']['processor']}); 1-minute load average "
        f"{load_before:.2f} before, {result['machine']['load_average_after']:.2f} after.", "",
        "| measurement | figure |", "|---|---:|",
        f"| Ray: start a local instance (2 CPUs) and shut it down | {fixed:.1f} s |",
        f"| compare, {c['tasks']} runs, local pool of 2 | {local:.1f} s |",
        f"| the same on Ray, 2 workers (instance started and stopped by the command) | {ray:.1f} s |",
        f"| Ray's overhead per run beyond its start-up | {1000 * c['ray_overhead_per_task_seconds']:.0f} ms |",
        f"| rank {args.archs} architectures, 1 process | {ranks['local-1']:.1f} s |",
        f"| the same on 2 local processes | {ranks['local-2']:.1f} s ({r['speedup_local_2_workers']:.2f}x) |",
        f"| the same on 2 Ray workers | {ranks['ray-2']:.1f} s ({r['speedup_ray_2_workers']:.2f}x) |",
        "", f"The three rankings are {'identical' if identical else 'NOT identical'}. Rank protocol: {r['protocol']};"
        f" supernet {r['supernet']}. Each compare figure is the best of {args.rounds} runs.", ""]
    (args.out / "execution.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
