"""``nas-harness rank`` over several seeds of each method, as a user runs it: ``train --seeds`` then one ``rank``
of every seed writes the per-seed taus, mean +- std and the tests of the methods' order (seeds.md / seeds.json,
and a section of comparison.md)."""

from __future__ import annotations

import json

from test_input_checks_e2e import run_cli  # the CLI helper these tests share
from test_rank_proxies_e2e import TINY_TRAIN

from harness.evaluation.rank import select_architectures


def test_several_seeds_of_two_methods_are_studied_across_seeds(tmp_path):
    truth = tmp_path / "standalone.csv"
    archs = [arch.to_string() for arch in select_architectures("sample", 10, seed=3)]
    truth.write_text("arch,test_accuracy\n" + "\n".join(f"{a},{20 + 5 * k}" for k, a in enumerate(archs)) + "\n")
    for method in ("spos", "fairnas"):
        trained = run_cli("train", "--method", method, *TINY_TRAIN, "--seeds", "0", "1",
                          "--out", str(tmp_path / method))
        assert trained.returncode == 0, trained.stderr
    out = tmp_path / "rank"
    checkpoints = [str(tmp_path / method / f"seed{seed}") for method in ("spos", "fairnas") for seed in (0, 1)]
    result = run_cli("rank", "--checkpoint", *checkpoints, "--dataset", "digits", "--ground-truth", str(truth),
                     "--calibration-images", "32", "--eval-images", "64", "--threads", "1", "--bootstrap", "50",
                     "--no-mlflow", "--no-progress", "--out", str(out))
    assert result.returncode == 0, result.stderr
    study = json.loads((out / "seeds.json").read_text())
    assert sorted(study["methods"]) == ["fairnas", "spos"]
    # a train --seeds folder is named by its run: OUT/seed<K> ranks into spos-seed<K>
    assert study["runs"] == {"spos": ["spos-seed0", "spos-seed1"], "fairnas": ["fairnas-seed0", "fairnas-seed1"]}
    for method, members in study["runs"].items():
        taus = [json.loads((out / name / "ranking.json").read_text())["metrics"]["kendall_tau"]["value"]
                for name in members]
        assert study["methods"][method]["taus"] == taus
    (pair,) = study["pairs"]
    assert {pair["method_a"], pair["method_b"]} == {"spos", "fairnas"} and 0 <= pair["p_bootstrap_holm"] <= 1
    comparison = (out / "comparison.md").read_text()
    assert "## Across training seeds" in comparison and "| A | B | mean tau A - B |" in comparison
    assert comparison.endswith((out / "seeds.md").read_text())
