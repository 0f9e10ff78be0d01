"""Supernet experiments as Python calls: train one, rank trained ones (and zero-cost proxies), search a
trained one.

These are what ``nas-harness train``, ``rank`` and ``search`` run (the CLI only parses and
prints). Each writes its outputs as it goes: a training run checkpoints every epoch, a
ranking writes each checkpoint's files as soon as it is scored.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness import jsonsafe
from harness.errors import UserError
from harness.execution.executors import ExecutionSettings, check_ray_available, map_unordered
from harness.oneshot.data import DataSettings
from harness.oneshot.scoring import ScoringConfig
from harness.oneshot.training import HISTORY_NAME, TrainConfig, TrainOutcome
from harness.outputs import check_output_dir
from harness.proxies.registry import ProxyConfig
from harness.search.run import RunRecord
from harness.space import Architecture

#: Seed of the fixed sample the training monitor ranks (the same for every run).
MONITOR_SAMPLE_SEED = 12345
#: Which architectures ``rank_supernets`` scores: a seeded sample, all, the non-isomorphic ones,
#: or exactly those a ground-truth file covers.
SELECTIONS = ("sample", "all", "unique", "covered")
#: Fewer architectures than this have no ranking to measure (Kendall tau needs pairs, and its bootstrap more).
MIN_RANKED = 3


def run_names(paths: Sequence[Path]) -> list[str]:
    """A distinct folder name per checkpoint: its run folder's name, ``RUN-seed<K>`` for a seed of ``train --seeds``."""
    names: list[str] = []
    for path in paths:
        path = Path(path)
        folder = path if path.is_dir() else path.parent
        base = folder.name or path.stem
        if re.fullmatch(r"seed\d+", base) and folder.resolve().parent.name:
            base = f"{folder.resolve().parent.name}-{base}"
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def check_distinct_checkpoints(paths: Sequence[Path], option: str = "--checkpoint") -> None:
    """A UserError when two of ``paths`` are one checkpoint (a run folder and its checkpoint.pt count as one)."""
    from harness.oneshot.training import CHECKPOINT_NAME

    seen: dict[Path, Path] = {}
    for path in map(Path, paths):
        file = (path / CHECKPOINT_NAME if path.is_dir() else path).resolve()
        if file in seen:
            raise UserError(f"{option} names the checkpoint {file} twice ({seen[file]} and {path}); give each once")
        seen[file] = path


# -- train ---------------------------------------------------------------------------------------
def train_supernet(method: str, out_dir: Path, config: TrainConfig | None = None, *,
                   data: DataSettings | None = None, hyperparameters: Mapping[str, Any] | None = None,
                   resume: bool = False, monitor_every: int = 0, monitor_archs: int = 200,
                   tracking_uri: str | None = None, mlflow: bool = True, progress: bool = True) -> TrainOutcome:
    """Train the supernet of one-shot ``method`` into ``out_dir`` (checkpoint every epoch; ``resume`` continues).

    ``monitor_every`` > 0 records Kendall tau on a fixed sample of ``monitor_archs``
    architectures every that many epochs (needs the reference table of the dataset).
    """
    from harness.evaluation.rank import ground_truth_for, select_architectures
    from harness.oneshot.method import make_method
    from harness.oneshot.training import SupernetTrainer, check_run_folder
    from harness.reporting.tracking import make_tracker

    config = config or TrainConfig()
    data = data or DataSettings()
    hyperparameters = dict(hyperparameters or {})
    searcher = make_method(method, config.seed, hyperparameters)
    check_run_folder(out_dir, resume)
    check_output_dir(out_dir)
    dataset = data.load()
    tracker = make_tracker(tracking_uri, enabled=mlflow, experiment="nas-harness-supernets")
    monitor = None
    if monitor_every:
        from harness.oneshot.monitor import RankingMonitor

        archs = select_architectures("sample", monitor_archs, seed=MONITOR_SAMPLE_SEED)
        monitor = RankingMonitor(dataset, archs, ground_truth_for(dataset, None).lookup(archs), monitor_every)
    trainer = SupernetTrainer(searcher, dataset, config, out_dir, tracker=tracker, progress=progress,
                              method_kwargs=hyperparameters, monitor=monitor)
    return trainer.train(resume=resume)


def seed_folder(out_dir: Path, seed: int) -> Path:
    """Where seed ``seed`` of a several-seed training run goes."""
    return Path(out_dir) / f"seed{seed}"


def train_supernets(method: str, out_dir: Path, seeds: Sequence[int], config: TrainConfig | None = None, *,
                    data: DataSettings | None = None, hyperparameters: Mapping[str, Any] | None = None,
                    resume: bool = False, monitor_every: int = 0, monitor_archs: int = 200,
                    tracking_uri: str | None = None, mlflow: bool = True, progress: bool = True,
                    execution: ExecutionSettings | None = None,
                    on_trained: Callable[[int, TrainOutcome], None] | None = None) -> dict[int, TrainOutcome]:
    """Train one supernet per seed into ``out_dir``/seed<k>/, several at a time on ``execution``.

    Each seed is an independent, resumable run (``train_supernet`` in a worker); with
    ``resume`` the seeds that have a checkpoint continue and the others start. A CUDA run asks
    Ray for a GPU per seed. Runs are logged to MLflow from here, one run per seed, as each
    finishes (the workers log nothing).
    """
    from harness.oneshot.method import make_method
    from harness.oneshot.training import CHECKPOINT_NAME, resolve_device
    from harness.reporting.tracking import make_tracker

    config = config or TrainConfig()
    data = data or DataSettings()
    execution = execution or ExecutionSettings()
    hyperparameters = dict(hyperparameters or {})
    seeds = list(dict.fromkeys(int(seed) for seed in seeds))
    if not seeds:
        raise UserError("no seeds to train")
    make_method(method, seeds[0], hyperparameters)  # a bad method or hyper-parameter fails now
    check_output_dir(out_dir)
    existing = [seed for seed in seeds if (seed_folder(out_dir, seed) / CHECKPOINT_NAME).exists()]
    if existing and not resume:
        raise UserError(f"{seed_folder(out_dir, existing[0]) / CHECKPOINT_NAME} exists; pass --resume to continue "
                        f"the seeds that have checkpoints ({', '.join(map(str, existing))}) or choose another --out")
    if execution.executor == "ray":
        check_ray_available()
        if resolve_device(config.device).type == "cuda":
            execution = dataclasses.replace(execution, gpus_per_task=1.0)
    tracker = make_tracker(tracking_uri, enabled=mlflow, experiment="nas-harness-supernets")
    bars = progress and execution.executor == "local" and execution.workers == 1  # a worker's bar would garble
    tasks = [(method, str(seed_folder(out_dir, seed)), dataclasses.replace(config, seed=seed), data,
              hyperparameters, seed in existing, monitor_every, monitor_archs, bars) for seed in seeds]
    outcomes: dict[int, TrainOutcome] = {}
    for index, outcome in map_unordered(_train_task, tasks, execution):
        seed = seeds[index]
        outcomes[seed] = outcome
        _log_training(tracker, method, seed, tasks[index][2], data, hyperparameters, outcome)
        if on_trained is not None:
            on_trained(seed, outcome)
    return outcomes


def _train_task(_context: None, task: tuple) -> TrainOutcome:
    from harness.oneshot.allocator import keep_freed_memory

    keep_freed_memory()  # a Ray worker does not inherit this process's malloc settings
    method, run_dir, config, data, hyperparameters, resume, monitor_every, monitor_archs, progress = task
    return train_supernet(method, Path(run_dir), config, data=data, hyperparameters=hyperparameters, resume=resume,
                          monitor_every=monitor_every, monitor_archs=monitor_archs, mlflow=False, progress=progress)


def _log_training(tracker, method: str, seed: int, config: TrainConfig, data: DataSettings,
                  hyperparameters: Mapping[str, Any], outcome: TrainOutcome) -> None:
    """One MLflow run per finished seed: its settings, every epoch's figures, its history file."""
    if not tracker.enabled:
        return
    tracker.start_parent(f"train-{method}-seed{seed}", {"method": method, "dataset": data.dataset,
                                                        **dataclasses.asdict(config),
                                                        **{f"hp.{k}": v for k, v in hyperparameters.items()}})
    for row in outcome.history:
        tracker.log_metrics({k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and k != "epoch"},
                            step=int(row["epoch"]))
    tracker.log_artifacts([outcome.run_dir / HISTORY_NAME])
    tracker.end("FINISHED")


# -- rank ----------------------------------------------------------------------------------------
@dataclass
class RankOutcome:
    """The metrics of every ranker (checkpoints by run name, proxies by name) and what they were measured on."""

    metrics: dict[str, dict[str, Any]]
    architectures: list[Architecture]
    selection: str
    ground_truth: str
    out_dir: Path
    #: Mean seconds each ranker spent on one architecture (supernet scoring, or a proxy's whole cost).
    seconds_per_architecture: dict[str, float] = dataclasses.field(default_factory=dict)
    #: With several seeds of one method and protocol: ``harness.evaluation.seeds.seed_study`` (else None).
    seed_study: dict[str, Any] | None = None


def rank_supernets(checkpoints: Sequence[Path] = (), out_dir: Path = Path("results/runs/rank"), *,
                   data: DataSettings | None = None, archs: int | None = None, selection: str | None = None,
                   seed: int = 0, ground_truth: Path | None = None, scoring: ScoringConfig | None = None,
                   bootstrap: int = 1000, weights: str = "average", tracking_uri: str | None = None,
                   mlflow: bool = True, progress: bool = True, execution: ExecutionSettings | None = None,
                   proxies: Sequence[str] = (), proxy_config: ProxyConfig | None = None,
                   on_ranked: Callable[[str, Path | str, dict[str, Any], dict[str, Any]], None] | None = None
                   ) -> RankOutcome:
    """Score the same architectures with every checkpoint and every zero-cost proxy; Kendall tau and
    friends against the ground truth.

    ``selection`` is one of ``SELECTIONS``; by default a seeded sample of ``archs``
    (1,000) architectures, or, with a ``ground_truth`` file and no ``archs``, exactly the
    architectures that file covers. The ground truth is the dataset's reference table
    unless a stand-alone results file is given. Each checkpoint's ranking.csv / .json / .png
    go to ``out_dir`` (one folder per checkpoint when there are several rankers, plus
    comparison.md); each proxy's (``harness.proxies``, scored with ``proxy_config``) to
    ``out_dir``/<proxy>/. ``on_ranked(name, path, metrics, about)`` is called as each one
    finishes (``path``: the checkpoint, or "zero-cost proxy"), ``about`` saying what was
    measured (score, ground truth, architectures, images). ``execution`` spreads the
    scoring of the supernets and of the proxies over local processes or Ray workers
    (``harness.execution``). With several seeds of one method and protocol, seeds.md /
    seeds.json hold ``harness.evaluation.seeds.seed_study`` of them (``seed_groups``).
    Without checkpoints the dataset defaults to CIFAR-10.
    """
    from harness.evaluation.rank import ground_truth_for, rank_checkpoint, rank_proxies, select_architectures
    from harness.evaluation.ranking import comparison_document
    from harness.oneshot.training import load_checkpoint
    from harness.proxies import check_proxies, proxy_batches
    from harness.reporting.tracking import make_tracker

    scoring = scoring or ScoringConfig(seed=seed)
    proxy_config = proxy_config or ProxyConfig(init_seed=seed, batch_seed=seed)
    checkpoints = [Path(path) for path in checkpoints]
    if not checkpoints and not proxies:
        raise UserError("nothing to rank with: give --checkpoint, --proxy or both")
    chosen_proxies = check_proxies(list(proxies), proxy_config)  # an unknown proxy fails first
    out_dir = check_output_dir(out_dir)
    if execution is not None and execution.executor == "ray" and (checkpoints or proxies):
        check_ray_available()
    check_distinct_checkpoints(checkpoints)
    if selection is not None and selection not in SELECTIONS:
        raise UserError(f"unknown selection {selection!r}; accepted: {', '.join(SELECTIONS)}")
    payloads = [load_checkpoint(path) for path in checkpoints]  # a missing or foreign checkpoint fails first
    data = data or DataSettings(dataset=None)
    data = data.or_trained_on(payloads) if payloads else data
    if data.dataset is None:
        data = dataclasses.replace(data, dataset="cifar10")
    names = run_names(checkpoints)
    clashes = sorted(set(names) & {proxy.name for proxy in chosen_proxies})
    if clashes:
        raise UserError(f"the run folder {clashes[0]!r} has the name of a proxy; both would write to "
                        f"{Path(out_dir) / clashes[0]}: rank them in separate --out folders")
    dataset = data.load()
    if checkpoints:
        scoring = scoring.for_dataset(dataset)  # more images than the split holds: refused before any scoring
    batches = proxy_batches(dataset, proxy_config) if chosen_proxies else None  # too few images: refused now
    truth_source = ground_truth_for(dataset, ground_truth)
    if selection is None:
        selection = "covered" if archs is None and ground_truth is not None else "sample"
    if selection == "covered":  # every architecture of the stand-alone results file, in index order
        chosen = sorted(truth_source.values, key=lambda arch: arch.index)
    else:
        chosen = select_architectures(selection, archs or 1000, seed)
    if len(chosen) < MIN_RANKED:
        raise UserError(f"a ranking needs at least {MIN_RANKED} architectures; {len(chosen)} selected "
                        f"({selection}{', --archs ' + str(archs) if archs else ''})")
    truth = truth_source.lookup(chosen)
    calibration = (f"BatchNorm recalibrated on {scoring.calibration_images} train images" if scoring.recalibrate
                   else "no BatchNorm recalibration")
    common = {"ground_truth": truth_source.source, "architectures": len(chosen), "selection": selection,
              "seed": seed, "dataset": dataset.name}
    meta = {"architectures_selected": selection, "sample_seed": seed, "ground_truth": truth_source.source,
            "chance": truth_source.chance, "dataset": dataset.name}
    tracker = make_tracker(tracking_uri, enabled=mlflow, experiment="nas-harness-ranking")
    several = len(names) + len(chosen_proxies) > 1
    results: dict[str, dict[str, Any]] = {}
    costs: dict[str, float] = {}
    for name, path in zip(names, checkpoints, strict=True):
        run_out = out_dir / name if several else out_dir
        metrics = rank_checkpoint(path, dataset, chosen, truth, scoring, run_out, dict(meta), progress=progress,
                                  bootstrap=bootstrap, weights=weights, execution=execution, data=data)
        results[name], costs[name] = metrics, _seconds_per_architecture(run_out)
        if on_ranked is not None:
            on_ranked(name, path, metrics, {"score": scoring.score, "score_meaning": ScoringConfig.SCORES[scoring.score],
                                            "images": f"{scoring.eval_images} valid images per architecture, "
                                                      f"{calibration}", **common,
                                            "seconds_per_architecture": costs[name]})
        _log_ranking(tracker, f"rank-{name}", run_out, metrics, costs[name],
                     {"checkpoint": str(path), "archs": len(chosen), "mode": selection,
                      "calibration_images": scoring.calibration_images, "eval_images": scoring.eval_images,
                      "score": scoring.score})
    proxy_metrics = rank_proxies([proxy.name for proxy in chosen_proxies], dataset, chosen, truth, proxy_config,
                                 out_dir, dict(meta), progress=progress, bootstrap=bootstrap, batches=batches,
                                 execution=execution, data=data) if chosen_proxies else {}
    for proxy in chosen_proxies:
        run_out = out_dir / proxy.name
        metrics = proxy_metrics[proxy.name]
        results[proxy.name], costs[proxy.name] = metrics, _seconds_per_architecture(run_out)
        if on_ranked is not None:
            images = ("no training images (data-free)" if not proxy.uses_data else
                      f"{proxy_config.batches} {proxy_config.split} batches of {proxy_config.batch_size} images "
                      f"(batch seed {proxy_config.batch_seed})")
            on_ranked(proxy.name, "zero-cost proxy", metrics,
                      {"score": proxy.name, "score_meaning": f"{proxy.meaning}; higher is better",
                       "images": f"{images}, network C={proxy_config.C} N={proxy_config.N} at initialisation "
                                 f"(seed {proxy_config.init_seed})", **common,
                       "seconds_per_architecture": costs[proxy.name]})
        _log_ranking(tracker, f"rank-proxy-{proxy.name}", run_out, metrics, costs[proxy.name],
                     {"proxy": proxy.name, "archs": len(chosen), "mode": selection,
                      **{f"proxy_{key}": value for key, value in dataclasses.asdict(proxy_config).items()}})
    study = _seed_study(out_dir, names, payloads, truth, bootstrap) if several else None
    if several:
        rankers = ("Supernets and proxies" if names and chosen_proxies else "Proxies" if chosen_proxies
                   else "Supernets")
        note = "Seconds per architecture (what one worker spends on one architecture: a supernet's scoring " \
               "wall time x workers / architectures scored; a proxy's own timing, which includes building and " \
               "initialising its network): " + ", ".join(f"{name} {value:.3g}" for name, value in costs.items()) + "."
        document = comparison_document(results, len(chosen), selection, seed, truth_source.source, note, rankers)
        if study is not None:
            document += "\n## Across training seeds\n\n" + (out_dir / SEEDS_REPORT).read_text()
        (out_dir / "comparison.md").write_text(document)
    return RankOutcome(results, chosen, selection, truth_source.source, out_dir, costs, study)


#: Training settings that change where or how fast a supernet trains, not what it learns.
_NOT_PROTOCOL = ("seed", "threads", "device", "snapshot_every")
#: Files ``rank`` writes when several seeds of one method and protocol are ranked together.
SEEDS_REPORT, SEEDS_JSON = "seeds.md", "seeds.json"


def seed_groups(names: Sequence[str], payloads: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """Run names of the checkpoints that one method trained with one protocol and different seeds.

    Groups of 2 or more only, keyed by the method's name (``method-2``, ... when one method
    comes with several protocols); a checkpoint whose seed its group already holds is left out.
    """
    protocols: dict[tuple[str, str], dict[int, str]] = {}
    for name, payload in zip(names, payloads, strict=True):
        config = payload.get("config", {})
        protocol = {key: value for key, value in config.items() if key not in _NOT_PROTOCOL}
        key = (payload["method"], json.dumps({**protocol, "epochs_trained": int(payload.get("epoch", 0))},
                                             sort_keys=True, default=str))
        protocols.setdefault(key, {}).setdefault(int(config.get("seed", 0)), name)
    groups: dict[str, list[str]] = {}
    for (method, _), by_seed in protocols.items():
        if len(by_seed) < 2:
            continue
        label, k = method, 2
        while label in groups:
            label, k = f"{method}-{k}", k + 1
        groups[label] = [by_seed[s] for s in sorted(by_seed)]
    return groups


def _seed_study(out_dir: Path, names: Sequence[str], payloads: Sequence[dict[str, Any]], truth: np.ndarray,
                bootstrap: int) -> dict[str, Any] | None:
    """With several seeds of a method: ``harness.evaluation.seeds.seed_study`` written to seeds.md / seeds.json."""
    from harness.evaluation.ranking import read_ranking_scores
    from harness.evaluation.seeds import seed_study, seed_study_markdown

    groups = seed_groups(names, payloads)
    if not groups:
        return None
    scores = {label: [read_ranking_scores(out_dir / name) for name in members] for label, members in groups.items()}
    study = seed_study(scores, truth, bootstrap=bootstrap)
    study["runs"] = groups
    labels = {label: ", ".join(members) for label, members in groups.items()}
    (out_dir / SEEDS_JSON).write_text(jsonsafe.dumps(study, indent=2) + "\n")
    (out_dir / SEEDS_REPORT).write_text(seed_study_markdown(study, labels))
    return study


def _seconds_per_architecture(run_out: Path) -> float:
    """The mean cost of one architecture that a ranking's ranking.json records."""
    return float(json.loads((run_out / "ranking.json").read_text())["meta"]["seconds_per_architecture"])


def _log_ranking(tracker, run_name: str, run_out: Path, metrics: dict[str, Any], seconds: float,
                 params: dict[str, Any]) -> None:
    """One MLflow run per ranker: its settings, its metrics, the cost of an architecture and its files."""
    tracker.start_parent(run_name, params)
    tracker.log_metrics({**{key: value["value"] for key, value in metrics.items()},
                         "seconds_per_architecture": seconds})
    tracker.log_artifacts([run_out / "ranking.csv", run_out / "ranking.json", run_out / "ranking.png"])
    tracker.end("FINISHED")


# -- search --------------------------------------------------------------------------------------
@dataclass
class SearchOutcome:
    """A search on a trained supernet: its trajectory, what it found, and the query budget it had."""

    record: RunRecord
    info: dict[str, Any]
    budget: int


def search_trained_supernet(checkpoint: Path, out_dir: Path = Path("results/runs/search"), *,
                            data: DataSettings | None = None, searcher: str | None = None,
                            budget: int | None = None, seed: int = 0,
                            scoring: ScoringConfig | None = None, progress: bool = True) -> SearchOutcome:
    """Search a trained supernet with its method's own search stage, or with the black-box ``searcher``.

    Without ``budget``: the stage's own (1,050 queries for SPOS evolution, DARTS' one derived
    cell), else 150. Writes trajectories.csv (the reward column is the supernet score) and
    search.json to ``out_dir``. The final architecture's test figure comes from the dataset's
    reference table when there is one (else ``info["final_test_accuracy_note"]`` says why not).
    """
    from harness.oneshot.supernet_search import SUPERNET_SEARCH_COLUMNS, search_supernet, searcher_for
    from harness.oneshot.training import load_checkpoint
    from harness.reporting.report import write_trajectories_csv
    from harness.search.benchmark_specs import reference_table
    from harness.search.searcher import method_label, takes_budget

    scoring = scoring or ScoringConfig(seed=seed)
    out_dir = check_output_dir(out_dir)
    payload = load_checkpoint(checkpoint)  # a missing or foreign checkpoint fails first
    stage = searcher_for(searcher, seed, budget) if searcher else None
    data = (data or DataSettings(dataset=None)).or_trained_on([payload])
    dataset = data.load()
    reference = reference_table(dataset.name)
    if budget is None:
        budget = getattr(stage, "budget", None) or 150
        if stage is None:
            budget = {"darts": 1}.get(payload["method"], 1050)
        elif takes_budget(type(stage)):  # built with its own default: build it again with the budget it will run
            stage = searcher_for(searcher, seed, budget)
    label = method_label(searcher) if searcher else None
    with _query_bar(budget, f"search {label or payload['method']}", progress) as bar:
        record, info = search_supernet(checkpoint, dataset, budget, scoring, stage, reference, label=label,
                                       on_row=lambda _: bar.update(1))
    write_trajectories_csv([record], out_dir / "trajectories.csv", rename=SUPERNET_SEARCH_COLUMNS)
    (out_dir / "search.json").write_text(
        jsonsafe.dumps({"method": record.method, "budget": budget, **info}, indent=1) + "\n")
    return SearchOutcome(record, info, budget)


def _query_bar(total: int, label: str, enabled: bool):
    """A progress bar over supernet queries on stderr, on a terminal only (a log gets the result)."""
    import sys

    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="query", file=sys.stderr, leave=False,
                disable=not (enabled and sys.stderr.isatty()))
