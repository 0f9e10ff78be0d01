"""Stand-alone training: accuracies, determinism, exact resume after Ctrl-C, the results file, the CLI."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch

from harness.cli import main
from harness.errors import UserError
from harness.oneshot.standalone import (
    RESULTS_HEADER,
    StandaloneConfig,
    StandaloneTrainer,
    append_result,
    finished_architectures,
    read_results,
    records_protocol,
    result_protocol,
    train_standalone,
)
from harness.oneshot.training import TrainingDiverged, load_checkpoint
from harness.space import Architecture
from harness.testing import assert_same_weights, weights

TINY = dict(C=4, N=1, batch_size=32, steps_per_epoch=3, epochs=2, threads=1)
ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"
OTHER = "|skip_connect~0|+|nor_conv_3x3~0|none~1|+|nor_conv_1x1~0|skip_connect~1|avg_pool_3x3~2|"
CLI_TINY = ["--dataset", "digits", "--epochs", "1", "--batch-size", "32", "--C", "4", "--N", "1",
            "--steps-per-epoch", "2", "--threads", "1", "--no-progress", "--device", "cpu"]


def make_trainer(digits, tmp_path, name="run", arch=ARCH, **overrides):
    return StandaloneTrainer(arch, digits, StandaloneConfig(**{**TINY, **overrides}), tmp_path / name,
                             progress=False)


def test_defaults_are_nb201s_protocol():
    config = StandaloneConfig()
    assert (config.epochs, config.batch_size, config.lr, config.lr_min) == (200, 256, 0.1, 0.0)
    assert (config.momentum, config.nesterov, config.weight_decay, config.C, config.N) == (0.9, True, 5e-4, 16, 5)
    with pytest.raises(UserError, match="lr_min"):
        StandaloneConfig(lr=0.1, lr_min=0.2)
    with pytest.raises(UserError, match="epochs must be a positive integer"):
        StandaloneConfig(epochs=0)


def test_training_returns_accuracies_and_leaves_a_loadable_checkpoint(digits, tmp_path):
    result = train_standalone(ARCH, digits, StandaloneConfig(**TINY, eval_every=1), tmp_path / "run",
                              progress=False)
    assert result["arch"] == ARCH and result["dataset"] == "digits" and result["epochs"] == 2
    for key in ("valid_accuracy", "test_accuracy"):
        assert 0.0 <= result[key] <= 100.0
    assert result["params"] > 0 and result["seconds"] > 0 and result["train_loss"] > 0
    assert result["config"]["C"] == 4
    saved = load_checkpoint(tmp_path / "run")  # weights_only
    assert (saved["method"], saved["arch"], saved["epoch"]) == ("standalone", ARCH, 2)
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in history] == [1, 2] and "valid_accuracy" in history[0]
    written = json.loads((tmp_path / "run" / "result.json").read_text())
    assert written["test_accuracy"] == result["test_accuracy"]
    assert written["harness_index"] == Architecture.from_string(ARCH).index  # the index run folders are named by


def test_same_seed_same_weights_other_seed_other(digits, tmp_path):
    runs = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        trainer = make_trainer(digits, tmp_path, name, seed=seed, epochs=1)
        trainer.train()
        runs.append(weights(trainer))
    assert_same_weights(runs[0], runs[1])
    assert any(not torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


def test_ctrl_c_then_resume_equals_an_uninterrupted_run(digits, tmp_path):
    reference = make_trainer(digits, tmp_path, "reference", seed=3)
    expected = reference.train()

    interrupted = make_trainer(digits, tmp_path, "resumed", seed=3)
    original_step = interrupted.optimizer.step
    calls = {"n": 0}

    def interrupting_step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:  # mid-way through the second epoch
            os.kill(os.getpid(), signal.SIGINT)
        return original_step(*args, **kwargs)

    interrupted.optimizer.step = interrupting_step
    with pytest.raises(KeyboardInterrupt, match="--resume"):
        interrupted.train()
    saved = load_checkpoint(tmp_path / "resumed")
    assert (saved["epoch"], saved["step_in_epoch"]) == (1, 2)
    with pytest.raises(UserError, match="--resume"):
        make_trainer(digits, tmp_path, "resumed", seed=3).train()

    resumed = make_trainer(digits, tmp_path, "resumed", seed=3)
    result = resumed.train(resume=True)
    assert_same_weights(weights(reference), weights(resumed))
    for key in ("valid_accuracy", "test_accuracy", "train_loss", "epochs"):
        assert result[key] == expected[key], key
    assert [r["train_loss"] for r in reference.history] == [r["train_loss"] for r in resumed.history]


def test_resume_refuses_another_architecture_or_schedule(digits, tmp_path):
    make_trainer(digits, tmp_path, epochs=1).train()
    with pytest.raises(UserError, match="arch '"):
        make_trainer(digits, tmp_path, arch=OTHER, epochs=1).train(resume=True)
    with pytest.raises(UserError, match="lr 0.1 vs 0.05"):
        make_trainer(digits, tmp_path, epochs=1, lr=0.05).train(resume=True)


def test_nan_loss_is_a_one_line_failure_that_keeps_the_last_checkpoint(digits, tmp_path):
    trainer = make_trainer(digits, tmp_path)
    original_step = trainer._step
    calls = {"n": 0}

    def step(images, labels):
        calls["n"] += 1
        loss = original_step(images, labels)
        return float("nan") if calls["n"] == 5 else loss

    trainer._step = step
    with pytest.raises(TrainingDiverged, match="epoch 2, step 2") as info:
        trainer.train()
    assert "\n" not in str(info.value)
    assert load_checkpoint(tmp_path / "run")["epoch"] == 1


#: What ``result_protocol`` says of a tiny run (the protocol columns of a results row).
PROTOCOL = {"batch_size": 32, "lr": 0.1, "lr_min": 0.0, "momentum": 0.9, "nesterov": True, "weight_decay": 0.0005,
            "C": 4, "N": 1, "steps_per_epoch": 3, "precision": "fp32"}


def test_results_file_has_the_header_and_one_row_per_append(tmp_path):
    path = tmp_path / "sub" / "standalone.csv"
    rows = [{"arch": arch, "valid_accuracy": 91.25, "test_accuracy": 90.5, "dataset": "digits", "epochs": 2,
             "seed": 0, "seconds": 1.5, "params": 0.01, "protocol": PROTOCOL} for arch in (ARCH, OTHER)]
    for row in rows:
        append_result(path, row)
    lines = path.read_text().splitlines()
    # Each row records its protocol since the results file holds one (the header grew the protocol columns).
    assert lines[0] == ("arch,valid_accuracy,test_accuracy,dataset,epochs,seed,seconds,"
                        "batch_size,lr,lr_min,momentum,nesterov,weight_decay,C,N,steps_per_epoch,precision")
    assert lines[0] == ",".join(RESULTS_HEADER)
    assert lines[1] == f"{ARCH},91.2500,90.5000,digits,2,0,1.5000,32,0.1,0.0,0.9,True,0.0005,4,1,3,fp32"
    assert [row["arch"] for row in read_results(path)] == [ARCH, OTHER]
    assert finished_architectures(path, "digits", 2, 0) == {Architecture.from_string(ARCH),
                                                             Architecture.from_string(OTHER)}
    with pytest.raises(UserError, match="fashion-mnist, 2 epochs, seed 0"):
        finished_architectures(path, "fashion-mnist", 2, 0)

    foreign = tmp_path / "other.csv"
    foreign.write_text("arch,accuracy\n")
    with pytest.raises(UserError, match="not a stand-alone results file"):
        append_result(foreign, rows[0])
    assert foreign.read_text() == "arch,accuracy\n"


def test_cli_appends_each_result_and_skips_finished_architectures(tmp_path, capsys):
    out, results = tmp_path / "out", tmp_path / "out" / "standalone.csv"
    assert main(["standalone", ARCH, "--out", str(out), *CLI_TINY]) == 0
    first = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["arch"] for row in first] == [ARCH]
    assert (out / str(Architecture.from_string(ARCH).index) / "checkpoint.pt").is_file()

    archs_file = tmp_path / "archs.txt"
    archs_file.write_text(f"# a list\n{ARCH}\n\n{OTHER}\n")
    assert main(["standalone", "--archs-file", str(archs_file), "--out", str(out), *CLI_TINY]) == 0
    captured = capsys.readouterr()
    assert [json.loads(line)["arch"] for line in captured.out.splitlines()] == [OTHER]
    assert "1 of 2 architectures already in" in captured.err
    rows = read_results(results)
    assert [row["arch"] for row in rows] == [ARCH, OTHER]
    assert float(rows[0]["test_accuracy"]) == pytest.approx(first[0]["test_accuracy"], abs=1e-4)


@pytest.mark.parametrize("args, fragment", [
    (["standalone", "|nor_conv_3x3~0|", "--dataset", "digits"], "malformed architecture"),
    (["standalone", "--dataset", "digits"], "no architectures to train"),
])
def test_bad_input_is_one_line_exit_2(args, fragment, tmp_path, capsys):
    assert main([*args, "--out", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0]


# -- one results file, one protocol -----------------------------------------------------------------
def test_a_result_says_the_protocol_it_was_trained_under(digits, tmp_path):
    result = train_standalone(ARCH, digits, StandaloneConfig(**{**TINY, "epochs": 1}), tmp_path / "run",
                              progress=False)
    assert result["protocol"] == PROTOCOL
    assert json.loads((tmp_path / "run" / "result.json").read_text())["protocol"] == PROTOCOL
    # the steps an epoch ran, not the cap: a cap above the split's batches is the same protocol
    assert result_protocol(StandaloneConfig(**{**TINY, "steps_per_epoch": 10_000}), digits,
                           torch.device("cpu"))["steps_per_epoch"] == len(digits.train_y) // 32


def test_finished_architectures_refuses_rows_of_another_protocol(tmp_path):
    path = tmp_path / "standalone.csv"
    append_result(path, {"arch": ARCH, "valid_accuracy": 91.25, "test_accuracy": 90.5, "dataset": "digits",
                         "epochs": 2, "seed": 0, "seconds": 1.5, "protocol": PROTOCOL})
    assert finished_architectures(path, "digits", 2, 0, PROTOCOL) == {Architecture.from_string(ARCH)}
    with pytest.raises(UserError, match=r"line 2: .*lr 0.1 vs 0.05, C 4 vs 8 .*one results file holds one "
                                        r"protocol: pass another --out or --results") as info:
        finished_architectures(path, "digits", 2, 0, {**PROTOCOL, "C": 8, "lr": 0.05})
    assert "\n" not in str(info.value)
    with pytest.raises(UserError, match="precision fp32 vs bf16"):
        finished_architectures(path, "digits", 2, 0, {**PROTOCOL, "precision": "bf16"})
    with pytest.raises(ValueError, match=r"protocol\['batch_size'\]"):
        append_result(path, {"arch": OTHER, "valid_accuracy": 1.0, "test_accuracy": 1.0, "dataset": "digits",
                             "epochs": 2, "seed": 0, "seconds": 1.0})


def test_an_older_results_file_is_read_checked_on_what_it_records_and_continued_in_its_format(tmp_path):
    from harness.evaluation.ranking import read_ground_truth

    path = tmp_path / "standalone.csv"
    path.write_text(f"arch,valid_accuracy,test_accuracy,dataset,epochs,seed,seconds\n"
                    f"{ARCH},91.2500,90.5000,digits,2,0,1.5000\n")
    assert not records_protocol(path) and records_protocol(tmp_path / "new.csv")
    assert finished_architectures(path, "digits", 2, 0, PROTOCOL) == {Architecture.from_string(ARCH)}
    with pytest.raises(UserError, match="epochs 2 vs 3"):
        finished_architectures(path, "digits", 3, 0, PROTOCOL)
    append_result(path, {"arch": OTHER, "valid_accuracy": 80.0, "test_accuracy": 79.0, "dataset": "digits",
                         "epochs": 2, "seed": 0, "seconds": 1.0, "protocol": PROTOCOL})
    assert path.read_text().splitlines()[2] == f"{OTHER},80.0000,79.0000,digits,2,0,1.0000"
    assert read_ground_truth(path) == {ARCH: 90.5, OTHER: 79.0}


def test_a_ground_truth_that_mixes_protocols_is_refused(tmp_path):
    from harness.errors import DataFileError
    from harness.evaluation.ranking import read_ground_truth

    path = tmp_path / "standalone.csv"
    for arch, protocol in ((ARCH, PROTOCOL), (OTHER, {**PROTOCOL, "C": 8})):
        append_result(path, {"arch": arch, "valid_accuracy": 80.0, "test_accuracy": 79.0, "dataset": "digits",
                             "epochs": 2, "seed": 0, "seconds": 1.0, "protocol": protocol})
    with pytest.raises(DataFileError, match=r"mixes results of different protocols: C 4 vs 8 \(line 2 vs line 3\)"):
        read_ground_truth(path)
    listing = tmp_path / "results.json"  # result.json files gathered in a list: the protocol is nested
    listing.write_text(json.dumps([{"arch": ARCH, "test_accuracy": 79.0, "epochs": 2, "protocol": PROTOCOL},
                                   {"arch": OTHER, "test_accuracy": 78.0, "epochs": 3, "protocol": PROTOCOL}]))
    with pytest.raises(DataFileError, match=r"epochs 2 vs 3 \(entry 1 vs entry 2\)"):
        read_ground_truth(listing)
    listing.write_text(json.dumps([{"arch": ARCH, "test_accuracy": 79.0}, {"arch": OTHER, "test_accuracy": 78.0}]))
    assert read_ground_truth(listing) == {ARCH: 79.0, OTHER: 78.0}  # nothing recorded: nothing to compare


@pytest.mark.parametrize(("settings", "match"), [
    ({"lr": 1e39}, "lr must be a positive number float32 can hold"),
    ({"lr": float("nan")}, "lr must be a positive number"),
    ({"lr": 0.0}, "lr must be a positive number"),
    ({"weight_decay": -1.0}, "weight_decay must be a non-negative number"),
    ({"momentum": -0.5}, "momentum must be a non-negative number"),
    ({"lr": 0.01, "lr_min": 0.1}, r"0 <= lr_min <= lr"),
])
def test_training_settings_that_make_no_sense_are_refused_by_both_configs(settings, match):
    from harness.oneshot.training import TrainConfig

    with pytest.raises(UserError, match=match):
        StandaloneConfig(**settings)
    with pytest.raises(UserError, match=match):
        TrainConfig(**settings)


def test_a_negative_or_zero_gradient_clip_is_refused_none_means_no_clipping():
    from harness.oneshot.training import TrainConfig

    for clip in (-1.0, 0.0):
        with pytest.raises(UserError, match="grad_clip must be a positive gradient norm, or None"):
            TrainConfig(grad_clip=clip)
    assert TrainConfig(grad_clip=None).grad_clip is None
