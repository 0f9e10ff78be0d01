"""The ``nas-harness`` command line. User mistakes print one line on stderr and exit 2."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.errors import RunFailed, UserError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


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


def build_parser() -> argparse.ArgumentParser:
    from harness.benchmarks import DEFAULT_BENCHMARK, describe_specs

    parser = _Parser(prog="nas-harness", description="Benchmark NAS methods on NAS-Bench-201.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    compare = sub.add_parser("compare", help="run methods x seeds and write a report")
    compare.add_argument("--methods", nargs="+", metavar="NAME",
                         help="searchers (default: every tabular-capable built-in); "
                              "also package.module:ClassName or an entry point name")
    compare.add_argument("--seeds", type=_positive_int, default=20, help="number of seeds (default 20)")
    compare.add_argument("--first-seed", type=_non_negative_int, default=0, help="first seed (default 0)")
    compare.add_argument("--budget", type=_positive_int, default=150, help="queries per run (default 150)")
    compare.add_argument("--benchmark", default=DEFAULT_BENCHMARK, help=f"one of: {describe_specs()}")
    compare.add_argument("--workers", type=_positive_int, default=2, help="processes (default 2)")
    compare.add_argument("--target", type=float, default=None,
                         help="accuracy for 'queries to reach target' (default: optimum - 0.5)")
    compare.add_argument("--out", type=Path, default=Path("results/runs/compare"), help="output folder")
    compare.add_argument("--tracking-uri", default=None, help="MLflow store (default: results/mlflow.db)")
    compare.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    compare.add_argument("--no-progress", action="store_true", help="no progress bar")
    oneshot = compare.add_argument_group(
        "one-shot methods", "spos, fairnas, greedynas and darts run when a dataset is available: a supernet per "
                            "method and seed (kept in OUT/oneshot/, resumed if interrupted), its own search stage, "
                            "Kendall tau on a seeded sample. The defaults are a small demonstration.")
    from harness import cli_oneshot
    from harness.compare_oneshot import OneShotSettings

    d = OneShotSettings()
    cli_oneshot.add_data_arguments(oneshot)
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
    oneshot.add_argument("--ground-truth", metavar="FILE", type=Path, default=None,
                         help="stand-alone results for tau (CSV or JSON from 'nas-harness standalone'); default: "
                              "the embedded CIFAR-10 table (other datasets: no tau without it)")
    oneshot.add_argument("--calibration-images", metavar="N", type=_non_negative_int, default=d.calibration_images,
                         help=f"train images for BN recalibration per architecture (default {d.calibration_images})")
    oneshot.add_argument("--eval-images", metavar="N", type=_positive_int, default=d.eval_images,
                         help=f"valid images each architecture is scored on (default {d.eval_images})")
    oneshot.add_argument("--supernets", type=Path, nargs="+", default=(), metavar="RUN_DIR",
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
    surrogate.add_argument("--out", type=Path, default=None, help="write study.json and study.md here")

    ui = sub.add_parser("ui", help="open the MLflow UI on the tracking store (127.0.0.1)")
    ui.add_argument("--tracking-uri", default=None, help="MLflow store (default: results/mlflow.db)")
    ui.add_argument("--port", type=_positive_int, default=5000)

    sub.add_parser("list", help="list methods and benchmark specs")

    cli_oneshot.add_parsers(sub, _positive_int, _non_negative_int)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        handler = {
            "compare": _cmd_compare,
            "query": _cmd_query,
            "surrogate": _cmd_surrogate,
            "ui": _cmd_ui,
            "list": _cmd_list,
        }.get(args.command)
        if handler is None:
            from harness import cli_oneshot

            handler = cli_oneshot.HANDLERS[args.command]
        return handler(args)
    except UserError as exc:
        print(f"nas-harness: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except RunFailed as exc:
        print(f"nas-harness: failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        detail = f": {exc}" if str(exc) else ""
        print(f"nas-harness: interrupted{detail}", file=sys.stderr)
        return EXIT_INTERRUPTED


def _cmd_compare(args: argparse.Namespace) -> int:
    from harness.compare import CompareSettings, run_compare
    from harness.compare_oneshot import OneShotSettings

    oneshot = OneShotSettings(
        dataset=args.dataset, data_dir=args.data_dir, cache_dir=args.cache_dir, download=args.download,
        seeds=args.oneshot_seeds, epochs=args.oneshot_epochs, steps_per_epoch=args.oneshot_steps_per_epoch,
        C=args.oneshot_C, N=args.oneshot_N, search_budget=args.oneshot_search_budget, tau_archs=args.tau_archs,
        ground_truth=args.ground_truth, calibration_images=args.calibration_images, eval_images=args.eval_images,
        supernets=tuple(args.supernets),
    )
    settings = CompareSettings(
        methods=args.methods,
        seeds=list(range(args.first_seed, args.first_seed + args.seeds)),
        budget=args.budget,
        benchmark=args.benchmark,
        workers=args.workers,
        target=args.target,
        out_dir=args.out,
        tracking_uri=args.tracking_uri,
        mlflow=not args.no_mlflow,
        progress=not args.no_progress,
        oneshot=oneshot,
    )
    outcome = run_compare(settings)
    return EXIT_INTERRUPTED if outcome.interrupted else 0


def _cmd_query(args: argparse.Namespace) -> int:
    from harness.benchmarks import resolve_benchmark
    from harness.cost import flops, params
    from harness.space import parse_architecture

    archs = [parse_architecture(text) for text in args.archs]
    benchmark = resolve_benchmark(args.benchmark)
    rows = []
    for arch in archs:
        result = benchmark.query(arch)
        rows.append({
            "arch": arch.to_string(),
            "val_accuracy": result.val_accuracy,
            "test_accuracy": result.test_accuracy,
            "params": params(arch),
            "flops": flops(arch),
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"benchmark: {benchmark.name}; val = {benchmark.reward_metric}; test = {benchmark.report_metric}")
    for row in rows:
        print(row["arch"])
        print(f"  val {row['val_accuracy']:.2f}  test {row['test_accuracy']:.2f}  "
              f"params {row['params']:.6f} M  flops {row['flops']:.5f} MFLOPs")
    return 0


def _cmd_surrogate(args: argparse.Namespace) -> int:
    from harness.benchmarks import resolve_benchmark
    from surrogates.surrogate_study import format_table, run_surrogate_study, summarise, write_study

    table = resolve_benchmark("analog")
    kwargs = {"ns": tuple(args.n), "seeds": range(args.seeds)}
    if args.models:
        kwargs["models"] = args.models
    rows = run_surrogate_study(table, **kwargs)
    summary = summarise(rows)
    print(format_table(summary))
    if args.out:
        write_study(rows, summary, args.out)
    return 0


def _cmd_ui(args: argparse.Namespace) -> int:
    import os

    from harness.tracking import resolve_tracking_uri, ui_command

    command = ui_command(resolve_tracking_uri(args.tracking_uri), args.port)
    print(" ".join(command), file=sys.stderr)
    os.execvp(command[0], command)
    return 0  # pragma: no cover


def _cmd_list(args: argparse.Namespace) -> int:
    from harness.benchmarks import describe_specs
    from harness.searcher import SEARCHERS, get_searcher

    get_searcher("random_search")
    print("methods:")
    for name in SEARCHERS.names():
        kind = "tabular" if SEARCHERS.attribute(name, "tabular", True) else "one-shot"
        print(f"  {name} ({kind})")
    print(f"benchmarks: {describe_specs()}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
