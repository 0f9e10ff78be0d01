"""The one-shot half of ``nas-harness compare``: supernets trained, searched and ranked beside the tables.

For each one-shot method (SPOS, FairNAS, GreedyNAS, DARTS) and seed, the comparison trains
the method's supernet into ``OUT/oneshot/<method>-seed<k>/`` (``harness.oneshot.training``: a
checkpoint left there by an interrupted comparison is resumed, a finished one reused), runs
the method's own search stage on it (``harness.oneshot.supernet_search``) and scores a fixed,
seeded sample of architectures with it for Kendall tau (``harness.evaluation.rank``, the code behind
``nas-harness rank``). Already trained supernets can be given instead (``supernets``).

Per run it reports the final architecture, that architecture's test figure in the
comparison's benchmark (only for CIFAR-10: the tables hold CIFAR-10 results), the search
cost (the supernet's training-loop wall time, read from its checkpoint so a resumed run
counts every part, plus the search stage's wall time; tau scoring is evaluation and is not
counted) and tau against stand-alone accuracy (the embedded CIFAR-10 table, or a
``ground_truth`` results file for any dataset; without either, tau is not available).

Nothing here imports torch until a one-shot run starts, so tabular comparisons stay light.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import DataFileError, UnknownNameError, UserError
from harness.execution.executors import ExecutionSettings, map_unordered
from harness.search.searcher import method_names

#: ``harness.oneshot.data.DATA_DIR_ENV``, read without importing ``harness.oneshot.data`` (which imports torch).
DATA_DIR_ENV = "NAS_HARNESS_DATA_DIR"
RUNS_FOLDER = "oneshot"
RESULT_FILE = "result.json"
#: Seed of the architecture sample tau is measured on: the same sample for every method and seed.
TAU_SAMPLE_SEED = 0
HOW_TO_PROVIDE = (f"pass --data-dir DIR with CIFAR-10 (cifar-10-batches-py, an ImageFolder tree or its .tar.gz) "
                  f"or set ${DATA_DIR_ENV}; --dataset digits needs no files")


@dataclass(frozen=True)
class OneShotSettings:
    """The data, supernet, search and ranking settings of a comparison's one-shot runs.

    The defaults make a demonstration (a small proxy supernet trained briefly), not a
    reproduction of the papers: NB201's one-shot runs are C=16, N=5, 100 epochs or more.
    """

    dataset: str = "cifar10"
    data_dir: Path | None = None
    cache_dir: Path | None = None
    download: bool = False
    #: One-shot methods run on the first ``seeds`` seeds of the comparison (each trains a supernet).
    seeds: int = 1
    epochs: int = 2
    steps_per_epoch: int | None = 100
    C: int = 8
    N: int = 1
    batch_size: int = 64
    #: At most this many supernet queries per search stage (SPOS' own evolution has 1,050; DARTS needs 1).
    search_budget: int = 100
    tau_archs: int = 100
    ground_truth: Path | None = None
    #: Scoring images per architecture: those of the training monitor, half of ``nas-harness rank``'s.
    calibration_images: int = 320
    eval_images: int = 500
    bootstrap: int = 1000
    #: Trained supernet run folders (or checkpoints) to use instead of training.
    supernets: tuple[Path, ...] = ()
    device: str = "auto"
    threads: int | None = None


#: How ``compare`` spells each setting on the command line.
OPTION_NAMES = {"dataset": "--dataset", "data_dir": "--data-dir", "cache_dir": "--cache-dir",
                "download": "--download", "seeds": "--oneshot-seeds", "epochs": "--oneshot-epochs",
                "steps_per_epoch": "--oneshot-steps-per-epoch", "C": "--oneshot-C", "N": "--oneshot-N",
                "search_budget": "--oneshot-search-budget", "tau_archs": "--tau-archs",
                "ground_truth": "--ground-truth", "calibration_images": "--calibration-images",
                "eval_images": "--eval-images", "supernets": "--supernets"}


@dataclass(frozen=True)
class PlannedRun:
    """One one-shot row: ``run_dir`` holds its outputs (and its checkpoint when trained here)."""

    method: str
    seed: int
    run_dir: Path
    #: A given trained supernet; None: trained into ``run_dir``.
    supernet: Path | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)

    @property
    def checkpoint(self) -> Path:
        return self.supernet if self.supernet is not None else self.run_dir


@dataclass(frozen=True)
class OneShotPlan:
    settings: OneShotSettings
    dataset: str
    runs: list[PlannedRun]


# -- planning: before any run, so mistakes surface at once -----------------------------------------
def data_problem(settings: OneShotSettings) -> str | None:
    """Why the dataset cannot be used (one line), or None when it can.

    An unknown dataset name is a UserError, not a missing dataset.
    """
    no_dir = settings.data_dir is None and not os.environ.get(DATA_DIR_ENV)
    if settings.dataset == "cifar10" and no_dir and not settings.download:
        return "no dataset"  # decided without importing torch
    from harness.oneshot.data import ALIASES, DATASETS, locate_cifar10, locate_fashion_mnist

    name = ALIASES.get(settings.dataset.lower(), settings.dataset.lower())
    if name not in DATASETS:
        raise UnknownNameError(f"unknown dataset {settings.dataset!r}; accepted: {', '.join(DATASETS)}")
    try:
        if name == "cifar10":
            locate_cifar10(settings.data_dir, settings.download)
        elif name == "fashion-mnist":
            locate_fashion_mnist(settings.data_dir, settings.download)
    except DataFileError as exc:
        return str(exc)
    return None


def plan_oneshot(settings: OneShotSettings, named: list[str], methods_given: bool, first_seed: int,
                 out_dir: Path, hyperparameters: Mapping[str, dict] | None = None,
                 restart: bool = False) -> OneShotPlan | None:
    """The one-shot runs of a comparison, or None when there are none.

    ``named`` are the one-shot methods the user listed; with ``methods_given`` False every
    one-shot method runs when the data is there, and without data one line on stderr says
    how to provide it. Named methods (or given supernets) without data are a UserError, and
    so is a supernet checkpoint left in ``out_dir`` by other settings (unless ``restart``):
    refused now, before the tabular runs.
    """
    wanted = bool(named) or bool(settings.supernets)
    if methods_given and not wanted:
        given = [OPTION_NAMES.get(f.name, f.name) for f in dataclasses.fields(settings)
                 if getattr(settings, f.name) != getattr(OneShotSettings(), f.name)]
        if given:  # options that would do nothing: say so rather than ignore them
            raise UserError(f"one-shot settings given ({', '.join(given)}) but --methods names no one-shot method; "
                            f"add one of {', '.join(method_names(tabular=False))}, or drop them")
        return None
    problem = data_problem(settings)
    if problem is not None:
        reason = f"{problem}; {HOW_TO_PROVIDE}" if problem == "no dataset" else problem
        if wanted:
            what = ", ".join(named) if named else "--supernets"
            raise UserError(f"{what} need(s) a dataset: {reason}")
        print(f"one-shot methods skipped: {reason}", file=sys.stderr)
        return None
    _check_settings(settings)
    from harness.oneshot.data import ALIASES

    dataset = ALIASES.get(settings.dataset.lower(), settings.dataset.lower())
    folder = Path(out_dir) / RUNS_FOLDER
    hyperparameters = hyperparameters or {}
    if settings.supernets:
        runs = _given_runs(settings.supernets, named, dataset, folder)
    else:
        methods = named or method_names(tabular=False)
        seeds = [first_seed + i for i in range(settings.seeds)]
        runs = [PlannedRun(m, s, folder / f"{m}-seed{s}", None, dict(hyperparameters.get(m, {})))
                for m in methods for s in seeds]
        from harness.oneshot.method import make_method

        for m in methods:  # a bad hyper-parameter fails now, not after the tabular runs
            make_method(m, first_seed, dict(hyperparameters.get(m, {})))
        if not restart:
            _check_kept_supernets(settings, runs, dataset)
    return OneShotPlan(settings, dataset, runs)


def _check_kept_supernets(settings: OneShotSettings, runs: list[PlannedRun], dataset: str) -> None:
    """Refuse supernets an earlier comparison left in the folder when they were trained otherwise."""
    from harness.oneshot.training import CHECKPOINT_NAME, TrainConfig, check_compatible, load_checkpoint

    for run in runs:
        if (run.run_dir / CHECKPOINT_NAME).exists():
            payload = load_checkpoint(run.run_dir)
            try:
                check_compatible(payload, run.method, _train_config(settings, run.seed), dataset, str(run.run_dir),
                                 TrainConfig.SHAPE_KEYS + TrainConfig.SCHEDULE_KEYS)
            except UserError as exc:
                raise UserError(f"{exc}; pass the same settings to resume it, --restart to start over, or "
                                f"another --out") from None


def _check_settings(settings: OneShotSettings) -> None:
    from harness.space import NUM_ARCHITECTURES

    if not 3 <= settings.tau_archs <= NUM_ARCHITECTURES:  # a ranking needs at least 3 architectures
        raise UserError(f"--tau-archs must be in 3..{NUM_ARCHITECTURES}, got {settings.tau_archs}")
    for name in ("seeds", "search_budget", "eval_images"):
        if getattr(settings, name) < 1:
            raise UserError(f"{name} must be a positive integer, got {getattr(settings, name)}")
    if settings.calibration_images < 0 or settings.bootstrap < 0:
        raise UserError("calibration_images and bootstrap must be non-negative")
    if settings.ground_truth is not None:
        from harness.evaluation.ranking import read_ground_truth

        read_ground_truth(settings.ground_truth)  # a missing or malformed file fails now
    _train_config(settings, seed=0)  # TrainConfig validates sizes, step cap, device


def _given_runs(paths: tuple[Path, ...], named: list[str], dataset: str, folder: Path) -> list[PlannedRun]:
    from harness.experiments.supernets import check_distinct_checkpoints, run_names
    from harness.oneshot.training import load_checkpoint

    check_distinct_checkpoints(paths, "--supernets")
    runs = []
    for name, path in zip(run_names(list(paths)), paths, strict=True):
        payload = load_checkpoint(path)
        if payload["method"] not in method_names(tabular=False):
            raise UserError(f"supernet {path} was trained by {payload['method']!r}, not a one-shot method")
        if payload["dataset"] != dataset:
            raise UserError(f"supernet {path} was trained on {payload['dataset']!r}, not {dataset!r}; "
                            f"pass --dataset {payload['dataset']}")
        seed = int(payload.get("method_state", {}).get("seed", payload["config"].get("seed", 0)))
        runs.append(PlannedRun(payload["method"], seed, folder / name, Path(path)))
    missing = [m for m in named if m not in {run.method for run in runs}]
    if missing:
        raise UserError(f"no supernet in --supernets was trained by {', '.join(missing)}")
    return runs


def _train_config(settings: OneShotSettings, seed: int):
    from harness.oneshot.training import TrainConfig

    return TrainConfig(epochs=settings.epochs, batch_size=settings.batch_size, C=settings.C, N=settings.N,
                       seed=seed, steps_per_epoch=settings.steps_per_epoch, device=settings.device,
                       threads=settings.threads)


# -- running ---------------------------------------------------------------------------------
class OneShotComparison:
    """Runs a plan: ``prepare()`` loads the data and returns the setup; iterating yields one row per run."""

    def __init__(self, plan: OneShotPlan, reference: Any = None, progress: bool = False) -> None:
        self.plan, self.reference, self.progress = plan, reference, progress
        self.setup: dict[str, Any] | None = None

    def prepare(self) -> dict[str, Any]:
        """Load the dataset, the architecture sample and its ground truth; describe what is measured."""
        from harness.evaluation.rank import ground_truth_for, select_architectures
        from harness.oneshot.data import load_dataset
        from harness.oneshot.scoring import ScoringConfig
        from harness.search.benchmark_specs import reference_table

        s = self.plan.settings
        self.dataset = load_dataset(s.dataset, s.data_dir, s.cache_dir, download=s.download)
        self.scoring = ScoringConfig(calibration_images=s.calibration_images, eval_images=s.eval_images,
                                     recalibrate=s.calibration_images > 0, seed=0)
        self.scoring = self.scoring.for_dataset(self.dataset)  # more images than the split: refused before training
        self.archs = select_architectures("sample", s.tau_archs, TAU_SAMPLE_SEED)
        self.truth, self.truth_values, tau_note = None, None, None
        table = reference_table(self.dataset.name)
        if s.ground_truth is not None or table is not None:
            self.truth = ground_truth_for(self.dataset, s.ground_truth)
            self.truth_values = self.truth.lookup(self.archs)
        else:
            tau_note = f"not available: no accuracy table for {self.dataset.name} (pass --ground-truth FILE)"
        if table is None:
            self.reference = None
        calibration = (f"BN recalibrated on {self.scoring.calibration_images} train images"
                       if self.scoring.recalibrate else "no BN recalibration")
        self.setup = {
            "dataset": self.dataset.name,
            "supernet": (f"given run folders ({len(self.plan.runs)})" if s.supernets else
                         asdict(_train_config(s, seed=0)) | {"seed": "the run's seed"}),
            "search": (f"each method's own search stage on its supernet, at most {s.search_budget} supernet "
                       f"queries (DARTS: its derived cell, 1 query)"),
            "search_budget": s.search_budget,
            "reward_metric": (f"supernet score (harness.oneshot.scoring) on {self.scoring.eval_images} valid images "
                              f"({calibration})"),
            "report_metric": (self.reference.report_metric if self.reference is not None else
                              f"not available: the tables hold CIFAR-10 results, not {self.dataset.name}"),
            "report_benchmark": self.reference.name if self.reference is not None else None,
            "cost": ("search cost = supernet training-loop wall time (from its checkpoint) + search-stage wall "
                     "time, in seconds; tau scoring is not counted"),
            "tau": {"architectures": len(self.archs), "sample_seed": TAU_SAMPLE_SEED,
                    "ground_truth": self.truth.source if self.truth is not None else None,
                    "note": tau_note or "Kendall tau-b of the supernet score against the ground truth"},
        }
        return self.setup

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self.setup is None:
            self.prepare()
        for run in self.plan.runs:
            yield self.run_one(run)

    def run_all(self, execution: ExecutionSettings | None = None,
                reference_spec: str | None = None) -> Iterator[dict[str, Any]]:
        """Every run's row as it finishes: here in plan order, or as Ray tasks (each worker prepares the
        data once; a CUDA run asks for a GPU per task). ``reference_spec`` resolves the reference there."""
        if self.setup is None:
            self.prepare()
        if execution is None or execution.executor == "local":
            yield from self
            return
        import torch

        from harness.oneshot.training import resolve_device

        # The threads a run has here: float sums depend on them, and the numbers must not depend on the executor.
        execution = dataclasses.replace(execution, threads=self.plan.settings.threads or torch.get_num_threads())
        if resolve_device(self.plan.settings.device).type == "cuda":
            execution = dataclasses.replace(execution, gpus_per_task=1.0)
        context = functools.partial(_prepared, self.plan, reference_spec)
        for _, row in map_unordered(_run_planned, list(range(len(self.plan.runs))), execution, context):
            yield row

    def run_one(self, run: PlannedRun) -> dict[str, Any]:
        """Train (or resume, or reuse) the supernet, search it and rank with it; returns the row."""
        from harness.oneshot.supernet_search import restore_method, search_supernet
        from harness.oneshot.training import load_checkpoint

        if run.supernet is None:
            self._train(run)
        payload = load_checkpoint(run.checkpoint)
        stage = restore_method(payload).search_stage()
        budget = min(self.plan.settings.search_budget, int(getattr(stage, "budget", 1)))  # DARTS' stage: 1 cell
        key = self._result_key(run, payload, budget)
        cached = _read_result(run.run_dir / RESULT_FILE, key)
        if cached is not None:
            return cached
        record, info = search_supernet(run.checkpoint, self.dataset, budget, self.scoring, None, self.reference)
        from harness.oneshot.supernet_search import SUPERNET_SEARCH_COLUMNS
        from harness.reporting.report import write_trajectories_csv

        run.run_dir.mkdir(parents=True, exist_ok=True)
        write_trajectories_csv([record], run.run_dir / "search_trajectory.csv", rename=SUPERNET_SEARCH_COLUMNS)
        tau = self._tau(run) if self.truth is not None else {}
        row = {
            "method": run.method,
            "seed": run.seed,
            "final_arch": info["final_arch"],
            "final_val": record.final.incumbent_val,
            "final_test_accuracy": _finite(info["final_test_accuracy"]),
            "kendall_tau": _finite(tau.get("value")),
            "kendall_tau_low": _finite(tau.get("low")),
            "kendall_tau_high": _finite(tau.get("high")),
            "train_seconds": info["train_seconds"],
            "search_seconds": info["search_seconds"],
            "cost_seconds": info["train_seconds"] + info["search_seconds"],
            "search_queries": budget,
            "epochs_trained": info["epochs_trained"],
            "supernet": str(run.checkpoint),
        }
        _write_result(run.run_dir / RESULT_FILE, key, row)
        return row

    def _train(self, run: PlannedRun) -> None:
        from harness.oneshot.method import make_method
        from harness.oneshot.training import SupernetTrainer

        config = _train_config(self.plan.settings, run.seed)
        method = make_method(run.method, run.seed, run.hyperparameters)
        trainer = SupernetTrainer(method, self.dataset, config, run.run_dir, progress=self.progress,
                                  method_kwargs=run.hyperparameters)
        try:
            trainer.train(resume=trainer.checkpoint_path.exists())
        except UserError as exc:  # a checkpoint from other settings: say how to get out of it
            raise UserError(f"{exc}; use another --out or delete {run.run_dir}") from None

    def _tau(self, run: PlannedRun) -> dict[str, Any]:
        from harness.evaluation.rank import rank_checkpoint

        meta = {"architectures_selected": "sample", "sample_seed": TAU_SAMPLE_SEED, "ground_truth": self.truth.source,
                "chance": self.truth.chance, "dataset": self.dataset.name}
        metrics = rank_checkpoint(run.checkpoint, self.dataset, self.archs, self.truth_values, self.scoring,
                                  run.run_dir / "ranking", meta, progress=self.progress,
                                  bootstrap=self.plan.settings.bootstrap)
        return metrics["kendall_tau"]

    def _result_key(self, run: PlannedRun, payload: dict[str, Any], budget: int) -> dict[str, Any]:
        """Everything a stored result depends on; a result is reused only when all of it matches."""
        s = self.plan.settings
        key = {
            "checkpoint": str(run.checkpoint), "epoch": int(payload.get("epoch", 0)),
            "step_in_epoch": int(payload.get("step_in_epoch", 0)),
            "elapsed_seconds": float(payload.get("elapsed_seconds", 0.0)),
            "search_budget": budget, "scoring": asdict(self.scoring), "tau_archs": s.tau_archs,
            "tau_seed": TAU_SAMPLE_SEED, "bootstrap": s.bootstrap,
            "ground_truth": self.truth.source if self.truth is not None else None,
            "reference": self.reference.name if self.reference is not None else None,
        }
        return json.loads(json.dumps(key))


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _read_result(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("key") != key:
        return None
    return stored.get("row")


def _write_result(path: Path, key: dict[str, Any], row: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps({"key": key, "row": row}, indent=1) + "\n")
    os.replace(tmp, path)


def _prepared(plan: OneShotPlan, reference_spec: str | None) -> OneShotComparison:
    """What a worker builds once: the comparison with its data, sample and ground truth loaded."""
    from harness.search.benchmark_specs import resolve_benchmark

    comparison = OneShotComparison(plan, reference=resolve_benchmark(reference_spec) if reference_spec else None)
    comparison.prepare()
    return comparison


def _run_planned(comparison: OneShotComparison, index: int) -> dict[str, Any]:
    return comparison.run_one(comparison.plan.runs[index])
