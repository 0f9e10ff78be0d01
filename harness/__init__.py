"""nas-harness: benchmark neural architecture search on NAS-Bench-201.

Everything a user or a plug-in needs is imported from here::

    from harness import Searcher, Architecture, check_searcher, run_compare, CompareSettings

Names are loaded on first use, so ``import harness`` is cheap and the searcher contract
never imports torch; the one-shot names (``SupernetMethod``, ``train_supernet``, ...) do.
The subpackages (``space``, ``search``, ``oneshot``, ``evaluation``, ``reporting``,
``experiments``, ``cli``) are the implementation; docs/architecture.md maps them.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import TYPE_CHECKING, Any

#: Public name -> the module that defines it.
_EXPORTS = {
    # the searcher contract, for plug-ins
    "Searcher": "harness.search.searcher",
    "register_searcher": "harness.search.searcher",
    "get_searcher": "harness.search.searcher",
    "check_searcher": "harness.testing",
    "Architecture": "harness.space",
    "parse_architecture": "harness.space",
    "sample_architecture": "harness.space",
    "mutate_architecture": "harness.space",
    "neighbours": "harness.space",
    "all_architectures": "harness.space",
    "Result": "harness.search.benchmark",
    "Benchmark": "harness.search.benchmark",
    "TabularBenchmark": "harness.search.benchmark",
    # one search, and a comparison of methods
    "resolve_benchmark": "harness.search.benchmark_specs",
    "run_search": "harness.search.run",
    "RunRecord": "harness.search.run",
    "run_compare": "harness.experiments.compare",
    "CompareSettings": "harness.experiments.compare",
    "CompareOutcome": "harness.experiments.compare",
    "OneShotSettings": "harness.experiments.oneshot_compare",
    # one-shot methods: the contract for plug-ins, and training, ranking and searching supernets
    "SupernetMethod": "harness.oneshot.method",
    "StepContext": "harness.oneshot.method",
    "uniform_path": "harness.oneshot.method",
    "sum_in_float64": "harness.oneshot.loss_meter",
    "DataSettings": "harness.oneshot.data",
    "load_dataset": "harness.oneshot.data",
    "TrainConfig": "harness.oneshot.training",
    "ScoringConfig": "harness.oneshot.scoring",
    "StandaloneConfig": "harness.oneshot.standalone",
    "train_supernet": "harness.experiments.supernets",
    "rank_supernets": "harness.experiments.supernets",
    "RankOutcome": "harness.experiments.supernets",
    "ProxyConfig": "harness.proxies",
    "search_trained_supernet": "harness.experiments.supernets",
    "train_architectures": "harness.experiments.standalone_runs",
    # measuring rankings
    "kendall_tau": "harness.evaluation.stats",
    "ranking_metrics": "harness.evaluation.ranking",
    # mistakes a user can make: one line, exit 2 on the command line
    "UserError": "harness.errors",
}

__all__ = [
    "Architecture", "Benchmark", "CompareOutcome", "CompareSettings", "DataSettings", "OneShotSettings",
    "ProxyConfig", "RankOutcome", "Result", "RunRecord", "ScoringConfig", "Searcher", "StandaloneConfig",
    "StepContext", "SupernetMethod", "TabularBenchmark", "TrainConfig", "UserError", "all_architectures",
    "check_searcher", "get_searcher", "kendall_tau", "load_dataset", "mutate_architecture", "neighbours",
    "parse_architecture", "rank_supernets", "ranking_metrics", "register_searcher", "resolve_benchmark",
    "run_compare", "run_search", "sample_architecture", "search_trained_supernet", "sum_in_float64",
    "train_architectures", "train_supernet", "uniform_path",
]

try:
    __version__ = metadata.version("nas-harness")
except metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "unknown"


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what type checkers and IDEs see; at run time names load on first use
    from harness.errors import UserError
    from harness.evaluation.ranking import ranking_metrics
    from harness.evaluation.stats import kendall_tau
    from harness.experiments.compare import CompareOutcome, CompareSettings, run_compare
    from harness.experiments.oneshot_compare import OneShotSettings
    from harness.experiments.standalone_runs import train_architectures
    from harness.experiments.supernets import (
        RankOutcome,
        rank_supernets,
        search_trained_supernet,
        train_supernet,
    )
    from harness.oneshot.data import DataSettings, load_dataset
    from harness.oneshot.loss_meter import sum_in_float64
    from harness.oneshot.method import StepContext, SupernetMethod, uniform_path
    from harness.oneshot.scoring import ScoringConfig
    from harness.oneshot.standalone import StandaloneConfig
    from harness.oneshot.training import TrainConfig
    from harness.proxies import ProxyConfig
    from harness.search.benchmark import Benchmark, Result, TabularBenchmark
    from harness.search.benchmark_specs import resolve_benchmark
    from harness.search.run import RunRecord, run_search
    from harness.search.searcher import Searcher, get_searcher, register_searcher
    from harness.space import (
        Architecture,
        all_architectures,
        mutate_architecture,
        neighbours,
        parse_architecture,
        sample_architecture,
    )
    from harness.testing import check_searcher
