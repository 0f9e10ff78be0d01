"""The official-file loaders, run through the real nats_bench / nas_201_api code on small files.

The files are written in each package's own format with its own classes (``ArchResults``,
``ResultsCount``, ``pickle_save`` / ``torch.save``). Every accuracy encodes where it comes
from (dataset, evaluation set, seed, last epoch or not), so a wrong split, epoch or seed
average shows up as a wrong number. Architectures are listed in a shuffled order, so the
mapping from the file's strings to our indices is exercised too.
"""

import os
import random
import sys

import numpy as np
import pytest

from harness.errors import DataFileError, UnknownNameError, UserError
from harness.space import NUM_ARCHITECTURES, all_architectures, parse_architecture
from surrogates import official
from surrogates.official import (
    EXPECTED,
    column_name,
    iter_official_results,
    load_official_benchmark,
    load_official_tables,
    official_cache_path,
)

nats_bench = pytest.importorskip("nats_bench")
nas_201_api = pytest.importorskip("nas_201_api")
torch = pytest.importorskip("torch")

EVAL_SETS = {
    "cifar10-valid": ("x-valid", "ori-test"),
    "cifar10": ("ori-test",),
    "cifar100": ("x-valid", "x-test", "ori-test"),
    "ImageNet16-120": ("x-valid", "x-test", "ori-test"),
}
DATASET_OFFSET = {"cifar10-valid": 0.0, "cifar10": 10.0, "cifar100": 20.0, "ImageNet16-120": 30.0}
SET_OFFSET = {"x-valid": 0.1, "x-test": 0.2, "ori-test": 0.3}
SEED_OFFSET = {777: 0.0, 888: 1.0, 999: 2.0}
TRAIN_SECONDS = {"cifar10-valid": 2.0, "cifar10": 3.0, "cifar100": 4.0, "ImageNet16-120": 5.0}
EVAL_SECONDS = 0.5


def accuracy(variant, dataset, setname, seed, epoch, epochs):
    last = 5.0 if epoch == epochs - 1 else 0.0
    return 30.0 + variant + DATASET_OFFSET[dataset] + SET_OFFSET[setname] + SEED_OFFSET[seed] + last


def expected(variant, dataset, epochs, seeds):
    """(val, test, cost) the NB201 convention gives for a file built by ``arch_results``."""
    mean_seed = np.mean([SEED_OFFSET[s] for s in seeds])
    if dataset == "cifar10":
        val = 30 + variant + DATASET_OFFSET["cifar10-valid"] + SET_OFFSET["x-valid"] + mean_seed + 5
        test = 30 + variant + DATASET_OFFSET["cifar10"] + SET_OFFSET["ori-test"] + mean_seed + 5
        train = TRAIN_SECONDS["cifar10-valid"]
    else:
        val = 30 + variant + DATASET_OFFSET[dataset] + SET_OFFSET["x-valid"] + mean_seed + 5
        test = 30 + variant + DATASET_OFFSET[dataset] + SET_OFFSET["x-test"] + mean_seed + 5
        train = TRAIN_SECONDS[dataset]
    return val, test, train * epochs + EVAL_SECONDS


def arch_results(module, api_index, arch_str, variant, epochs, datasets, seeds):
    """An ArchResults state dict built with ``module``'s own classes."""
    result = module.ArchResults(api_index, arch_str)
    for dataset in datasets:
        for seed in seeds:
            config = {
                "name": "infer.tiny",
                "channel": 16,
                "num_cells": 5,
                "arch_str": arch_str,
                "class_num": 10,
            }
            run = module.ResultsCount(dataset, None, None, None, 0.5, 50.0, config, seed, epochs, [0.01])
            run.update_train_info(
                {e: 50.0 for e in range(epochs)},
                None,
                {e: 1.0 for e in range(epochs)},
                {e: TRAIN_SECONDS[dataset] for e in range(epochs)},
            )
            keys = [f"{s}@{e}" for s in EVAL_SETS[dataset] for e in range(epochs)]
            accs = {
                k: accuracy(variant, dataset, k.split("@")[0], seed, int(k.split("@")[1]), epochs)
                for k in keys
            }
            run.update_eval(accs, {k: 1.0 for k in keys}, {k: EVAL_SECONDS for k in keys})
            result.update(dataset, seed, run)
    return result.state_dict()


@pytest.fixture(scope="module")
def shuffled_archs():
    archs = list(all_architectures())
    random.Random(201).shuffle(archs)
    return [a.to_string() for a in archs]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(official.FORCE_ENV, raising=False)


# -- partial files: each architecture through the real API, one at a time ----------------------


SEEDS = {"12": (777,), "200": (777, 888, 999)}
SUBSET = 5  # the partial files below hold results for the first five listed architectures


@pytest.fixture(scope="module")
def nats_directory(tmp_path_factory, shuffled_archs):
    """A fast-mode directory whose meta lists all archs but which holds files for the first five only."""
    root = tmp_path_factory.mktemp("NATS-tss-v1_0-3ffb9-simple")
    api_utils = nats_bench.api_utils
    api_utils.pickle_save({"meta_archs": shuffled_archs}, str(root / "meta.pickle"))
    for api_index in range(SUBSET):
        state = {
            hp: arch_results(
                api_utils, api_index, shuffled_archs[api_index], api_index, int(hp), EVAL_SETS, SEEDS[hp]
            )
            for hp in ("12", "200")
        }
        api_utils.pickle_save(state, str(root / f"{api_index:06d}.pickle"))
    return root


@pytest.fixture(scope="module")
def nb201_partial(tmp_path_factory, shuffled_archs):
    """An NB201 .pth in nas_201_api's format ('less' = 12 epochs, 'full' = 200) for the first five archs."""
    infos = {
        api_index: {
            key: arch_results(
                nas_201_api, api_index, shuffled_archs[api_index], api_index, int(hp), EVAL_SETS, SEEDS[hp]
            )
            for key, hp in (("less", "12"), ("full", "200"))
        }
        for api_index in range(SUBSET)
    }
    path = tmp_path_factory.mktemp("nb201") / "NAS-Bench-201-v1_1-096897.pth"
    torch.save({"meta_archs": shuffled_archs, "arch2infos": infos, "evaluated_indexes": set(infos)}, path)
    return path


@pytest.mark.parametrize("kind, module_name", [("nats", "nats_bench"), ("nb201", "nas_201_api")])
def test_each_architecture_is_read_alone_with_the_nb201_splits(
    kind, module_name, nats_directory, nb201_partial, shuffled_archs, monkeypatch
):
    path, module = (nats_directory, nats_bench) if kind == "nats" else (nb201_partial, nas_201_api)
    apis = []
    factory = "create" if kind == "nats" else "NASBench201API"
    original = getattr(module, factory)
    monkeypatch.setattr(module, factory, lambda *a, **k: apis.append(original(*a, **k)) or apis[-1])
    records = iter_official_results(kind, path)
    for api_index in range(SUBSET):
        arch, values = next(records)
        assert arch == parse_architecture(shuffled_archs[api_index])
        # only the current architecture is held; the previous one was released
        assert list(apis[0].arch2infos_dict) == [api_index]
        for dataset in official.DATASETS:
            for epochs in (12, 200):
                val, test, cost = expected(api_index, dataset, epochs, SEEDS[str(epochs)])
                assert values[column_name(dataset, epochs, "val_accuracy")] == pytest.approx(val)
                assert values[column_name(dataset, epochs, "test_accuracy")] == pytest.approx(test)
                assert values[column_name(dataset, epochs, "cost_seconds")] == pytest.approx(cost)
    with pytest.raises(DataFileError, match=f"incomplete: no results for architecture {SUBSET}"):
        next(records)


def test_incomplete_directory_is_refused_with_one_line(nats_directory):
    with pytest.raises(DataFileError) as info:
        load_official_benchmark("nats", nats_directory)
    assert "\n" not in str(info.value) and "incomplete" in str(info.value)


def test_directory_without_meta_is_refused(tmp_path):
    (tmp_path / "000000.pickle.pbz2").write_bytes(b"")
    with pytest.raises(DataFileError, match="meta.pickle.pbz2"):
        load_official_benchmark("nats", tmp_path)


def test_corrupt_meta_is_refused(tmp_path):
    (tmp_path / "meta.pickle.pbz2").write_bytes(b"not bz2 at all")
    with pytest.raises(DataFileError, match="corrupt"):
        load_official_benchmark("nats", tmp_path)


# -- a complete file (the single-file NATS pickle), end to end ---------------------------------

VARIANTS = 25  # distinct result sets, shared by architectures (pickle stores each once)


@pytest.fixture(scope="module")
def nats_pickle(tmp_path_factory, shuffled_archs):
    """A complete NATS-tss single file (12-epoch CIFAR-10 runs only, to stay small and fast)."""
    api_utils = nats_bench.api_utils
    datasets = ("cifar10-valid", "cifar10")
    states = [
        {"12": arch_results(api_utils, v, shuffled_archs[v], v, 12, datasets, (777,))}
        for v in range(VARIANTS)
    ]
    data = {
        "meta_archs": shuffled_archs,
        "arch2infos": {i: states[i % VARIANTS] for i in range(NUM_ARCHITECTURES)},
        "evaluated_indexes": list(range(NUM_ARCHITECTURES)),
    }
    stem = tmp_path_factory.mktemp("nats") / "NATS-tss-v1_0-3ffb9"
    api_utils.pickle_save(data, str(stem) + ".pickle")
    return stem.with_name(stem.name + ".pickle.pbz2")


@pytest.fixture(scope="module")
def converted(tmp_path_factory, nats_pickle):
    """Convert the complete file once into a module-wide cache."""
    cache = tmp_path_factory.mktemp("converted")
    old = os.environ.get("NAS_HARNESS_CACHE")
    os.environ["NAS_HARNESS_CACHE"] = str(cache)
    try:
        load_official_tables("nats", nats_pickle)
    finally:
        if old is None:
            del os.environ["NAS_HARNESS_CACHE"]
        else:
            os.environ["NAS_HARNESS_CACHE"] = old
    return cache


def test_complete_file_becomes_a_tabular_benchmark(converted, nats_pickle, shuffled_archs, monkeypatch):
    monkeypatch.setenv("NAS_HARNESS_CACHE", str(converted))
    bench = load_official_benchmark("nats", nats_pickle, dataset="CIFAR10", epochs=12)
    assert bench.name == "nats-cifar10-12"
    assert "cifar10-valid" in bench.reward_metric and "ori-test" in bench.report_metric
    for api_index in (0, 1, 24, 25, 9_999, NUM_ARCHITECTURES - 1):
        arch = parse_architecture(shuffled_archs[api_index])
        val, test, cost = expected(api_index % VARIANTS, "cifar10", 12, (777,))
        result = bench.query(arch)
        assert result.val_accuracy == pytest.approx(val)
        assert result.test_accuracy == pytest.approx(test)
        assert result.cost_seconds == pytest.approx(cost)


@pytest.mark.parametrize("dataset, epochs", [("cifar10", 200), ("cifar100", 12)])
def test_schedule_or_dataset_missing_from_the_file_is_named(
    dataset, epochs, converted, nats_pickle, monkeypatch
):
    monkeypatch.setenv("NAS_HARNESS_CACHE", str(converted))
    with pytest.raises(DataFileError, match=f"no {epochs}-epoch results for {dataset}"):
        load_official_benchmark("nats", nats_pickle, dataset=dataset, epochs=epochs)


def test_cache_is_used_without_the_package_and_keyed_by_mtime(converted, nats_pickle, monkeypatch):
    monkeypatch.setenv("NAS_HARNESS_CACHE", str(converted))
    assert official_cache_path("nats", nats_pickle).is_file()
    monkeypatch.setitem(sys.modules, "nats_bench", None)  # the package is no longer importable

    def no_conversion(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    convert = official.convert_official
    monkeypatch.setattr(official, "convert_official", no_conversion)
    first = load_official_benchmark("nats", nats_pickle, epochs=12)
    assert np.isfinite(first.val_accuracy).all()
    monkeypatch.setattr(official, "convert_official", convert)
    stat = nats_pickle.stat()
    os.utime(nats_pickle, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    try:
        with pytest.raises(DataFileError, match="pip install nats_bench"):
            load_official_benchmark("nats", nats_pickle, epochs=12)
    finally:
        os.utime(nats_pickle, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_memory_guard_refuses_a_pth_too_big_for_this_machine(nb201_partial, monkeypatch):
    monkeypatch.setattr(official, "_available_memory", lambda: 1024)
    with pytest.raises(DataFileError, match=f"free memory.*{official.FORCE_ENV}=1"):
        load_official_benchmark("nb201", nb201_partial, epochs=12)
    monkeypatch.setenv(official.FORCE_ENV, "1")

    class GuardPassed(Exception):
        pass

    def stop(*args, **kwargs):
        raise GuardPassed

    monkeypatch.setattr(official, "_checked_dict", stop)
    with pytest.raises(GuardPassed):
        load_official_benchmark("nb201", nb201_partial, epochs=12)


# -- user mistakes -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["nb201", "nats"])
def test_missing_path_says_what_is_expected(kind, tmp_path):
    with pytest.raises(DataFileError) as info:
        load_official_benchmark(kind, tmp_path / "nowhere.pth")
    assert EXPECTED in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "kind, module, command",
    [("nats", "nats_bench", "pip install nats_bench"), ("nb201", "nas_201_api", "pip install nas-bench-201")],
)
def test_missing_package_says_how_to_install(kind, module, command, tmp_path, monkeypatch):
    path = tmp_path / ("x.pickle.pbz2" if kind == "nats" else "x.pth")
    path.write_bytes(b"whatever")
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(DataFileError, match=command):
        load_official_benchmark(kind, path)


@pytest.mark.parametrize("kind, name", [("nats", "x.pickle.pbz2"), ("nb201", "x.pth")])
def test_corrupt_file_is_refused(kind, name, tmp_path):
    path = tmp_path / name
    path.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(DataFileError, match="corrupt") as info:
        load_official_benchmark(kind, path)
    assert "\n" not in str(info.value)


def test_kind_and_path_must_agree(tmp_path):
    with pytest.raises(DataFileError, match="is a directory"):
        load_official_benchmark("nb201", tmp_path)
    pth = tmp_path / "NAS-Bench-201-v1_0-e61699.pth"
    pth.write_bytes(b"")
    with pytest.raises(DataFileError, match="nb201:"):
        load_official_benchmark("nats", pth)


def test_bad_arguments_are_user_errors(tmp_path):
    with pytest.raises(UnknownNameError):
        load_official_benchmark("nb301", tmp_path)
    with pytest.raises(UnknownNameError, match="ImageNet16-120"):
        load_official_benchmark("nats", tmp_path, dataset="imagenet")
    with pytest.raises(UserError, match="12 or 200"):
        load_official_benchmark("nats", tmp_path, epochs=108)
