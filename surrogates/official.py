"""The official NAS-Bench-201 and NATS-Bench (topology) files as tabular benchmarks.

Files: NAS-Bench-201's ``NAS-Bench-201-v1_0-e61699.pth`` / ``NAS-Bench-201-v1_1-096897.pth``
(read with ``nas_201_api``, ``pip install nas-bench-201``) and NATS-Bench's topology
benchmark, the fast-mode directory ``NATS-tss-v1_0-3ffb9-simple`` or the single file
``NATS-tss-v1_0-3ffb9.pickle.pbz2`` (read with ``nats_bench``, ``pip install nats_bench``).

Splits (NB201's convention, as the APIs' ``get_more_info`` and ``simulate_train_eval``
expose it). CIFAR-10: the reward is the accuracy on the held-out half of the training set
of a model trained on the other half (dataset ``cifar10-valid``, set ``x-valid``); the
reported figure is the CIFAR-10 test accuracy of a model trained on the full training
set (dataset ``cifar10``, set ``ori-test``). CIFAR-100 and ImageNet16-120: one model
per seed, its accuracy on one half of the original test set is the reward (``x-valid``)
and on the other half the report (``x-test``). Every figure is after the last epoch of a
schedule, 12 or 200 epochs (``hp`` '12' or '200'), chosen separately for the reward (and
its cost) and for the report: NB201's own searches are rewarded after 12 epochs, charged
the simulated time of those 12 epochs, and reported after 200.

Seeds. An architecture was trained with one to three seeds per dataset and schedule. The
reward is either their mean (``seeds="mean"``, ``is_random=False``) or, as in NB201's
searches (``is_random=True``), one trained seed drawn at random per query, from a
generator seeded by the run's seed (``OfficialBenchmark.for_run``). The report is always
the mean over the seeds trained for it. ``cost_seconds`` is what ``simulate_train_eval``
charges: the training time of the run that produced the reward plus one evaluation of the
validation set ("train-all-time" + "valid-per-time"); with ``seeds="mean"`` the mean over
the seeds that have timing, with ``"random"`` the drawn seed's own (that mean when the
drawn seed has none); NaN ("unknown") when no seed of the architecture has timing.
Values are read one seed at a time (``get_more_info(..., is_random=seed)``): the API's
own mean over seeds fails on files that mix timed and untimed seeds.

Memory. The NB201 ``.pth`` is a single pickle; ``torch.load`` of v1_1 (4.7 GB) needs 25-30 GB
of RAM and there is no lazy way into it, so ``nas_201_api.NASBench201API(path)`` (which holds
it all, and deep-copies a dict you pass it) is not used: the file is loaded once, each
architecture is handed to the API's own ``ArchResults`` and ``get_more_info`` and then
dropped, and the few numbers needed are written to an ``.npz`` cache. The single-file NATS
pickle has to be unpickled whole in the same way. Before either load the free memory is
checked (``MEMORY_FACTOR`` / ``NATS_PICKLE_MEMORY_FACTOR`` times the file size, against
``MemAvailable`` and the container's cgroup limit, v2 or v1) and a clear error replaces the
out-of-memory kill; ``NAS_HARNESS_NB201_FORCE_LOAD=1`` skips the check. NATS-Bench's
fast-mode directory is read lazily, one architecture file at a time, each released after
use (``clear_params`` drops the weights; the entry itself is then removed from the API's
``arch2infos_dict``, which ``clear_params`` leaves in place): prefer it. Both single files
are plain pickles (the ``.pth`` is read with ``torch.load(weights_only=False)``, which is
what ``nas_201_api``'s own ``torch.load`` call meant before torch 2.6), so unpickling runs
whatever they contain: point the loader only at files obtained from the official sources.

The conversion runs once per file: the cache, in ``$NAS_HARNESS_CACHE`` or
``~/.cache/nas-harness``, is keyed by the file's path, size and modification time and holds
every dataset, schedule and seed, and NB201's own index of every architecture, so later
loads need neither the big file's memory nor the package.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import logging
import os
import pickle
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from harness.errors import ArchitectureError, DataFileError, UnknownNameError, UserError
from harness.search.benchmark import Result, TabularBenchmark
from harness.space import NUM_ARCHITECTURES, Architecture, parse_architecture

logger = logging.getLogger(__name__)

KINDS = ("nb201", "nats")
DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
EPOCHS = (12, 200)
SEED_MODES = ("mean", "random")
#: The cached arrays per dataset and schedule: (15,625, seeds), one column per trained seed,
#: NaN-padded. ``val_seeds`` and ``cost_seeds`` are the reward split's seeds (aligned),
#: ``test_seeds`` the report split's.
SEED_METRICS = ("val_seeds", "cost_seeds", "test_seeds")
#: The cached array of NB201's own index of each architecture, by ``Architecture.index``.
OFFICIAL_INDEX = "official_index"
CACHE_VERSION = 2
#: ``torch.load`` of the NB201 .pth takes about this many times the file's size in RAM.
MEMORY_FACTOR = 6
#: Unpickling the bz2-compressed NATS single file takes about this many times its size: a 1 GB
#: file was reported to exhaust a 12 GB machine (issue 13), so at least 12; 16 leaves a margin.
NATS_PICKLE_MEMORY_FACTOR = 16
FORCE_ENV = "NAS_HARNESS_NB201_FORCE_LOAD"
EXPECTED = (
    "expected NAS-Bench-201-v1_1-096897.pth or NATS-tss-v1_0-3ffb9-simple; "
    "pass --benchmark nb201:/path or nats:/path"
)
NATS_META = "meta.pickle.pbz2"
#: The options a ``nb201:PATH`` / ``nats:PATH`` spec may end with, as ``:KEY=VALUE``.
SPEC_OPTIONS = {
    "dataset": "|".join(DATASETS),
    "reward_epochs": "12|200",
    "report_epochs": "12|200",
    "seeds": "|".join(SEED_MODES),
}
#: Where a dataset's memory figures come from (``_available_memory``), read by ``_read_text``.
MEMINFO = "/proc/meminfo"
CGROUP_V2_LIMIT, CGROUP_V2_USAGE = "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"
CGROUP_V1_LIMIT = "/sys/fs/cgroup/memory/memory.limit_in_bytes"
CGROUP_V1_USAGE = "/sys/fs/cgroup/memory/memory.usage_in_bytes"
#: cgroup v1 writes "no limit" as a number near 2**63.
_V1_UNLIMITED = 2**60
#: Mixed into a run's seed for its draws of trained seeds, so they are not the searcher's stream.
_DRAW_STREAM = 201

_PACKAGES = {
    "nats_bench": ("NATS-Bench", "pip install nats_bench"),
    "nas_201_api": ("the NAS-Bench-201 .pth", "pip install nas-bench-201"),
}

#: Per dataset: (the NB201 dataset whose runs give the reward and its cost, the one whose runs give the report).
_SPLITS = {
    "cifar10": ("cifar10-valid", "cifar10"),
    "cifar100": ("cifar100", "cifar100"),
    "ImageNet16-120": ("ImageNet16-120", "ImageNet16-120"),
}
_DESCRIPTIONS = {
    "cifar10": (
        "accuracy (%) on the held-out half of the CIFAR-10 training set, trained on the other "
        "half (NB201 'cifar10-valid' / 'x-valid')",
        "CIFAR-10 test accuracy (%), trained on the full training set (NB201 'cifar10' / 'ori-test')",
    ),
    "cifar100": (
        "CIFAR-100 accuracy (%) on the validation half of the test set (NB201 'x-valid')",
        "CIFAR-100 accuracy (%) on the test half of the test set (NB201 'x-test')",
    ),
    "ImageNet16-120": (
        "ImageNet16-120 accuracy (%) on the validation half of the test set (NB201 'x-valid')",
        "ImageNet16-120 accuracy (%) on the test half of the test set (NB201 'x-test')",
    ),
}
_OPTION = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*")

Progress = Callable[[int, int], None]


class OfficialBenchmark(TabularBenchmark):
    """An official file's figures for one dataset, reward/report schedule and seed handling.

    The arrays of ``TabularBenchmark`` hold the means over seeds (``val_accuracy`` at the
    reward schedule, ``test_accuracy`` at the report schedule, ``cost_seconds`` over the
    timed seeds, NaN where none is timed); ``val_seeds`` / ``cost_seeds`` keep one column
    per trained seed, so a draw is a lookup. With ``seeds="random"`` each query draws one
    trained seed of the architecture: ``for_run(seed)`` gives the benchmark a run queries,
    drawing from a generator seeded by the run's seed (an unbound benchmark draws as run 0).
    ``official_index(arch)`` is NB201's own index of an architecture (its position in the
    file's ``meta_archs``, ``api.query_index_by_arch``), which is not ``arch.index``.
    """

    def __init__(
        self,
        name: str,
        val_seeds: np.ndarray,
        cost_seeds: np.ndarray,
        test_seeds: np.ndarray,
        official_indices: np.ndarray,
        seeds: str,
        reward_metric: str,
        report_metric: str,
        cost_metric: str,
    ) -> None:
        super().__init__(
            name=name,
            val_accuracy=_row_mean(val_seeds),
            test_accuracy=_row_mean(test_seeds),
            reward_metric=reward_metric,
            report_metric=report_metric,
            cost_seconds=_row_mean(cost_seeds),
        )
        self.val_seeds = val_seeds
        self.cost_seeds = cost_seeds
        self.official_indices = official_indices
        self.seeds = _check_seeds(seeds)
        #: What a query's ``cost_seconds`` is (reports print it).
        self.cost_metric = cost_metric
        self._draws = _draw_generator(0)

    def for_run(self, seed: int) -> OfficialBenchmark:
        """The benchmark a run with ``seed`` queries (itself when the reward is the mean over seeds)."""
        if self.seeds == "mean":
            return self
        bound = copy.copy(self)
        bound._draws = _draw_generator(seed)
        return bound

    def query(self, arch: Architecture) -> Result:
        if self.seeds == "mean":
            return super().query(arch)
        i = arch.index
        trained = np.flatnonzero(np.isfinite(self.val_seeds[i]))
        k = int(trained[self._draws.integers(trained.size)])
        cost = self.cost_seeds[i, k]
        return Result(
            val_accuracy=float(self.val_seeds[i, k]),
            test_accuracy=float(self.test_accuracy[i]),
            cost_seconds=float(cost if np.isfinite(cost) else self.cost_seconds[i]),
        )

    def official_index(self, arch: Architecture) -> int:
        """NB201's own index of ``arch`` in the file this benchmark was read from."""
        return int(self.official_indices[arch.index])


def parse_official_spec(kind: str, argument: str) -> tuple[str, dict[str, str]]:
    """What follows ``nb201:`` / ``nats:`` -> (path, options); refuses unknown or repeated options in one line.

    The spec is ``PATH[:KEY=VALUE...]`` with the keys of ``SPEC_OPTIONS``; trailing ``:KEY=VALUE``
    parts are options, everything before them is the path (which may itself hold ':').
    """
    kind = _check_kind(kind)
    accepted = ", ".join(f"{key}={values}" for key, values in SPEC_OPTIONS.items())
    usage = f"--benchmark {kind}:PATH[:KEY=VALUE...] with KEY=VALUE one of {accepted}"
    parts = (argument or "").split(":")
    options: dict[str, str] = {}
    while len(parts) > 1 and _OPTION.fullmatch(parts[-1]):
        key, _, value = parts.pop().partition("=")
        if key in options:
            raise UserError(f"option {key} is given twice in {kind}:{argument}; {usage}")
        options[key] = value
    path = ":".join(parts)
    if _OPTION.fullmatch(path) and path.partition("=")[0] in SPEC_OPTIONS:
        raise UserError(f"benchmark '{kind}' needs a path before its options; {usage}")
    if not path:
        raise UserError(f"benchmark '{kind}' needs a path; {usage}")
    unknown = [key for key in options if key not in SPEC_OPTIONS]
    if unknown:
        raise UserError(f"unknown option {unknown[0]!r} in {kind}:{argument}; accepted: {accepted}")
    return path, dict(reversed(options.items()))


def load_official_spec(kind: str, argument: str) -> OfficialBenchmark:
    """The benchmark a ``nb201:...`` / ``nats:...`` spec names (``parse_official_spec``)."""
    path, options = parse_official_spec(kind, argument)
    return load_official_benchmark(
        kind,
        path,
        dataset=options.get("dataset", "cifar10"),
        reward_epochs=options.get("reward_epochs"),
        report_epochs=options.get("report_epochs"),
        seeds=options.get("seeds", "mean"),
    )


def load_official_benchmark(
    kind: Literal["nb201", "nats"],
    path: str | os.PathLike,
    dataset: str = "cifar10",
    epochs: int | str | None = None,
    *,
    reward_epochs: int | str | None = None,
    report_epochs: int | str | None = None,
    seeds: str = "mean",
) -> OfficialBenchmark:
    """The benchmark of ``dataset`` from an official file.

    ``reward_epochs`` (the reward and its cost) and ``report_epochs`` (the reported figure)
    are 12 or 200, by default ``epochs`` (default 200); ``seeds`` is ``"mean"`` (the reward is
    the mean over the trained seeds) or ``"random"`` (one trained seed drawn per query).
    NB201's search protocol is ``reward_epochs=12, report_epochs=200, seeds="random"``.
    """
    kind = _check_kind(kind)
    dataset = _check_dataset(dataset)
    default = 200 if epochs is None else _check_epochs(epochs, "epochs")
    reward_epochs = default if reward_epochs is None else _check_epochs(reward_epochs, "reward_epochs")
    report_epochs = default if report_epochs is None else _check_epochs(report_epochs, "report_epochs")
    seeds = _check_seeds(seeds)
    source = _check_path(kind, path)
    tables = load_official_tables(kind, source)
    reward_split, report_split = _SPLITS[dataset]
    val_seeds = tables[column_name(dataset, reward_epochs, "val_seeds")]
    cost_seeds = tables[column_name(dataset, reward_epochs, "cost_seeds")]
    test_seeds = tables[column_name(dataset, report_epochs, "test_seeds")]
    val_counts = _require(kind, source, val_seeds, dataset, reward_split, reward_epochs, "reward")
    test_counts = _require(kind, source, test_seeds, dataset, report_split, report_epochs, "report")
    reward_text, report_text = _DESCRIPTIONS[dataset]
    origin = f"from {source.name}"
    if seeds == "random":
        drawn = ("one of its trained seeds drawn at random per query (NB201's is_random=True), from a "
                 "generator seeded by the run's seed")
        charged = "the drawn seed's own time (the mean over the architecture's timed seeds when it has none)"
    else:
        drawn = f"mean over its trained seeds ({_count_text(val_counts)}; NB201's is_random=False)"
        charged = "the mean over the architecture's seeds that have timing"
    untimed = int(np.isnan(_row_mean(cost_seeds)).sum())
    unknown = (f"; {untimed} architectures have no timing at all, so their cost is unknown (NaN) and a time "
               "budget is refused" if untimed else "")
    name = f"{kind}-{dataset}-{reward_epochs}" + ("" if report_epochs == reward_epochs else f"-{report_epochs}")
    return OfficialBenchmark(
        name=name + ("-random" if seeds == "random" else ""),
        val_seeds=val_seeds,
        cost_seeds=cost_seeds,
        test_seeds=test_seeds,
        official_indices=tables[OFFICIAL_INDEX],
        seeds=seeds,
        reward_metric=f"{reward_text}, {_schedule(reward_epochs)}; {drawn}; {origin}",
        report_metric=(f"{report_text}, {_schedule(report_epochs)}; mean over its trained seeds "
                       f"({_count_text(test_counts)}); {origin}"),
        cost_metric=(f"simulated time (s) of the run that gave the reward: its {reward_epochs} training epochs "
                     f"on '{reward_split}' plus one evaluation of the validation set (NB201's simulate_train_eval: "
                     f"train-all-time + valid-per-time); {charged}{unknown}; {origin}"),
    )


def load_official_tables(
    kind: str, path: str | os.PathLike, progress: Progress | None = None
) -> dict[str, np.ndarray]:
    """Every dataset's, schedule's and seed's arrays, from the cache, or converted once and cached."""
    kind = _check_kind(kind)
    source = _check_path(kind, path)
    cache = official_cache_path(kind, source)
    if cache.is_file():
        try:
            with np.load(cache) as stored:
                tables = {name: stored[name] for name in stored.files}
            if all(name in tables for name in _table_names()):
                return tables
        except (OSError, ValueError, KeyError, EOFError):
            pass  # a damaged cache is rebuilt below
    logger.warning(
        "converting %s once into %s; this reads every architecture and takes minutes", source, cache
    )
    tables = convert_official(kind, source, progress)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{cache.stem}.tmp{os.getpid()}.npz")
        np.savez_compressed(tmp, **tables)
        os.replace(tmp, cache)
    except OSError as exc:
        logger.warning("could not write the cache %s (%s); the next load converts again", cache, exc)
    return tables


def official_cache_path(kind: str, path: str | os.PathLike) -> Path:
    """Where the converted arrays of ``path`` are cached (keyed by path, size and mtime)."""
    source = Path(path).resolve()
    stat_target = source / NATS_META if source.is_dir() else source
    try:
        stat = stat_target.stat()
    except OSError as exc:
        raise DataFileError(f"cannot read {stat_target}: {exc.strerror or exc}") from None
    key = f"{kind}|{source}|{stat.st_size}|{stat.st_mtime_ns}|v{CACHE_VERSION}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return _cache_dir() / f"official-{kind}-{source.name}-{digest}.npz"


def convert_official(
    kind: str, path: str | os.PathLike, progress: Progress | None = None
) -> dict[str, np.ndarray]:
    """Read every architecture of an official file through its API (slow; no cache).

    Returns the ``SEED_METRICS`` arrays of every dataset and schedule, (15,625, seeds) with
    as many columns as the most seeds any architecture has, and ``OFFICIAL_INDEX``.
    """
    tables = {column: np.full((NUM_ARCHITECTURES, 1), np.nan) for column in _table_names() if column != OFFICIAL_INDEX}
    official = np.full(NUM_ARCHITECTURES, -1, dtype=np.int64)
    source = _check_path(_check_kind(kind), path)
    for done, (arch, api_index, values) in enumerate(iter_official_results(kind, source), start=1):
        index = arch.index
        if official[index] >= 0:
            raise DataFileError(f"{source.name} lists architecture {arch} twice")
        official[index] = api_index
        for column, per_seed in values.items():
            table = tables[column]
            if per_seed.size > table.shape[1]:
                table = np.pad(table, ((0, 0), (0, per_seed.size - table.shape[1])), constant_values=np.nan)
                tables[column] = table
            table[index, : per_seed.size] = per_seed
        if progress is not None:
            progress(done, NUM_ARCHITECTURES)
    covered = int((official >= 0).sum())
    if covered < NUM_ARCHITECTURES:
        raise DataFileError(f"{source.name} covers {covered} of {NUM_ARCHITECTURES} architectures; is it complete?")
    tables[OFFICIAL_INDEX] = official
    return tables


def iter_official_results(
    kind: str, path: str | os.PathLike
) -> Iterator[tuple[Architecture, int, dict[str, np.ndarray]]]:
    """Each architecture of an official file, in the file's order: (architecture, NB201 index, values).

    The values dict has one 1-D array per dataset, schedule and ``SEED_METRICS`` entry,
    one value per trained seed (empty where the file has no such runs). Only the current
    architecture's results are held in memory.
    """
    kind = _check_kind(kind)
    source = _check_path(kind, path)
    if kind == "nb201":
        records = _nb201_records(source)
    elif source.is_dir():
        records = _nats_directory_records(source)
    else:
        records = _nats_pickle_records(source)
    for api, api_index, arch_str in records:
        try:
            arch = parse_architecture(arch_str)
        except ArchitectureError as exc:
            raise DataFileError(
                f"{source.name} lists an architecture outside NB201: {_describe(exc)}"
            ) from None
        yield arch, api_index, _seed_values(api, api_index)


def _seed_values(api: Any, index: int) -> dict[str, np.ndarray]:
    """One architecture's per-seed figures through the API's ``get_more_info(..., is_random=seed)``.

    Each split is looked up on its own, so one the file lacks (e.g. v1_0's 12-epoch
    ``cifar10``) leaves the others (its 12-epoch ``cifar10-valid``) intact.
    """
    values: dict[str, np.ndarray] = {}
    for epochs in EPOCHS:
        hp = str(epochs)
        results = api.arch2infos_dict.get(index, {}).get(hp)
        runs: dict[str, list[dict]] = {}
        for dataset in DATASETS:
            reward_split, report_split = _SPLITS[dataset]
            for split in (reward_split, report_split):
                if split not in runs:
                    runs[split] = _split_runs(api, results, index, split, hp)
            values[column_name(dataset, epochs, "val_seeds")] = _numbers(runs[reward_split], "valid-accuracy")
            values[column_name(dataset, epochs, "cost_seeds")] = np.array(
                [_cost(info) for info in runs[reward_split]], dtype=np.float64)
            values[column_name(dataset, epochs, "test_seeds")] = _numbers(runs[report_split], "test-accuracy")
    return values


def _split_runs(api: Any, results: Any, index: int, split: str, hp: str) -> list[dict]:
    """``get_more_info`` of each trained seed of ``split`` (empty when the file has no such runs)."""
    if results is None:
        return []
    try:
        seeds = results.get_dataset_seeds(split)
        return [api.get_more_info(index, split, hp=hp, is_random=int(seed)) for seed in seeds]
    except (KeyError, ValueError, IndexError, AssertionError):  # no such runs, or none readable
        return []


def _numbers(runs: list[dict], key: str) -> np.ndarray:
    return np.array([np.nan if info.get(key) is None else float(info[key]) for info in runs], dtype=np.float64)


def _cost(info: dict) -> float:
    """What ``simulate_train_eval`` charges for this seed's run; NaN when the run has no timing."""
    train, evaluation = info.get("train-all-time"), info.get("valid-per-time")
    return np.nan if train is None or evaluation is None else float(train) + float(evaluation)


def _nats_directory_records(source: Path) -> Iterator[tuple[Any, int, str]]:
    """Each architecture of a fast-mode directory, loaded alone and released after use."""
    nats_bench = _import("nats_bench")
    if not (source / NATS_META).is_file():
        raise DataFileError(
            f"{source} has no {NATS_META}, so it is not a NATS-tss fast-mode directory; {EXPECTED}"
        )
    try:
        api = nats_bench.create(str(source), "tss", fast_mode=True, verbose=False)
    except (
        OSError,
        EOFError,
        pickle.UnpicklingError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
    ) as exc:
        raise DataFileError(f"{source / NATS_META} is corrupt: {_describe(exc)}") from None
    yield from _release_after_use(api, source, lambda index: api.reload(str(source), index))


def _nats_pickle_records(source: Path) -> Iterator[tuple[Any, int, str]]:
    """Each architecture of the single-file NATS pickle (which has to be unpickled whole)."""
    nats_bench = _import("nats_bench")
    _check_memory(source, NATS_PICKLE_MEMORY_FACTOR)
    raw = _checked_dict(source, lambda: nats_bench.pickle_load(str(source)))
    api = nats_bench.create(
        {"meta_archs": raw["meta_archs"], "arch2infos": {}, "evaluated_indexes": []}, "tss", verbose=False
    )
    infos = raw.pop("arch2infos")

    def install(index: int) -> None:
        state = infos.pop(index)
        api.arch2infos_dict[index] = OrderedDict(
            (hp, nats_bench.ArchResults.create_from_state_dict(results)) for hp, results in state.items()
        )
        api.evaluated_indexes.add(index)

    yield from _release_after_use(api, source, install)


def _nb201_records(source: Path) -> Iterator[tuple[Any, int, str]]:
    """Each architecture of an NB201 .pth, handed to nas_201_api one at a time."""
    nas_201_api = _import("nas_201_api")
    import torch

    _check_memory(source, MEMORY_FACTOR)
    raw = _checked_dict(source, lambda: torch.load(str(source), map_location="cpu", weights_only=False))
    api = nas_201_api.NASBench201API(
        {"meta_archs": raw["meta_archs"], "arch2infos": {}, "evaluated_indexes": []}, verbose=False
    )
    infos = raw.pop("arch2infos")

    def install(index: int) -> None:
        entry = infos.pop(index)
        api.arch2infos_dict[index] = OrderedDict(
            [
                ("12", nas_201_api.ArchResults.create_from_state_dict(entry["less"])),
                ("200", nas_201_api.ArchResults.create_from_state_dict(entry["full"])),
            ]
        )

    yield from _release_after_use(api, source, install)


def _release_after_use(
    api: Any, source: Path, install: Callable[[int], None]
) -> Iterator[tuple[Any, int, str]]:
    meta_archs = list(api.meta_archs)
    if len(meta_archs) != NUM_ARCHITECTURES:
        raise DataFileError(
            f"{source.name} lists {len(meta_archs)} architectures, not NB201's {NUM_ARCHITECTURES}; {EXPECTED}"
        )
    for index, arch_str in enumerate(meta_archs):
        try:
            install(index)
        except (AssertionError, KeyError) as exc:
            raise DataFileError(
                f"{source.name} is incomplete: no results for architecture {index} ({_describe(exc)})"
            ) from None
        except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError) as exc:
            raise DataFileError(
                f"{source.name}: the results of architecture {index} are corrupt: {_describe(exc)}"
            ) from None
        try:
            yield api, index, arch_str
        finally:
            api.clear_params(index)
            api.arch2infos_dict.pop(index, None)
            evaluated = getattr(api, "evaluated_indexes", None)
            if isinstance(evaluated, set):
                evaluated.discard(index)


def _checked_dict(source: Path, load: Callable[[], Any]) -> dict:
    try:
        raw = load()
    except MemoryError:
        raise DataFileError(
            f"not enough memory to load {source}; use the NATS-tss fast-mode directory"
        ) from None
    except Exception as exc:  # torch.load and unpickling raise many kinds for a damaged file
        raise DataFileError(
            f"{source} is corrupt or not a benchmark file: {type(exc).__name__}: {_describe(exc)}"
        ) from None
    if not isinstance(raw, dict) or not {"meta_archs", "arch2infos"} <= raw.keys():
        raise DataFileError(
            f"{source} is not a NAS-Bench-201/NATS-Bench file (no meta_archs/arch2infos); {EXPECTED}"
        )
    return raw


def _check_memory(source: Path, factor: int) -> None:
    """Refuse, before unpickling ``source`` whole, when this machine or container clearly lacks the memory."""
    if os.environ.get(FORCE_ENV) == "1":
        return
    need = source.stat().st_size * factor
    available = _available_memory()
    if available is not None and available[0] < need:
        have, where = available
        raise DataFileError(
            f"loading {source.name} needs about {need / 2**30:.1f} GiB of free memory once ({factor} x its size; "
            f"have {have / 2**30:.1f} GiB, {where}); use the NATS-tss-v1_0-3ffb9-simple directory (nats:/path), "
            f"which is read one architecture at a time, or set {FORCE_ENV}=1"
        )


def _available_memory() -> tuple[int, str] | None:
    """(bytes this process can still allocate, where that figure comes from), the least of what is known.

    Sources: ``MemAvailable`` in /proc/meminfo, and the container's limit less its usage, from
    cgroup v2 (memory.max, memory.current) or v1 (memory.limit_in_bytes, memory.usage_in_bytes).
    None when none of them can be read.
    """
    found: list[tuple[int, str]] = []
    meminfo = _read_text(MEMINFO)
    if meminfo:
        for line in meminfo.splitlines():
            if line.startswith("MemAvailable:"):
                try:
                    found.append((int(line.split()[1]) * 1024, f"MemAvailable in {MEMINFO}"))
                except (ValueError, IndexError):
                    pass
    for limit_path, usage_path, unlimited in (
        (CGROUP_V2_LIMIT, CGROUP_V2_USAGE, None),
        (CGROUP_V1_LIMIT, CGROUP_V1_USAGE, _V1_UNLIMITED),
    ):
        limit = _read_int(limit_path)
        if limit is None or (unlimited is not None and limit >= unlimited):
            continue
        usage = _read_int(usage_path) or 0
        found.append((max(limit - usage, 0), f"the container's limit of {limit / 2**30:.1f} GiB in {limit_path} "
                                             f"less {usage / 2**30:.1f} GiB in use"))
    return min(found, key=lambda item: item[0]) if found else None


def _read_int(path: str) -> int | None:
    """An integer file such as a cgroup limit; None when absent, unreadable or "max" (no limit)."""
    text = _read_text(path)
    try:
        return None if text is None else int(text.strip())
    except ValueError:
        return None


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def _require(
    kind: str, source: Path, per_seed: np.ndarray, dataset: str, split: str, epochs: int, role: str
) -> np.ndarray:
    """The number of trained seeds per architecture; refuses (one line) a split the file lacks in part or whole."""
    counts = np.isfinite(per_seed).sum(axis=1)
    if not counts.any():
        note = ""
        if kind == "nb201" and epochs == 12:
            note = (" (NAS-Bench-201-v1_0 trained 12-epoch models on 'cifar10-valid' only: for CIFAR-10 use "
                    "reward_epochs=12 with report_epochs=200, or the v1_1 file)")
        raise DataFileError(f"{source.name} has no {epochs}-epoch '{split}' runs, which the {role} of {dataset} "
                            f"needs ({role}_epochs={epochs}){note}")
    missing = np.flatnonzero(counts == 0)
    if missing.size:
        raise DataFileError(
            f"{source.name} lacks {epochs}-epoch '{split}' results ({role} of {dataset}) for {missing.size} of "
            f"{NUM_ARCHITECTURES} architectures, e.g. {Architecture.from_index(int(missing[0]))}"
        )
    return counts


def _row_mean(per_seed: np.ndarray) -> np.ndarray:
    """The mean of each row over its finite entries; NaN for a row with none."""
    finite = np.isfinite(per_seed)
    counts = finite.sum(axis=1)
    sums = np.where(finite, per_seed, 0.0).sum(axis=1)
    return np.divide(sums, counts, out=np.full(per_seed.shape[0], np.nan), where=counts > 0)


def _count_text(counts: np.ndarray) -> str:
    low, high = int(counts.min()), int(counts.max())
    return f"{low} per architecture" if low == high else f"{low} to {high} per architecture"


def _schedule(epochs: int) -> str:
    return f"after {epochs} epochs (NB201's {epochs}-epoch schedule, hp='{epochs}')"


def _draw_generator(seed: int) -> np.random.Generator:
    return np.random.default_rng([_DRAW_STREAM, int(seed)])


def _describe(exc: BaseException) -> str:
    """An exception's message on one line (the CLI prints DataFileError as a single line)."""
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def _import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        what, command = _PACKAGES[module]
        raise DataFileError(f"reading {what} needs the '{module}' package: {command}") from None


def _check_path(kind: str, path: str | os.PathLike) -> Path:
    if path is None or str(path) == "":
        raise DataFileError(f"no benchmark path given; {EXPECTED}")
    source = Path(path).expanduser()
    if not source.exists():
        raise DataFileError(f"{source} does not exist; {EXPECTED}")
    if kind == "nb201" and source.is_dir():
        raise DataFileError(
            f"{source} is a directory; nb201 expects the NAS-Bench-201-v1_x .pth file, nats the NATS-tss directory"
        )
    if kind == "nats" and source.is_file() and source.suffix == ".pth":
        raise DataFileError(f"{source} is an NB201 .pth file; pass it as nb201:{source}")
    return source


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise UnknownNameError(f"unknown official benchmark kind {kind!r}; choose nb201 or nats")
    return kind


def _check_dataset(dataset: str) -> str:
    for name in DATASETS:
        if name.lower() == str(dataset).lower():
            return name
    raise UnknownNameError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")


def _check_epochs(epochs: int | str, label: str = "epochs") -> int:
    try:
        value = int(epochs)
    except (TypeError, ValueError):
        value = -1
    if value not in EPOCHS:
        raise UserError(f"{label} must be 12 or 200 (NB201's two schedules), got {epochs!r}")
    return value


def _check_seeds(seeds: str) -> str:
    if seeds not in SEED_MODES:
        raise UserError(f"seeds must be 'mean' (the mean over trained seeds) or 'random' (one trained seed "
                        f"drawn per query), got {seeds!r}")
    return seeds


def column_name(dataset: str, epochs: int, metric: str) -> str:
    """The key of one array in the converted tables, e.g. 'cifar10__12__val_seeds'."""
    return f"{dataset}__{epochs}__{metric}"


def _table_names() -> list[str]:
    return [column_name(d, e, m) for d in DATASETS for e in EPOCHS for m in SEED_METRICS] + [OFFICIAL_INDEX]


def _cache_dir() -> Path:
    root = os.environ.get("NAS_HARNESS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "nas-harness"
    )
    return Path(root)
