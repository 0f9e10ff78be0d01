"""What scoring architectures on a trained supernet costs, and how tau depends on the images used.

One pass scores a seeded sample of architectures (default 1,000, the `rank` default) with
BatchNorm recalibration on 640 training images and keeps every architecture's per-image
correctness and cross-entropy on ``--max-eval-images`` valid images. From it:

* the cost: measured seconds per architecture, split into recalibration and evaluation,
  and the projected wall time for 1,000 architectures at each number of evaluation images;
* tau against images: Kendall tau-b of each candidate score (accuracy, negative loss, mean
  true-class probability: ``STATISTICS``) against the table's accuracy when each
  architecture is evaluated on n of those images (a seeded random subset, the same for
  every architecture; the valid split is stored sorted by class, so a prefix would not
  do), for several n;
* the spread over image draws (``--image-draws``): the same taus over many random subsets
  of n images, so one draw's luck can be told from a real difference between scores.
  ``--from-per-image NPZ`` recomputes the tau figures from a saved ``--save-per-image`` file.

A second, smaller pass (``--calibration-archs``) varies the recalibration images (0 means
the supernet's own running statistics, no recalibration) at 1,000 evaluation images, and
with ``--calibration-draws K`` repeats the 640-image row on K disjoint draws.

Writes results/bench/scoring-<run>.json and .md. Run, e.g.:
    .venv/bin/python bench/bench_scoring.py --checkpoint results/supernets/spos-c16n1-e100 --threads 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
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

from harness.evaluation.rank import ground_truth_for, select_architectures  # noqa: E402
from harness.jsonsafe import dumps  # noqa: E402
from harness.oneshot.data import load_dataset  # noqa: E402
from harness.oneshot.scoring import (  # noqa: E402
    ScoringConfig,
    SupernetScorer,
    supernet_from_checkpoint,  # noqa: E402
)

OUT = ROOT / "results" / "bench"
EVAL_COUNTS = (100, 250, 500, 1000, 2000, 5000, 10000)
CALIBRATION_COUNTS = (0, 64, 160, 640, 2560)
#: Per-architecture statistics of the per-image figures that could rank architectures (higher is better).
STATISTICS = {
    "accuracy": lambda correct, loss: correct.mean(1),
    "loss": lambda correct, loss: -loss.mean(1),
    "probability": lambda correct, loss: np.exp(-loss).mean(1),  # mean softmax probability of the true class
}


def tau(scores: np.ndarray, truth: np.ndarray) -> float:
    return float(kendalltau(scores, truth).statistic)


def eval_image_study(scorer: SupernetScorer, archs, truth: np.ndarray, seed: int,
                     per_image_out: Path | None = None) -> tuple[dict, np.ndarray, np.ndarray]:
    """Per-image figures of every architecture, then tau and cost for nested subsets of the images.

    Returns the report and the per-image correctness and losses (architectures x images).
    """
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
    rows = nested_rows(correct, losses, truth, seed)
    for row in rows:
        row["projected_seconds_per_1000_archs"] = 1000 * (recal_per_arch + row["eval_images"] * eval_per_image)
    if per_image_out is not None:  # for re-analysis (e.g. bootstrap over images); large, not committed
        per_image_out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(per_image_out, archs=np.array([a.to_string() for a in archs]), truth=truth,
                            correct=np.packbits(correct, axis=1), n_images=n_images,
                            loss=losses.astype(np.float32))
    report = {
        "architectures": n_archs,
        "max_eval_images": int(n_images),
        "calibration_images": scorer.config.calibration_images,
        "measured_wall_seconds": time.perf_counter() - start,
        "recalibration_seconds_per_arch": recal_per_arch,
        "eval_seconds_per_image": eval_per_image,
        "rows": rows,
    }
    return report, correct, losses


def nested_rows(correct: np.ndarray, losses: np.ndarray, truth: np.ndarray, seed: int) -> list[dict]:
    """Tau of every statistic on nested subsets (prefixes of one seeded order) of the scored images."""
    n_images = correct.shape[1]
    order = np.random.default_rng(seed).permutation(n_images)
    rows = []
    for n in [c for c in EVAL_COUNTS if c < n_images] + [n_images]:
        subset = order[:n]
        rows.append({"eval_images": int(n),
                     **{f"kendall_tau_{name}": tau(statistic(correct[:, subset], losses[:, subset]), truth)
                        for name, statistic in STATISTICS.items()}})
        print(f"  n={n:6d}: " + ", ".join(f"tau {name} {rows[-1][f'kendall_tau_{name}']:.3f}" for name in STATISTICS),
              flush=True)
    return rows


def image_spread(correct: np.ndarray, losses: np.ndarray, truth: np.ndarray, draws: int, seed: int) -> list[dict]:
    """Kendall tau over ``draws`` random image subsets of each size, for every statistic in STATISTICS.

    Each draw takes n of the scored images without replacement, the same n for every
    architecture (as a scorer does), so the spread is what another draw of n valid images
    would have given with these calibration statistics. Sizes up to a fifth of the pool are
    reported: larger subsets of a finite pool overlap too much to show the spread.
    """
    n_images = correct.shape[1]
    rng = np.random.default_rng(seed)
    rows = []
    for n in [c for c in EVAL_COUNTS if 5 * c <= n_images]:
        taus = {name: np.empty(draws) for name in STATISTICS}
        for d in range(draws):
            subset = rng.choice(n_images, size=n, replace=False)
            c, lo = correct[:, subset], losses[:, subset]
            for name, statistic in STATISTICS.items():
                taus[name][d] = tau(statistic(c, lo), truth)
        row = {"eval_images": int(n), "draws": draws}
        for name, values in taus.items():
            row[name] = {"mean": float(values.mean()), "sd": float(values.std(ddof=1)),
                         "p2.5": float(np.quantile(values, 0.025)), "p97.5": float(np.quantile(values, 0.975))}
        rows.append(row)
        print(f"  n={n:5d}: " + ", ".join(f"{name} {row[name]['mean']:.3f} +- {row[name]['sd']:.3f}"
                                          for name in STATISTICS), flush=True)
    full = {name: tau(statistic(correct, losses), truth) for name, statistic in STATISTICS.items()}
    rows.append({"eval_images": int(n_images), "draws": 1, **{name: {"mean": value} for name, value in full.items()}})
    return rows


def load_per_image(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(correct, losses, truth) from a ``--save-per-image`` file."""
    data = np.load(path)
    correct = np.unpackbits(data["correct"], axis=1, count=int(data["n_images"])).astype(bool)
    return correct, data["loss"].astype(np.float64), data["truth"]


def statistics_of(scorer: SupernetScorer, archs) -> dict[str, np.ndarray]:
    """Every STATISTICS figure of each architecture on the scorer's images (recalibrating first)."""
    values = {name: np.empty(len(archs)) for name in STATISTICS}
    for i, arch in enumerate(archs):
        scorer.recalibrate(arch)
        correct, losses = scorer.per_image(arch)
        for name, statistic in STATISTICS.items():
            values[name][i] = statistic(correct[None], losses[None])[0]
    return values


def calibration_study(model, dataset, archs, truth: np.ndarray, seed: int, draws: int = 1) -> list[dict]:
    """Tau against the number of recalibration images, on fixed valid images.

    The calibration sets are nested prefixes of one seeded draw and the 1,000 valid images are
    the same for every row, so the rows differ only in the recalibration images. With
    ``draws`` > 1, the 640-image row is repeated on that many disjoint draws of 640 images.
    """
    base = 640
    pool_size = max(max(CALIBRATION_COUNTS), base * draws)
    scorer = SupernetScorer(model, dataset, ScoringConfig(calibration_images=pool_size, eval_images=1000, seed=seed))
    pool = torch.cat(scorer.calibration_batches)
    trained = {name: buffer.clone() for name, buffer in model.named_buffers()}
    plan = [(images, 0) for images in CALIBRATION_COUNTS] + [(base, d) for d in range(1, draws)]
    rows = []
    for images, draw in plan:
        start = time.perf_counter()
        if images == 0:  # the running statistics the supernet kept while training
            with torch.no_grad():
                for name, buffer in model.named_buffers():
                    buffer.copy_(trained[name])
            scorer.config = dataclasses.replace(scorer.config, recalibrate=False)
        else:
            scorer.config = dataclasses.replace(scorer.config, recalibrate=True)
            chosen = pool[draw * images:(draw + 1) * images]
            scorer.calibration_batches = list(chosen.split(scorer.config.batch_size))
        values = statistics_of(scorer, archs)
        rows.append({"calibration_images": images, "draw": draw,
                     **{f"kendall_tau_{name}": tau(v, truth) for name, v in values.items()},
                     "seconds_per_arch": (time.perf_counter() - start) / len(archs)})
        print(f"  calibration {images:5d} (draw {draw}): " + ", ".join(
            f"{name} {rows[-1][f'kendall_tau_{name}']:.3f}" for name in STATISTICS)
            + f", {rows[-1]['seconds_per_arch']:.3f} s/arch", flush=True)
    return rows


def _tau_cells(row: dict, names) -> str:
    return " | ".join(f"{row[f'kendall_tau_{name}']:.3f}" if f"kendall_tau_{name}" in row else "-" for name in names)


def markdown(report: dict) -> str:
    names = list(STATISTICS)
    header = " | ".join(f"Kendall tau ({name})" for name in names)
    rule = "|---" * (len(names) + 2) + "|"
    lines = [f"# Scoring cost and tau against images: {report['checkpoint']}", ""]
    study = report.get("eval_images")
    if study is not None:
        lines += [
            f"Supernet: {report['method']}, C={report['C']}, N={report['N']}, {report['epochs_trained']} epochs. "
            f"{study['architectures']} architectures (seeded sample, seed {report['seed']}), BN recalibrated on "
            f"{study['calibration_images']} training images, scored on up to {study['max_eval_images']} valid "
            f"images; ground truth: {report['ground_truth']}. {report['threads']} threads on {report['machine']}, "
            f"load average at start {report['load_average_start']:.2f}.",
            "",
            f"Measured: {study['measured_wall_seconds']:.0f} s for the whole pass; recalibration "
            f"{1000 * study['recalibration_seconds_per_arch']:.0f} ms per architecture; evaluation "
            f"{1e6 * study['eval_seconds_per_image']:.0f} us per image.",
            "",
            "Nested subsets of one seeded order of the images (probability: the mean softmax probability "
            "of the true class):",
            "",
            f"| valid images per arch | {header} | projected time for 1,000 archs |",
            rule,
        ]
        for row in study["rows"]:
            lines.append(f"| {row['eval_images']} | {_tau_cells(row, names)} | "
                         f"{row['projected_seconds_per_1000_archs'] / 60:.1f} min |")
    spread = report.get("image_spread")
    if spread:
        draws = spread[0]["draws"]
        lines += ["", f"Spread over image draws: tau of {draws} random subsets of n images (without replacement, "
                  f"the same subset for every architecture) from the {spread[-1]['eval_images']} scored, with the "
                  "calibration statistics fixed; mean, standard deviation and the 2.5-97.5% range. The last row "
                  "is every scored image.", "",
                  "| valid images | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for row in spread:
            cells = []
            for name in names:
                r = row[name]
                cells.append(f"{r['mean']:.3f}" if "sd" not in r else
                             f"{r['mean']:.3f} +- {r['sd']:.3f} [{r['p2.5']:.2f}, {r['p97.5']:.2f}]")
            lines.append(f"| {row['eval_images']} | " + " | ".join(cells) + " |")
    if report.get("calibration"):
        selection = report.get("calibration_archs_selection", "the first of the sample, sorted by index")
        design = report.get("calibration_design", "each row draws its own calibration and valid images")
        lines += ["", f"Recalibration images ({report['calibration_archs']} architectures ({selection}); {design}; "
                      "1,000 valid images; 0 = the supernet's own running statistics; draw > 0: another, "
                      "disjoint draw of as many images):", "",
                  f"| calibration images | draw | {header} | seconds per arch |", "|---" * (len(names) + 3) + "|"]
        for row in report["calibration"]:
            lines.append(f"| {row['calibration_images']} | {row.get('draw', 0)} | {_tau_cells(row, names)} | "
                         f"{row['seconds_per_arch']:.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="run folder or checkpoint (CIFAR-10)")
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--archs", type=int, default=1000)
    parser.add_argument("--max-eval-images", type=int, default=5000)
    parser.add_argument("--calibration-archs", type=int, default=200, help="0: skip the calibration study")
    parser.add_argument("--calibration-draws", type=int, default=1,
                        help="disjoint draws of 640 calibration images in the calibration study (default 1)")
    parser.add_argument("--image-draws", type=int, default=200,
                        help="random image subsets per size for the spread over image draws (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--save-per-image", type=Path, default=None, metavar="NPZ",
                        help="also save every architecture's per-image correctness and loss (compressed npz)")
    parser.add_argument("--from-per-image", type=Path, default=None, metavar="NPZ",
                        help="skip scoring: add the spread over image draws to --out's report from a saved NPZ")
    args = parser.parse_args()
    name = Path(args.checkpoint).name if Path(args.checkpoint).is_dir() else Path(args.checkpoint).parent.name
    out = args.out or OUT / f"scoring-{name}.json"
    if args.from_per_image is not None:
        report = json.loads(out.read_text()) if out.exists() else {"checkpoint": str(args.checkpoint)}
        correct, losses, truth = load_per_image(args.from_per_image)
        if "eval_images" in report:  # every statistic's tau on the nested subsets (the costs are kept)
            rows = report["eval_images"]["rows"]
            for row, recomputed in zip(rows, nested_rows(correct, losses, truth, report["seed"]), strict=True):
                row.update(recomputed)
        report["image_spread"] = image_spread(correct, losses, truth, args.image_draws, args.seed)
        write_report(out, report)
        return
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
    report["eval_images"], correct, losses = eval_image_study(scorer, archs, truth, args.seed, args.save_per_image)
    if args.image_draws:
        report["image_spread"] = image_spread(correct, losses, truth, args.image_draws, args.seed)
    write_report(out, report)  # the long pass is kept even if the calibration study is stopped
    if args.calibration_archs:
        print(f"calibration study: {args.calibration_archs} architectures", flush=True)
        report["calibration_archs"] = args.calibration_archs
        # a seeded random subset: the sample is sorted by index, so a prefix would over-represent some cells
        subset = np.sort(np.random.default_rng(args.seed).choice(len(archs), size=min(args.calibration_archs,
                                                                                     len(archs)), replace=False))
        report["calibration_archs_selection"] = "seeded random subset of the sample"
        report["calibration_design"] = "nested calibration sets, the same valid images in every row"
        report["calibration"] = calibration_study(model, dataset, [archs[i] for i in subset], truth[subset],
                                                  args.seed, args.calibration_draws)
        write_report(out, report)


def write_report(out: Path, report: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
