"""The ``nas-harness`` argument parser: every command, option and default, and nothing that runs.

Building it imports neither torch nor the methods (their names come from entry points), so
``nas-harness list`` and a tabular ``compare`` stay light. A bad command line raises a
``UserError`` (one line, exit 2) instead of printing usage.
"""

from __future__ import annotations

import argparse
import ast
import math
from pathlib import Path
from typing import Any

from harness.errors import UserError


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line instead of usage + error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{message} (see '{self.prog} --help')")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _path(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a path, got an empty string (for this folder, say '.')")
    return Path(text)


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _add_tracking_arguments(parser: argparse.ArgumentParser) -> None:
    store = parser.add_mutually_exclusive_group()
    store.add_argument("--tracking-uri", default=None, help="MLflow store (default: results/mlflow.db)")
    store.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")


def _add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--executor", choices=("local", "ray"), default="local",
                        help="where the work runs: local processes (default) or Ray (pip install 'nas-harness[ray]')")
    parser.add_argument("--ray-address", default=None, metavar="ADDR",
                        help="a running Ray cluster to join (default: $RAY_ADDRESS, else a local Ray instance with "
                             "--workers CPUs, shut down at the end); needs --executor ray")


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 1..65535, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from harness import __version__
    from harness.search.benchmark_specs import DEFAULT_BENCHMARK, describe_specs

    parser = _Parser(prog="nas-harness", description="Benchmark NAS methods on NAS-Bench-201.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    compare = sub.add_parser("compare", help="run methods x seeds and write a report")
    compare.add_argument("--methods", nargs="+", metavar="NAME",
                         help="searchers (default: every tabular-capable built-in); "
                              "also path/to/file.py:ClassName, package.module:ClassName or an entry point name")
    compare.add_argument("--seeds", type=_positive_int, default=20, help="number of seeds (default 20)")
    compare.add_argument("--first-seed", type=_non_negative_int, default=0, help="first seed (default 0)")
    compare.add_argument("--budget", type=_positive_int, default=None,
                         help="queries per run (default 150; with --time-budget: no cap unless given)")
    compare.add_argument("--time-budget", metavar="SECONDS", type=_positive_float, default=None,
                         help="simulated training time per run, charged by benchmarks that record it (nb201:, "
                              "nats:); a query that would take the total past it is not made and ends the run")
    compare.add_argument("--benchmark", default=DEFAULT_BENCHMARK, help=f"one of: {describe_specs()}")
    compare.add_argument("--hp", type=_method_hyperparameter, action="append", default=[], metavar="METHOD:KEY=VALUE",
                         help="a method's hyper-parameter (repeatable; the method as named in --methods), e.g. "
                              "--hp aging_evolution:population_size=20; values are Python literals, else strings")
    compare.add_argument("--workers", type=_positive_int, default=2,
                         help="parallel runs: local processes (at most one per CPU), or Ray workers (default 2)")
    _add_executor_arguments(compare)
    compare.add_argument("--target", type=_finite_float, default=None,
                         help="accuracy for 'queries to reach target' (default: optimum - 0.5)")
    compare.add_argument("--out", type=_path, default=Path("results/runs/compare"),
                         help="output folder; running the same compare on it again resumes it "
                              "(default results/runs/compare)")
    _add_tracking_arguments(compare)
    compare.add_argument("--restart", action="store_true",
                         help="start over: delete what an earlier compare wrote into --out (default: resume it, "
                              "running only the (method, seed) runs not finished there)")
    compare.add_argument("--no-progress", action="store_true", help="no progress bar")
    oneshot = compare.add_argument_group(
        "one-shot methods", "spos, fairnas, greedynas and darts run when a dataset is available: a supernet per "
                            "method and seed (kept in OUT/oneshot/, resumed if interrupted), its own search stage, "
                            "Kendall tau on a seeded sample. The defaults are a small demonstration.")
    from harness.experiments.oneshot_compare import OneShotSettings

    d = OneShotSettings()
    _add_data_arguments(oneshot)
    oneshot.add_argument("--oneshot-seeds", metavar="K", type=_positive_int, default=d.seeds,
                         help=f"one-shot methods run on the first K seeds (default {d.seeds})")
    oneshot.add_argument("--oneshot-epochs", metavar="E", type=_positive_int, default=d.epochs,
                         help=f"supernet epochs (default {d.epochs})")
    oneshot.add_argument("--oneshot-steps-per-epoch", metavar="S", type=_positive_int, default=d.steps_per_epoch,
                         help=f"cap on steps (batches of {d.batch_size}) per epoch (default {d.steps_per_epoch})")
    oneshot.add_argument("--oneshot-C", metavar="C", type=_positive_int, default=d.C,
                         help=f"supernet channels (default {d.C}; NB201: 16)")
    oneshot.add_argument("--oneshot-N", metavar="N", type=_positive_int, default=d.N,
                         help=f"cells per stage (default {d.N}; NB201: 5)")
    oneshot.add_argument("--oneshot-search-budget", metavar="Q", type=_positive_int, default=d.search_budget,
                         help=f"at most Q supernet queries per search stage (default {d.search_budget}; "
                              f"SPOS evolution's own: 1,050; DARTS: 1)")
    oneshot.add_argument("--tau-archs", metavar="N", type=_positive_int, default=d.tau_archs,
                         help=f"Kendall tau over a seeded sample of N architectures (default {d.tau_archs})")
    oneshot.add_argument("--ground-truth", metavar="FILE", type=_path, default=None,
                         help="stand-alone results for tau (CSV or JSON from 'nas-harness standalone'); default: "
                              "the embedded CIFAR-10 table (other datasets: no tau without it)")
    oneshot.add_argument("--calibration-images", metavar="N", type=_non_negative_int, default=d.calibration_images,
                         help=f"train images for BN recalibration per architecture (default {d.calibration_images})")
    oneshot.add_argument("--eval-images", metavar="N", type=_positive_int, default=d.eval_images,
                         help=f"valid images each architecture is scored on (default {d.eval_images})")
    oneshot.add_argument("--supernets", type=_path, nargs="+", default=(), metavar="RUN_DIR",
                         help="trained supernet run folders to search and rank instead of training")

    query = sub.add_parser("query", help="look architectures up in a benchmark")
    query.add_argument("archs", nargs="+", metavar="ARCH", help="NB201 architecture strings")
    query.add_argument("--benchmark", default=DEFAULT_BENCHMARK, help=f"one of: {describe_specs()}")
    query.add_argument("--json", action="store_true",
                       help="print a JSON list (params in millions, flops in MFLOPs, as NB201 reports them)")

    surrogate = sub.add_parser("surrogate", help="fit learned surrogates and report their ranking quality")
    surrogate.add_argument("--models", nargs="+", default=None, help="surrogate models (default: all)")
    surrogate.add_argument("--n", nargs="+", type=_positive_int, default=[100, 300, 1000],
                           help="training set sizes (default 100 300 1000)")
    surrogate.add_argument("--seeds", type=_positive_int, default=5, help="seeds per size (default 5)")
    surrogate.add_argument("--out", type=_path, default=None, help="write study.json and study.md here")
    surrogate.add_argument("--no-progress", action="store_true", help="no progress bar")

    ui = sub.add_parser("ui", help="open the MLflow UI on the tracking store (127.0.0.1)")
    ui.add_argument("--tracking-uri", default=None, help="MLflow store (default: results/mlflow.db)")
    ui.add_argument("--port", type=_port, default=5000, help="port on 127.0.0.1 (default 5000)")

    listing = sub.add_parser("list", help="list methods (with their hyper-parameters) and benchmark specs")
    listing.add_argument("--hyperparameters", action="store_true",
                         help="also the one-shot methods' hyper-parameters (reading them imports torch)")

    _add_oneshot_parsers(sub)
    return parser


def _hyperparameter(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. order=2), got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def _method_hyperparameter(text: str) -> tuple[str, str, Any]:
    """``METHOD:KEY=VALUE`` -> (method, key, value); METHOD may hold ':' itself (``file.py:Class``)."""
    left, sep, value = text.partition("=")
    method, colon, key = left.rpartition(":")
    if not sep or not colon or not method or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected METHOD:KEY=VALUE (e.g. aging_evolution:population_size=20), "
                                         f"got {text!r}")
    return (method, *_hyperparameter(f"{key}={value}"))


def _add_data_arguments(parser: argparse.ArgumentParser, from_checkpoint: bool = False) -> None:
    if from_checkpoint:
        parser.add_argument("--dataset", default=None,
                            help="cifar10, fashion-mnist or digits (default: the one the checkpoint was trained on)")
    else:
        parser.add_argument("--dataset", default="cifar10", help="cifar10, fashion-mnist or digits (default cifar10)")
    parser.add_argument("--data-dir", type=_path, default=None,
                        help="CIFAR-10: cifar-10-batches-py pickles, an ImageFolder tree (train/, test/) or its "
                             "tarball; Fashion-MNIST: the four IDX files (default: Debian's location)")
    parser.add_argument("--cache-dir", type=_path, default=None, help="where decoded datasets are cached")
    parser.add_argument("--download", action="store_true", help="let torchvision download the dataset")


def _add_precision_argument(parser: argparse.ArgumentParser, steps: str) -> None:
    from harness.oneshot.precision import PRECISIONS

    parser.add_argument("--precision", choices=tuple(PRECISIONS), default="auto",
                        help=f"arithmetic of the {steps}: " + "; ".join(f"{k}: {v}" for k, v in PRECISIONS.items())
                        + " (default auto)")


def _add_oneshot_parsers(sub) -> None:
    from harness.search.searcher import method_names

    positive_int, non_negative_int = _positive_int, _non_negative_int
    train = sub.add_parser("train", help="train a weight-sharing supernet with a one-shot method",
                           epilog="Ctrl-C or SIGTERM (kill PID, or kill -INT PID, also for a 'nohup ... &' job) "
                                  "saves a checkpoint at the next step and exits with status 130; continue the "
                                  "run with the same command and --resume.")
    train.add_argument("--method", required=True, help=f"one of: {', '.join(method_names(tabular=False))}")
    _add_data_arguments(train)
    train.add_argument("--out", type=_path, required=True, help="run folder (checkpoint, history, snapshots)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    train.add_argument("--epochs", type=positive_int, default=100)
    train.add_argument("--batch-size", type=positive_int, default=64)
    train.add_argument("--lr", type=_finite_float, default=0.025)
    train.add_argument("--lr-min", type=_finite_float, default=0.001)
    train.add_argument("--weight-decay", type=_finite_float, default=5e-4)
    train.add_argument("--grad-clip", type=_finite_float, default=5.0, help="gradient norm clip (0: none)")
    train.add_argument("--C", type=positive_int, default=16, help="channels of the first stage (default 16)")
    train.add_argument("--N", type=positive_int, default=5, help="cells per stage (default 5)")
    train.add_argument("--no-bn-running-stats", action="store_true",
                       help="cell BatchNorms keep no running statistics (always normalise by the batch)")
    seeds = train.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=non_negative_int, default=0, help="the run's seed (default 0)")
    seeds.add_argument("--seeds", type=non_negative_int, nargs="+", default=None, metavar="K",
                       help="train one supernet per seed into OUT/seed<K>/, several at a time with --workers")
    train.add_argument("--workers", type=positive_int, default=1,
                       help="with --seeds: seeds trained at a time, on local processes or Ray workers (default 1)")
    _add_executor_arguments(train)
    train.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: torch's)")
    train.add_argument("--steps-per-epoch", type=positive_int, default=None, help="cap steps per epoch")
    train.add_argument("--snapshot-every", type=non_negative_int, default=0,
                       help="keep the weights every k epochs under snapshots/ (default: never)")
    train.add_argument("--device", default="auto", help="auto, cpu or cuda")
    _add_precision_argument(train, "training steps")
    train.add_argument("--ema-decay", type=_finite_float, default=0.0,
                       help="keep an exponential moving average of the weights with this decay per step, e.g. "
                            "0.999; the monitor and rank score with it (default 0: none)")
    train.add_argument("--monitor-every", type=non_negative_int, default=0,
                       help="every k epochs, Kendall tau of the supernet on a fixed sample (CIFAR-10 table; "
                            "default: never)")
    train.add_argument("--monitor-archs", type=positive_int, default=200, help="sample size of the monitor")
    train.add_argument("--hp", type=_hyperparameter, action="append", default=[], metavar="KEY=VALUE",
                       help="a method hyper-parameter, e.g. --hp order=2 for second-order DARTS")
    _add_tracking_arguments(train)
    train.add_argument("--no-progress", action="store_true")

    rank = sub.add_parser("rank", help="score architectures with trained supernets or zero-cost proxies; Kendall "
                                       "tau against ground truth")
    rank.add_argument("--checkpoint", type=_path, nargs="+", default=[],
                      help="one or more run folders / checkpoint files (all score the same architectures)")
    rank.add_argument("--proxy", nargs="+", default=[], metavar="NAME",
                      help="zero-cost proxies scored at initialisation, each ranked into OUT/NAME/: grad_norm, snip, "
                           "grasp, fisher, zico, jacov, naswot, synflow, params, flops (with --checkpoint too: one "
                           "comparison of both)")
    which = rank.add_mutually_exclusive_group()
    which.add_argument("--archs", type=positive_int, default=None,
                       help="a seeded sample of N (default 1000; with --ground-truth: every architecture the "
                            "file covers)")
    which.add_argument("--all", action="store_true", help="all 15,625 architectures")
    which.add_argument("--unique", action="store_true", help="the 6,466 non-isomorphic architectures")
    rank.add_argument("--seed", type=non_negative_int, default=0, help="seed of the sample and the scoring images")
    _add_data_arguments(rank, from_checkpoint=True)
    rank.add_argument("--ground-truth", type=_path, default=None,
                      help="stand-alone results (CSV or JSON from 'nas-harness standalone'); default: the "
                           "embedded CIFAR-10 table")
    rank.add_argument("--calibration-images", type=non_negative_int, default=640,
                      help="training images for BatchNorm recalibration per architecture (default 640)")
    rank.add_argument("--eval-images", type=positive_int, default=None,
                      help="valid images each architecture is scored on (default 1000, or the whole valid split "
                           "when it is smaller); at most the split's size")
    rank.add_argument("--no-recalibrate", action="store_true", help="score with the supernet's own BN statistics")
    rank.add_argument("--score", choices=("probability", "loss", "accuracy"), default="probability",
                      help="what ranks the architectures: the mean true-class probability on the valid images "
                           "(default), the negative valid cross-entropy or the valid accuracy; all three are written")
    rank.add_argument("--weights", choices=("average", "last"), default="average",
                      help="score with the run's weight average when it kept one (train --ema-decay; default) "
                           "or with the last trained weights")
    _add_precision_argument(rank, "scoring forwards (and BN recalibration)")
    rank.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu",
                      help="where the supernet scores (default cpu; cuda: one GPU, in this process)")
    rank.add_argument("--bootstrap", type=non_negative_int, default=1000, help="bootstrap resamples (default 1000)")
    rank.add_argument("--threads", type=positive_int, default=None,
                      help="torch threads (of each worker with --workers > 1 or Ray: default 1)")
    rank.add_argument("--workers", type=positive_int, default=1,
                      help="score in chunks on this many local processes or Ray workers, each loading the "
                           "checkpoint and images once (default 1: this process)")
    _add_executor_arguments(rank)
    rank.add_argument("--proxy-batch-size", type=positive_int, default=64, help="images per proxy batch (default 64)")
    rank.add_argument("--proxy-batches", type=positive_int, default=2,
                      help="train batches each proxy sees (default 2; zico needs 2, the others average over them)")
    rank.add_argument("--proxy-C", type=positive_int, default=16, help="channels of the proxies' network (default 16)")
    rank.add_argument("--proxy-N", type=positive_int, default=5, help="cells per stage of the proxies' network "
                                                                      "(default 5)")
    rank.add_argument("--proxy-init-seed", type=non_negative_int, default=None,
                      help="seed of the proxies' network initialisation (default: --seed)")
    rank.add_argument("--proxy-batch-seed", type=non_negative_int, default=None,
                      help="seed that picks the proxies' batches (default: --seed)")
    rank.add_argument("--out", type=_path, default=Path("results/runs/rank"),
                      help="output folder (default results/runs/rank); an interrupted rank resumes there")
    _add_tracking_arguments(rank)
    rank.add_argument("--no-progress", action="store_true")

    search = sub.add_parser("search", help="search a trained supernet (its method's search stage or any searcher)")
    search.add_argument("--checkpoint", type=_path, required=True, help="run folder or checkpoint file")
    search.add_argument("--searcher", default=None,
                        help="a black-box searcher to run on the supernet (default: the method's own search stage)")
    search.add_argument("--budget", type=positive_int, default=None,
                        help="supernet queries (default: the stage's own budget, e.g. 1,050 for SPOS evolution)")
    search.add_argument("--seed", type=non_negative_int, default=0)
    _add_data_arguments(search, from_checkpoint=True)
    search.add_argument("--calibration-images", type=non_negative_int, default=640)
    search.add_argument("--eval-images", type=positive_int, default=None,
                        help="valid images each architecture is scored on (default 1000, or the whole valid split "
                             "when it is smaller)")
    _add_precision_argument(search, "scoring forwards (and BN recalibration)")
    search.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu",
                        help="where the supernet scores (default cpu)")
    search.add_argument("--score", choices=("probability", "loss", "accuracy"), default="probability",
                        help="the search signal, as in rank: the mean true-class probability (%%, default), the "
                             "loss (as 100 * exp(-loss)) or the accuracy")
    search.add_argument("--threads", type=positive_int, default=None)
    search.add_argument("--out", type=_path, default=Path("results/runs/search"),
                        help="output folder; its trajectories.csv and search.json are replaced "
                             "(default results/runs/search)")
    search.add_argument("--no-progress", action="store_true", help="no progress bar")

    standalone = sub.add_parser("standalone", help="train architectures from scratch (NB201's protocol); "
                                                   "their results are ground truth for 'rank'")
    standalone.add_argument("archs", nargs="*", metavar="ARCH", help="NB201 architecture strings")
    standalone.add_argument("--archs-file", type=_path, default=None,
                            help="more architectures, one a line ('#' starts a comment)")
    _add_data_arguments(standalone)
    standalone.add_argument("--epochs", type=positive_int, default=200, help="default 200")
    standalone.add_argument("--batch-size", type=positive_int, default=256, help="default 256")
    standalone.add_argument("--lr", type=_finite_float, default=0.1, help="initial learning rate, cosine to 0 (default 0.1)")
    standalone.add_argument("--C", type=positive_int, default=16, help="channels of the first stage (default 16)")
    standalone.add_argument("--N", type=positive_int, default=5, help="cells per stage (default 5)")
    standalone.add_argument("--seed", type=non_negative_int, default=0)
    standalone.add_argument("--threads", type=positive_int, default=None,
                            help="torch threads per run (default: torch's in this process, 1 per worker otherwise)")
    standalone.add_argument("--workers", type=positive_int, default=1,
                            help="architectures trained at a time, on local processes or Ray workers (default 1)")
    _add_executor_arguments(standalone)
    standalone.add_argument("--steps-per-epoch", type=positive_int, default=None, help="cap steps per epoch")
    standalone.add_argument("--eval-every", type=non_negative_int, default=0,
                            help="valid accuracy every k epochs in each run's history (default: only at the end)")
    standalone.add_argument("--out", type=_path, default=Path("results/runs/standalone"),
                            help="output folder: a run folder per architecture, named by its harness index (ops as "
                                 "base-5 digits in edge order; not NB201's official index)")
    standalone.add_argument("--results", type=_path, default=None,
                            help="results CSV, appended as each architecture finishes; architectures already in "
                                 "it are skipped (default OUT/standalone.csv)")
    standalone.add_argument("--resume", action="store_true", help="continue interrupted runs from their checkpoints")
    standalone.add_argument("--device", default="auto", help="auto, cpu or cuda")
    _add_precision_argument(standalone, "training steps")
    standalone.add_argument("--no-progress", action="store_true")
