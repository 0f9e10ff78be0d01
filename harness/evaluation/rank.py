"""``nas-harness rank``: how well trained supernets (or zero-cost proxies) rank architectures against
stand-alone accuracy.

Every checkpoint scores the same architectures (a seeded sample, all 15,625, or the 6,466
non-isomorphic ones) with inherited weights (``harness.oneshot.scoring``); the ground truth is the
embedded CIFAR-10 table's accuracy or a stand-alone results file. Results are written per
checkpoint as they complete.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import UserError
from harness.evaluation import stats
from harness.execution.executors import ExecutionSettings, map_unordered
from harness.oneshot.allocator import keep_freed_memory
from harness.oneshot.data import Dataset, DataSettings
from harness.oneshot.scoring import FIGURES, ScoringConfig, SupernetScorer, supernet_from_checkpoint
from harness.oneshot.training import CHECKPOINT_NAME
from harness.proxies.registry import ProxyConfig
from harness.search.benchmark_specs import reference_table
from harness.space import (
    NUM_ARCHITECTURES,
    Architecture,
    all_architectures,
    parse_architecture,
    unique_architectures,
)


def select_architectures(mode: str, n: int, seed: int) -> list[Architecture]:
    """'sample' (n distinct, seeded, sorted by ``Architecture.index``), 'all' (15,625) or 'unique' (6,466)."""
    if mode == "all":
        return list(all_architectures())
    if mode == "unique":
        return list(unique_architectures())
    if not 1 <= n <= NUM_ARCHITECTURES:
        raise UserError(f"--archs must be in 1..{NUM_ARCHITECTURES}, got {n}")
    indices = np.sort(np.random.default_rng(seed).choice(NUM_ARCHITECTURES, size=n, replace=False))
    return [Architecture.from_index(int(i)) for i in indices]


@dataclass
class GroundTruth:
    """Stand-alone accuracy per architecture, and where it comes from."""

    values: dict[Architecture, float]
    source: str
    chance: float

    def lookup(self, archs: list[Architecture]) -> np.ndarray:
        missing = [a for a in archs if a not in self.values]
        if missing:
            raise UserError(f"{self.source} has no accuracy for {len(missing)} of the {len(archs)} architectures "
                            f"(e.g. {missing[0].to_string()}); rank only those it covers")
        return np.array([self.values[a] for a in archs], dtype=float)


def ground_truth_for(dataset: Dataset, path: Path | None) -> GroundTruth:
    """The table's accuracy for CIFAR-10 or a stand-alone results file (required for other datasets)."""
    chance = 100.0 / dataset.num_classes
    if path is not None:
        from harness.evaluation.ranking import read_ground_truth

        values = {parse_architecture(text): float(acc) for text, acc in read_ground_truth(path).items()}
        return GroundTruth(values, f"stand-alone results {path}", chance)
    table = reference_table(dataset.name)
    if table is None:
        raise UserError(f"there is no accuracy table for {dataset.name}; pass --ground-truth FILE "
                        f"(a results file written by 'nas-harness standalone')")
    values = {arch: float(table.test_accuracy[arch.index]) for arch in all_architectures()}
    return GroundTruth(values, f"{table.name} ({table.report_metric})", chance)


def _open_scores(scores_file: ScoresFile, archs: list[Architecture], label: str, progress: bool):
    """The kept scores of ``scores_file``, the architectures still to score, and a progress bar (or None)."""
    kept = scores_file.load()
    todo = [arch for arch in archs if arch.to_string() not in kept]
    scores_file.start(resume=bool(kept))
    bar = None
    if progress:
        import sys

        from tqdm import tqdm

        bar = tqdm(total=len(archs), initial=len(archs) - len(todo), desc=f"rank {label}", unit="arch",
                   file=sys.stderr, leave=False)
    return scores_file, kept, todo, bar


def _kept_scores_interrupt(exc: KeyboardInterrupt, scores_file: ScoresFile, kept: dict,
                           archs: list[Architecture]) -> KeyboardInterrupt:
    """The interruption to raise when a ranking stops: how many scores are kept, and where."""
    done = sum(arch.to_string() in kept for arch in archs)
    return KeyboardInterrupt(f"{exc or 'stopped'}; {done} of {len(archs)} architectures are scored and kept in "
                             f"{scores_file.path}: the same command scores only the rest")


def rank_checkpoint(path: Path, dataset: Dataset, archs: list[Architecture], truth: np.ndarray,
                    scoring: ScoringConfig, out_dir: Path, meta: dict[str, Any], progress: bool = True,
                    bootstrap: int = 1000, weights: str = "average", execution: ExecutionSettings | None = None,
                    data: DataSettings | None = None) -> dict[str, Any]:
    """Score ``archs`` with one checkpoint and write ``out_dir``/ranking.{csv,json,png}; returns the metrics.

    With an ``execution`` of several workers (or Ray), the architectures are scored in chunks,
    each worker loading the checkpoint and the images (``data``) once; the scores are the
    same as in one process with the same threads per worker.
    """
    from harness.evaluation.ranking import degenerate_mask, ranking_metrics, write_ranking

    scoring = scoring.resolved()
    if scoring.device == "cuda" and execution is not None and (execution.executor != "local" or execution.workers > 1):
        raise UserError("scoring on a GPU runs in this process: use --workers 1 and --executor local with "
                        "--device cuda (one GPU scores faster than the CPUs' workers)")
    model, payload = supernet_from_checkpoint(path, dataset, weights, scoring.device)
    scores_file, kept, todo, bar = _open_scores(ScoresFile(Path(out_dir), _scores_key(path, dataset, scoring, weights)),
                                                archs, payload["method"], progress)

    def scored(block: list[Architecture], figures: np.ndarray) -> None:
        scores_file.append(block, figures)
        kept.update({arch.to_string(): row for arch, row in zip(block, figures, strict=True)})
        if bar is not None:
            bar.update(len(block))

    start = time.perf_counter()
    try:
        if execution is None or (execution.executor == "local" and execution.workers == 1):
            scorer = SupernetScorer(model, dataset, scoring)
            for i in range(0, len(todo), SCORES_BLOCK):
                block = todo[i:i + SCORES_BLOCK]
                scored(block, scorer.score_many(block))
        elif todo:
            if data is None:
                raise ValueError("scoring on several workers needs the DataSettings the workers load the images with")
            score_in_chunks(path, data, todo, scoring, weights, execution, on_scored=scored)
    except KeyboardInterrupt as exc:
        raise _kept_scores_interrupt(exc, scores_file, kept, archs) from None
    finally:
        if bar is not None:
            bar.close()
    scores = np.array([kept[arch.to_string()] for arch in archs], dtype=float)
    seconds = time.perf_counter() - start
    per_architecture = _supernet_seconds_per_architecture(Path(out_dir), seconds, len(todo), execution)
    degenerate = degenerate_mask(truth, chance=meta.get("chance", 10.0))
    ranked_by = scoring.ranking_score(scores)
    metrics = ranking_metrics(ranked_by, truth, degenerate=degenerate, bootstrap=bootstrap, seed=0)
    full_meta = {
        **meta,
        "checkpoint": str(path),
        "method": payload["method"],
        "epochs_trained": int(payload.get("epoch", 0)),
        "train_config": payload["config"],
        "scored_weights": payload["scored_weights"],
        "architectures": len(archs),
        "scoring": {"calibration_images": scoring.calibration_images, "eval_images": scoring.eval_images,
                    "recalibrate_batchnorm": scoring.recalibrate, "seed": scoring.seed,
                    "score": scoring.score, "score_meaning": ScoringConfig.SCORES[scoring.score],
                    "precision": scoring.precision, "device": scoring.device},
        "scoring_seconds": seconds,
        "architectures_scored_before": len(archs) - len(todo),
        "workers": 1 if execution is None else execution.workers,
        # worker-seconds per architecture scored by this call (wall seconds x workers / scored), or, when every
        # score was kept, the figure of the ranking that made them: comparable with a proxy's per-architecture cost
        "seconds_per_architecture": per_architecture,
        "degenerate_architectures": int(degenerate.sum()),
        **{f"supernet_{name}": scores[:, i].tolist() for i, name in enumerate(FIGURES)},
        # the point tau of every score on these same images (the metrics above are for scoring.score)
        "kendall_tau_by_score": {name: stats.kendall_tau(dataclasses.replace(scoring, score=name)
                                                         .ranking_score(scores), truth)
                                 for name in ScoringConfig.SCORES},
    }
    write_ranking(out_dir, [a.to_string() for a in archs], ranked_by, truth, metrics, full_meta)
    return metrics


def _supernet_seconds_per_architecture(out_dir: Path, seconds: float, scored: int,
                                      execution: ExecutionSettings | None) -> float:
    """What scoring one architecture cost, in worker-seconds; nan when nothing was scored here and no
    earlier ranking in ``out_dir`` says."""
    if scored:
        return seconds * (1 if execution is None else execution.workers) / scored
    try:
        return float(json.loads((out_dir / "ranking.json").read_text())["meta"]["seconds_per_architecture"])
    except (OSError, ValueError, KeyError, TypeError):
        return float("nan")


#: The columns a proxy's scores.csv keeps per architecture: its score and what it cost.
PROXY_COLUMNS = ("score", "seconds")


def rank_proxies(names: list[str], dataset: Dataset, archs: list[Architecture], truth: np.ndarray,
                 config: ProxyConfig, out_root: Path, meta: dict[str, Any], progress: bool = True,
                 bootstrap: int = 1000, batches: list | None = None, execution: ExecutionSettings | None = None,
                 data: DataSettings | None = None) -> dict[str, dict[str, Any]]:
    """Score ``archs`` with every zero-cost proxy of ``names`` and write ``out_root``/<name>/ranking.{csv,json,png}.

    Returns each proxy's metrics. The same files, metrics and bootstrap intervals as
    ``rank_checkpoint``. All proxies score one network per architecture (``ProxiesScorer``:
    the proxies that share a pass make it once); each proxy's scores and the seconds each
    architecture cost it are kept in its scores.csv as they are made, so an interrupted
    ranking resumes. With an ``execution`` of several workers (or Ray) the architectures are
    scored in chunks, each worker drawing the batches once from ``data``; the scores are the
    same as in one process. ``batches`` (from ``harness.proxies.proxy_batches``) saves
    drawing them again here.
    """
    from harness.evaluation.ranking import degenerate_mask, ranking_metrics, write_ranking
    from harness.proxies import ProxiesScorer, get_proxy

    if config.device == "cuda" and execution is not None and (execution.executor != "local" or execution.workers > 1):
        raise UserError("proxies on a GPU are scored in this process: use --workers 1 and --executor local with "
                        "--device cuda")
    files, kept, bars = {}, {}, {}
    for name in names:
        key = {"format": 1, "proxy": name, "dataset": dataset.name, "source": dataset.source,
               "proxy_config": dataclasses.asdict(config)}
        files[name], kept[name], _, bars[name] = _open_scores(
            ScoresFile(Path(out_root) / name, key, columns=PROXY_COLUMNS), archs, name, progress)
    todo = [(arch, [name for name in names if arch.to_string() not in kept[name]]) for arch in archs]
    todo = [(arch, missing) for arch, missing in todo if missing]
    start = time.perf_counter()

    def scored(block: list[tuple[Architecture, list[str]]], rows: list[dict[str, tuple[float, float]]]) -> None:
        for name in names:
            mine = [(arch, row[name]) for (arch, _), row in zip(block, rows, strict=True) if name in row]
            if mine:
                files[name].append([arch for arch, _ in mine], np.array([values for _, values in mine]))
                kept[name].update({arch.to_string(): np.array(values) for arch, values in mine})
                if bars[name] is not None:
                    bars[name].update(len(mine))

    try:
        if execution is None or (execution.executor == "local" and execution.workers == 1):
            scorer = ProxiesScorer(list(names), dataset, config, batches)
            for i in range(0, len(todo), SCORES_BLOCK):
                block = todo[i:i + SCORES_BLOCK]
                scored(block, [scorer.score(arch, missing) for arch, missing in block])
        elif todo:
            if data is None:
                raise ValueError("scoring proxies on several workers needs the DataSettings the workers load with")
            size = max(1, min(CHUNK_MAX, -(-len(todo) // (4 * execution.workers))))
            chunks = [todo[i:i + size] for i in range(0, len(todo), size)]
            context = functools.partial(_proxies_context, list(names), data, config)
            for index, rows in map_unordered(_score_proxies_chunk,
                                             [[(arch.ops, missing) for arch, missing in chunk] for chunk in chunks],
                                             execution, context):
                scored(chunks[index], rows)
    except KeyboardInterrupt as exc:
        done = ", ".join(f"{name} {sum(arch.to_string() in kept[name] for arch in archs)}" for name in names)
        raise KeyboardInterrupt(f"{exc or 'stopped'}; architectures scored and kept (of {len(archs)}): {done}, in "
                                f"{Path(out_root)}/<proxy>/{SCORES_FILE}: the same command scores only the rest"
                                ) from None
    finally:
        for bar in bars.values():
            if bar is not None:
                bar.close()
    seconds_all = time.perf_counter() - start
    degenerate = degenerate_mask(truth, chance=meta.get("chance", 10.0))
    results = {}
    for name in names:
        proxy = get_proxy(name)
        rows = np.array([kept[name][arch.to_string()] for arch in archs], dtype=float)
        scores, seconds = rows[:, 0], rows[:, 1]
        metrics = ranking_metrics(scores, truth, degenerate=degenerate, bootstrap=bootstrap, seed=0)
        full_meta = {
            **meta,
            "method": name,
            "proxy": name,
            "proxy_paper": proxy.paper,
            "score_meaning": f"{proxy.meaning}; higher is better",
            "score_label": f"{name} at initialisation",
            "proxy_config": dataclasses.asdict(config),
            "architectures": len(archs),
            "scored_together_with": [other for other in names if other != name],
            "scoring_seconds_all_proxies": seconds_all,
            "architectures_scored_before": len(archs) - sum(name in missing for _, missing in todo),
            # the cost of one architecture, measured as each was scored (kept across resumes): building and
            # initialising the network and the proxy's own call; a pass it shared with a proxy scored before
            # it on the same network is counted there (harness.proxies.ProxiesScorer)
            "seconds_per_architecture": float(seconds.mean()),
            "seconds_per_architecture_max": float(seconds.max()),
            "degenerate_architectures": int(degenerate.sum()),
        }
        write_ranking(Path(out_root) / name, [a.to_string() for a in archs], scores, truth, metrics, full_meta)
        results[name] = metrics
    return results


def _proxies_context(names: list[str], data: DataSettings, config: ProxyConfig):
    """A worker's scorer: the dataset loaded and the batches drawn once."""
    from harness.proxies import ProxiesScorer

    keep_freed_memory()
    return ProxiesScorer(names, data.load(), config)


def _score_proxies_chunk(scorer, chunk: list[tuple[tuple[int, ...], list[str]]]) -> list[dict]:
    return [scorer.score(Architecture(ops), missing) for ops, missing in chunk]


# -- scoring on several workers -----------------------------------------------------------------------
def _scorer_context(path: str, data: DataSettings, scoring: ScoringConfig, weights: str) -> SupernetScorer:
    """What a worker builds once: the images and the checkpoint's supernet, ready to score."""
    keep_freed_memory()  # scoring reuses the same large buffers; a Ray worker does not inherit the setting
    dataset = data.load()
    model, _ = supernet_from_checkpoint(path, dataset, weights, scoring.device)
    return SupernetScorer(model, dataset, scoring)


def _score_chunk(scorer: SupernetScorer, ops: list[tuple[int, ...]]) -> np.ndarray:
    return scorer.score_many([Architecture(tuple(op)) for op in ops])


def score_in_chunks(path: Path, data: DataSettings, archs: list[Architecture], scoring: ScoringConfig,
                    weights: str, execution: ExecutionSettings,
                    on_scored: Callable[[list[Architecture], np.ndarray], None] | None = None) -> np.ndarray:
    """``SupernetScorer.score_many`` of ``archs`` spread over ``execution``'s workers, in ``archs``' order.

    About four chunks per worker, so a slow chunk does not hold the others up for long, and
    at most ``CHUNK_MAX`` architectures each, so an interruption loses little;
    ``on_scored(chunk, figures)`` is called as each chunk arrives.
    """
    size = max(1, min(CHUNK_MAX, -(-len(archs) // (4 * execution.workers))))
    chunks = [archs[i:i + size] for i in range(0, len(archs), size)]
    context = functools.partial(_scorer_context, str(path), data, scoring, weights)
    out = np.empty((len(archs), len(FIGURES)))
    for index, figures in map_unordered(_score_chunk, [[arch.ops for arch in chunk] for chunk in chunks],
                                        execution, context):
        out[index * size:index * size + len(figures)] = figures
        if on_scored is not None:
            on_scored(chunks[index], figures)
    return out


# -- scores kept as they are made ---------------------------------------------------------------------
SCORES_FILE = "scores.csv"
SCORES_KEY = "scores.key.json"
#: Architectures scored between two appends to scores.csv when scoring in this process.
SCORES_BLOCK = 25
#: Most architectures in one chunk scored by a worker (a few minutes of work at most).
CHUNK_MAX = 250


def _scores_key(path: Path, dataset: Dataset, scoring: ScoringConfig, weights: str) -> dict[str, Any]:
    """What the scores depend on: kept scores are reused only when all of it matches."""
    checkpoint = Path(path)
    checkpoint = checkpoint / CHECKPOINT_NAME if checkpoint.is_dir() else checkpoint
    stat = checkpoint.stat()
    return json.loads(json.dumps({"format": 1, "checkpoint": str(checkpoint.resolve()), "bytes": stat.st_size,
                                  "mtime_ns": stat.st_mtime_ns, "dataset": dataset.name, "weights": weights,
                                  "scoring": dataclasses.asdict(scoring)}))


class ScoresFile:
    """``scores.csv``: every scored architecture's ``columns`` (a supernet's ``FIGURES`` unless told),
    appended as they are made, so that an interrupted ranking resumes where it stopped.
    ``scores.key.json`` says what they were made with."""

    def __init__(self, out_dir: Path, key: dict[str, Any], columns: tuple[str, ...] = FIGURES) -> None:
        self.path, self.key_path, self.key, self.columns = out_dir / SCORES_FILE, out_dir / SCORES_KEY, key, columns

    def load(self) -> dict[str, np.ndarray]:
        """The kept scores by architecture string; none when they were made otherwise (or not at all)."""
        try:
            kept_key = json.loads(self.key_path.read_text())
            if "scoring" in kept_key:
                kept_key["scoring"].setdefault("device", "cpu")  # keys written before the device was
            if kept_key != self.key:
                return {}
            lines = self.path.read_text().splitlines()[1:]
        except (OSError, ValueError):
            return {}
        kept = {}
        for line in lines:
            parts = line.split(",")
            try:
                kept[parts[0]] = np.array([float(v) for v in parts[1:]], dtype=float)
            except ValueError:
                continue
            if kept[parts[0]].shape != (len(self.columns),):
                del kept[parts[0]]  # a line cut off by an interruption
        return kept

    def start(self, resume: bool) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not resume:
            self.path.write_text("arch," + ",".join(self.columns) + "\n")
            self.key_path.write_text(json.dumps(self.key, indent=1) + "\n")

    def append(self, archs: list[Architecture], figures: np.ndarray) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write("".join(f"{arch.to_string()}," + ",".join(repr(float(v)) for v in row) + "\n"
                                 for arch, row in zip(archs, figures, strict=True)))
