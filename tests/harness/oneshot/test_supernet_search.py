"""Scoring architectures on a trained supernet, and searching it (own stage or any searcher)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from harness.cli import main
from harness.errors import UserError
from harness.evaluation.rank import select_architectures
from harness.oneshot.scoring import ScoringConfig, SupernetBenchmark, SupernetScorer, supernet_from_checkpoint
from harness.oneshot.supernet_search import restore_method, search_supernet
from harness.oneshot.training import SupernetTrainer, TrainConfig, load_checkpoint
from harness.space import Architecture
from harness.testing import assert_same_weights, strict_json, weights
from methods.aging_evolution import AgingEvolution
from methods.darts import DARTS
from methods.greedynas import GreedyNAS

SCORING = ScoringConfig(calibration_images=64, eval_images=128, batch_size=64)


@pytest.fixture(scope="module")
def greedy_run(digits, tmp_path_factory):
    run = tmp_path_factory.mktemp("greedy") / "run"
    method = GreedyNAS(seed=1, paths_sampled=4, paths_trained=2, population_size=6, generations=2)
    config = TrainConfig(C=4, N=1, batch_size=16, steps_per_epoch=3, epochs=2, threads=1, seed=1)
    SupernetTrainer(method, digits, config, run, progress=False,
                    method_kwargs={"paths_sampled": 4, "paths_trained": 2, "population_size": 6,
                                   "generations": 2}).train()
    return run


def test_scores_are_deterministic_and_recalibration_matters(digits, greedy_run):
    model, _ = supernet_from_checkpoint(greedy_run, digits)
    arch = Architecture.from_string("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_3x3~0|none~1|avg_pool_3x3~2|")
    first = SupernetScorer(model, digits, SCORING).score(arch)
    again = SupernetScorer(model, digits, SCORING).score(arch)
    assert first == again
    running = [m.running_mean.clone() for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)
               and m.running_mean is not None]
    other = Architecture.from_string("|skip_connect~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_1x1~2|")
    SupernetScorer(model, digits, SCORING).score(other)
    after = [m.running_mean for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)
             and m.running_mean is not None]
    assert any(not torch.equal(a, b) for a, b in zip(running, after, strict=True))
    assert 0.0 <= first[0] <= 100.0 and np.isfinite(first[1])


def test_restored_method_keeps_its_hyperparameters_and_pool(greedy_run):
    payload = load_checkpoint(greedy_run)
    method = restore_method(payload)
    assert isinstance(method, GreedyNAS)
    assert (method.paths_sampled, method.paths_trained) == (4, 2)
    assert len(method.pool) > 0


def test_own_search_stage_starts_from_the_pool(digits, greedy_run):
    record, info = search_supernet(greedy_run, digits, budget=8, scoring=SCORING)
    pool_best = restore_method(load_checkpoint(greedy_run)).best_of_pool(6)
    assert [row.arch for row in record.rows[: len(pool_best)]] == [a.to_string() for a in pool_best]
    assert len(record.rows) == 8 and info["final_arch"] == record.final.incumbent_arch
    assert np.isnan(info["final_test_accuracy"])  # digits has no reference table


def test_any_black_box_searcher_runs_on_a_supernet(digits, greedy_run):
    model, _ = supernet_from_checkpoint(greedy_run, digits)
    benchmark = SupernetBenchmark(SupernetScorer(model, digits, SCORING), "supernet")
    record, _ = search_supernet(greedy_run, digits, budget=12, scoring=SCORING, searcher=AgingEvolution(seed=0))
    assert record.method == "aging_evolution" and len(record.rows) == 12
    arch = Architecture.from_string(record.final.incumbent_arch)
    assert benchmark.query(arch).val_accuracy == pytest.approx(record.final.incumbent_val)


def test_darts_search_stage_is_its_derived_architecture(digits, tmp_path):
    method = DARTS(seed=0)
    config = TrainConfig(C=4, N=1, batch_size=16, steps_per_epoch=2, epochs=1, threads=1)
    SupernetTrainer(method, digits, config, tmp_path / "darts", progress=False).train()
    record, info = search_supernet(tmp_path / "darts", digits, budget=1, scoring=SCORING)
    assert info["final_arch"] == method.derived().to_string()


def test_search_command_prints_and_writes_strict_json(greedy_run, capsys, tmp_path):
    code = main(["search", "--checkpoint", str(greedy_run), "--dataset", "digits", "--budget", "3",
                 "--calibration-images", "64", "--eval-images", "128", "--threads", "1", "--out", str(tmp_path)])
    assert code == 0
    printed = strict_json(capsys.readouterr().out)
    assert printed["method"] == "greedynas" and printed["final_arch"].startswith("|")
    assert printed["final_test_accuracy"] is None  # digits has no reference table: null, not NaN
    written = strict_json((tmp_path / "search.json").read_text())
    assert written["final_test_accuracy"] is None and written["final_arch"] == printed["final_arch"]


def test_architecture_selection():
    sample = select_architectures("sample", 50, seed=3)
    assert len(set(sample)) == 50 and sample == select_architectures("sample", 50, seed=3)
    assert sample != select_architectures("sample", 50, seed=4)
    assert len(select_architectures("all", 0, 0)) == 15625
    assert len(select_architectures("unique", 0, 0)) == 6466
    with pytest.raises(UserError):
        select_architectures("sample", 0, 0)


def test_checkpoint_for_another_dataset_is_refused(digits, greedy_run):
    other = dataclasses.replace(digits, name="fashion-mnist")
    with pytest.raises(UserError, match="trained on 'digits'"):
        supernet_from_checkpoint(greedy_run, other)


def test_rank_without_a_table_asks_for_ground_truth(greedy_run, capsys):
    code = main(["rank", "--checkpoint", str(greedy_run), "--dataset", "digits", "--no-mlflow", "--archs", "5"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--ground-truth" in err


def test_monitor_measures_tau_on_its_epochs_and_leaves_the_supernet_alone(digits, greedy_run):
    from harness.oneshot.monitor import RankingMonitor

    model, _ = supernet_from_checkpoint(greedy_run, digits)
    archs = select_architectures("sample", 12, seed=0)
    truth = np.arange(12, dtype=float)
    monitor = RankingMonitor(digits, archs, truth, every=5, scoring=SCORING)
    assert monitor(model, 3) == {}
    before = weights(model)
    figures = monitor(model, 5)
    assert -1.0 <= figures["monitor_kendall_tau"] <= 1.0 and figures["monitor_archs"] == 12
    assert_same_weights(before, weights(model))
    assert monitor(model, 7, last=True) != {}


def test_per_image_figures_add_up_to_the_score(digits, greedy_run):
    model, _ = supernet_from_checkpoint(greedy_run, digits)
    scorer = SupernetScorer(model, digits, SCORING)
    arch = Architecture.from_string("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_3x3~0|none~1|avg_pool_3x3~2|")
    accuracy, loss, probability = scorer.score(arch)
    correct, losses = scorer.per_image(arch)
    assert correct.shape == losses.shape == (SCORING.eval_images,)
    assert accuracy == pytest.approx(100.0 * correct.mean()) and loss == pytest.approx(losses.mean())
    assert probability == pytest.approx(100.0 * np.exp(-losses).mean())
    figures = np.array([[accuracy, loss, probability]])
    expected = {"loss": (-loss, 100.0 * np.exp(-loss)), "accuracy": (accuracy, accuracy),
                "probability": (probability, probability)}
    for score, (ranked_by, percent) in expected.items():
        config = dataclasses.replace(SCORING, score=score)
        assert config.ranking_score(figures) == pytest.approx([ranked_by])
        assert config.percent_score(figures) == pytest.approx([percent])
    with pytest.raises(ValueError, match="score must be one of"):
        dataclasses.replace(SCORING, score="flops")


@pytest.mark.parametrize("score", ["loss", "accuracy", "probability"])
def test_a_search_on_the_supernet_is_rewarded_by_the_ranking_score_in_percent(digits, greedy_run, score):
    model, _ = supernet_from_checkpoint(greedy_run, digits)
    config = dataclasses.replace(SCORING, score=score)
    benchmark = SupernetBenchmark(SupernetScorer(model, digits, config), "supernet")
    arch = Architecture.from_index(4321)
    figures = SupernetScorer(model, digits, config).score(arch)
    result = benchmark.query(arch)
    assert result.val_accuracy == pytest.approx(float(config.percent_score(np.array(figures))))
    assert 0.0 <= result.val_accuracy <= 100.0
    assert result.extras == pytest.approx(dict(zip(("supernet_accuracy", "supernet_loss", "supernet_probability"),
                                                   figures, strict=True)))
    assert score.replace("loss", "exp(-mean cross-entropy)") in benchmark.reward_metric


@pytest.mark.parametrize("score", ["loss", "accuracy", "probability"])
def test_rank_ranks_by_the_chosen_score_and_writes_both(digits, greedy_run, tmp_path, score):
    archs = select_architectures("sample", 6, seed=0)
    truth_file = tmp_path / "truth.csv"
    truth_file.write_text("arch,test_accuracy\n" + "".join(f"{a.to_string()},{50 + i}\n" for i, a in enumerate(archs)))
    out = tmp_path / "rank"
    code = main(["rank", "--checkpoint", str(greedy_run), "--dataset", "digits", "--no-mlflow", "--no-progress",
                 "--archs", "6", "--ground-truth", str(truth_file), "--calibration-images", "64",
                 "--eval-images", "128", "--bootstrap", "10", "--score", score, "--out", str(out)])
    assert code == 0
    report = strict_json((out / "ranking.json").read_text())
    meta = report.get("meta", report)
    assert meta["scoring"]["score"] == score
    expected = -np.array(meta["supernet_loss"]) if score == "loss" else np.array(meta[f"supernet_{score}"])
    import csv
    rows = list(csv.DictReader((out / "ranking.csv").open()))
    assert np.allclose([float(r["supernet_score"]) for r in rows], expected)


def test_rank_against_stand_alone_results_ranks_the_architectures_they_cover(greedy_run, tmp_path):
    import csv

    archs = [a.to_string() for a in select_architectures("sample", 3, seed=5)]
    standalone = tmp_path / "standalone"
    assert main(["standalone", *archs, "--out", str(standalone), "--dataset", "digits", "--epochs", "1",
                 "--batch-size", "32", "--C", "4", "--N", "1", "--steps-per-epoch", "2", "--threads", "1",
                 "--no-progress"]) == 0
    results = {row["arch"]: float(row["test_accuracy"]) for row in csv.DictReader((standalone / "standalone.csv").open())}
    out = tmp_path / "rank"
    assert main(["rank", "--checkpoint", str(greedy_run), "--dataset", "digits", "--no-mlflow", "--no-progress",
                 "--ground-truth", str(standalone / "standalone.csv"), "--calibration-images", "64",
                 "--eval-images", "128", "--bootstrap", "10", "--out", str(out)]) == 0
    rows = list(csv.DictReader((out / "ranking.csv").open()))
    assert {row["arch"]: float(row["ground_truth"]) for row in rows} == pytest.approx(results)
    meta = strict_json((out / "ranking.json").read_text())
    assert meta.get("meta", meta)["architectures_selected"] == "covered"


BUDGETED = '''
from harness import Searcher, sample_architecture


class Budgeted(Searcher):
    name = "budgeted"

    def __init__(self, seed=0, budget=4):
        super().__init__(seed)
        self.budget = budget

    def _ask(self):
        if len(self.history) + len(self._pending) >= self.budget:
            raise RuntimeError("asked past the budget the harness passed")
        return sample_architecture(self.rng)
'''


@pytest.mark.parametrize(("given", "expected"), [([], 4), (["--budget", "3"], 3)])
def test_a_plugin_file_searching_a_supernet_is_given_the_budget(greedy_run, tmp_path, given, expected):
    """Without --budget the class's own default (4) is the search's; with it, the class is built with it."""
    (tmp_path / "budgeted.py").write_text(BUDGETED)
    out = tmp_path / "out"
    assert main(["search", "--checkpoint", str(greedy_run), "--dataset", "digits", "--searcher",
                 f"{tmp_path}/budgeted.py:Budgeted", *given, "--calibration-images", "64", "--eval-images", "128",
                 "--threads", "1", "--out", str(out)]) == 0
    written = strict_json((out / "search.json").read_text())
    assert written["method"] == "budgeted" and written["budget"] == expected
