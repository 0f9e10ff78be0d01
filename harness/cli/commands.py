"""What each ``nas-harness`` command does with its parsed arguments: build settings, call
``harness.experiments``, print. Heavy modules are imported inside the handlers, so a command
pays only for what it uses.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable

from harness import jsonsafe
from harness.errors import UserError
from harness.interrupts import interruptible

EXIT_INTERRUPTED = 130


# -- tabular commands ---------------------------------------------------------------------------
def compare(args: argparse.Namespace) -> int:
    from harness.experiments.compare import CompareSettings, run_compare
    from harness.experiments.oneshot_compare import OneShotSettings

    _check_cache_dir(args)
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
        # --budget alone: queries; --time-budget alone: simulated time, no query cap; both: whichever comes first
        budget=args.budget if args.budget is not None or args.time_budget is not None else 150,
        time_budget=args.time_budget,
        benchmark=args.benchmark,
        workers=args.workers,
        executor=args.executor,
        ray_address=args.ray_address,
        target=args.target,
        out_dir=args.out,
        tracking_uri=args.tracking_uri,
        mlflow=not args.no_mlflow,
        progress=not args.no_progress,
        oneshot=oneshot,
        restart=args.restart,
        hyperparameters=_method_hyperparameters(args.hp),
    )
    outcome = run_compare(settings)
    return EXIT_INTERRUPTED if outcome.interrupted else 0


def _method_hyperparameters(given: list[tuple[str, str, object]]) -> dict[str, dict]:
    """compare's ``--hp METHOD:KEY=VALUE`` options as {method: {key: value}}; a key given twice is refused."""
    hyperparameters: dict[str, dict] = {}
    for method, key, value in given:
        if key in hyperparameters.setdefault(method, {}):
            raise UserError(f"--hp {method}:{key} is given twice")
        hyperparameters[method][key] = value
    return hyperparameters


def query(args: argparse.Namespace) -> int:
    from harness.search.benchmark_specs import resolve_benchmark
    from harness.space import parse_architecture
    from harness.space.cost import flops, params

    archs = [parse_architecture(text) for text in args.archs]
    benchmark = resolve_benchmark(args.benchmark)
    official = getattr(benchmark, "official_index", None)  # an official file: NB201's own index of each cell
    cost_metric = getattr(benchmark, "cost_metric", None)
    rows = []
    for arch in archs:
        result = benchmark.query(arch)
        row = {
            "arch": arch.to_string(),
            "val_accuracy": result.val_accuracy,
            "test_accuracy": result.test_accuracy,
            "params": params(arch),
            "flops": flops(arch),
        }
        if cost_metric:
            row["cost_seconds"] = result.cost_seconds
        if official is not None:
            row.update(index=arch.index, official_index=official(arch))
        rows.append(row)
    if args.json:
        print(jsonsafe.dumps(rows, indent=2))
        return 0
    print(f"benchmark: {benchmark.name}; val = {benchmark.reward_metric}; test = {benchmark.report_metric}")
    if cost_metric:
        print(f"cost = {cost_metric}")
    if official is not None:
        print("index = this project's Architecture.index (base 5 over the six edges); official index = "
              "NB201's own index of the cell, its position in the file's meta_archs (api.query_index_by_arch)")
    for row in rows:
        print(row["arch"])
        cost = f"  cost {row['cost_seconds']:.1f} s" if "cost_seconds" in row else ""
        print(f"  val {row['val_accuracy']:.2f}  test {row['test_accuracy']:.2f}{cost}  "
              f"params {row['params']:.6f} M  flops {row['flops']:.5f} MFLOPs")
        if official is not None:
            print(f"  index {row['index']}  official index {row['official_index']}")
    return 0


def surrogate(args: argparse.Namespace) -> int:
    from harness.outputs import check_output_dir
    from harness.search.benchmark_specs import resolve_benchmark
    from surrogates.learned import get_model
    from surrogates.surrogate_study import (
        DEFAULT_MODELS,
        format_table,
        run_surrogate_study,
        spread_note,
        summarise,
        write_study,
    )

    if args.out:
        check_output_dir(args.out)
    from tqdm import tqdm

    table = resolve_benchmark("analog")
    kwargs = {"ns": tuple(args.n), "seeds": range(args.seeds)}
    if args.models:
        kwargs["models"] = args.models
    models = args.models or DEFAULT_MODELS
    for name in models:
        get_model(name)  # an unknown model fails before any fit
    fits = len(kwargs["ns"]) * args.seeds * len(models)
    with tqdm(total=fits, desc="surrogate fits", unit="fit", file=sys.stderr, leave=False,
              disable=args.no_progress or not sys.stderr.isatty()) as bar:
        rows = run_surrogate_study(table, **kwargs, on_fit=lambda row: bar.update(1))
    summary = summarise(rows)
    print(format_table(summary))
    print(spread_note(summary))
    if args.out:
        write_study(rows, summary, args.out)
    return 0


def ui(args: argparse.Namespace) -> int:
    from harness.reporting.tracking import check_port_free, check_ui_store, ui_command

    uri = check_ui_store(args.tracking_uri)  # a store to browse, and a free port, before the server starts
    check_port_free(args.port)
    command = ui_command(uri, args.port)
    print(" ".join(command), file=sys.stderr)
    os.execvp(command[0], command)
    return 0  # pragma: no cover


def list_names(args: argparse.Namespace) -> int:
    from harness.search.benchmark_specs import describe_specs
    from harness.search.searcher import (
        SEARCHERS,
        describe_hyperparameters,
        get_searcher,
        is_tabular,
        takes_budget,
    )

    def hyperparameters(name: str) -> str:
        try:
            cls = get_searcher(name)
        except Exception as exc:  # a plug-in that cannot be imported still leaves the others listed
            return f"cannot be loaded: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
        budget = " (and the run's --budget)" if takes_budget(cls) else ""
        return f"{describe_hyperparameters(cls)}{budget}"

    print("methods, with their hyper-parameters and defaults (set one with --hp KEY=VALUE; compare: --hp "
          "METHOD:KEY=VALUE):")
    for name in SEARCHERS.names():
        tabular = is_tabular(name)
        # A tabular method's module is light; reading a one-shot method's signature imports it, and torch.
        shown = hyperparameters(name) if tabular or args.hyperparameters else "see 'nas-harness list --hyperparameters'"
        print(f"  {name} ({'tabular' if tabular else 'one-shot'})  hyper-parameters: {shown}")
    print(f"benchmarks: {describe_specs()}")
    return 0


# -- one-shot commands --------------------------------------------------------------------------
def _check_cache_dir(args: argparse.Namespace) -> None:
    """A --cache-dir that cannot be written is refused before any work (the cache would be silently skipped)."""
    from harness.outputs import check_output_dir

    if args.cache_dir is not None:
        check_output_dir(args.cache_dir, "--cache-dir")


def _data(args: argparse.Namespace):
    from harness.oneshot.data import DataSettings

    _check_cache_dir(args)
    return DataSettings(args.dataset, args.data_dir, args.cache_dir, args.download)


def _scoring(args: argparse.Namespace, recalibrate: bool):
    from harness.oneshot.scoring import ScoringConfig

    return ScoringConfig(calibration_images=args.calibration_images, eval_images=args.eval_images,
                         recalibrate=recalibrate and args.calibration_images > 0, seed=args.seed,
                         score=args.score, precision=args.precision, device=args.device).resolved()


def train(args: argparse.Namespace) -> int:
    from harness.execution.executors import ExecutionSettings
    from harness.experiments.supernets import train_supernet, train_supernets
    from harness.oneshot.allocator import keep_freed_memory
    from harness.oneshot.training import TrainConfig

    config = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, lr_min=args.lr_min,
        weight_decay=args.weight_decay, grad_clip=args.grad_clip or None, C=args.C, N=args.N,
        bn_running_stats=not args.no_bn_running_stats, seed=args.seed, threads=args.threads,
        steps_per_epoch=args.steps_per_epoch, snapshot_every=args.snapshot_every, device=args.device,
        ema_decay=args.ema_decay, precision=args.precision,
    )
    keep_freed_memory()  # training steps reuse the same large buffers (harness.oneshot.allocator)

    def show(outcome) -> None:
        last = outcome.history[-1] if outcome.history else {}
        print(jsonsafe.dumps({"run_dir": str(outcome.run_dir), "epochs": outcome.epochs_done,
                              "train_loss": last.get("train_loss"),
                              "images_per_second": last.get("images_per_second"),
                              "checkpoint": str(outcome.checkpoint)}))

    options = {"data": _data(args), "hyperparameters": dict(args.hp), "resume": args.resume,
               "monitor_every": args.monitor_every, "monitor_archs": args.monitor_archs,
               "tracking_uri": args.tracking_uri, "mlflow": not args.no_mlflow, "progress": not args.no_progress}
    if args.seeds is None:
        if args.workers > 1 or args.executor != "local" or args.ray_address:
            raise UserError("--workers, --executor and --ray-address train several seeds: give them with --seeds")
        show(train_supernet(args.method, args.out, config, **options))
        return 0
    execution = ExecutionSettings(args.executor, workers=args.workers, address=args.ray_address,
                                  threads=args.threads or 1)
    train_supernets(args.method, args.out, args.seeds, config, execution=execution,
                    on_trained=lambda seed, outcome: show(outcome), **options)
    return 0


def rank(args: argparse.Namespace) -> int:
    import torch

    from harness.evaluation.ranking import compare_table, format_metrics, metric_notes
    from harness.execution.executors import ExecutionSettings
    from harness.experiments.supernets import rank_supernets
    from harness.oneshot.allocator import keep_freed_memory
    from harness.proxies import ProxyConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    keep_freed_memory()  # scoring reuses the same large buffers (harness.oneshot.allocator)
    selection = "all" if args.all else "unique" if args.unique else None

    def show(name, path, metrics, about) -> None:
        print(f"## {name} ({path})\n"
              f"ranked by: {about['score']} = {about['score_meaning']} ({about['images']})\n"
              f"ground truth: {about['ground_truth']}\n"
              f"architectures: {about['architectures']} ({about['selection']}, seed {about['seed']}) "
              f"of {about['dataset']}\n"
              f"cost: {about['seconds_per_architecture']:.3g} s per architecture\n\n{format_metrics(metrics)}\n")
        for note in metric_notes(metrics):
            print(note)
        print()

    execution = ExecutionSettings(args.executor, workers=args.workers, address=args.ray_address,
                                  threads=args.threads or 1)
    scoring = _scoring(args, recalibrate=not args.no_recalibrate)
    proxy_config = ProxyConfig(
        C=args.proxy_C, N=args.proxy_N, batch_size=args.proxy_batch_size, batches=args.proxy_batches,
        init_seed=args.seed if args.proxy_init_seed is None else args.proxy_init_seed,
        batch_seed=args.seed if args.proxy_batch_seed is None else args.proxy_batch_seed, device=scoring.device)
    outcome = rank_supernets(args.checkpoint, args.out, data=_data(args), archs=args.archs, selection=selection,
                             seed=args.seed, ground_truth=args.ground_truth, scoring=scoring,
                             bootstrap=args.bootstrap, weights=args.weights, tracking_uri=args.tracking_uri,
                             mlflow=not args.no_mlflow, progress=not args.no_progress, on_ranked=show,
                             execution=execution, proxies=args.proxy, proxy_config=proxy_config)
    if len(outcome.metrics) > 1:
        print(compare_table(outcome.metrics))
        print("seconds per architecture: " + ", ".join(f"{name} {seconds:.3g}" for name, seconds
                                                        in outcome.seconds_per_architecture.items()))
    return 0


def search(args: argparse.Namespace) -> int:
    import torch

    from harness.experiments.supernets import search_trained_supernet

    if args.threads:
        torch.set_num_threads(args.threads)
    outcome = search_trained_supernet(args.checkpoint, args.out, data=_data(args), searcher=args.searcher,
                                      budget=args.budget, seed=args.seed, scoring=_scoring(args, recalibrate=True),
                                      progress=not args.no_progress)
    info = outcome.info
    if info.get("final_test_accuracy_note"):
        print(f"final test accuracy {info['final_test_accuracy_note']}", file=sys.stderr)
    print(jsonsafe.dumps({"method": outcome.record.method, "final_arch": info["final_arch"],
                          "final_test_accuracy": info["final_test_accuracy"],
                          "search_seconds": round(info["search_seconds"], 1)}))
    return 0


def standalone(args: argparse.Namespace) -> int:
    from harness.execution.executors import ExecutionSettings
    from harness.experiments.standalone_runs import train_architectures
    from harness.oneshot.allocator import keep_freed_memory
    from harness.oneshot.standalone import StandaloneConfig, read_architectures
    from harness.space import parse_architecture

    archs = [parse_architecture(text) for text in args.archs]
    if args.archs_file is not None:
        archs += read_architectures(args.archs_file)
    if not archs:
        raise UserError("no architectures to train; give ARCH strings or --archs-file")
    config = StandaloneConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, C=args.C, N=args.N,
                              seed=args.seed, threads=args.threads, steps_per_epoch=args.steps_per_epoch,
                              eval_every=args.eval_every, device=args.device, precision=args.precision)
    keep_freed_memory()  # training steps reuse the same large buffers (harness.oneshot.allocator)

    def skipped(count: int, total: int, results) -> None:
        print(f"{count} of {total} architectures already in {results}; skipped", file=sys.stderr)

    def finished(row: dict, run_dir) -> None:
        print(jsonsafe.dumps({key: row[key] for key in ("arch", "valid_accuracy", "test_accuracy", "seconds")}
                             | {"run_dir": str(run_dir)}))

    execution = ExecutionSettings(args.executor, workers=args.workers, address=args.ray_address,
                                  threads=args.threads or 1)
    train_architectures(archs, args.out, config, data=_data(args), results=args.results, resume=args.resume,
                        progress=not args.no_progress, on_skipped=skipped, on_result=finished, execution=execution)
    return 0


def _stoppable(command: Callable[[argparse.Namespace], int], note: str = "") -> Callable[[argparse.Namespace], int]:
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
#: Command name -> handler.
HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "compare": _stoppable(compare, "; the same command resumes the runs not finished"),
    "query": query,
    "surrogate": surrogate,
    "ui": ui,
    "list": list_names,
    "train": _stoppable(train, _RESUME_NOTE),
    "rank": _stoppable(rank),
    "search": _stoppable(search),
    "standalone": _stoppable(standalone, _RESUME_NOTE),
}
