"""How well a weight-sharing supernet ranks architectures against their stand-alone accuracy.

``ranking_metrics`` compares a supernet's score of each architecture with its ground truth
(stand-alone accuracy): Kendall's tau-b, Spearman, Pearson, precision in the top 5% / 10%,
tau-b within the true top 10%, and tau-b without the degenerate architectures. Each comes
with a percentile-bootstrap interval over architectures resampled with replacement.

Every bootstrap statistic is the point metric applied to a resample (the resampled
architectures in order of their original index), so the interval means exactly what the
point value means. All statistics of one resample are computed from its counts (how many
copies of each architecture it holds): Pearson, Spearman and the top-k precisions for all
resamples at once with array operations, tau-b by ``scipy.stats.kendalltau`` per resample
(compiled O(n log n); a pure-numpy weighted tau-b was measured no faster).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from harness import jsonsafe
from harness.errors import DataFileError
from harness.evaluation import stats
from harness.evaluation.stats import _percentile_interval

#: Metric names in report order; kendall_tau_nondegenerate only when a degenerate mask is given.
METRIC_NAMES = (
    "kendall_tau",
    "spearman",
    "pearson",
    "precision_top5",
    "precision_top10",
    "kendall_tau_top10",
    "kendall_tau_nondegenerate",
)
#: Columns of ranking.csv, in order.
CSV_COLUMNS = ("arch", "supernet_score", "ground_truth")
#: Accepted column / key names of a ground-truth file, in order of preference.
TRUTH_KEYS = ("test_accuracy", "ground_truth")
_TRUTH_FORMATS = ("expected a CSV with columns arch and test_accuracy (or ground_truth), "
                  "or a JSON list of objects with those keys")
#: Upper bound on resamples x architectures held in memory at once by the bootstrap.
_CHUNK_ELEMENTS = 1_000_000


# -- inputs ------------------------------------------------------------------------------
def _as_vector(name: str, values: np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {array.shape}")
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        raise ValueError(f"{name} has {bad} non-finite entries (nan or inf); every architecture needs a value")
    return array


def _validate(score: np.ndarray, truth: np.ndarray,
              degenerate: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Score and truth as finite float vectors of one length >= 3, and the mask as booleans."""
    score, truth = _as_vector("score", score), _as_vector("truth", truth)
    if score.size != truth.size:
        raise ValueError(f"score and truth must have the same length, got {score.size} and {truth.size}")
    if score.size < 3:
        raise ValueError(f"ranking needs at least 3 architectures, got {score.size}")
    if degenerate is None:
        return score, truth, None
    mask = np.asarray(degenerate)
    if mask.dtype != np.bool_ or mask.shape != score.shape:
        raise ValueError(f"degenerate must be a boolean array of shape {score.shape}, "
                         f"got {mask.dtype} of shape {mask.shape}")
    return score, truth, mask


def degenerate_mask(truth: np.ndarray, chance: float = 10.0, margin: float = 1.0) -> np.ndarray:
    """Architectures whose ground-truth accuracy (%) is at most ``chance + margin``.

    These did not learn (e.g. no path from input to output), so their order among
    themselves is noise that a ranking metric should not reward or punish.
    """
    return np.asarray(truth, dtype=np.float64) <= chance + margin


# -- point values ------------------------------------------------------------------------
def _top_indices(values: np.ndarray, fraction: float) -> np.ndarray:
    """The top ``stats.top_k(n, fraction)`` items by descending value, ties to the lower index."""
    return np.argsort(-values, kind="stable")[: stats.top_k(values.size, fraction)]


def _point_values(score: np.ndarray, truth: np.ndarray,
                  keep: np.ndarray | None) -> dict[str, tuple[float, int]]:
    """Each metric's value on the full data and how many architectures it is computed over."""
    n = score.size
    top10 = _top_indices(truth, 0.10)
    values = {
        "kendall_tau": (stats.kendall_tau(score, truth), n),
        "spearman": (stats.spearman(score, truth), n),
        "pearson": (stats.pearson(score, truth), n),
        "precision_top5": (stats.precision_at_top(score, truth, 0.05), n),
        "precision_top10": (stats.precision_at_top(score, truth, 0.10), n),
        "kendall_tau_top10": (stats.kendall_tau(score[top10], truth[top10]), top10.size),
    }
    if keep is not None:
        values["kendall_tau_nondegenerate"] = (stats.kendall_tau(score[keep], truth[keep]), int(keep.sum()))
    return values


# -- bootstrap replicates from resample counts -------------------------------------------
def _resample_counts(rng: np.random.Generator, rows: int, n: int) -> np.ndarray:
    """(rows, n) copies of each architecture in ``rows`` resamples of n drawn with replacement."""
    idx = rng.integers(0, n, size=(rows, n))
    flat = (idx + np.arange(rows)[:, None] * n).ravel()
    return np.bincount(flat, minlength=rows * n).reshape(rows, n)


def _weighted_ranks(values: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average (1-based) rank of each item within each resample, and whether the resample varies.

    An item's rank is the number of resampled copies below its value plus the mean position
    of its tie group: what ``scipy.stats.rankdata`` gives the repeated array.
    """
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    first = np.r_[True, sorted_values[1:] != sorted_values[:-1]]
    starts = np.flatnonzero(first)
    group_of = np.empty(values.size, dtype=np.intp)
    group_of[order] = np.cumsum(first) - 1
    group_counts = np.add.reduceat(counts[:, order], starts, axis=1)
    below = np.cumsum(group_counts, axis=1) - group_counts
    ranks = below + (group_counts + 1) / 2.0
    return ranks[:, group_of], np.count_nonzero(group_counts, axis=1) >= 2


def _weighted_pearson(x: np.ndarray, y: np.ndarray, counts: np.ndarray, varies: np.ndarray) -> np.ndarray:
    """Pearson's r of each resample (x, y: (n,) or (rows, n)); nan where either side is constant."""
    total = counts.sum(axis=1, keepdims=True)
    dx = x - (counts * x).sum(axis=1, keepdims=True) / total
    dy = y - (counts * y).sum(axis=1, keepdims=True) / total
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (counts * dx * dy).sum(axis=1) / np.sqrt((counts * dx * dx).sum(axis=1) * (counts * dy * dy).sum(axis=1))
    return np.where(varies, np.clip(r, -1.0, 1.0), np.nan)


def _top_counts(values: np.ndarray, counts: np.ndarray, k: int) -> np.ndarray:
    """Copies of each item among a resample's top k (descending value, ties to the lower index)."""
    order = np.argsort(-values, kind="stable")
    ordered = counts[:, order]
    before = np.cumsum(ordered, axis=1) - ordered
    taken = np.empty_like(counts)
    taken[:, order] = np.clip(k - before, 0, ordered)
    return taken


def _tau_of_counts(score: np.ndarray, truth: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Kendall tau-b of each resample given by a row of counts."""
    items = np.arange(score.size)
    out = np.empty(counts.shape[0])
    for row, row_counts in enumerate(counts):
        rep = np.repeat(items, row_counts)
        out[row] = stats.kendall_tau(score[rep], truth[rep])
    return out


def _replicates(score: np.ndarray, truth: np.ndarray, keep: np.ndarray | None,
                counts: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric on each resample (a row of ``counts``)."""
    n = score.size
    k5, k10 = stats.top_k(n, 0.05), stats.top_k(n, 0.10)
    score_ranks, score_varies = _weighted_ranks(score, counts)
    truth_ranks, truth_varies = _weighted_ranks(truth, counts)
    varies = score_varies & truth_varies
    truth_top10 = _top_counts(truth, counts, k10)
    out = {
        "kendall_tau": _tau_of_counts(score, truth, counts),
        "spearman": _weighted_pearson(score_ranks, truth_ranks, counts, varies),
        "pearson": _weighted_pearson(score, truth, counts, varies),
        "precision_top5": np.minimum(_top_counts(score, counts, k5), _top_counts(truth, counts, k5)).sum(axis=1) / k5,
        "precision_top10": np.minimum(_top_counts(score, counts, k10), truth_top10).sum(axis=1) / k10,
        "kendall_tau_top10": _tau_of_counts(score, truth, truth_top10),
    }
    if keep is not None:
        out["kendall_tau_nondegenerate"] = _tau_of_counts(score[keep], truth[keep], counts[:, keep])
    return out


def _bootstrap(score: np.ndarray, truth: np.ndarray, keep: np.ndarray | None,
               resamples: int, seed: int) -> dict[str, np.ndarray]:
    """Every metric on ``resamples`` resamples drawn as ``default_rng(seed).integers(0, n, (resamples, n))``.

    Resamples are drawn in chunks to bound memory; the generator's stream, and so every
    replicate, is the same as one draw of the whole matrix.
    """
    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK_ELEMENTS // score.size)
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, resamples, rows):
        counts = _resample_counts(rng, min(rows, resamples - start), score.size)
        for name, values in _replicates(score, truth, keep, counts).items():
            parts.setdefault(name, []).append(values)
    return {name: np.concatenate(values) for name, values in parts.items()}


def ranking_metrics(
    score: np.ndarray,
    truth: np.ndarray,
    *,
    degenerate: np.ndarray | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, dict]:
    """How well ``score`` (supernet) orders architectures by ``truth`` (stand-alone accuracy).

    Returns ``{metric: {"value", "low", "high", "n"}}`` with the metrics of
    ``METRIC_NAMES``; ``n`` is the number of architectures the metric is computed over.
    Higher is better for both inputs. Top sets rank by descending value with ties broken
    by the lower index, and hold ``stats.top_k(n, fraction)`` = round(fraction * n) (at
    least 1) architectures: ``precision_topP`` is the share of the true top P% that is
    also in the score's top P%; ``kendall_tau_top10`` is tau-b among the true top 10%;
    ``kendall_tau_nondegenerate`` is tau-b over the architectures not in ``degenerate``
    (omitted when no mask is given; see ``degenerate_mask``). Undefined values (e.g. a
    constant input) are nan.

    ``low``/``high`` are the percentile-bootstrap interval at ``confidence`` over
    ``bootstrap`` resamples of the architectures with replacement, drawn from
    ``np.random.default_rng(seed)``; resamples where a metric is undefined are dropped.
    ``bootstrap=0`` gives nan bounds.
    """
    score, truth, mask = _validate(score, truth, degenerate)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if int(bootstrap) < 0:
        raise ValueError(f"bootstrap must be a non-negative number of resamples, got {bootstrap}")
    keep = None if mask is None else ~mask
    points = _point_values(score, truth, keep)
    replicates = _bootstrap(score, truth, keep, int(bootstrap), seed) if bootstrap else {}
    out: dict[str, dict] = {}
    for name, (value, n) in points.items():
        low, high = (_percentile_interval(replicates[name], confidence) if name in replicates
                     else (math.nan, math.nan))
        out[name] = {"value": float(value), "low": low, "high": high, "n": int(n)}
    return out


# -- tables --------------------------------------------------------------------------------
def _number(value: float) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3f}"


def _interval(metric: Mapping[str, Any]) -> str:
    return f"[{_number(metric['low'])}, {_number(metric['high'])}]"


def format_metrics(metrics: Mapping[str, Mapping[str, Any]], confidence: float = 0.95) -> str:
    """A markdown table of ``ranking_metrics``'s output: metric, value, CI, n."""
    lines = [f"| metric | value | {100 * confidence:g}% CI | n |", "|---|---:|---|---:|"]
    for name, metric in metrics.items():
        lines.append(f"| {name} | {_number(metric['value'])} | {_interval(metric)} | {metric['n']} |")
    return "\n".join(lines)


#: What each metric measures, in words (printed under a table of them).
METRIC_MEANINGS = {
    "kendall_tau": "Kendall tau-b between the score and the ground truth over all architectures",
    "spearman": "Spearman rank correlation over all architectures",
    "pearson": "Pearson correlation of the values over all architectures",
    "precision_top5": "share of the true top 5% of architectures that is also in the score's top 5%",
    "precision_top10": "share of the true top 10% of architectures that is also in the score's top 10%",
    "kendall_tau_top10": "Kendall tau-b among the true top 10% only",
    "kendall_tau_nondegenerate": "Kendall tau-b without the degenerate (chance-level) architectures",
}
#: The share of the architectures each precision metric compares the top sets of.
TOP_FRACTIONS = {"precision_top5": 0.05, "precision_top10": 0.10}
#: Below this many architectures a metric is printed with a warning: its value says little.
MIN_RELIABLE_N = 10


def metric_notes(metrics: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Lines to print under a table of ``metrics``: what each one measures, and a warning for each
    computed over fewer than ``MIN_RELIABLE_N`` architectures."""
    notes = [f"{name}: {METRIC_MEANINGS[name]}" for name in metrics if name in METRIC_MEANINGS]
    for name, metric in metrics.items():
        n = int(metric.get("n", 0))
        if name in TOP_FRACTIONS:  # what matters is the size of the top sets compared
            top = stats.top_k(n, TOP_FRACTIONS[name])
            if top < MIN_RELIABLE_N:
                notes.append(f"warning: {name} compares the top {top} architecture(s) of each ranking; a share of "
                             f"fewer than {MIN_RELIABLE_N} says little")
        elif n < MIN_RELIABLE_N:
            notes.append(f"warning: {name} is computed over {n} architecture(s); a figure over "
                         f"fewer than {MIN_RELIABLE_N} says little")
    return notes


def compare_table(rows: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """A markdown table, one row per method, each metric as ``value [low, high]``.

    Columns are every metric any method has, in order of first appearance; a method
    without a metric shows ``n/a``.
    """
    names: list[str] = []
    for metrics in rows.values():
        names.extend(name for name in metrics if name not in names)
    lines = ["| method | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for method, metrics in rows.items():
        cells = [f"{_number(metrics[name]['value'])} {_interval(metrics[name])}" if name in metrics else "n/a"
                 for name in names]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison_document(rows: Mapping[str, Mapping[str, Mapping[str, Any]]], architectures: int, selection: str,
                        seed: int, ground_truth: str, note: str = "", rankers: str = "Supernets") -> str:
    """``comparison.md``: :func:`compare_table` of ``rankers`` (supernets, proxies) ranking the same
    architectures, with its header."""
    return (f"# {rankers} ranking the same {architectures} architectures ({selection}, seed {seed})\n\n"
            f"Ground truth: {ground_truth}.\n\n" + (f"{note}\n\n" if note else "") + f"{compare_table(rows)}\n")


# -- files ---------------------------------------------------------------------------------
def _replace_atomic(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write`` on a temporary file beside ``path``, then move it into place in one step."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _ranking_csv(archs: list[str], score: np.ndarray, truth: np.ndarray) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for arch, s, t in zip(archs, score, truth, strict=True):
        writer.writerow([arch, repr(float(s)), repr(float(t))])
    return buffer.getvalue()


def _draw_scatter(path: Path, score: np.ndarray, truth: np.ndarray, metrics: Mapping[str, Any],
                  meta: Mapping[str, Any]) -> None:
    """Supernet score against ground truth on matplotlib's Agg canvas (no pyplot, no global backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(truth, score, s=4, alpha=0.3, linewidths=0)
    ax.set_xlabel("ground truth (stand-alone accuracy, %)")
    ax.set_ylabel(meta.get("score_label", "supernet score"))
    tau = metrics.get("kendall_tau")
    title = f"{meta['method']}: " if meta.get("method") else ""
    if tau is not None:
        title += f"Kendall tau {_number(tau['value'])} {_interval(tau)}, n = {tau['n']}"
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")


def write_ranking(out_dir: Path, archs: list[str], score: np.ndarray, truth: np.ndarray,
                  metrics: dict, meta: dict) -> list[Path]:
    """Write ranking.csv (``CSV_COLUMNS``), ranking.json (meta and metrics) and ranking.png.

    Each file is replaced atomically, so a reader never sees half a file. In the JSON,
    nan (an undefined metric) is written as null.
    """
    score, truth = _as_vector("score", score), _as_vector("truth", truth)
    if not len(archs) == score.size == truth.size:
        raise ValueError(f"archs, score and truth must have one length, got {len(archs)}, {score.size}, {truth.size}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = _ranking_csv(archs, score, truth)
    document = jsonsafe.dumps({"meta": meta, "metrics": metrics}, indent=2) + "\n"
    return [
        _replace_atomic(out_dir / "ranking.csv", lambda tmp: tmp.write_text(table, encoding="utf-8")),
        _replace_atomic(out_dir / "ranking.json", lambda tmp: tmp.write_text(document, encoding="utf-8")),
        _replace_atomic(out_dir / "ranking.png", lambda tmp: _draw_scatter(tmp, score, truth, metrics, meta)),
    ]


def read_ranking_scores(out_dir: Path) -> np.ndarray:
    """The ranker's score of each architecture, in the order of the ranking.csv that ``write_ranking`` wrote."""
    return read_ranking(out_dir)[1]


def read_ranking(out_dir: Path) -> tuple[list[str], np.ndarray, np.ndarray, dict[str, Any]]:
    """What ``write_ranking`` wrote to ``out_dir``: the architectures, their scores and ground truth
    (in ranking.csv's order), and ranking.json's meta."""
    with open(Path(out_dir) / "ranking.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    meta = json.loads((Path(out_dir) / "ranking.json").read_text())["meta"]
    return ([row[CSV_COLUMNS[0]] for row in rows], np.array([float(row[CSV_COLUMNS[1]]) for row in rows]),
            np.array([float(row[CSV_COLUMNS[2]]) for row in rows]), meta)


def _truth_rows(path: Path, text: str) -> list[tuple[str, Mapping[str, Any]]]:
    """(where, record) for each entry of a ground-truth file, JSON or CSV by its content."""
    if path.suffix.lower() == ".json" or text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataFileError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); {_TRUTH_FORMATS}") from None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise DataFileError(f"{path} is not a JSON list of objects; {_TRUTH_FORMATS}")
        return [(f"{path}, entry {i}", record) for i, record in enumerate(records, start=1)]
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    if "arch" not in columns or not any(key in columns for key in TRUTH_KEYS):
        raise DataFileError(f"{path} has columns {','.join(columns)!r}; {_TRUTH_FORMATS}")
    return [(f"{path}, line {reader.line_num}", row) for row in reader]


def _truth_value(where: str, record: Mapping[str, Any]) -> tuple[str, float]:
    """The architecture and accuracy of one entry; a DataFileError naming the entry when malformed."""
    arch = record.get("arch")
    raw = next((record[key] for key in TRUTH_KEYS if record.get(key) not in (None, "")), None)
    if not isinstance(arch, str) or not arch.strip() or raw is None or isinstance(raw, bool):
        raise DataFileError(f"{where}: needs an arch and a test_accuracy (or ground_truth); {_TRUTH_FORMATS}")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise DataFileError(f"{where}: accuracy {str(raw)!r} is not a finite number")
    return arch.strip(), value


def read_ground_truth(path: Path) -> dict[str, float]:
    """Stand-alone accuracy per architecture string from a CSV or JSON results file.

    A CSV needs columns ``arch`` and ``test_accuracy`` (or ``ground_truth``, as in
    ranking.csv); JSON is a list of objects with those keys. A missing, unreadable, empty or
    malformed file, an architecture listed twice, or rows trained under different protocols
    (``harness.oneshot.standalone.PROTOCOL_KEYS``: dataset, epochs, seed, batch size, learning
    rates, ...; one ground truth, one protocol), is a ``DataFileError`` (a UserError) with a
    one-line message.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataFileError(f"ground-truth file {path} does not exist; {_TRUTH_FORMATS}") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise DataFileError(f"cannot read ground-truth file {path} ({reason}); {_TRUTH_FORMATS}") from None
    from harness.oneshot.standalone import protocol_differences, protocol_of

    truth: dict[str, float] = {}
    first: tuple[str, dict[str, str]] | None = None
    for where, record in _truth_rows(path, text):
        arch, value = _truth_value(where, record)
        if arch in truth:
            raise DataFileError(f"{where}: architecture {arch} is listed twice")
        truth[arch] = value
        protocol = protocol_of(record)
        first = first or (where, protocol)
        differences = protocol_differences(first[1], protocol)
        if differences:
            raise DataFileError(f"{path} mixes results of different protocols: {', '.join(differences)} "
                                f"({first[0].removeprefix(f'{path}, ')} vs {where.removeprefix(f'{path}, ')}); "
                                f"rank against one protocol at a time (one results file per protocol)")
    if not truth:
        raise DataFileError(f"ground-truth file {path} has no entries; {_TRUTH_FORMATS}")
    return truth
