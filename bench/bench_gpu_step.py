"""Images/s of the real single-path (SPOS) training step on a GPU, at several batch sizes.

It times what ``nas-harness train`` runs: the trainer's resident dataset (``Dataset.to``),
augmentation on the device, the method's ``train_step`` under the trainer's autocast, the
cosine learning rate and a ``LossMeter`` read every ``CUDA_CHECK_EVERY`` steps, with
``torch.cuda.synchronize()`` only around the timed window. Each (batch size, precision)
gets its own freshly initialised C=16, N=5 supernet, ``--warmup`` untimed steps and
``--steps`` timed ones. On a machine without CUDA it runs on the CPU (a smoke run: use few
steps), and says so.

torch.compile and CUDA graphs are not used: a single-path supernet runs a different one of
15,625 graphs at each step, so each would be traced and captured anew (see docs/speed.md).

    python bench/bench_gpu_step.py --data-dir DIR [--batch-sizes 64 256 1024] [--steps 300]

Writes ``results/bench/gpu_step.json`` and ``.md`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.oneshot.data import load_dataset  # noqa: E402
from harness.oneshot.loss_meter import LossMeter, check_every_for  # noqa: E402
from harness.oneshot.method import StepContext  # noqa: E402
from harness.oneshot.training import SupernetTrainer, TrainConfig, cosine_lr, epoch_generator  # noqa: E402
from methods.spos import SPOS  # noqa: E402

#: The issue's target for the batch-64 step on an H200: NB201's 250-epoch protocol in about ten minutes.
TARGET_IMAGES_PER_SECOND = 10_000


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(trainer: SupernetTrainer, warmup: int, steps: int) -> dict[str, float]:
    """Run ``warmup`` then ``steps`` training steps as the trainer does; images/s of the timed ones."""
    config, device = trainer.config, trainer.device
    total = warmup + steps
    meter, every = LossMeter(), check_every_for(device)
    batches, epoch = None, 0

    def next_batch():
        nonlocal batches, epoch
        while True:
            if batches is None:
                batches = trainer.dataset.batches("train", config.batch_size, epoch_generator(config.seed, epoch, 0),
                                                  augment=True, channels_last=config.channels_last, device=device)
            try:
                return next(batches)
            except StopIteration:
                batches, epoch = None, epoch + 1

    start = 0.0
    for step in range(total):
        if step == warmup:
            _synchronize(device)
            start = time.perf_counter()
        images, labels = next_batch()
        lr = cosine_lr(step, total, config.lr, config.lr_min)
        for group in trainer.optimizer.param_groups:
            group["lr"] = lr
        context = StepContext(trainer.model, trainer.optimizer, trainer.valid, lr, config.grad_clip,
                              trainer._autocast, progress=step / total)
        meter.add(trainer.method.train_step(context, images, labels))
        if meter.due(every):
            if not meter.check().finite:
                raise SystemExit(f"the loss stopped being finite by step {step + 1}")
    _synchronize(device)
    seconds = time.perf_counter() - start
    return {"images_per_second": steps * config.batch_size / seconds, "seconds": seconds,
            "mean_loss": meter.mean}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="CIFAR-10 source (default: the harness's search)")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--precisions", nargs="+", default=["bf16", "fp32"])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--C", type=int, default=16)
    parser.add_argument("--N", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads on the CPU")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "gpu_step.json")
    args = parser.parse_args()

    dataset = load_dataset(args.dataset, args.data_dir)
    device = torch.device(args.device)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for precision in args.precisions:
            for batch_size in args.batch_sizes:
                config = TrainConfig(C=args.C, N=args.N, batch_size=batch_size, epochs=1, device=args.device,
                                     precision=precision, threads=args.threads, seed=0)
                trainer = SupernetTrainer(SPOS(seed=0), dataset, config, Path(scratch) / "run", progress=False)
                figures = time_steps(trainer, args.warmup, args.steps)
                row = {"precision": precision, "batch_size": batch_size, **figures}
                if device.type == "cuda":
                    row["max_memory_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
                    torch.cuda.reset_peak_memory_stats(device)
                rows.append(row)
                print(f"{precision:>5} batch {batch_size:>5}: {figures['images_per_second']:>10,.0f} img/s "
                      f"({args.steps} steps in {figures['seconds']:.1f} s)", flush=True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"
    result = {"device": name, "device_type": device.type, "torch": str(torch.__version__), "C": args.C,
              "N": args.N, "steps": args.steps, "warmup": args.warmup, "dataset": dataset.name,
              "target_images_per_second_batch64": TARGET_IMAGES_PER_SECOND, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# SPOS training step, C={args.C}, N={args.N}, on {name} ({device.type})", "",
             f"torch {torch.__version__}; {args.steps} timed steps after {args.warmup} warm-up steps; "
             f"target for batch 64 on an H200: {TARGET_IMAGES_PER_SECOND:,} img/s.", "",
             "| precision | batch | img/s | seconds |", "|---|---:|---:|---:|"]
    lines += [f"| {r['precision']} | {r['batch_size']} | {r['images_per_second']:,.0f} | {r['seconds']:.1f} |"
              for r in rows]
    if device.type != "cuda":
        lines += ["", "No CUDA device: these figures are the CPU's, from a smoke run."]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
