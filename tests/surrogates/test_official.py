"""The official-file loaders, run through the real nats_bench / nas_201_api code on small files.

The files are written in each package's own format with its own classes (``ArchResults``,
``ResultsCount``, ``pickle_save`` / ``torch.save``). Every accuracy encodes where it comes
from (dataset, evaluation set, seed, schedule, last epoch or not) in its own decimal place,
so a wrong split, epoch, schedule or seed shows up as a wrong number; every training time
depends on dataset and seed, so a wrong cost does too. Architectures are listed in a
shuffled order, so the mapping from the file's strings to our indices (and NB201's own
index) is exercised too. Runs of the "200-epoch" schedule record 3 epochs here (the API
reads a run's last epoch whatever its length), which keeps converting 15,625 cells fast.

Layouts: a partial file (five cells, every split, including a cell whose seeds mix timed
and untimed runs, one with no timed run and one laid out like NAS-Bench-201-v1_0, whose
12-epoch runs are on ``cifar10-valid`` only) and complete v1_0-like files, converted once.
"""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.errors import DataFileError, UnknownNameError, UserError
from harness.search.run import check_time_budget, run_search
from harness.space import NUM_ARCHITECTURES, all_architectures, parse_architecture
from surrogates import official
from surrogates.official import (
    EXPECTED,
    column_name,
    iter_official_results,
    load_official_benchmark,
    load_official_spec,
    load_official_tables,
    official_cache_path,
    parse_official_spec,
)

nats_bench = pytest.importorskip("nats_bench")
nas_201_api = pytest.importorskip("nas_201_api")
torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
SPLITS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
EVAL_SETS = {
    "cifar10-valid": ("x-valid", "ori-test"),
    "cifar10": ("ori-test",),
    "cifar100": ("x-valid", "x-test", "ori-test"),
    "ImageNet16-120": ("x-valid", "x-test", "ori-test"),
}
DATASET_OFFSET = {"cifar10-valid": 0.0, "cifar10": 0.2, "cifar100": 0.4, "ImageNet16-120": 0.6}
HP_OFFSET = {"12": 0.0, "200": 0.1}
SET_OFFSET = {"x-valid": 0.01, "x-test": 0.02, "ori-test": 0.03}
SEED_OFFSET = {777: 0.0, 888: 0.002, 999: 0.007}
LAST_EPOCH = 50.0
TRAIN_SECONDS = {"cifar10-valid": 2.0, "cifar10": 3.0, "cifar100": 4.0, "ImageNet16-120": 5.0}
SEED_SECONDS = {777: 0.0, 888: 0.25, 999: 0.5}
EVAL_SECONDS = 0.5
LENGTH = {"12": 12, "200": 3}  # epochs recorded per run
#: The split each dataset's reward and report come from, and the set the report reads.
REWARD = {"cifar10": "cifar10-valid", "cifar100": "cifar100", "ImageNet16-120": "ImageNet16-120"}
REPORT = {"cifar10": ("cifar10", "ori-test"), "cifar100": ("cifar100", "x-test"),
          "ImageNet16-120": ("ImageNet16-120", "x-test")}


def accuracy(variant, split, setname, seed, hp, last=True):
    return (10.0 + variant + DATASET_OFFSET[split] + HP_OFFSET[hp] + SET_OFFSET[setname] + SEED_OFFSET[seed]
            + (LAST_EPOCH if last else 0.0))


def cost(split, seed, hp):
    """What simulate_train_eval charges for one seed's run: all training epochs plus one evaluation."""
    return LENGTH[hp] * (TRAIN_SECONDS[split] + SEED_SECONDS[seed]) + EVAL_SECONDS


def results_count(module, arch_str, variant, split, seed, hp, timed):
    """One trained run, with ``module``'s own ResultsCount; untimed runs have the old format of some v1_0 runs."""
    epochs = LENGTH[hp]
    config = {"name": "infer.tiny", "channel": 16, "num_cells": 5, "arch_str": arch_str, "class_num": 10}
    train_accs, train_losses = {e: 50.0 for e in range(epochs)}, {e: 1.0 for e in range(epochs)}
    run = module.ResultsCount(split, None, train_accs, train_losses, 0.5, 50.0, config, seed, epochs, [0.01])
    accs = {f"{s}@{e}": accuracy(variant, split, s, seed, hp, e == epochs - 1)
            for s in EVAL_SETS[split] for e in range(epochs)}
    if timed:
        run.update_train_info(train_accs, None, train_losses,
                              {e: TRAIN_SECONDS[split] + SEED_SECONDS[seed] for e in range(epochs)})
        run.update_eval(accs, {k: 1.0 for k in accs}, {k: EVAL_SECONDS for k in accs})
    else:  # no train_times, no eval_times
        for name in EVAL_SETS[split]:
            run.update_OLD_eval(name, {e: accs[f"{name}@{e}"] for e in range(epochs)}, dict(train_losses))
    return run


def arch_results(module, api_index, arch_str, variant, hp, runs):
    """An ArchResults state dict; ``runs`` maps a split to its (seed, timed) runs."""
    result = module.ArchResults(api_index, arch_str)
    for split, seeds in runs.items():
        for seed, timed in seeds:
            result.update(split, seed, results_count(module, arch_str, variant, split, seed, hp, timed))
    return result.state_dict()


def expected(variant, runs, hp, dataset):
    """(val per seed, cost per seed, test per seed) that the NB201 convention reads from ``runs[hp]``."""
    reward = runs[hp].get(REWARD[dataset], [])
    report_split, report_set = REPORT[dataset]
    val = [accuracy(variant, REWARD[dataset], "x-valid", s, hp) for s, _ in reward]
    costs = [cost(REWARD[dataset], s, hp) if timed else np.nan for s, timed in reward]
    test = [accuracy(variant, report_split, report_set, s, hp) for s, _ in runs[hp].get(report_split, [])]
    return np.array(val), np.array(costs), np.array(test)


def seeds(*numbers, timed=True):
    return [(n, timed) for n in numbers]


#: Every split on both schedules, every run timed.
FULL = {
    "12": {"cifar10-valid": seeds(777, 888), "cifar10": seeds(777), "cifar100": seeds(777),
           "ImageNet16-120": seeds(777)},
    "200": {split: seeds(777, 888, 999) for split in SPLITS},
}
#: Seed 888's 12-epoch cifar10-valid run has no timing (the API's own mean over seeds raises TypeError).
MIXED = {"12": {**FULL["12"], "cifar10-valid": [(777, True), (888, False)]}, "200": FULL["200"]}
#: No 12-epoch cifar10-valid run has timing: the cost is unknown.
UNTIMED = {"12": {**FULL["12"], "cifar10-valid": seeds(777, 888, timed=False)}, "200": FULL["200"]}
#: NAS-Bench-201-v1_0: 12-epoch runs on cifar10-valid only.
V1_0 = {"12": {"cifar10-valid": seeds(777, 888)}, "200": FULL["200"]}
PARTIAL = [FULL, MIXED, UNTIMED, V1_0, FULL]


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


@pytest.fixture(scope="module")
def nats_directory(tmp_path_factory, shuffled_archs):
    """A fast-mode directory whose meta lists all archs but which holds files for the first five only."""
    root = tmp_path_factory.mktemp("NATS-tss-v1_0-3ffb9-simple")
    api_utils = nats_bench.api_utils
    api_utils.pickle_save({"meta_archs": shuffled_archs}, str(root / "meta.pickle"))
    for api_index, runs in enumerate(PARTIAL):
        state = {hp: arch_results(api_utils, api_index, shuffled_archs[api_index], api_index, hp, runs[hp])
                 for hp in ("12", "200")}
        api_utils.pickle_save(state, str(root / f"{api_index:06d}.pickle"))
    return root


@pytest.fixture(scope="module")
def nb201_partial(tmp_path_factory, shuffled_archs):
    """An NB201 .pth in nas_201_api's format ('less' = 12 epochs, 'full' = 200) for the first five archs."""
    infos = {
        api_index: {key: arch_results(nas_201_api, api_index, shuffled_archs[api_index], api_index, hp, runs[hp])
                    for key, hp in (("less", "12"), ("full", "200"))}
        for api_index, runs in enumerate(PARTIAL)
    }
    path = tmp_path_factory.mktemp("nb201") / "NAS-Bench-201-v1_1-096897.pth"
    torch.save({"meta_archs": shuffled_archs, "arch2infos": infos, "evaluated_indexes": set(infos)}, path)
    return path, infos


@pytest.mark.parametrize("kind, module_name", [("nats", "nats_bench"), ("nb201", "nas_201_api")])
def test_each_architecture_is_read_alone_seed_by_seed_with_the_nb201_splits(
    kind, module_name, nats_directory, nb201_partial, shuffled_archs, monkeypatch
):
    path, module = (nats_directory, nats_bench) if kind == "nats" else (nb201_partial[0], nas_201_api)
    apis = []
    factory = "create" if kind == "nats" else "NASBench201API"
    original = getattr(module, factory)
    monkeypatch.setattr(module, factory, lambda *a, **k: apis.append(original(*a, **k)) or apis[-1])
    records = iter_official_results(kind, path)
    for api_index, runs in enumerate(PARTIAL):
        arch, nb201_index, values = next(records)
        assert arch == parse_architecture(shuffled_archs[api_index]) and nb201_index == api_index
        # only the current architecture is held; the previous one was released
        assert list(apis[0].arch2infos_dict) == [api_index]
        for dataset in official.DATASETS:
            for epochs in (12, 200):
                val, costs, test = expected(api_index, runs, str(epochs), dataset)
                np.testing.assert_allclose(values[column_name(dataset, epochs, "val_seeds")], val)
                np.testing.assert_allclose(values[column_name(dataset, epochs, "cost_seeds")], costs)
                np.testing.assert_allclose(values[column_name(dataset, epochs, "test_seeds")], test)
    with pytest.raises(DataFileError, match=f"incomplete: no results for architecture {len(PARTIAL)}"):
        next(records)


def test_the_api_own_mean_over_mixed_timed_and_untimed_seeds_raises_type_error(nb201_partial, shuffled_archs):
    """Why values are read one seed at a time: is_random=False averages None with numbers."""
    _, infos = nb201_partial
    api = nas_201_api.NASBench201API(
        {"meta_archs": shuffled_archs, "arch2infos": {1: infos[1]}, "evaluated_indexes": {1}}, verbose=False)
    with pytest.raises(TypeError):
        api.get_more_info(1, "cifar10-valid", hp="12", is_random=False)
    for seed in (777, 888):  # each seed alone is fine; 888 simply has no timing
        info = api.get_more_info(1, "cifar10-valid", hp="12", is_random=seed)
        assert info["valid-accuracy"] == pytest.approx(accuracy(1, "cifar10-valid", "x-valid", seed, "12"))
        assert (info["train-all-time"] is None) == (seed == 888)


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


# -- complete files: NB201 v1_0-like .pth and NATS single file, each converted once -------------

VARIANTS = 25  # distinct result sets, shared by architectures (pickle stores each once)


def complete_runs(variant):
    """The complete .pth's runs of a variant: NAS-Bench-201-v1_0's layout (12-epoch runs on cifar10-valid
    only; one seed on cifar100 and ImageNet16-120); variant 1 mixes a timed and an untimed 12-epoch seed,
    variant 2 has no timed 200-epoch run."""
    runs = {"12": {"cifar10-valid": seeds(777, 888)},
            "200": {"cifar10-valid": seeds(777, 888, 999), "cifar10": seeds(777, 888, 999),
                    "cifar100": seeds(777), "ImageNet16-120": seeds(777)}}
    if variant == 1:
        runs["12"]["cifar10-valid"] = [(777, True), (888, False)]
    if variant == 2:
        runs["200"] = {split: [(seed, False) for seed, _ in done] for split, done in runs["200"].items()}
    return runs


@pytest.fixture(scope="module")
def complete_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("converted")


@pytest.fixture(scope="module")
def nb201_complete(tmp_path_factory, shuffled_archs, complete_cache):
    """A complete NAS-Bench-201-v1_0-like .pth, converted once into ``complete_cache``."""
    states = [{key: arch_results(nas_201_api, v, shuffled_archs[v], v, hp, complete_runs(v)[hp])
               for key, hp in (("less", "12"), ("full", "200"))} for v in range(VARIANTS)]
    data = {"meta_archs": shuffled_archs, "arch2infos": {i: states[i % VARIANTS] for i in range(NUM_ARCHITECTURES)},
            "evaluated_indexes": set(range(NUM_ARCHITECTURES))}
    path = tmp_path_factory.mktemp("nb201-complete") / "NAS-Bench-201-v1_0-e61699.pth"
    torch.save(data, path)
    with_cache(complete_cache, lambda: load_official_tables("nb201", path))
    return path


def with_cache(cache, action):
    old = os.environ.get("NAS_HARNESS_CACHE")
    os.environ["NAS_HARNESS_CACHE"] = str(cache)
    try:
        return action()
    finally:
        if old is None:
            del os.environ["NAS_HARNESS_CACHE"]
        else:
            os.environ["NAS_HARNESS_CACHE"] = old


SAMPLE = (0, 1, 2, 3, 24, 25, 26, 27, 9_999, NUM_ARCHITECTURES - 1)


def test_reward_and_report_epochs_are_chosen_separately(nb201_complete, complete_cache, shuffled_archs, monkeypatch):
    monkeypatch.setenv("NAS_HARNESS_CACHE", str(complete_cache))
    bench = load_official_benchmark("nb201", nb201_complete, reward_epochs=12, report_epochs=200)
    assert bench.name == "nb201-cifar10-12-200"
    for api_index in SAMPLE:
        variant = api_index % VARIANTS
        arch = parse_architecture(shuffled_archs[api_index])
        val, costs, _ = expected(variant, complete_runs(variant), "12", "cifar10")
        _, _, test = expected(variant, complete_runs(variant), "200", "cifar10")
        result = bench.query(arch)
        assert result.val_accuracy == pytest.approx(val.mean())  # 12-epoch cifar10-valid, mean over 2 seeds
        assert result.test_accuracy == pytest.approx(test.mean())  # 200-epoch cifar10, mean over 3 seeds
        # the cost of the 12 reward epochs; variant 1: the one timed seed's (the other has no timing)
        assert result.cost_seconds == pytest.approx(np.nanmean(costs))
    assert "after 12 epochs" in bench.reward_metric and "'cifar10-valid'" in bench.reward_metric
    assert "mean over its trained seeds (2 per architecture" in bench.reward_metric
    assert "after 200 epochs" in bench.report_metric and "3 per architecture" in bench.report_metric
    assert "12 training epochs on 'cifar10-valid'" in bench.cost_metric
    for text in (bench.reward_metric, bench.report_metric, bench.cost_metric):
        assert nb201_complete.name in text
    check_time_budget(bench, 12_000)  # every architecture has a 12-epoch timing


def test_v1_0_lacks_12_epoch_runs_except_on_cifar10_valid_and_says_so(nb201_complete, complete_cache, monkeypatch):
    monkeypatch.setenv("NAS_HARNESS_CACHE", str(complete_cache))
    for kwargs, fragment in [
        ({"epochs": 12}, "no 12-epoch 'cifar10' runs, which the report of cifar10 needs"),
        ({"dataset": "cifar100", "reward_epochs": 12, "report_epochs": 200}, "no 12-epoch 'cifar100' runs"),
    ]:
        with pytest.raises(DataFileError, match=fragment) as info:
            load_official_benchmark("nb201", nb201_complete, **kwargs)
        assert "v1_0 trained 12-epoch models on 'cifar10-valid' only" in str(info.value)
        assert "\n" not in str(info.value)


def test_architectures_without_timing_have_unknown_cost_and_refuse_a_time_budget(
    nb201_complete, complete_cache, shuffled_archs, monkeypatch
):
    monkeypatch.setenv("NAS_HARNESS_CACHE", str(complete_cache))
    bench = load_official_benchmark("nb201", nb201_complete, dataset="ImageNet16-120")  # 200 epochs
    untimed = parse_architecture(shuffled_archs[2])
    assert np.isnan(bench.query(untimed).cost_seconds)
    assert bench.query(untimed).val_accuracy == pytest.approx(accuracy(2, "ImageNet16-120", "x-valid", 777, "200"))
    assert np.isfinite(bench.query(parse_architecture(shuffled_archs[0])).cost_seconds)
    assert f"{NUM_ARCHITECTURES // VARIANTS} architectures have no timing at all" in bench.cost_metric
    with pytest.raises(UserError, match=f"no training time for {NUM_ARCHITECTURES // VARIANTS} architectures"):
        check_time_budget(bench, 12_000)


def test_one_trained_seed_is_drawn_per_query_from_the_run_seed(nb201_complete, complete_cache, shuffled_archs,
                                                                monkeypatch):
    monkeypatch.setenv("NAS_HARNESS_CACHE", str(complete_cache))
    bench = load_official_benchmark("nb201", nb201_complete, reward_epochs=12, report_epochs=200, seeds="random")
    assert bench.name == "nb201-cifar10-12-200-random" and "drawn at random per query" in bench.reward_metric
    mean = load_official_benchmark("nb201", nb201_complete, reward_epochs=12, report_epochs=200)
    assert mean.for_run(3) is mean
    archs = [parse_architecture(shuffled_archs[i]) for i in (0, 1)]

    def draws(run_seed):
        run = bench.for_run(run_seed)
        return [run.query(arch) for _ in range(40) for arch in archs]

    first, again, other = draws(3), draws(3), draws(4)
    assert first == again and first != other
    for variant, results in ((0, first[0::2]), (1, first[1::2])):
        val, costs, _ = expected(variant, complete_runs(variant), "12", "cifar10")
        pairs = {round(v, 6): c for v, c in zip(val, costs, strict=True)}
        drawn = {round(r.val_accuracy, 6) for r in results}
        assert drawn == set(pairs)  # both trained seeds are drawn, nothing else
        for r in results:
            paired = pairs[round(r.val_accuracy, 6)]
            # the drawn seed's own time; seed 888 of variant 1 has none: the architecture's timed mean
            assert r.cost_seconds == pytest.approx(paired if np.isfinite(paired) else np.nanmean(costs))
            assert r.test_accuracy == pytest.approx(mean.test_accuracy[archs[variant].index])


def test_runs_draw_by_their_seed_whatever_else_ran(nb201_complete, complete_cache, monkeypatch):
    from harness.search.searcher import get_searcher

    RandomSearch = get_searcher("random_search")
    monkeypatch.setenv("NAS_HARNESS_CACHE", str(complete_cache))
    bench = load_official_benchmark("nb201", nb201_complete, reward_epochs=12, report_epochs=200, seeds="random")
    first = run_search(RandomSearch(seed=5), bench, 30)
    run_search(RandomSearch(seed=6), bench, 30)  # another run in between draws from its own generator
    again = run_search(RandomSearch(seed=5), bench, 30)
    strip = lambda record: [(r.arch, r.val_accuracy, r.cost_seconds) for r in record.rows]  # noqa: E731
    assert strip(first) == strip(again)


def test_official_index_is_nb201s_own(nb201_complete, complete_cache, shuffled_archs, monkeypatch):
    monkeypatch.setenv("NAS_HARNESS_CACHE", str(complete_cache))
    bench = load_official_benchmark("nb201", nb201_complete, reward_epochs=12, report_epochs=200)
    differ = 0
    for api_index in SAMPLE:
        arch = parse_architecture(shuffled_archs[api_index])
        assert bench.official_index(arch) == api_index
        differ += arch.index != api_index
    assert differ >= len(SAMPLE) - 1
    assert sorted(bench.official_indices.tolist()) == list(range(NUM_ARCHITECTURES))


@pytest.fixture(scope="module")
def nats_pickle(tmp_path_factory, shuffled_archs):
    """A complete NATS-tss single file (12-epoch CIFAR-10 runs only, to stay small and fast)."""
    api_utils = nats_bench.api_utils
    runs = {"cifar10-valid": seeds(777), "cifar10": seeds(777)}
    states = [{"12": arch_results(api_utils, v, shuffled_archs[v], v, "12", runs)} for v in range(VARIANTS)]
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
    """Convert the complete NATS file once into a module-wide cache."""
    cache = tmp_path_factory.mktemp("converted-nats")
    with_cache(cache, lambda: load_official_tables("nats", nats_pickle))
    return cache


def test_complete_nats_file_becomes_a_tabular_benchmark(converted, nats_pickle, shuffled_archs, monkeypatch):
    monkeypatch.setenv("NAS_HARNESS_CACHE", str(converted))
    bench = load_official_benchmark("nats", nats_pickle, dataset="CIFAR10", epochs=12)
    assert bench.name == "nats-cifar10-12"
    assert "cifar10-valid" in bench.reward_metric and "ori-test" in bench.report_metric
    runs = {"12": {"cifar10-valid": seeds(777), "cifar10": seeds(777)}}
    for api_index in SAMPLE:
        arch = parse_architecture(shuffled_archs[api_index])
        val, costs, test = expected(api_index % VARIANTS, runs, "12", "cifar10")
        result = bench.query(arch)
        assert (result.val_accuracy, result.test_accuracy, result.cost_seconds) == pytest.approx(
            (val[0], test[0], costs[0]))
        assert bench.official_index(arch) == api_index


@pytest.mark.parametrize("dataset, epochs", [("cifar10", 200), ("cifar100", 12)])
def test_schedule_or_dataset_missing_from_the_file_is_named(
    dataset, epochs, converted, nats_pickle, monkeypatch
):
    monkeypatch.setenv("NAS_HARNESS_CACHE", str(converted))
    with pytest.raises(DataFileError, match=f"no {epochs}-epoch '{REWARD[dataset]}' runs"):
        load_official_benchmark("nats", nats_pickle, dataset=dataset, epochs=epochs)


def test_cache_is_used_without_the_package_and_keyed_by_mtime(converted, nats_pickle, monkeypatch):
    monkeypatch.setenv("NAS_HARNESS_CACHE", str(converted))
    assert official_cache_path("nats", nats_pickle).is_file()
    assert official.CACHE_VERSION == 2  # per-seed arrays and NB201 indices since version 2
    monkeypatch.setitem(sys.modules, "nats_bench", None)  # the package is no longer importable

    def no_conversion(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    convert = official.convert_official
    monkeypatch.setattr(official, "convert_official", no_conversion)
    first = load_official_benchmark("nats", nats_pickle, epochs=12, seeds="random")
    assert np.isfinite(first.val_accuracy).all() and first.val_seeds.shape == (NUM_ARCHITECTURES, 1)
    monkeypatch.setattr(official, "convert_official", convert)
    stat = nats_pickle.stat()
    os.utime(nats_pickle, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    try:
        with pytest.raises(DataFileError, match="pip install nats_bench"):
            load_official_benchmark("nats", nats_pickle, epochs=12)
    finally:
        os.utime(nats_pickle, ns=(stat.st_atime_ns, stat.st_mtime_ns))


# -- the memory guard ----------------------------------------------------------------------------


class GuardPassed(Exception):
    pass


@pytest.mark.parametrize("kind", ["nb201", "nats"])
def test_memory_guard_refuses_a_single_file_too_big_for_this_machine(kind, nb201_partial, nats_pickle, monkeypatch):
    path = nb201_partial[0] if kind == "nb201" else nats_pickle
    monkeypatch.setattr(official, "_available_memory", lambda: (1024, "MemAvailable in /proc/meminfo"))
    with pytest.raises(DataFileError, match=f"free memory.*{official.FORCE_ENV}=1") as info:
        load_official_tables(kind, path)
    factor = official.MEMORY_FACTOR if kind == "nb201" else official.NATS_PICKLE_MEMORY_FACTOR
    assert f"({factor} x its size" in str(info.value) and "\n" not in str(info.value)
    monkeypatch.setenv(official.FORCE_ENV, "1")

    def stop(*args, **kwargs):
        raise GuardPassed

    monkeypatch.setattr(official, "_checked_dict", stop)
    with pytest.raises(GuardPassed):
        load_official_tables(kind, path)


def fake_files(monkeypatch, files):
    monkeypatch.setattr(official, "_read_text", lambda path: files.get(path))


GIB = 2**30


def test_memory_guard_reads_container_limits(monkeypatch):
    meminfo = f"MemTotal: {64 * GIB // 1024} kB\nMemAvailable: {60 * GIB // 1024} kB\n"
    fake_files(monkeypatch, {official.MEMINFO: meminfo})
    assert official._available_memory() == (60 * GIB, "MemAvailable in /proc/meminfo")
    fake_files(monkeypatch, {official.MEMINFO: meminfo, official.CGROUP_V2_LIMIT: f"{12 * GIB}\n",
                             official.CGROUP_V2_USAGE: f"{2 * GIB}\n"})
    have, where = official._available_memory()
    assert have == 10 * GIB and official.CGROUP_V2_LIMIT in where
    fake_files(monkeypatch, {official.MEMINFO: meminfo, official.CGROUP_V2_LIMIT: "max\n"})
    assert official._available_memory()[0] == 60 * GIB  # no limit
    fake_files(monkeypatch, {official.MEMINFO: meminfo, official.CGROUP_V1_LIMIT: f"{8 * GIB}\n",
                             official.CGROUP_V1_USAGE: f"{1 * GIB}\n"})
    have, where = official._available_memory()
    assert have == 7 * GIB and official.CGROUP_V1_LIMIT in where
    fake_files(monkeypatch, {official.MEMINFO: meminfo, official.CGROUP_V1_LIMIT: "9223372036854771712\n"})
    assert official._available_memory()[0] == 60 * GIB  # v1's "no limit"
    fake_files(monkeypatch, {})
    assert official._available_memory() is None


def test_a_container_limit_below_the_need_refuses_the_file(nb201_partial, monkeypatch):
    path = nb201_partial[0]
    need = path.stat().st_size * official.MEMORY_FACTOR
    fake_files(monkeypatch, {official.MEMINFO: f"MemAvailable: {64 * GIB // 1024} kB\n",
                             official.CGROUP_V2_LIMIT: str(need // 2), official.CGROUP_V2_USAGE: "0"})
    with pytest.raises(DataFileError, match="the container's limit") as info:
        load_official_tables("nb201", path)
    assert "memory.max" in str(info.value)


# -- specs and user mistakes ---------------------------------------------------------------------


def test_spec_options_follow_the_path():
    assert parse_official_spec("nb201", "/d/x.pth") == ("/d/x.pth", {})
    assert parse_official_spec("nb201", "/d/x.pth:dataset=cifar100:reward_epochs=12:seeds=random") == (
        "/d/x.pth", {"dataset": "cifar100", "reward_epochs": "12", "seeds": "random"})
    assert parse_official_spec("nats", "/d/a:b/dir:report_epochs=12") == ("/d/a:b/dir", {"report_epochs": "12"})
    assert parse_official_spec("nats", "/d/key=value/dir") == ("/d/key=value/dir", {})
    for argument, fragment in [
        ("/d/x.pth:epochs=12", "unknown option 'epochs'"),
        ("/d/x.pth:seeds=mean:seeds=random", "option seeds is given twice"),
        ("dataset=cifar100", "needs a path before its options"),
    ]:
        with pytest.raises(UserError, match=fragment) as info:
            parse_official_spec("nb201", argument)
        assert "dataset=cifar10|cifar100|ImageNet16-120" in str(info.value) and "\n" not in str(info.value)


def test_spec_options_reach_the_loader(nb201_complete, complete_cache, monkeypatch):
    monkeypatch.setenv("NAS_HARNESS_CACHE", str(complete_cache))
    bench = load_official_spec("nb201", f"{nb201_complete}:reward_epochs=12:report_epochs=200:seeds=random")
    assert bench.name == "nb201-cifar10-12-200-random"
    with pytest.raises(UnknownNameError, match="unknown dataset 'imagenet'; choose one of"):
        load_official_spec("nb201", f"{nb201_complete}:dataset=imagenet")
    with pytest.raises(UserError, match="reward_epochs must be 12 or 200"):
        load_official_spec("nb201", f"{nb201_complete}:reward_epochs=108")
    with pytest.raises(UserError, match="seeds must be 'mean'"):
        load_official_spec("nb201", f"{nb201_complete}:seeds=all")


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
    with pytest.raises(UserError, match="report_epochs must be 12 or 200"):
        load_official_benchmark("nats", tmp_path, report_epochs=90)
    with pytest.raises(UserError, match="seeds must be"):
        load_official_benchmark("nats", tmp_path, seeds="median")


# -- the documented commands, run as a user runs them ---------------------------------------------


def run_cli(*args, cache):
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "NAS_HARNESS_CACHE": str(cache)})


def test_compare_reproduces_nb201s_protocol_from_the_file(nb201_complete, complete_cache, tmp_path):
    """NB201's protocol: 12-epoch reward of one drawn seed, its simulated time charged against a time
    budget, the 200-epoch test figure reported; identical whatever the worker count."""
    spec = f"nb201:{nb201_complete}:reward_epochs=12:report_epochs=200:seeds=random"
    common = ["compare", "--methods", "random_search", "aging_evolution", "reinforce", "--benchmark", spec,
              "--time-budget", "600", "--seeds", "3", "--no-mlflow", "--no-progress"]
    one = run_cli(*common, "--workers", "1", "--out", str(tmp_path / "one"), cache=complete_cache)
    assert one.returncode == 0, one.stderr
    two = run_cli(*common, "--workers", "2", "--out", str(tmp_path / "two"), cache=complete_cache)
    assert two.returncode == 0, two.stderr
    summary = json.loads((tmp_path / "one" / "summary.json").read_text())
    assert summary["time_budget_seconds"] == 600 and summary["budget"] is None
    assert "not counted and ends the run" in summary["budget_rule"]
    assert "drawn at random per query" in summary["reward_metric"] and "after 200 epochs" in summary["report_metric"]
    assert "12 training epochs" in summary["cost_metric"]
    assert "600 s of simulated training time" in one.stdout
    report = (tmp_path / "one" / "report.md").read_text()
    assert "600 s of simulated training time per run" in report and "drawn at random" in report
    trajectories = (tmp_path / "one" / "trajectories.csv").read_text().splitlines()
    header = trajectories[0].split(",")
    column = header.index("cumulative_cost_seconds")
    dearest = cost("cifar10-valid", 888, "12")
    for method, entry in summary["methods"].items():
        assert entry["n_runs"] == 3, method
        for total, queries in zip(entry["total_cost_seconds"], entry["queries"], strict=True):
            # charged what its queries cost; the next query (at most the dearest seed's cost) would cross
            assert 600 - dearest < total <= 600 and queries >= 600 // dearest
    assert max(float(line.split(",")[column]) for line in trajectories[1:]) <= 600
    rows = lambda p: sorted(line.rsplit(",", 1)[0] for line in (p / "trajectories.csv").read_text().splitlines())  # noqa: E731
    assert rows(tmp_path / "one") == rows(tmp_path / "two")  # elapsed seconds (last column) left out
    again = run_cli(*common, "--workers", "1", "--out", str(tmp_path / "one"), cache=complete_cache)
    assert again.returncode == 0 and "resuming: 9 of 9 runs already finished" in again.stderr, again.stderr
    resumed = json.loads((tmp_path / "one" / "summary.json").read_text())
    for method, entry in summary["methods"].items():  # runs stopped by the time budget are kept as complete
        assert {k: v for k, v in resumed["methods"][method].items() if k != "hyperparameters"} == {
            k: v for k, v in entry.items() if k != "hyperparameters"}


def test_query_shows_nb201s_index_beside_the_projects(nb201_complete, complete_cache, shuffled_archs):
    arch = shuffled_archs[27]  # variant 2: two timed 12-epoch seeds
    done = run_cli("query", arch, "--benchmark", f"nb201:{nb201_complete}:reward_epochs=12:report_epochs=200",
                   cache=complete_cache)
    assert done.returncode == 0, done.stderr
    assert "official index = NB201's own index" in done.stdout
    assert f"index {parse_architecture(arch).index}  official index 27" in done.stdout
    as_json = run_cli("query", arch, "--json", "--benchmark", f"nb201:{nb201_complete}:reward_epochs=12",
                      cache=complete_cache)
    assert as_json.returncode == 0, as_json.stderr
    row = json.loads(as_json.stdout)[0]
    assert row["official_index"] == 27 and row["index"] == parse_architecture(arch).index
    assert row["cost_seconds"] == pytest.approx(np.mean([cost("cifar10-valid", s, "12") for s in (777, 888)]))


def test_documented_command_mistakes_are_one_line_exit_2(nb201_complete, complete_cache, tmp_path):
    file = f"nb201:{nb201_complete}"
    out = ["--no-mlflow", "--no-progress", "--out", str(tmp_path / "out")]
    cases = [
        (["query", "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "--benchmark", f"{file}:epoch=12"],
         "unknown option 'epoch'"),
        (["query", "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "--benchmark",
          f"{file}:dataset=imagenet"], "unknown dataset 'imagenet'"),
        (["compare", "--methods", "random_search", "--time-budget", "1000", *out], "charges none"),
        (["compare", "--methods", "random_search", "--benchmark", f"{file}:epochs=12", *out],
         "unknown option 'epochs'"),
        (["compare", "--methods", "random_search", "--benchmark", f"{file}:report_epochs=12", *out],
         "no 12-epoch 'cifar10' runs"),
        (["compare", "--methods", "random_search", "--benchmark", f"{file}:dataset=ImageNet16-120",
          "--time-budget", "1000", *out], "no training time for 625 architectures"),
        (["compare", "--methods", "random_search", "--time-budget", "0", *out], "expected a positive number"),
    ]
    for args, fragment in cases:
        done = run_cli(*args, cache=complete_cache)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, (args, done.stderr)
        assert fragment in lines[0], (fragment, lines[0])
    assert not (tmp_path / "out" / "trajectories.csv").exists()  # refused before any run
