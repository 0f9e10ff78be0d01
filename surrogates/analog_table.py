"""The embedded benchmark: stand-alone CIFAR-10 accuracies of all 15,625 NB201 cells.

Source: PyPI's ``analog-nasbench`` (AnalogNAS-Bench, IBM), file ``data.anb``. The
package's own ``import`` needs ``pkg_resources``, which current setuptools no longer
ships, so the file is located through the installed distribution's file list and read
with a restricted unpickler that admits only the two plain record classes it holds.

Encoding. The table is keyed by NASLib ``op_indices`` (see ``harness.space.converters``):
edges (0,1), (0,2), (0,3), (1,2), (1,3), (2,3) and op codes 0 skip_connect, 1 none,
2 nor_conv_3x3, 3 nor_conv_1x1, 4 avg_pool_3x3. Evidence, each pinned by a test:
the 341 cells at exactly 10.0% are exactly the 341 cells whose output is disconnected
under this mapping (which fixes ``none`` = 1 and the edge order up to reversing the DAG);
isomorphic cells agree to 0.60 points on average with code 0 = skip_connect against
2.4 points with code 4 = skip_connect; the all-code-2 cell (93.2%) beats all-code-3
(89.5%) as 3x3 beats 1x1 convolutions; and the benchmark's training script builds each
cell with NASLib's ``set_spec(op_indices)``, which fixes the row-major edge order.

The table holds one accuracy per cell (``baseline_accuracy``, measured on the CIFAR-10
test set after 200 epochs). There is no separate validation figure, so the reward and
the reported figure are the same number; every report says so.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np

from harness.errors import DataFileError
from harness.search.benchmark import TabularBenchmark
from harness.space import NUM_ARCHITECTURES
from harness.space.converters import from_naslib

DISTRIBUTION = "analog-nasbench"
ENV_VAR = "NAS_HARNESS_ANALOG_FILE"
CACHE_VERSION = 1
#: The one dataset the embedded table has accuracies for.
TABLE_DATASET = "cifar10"

#: Scalar metrics of each record, exposed as extras ("drift" figures: mean over repeats).
SCALAR_METRICS = ("baseline_accuracy", "ptq_accuracy", "qat_accuracy", "noisy_accuracy", "analog_accuracy")
DRIFT_METRICS = tuple(
    f"{kind}_drift_{seconds}" for kind in ("baseline", "analog") for seconds in (60, 3600, 86400, 2592000)
)


class _Record:
    """Stand-in for analognasbench.data.Architecture / DriftMeasurement: attributes only."""


class _RestrictedUnpickler(pickle.Unpickler):
    _ALLOWED = {("analognasbench.data", "Architecture"), ("analognasbench.data", "DriftMeasurement")}

    def find_class(self, module: str, name: str):  # noqa: D401
        if (module, name) in self._ALLOWED:
            return _Record
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the table file")


def locate_table_file() -> Path:
    """Find data.anb: $NAS_HARNESS_ANALOG_FILE, else the installed analog-nasbench distribution."""
    override = os.environ.get(ENV_VAR)
    if override:
        path = Path(override)
        if not path.is_file():
            raise DataFileError(f"{ENV_VAR} points to {path}, which is not a file")
        return path
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise DataFileError(
            f"the embedded table needs the '{DISTRIBUTION}' package (pip install {DISTRIBUTION}) "
            f"or {ENV_VAR}=/path/to/data.anb"
        ) from None
    for file in dist.files or ():
        if file.name == "data.anb":
            path = Path(dist.locate_file(file))
            if path.is_file():
                return path
    raise DataFileError(f"package '{DISTRIBUTION}' is installed but its data.anb file is missing")


def _cache_dir() -> Path:
    root = os.environ.get("NAS_HARNESS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "nas-harness"
    )
    return Path(root)


def read_table_file(path: Path) -> dict[str, np.ndarray]:
    """Parse data.anb into arrays indexed by ``Architecture.index`` (slow path: ~1 s)."""
    try:
        with open(path, "rb") as handle:
            records = _RestrictedUnpickler(handle).load()
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError) as exc:
        raise DataFileError(f"cannot read the analog-nasbench table {path}: {exc}") from None
    if not isinstance(records, dict) or len(records) != NUM_ARCHITECTURES:
        raise DataFileError(
            f"{path} is not a complete analog-nasbench table: expected a dict of "
            f"{NUM_ARCHITECTURES} architectures"
        )
    columns = {name: np.full(NUM_ARCHITECTURES, np.nan) for name in SCALAR_METRICS + DRIFT_METRICS}
    seen = np.zeros(NUM_ARCHITECTURES, dtype=bool)
    try:
        for key, record in records.items():
            index = from_naslib(key).index
            seen[index] = True
            for name in SCALAR_METRICS:
                columns[name][index] = float(getattr(record, name))
            for name in DRIFT_METRICS:
                columns[name][index] = float(getattr(record, name).value)
    except (AttributeError, TypeError, ValueError) as exc:
        raise DataFileError(f"{path} has a malformed record: {exc}") from None
    if not seen.all():
        raise DataFileError(f"{path} does not cover all {NUM_ARCHITECTURES} architectures")
    return columns


def load_table_arrays(path: Path | None = None) -> dict[str, np.ndarray]:
    """Arrays of every metric, from an .npz cache keyed by the file's SHA-256 when possible."""
    path = Path(path) if path is not None else locate_table_file()
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError as exc:
        raise DataFileError(f"cannot read {path}: {exc}") from None
    cache = _cache_dir() / f"analog-nasbench-v{CACHE_VERSION}-{digest}.npz"
    if cache.is_file():
        try:
            with np.load(cache) as stored:
                return {name: stored[name] for name in stored.files}
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is rebuilt below
    columns = read_table_file(path)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".tmp{os.getpid()}.npz")
        np.savez(tmp, **columns)
        os.replace(tmp, cache)
    except OSError:
        pass  # an unwritable cache only costs speed
    return columns


@lru_cache(maxsize=4)
def load_analog_benchmark(path: str | None = None) -> TabularBenchmark:
    """The embedded CIFAR-10 benchmark (reward and report: the table's single accuracy)."""
    columns = load_table_arrays(Path(path) if path else None)
    accuracy = columns["baseline_accuracy"]
    extras = {name: values for name, values in columns.items() if name != "baseline_accuracy"}
    metric = "analog-nasbench baseline_accuracy (CIFAR-10 test set, 200 epochs; the table's only accuracy)"
    return TabularBenchmark(
        name="analog",
        val_accuracy=accuracy,
        test_accuracy=accuracy,
        reward_metric=metric,
        report_metric=metric,
        extras=extras,
        dataset=TABLE_DATASET,
    )
