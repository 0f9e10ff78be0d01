"""Turn a benchmark spec from the command line into a Benchmark (one place, cached per process).

Specs:
    analog                    the embedded analog-nasbench CIFAR-10 table (default)
    analog:PATH               the same table read from an explicit data.anb
    nb201:PATH                the official NAS-Bench-201 .pth (needs nas-bench-201)
    nats:PATH                 NATS-Bench topology, e.g. NATS-tss-v1_0-3ffb9-simple (needs nats_bench)
    surrogate:MODEL:N[:SEED]  a learned surrogate fitted on N architectures of the embedded table
"""

from __future__ import annotations

from functools import lru_cache

from harness.errors import UnknownNameError, UserError
from surrogates.base import Benchmark

DEFAULT_BENCHMARK = "analog"
KINDS = ("analog", "nb201", "nats", "surrogate")


def describe_specs() -> str:
    return "analog, analog:PATH, nb201:PATH, nats:PATH, surrogate:MODEL:N[:SEED]"


@lru_cache(maxsize=8)
def resolve_benchmark(spec: str) -> Benchmark:
    """The benchmark a spec names; raises a UserError naming the accepted specs."""
    kind, _, rest = spec.partition(":")
    if kind == "analog":
        from surrogates.analog_table import load_analog_benchmark

        return load_analog_benchmark(rest or None)
    if kind in ("nb201", "nats"):
        if not rest:
            raise UserError(f"benchmark '{kind}' needs a path: --benchmark {kind}:/path/to/file")
        from surrogates.official import load_official_benchmark

        return load_official_benchmark(kind, rest)
    if kind == "surrogate":
        from surrogates.analog_table import load_analog_benchmark
        from surrogates.learned import SurrogateBenchmark, parse_surrogate_spec

        model, n, seed = parse_surrogate_spec(spec)
        return SurrogateBenchmark(load_analog_benchmark(), model=model, n=n, seed=seed)
    raise UnknownNameError(f"unknown benchmark {spec!r}; accepted: {describe_specs()}")
