"""How well each learned surrogate ranks the cells it was not fitted on.

For every model, training-set size ``n`` and seed, the model is fitted on the cells
``sample_training_indices(n, seed)`` picks (the same cells for every model, so the
comparison is paired) and scored on all the other cells of the table: Kendall tau,
Spearman rho, R^2 and mean absolute error of the predicted against the table's reward.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau, spearmanr

from harness import jsonsafe
from harness.errors import UserError
from harness.search.benchmark import TabularBenchmark
from harness.space import NUM_ARCHITECTURES, ops_matrix
from surrogates.learned import get_model, sample_training_indices

METRICS: tuple[str, ...] = ("kendall_tau", "spearman", "r2", "mae")
DEFAULT_MODELS: tuple[str, ...] = ("xgboost_onehot", "xgboost_path", "random_forest", "gp", "xgboost", "ensemble")


def held_out_metrics(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """Ranking (Kendall tau-b, Spearman) and regression (R^2, MAE) agreement."""
    residual = actual - predicted
    total = float(((actual - actual.mean()) ** 2).sum())
    return {
        "kendall_tau": float(kendalltau(predicted, actual).statistic),
        "spearman": float(spearmanr(predicted, actual).statistic),
        "r2": 1.0 - float((residual**2).sum()) / total if total > 0 else float("nan"),
        "mae": float(np.abs(residual).mean()),
    }


def run_surrogate_study(
    table: TabularBenchmark,
    models: Sequence[str] = DEFAULT_MODELS,
    ns: Iterable[int] = (100, 300, 1000),
    seeds: Iterable[int] = range(5),
    on_fit: Callable[[dict], None] | None = None,
) -> list[dict]:
    """One row per (model, n, seed): the held-out metrics and the seconds fit + predict took.

    ``on_fit(row)`` is called after each fit (a progress bar). A model, size or seed given
    twice is a UserError (it would count one fit as two seeds' worth of evidence).
    """
    models, ns, seeds = list(models), [int(n) for n in ns], [int(seed) for seed in seeds]
    for option, values in (("--models", models), ("--n", ns), ("seeds", seeds)):
        repeated = sorted({str(value) for value in values if values.count(value) > 1})
        if repeated:
            raise UserError(f"{option} gives {', '.join(repeated)} more than once; give each once")
    surrogates = [get_model(name) for name in models]
    ops = ops_matrix()
    rows = []
    for n in ns:
        for seed in seeds:
            train = sample_training_indices(n, seed)
            held_out = np.ones(NUM_ARCHITECTURES, dtype=bool)
            held_out[train] = False
            for surrogate in surrogates:
                start = time.perf_counter()
                predictor = surrogate.fit(ops[train], table.val_accuracy[train], seed)
                predicted = predictor(ops)
                seconds = time.perf_counter() - start
                rows.append(
                    {
                        "model": surrogate.name,
                        "encoding": surrogate.encoding,
                        "n": int(n),
                        "seed": int(seed),
                        **held_out_metrics(predicted[held_out], table.val_accuracy[held_out]),
                        "seconds": seconds,
                    }
                )
                if on_fit is not None:
                    on_fit(rows[-1])
    return rows


def summarise(rows: Sequence[dict]) -> list[dict]:
    """Mean and sample standard deviation (ddof=1; nan for one seed, which has no spread) over seeds, per model and n.

    Rows keep the order in which (n, model) first appears.
    """
    groups: dict[tuple[int, str], list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["n"], row["model"])].append(row)
    summary = []
    for (n, model), group in groups.items():
        entry = {"model": model, "encoding": group[0]["encoding"], "n": n, "seeds": len(group)}
        for metric in (*METRICS, "seconds"):
            values = np.array([row[metric] for row in group], dtype=float)
            entry[f"{metric}_mean"] = float(values.mean())
            entry[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        summary.append(entry)
    return sorted(summary, key=lambda e: e["n"])


def _spread(mean: float, std: float | None) -> str:
    return f"{mean:.3f} ± {'n/a' if std is None or not math.isfinite(std) else f'{std:.3f}'}"


def format_table(summary: Sequence[dict]) -> str:
    """A markdown table: one line per (n, model), mean ± sample std over its seeds of each metric
    (``spread_note`` says so in words); n/a for a single seed."""
    header = "| n | model | encoding | seeds | Kendall tau | Spearman | R^2 | MAE | fit+predict s |"
    lines = [header, "|---:|---|---|---:|---:|---:|---:|---:|---:|"]
    for e in summary:
        cells = [_spread(e[f"{m}_mean"], e[f"{m}_std"]) for m in METRICS]
        lines.append(f"| {e['n']} | {e['model']} | {e['encoding']} | {e['seeds']} | {' | '.join(cells)} | "
                     f"{e['seconds_mean']:.2f} |")
    return "\n".join(lines)


def spread_note(summary: Sequence[dict]) -> str:
    """What ``format_table``'s ± means, over how many seeds, and why a single seed shows n/a."""
    counts = sorted({e["seeds"] for e in summary})
    seeds = " or ".join(map(str, counts))
    note = (f"Each cell: mean ± sample standard deviation (ddof=1) over {seeds} seed{'s' if counts != [1] else ''} "
            f"(training samples), fit+predict s: mean.")
    if 1 in counts:
        note += " With one seed the standard deviation is n/a: one value has no spread (pass --seeds 2 or more)."
    return note


def format_pivot(summary: Sequence[dict], metric: str = "kendall_tau") -> str:
    """A compact markdown table of one metric's mean: models as rows, n as columns."""
    ns = sorted({e["n"] for e in summary})
    models = list(dict.fromkeys(e["model"] for e in summary))
    means = {(e["model"], e["n"]): e[f"{metric}_mean"] for e in summary}
    lines = [f"| {metric} | " + " | ".join(f"n={n}" for n in ns) + " |", "|---|" + "---:|" * len(ns)]
    for model in models:
        cells = [f"{means[(model, n)]:.3f}" if (model, n) in means else "" for n in ns]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_study(
    rows: Sequence[dict], summary: Sequence[dict], out: Path, setup: dict | None = None,
    preamble: str = "# Learned surrogates: held-out agreement\n\n", notes: str = "",
) -> None:
    """Write ``out/study.json`` (setup, summary, every row) and ``out/study.md`` (both tables)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    document = {"setup": setup or {}, "spread": spread_note(summary), "summary": list(summary), "rows": list(rows)}
    (out / "study.json").write_text(jsonsafe.dumps(document, indent=1))  # a single seed's std: null
    markdown = f"{format_pivot(summary)}\n\n{format_table(summary)}\n\n{spread_note(summary)}"
    (out / "study.md").write_text(f"{preamble}{markdown}\n{notes}")
