"""PNG plots of search trajectories: incumbent test figure and regret against queries.

Each method is drawn as its median over seeds with the interquartile band. Figures are
drawn on matplotlib's Agg canvas directly (no pyplot), so plotting never needs a display
and never changes the process-wide backend; matplotlib is imported only when plotting.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from harness.search.run import RunRecord

#: Where a zero regret is drawn on the log axis when no run has a positive regret to scale by.
DEFAULT_REGRET_FLOOR = 1e-3


def incumbent_curves(records: Iterable[RunRecord], field: str = "incumbent_test") -> dict[str, np.ndarray]:
    """Per method (in order of first appearance): an (n_runs, n_queries) array of ``field``.

    Runs are ordered by seed; a run shorter than the longest (interrupted) is padded with nan.
    """
    by_method: dict[str, list[RunRecord]] = {}
    for record in records:
        by_method.setdefault(record.method, []).append(record)
    curves: dict[str, np.ndarray] = {}
    for method, runs in by_method.items():
        runs = sorted(runs, key=lambda r: r.seed)
        length = max((len(r.rows) for r in runs), default=0)
        matrix = np.full((len(runs), length), np.nan)
        for i, run in enumerate(runs):
            matrix[i, : len(run.rows)] = [getattr(row, field) for row in run.rows]
        curves[method] = matrix
    return curves


def _bands(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Queries with any data, and the 25th, 50th and 75th percentiles over runs there."""
    has_data = ~np.all(np.isnan(matrix), axis=0)
    data = matrix[:, has_data]
    queries = np.arange(1, matrix.shape[1] + 1)[has_data]
    if data.size == 0:
        empty = np.empty(0)
        return queries, empty, empty, empty
    q25, q50, q75 = np.nanpercentile(data, [25, 50, 75], axis=0)
    return queries, q25, q50, q75


def _wrap(text: str, width: int = 72) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def _draw(
    curves: Mapping[str, np.ndarray],
    path: Path,
    *,
    title: str,
    ylabel: str,
    log_y: bool,
    note: str | None = None,
) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    colours = [f"C{i % 10}" for i in range(len(curves))]
    for (method, matrix), colour in zip(curves.items(), colours, strict=True):
        queries, q25, q50, q75 = _bands(matrix)
        if queries.size == 0:
            continue
        runs = matrix.shape[0]
        # Incumbent curves are step functions: each value holds until the next improvement.
        ax.plot(
            queries,
            q50,
            color=colour,
            linewidth=1.6,
            drawstyle="steps-post",
            label=f"{method} (median of {runs} runs)",
        )
        ax.fill_between(queries, q25, q75, color=colour, alpha=0.2, linewidth=0, step="post")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("queries")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(loc="best", fontsize=8, title="shaded: interquartile range", title_fontsize=8)
    if note:
        ax.text(0.01, 0.01, note, transform=ax.transAxes, fontsize=7, alpha=0.7, va="bottom")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def plot_incumbent(
    records: Iterable[RunRecord] | Mapping[str, np.ndarray],
    path: str | Path,
    *,
    benchmark: str,
    report_metric: str,
) -> Path:
    """Best-so-far test figure of the validation-chosen incumbent against queries."""
    curves = records if isinstance(records, Mapping) else incumbent_curves(records)
    return _draw(
        curves,
        Path(path),
        title=_wrap(
            f"{benchmark}: best-so-far (incumbent) test accuracy vs queries. Metric: {report_metric}"
        ),
        ylabel="best-so-far test accuracy of the incumbent",
        log_y=False,
    )


def plot_regret(
    records: Iterable[RunRecord] | Mapping[str, np.ndarray],
    path: str | Path,
    *,
    optimum: float,
    benchmark: str,
    report_metric: str,
) -> Path:
    """Regret (table optimum - incumbent test figure) against queries on a log axis.

    A regret of zero (the optimum found) cannot sit on a log axis; it is drawn at a floor
    (half the smallest positive regret, or ``DEFAULT_REGRET_FLOOR``) and the plot says so.
    """
    curves = records if isinstance(records, Mapping) else incumbent_curves(records)
    regrets = {method: optimum - matrix for method, matrix in curves.items()}
    positive = [m[np.isfinite(m) & (m > 0)] for m in regrets.values()]
    smallest = min((float(p.min()) for p in positive if p.size), default=math.nan)
    floor = smallest / 2 if math.isfinite(smallest) else DEFAULT_REGRET_FLOOR
    clipped = {method: np.where(np.isnan(m), np.nan, np.maximum(m, floor)) for method, m in regrets.items()}
    return _draw(
        clipped,
        Path(path),
        title=_wrap(f"{benchmark}: regret to the table optimum ({optimum:.4g}). Metric: {report_metric}"),
        ylabel="regret: optimum - incumbent test accuracy (log)",
        log_y=True,
        note=f"zero regret drawn at {floor:.2g}",
    )


def write_plots(records: Iterable[RunRecord], metadata: Any, out_dir: str | Path) -> dict[str, Path]:
    """Both plots into ``out_dir``: incumbent.png, and regret.png when the optimum is known.

    ``metadata`` is a ``harness.reporting.report.ReportMetadata`` (anything with ``benchmark``,
    ``report_metric`` and ``optimum``).
    """
    curves = incumbent_curves(records)
    out_dir = Path(out_dir)
    benchmark, metric, optimum = metadata.benchmark, metadata.report_metric, metadata.optimum
    paths = {
        "incumbent": plot_incumbent(
            curves, out_dir / "incumbent.png", benchmark=benchmark, report_metric=metric
        )
    }
    if optimum is not None and math.isfinite(optimum):
        paths["regret"] = plot_regret(
            curves, out_dir / "regret.png", optimum=optimum, benchmark=benchmark, report_metric=metric
        )
    return paths
