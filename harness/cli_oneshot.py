"""The one-shot commands of ``nas-harness``: ``train`` (a supernet) and ``search`` (on a trained one)."""

from __future__ import annotations

import argparse
import ast
import functools
import sys
from pathlib import Path
from typing import Any

from harness import jsonsafe
from harness.errors import UnknownNameError, UserError
from harness.interrupts import interruptible

ONE_SHOT_METHODS = ("spos", "fairnas", "greedynas", "darts")


def _hyperparameter(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. order=2), got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="cifar10", help="cifar10, fashion-mnist or digits (default cifar10)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="CIFAR-10: cifar-10-batches-py pickles, an ImageFolder tree (train/, test/) or its "
                             "tarball; Fashion-MNIST: the four IDX files (default: Debian's location)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="where decoded datasets are cached")
    parser.add_argument("--download", action="store_true", help="let torchvision download the dataset")


def add_precision_argument(parser: argparse.ArgumentParser, steps: str) -> None:
    from harness.precision import PRECISIONS

    parser.add_argument("--precision", choices=tuple(PRECISIONS), default="auto",
                        help=f"arithmetic of the {steps}: " + "; ".join(f"{k}: {v}" for k, v in PRECISIONS.items())
                        + " (default auto)")


def add_parsers(sub, positive_int, non_negative_int) -> None:
    train = sub.add_parser("train", help="train a weight-sharing supernet with a one-shot method",
                           epilog="Ctrl-C or SIGTERM (kill PID, or kill -INT PID, also for a 'nohup ... &' job) "
                                  "saves a checkpoint at the next step and exits with status 130; continue the "
                                  "run with the same command and --resume.")
    train.add_argument("--method", required=True, help=f"one of: {', '.join(ONE_SHOT_METHODS)}")
    add_data_arguments(train)
    train.add_argument("--out", type=Path, required=True, help="run folder (checkpoint, history, snapshots)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    train.add_argument("--epochs", type=positive_int, default=100)
    train.add_argument("--batch-size", type=positive_int, default=64)
    train.add_argument("--lr", type=float, default=0.025)
    train.add_argument("--lr-min", type=float, default=0.001)
    train.add_argument("--weight-decay", type=float, default=5e-4)
    train.add_argument("--grad-clip", type=float, default=5.0, help="gradient norm clip (0: none)")
    train.add_argument("--C", type=positive_int, default=16, help="channels of the first stage (default 16)")
    train.add_argument("--N", type=positive_int, default=5, help="cells per stage (default 5)")
    train.add_argument("--no-bn-running-stats", action="store_true",
                       help="cell BatchNorms keep no running statistics (always normalise by the batch)")
    train.add_argument("--seed", type=non_negative_int, default=0)
    train.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: torch's)")
    train.add_argument("--steps-per-epoch", type=positive_int, default=None, help="cap steps per epoch")
    train.add_argument("--snapshot-every", type=non_negative_int, default=0,
                       help="keep the weights every k epochs under snapshots/ (default: never)")
    train.add_argument("--device", default="auto", help="auto, cpu or cuda")
    add_precision_argument(train, "training steps")
    train.add_argument("--ema-decay", type=float, default=0.0,
                       help="keep an exponential moving average of the weights with this decay per step, e.g. "
                            "0.999; the monitor and rank score with it (default 0: none)")
    train.add_argument("--monitor-every", type=non_negative_int, default=0,
                       help="every k epochs, Kendall tau of the supernet on a fixed sample (CIFAR-10 table; "
                            "default: never)")
    train.add_argument("--monitor-archs", type=positive_int, default=200, help="sample size of the monitor")
    train.add_argument("--hp", type=_hyperparameter, action="append", default=[], metavar="KEY=VALUE",
                       help="a method hyper-parameter, e.g. --hp order=2 for second-order DARTS")
    train.add_argument("--tracking-uri", default=None, help="MLflow store (default: results/mlflow.db)")
    train.add_argument("--no-mlflow", action="store_true")
    train.add_argument("--no-progress", action="store_true")

    rank = sub.add_parser("rank", help="score architectures with trained supernets; Kendall tau against ground truth")
    rank.add_argument("--checkpoint", type=Path, nargs="+", required=True,
                      help="one or more run folders / checkpoint files (all score the same architectures)")
    which = rank.add_mutually_exclusive_group()
    which.add_argument("--archs", type=positive_int, default=None,
                       help="a seeded sample of N (default 1000; with --ground-truth: every architecture the "
                            "file covers)")
    which.add_argument("--all", action="store_true", help="all 15,625 architectures")
    which.add_argument("--unique", action="store_true", help="the 6,466 non-isomorphic architectures")
    rank.add_argument("--seed", type=non_negative_int, default=0, help="seed of the sample and the scoring images")
    add_data_arguments(rank)
    rank.add_argument("--ground-truth", type=Path, default=None,
                      help="stand-alone results (CSV or JSON from 'nas-harness standalone'); default: the "
                           "embedded CIFAR-10 table")
    rank.add_argument("--calibration-images", type=non_negative_int, default=640,
                      help="training images for BatchNorm recalibration per architecture (default 640)")
    rank.add_argument("--eval-images", type=positive_int, default=1000,
                      help="valid images each architecture is scored on (default 1000)")
    rank.add_argument("--no-recalibrate", action="store_true", help="score with the supernet's own BN statistics")
    rank.add_argument("--score", choices=("probability", "loss", "accuracy"), default="probability",
                      help="what ranks the architectures: the mean true-class probability on the valid images "
                           "(default), the negative valid cross-entropy or the valid accuracy; all three are written")
    rank.add_argument("--weights", choices=("average", "last"), default="average",
                      help="score with the run's weight average when it kept one (train --ema-decay; default) "
                           "or with the last trained weights")
    add_precision_argument(rank, "scoring forwards (and BN recalibration)")
    rank.add_argument("--bootstrap", type=non_negative_int, default=1000, help="bootstrap resamples (default 1000)")
    rank.add_argument("--threads", type=positive_int, default=None, help="torch threads")
    rank.add_argument("--out", type=Path, default=Path("results/runs/rank"), help="output folder")
    rank.add_argument("--tracking-uri", default=None, help="MLflow store (default: results/mlflow.db)")
    rank.add_argument("--no-mlflow", action="store_true")
    rank.add_argument("--no-progress", action="store_true")

    search = sub.add_parser("search", help="search a trained supernet (its method's search stage or any searcher)")
    search.add_argument("--checkpoint", type=Path, required=True, help="run folder or checkpoint file")
    search.add_argument("--searcher", default=None,
                        help="a black-box searcher to run on the supernet (default: the method's own search stage)")
    search.add_argument("--budget", type=positive_int, default=None,
                        help="supernet queries (default: the stage's own budget, e.g. 1,050 for SPOS evolution)")
    search.add_argument("--seed", type=non_negative_int, default=0)
    add_data_arguments(search)
    search.add_argument("--calibration-images", type=non_negative_int, default=640)
    search.add_argument("--eval-images", type=positive_int, default=1000)
    add_precision_argument(search, "scoring forwards (and BN recalibration)")
    search.add_argument("--score", choices=("probability", "loss", "accuracy"), default="probability",
                        help="the search signal, as in rank: the mean true-class probability (%%, default), the "
                             "loss (as 100 * exp(-loss)) or the accuracy")
    search.add_argument("--threads", type=positive_int, default=None)
    search.add_argument("--out", type=Path, default=Path("results/runs/search"), help="output folder")

    standalone = sub.add_parser("standalone", help="train architectures from scratch (NB201's protocol); "
                                                   "their results are ground truth for 'rank'")
    standalone.add_argument("archs", nargs="*", metavar="ARCH", help="NB201 architecture strings")
    standalone.add_argument("--archs-file", type=Path, default=None,
                            help="more architectures, one a line ('#' starts a comment)")
    add_data_arguments(standalone)
    standalone.add_argument("--epochs", type=positive_int, default=200, help="default 200")
    standalone.add_argument("--batch-size", type=positive_int, default=256, help="default 256")
    standalone.add_argument("--lr", type=float, default=0.1, help="initial learning rate, cosine to 0 (default 0.1)")
    standalone.add_argument("--C", type=positive_int, default=16, help="channels of the first stage (default 16)")
    standalone.add_argument("--N", type=positive_int, default=5, help="cells per stage (default 5)")
    standalone.add_argument("--seed", type=non_negative_int, default=0)
    standalone.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: torch's)")
    standalone.add_argument("--steps-per-epoch", type=positive_int, default=None, help="cap steps per epoch")
    standalone.add_argument("--eval-every", type=non_negative_int, default=0,
                            help="valid accuracy every k epochs in each run's history (default: only at the end)")
    standalone.add_argument("--out", type=Path, default=Path("results/runs/standalone"),
                            help="output folder: a run folder per architecture, named by its index")
    standalone.add_argument("--results", type=Path, default=None,
                            help="results CSV, appended as each architecture finishes; architectures already in "
                                 "it are skipped (default OUT/standalone.csv)")
    standalone.add_argument("--resume", action="store_true", help="continue interrupted runs from their checkpoints")
    standalone.add_argument("--device", default="auto", help="auto, cpu or cuda")
    add_precision_argument(standalone, "training steps")
    standalone.add_argument("--no-progress", action="store_true")


def make_method(name: str, seed: int, hyperparameters: dict[str, Any]):
    from harness.searcher import get_searcher

    if name not in ONE_SHOT_METHODS:
        raise UnknownNameError(f"unknown one-shot method {name!r}; valid: {', '.join(ONE_SHOT_METHODS)}")
    cls = get_searcher(name)
    try:
        return cls(seed=seed, **hyperparameters)
    except TypeError as exc:
        raise UserError(f"bad hyper-parameter for {name}: {exc}") from None
    except ValueError as exc:
        raise UserError(f"{name}: {exc}") from None


def _cmd_train(args: argparse.Namespace) -> int:
    from harness.allocator import keep_freed_memory
    from harness.data import load_dataset
    from harness.tracking import make_tracker
    from harness.training import SupernetTrainer, TrainConfig

    config = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, lr_min=args.lr_min,
        weight_decay=args.weight_decay, grad_clip=args.grad_clip or None, C=args.C, N=args.N,
        bn_running_stats=not args.no_bn_running_stats, seed=args.seed, threads=args.threads,
        steps_per_epoch=args.steps_per_epoch, snapshot_every=args.snapshot_every, device=args.device,
        ema_decay=args.ema_decay, precision=args.precision,
    )
    method = make_method(args.method, args.seed, dict(args.hp))
    keep_freed_memory()  # training steps reuse the same large buffers (harness.allocator)
    dataset = load_dataset(args.dataset, args.data_dir, args.cache_dir, download=args.download)
    tracker = make_tracker(args.tracking_uri, enabled=not args.no_mlflow, experiment="nas-harness-supernets")
    monitor = None
    if args.monitor_every:
        from harness.monitor import RankingMonitor
        from harness.rank import ground_truth_for, select_architectures

        archs = select_architectures("sample", args.monitor_archs, seed=12345)
        monitor = RankingMonitor(dataset, archs, ground_truth_for(dataset, None).lookup(archs), args.monitor_every)
    trainer = SupernetTrainer(method, dataset, config, args.out, tracker=tracker, progress=not args.no_progress,
                              method_kwargs=dict(args.hp), monitor=monitor)
    outcome = trainer.train(resume=args.resume)
    last = outcome.history[-1] if outcome.history else {}
    print(jsonsafe.dumps({"run_dir": str(outcome.run_dir), "epochs": outcome.epochs_done,
                          "train_loss": last.get("train_loss"), "images_per_second": last.get("images_per_second"),
                          "checkpoint": str(outcome.checkpoint)}))
    return 0


def _cmd_rank(args: argparse.Namespace) -> int:
    import torch

    from harness.data import load_dataset
    from harness.rank import ground_truth_for, rank_checkpoint, select_architectures
    from harness.ranking import compare_table, comparison_document, format_metrics
    from harness.scoring import ScoringConfig
    from harness.tracking import make_tracker

    if args.threads:
        torch.set_num_threads(args.threads)
    dataset = load_dataset(args.dataset, args.data_dir, args.cache_dir, download=args.download)
    truth_source = ground_truth_for(dataset, args.ground_truth)
    if args.all or args.unique:
        mode = "all" if args.all else "unique"
    else:
        mode = "covered" if args.archs is None and args.ground_truth is not None else "sample"
    if mode == "covered":  # every architecture of the stand-alone results file, in index order
        archs = sorted(truth_source.values, key=lambda arch: arch.index)
    else:
        archs = select_architectures(mode, args.archs or 1000, args.seed)
    truth = truth_source.lookup(archs)
    scoring = ScoringConfig(calibration_images=args.calibration_images, eval_images=args.eval_images,
                            recalibrate=not args.no_recalibrate and args.calibration_images > 0, seed=args.seed,
                            score=args.score, precision=args.precision)
    names = run_names(args.checkpoint)
    tracker = make_tracker(args.tracking_uri, enabled=not args.no_mlflow, experiment="nas-harness-ranking")
    results = {}
    for name, path in zip(names, args.checkpoint, strict=True):
        out_dir = args.out / name if len(names) > 1 else args.out
        meta = {"architectures_selected": mode, "sample_seed": args.seed, "ground_truth": truth_source.source,
                "chance": truth_source.chance, "dataset": dataset.name}
        metrics = rank_checkpoint(path, dataset, archs, truth, scoring, out_dir, meta,
                                  progress=not args.no_progress, bootstrap=args.bootstrap, weights=args.weights)
        results[name] = metrics
        print(f"## {name} ({path})\n{format_metrics(metrics)}\n")
        tracker.start_parent(f"rank-{name}", {"checkpoint": str(path), "archs": len(archs), "mode": mode,
                                               "calibration_images": scoring.calibration_images,
                                               "eval_images": scoring.eval_images, "score": scoring.score})
        tracker.log_metrics({f"{key}": value["value"] for key, value in metrics.items()})
        tracker.log_artifacts([out_dir / "ranking.csv", out_dir / "ranking.json", out_dir / "ranking.png"])
        tracker.end("FINISHED")
    if len(names) > 1:
        (args.out / "comparison.md").write_text(
            comparison_document(results, len(archs), mode, args.seed, truth_source.source))
        print(compare_table(results))
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    import torch

    from harness.data import load_dataset
    from harness.report import write_trajectories_csv
    from harness.scoring import ScoringConfig
    from harness.supernet_search import search_supernet, searcher_for

    if args.threads:
        torch.set_num_threads(args.threads)
    dataset = load_dataset(args.dataset, args.data_dir, args.cache_dir, download=args.download)
    reference = None
    from surrogates.analog_table import TABLE_DATASET, load_analog_benchmark

    if dataset.name == TABLE_DATASET:
        reference = load_analog_benchmark()
    searcher = searcher_for(args.searcher, args.seed) if args.searcher else None
    budget = args.budget
    if budget is None:
        budget = getattr(searcher, "budget", None) or 150
        if searcher is None:
            from harness.training import load_checkpoint

            method = load_checkpoint(args.checkpoint)["method"]
            budget = {"darts": 1}.get(method, 1050)
    scoring = ScoringConfig(calibration_images=args.calibration_images, eval_images=args.eval_images,
                            recalibrate=args.calibration_images > 0, seed=args.seed, precision=args.precision,
                            score=args.score)
    record, info = search_supernet(args.checkpoint, dataset, budget, scoring, searcher, reference)
    args.out.mkdir(parents=True, exist_ok=True)
    write_trajectories_csv([record], args.out / "trajectories.csv")
    (args.out / "search.json").write_text(
        jsonsafe.dumps({"method": record.method, "budget": budget, **info}, indent=1) + "\n")
    print(jsonsafe.dumps({"method": record.method, "final_arch": info["final_arch"],
                          "final_test_accuracy": info["final_test_accuracy"],
                          "search_seconds": round(info["search_seconds"], 1)}))
    return 0


def run_names(paths: list[Path]) -> list[str]:
    """A distinct folder name per checkpoint (its run folder's name)."""
    names = []
    for path in paths:
        base = path.name if path.is_dir() else path.parent.name or path.stem
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def _cmd_standalone(args: argparse.Namespace) -> int:
    from harness.allocator import keep_freed_memory
    from harness.data import load_dataset
    from harness.space import parse_architecture
    from harness.standalone import (
        StandaloneConfig,
        append_result,
        finished_architectures,
        read_architectures,
        run_dir_for,
        train_standalone,
    )

    archs = [parse_architecture(text) for text in args.archs]
    if args.archs_file is not None:
        archs += read_architectures(args.archs_file)
    archs = list(dict.fromkeys(archs))
    if not archs:
        raise UserError("no architectures to train; give ARCH strings or --archs-file")
    config = StandaloneConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, C=args.C, N=args.N,
                              seed=args.seed, threads=args.threads, steps_per_epoch=args.steps_per_epoch,
                              eval_every=args.eval_every, device=args.device, precision=args.precision)
    results = args.results or args.out / "standalone.csv"
    keep_freed_memory()  # training steps reuse the same large buffers (harness.allocator)
    dataset = load_dataset(args.dataset, args.data_dir, args.cache_dir, download=args.download)
    finished = finished_architectures(results, dataset.name, config.epochs, config.seed)
    pending = [arch for arch in archs if arch not in finished]
    if len(pending) < len(archs):
        print(f"{len(archs) - len(pending)} of {len(archs)} architectures already in {results}; skipped",
              file=sys.stderr)
    for arch in pending:
        run_dir = run_dir_for(args.out, arch)
        result = train_standalone(arch, dataset, config, run_dir, progress=not args.no_progress, resume=args.resume)
        append_result(results, result)
        print(jsonsafe.dumps({key: result[key] for key in ("arch", "valid_accuracy", "test_accuracy", "seconds")}
                             | {"run_dir": str(run_dir)}))
    return 0


def _stoppable(command, note: str = ""):
    """``command`` with SIGINT and SIGTERM raising KeyboardInterrupt (exit 130), even in a ``nohup ... &`` job.

    The training loops replace these handlers with their own while they run: a signal then
    ends the run at the next step, with a checkpoint and a line saying how to resume.
    """

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        with interruptible(note):
            return command(args)

    return run


_RESUME_NOTE = "; continue with the same command and --resume (from the last checkpoint, if any)"
HANDLERS = {"train": _stoppable(_cmd_train, _RESUME_NOTE), "rank": _stoppable(_cmd_rank),
            "search": _stoppable(_cmd_search), "standalone": _stoppable(_cmd_standalone, _RESUME_NOTE)}


if __name__ == "__main__":  # pragma: no cover
    from harness.cli import main

    sys.exit(main())
