import math

import numpy as np
import pytest
from scipy.stats import kendalltau

from harness.errors import UnknownNameError, UserError
from harness.search.benchmark import Benchmark, Result, TabularBenchmark
from harness.space import NUM_ARCHITECTURES, Architecture, ops_matrix
from harness.space.encodings import is_disconnected
from surrogates.analog_table import load_analog_benchmark
from surrogates.learned import (
    MODELS,
    SurrogateBenchmark,
    get_model,
    parse_surrogate_spec,
    sample_training_indices,
)
from surrogates.surrogate_study import (
    format_pivot,
    format_table,
    held_out_metrics,
    run_surrogate_study,
    summarise,
)


@pytest.fixture(scope="module")
def table():
    return load_analog_benchmark()


@pytest.fixture(scope="module")
def split_table(table):
    """The analog table with a test column that differs from its reward column."""
    return TabularBenchmark(
        "split", table.val_accuracy, table.test_accuracy - 0.25, "table val", "table test"
    )


def held_out_tau(table, model: str, n: int, seed: int = 0) -> float:
    ops = ops_matrix()
    train = sample_training_indices(n, seed)
    predicted = get_model(model).fit(ops[train], table.val_accuracy[train], seed)(ops)
    rest = np.setdiff1d(np.arange(NUM_ARCHITECTURES), train)
    return kendalltau(predicted[rest], table.val_accuracy[rest]).statistic


@pytest.mark.parametrize("model", list(MODELS))
def test_every_model_ranks_held_out_cells(table, model):
    assert held_out_tau(table, model, n=80) > 0.3


def test_structure_aware_models_beat_the_one_hot_baseline(table):
    baseline = held_out_tau(table, "xgboost_onehot", n=100)
    assert held_out_tau(table, "xgboost", n=100) > baseline + 0.15
    assert held_out_tau(table, "ensemble", n=100) > baseline + 0.15


def test_benchmark_val_is_prediction_and_test_is_table(split_table):
    bench = SurrogateBenchmark(split_table, "xgboost", n=100, seed=0)
    assert isinstance(bench, Benchmark)
    assert bench.reward_metric == "xgboost surrogate of table val fitted on n=100 architectures (seed 0)"
    assert bench.report_metric == "table test"
    ops = ops_matrix()
    train = bench.train_indices
    expected = get_model("xgboost").fit(ops[train], split_table.val_accuracy[train], 0)(ops)
    arch = Architecture.from_index(1234)
    result = bench.query(arch)
    assert isinstance(result, Result)
    assert result.val_accuracy == pytest.approx(expected[1234])
    assert result.val_accuracy != split_table.val_accuracy[1234]
    assert result.test_accuracy == split_table.test_accuracy[1234]
    assert result.extras["table_val_accuracy"] == split_table.val_accuracy[1234]
    val, test = bench.query_indices(np.array([1234, 7, 15624]))
    assert val[0] == result.val_accuracy and np.array_equal(test, split_table.test_accuracy[[1234, 7, 15624]])


def test_disconnected_cells_share_the_sampled_chance_value(table):
    bench = SurrogateBenchmark(table, "xgboost", n=1000, seed=0)
    disconnected = is_disconnected(ops_matrix())
    assert disconnected[bench.train_indices].any()
    assert np.allclose(bench.val_accuracy[disconnected], 10.0)
    assert bench.val_accuracy[~disconnected].min() > 10.0


def test_same_seed_same_surrogate_other_seed_other(table):
    first = SurrogateBenchmark(table, "ensemble", n=60, seed=3)
    again = SurrogateBenchmark(table, "ensemble", n=60, seed=3)
    other = SurrogateBenchmark(table, "ensemble", n=60, seed=4)
    assert np.array_equal(first.train_indices, again.train_indices)
    assert np.array_equal(first.val_accuracy, again.val_accuracy)
    assert not np.array_equal(first.train_indices, other.train_indices)
    assert not np.array_equal(first.val_accuracy, other.val_accuracy)
    assert len(np.unique(first.train_indices)) == 60


def test_fit_survives_a_sample_of_only_disconnected_cells(table):
    ops = ops_matrix()
    only = np.flatnonzero(is_disconnected(ops))[:5]
    predicted = get_model("xgboost").fit(ops[only], table.val_accuracy[only], 0)(ops)
    assert np.allclose(predicted, 10.0)


def test_parse_surrogate_spec():
    assert parse_surrogate_spec("surrogate:xgboost:300") == ("xgboost", 300, 0)
    assert parse_surrogate_spec("surrogate:xgboost:300:7") == ("xgboost", 300, 7)
    assert parse_surrogate_spec(" surrogate:random_forest:15625 ") == ("random_forest", 15625, 0)


@pytest.mark.parametrize(
    "spec",
    ["surrogate:xgboost:0", "surrogate:xgboost:-5", "surrogate:xgboost:15626", "surrogate:xgboost:abc",
     "surrogate:xgboost", "xgboost:300", "surrogate:xgboost:300:-1", "surrogate:xgboost:300:x",
     "surrogate:xgboost:300:1:2", "table:xgboost:300"],
)
def test_bad_specs_are_user_errors(spec):
    with pytest.raises(UserError, match="surrogate"):
        parse_surrogate_spec(spec)


def test_unknown_model_lists_the_valid_ones(table):
    with pytest.raises(UnknownNameError) as info:
        parse_surrogate_spec("surrogate:xgbost:300")
    assert all(name in str(info.value) for name in MODELS)
    with pytest.raises(UnknownNameError):
        SurrogateBenchmark(table, "nope", n=10)
    with pytest.raises(UserError):
        SurrogateBenchmark(table, "xgboost", n=0)


def test_held_out_metrics_of_a_perfect_and_a_reversed_prediction():
    actual = np.array([10.0, 50.0, 80.0, 90.0, 91.0])
    perfect = held_out_metrics(actual, actual)
    assert perfect == pytest.approx({"kendall_tau": 1.0, "spearman": 1.0, "r2": 1.0, "mae": 0.0})
    assert held_out_metrics(-actual, actual)["kendall_tau"] == pytest.approx(-1.0)


def test_study_rows_summary_and_table(table):
    rows = run_surrogate_study(table, ["xgboost_onehot", "xgboost"], ns=(50,), seeds=(0, 1))
    assert [(r["model"], r["seed"]) for r in rows] == [
        ("xgboost_onehot", 0), ("xgboost", 0), ("xgboost_onehot", 1), ("xgboost", 1)
    ]
    assert {"model", "encoding", "n", "seed", "kendall_tau", "spearman", "r2", "mae"} <= set(rows[0])
    summary = summarise(rows)
    assert [(s["model"], s["n"], s["seeds"]) for s in summary] == [("xgboost_onehot", 50, 2), ("xgboost", 50, 2)]
    taus = [r["kendall_tau"] for r in rows if r["model"] == "xgboost"]
    assert summary[1]["kendall_tau_mean"] == pytest.approx(np.mean(taus))
    assert summary[1]["kendall_tau_std"] == pytest.approx(np.std(taus, ddof=1))
    text = format_table(summary)
    assert text.count("\n") == 3 and "| 50 | xgboost | effective_structure |" in text
    pivot = format_pivot(summary)
    assert pivot.splitlines()[0] == "| kendall_tau | n=50 |"
    assert pivot.splitlines()[3] == f"| xgboost | {np.mean(taus):.3f} |"


def test_a_surrogate_says_whether_it_was_fitted_on_the_reported_figure(table, split_table):
    assert SurrogateBenchmark(table, "gp", n=50).fitted_on_report_metric is True  # the table's single accuracy
    assert SurrogateBenchmark(split_table, "gp", n=50).fitted_on_report_metric is False


def test_one_seed_has_no_spread_and_the_table_says_what_its_spread_is(table):
    from surrogates.surrogate_study import spread_note

    rows = run_surrogate_study(table, ["gp"], ns=(50,), seeds=(0,))
    (entry,) = summarise(rows)
    assert math.isnan(entry["kendall_tau_std"]) and entry["seeds"] == 1
    text = format_table([entry])
    assert "| 50 | gp | structure | 1 | " in text and "± n/a" in text and "± 0.000" not in text
    assert "mean ± sample standard deviation (ddof=1) over 1 seed " in spread_note([entry])
    assert "n/a: one value has no spread" in spread_note([entry])
    two = summarise(run_surrogate_study(table, ["gp"], ns=(50,), seeds=(0, 1)))
    assert "over 2 seeds" in spread_note(two) and "n/a" not in spread_note(two) + format_table(two)


@pytest.mark.parametrize(("options", "match"), [
    ({"models": ["gp", "gp"]}, "--models gives gp more than once"),
    ({"ns": (50, 60, 50)}, "--n gives 50 more than once"),
    ({"seeds": (0, 0)}, "seeds gives 0 more than once"),
])
def test_a_study_refuses_a_model_size_or_seed_given_twice(table, options, match):
    fitted = []
    with pytest.raises(UserError, match=match):
        run_surrogate_study(table, **{"models": ["gp"], "ns": (50,), "seeds": (0,), **options},
                            on_fit=fitted.append)
    assert fitted == []
