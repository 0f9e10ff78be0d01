"""The benchmark kinds this package provides, declared as entry points of ``nas_harness.benchmarks``.

Light to import: each kind imports its module only when a benchmark of it is loaded.
"""

from __future__ import annotations

from harness.errors import UserError
from harness.search.benchmark import Benchmark
from harness.search.benchmark_specs import BenchmarkKind


def _analog(argument: str) -> Benchmark:
    from surrogates.analog_table import load_analog_benchmark

    return load_analog_benchmark(argument or None)


def _official(kind: str):
    def load(argument: str) -> Benchmark:
        if not argument:
            raise UserError(f"benchmark '{kind}' needs a path: --benchmark {kind}:/path/to/file")
        from surrogates.official import load_official_spec

        return load_official_spec(kind, argument)

    return load


#: The options after an official file's path (``surrogates.official.SPEC_OPTIONS``), for ``usage``.
_OFFICIAL_OPTIONS = "[:dataset=cifar10|cifar100|ImageNet16-120][:reward_epochs=12|200][:report_epochs=12|200]" \
                    "[:seeds=mean|random]"


def _surrogate(argument: str) -> Benchmark:
    from surrogates.analog_table import load_analog_benchmark
    from surrogates.learned import SurrogateBenchmark, parse_surrogate_spec

    model, n, seed = parse_surrogate_spec(f"surrogate:{argument}")
    return SurrogateBenchmark(load_analog_benchmark(), model=model, n=n, seed=seed)


ANALOG = BenchmarkKind("analog, analog:PATH", _analog)
NB201 = BenchmarkKind(f"nb201:PATH{_OFFICIAL_OPTIONS}", _official("nb201"))
NATS = BenchmarkKind(f"nats:PATH{_OFFICIAL_OPTIONS}", _official("nats"))
SURROGATE = BenchmarkKind("surrogate:MODEL:N[:SEED]", _surrogate)
