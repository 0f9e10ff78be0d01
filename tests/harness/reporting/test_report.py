import csv
import json
import time

import numpy as np
import pytest

from harness.reporting.plots import incumbent_curves, write_plots
from harness.reporting.report import (
    TRAJECTORY_COLUMNS,
    ReportMetadata,
    TrajectoryWriter,
    append_trajectories_csv,
    build_summary,
    format_table,
    read_trajectories_csv,
    write_report,
    write_trajectories_csv,
)
from harness.search.benchmark import TabularBenchmark
from harness.search.run import RunRecord, TrajectoryRow, run_search
from harness.search.searcher import Searcher
from harness.space import NUM_ARCHITECTURES, Architecture

BUDGET = 25
SEEDS = (3, 0, 2, 1)  # deliberately out of order


def make_benchmark(same_figure: bool = False) -> TabularBenchmark:
    """Deterministic table: a fixed permutation of 80..95 as test, a perturbed copy as validation."""
    index = np.arange(NUM_ARCHITECTURES)
    test = 80.0 + 15.0 * ((index * 7919) % NUM_ARCHITECTURES) / NUM_ARCHITECTURES
    if same_figure:
        return TabularBenchmark("toy-same", test, test, "toy accuracy", "toy accuracy")
    val = test + ((index * 104_729) % 100) / 100.0 - 0.5
    return TabularBenchmark("toy", val, test, "toy validation accuracy", "toy test accuracy")


class UniformSearcher(Searcher):
    name = "uniform"

    def _ask(self) -> Architecture:
        return Architecture.from_index(int(self.rng.integers(NUM_ARCHITECTURES)))


class PrefixSearcher(Searcher):
    """A weaker method: samples only among the first ``pool`` cells."""

    name = "prefix"

    def __init__(self, seed: int = 0, pool: int = 300) -> None:
        super().__init__(seed)
        self.pool = pool

    def hyperparameters(self):
        return {"pool": self.pool}

    def _ask(self) -> Architecture:
        return Architecture.from_index(int(self.rng.integers(self.pool)))


def make_records(benchmark: TabularBenchmark) -> list[RunRecord]:
    return [
        run_search(cls(seed=seed), benchmark, BUDGET)
        for cls in (UniformSearcher, PrefixSearcher)
        for seed in SEEDS
    ]


@pytest.fixture(scope="module")
def benchmark():
    return make_benchmark()


@pytest.fixture(scope="module")
def records(benchmark):
    return make_records(benchmark)


@pytest.fixture(scope="module")
def metadata(benchmark):
    return ReportMetadata.from_benchmark(benchmark, BUDGET, target=94.0)


def test_metadata_from_benchmark(benchmark, metadata):
    assert metadata.optimum == pytest.approx(benchmark.test_accuracy.max())
    assert metadata.reward_is_report_metric is False
    same = ReportMetadata.from_benchmark(make_benchmark(same_figure=True), BUDGET)
    assert same.reward_is_report_metric is True
    # Same numbers under different names still count as the same figure.
    table = make_benchmark(same_figure=True)
    table.report_metric = "renamed"
    assert ReportMetadata.from_benchmark(table, BUDGET).reward_is_report_metric is True
    assert ReportMetadata("b", "r", "r", 10).reward_is_report_metric is True


def test_summary_per_method_statistics(records, metadata):
    summary = build_summary(records, metadata, n_boot=500)
    assert summary["reward_metric"] == "toy validation accuracy"
    assert summary["report_metric"] == "toy test accuracy"
    assert summary["reward_is_report_metric"] is False
    assert list(summary["methods"]) == ["uniform", "prefix"]
    for method in ("uniform", "prefix"):
        entry = summary["methods"][method]
        runs = sorted((r for r in records if r.method == method), key=lambda r: r.seed)
        finals = [r.rows[-1].incumbent_test for r in runs]
        assert entry["seeds"] == sorted(SEEDS)
        assert entry["final_incumbent_test"] == finals
        assert entry["mean"] == pytest.approx(np.mean(finals))
        assert entry["std"] == pytest.approx(np.std(finals, ddof=1))
        assert entry["median"] == pytest.approx(np.median(finals))
        assert entry["ci_low"] <= entry["mean"] <= entry["ci_high"]
        assert entry["regret_mean"] == pytest.approx(metadata.optimum - np.mean(finals))
        target = entry["queries_to_target"]
        assert target["n_runs"] == len(SEEDS) and 0.0 <= target["fraction_reached"] <= 1.0
        assert entry["incomplete_seeds"] == []
    assert summary["methods"]["prefix"]["hyperparameters"] == {"pool": 300}
    (pair,) = summary["pairwise"]
    assert (pair["method_a"], pair["method_b"]) == ("uniform", "prefix")
    assert pair["p_holm"] == pytest.approx(pair["p_value"])  # one test: Holm changes nothing
    json.dumps(summary, allow_nan=False)  # strictly valid JSON


def test_summary_is_reproducible(records, metadata):
    assert build_summary(records, metadata, n_boot=300, seed=1) == build_summary(
        records, metadata, n_boot=300, seed=1
    )


def test_incomplete_runs_are_listed_not_counted(records, metadata):
    cut = records[0]
    partial = RunRecord(cut.method, 99, cut.benchmark, cut.budget, {}, cut.rows[:5])
    summary = build_summary([*records, partial], metadata, n_boot=200)
    entry = summary["methods"][cut.method]
    assert entry["incomplete_seeds"] == [99]
    assert 99 not in entry["seeds"] and entry["n_runs"] == len(SEEDS)


def test_duplicate_method_seed_is_refused(records, metadata):
    with pytest.raises(ValueError, match="seed"):
        build_summary([records[0], records[0]], metadata)


def test_write_report_creates_every_file(tmp_path, records, metadata):
    files = write_report(records, metadata, tmp_path / "out", n_boot=500)
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} == {
        "summary.json",
        "trajectories.csv",
        "report.md",
        "incumbent.png",
        "regret.png",
    }
    summary = json.loads((out / "summary.json").read_text())
    assert summary == files.summary
    assert {
        "benchmark",
        "reward_metric",
        "report_metric",
        "reward_is_report_metric",
        "methods",
        "pairwise",
    } <= set(summary)
    with open(out / "trajectories.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == TRAJECTORY_COLUMNS
    assert len(rows) == sum(len(r.rows) for r in records)
    for png in files.plots.values():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    for text in ("toy validation accuracy", "toy test accuracy", "uniform", "prefix", "p (Holm)"):
        assert text in report
    assert "(incumbent.png)" in report and "(regret.png)" in report
    assert "same figure:" not in report
    table = format_table(summary)
    assert "uniform" in table and "prefix" in table and "95% CI" in table


def test_report_says_when_reward_is_the_reported_figure(tmp_path):
    benchmark = make_benchmark(same_figure=True)
    records = [run_search(UniformSearcher(seed=s), benchmark, 10) for s in range(3)]
    files = write_report(
        records, ReportMetadata.from_benchmark(benchmark, 10), tmp_path, n_boot=100, make_plots=False
    )
    assert files.summary["reward_is_report_metric"] is True
    assert "The reward and the reported metric are the same figure" in files.report_md.read_text()
    assert "same figure" in format_table(files.summary)
    assert files.summary["pairwise"] == []


def test_trajectories_can_be_appended_run_by_run(tmp_path, records):
    path = tmp_path / "trajectories.csv"
    for record in records[:3]:
        append_trajectories_csv(record, path)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(TRAJECTORY_COLUMNS)
    assert sum(line.startswith("method,") for line in lines) == 1
    assert len(lines) == 1 + sum(len(r.rows) for r in records[:3])
    back = read_trajectories_csv(path, benchmark="toy", budget=BUDGET)
    assert [(r.method, r.seed, r.rows) for r in back] == [(r.method, r.seed, r.rows) for r in records[:3]]
    # A full write afterwards replaces, not appends.
    write_trajectories_csv(records[:1], path)
    assert len(path.read_text().splitlines()) == 1 + BUDGET


def test_trajectory_writer_starts_fresh_and_keeps_finished_runs(tmp_path, records, metadata):
    path = tmp_path / "trajectories.csv"
    path.write_text("left over from an earlier comparison\n")
    writer = TrajectoryWriter(path)
    assert path.read_text().splitlines() == [",".join(TRAJECTORY_COLUMNS)]
    for record in records[:2]:
        writer.append(record)
    # "Interrupted" here: only two runs made it; they are on disk already.
    assert len(read_trajectories_csv(path)) == 2
    before = path.read_text()
    files = write_report(
        records[:2],
        metadata,
        tmp_path,
        write_trajectories=False,
        make_plots=False,
        n_boot=100,
        interrupted=True,
    )
    assert files.trajectories_csv == path and path.read_text() == before
    assert files.summary["interrupted"] is True
    assert "Interrupted" in files.report_md.read_text()


def test_incumbent_curves_pad_interrupted_runs(records):
    cut = records[0]
    partial = RunRecord(cut.method, 99, cut.benchmark, cut.budget, {}, cut.rows[:5])
    curves = incumbent_curves([*records, partial])
    matrix = curves[cut.method]
    assert matrix.shape == (len(SEEDS) + 1, BUDGET)
    assert np.isnan(matrix[-1, 5:]).all() and not np.isnan(matrix[-1, :5]).any()


def test_plots_are_fast_for_a_large_comparison(tmp_path):
    """7 methods x 200 seeds x 150 queries must plot in well under 3 s (here: < 6 s, shared CI)."""
    rng = np.random.default_rng(0)
    records = []
    for m in range(7):
        curves = np.maximum.accumulate(rng.uniform(85, 94, size=(200, 150)), axis=1)
        for seed, curve in enumerate(curves):
            rows = [
                TrajectoryRow(f"m{m}", seed, q + 1, "", v, v, 0.0, 0.0, "", v, v, 0.0)
                for q, v in enumerate(curve.tolist())
            ]
            records.append(RunRecord(f"m{m}", seed, "toy", 150, {}, rows))
    start = time.perf_counter()
    paths = write_plots(
        records, ReportMetadata("toy", "toy val", "toy test accuracy", 150, optimum=94.0), tmp_path
    )
    elapsed = time.perf_counter() - start
    assert set(paths) == {"incumbent", "regret"}
    assert elapsed < 6.0, f"plotting took {elapsed:.1f} s"


def test_a_method_shown_by_its_class_name_keeps_the_name_it_was_run_by(tmp_path, records, metadata):
    spec = "../plugins/prefix.py:PrefixSearcher"
    files = write_report(records, metadata, tmp_path, n_boot=100, make_plots=False, specs={"prefix": spec})
    assert files.summary["methods"]["prefix"]["spec"] == spec
    assert files.summary["methods"]["uniform"]["spec"] == "uniform"  # not given: the name itself
    assert f"prefix = `{spec}`" in (tmp_path / "report.md").read_text()
    plain = build_summary(records, metadata, n_boot=100)
    assert plain["methods"]["prefix"]["spec"] == "prefix"


def test_one_run_has_no_std_or_interval_and_the_report_says_why(tmp_path, benchmark):
    records = [run_search(UniformSearcher(seed=0), benchmark, 10), run_search(PrefixSearcher(seed=0), benchmark, 10),
               run_search(PrefixSearcher(seed=1), benchmark, 10)]
    files = write_report(records, ReportMetadata.from_benchmark(benchmark, 10), tmp_path, n_boot=100,
                         make_plots=False)
    single, two = files.summary["methods"]["uniform"], files.summary["methods"]["prefix"]
    assert single["std"] is None and single["ci_low"] is None and single["ci_high"] is None
    assert two["std"] is not None and two["ci_low"] <= two["mean"] <= two["ci_high"]
    table = format_table(files.summary)
    row = next(line for line in table.splitlines() if line.startswith("uniform"))
    assert row.split()[3:5] == ["n/a", "n/a"]
    assert "note: std and CI are n/a for uniform: one run has no spread (they need at least 2 seeds)" in table
    assert "| uniform | 1 |" in files.report_md.read_text() and "one run has no spread" in files.report_md.read_text()


def test_a_reward_fitted_on_the_reported_figure_is_said_to_be_so(tmp_path, benchmark):
    benchmark_like = TabularBenchmark("surrogate:toy", benchmark.val_accuracy, benchmark.test_accuracy,
                                      "a model of toy test accuracy", "toy test accuracy")
    benchmark_like.fitted_on_report_metric = True
    metadata = ReportMetadata.from_benchmark(benchmark_like, 10)
    assert metadata.reward_fitted_on_report_metric and not metadata.reward_is_report_metric
    assert not ReportMetadata.from_benchmark(benchmark, 10).reward_fitted_on_report_metric
    records = [run_search(UniformSearcher(seed=s), benchmark_like, 10) for s in range(2)]
    files = write_report(records, metadata, tmp_path, n_boot=100, make_plots=False)
    assert files.summary["reward_fitted_on_report_metric"] is True
    report = files.report_md.read_text()
    assert "The reward is a prediction fitted on the reported figure itself" in report
    assert "never steered the search" not in report
    assert "note: the reward is a prediction fitted on the reported figure itself" in format_table(files.summary)
