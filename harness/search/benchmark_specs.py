"""Turn a benchmark spec from the command line into a Benchmark (one place, cached per process).

A spec is ``KIND`` or ``KIND:ARGUMENT``. Each kind is a ``BenchmarkKind`` declared as an
entry point of the group ``nas_harness.benchmarks``, the built-in ones (in ``surrogates/``)
exactly as a plug-in's, so this module never imports them:

    analog                    the embedded analog-nasbench CIFAR-10 table (default)
    analog:PATH               the same table read from an explicit data.anb
    nb201:PATH                the official NAS-Bench-201 .pth (needs nas-bench-201)
    nats:PATH                 NATS-Bench topology, e.g. NATS-tss-v1_0-3ffb9-simple (needs nats_bench)
    surrogate:MODEL:N[:SEED]  a learned surrogate fitted on N architectures of the embedded table

nb201:PATH and nats:PATH take options after the path, ``:dataset=...:reward_epochs=12|200:
report_epochs=12|200:seeds=mean|random`` (``surrogates.official.parse_official_spec``). Specs
are strings so worker processes resolve the same benchmark; a benchmark with ``for_run``
(seeds=random) is bound to each run's seed by ``run_search``.

The default benchmark is also the reference table: the stand-alone accuracies that one-shot
runs on its dataset are ranked against and reported by (``reference_table``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from harness.errors import UnknownNameError, UserError
from harness.registry import Registry
from harness.search.benchmark import Benchmark, TabularBenchmark

DEFAULT_BENCHMARK = "analog"
BENCHMARK_GROUP = "nas_harness.benchmarks"


@dataclass(frozen=True)
class BenchmarkKind:
    """One kind of benchmark: how its specs are written and how one is loaded.

    ``load`` receives what follows ``KIND:`` in the spec (the empty string when nothing
    does) and raises a ``UserError`` naming what is wrong with it.
    """

    usage: str
    load: Callable[[str], Benchmark]


KINDS: Registry[BenchmarkKind] = Registry("benchmark", entry_point_group=BENCHMARK_GROUP)


def describe_specs() -> str:
    """The accepted specs, from every declared kind (each kind's module is light to import)."""
    return ", ".join(KINDS.resolve(name).usage for name in KINDS.names())


@lru_cache(maxsize=8)
def resolve_benchmark(spec: str) -> Benchmark:
    """The benchmark a spec names; raises a UserError naming the accepted specs."""
    kind, colon, argument = spec.partition(":")
    if kind not in KINDS.names():
        raise UnknownNameError(f"unknown benchmark {spec!r}; accepted: {describe_specs()}")
    if colon and not argument:
        raise UserError(f"benchmark {spec!r} has nothing after the ':'; accepted: {describe_specs()}")
    return KINDS.resolve(kind).load(argument)


def reference_table(dataset: str) -> TabularBenchmark | None:
    """The default benchmark when it holds stand-alone accuracies of ``dataset``'s networks, else None."""
    table = resolve_benchmark(DEFAULT_BENCHMARK)
    if isinstance(table, TabularBenchmark) and table.dataset == dataset:
        return table
    return None


def table_accuracy(arch: str, dataset: str) -> float | None:
    """The reference table's accuracy of ``arch`` (an NB201 string) on ``dataset``; None without a table."""
    from harness.space import parse_architecture

    table = reference_table(dataset)
    if table is None:
        return None
    return float(table.test_accuracy[parse_architecture(arch).index])
