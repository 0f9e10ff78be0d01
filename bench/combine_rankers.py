"""Do rank-averaged combinations of supernets and zero-cost proxies rank better than either alone?

Reads the rankers of one or more ``nas-harness rank`` output folders (every folder given,
or its subfolders, that holds a ranking.csv), checks that all of them ranked the same
architectures against the same ground truth, and runs ``harness.evaluation.combine``'s
study on: every pair of rankers, each supernet with the two best proxies, the three best
proxies and all proxies together. When synflow, jacov and snip are among the rankers it
also measures Abdelfattah et al.'s (ICLR 2021) vote of those three their way: the share of
architecture pairs that a majority orders correctly (``pairwise_agreement``), beside each
proxy's share and Kendall tau; and when ``params`` is among them, every other ranker against
it (``versus_baseline``: the naive proxy ZiCo's paper says it is the first to beat). Writes combinations.md and combinations.json to --out.

Run: .venv/bin/python bench/combine_rankers.py results/proxies/seed0 --out results/proxies/seed0
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
from harness.evaluation.combine import (  # noqa: E402
    combination_markdown,
    combination_study,
    pairwise_agreement,
    versus_baseline,
)
from harness.evaluation.ranking import read_ranking  # noqa: E402
from harness.jsonsafe import dumps  # noqa: E402


def ranking_folders(paths: list[Path]) -> list[Path]:
    found = []
    for path in paths:
        if (path / "ranking.csv").is_file():
            found.append(path)
        else:
            found.extend(sorted(sub for sub in path.iterdir() if (sub / "ranking.csv").is_file()))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rankings", nargs="+", type=Path, help="rank output folders")
    parser.add_argument("--out", type=Path, required=True, help="where combinations.md / .json go")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    missing = [str(path) for path in args.rankings if not path.is_dir()]
    if missing:
        parser.error(f"not a folder: {', '.join(missing)}")
    folders = ranking_folders(args.rankings)
    if len(folders) < 2:
        parser.error(f"need at least 2 rankers; found {len(folders)} ranking.csv under {args.rankings}")
    rankers, proxies, supernets = {}, [], []
    archs = truth = None
    for folder in folders:
        names, scores, folder_truth, meta = read_ranking(folder)
        if archs is None:
            archs, truth = names, folder_truth
        elif names != archs or not np.array_equal(folder_truth, truth):
            parser.error(f"{folder} ranked other architectures or another ground truth than {folders[0]}")
        rankers[folder.name] = scores
        (proxies if "proxy" in meta else supernets).append(folder.name)
    tau = {name: stats.kendall_tau(scores, truth) for name, scores in rankers.items()}
    best_proxies = sorted(proxies, key=lambda name: -tau[name])
    combinations = [tuple(pair) for pair in itertools.combinations(rankers, 2)]
    combinations += [(supernet, *best_proxies[:2]) for supernet in supernets if len(best_proxies) >= 2]
    if len(best_proxies) >= 3:
        combinations.append(tuple(best_proxies[:3]))
    if len(best_proxies) >= 4:
        combinations.append(tuple(best_proxies))
    study = combination_study(rankers, truth, combinations, bootstrap=args.bootstrap, seed=args.seed)
    study["supernets"], study["proxies"] = supernets, proxies
    vote = ("synflow", "jacov", "snip")
    vote_section = ""
    if all(name in rankers for name in vote):
        study["vote"] = {"members": list(vote),
                         "agreement": pairwise_agreement([rankers[name] for name in vote], truth),
                         "members_agreement": {name: pairwise_agreement([rankers[name]], truth) for name in vote}}
        rows = "\n".join(f"| {name} | {share:.3f} | {tau[name]:.3f} |"
                         for name, share in study["vote"]["members_agreement"].items())
        vote_section = (f"\n## The vote of synflow, jacov and snip, measured as Abdelfattah et al. measure it\n\n"
                        f"Share of architecture pairs (ties in the truth left out) ordered as the ground truth orders "
                        f"them; for one ranker it is about (1 + tau) / 2.\n\n| ranker | share of pairs right | "
                        f"Kendall tau |\n|---|---|---|\n{rows}\n| majority vote of the three | "
                        f"{study['vote']['agreement']:.3f} | - |\n")
    params_section = ""
    if "params" in rankers:
        study["versus_params"] = versus_baseline(rankers, truth, "params", bootstrap=args.bootstrap, seed=args.seed)
        rows = "\n".join(f"| {row['name']} | {row['kendall_tau']:.3f} | {row['difference']:+.3f} "
                         f"[{row['low']:+.3f}, {row['high']:+.3f}] | {row['p_holm']:.3g} |"
                         for row in sorted(study["versus_params"], key=lambda r: -r["difference"]))
        params_section = (f"\n## Against params\n\nKendall tau minus params' ({tau['params']:.3f}), paired bootstrap "
                          f"over the architectures ({args.bootstrap} resamples), p Holm-corrected over the rankers "
                          f"(0 means below 1/{args.bootstrap}).\n\n| ranker | tau | difference [95% interval] | "
                          f"p (Holm) |\n|---|---|---|---|\n{rows}\n")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "combinations.json").write_text(dumps(study, indent=1) + "\n")
    singles = "\n".join(f"| {name} | {'proxy' if name in proxies else 'supernet'} | {row['kendall_tau']:.3f} "
                        f"[{row['low']:.3f}, {row['high']:.3f}] |"
                        for name, row in sorted(study["rankers"].items(), key=lambda item: -item[1]["kendall_tau"]))
    document = (f"# Rank-averaged combinations of {len(rankers)} rankers\n\nWritten by `bench/combine_rankers.py` "
                f"from {', '.join(str(p) for p in args.rankings)}.\n\n## Alone\n\n| ranker | kind | Kendall tau |\n"
                f"|---|---|---|\n{singles}\n\n## Combined\n\n{combination_markdown(study)}{vote_section}{params_section}")
    (args.out / "combinations.md").write_text(document)
    print(document)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
