"""What scoring architectures on a trained supernet costs, and how tau depends on the images used.

One pass scores a seeded sample of architectures (default 1,000, the `rank` default) with
BatchNorm recalibration on 640 training images and keeps every architecture's per-image
correctness and cross-entropy on ``--max-eval-images`` valid images. From it:

* the cost: measured seconds per architecture, split into recalibration and evaluation,
  and the projected wall time for 1,000 architectures at each number of evaluation images;
* tau against images: Kendall tau-b of the supernet score (accuracy and negative loss)
  against the table's accuracy when each architecture is evaluated on n of those images
  (a seeded random subset, the same for every architecture; the valid split is stored
  sorted by class, so a prefix would not do), for several n.

A second, smaller pass (``--calibration-archs``) varies the recalibration images (0 means
the supernet's own running statistics, no recalibration) at 1,000 evaluation images.

Writes results/bench/scoring-<run>.json and .md. Run, e.g.:
    .venv/bin/python bench/bench_scoring.py --checkpoint results/supernets/spos-c16n1-e100 --threads 2
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
from scipy.stats import kendalltau

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.data import load_dataset  # noqa: E402
from harness.jsonsafe import dumps  # noqa: E402
from harness.rank import ground_truth_for, select_architectures, supernet_from_checkpoint  # noqa: E402
from harness.scoring import ScoringConfig, SupernetScorer  # noqa: E402

OUT = ROOT / "results" / "bench"
EVAL_COUNTS = (100, 250, 500, 1000, 2000, 5000, 10000)
CALIBRATION_COUNTS = (0, 64, 160, 640, 2560)


def tau(scores: np.ndarray, truth: np.ndarray) -> float:
    return float(kendalltau(scores, truth).statistic)


def eval_image_study(scorer: SupernetScorer, archs, truth: np.ndarray, seed: int,
                     per_image_out: Path | None = None) -> dict:
    """Per-image figures of every architecture, then tau and cost for subsets of the images."""
    n_archs, n_images = len(archs), scorer.n_eval
    correct = np.empty((n_archs, n_images), dtype=bool)
    losses = np.empty((n_archs, n_images))
    recal_seconds = eval_seconds = 0.0
    start = time.perf_counter()
    for i, arch in enumerate(archs):
        t0 = time.perf_counter()
        scorer.recalibrate(arch)
        t1 = time.perf_counter()
        correct[i], losses[i] = scorer.per_image(arch)
        recal_seconds += t1 - t0
        eval_seconds += time.perf_counter() - t1
        if (i + 1) % 100 == 0:
            print(f"  {i + 1}/{n_archs} architectures, {time.perf_counter() - start:.0f} s", flush=True)
    recal_per_arch = recal_seconds / n_archs
    eval_per_image = eval_seconds / (n_archs * n_images)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_images)
    rows = []
    for n in [c for c in EVAL_COUNTS if c < n_images] + [n_images]:
        subset = order[:n]
        accuracy = 100.0 * correct[:, subset].mean(1)
        loss = losses[:, subset].mean(1)
        rows.append({
            "eval_images": int(n),
            "kendall_tau_accuracy": tau(accuracy, truth),
            "kendall_tau_loss": tau(-loss, truth),
            "projected_seconds_per_1000_archs": 1000 * (recal_per_arch + n * eval_per_image),
        })
        print(f"  n={n:6d}: tau accuracy {rows[-1]['kendall_tau_accuracy']:.3f}, loss "
              f"{rows[-1]['kendall_tau_loss']:.3f}, projected {rows[-1]['projected_seconds_per_1000_archs']:.0f} s "
              f"per 1,000 archs", flush=True)
    if per_image_out is not None:  # for re-analysis (e.g. bootstrap over images); large, not committed
        per_image_out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(per_image_out, archs=np.array([a.to_string() for a in archs]), truth=truth,
                            correct=np.packbits(correct, axis=1), n_images=n_images,
                            loss=losses.astype(np.float32))
    return {
        "architectures": n_archs,
        "max_eval_images": int(n_images),
        "calibration_images": scorer.config.calibration_images,
        "measured_wall_seconds": time.perf_counter() - start,
        "recalibration_seconds_per_arch": recal_per_arch,
        "eval_seconds_per_image": eval_per_image,
        "rows": rows,
    }


def calibration_study(model, dataset, archs, truth: np.ndarray, seed: int) -> list[dict]:
    """Tau against the number of recalibration images, on fixed valid images.

    The calibration sets are nested prefixes of one seeded draw and the 1,000 valid images are
    the same for every row, so the rows differ only in the recalibration images.
    """
    scorer = SupernetScorer(model, dataset, ScoringConfig(calibration_images=max(CALIBRATION_COUNTS),
                                                          eval_images=1000, seed=seed))
    pool = torch.cat(scorer.calibration_batches)
    trained = {name: buffer.clone() for name, buffer in model.named_buffers()}
    rows = []
    for images in CALIBRATION_COUNTS:
        start = time.perf_counter()
        if images == 0:  # the running statistics the supernet kept while training
            with torch.no_grad():
                for name, buffer in model.named_buffers():
                    buffer.copy_(trained[name])
            scores = np.array([scorer.evaluate(arch) for arch in archs])
        else:
            scorer.calibration_batches = list(pool[:images].split(scorer.config.batch_size))
            scores = scorer.score_many(archs)
        rows.append({"calibration_images": images, "kendall_tau_accuracy": tau(scores[:, 0], truth),
                     "kendall_tau_loss": tau(-scores[:, 1], truth),
                     "seconds_per_arch": (time.perf_counter() - start) / len(archs)})
        print(f"  calibration {images:5d}: tau accuracy {rows[-1]['kendall_tau_accuracy']:.3f}, loss "
              f"{rows[-1]['kendall_tau_loss']:.3f}, {rows[-1]['seconds_per_arch']:.3f} s/arch", flush=True)
    return rows


def markdown(report: dict) -> str:
    study = report["eval_images"]
    lines = [
        f"# Scoring cost and tau against images: {report['checkpoint']}",
        "",
        f"Supernet: {report['method']}, C={report['C']}, N={report['N']}, {report['epochs_trained']} epochs. "
        f"{study['architectures']} architectures (seeded sample, seed {report['seed']}), BN recalibrated on "
        f"{study['calibration_images']} training images, scored on up to {study['max_eval_images']} valid images; "
        f"ground truth: {report['ground_truth']}. {report['threads']} threads on {report['machine']}, "
        f"load average at start {report['load_average_start']:.2f}.",
        "",
        f"Measured: {study['measured_wall_seconds']:.0f} s for the whole pass; recalibration "
        f"{1000 * study['recalibration_seconds_per_arch']:.0f} ms per architecture; evaluation "
        f"{1e6 * study['eval_seconds_per_image']:.0f} us per image.",
        "",
        "| valid images per arch | Kendall tau (accuracy) | Kendall tau (loss) | projected time for 1,000 archs |",
        "|---|---|---|---|",
    ]
    for row in study["rows"]:
        lines.append(f"| {row['eval_images']} | {row['kendall_tau_accuracy']:.3f} | {row['kendall_tau_loss']:.3f} | "
                     f"{row['projected_seconds_per_1000_archs'] / 60:.1f} min |")
    if report.get("calibration"):
        selection = report.get("calibration_archs_selection", "the first of the sample, sorted by index")
        design = report.get("calibration_design", "each row draws its own calibration and valid images")
        lines += ["", f"Recalibration images ({report['calibration_archs']} architectures ({selection}); {design}; "
                      "1,000 valid images; "
                      "0 = the supernet's own running statistics):", "",
                  "| calibration images | Kendall tau (accuracy) | Kendall tau (loss) | seconds per arch |",
                  "|---|---|---|---|"]
        for row in report["calibration"]:
            lines.append(f"| {row['calibration_images']} | {row['kendall_tau_accuracy']:.3f} | "
                         f"{row['kendall_tau_loss']:.3f} | {row['seconds_per_arch']:.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="run folder or checkpoint (CIFAR-10)")
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--archs", type=int, default=1000)
    parser.add_argument("--max-eval-images", type=int, default=5000)
    parser.add_argument("--calibration-archs", type=int, default=200, help="0: skip the calibration study")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--save-per-image", type=Path, default=None, metavar="NPZ",
                        help="also save every architecture's per-image correctness and loss (compressed npz)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = load_dataset("cifar10", args.data_dir)
    model, payload = supernet_from_checkpoint(args.checkpoint, dataset)
    truth_source = ground_truth_for(dataset, None)
    archs = select_architectures("sample", args.archs, args.seed)
    truth = truth_source.lookup(archs)
    report = {
        "checkpoint": str(args.checkpoint), "method": payload["method"], "C": payload["config"]["C"],
        "N": payload["config"]["N"], "epochs_trained": int(payload.get("epoch", 0)), "seed": args.seed,
        "ground_truth": truth_source.source, "threads": args.threads, "machine": platform.processor() or
        platform.machine(), "load_average_start": os.getloadavg()[0], "torch": torch.__version__,
    }
    print(f"eval-image study: {args.archs} architectures x {args.max_eval_images} valid images", flush=True)
    scorer = SupernetScorer(model, dataset, ScoringConfig(eval_images=args.max_eval_images, seed=args.seed))
    report["eval_images"] = eval_image_study(scorer, archs, truth, args.seed, args.save_per_image)
    if args.calibration_archs:
        print(f"calibration study: {args.calibration_archs} architectures", flush=True)
        report["calibration_archs"] = args.calibration_archs
        # a seeded random subset: the sample is sorted by index, so a prefix would over-represent some cells
        subset = np.sort(np.random.default_rng(args.seed).choice(len(archs), size=min(args.calibration_archs,
                                                                                     len(archs)), replace=False))
        report["calibration_archs_selection"] = "seeded random subset of the sample"
        report["calibration_design"] = "nested calibration sets, the same valid images in every row"
        report["calibration"] = calibration_study(model, dataset, [archs[i] for i in subset], truth[subset],
                                                  args.seed)
    name = Path(args.checkpoint).name if Path(args.checkpoint).is_dir() else Path(args.checkpoint).parent.name
    out = args.out or OUT / f"scoring-{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
