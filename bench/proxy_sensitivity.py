"""How much does a zero-cost proxy's Kendall tau move with the initialisation seed and the batch?

Reads ``nas-harness rank --proxy ...`` output folders that scored the same architectures
with different ``--proxy-init-seed`` / ``--proxy-batch-seed`` (each folder's
<proxy>/ranking.json records its proxy configuration) and writes, per proxy:

- tau for each configuration, and the mean, standard deviation and range of tau over the
  initialisation seeds (batch seed fixed at the reference's) and over the batch seeds
  (initialisation seed fixed at the reference's);
- how well two configurations agree with each other: the mean Kendall tau between the
  proxy's score vectors of every pair of configurations (1.0: the same order).

Writes sensitivity.md and sensitivity.json to --out.

Run: .venv/bin/python bench/proxy_sensitivity.py results/proxies/sensitivity/* --out results/proxies/sensitivity
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from harness.evaluation import stats  # noqa: E402
from harness.evaluation.ranking import read_ranking  # noqa: E402
from harness.jsonsafe import dumps  # noqa: E402


def summary(taus: list[float]) -> dict:
    values = np.array(taus)
    return {"taus": [float(t) for t in taus], "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if values.size > 1 else float("nan"),
            "range": float(values.max() - values.min())}


def agreement(vectors: list[np.ndarray]) -> float:
    """Mean Kendall tau between the score vectors of every pair of configurations."""
    pairs = [stats.kendall_tau(a, b) for a, b in itertools.combinations(vectors, 2)]
    return float(np.mean(pairs)) if pairs else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="rank --proxy output folders, one per configuration")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--reference-init", type=int, default=0)
    parser.add_argument("--reference-batch", type=int, default=0)
    args = parser.parse_args(argv)

    # proxy -> (init seed, batch seed) -> scores
    scores: dict[str, dict[tuple[int, int], np.ndarray]] = {}
    archs = truth = None
    about = None
    missing = [str(run) for run in args.runs if not run.is_dir()]
    if missing:
        parser.error(f"not a folder: {', '.join(missing)}")
    for run in args.runs:
        for folder in sorted(sub for sub in run.iterdir() if (sub / "ranking.csv").is_file()):
            names, score, folder_truth, meta = read_ranking(folder)
            if "proxy" not in meta:
                continue
            if archs is None:
                archs, truth = names, folder_truth
                about = {key: meta[key] for key in ("ground_truth", "architectures", "sample_seed", "dataset")}
            elif names != archs or not np.array_equal(folder_truth, truth):
                parser.error(f"{folder} ranked other architectures than the first run")
            config = meta["proxy_config"]
            scores.setdefault(meta["proxy"], {})[(config["init_seed"], config["batch_seed"])] = score
    if not scores:
        parser.error(f"no proxy rankings under {args.runs}")
    results = {}
    for proxy, by_config in scores.items():
        init = sorted(key for key in by_config if key[1] == args.reference_batch)
        batch = sorted(key for key in by_config if key[0] == args.reference_init)
        results[proxy] = {
            "by_config": {f"init{i}-batch{b}": float(stats.kendall_tau(v, truth)) for (i, b), v in sorted(by_config.items())},
            "init_seeds": [i for i, _ in init], "over_init_seeds": summary([stats.kendall_tau(by_config[k], truth) for k in init]),
            "init_agreement": agreement([by_config[k] for k in init]),
            "batch_seeds": [b for _, b in batch],
            "over_batch_seeds": summary([stats.kendall_tau(by_config[k], truth) for k in batch]),
            "batch_agreement": agreement([by_config[k] for k in batch]),
        }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sensitivity.json").write_text(dumps({"about": about, "proxies": results}, indent=1) + "\n")
    lines = ["# Zero-cost proxies: tau against the initialisation seed and the batch\n",
             f"{about['architectures']} architectures (sample seed {about['sample_seed']}), {about['dataset']}; "
             f"ground truth: {about['ground_truth']}. Written by `bench/proxy_sensitivity.py`.\n",
             "Over init seeds: the batch seed fixed at the reference; over batch seeds: the init seed fixed. "
             "Agreement: mean Kendall tau between the proxy's scores under two configurations "
             "(1.000: the same order).\n",
             "| proxy | tau per init seed | std (range) | agreement | tau per batch seed | std (range) | agreement |",
             "|---|---|---|---|---|---|---|"]
    for proxy, row in sorted(results.items(), key=lambda item: -item[1]["over_init_seeds"]["mean"]):
        over_init, over_batch = row["over_init_seeds"], row["over_batch_seeds"]
        lines.append(f"| {proxy} | {', '.join(f'{t:.3f}' for t in over_init['taus'])} | {over_init['std']:.3f} "
                     f"({over_init['range']:.3f}) | {row['init_agreement']:.3f} | "
                     f"{', '.join(f'{t:.3f}' for t in over_batch['taus'])} | {over_batch['std']:.3f} "
                     f"({over_batch['range']:.3f}) | {row['batch_agreement']:.3f} |")
    document = "\n".join(lines) + "\n"
    (args.out / "sensitivity.md").write_text(document)
    print(document)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
