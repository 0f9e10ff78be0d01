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
and on the other half the report (``x-test``). All figures are after the last epoch of
the chosen schedule (``hp`` '12' or '200') and averaged over the seeds the file holds
(``is_random=False``). ``cost_seconds`` is what ``simulate_train_eval`` charges: the
training time of the run that produced the reward plus one evaluation of it.

Memory. The NB201 ``.pth`` is a single pickle; ``torch.load`` of v1_1 (4.7 GB) needs 25-30 GB
of RAM and there is no lazy way into it, so ``nas_201_api.NASBench201API(path)`` (which holds
it all, and deep-copies a dict you pass it) is not used: the file is loaded once, each
architecture is handed to the API's own ``ArchResults`` and ``get_more_info`` and then
dropped, and the few numbers needed are written to an ``.npz`` cache. Before that load the
free memory is checked (``MEMORY_FACTOR`` times the file size) and a clear error replaces
the out-of-memory kill; ``NAS_HARNESS_NB201_FORCE_LOAD=1`` skips the check. NATS-Bench's
fast-mode directory is read lazily, one architecture file at a time, each released after
use (``clear_params`` drops the weights; the entry itself is then removed from the API's
``arch2infos_dict``, which ``clear_params`` leaves in place). The single-file NATS pickle has
to be unpickled whole, like the ``.pth``; prefer the directory. Both single files are
plain pickles (the ``.pth`` is read with ``torch.load(weights_only=False)``, which is what
``nas_201_api``'s own ``torch.load`` call meant before torch 2.6), so unpickling runs whatever
they contain: point the loader only at files obtained from the official sources.

The conversion runs once per file: the cache, in ``$NAS_HARNESS_CACHE`` or
``~/.cache/nas-harness``, is keyed by the file's path, size and modification time and holds
every dataset and schedule, so later loads need neither the big file's memory nor the
package.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import pickle
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from harness.errors import ArchitectureError, DataFileError, UnknownNameError, UserError
from harness.search.benchmark import TabularBenchmark
from harness.space import NUM_ARCHITECTURES, Architecture, parse_architecture

logger = logging.getLogger(__name__)

KINDS = ("nb201", "nats")
DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
EPOCHS = (12, 200)
METRICS = ("val_accuracy", "test_accuracy", "cost_seconds")
CACHE_VERSION = 1
#: ``torch.load`` of the NB201 .pth takes about this many times the file's size in RAM.
MEMORY_FACTOR = 6
FORCE_ENV = "NAS_HARNESS_NB201_FORCE_LOAD"
EXPECTED = (
    "expected NAS-Bench-201-v1_1-096897.pth or NATS-tss-v1_0-3ffb9-simple; "
    "pass --benchmark nb201:/path or nats:/path"
)
NATS_META = "meta.pickle.pbz2"

_PACKAGES = {
    "nats_bench": ("NATS-Bench", "pip install nats_bench"),
    "nas_201_api": ("the NAS-Bench-201 .pth", "pip install nas-bench-201"),
}

_SPLITS = {
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

Progress = Callable[[int, int], None]


def load_official_benchmark(
    kind: Literal["nb201", "nats"],
    path: str | os.PathLike,
    dataset: str = "cifar10",
    epochs: int = 200,
) -> TabularBenchmark:
    """The benchmark of ``dataset`` after ``epochs`` (12 or 200) epochs from an official file."""
    kind = _check_kind(kind)
    dataset = _check_dataset(dataset)
    epochs = _check_epochs(epochs)
    source = _check_path(kind, path)
    tables = load_official_tables(kind, source)
    val, test, cost = (tables[column_name(dataset, epochs, metric)] for metric in METRICS)
    if np.isnan(val).all() or np.isnan(test).all():
        note = " (NAS-Bench-201-v1_0 has 12-epoch runs for cifar10-valid only)" if kind == "nb201" else ""
        raise DataFileError(f"{source.name} has no {epochs}-epoch results for {dataset}{note}")
    missing = np.flatnonzero(np.isnan(val) | np.isnan(test))
    if missing.size:
        raise DataFileError(
            f"{source.name} lacks {dataset} {epochs}-epoch results for {missing.size} of "
            f"{NUM_ARCHITECTURES} architectures, e.g. {Architecture.from_index(int(missing[0]))}"
        )
    untimed = int(np.isnan(cost).sum())
    timing = f"; {untimed} architectures have no timing (cost 0)" if untimed else ""
    reward, report = _SPLITS[dataset]
    schedule = f"{epochs} epochs, mean over seeds, from {source.name}"
    return TabularBenchmark(
        name=f"{kind}-{dataset}-{epochs}",
        val_accuracy=val,
        test_accuracy=test,
        reward_metric=f"{reward}; {schedule}",
        report_metric=f"{report}; {schedule}{timing}",
        cost_seconds=np.nan_to_num(cost, nan=0.0),
    )


def load_official_tables(
    kind: str, path: str | os.PathLike, progress: Progress | None = None
) -> dict[str, np.ndarray]:
    """Every dataset's and schedule's arrays, from the cache, or converted once and cached."""
    kind = _check_kind(kind)
    source = _check_path(kind, path)
    cache = official_cache_path(kind, source)
    if cache.is_file():
        try:
            with np.load(cache) as stored:
                tables = {name: stored[name] for name in stored.files}
            if all(column_name(d, e, m) in tables for d in DATASETS for e in EPOCHS for m in METRICS):
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
    """Read every architecture of an official file through its API (slow; no cache)."""
    tables = {
        column_name(d, e, m): np.full(NUM_ARCHITECTURES, np.nan)
        for d in DATASETS
        for e in EPOCHS
        for m in METRICS
    }
    seen = np.zeros(NUM_ARCHITECTURES, dtype=bool)
    source = _check_path(_check_kind(kind), path)
    for done, (arch, values) in enumerate(iter_official_results(kind, source), start=1):
        index = arch.index
        if seen[index]:
            raise DataFileError(f"{source.name} lists architecture {arch} twice")
        seen[index] = True
        for column, value in values.items():
            tables[column][index] = value
        if progress is not None:
            progress(done, NUM_ARCHITECTURES)
    if not seen.all():
        raise DataFileError(
            f"{source.name} covers {int(seen.sum())} of {NUM_ARCHITECTURES} architectures; is it complete?"
        )
    return tables


def iter_official_results(
    kind: str, path: str | os.PathLike
) -> Iterator[tuple[Architecture, dict[str, float]]]:
    """Each architecture of an official file, in the file's order, with its final metrics.

    The metrics dict has one entry per dataset, schedule and metric (NaN where the file has
    no such runs). Only the current architecture's results are held in memory.
    """
    kind = _check_kind(kind)
    source = _check_path(kind, path)
    if kind == "nb201":
        records = _nb201_records(source)
    elif source.is_dir():
        records = _nats_directory_records(source)
    else:
        records = _nats_pickle_records(source)
    combinations = [(d, e, [column_name(d, e, m) for m in METRICS]) for d in DATASETS for e in EPOCHS]
    for api, api_index, arch_str in records:
        try:
            arch = parse_architecture(arch_str)
        except ArchitectureError as exc:
            raise DataFileError(
                f"{source.name} lists an architecture outside NB201: {_describe(exc)}"
            ) from None
        values = {}
        for dataset, epochs, columns in combinations:
            values.update(zip(columns, _final_metrics(api, api_index, dataset, str(epochs)), strict=True))
        yield arch, values


def _final_metrics(api: Any, index: int, dataset: str, hp: str) -> tuple[float, float, float]:
    """(reward, report, cost) of one architecture through the API's ``get_more_info``; NaN if absent."""
    try:
        if dataset == "cifar10":
            search = api.get_more_info(index, "cifar10-valid", hp=hp, is_random=False)
            final = api.get_more_info(index, "cifar10", hp=hp, is_random=False)
        else:
            search = final = api.get_more_info(index, dataset, hp=hp, is_random=False)
    except (KeyError, ValueError, IndexError):  # this file has no such runs
        return np.nan, np.nan, np.nan
    train_time, eval_time = search.get("train-all-time"), search.get("valid-per-time")
    cost = train_time + eval_time if train_time is not None and eval_time is not None else None
    return tuple(
        np.nan if v is None else float(v)
        for v in (search.get("valid-accuracy"), final.get("test-accuracy"), cost)
    )


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

    _check_memory(source)
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


def _check_memory(source: Path) -> None:
    if os.environ.get(FORCE_ENV) == "1":
        return
    need = source.stat().st_size * MEMORY_FACTOR
    have = _available_memory()
    if have is not None and have < need:
        raise DataFileError(
            f"loading {source.name} needs about {need / 2**30:.0f} GiB of free memory once (have "
            f"{have / 2**30:.0f} GiB); use the NATS-tss-v1_0-3ffb9-simple directory (nats:/path) "
            f"or set {FORCE_ENV}=1"
        )


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


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


def _check_epochs(epochs: int | str) -> int:
    try:
        value = int(epochs)
    except (TypeError, ValueError):
        value = -1
    if value not in EPOCHS:
        raise UserError(f"epochs must be 12 or 200 (NB201's two schedules), got {epochs!r}")
    return value


def column_name(dataset: str, epochs: int, metric: str) -> str:
    """The key of one array in the converted tables, e.g. 'cifar10__200__val_accuracy'."""
    return f"{dataset}__{epochs}__{metric}"


def _cache_dir() -> Path:
    root = os.environ.get("NAS_HARNESS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "nas-harness"
    )
    return Path(root)
