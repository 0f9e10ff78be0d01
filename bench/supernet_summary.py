"""One page on every committed supernet run: cost, tau against epochs, and the final rankings.

Reads ``results/supernets/<run>/history.jsonl`` (what ``nas-harness train`` wrote each epoch,
with ``--monitor-every``'s Kendall tau on a fixed 200-architecture sample) and the run's
checkpoint for its configuration, plus any ``nas-harness rank`` output under
``results/supernets/ranking*/<run>/ranking.json`` (``ranking-fast/``: the same
architectures scored with the fast protocol). Every figure is read from those files,
except the point metrics of the scores a ranking was not ranked by, which are recomputed
from the per-architecture figures its ranking.json keeps (``supernet_accuracy``,
``supernet_loss``, ``supernet_probability``) and the ground truth in its ranking.csv.

Writes results/supernets/summary.md and summary.json, and ranking*/comparison.md (one table per
scoring protocol over the runs ranked on the same architectures). Run: .venv/bin/python bench/supernet_summary.py
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from harness.evaluation.ranking import compare_table, comparison_document, degenerate_mask, ranking_metrics  # noqa: E402
from harness.jsonsafe import dumps  # noqa: E402
from harness.oneshot.scoring import FIGURES, ScoringConfig  # noqa: E402
from harness.oneshot.training import load_checkpoint  # noqa: E402
from harness.space import EDGES, OPS  # noqa: E402

RUNS = ROOT / "results" / "supernets"
HEADLINE = ("kendall_tau", "kendall_tau_nondegenerate", "spearman", "pearson", "precision_top5", "precision_top10",
            "kendall_tau_top10")


def precision_label(precision: str | None) -> str | None:
    """Runs and rankings from before ``--precision`` computed in float32 on the CPU (what ``auto`` means there)."""
    return {"auto": "fp32", None: "fp32"}.get(precision, precision)


def read_history(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_summary(folder: Path) -> dict:
    payload = load_checkpoint(folder)
    config = payload["config"]
    history = read_history(folder / "history.jsonl")
    last = history[-1]
    checks = [{"epoch": row["epoch"], "cpu_seconds": row.get("cpu_seconds"),
               "tau_accuracy": row["monitor_kendall_tau"], "tau_loss": row.get("monitor_kendall_tau_by_loss"),
               # runs with a weight average (train --ema-decay) also check the trained weights
               "tau_loss_last_weights": row.get("monitor_last_weights_kendall_tau_by_loss")}
              for row in history if row.get("monitor_kendall_tau") is not None]
    summary = {
        "run": folder.name, "method": payload["method"], "C": config["C"], "N": config["N"],
        "epochs_done": last["epoch"], "epochs_planned": config["epochs"], "batch_size": config["batch_size"],
        "threads": config.get("threads"), "train_seconds": last.get("elapsed_seconds"),
        "cpu_seconds": last.get("cpu_seconds"), "final_train_loss": last.get("train_loss"),
        "method_kwargs": payload.get("method_kwargs", {}), "ema_decay": config.get("ema_decay", 0.0),
        "precision": precision_label(config.get("precision")),
        "monitor": checks, "rankings": rankings_of(folder),
        # DARTS: the argmax architecture after each epoch and its accuracy in the table
        "derived": [{"epoch": row["epoch"], "arch": row["derived_arch"],
                     "table_accuracy": row.get("derived_table_accuracy"), "skip_edges": row.get("skip_edges"),
                     # each op's softmax weight averaged over the 6 edges
                     "mean_weights": {key[len("mean_weight_"):]: value for key, value in row.items()
                                      if key.startswith("mean_weight_")}}
                    for row in history if "derived_arch" in row],
        "final_arch_weights": final_arch_weights(payload),
    }
    return summary


def final_arch_weights(payload: dict) -> list[dict] | None:
    """DARTS: each edge's softmax over the ops at the checkpoint (None for other methods)."""
    training = (payload.get("method_state", {}).get("method") or {}).get("training") or {}
    if "alpha" not in training:
        return None
    weights = training["alpha"].float().softmax(dim=-1).tolist()
    return [{"edge": f"{source}->{target}", **dict(zip(OPS, row, strict=True))}
            for (source, target), row in zip(EDGES, weights, strict=True)]


def run_folder_of(checkpoint: str) -> str:
    """The run folder's name for a checkpoint path (a run folder, its checkpoint.pt or a snapshot)."""
    path = Path(checkpoint)
    if path.suffix == ".pt":
        path = path.parent.parent if path.parent.name == "snapshots" else path.parent
    return path.name


def rankings_of(folder: Path) -> list[dict]:
    """Every ``rank`` output under ranking*/ that scored this run (by the checkpoint it names)."""
    found = []
    for document_path in sorted(folder.parent.glob("ranking*/*/ranking.json")):
        document = json.loads(document_path.read_text())
        meta, metrics = document["meta"], document["metrics"]
        if run_folder_of(meta["checkpoint"]) != folder.name:
            continue
        protocol = document_path.parent.parent.name  # ranking/, or ranking-<protocol>/ for another scoring set-up
        name = document_path.parent.name if protocol == "ranking" else f"{protocol}/{document_path.parent.name}"
        found.append({"name": name, "architectures": meta["architectures"],
                      "epochs_trained": meta["epochs_trained"], "weights": meta.get("scored_weights", "last"),
                      "scoring": meta["scoring"], "scoring_seconds": meta["scoring_seconds"], "metrics": metrics,
                      "by_score": metrics_by_score(document_path.parent, meta)})
    return found


def metrics_by_score(folder: Path, meta: dict) -> dict[str, dict[str, float]]:
    """Point metrics (no intervals) of every score the ranking measured, on its architectures and images."""
    with (folder / "ranking.csv").open() as handle:
        truth = np.array([float(row["ground_truth"]) for row in csv.DictReader(handle)])
    degenerate = degenerate_mask(truth, chance=meta.get("chance", 10.0))
    out = {}
    for name in ScoringConfig.SCORES:
        if f"supernet_{name}" not in meta:  # rankings written before that figure was measured
            continue
        figures = np.zeros((truth.size, len(FIGURES)))
        figures[:, FIGURES.index(name)] = meta[f"supernet_{name}"]
        score = ScoringConfig(score=name).ranking_score(figures)
        metrics = ranking_metrics(score, truth, degenerate=degenerate, bootstrap=0)
        out[name] = {key: metrics[key]["value"] for key in HEADLINE}
    return out


def markdown(runs: list[dict]) -> str:
    lines = ["# Supernet runs on CIFAR-10", "",
             "Every figure below is read from the run folders in this directory (`history.jsonl`, the "
             "checkpoint) and from `ranking*/<run>/ranking.json`; `bench/supernet_summary.py` writes this page. "
             "CPU seconds are the training process's user+system time (monitor checks included).", "",
             "| run | method | C | N | precision | epochs | wall s | CPU s | last train loss | last monitor tau (acc / loss) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        last = run["monitor"][-1] if run["monitor"] else None
        tau = f"{last['tau_accuracy']:.3f} / {last['tau_loss']:.3f} (epoch {last['epoch']})" if last else "n/a"
        lines.append(f"| {run['run']} | {run['method']} | {run['C']} | {run['N']} | {run['precision']} | "
                     f"{run['epochs_done']} of {run['epochs_planned']} | {run['train_seconds']:.0f} | "
                     f"{run['cpu_seconds']:.0f} | {run['final_train_loss']:.3f} | {tau} |")
    lines += ["", "## Kendall tau against epochs (monitor: 200 fixed architectures, 320 calibration and 500 valid "
                  "images each)", ""]
    for run in runs:
        if not run["monitor"]:
            continue
        averaged = run["ema_decay"] > 0
        lines.append(f"**{run['run']}**: " + ", ".join(
            f"epoch {c['epoch']}: {c['tau_accuracy']:.3f} / {c['tau_loss']:.3f}"
            + (f" / {c['tau_loss_last_weights']:.3f}" if averaged and c["tau_loss_last_weights"] is not None else "")
            + f" ({c['cpu_seconds']:.0f} CPU s)"
            for c in run["monitor"])
            + (f" (tau by accuracy / by loss, with the weight average (decay {run['ema_decay']}) / by loss, "
               "trained weights)" if averaged else " (tau by accuracy / by loss)"))
        lines.append("")
    for run in runs:
        if run["derived"]:
            ops = list(run["derived"][0]["mean_weights"])
            lines += [f"## {run['run']}: the derived architecture after each epoch", "",
                      "Mean weights: each op's softmax weight averaged over the 6 edges.", "",
                      "| epoch | derived architecture (argmax per edge) | skip edges | table accuracy | "
                      + " | ".join(f"mean weight {op}" for op in ops) + " |",
                      "|---" * (4 + len(ops)) + "|"]
            # a pipe inside a table cell, even in a code span, must be escaped (GitHub markdown)
            lines += [f"| {d['epoch']} | `{d['arch'].replace('|', chr(92) + '|')}` | {d['skip_edges']} | "
                      + (f"{d['table_accuracy']:.2f} |" if d["table_accuracy"] is not None else "n/a |")
                      + "".join(f" {d['mean_weights'].get(op, float('nan')):.3f} |" for op in ops)
                      for d in run["derived"]]
            lines.append("")
        if run["final_arch_weights"]:
            lines += [f"{run['run']}, epoch {run['epochs_done']}: each edge's softmax weights (node i -> node j)", "",
                      "| edge | " + " | ".join(OPS) + " |", "|---" * (1 + len(OPS)) + "|"]
            lines += [f"| {row['edge']} | " + " | ".join(f"{row[op]:.3f}" for op in OPS) + " |"
                      for row in run["final_arch_weights"]]
            lines.append("")
    ranked = {ranking["name"]: ranking for run in runs for ranking in run["rankings"]}
    if ranked:
        lines += ["## Ranking with `nas-harness rank` (95% bootstrap intervals)", ""]
        for name, ranking in ranked.items():
            scoring = ranking["scoring"]
            lines.append(f"- {name}: {ranking['architectures']} architectures, epoch {ranking['epochs_trained']}, "
                         f"{ranking['weights']} weights, score {scoring['score']}, {scoring['calibration_images']} "
                         f"calibration / {scoring['eval_images']} valid images, "
                         f"{precision_label(scoring.get('precision'))}, "
                         f"{ranking['scoring_seconds']:.0f} s of scoring")
        table = {name: {key: value for key, value in ranking["metrics"].items() if key in HEADLINE}
                 for name, ranking in ranked.items()}
        lines += ["", compare_table(table), ""]
        lines += ["### Every score on the same architectures and images (point values)", "",
                  "| ranking | score | " + " | ".join(HEADLINE) + " |", "|---" * (len(HEADLINE) + 2) + "|"]
        for name, ranking in ranked.items():
            for score, values in ranking["by_score"].items():
                chosen = " (ranked by)" if score == ranking["scoring"]["score"] else ""
                lines.append(f"| {name} | {score}{chosen} | " + " | ".join(f"{values[key]:.3f}" for key in HEADLINE)
                             + " |")
        lines.append("")
    return "\n".join(lines) + "\n"


def write_comparisons(root: Path) -> None:
    """``ranking*/comparison.md``: one table per scoring protocol over the runs ranked on the same architectures.

    ``nas-harness rank`` writes such a table only for the checkpoints of one command; this one
    also covers rankings made one at a time, provided they scored the same architectures
    (same ``arch`` column in ranking.csv) with the same scoring set-up.
    """
    for protocol in sorted(path for path in root.glob("ranking*") if path.is_dir()):
        groups: dict[str, dict] = {}
        for document_path in sorted(protocol.glob("*/ranking.json")):
            meta = json.loads(document_path.read_text())
            with (document_path.parent / "ranking.csv").open() as handle:
                archs = tuple(row["arch"] for row in csv.DictReader(handle))
            key = dumps({"scoring": meta["meta"]["scoring"], "ground_truth": meta["meta"]["ground_truth"],
                         "archs": archs}, sort_keys=True)
            group = groups.setdefault(key, {"meta": meta["meta"], "archs": archs, "rows": {}})
            group["rows"][document_path.parent.name] = {name: value for name, value in meta["metrics"].items()
                                                         if name in HEADLINE}
        groups_to_write = [group for group in groups.values() if len(group["rows"]) > 1]
        if len(groups_to_write) != 1:  # none to compare, or several set-ups mixed in one folder
            continue
        group = groups_to_write[0]
        meta, scoring = group["meta"], group["meta"]["scoring"]
        note = (f"Scoring: {scoring['score']}, {scoring['calibration_images']} calibration / "
                f"{scoring['eval_images']} valid images, {precision_label(scoring.get('precision'))}. "
                "Written by `bench/supernet_summary.py` from the `*/ranking.json` in this folder.")
        (protocol / "comparison.md").write_text(comparison_document(
            group["rows"], len(group["archs"]), meta["architectures_selected"], meta["sample_seed"],
            meta["ground_truth"], note))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=Path, default=RUNS)
    args = parser.parse_args()
    folders = sorted(p for p in args.runs.iterdir() if (p / "history.jsonl").exists() and (p / "checkpoint.pt").exists())
    runs = [run_summary(folder) for folder in folders]
    (args.runs / "summary.json").write_text(dumps(runs, indent=2) + "\n")
    text = markdown(runs)
    (args.runs / "summary.md").write_text(text)
    write_comparisons(args.runs)
    print(text)


if __name__ == "__main__":
    main()
