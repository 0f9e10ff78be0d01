"""Learned surrogates: predictors of a table's reward fitted on a few hundred architectures.

A ``SurrogateModel`` is a recipe (an encoding from ``harness.space.encodings``, an estimator, a
target transform); ``fit`` trains it on some cells and returns a ``Predictor``.
``SurrogateBenchmark`` fits one on ``n`` cells sampled from a table, predicts all 15,625
cells once, and then answers queries by lookup: ``val_accuracy`` is the prediction,
``test_accuracy`` the table's real test figure.

Two pieces of knowledge about the space help every model but the baselines. Cells
whose output is disconnected compute a constant, so they form one group, predicted by
the mean of the sampled ones (the training minimum when none was sampled) and kept out
of the estimator's fit. Accuracies pile up just under 100%, so the estimator learns
``-log(ceiling - accuracy)``, which spreads the crowded top of the table and squeezes
the long tail of bad cells.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from harness.errors import UnknownNameError, UserError
from harness.registry import Registry
from harness.search.benchmark import TabularBenchmark
from harness.space import NUM_ARCHITECTURES, ops_matrix
from harness.space.encodings import ENCODINGS, as_ops_matrix, is_disconnected

#: CPU threads a model may use (the reference machine has 2 cores); results do not depend on it.
N_JOBS = 2
#: The Gaussian process is cubic in its training points; it fits on at most this many.
GP_MAX_POINTS = 2000


class Predictor(Protocol):
    def __call__(self, ops: np.ndarray) -> np.ndarray:
        """Predicted accuracies of the cells of an (n, 6) op matrix."""
        ...


class SurrogateModel(Protocol):
    name: str
    encoding: str
    description: str

    def fit(self, ops: np.ndarray, accuracy: np.ndarray, seed: int) -> Predictor: ...


MODELS: Registry[SurrogateModel] = Registry("surrogate model")


def _log_error(accuracy: np.ndarray, ceiling: float) -> np.ndarray:
    return -np.log(ceiling - accuracy)


def _from_log_error(target: np.ndarray, ceiling: float) -> np.ndarray:
    return ceiling - np.exp(-target)


@dataclass(frozen=True)
class _FittedEstimator:
    encoding: str
    estimator: Any  # None: every training cell was disconnected; predict ``constant``
    constant: float
    disconnected_value: float | None  # None: no disconnected rule
    ceiling: float | None  # None: no target transform

    def target(self, ops: np.ndarray) -> np.ndarray:
        """Predictions in the transformed (log-error) space, or accuracies without transform."""
        ops = as_ops_matrix(ops)
        if self.estimator is None:
            out = np.full(len(ops), self.constant)
        else:
            out = np.asarray(self.estimator.predict(ENCODINGS[self.encoding](ops)), dtype=np.float64)
        if self.disconnected_value is not None:
            out[is_disconnected(ops)] = self.disconnected_value
        return out

    def __call__(self, ops: np.ndarray) -> np.ndarray:
        target = self.target(ops)
        return target if self.ceiling is None else _from_log_error(target, self.ceiling)


@dataclass(frozen=True)
class EstimatorModel:
    """An sklearn-style regressor on one encoding, optionally with both pieces of knowledge.

    ``make_estimator(seed)`` builds the unfitted regressor; ``max_points`` caps (by a
    seeded subsample) how many cells it is fitted on.
    """

    name: str
    encoding: str
    make_estimator: Callable[[int], Any]
    description: str
    log_error_target: bool = True
    disconnected_rule: bool = True
    max_points: int | None = None

    def fit(self, ops: np.ndarray, accuracy: np.ndarray, seed: int) -> _FittedEstimator:
        ops = as_ops_matrix(ops)
        accuracy = np.asarray(accuracy, dtype=np.float64)
        if len(ops) != len(accuracy) or len(ops) == 0:
            raise ValueError(f"need as many accuracies as cells (at least one), got {len(ops)} and {len(accuracy)}")
        ceiling = max(100.0, float(accuracy.max())) + 0.5 if self.log_error_target else None
        target = accuracy if ceiling is None else _log_error(accuracy, ceiling)
        keep = np.ones(len(ops), dtype=bool)
        disconnected_value = None
        if self.disconnected_rule:
            disconnected = is_disconnected(ops)
            keep = ~disconnected
            disconnected_value = float(target[disconnected].mean() if disconnected.any() else target.min())
        fit_rows = np.flatnonzero(keep)
        if self.max_points is not None and len(fit_rows) > self.max_points:
            rng = np.random.default_rng(seed)
            fit_rows = np.sort(rng.choice(fit_rows, self.max_points, replace=False))
        estimator = None
        constant = float(target.mean())
        if len(fit_rows):
            estimator = self.make_estimator(seed)
            estimator.fit(ENCODINGS[self.encoding](ops[fit_rows]), target[fit_rows])
        return _FittedEstimator(self.encoding, estimator, constant, disconnected_value, ceiling)


@dataclass(frozen=True)
class _FittedEnsemble:
    members: tuple[_FittedEstimator, ...]
    ceiling: float

    def __call__(self, ops: np.ndarray) -> np.ndarray:
        mean_target = np.mean([member.target(ops) for member in self.members], axis=0)
        return _from_log_error(mean_target, self.ceiling)


@dataclass(frozen=True)
class EnsembleModel:
    """The mean, in log-error space, of members that all use the log-error target."""

    name: str
    members: tuple[EstimatorModel, ...]
    description: str
    encoding: str = field(init=False)

    def __post_init__(self) -> None:
        if not all(m.log_error_target for m in self.members):
            raise ValueError("ensemble members must all use the log-error target")
        object.__setattr__(self, "encoding", "+".join(m.encoding for m in self.members))

    def fit(self, ops: np.ndarray, accuracy: np.ndarray, seed: int) -> _FittedEnsemble:
        fitted = tuple(m.fit(ops, accuracy, seed) for m in self.members)
        return _FittedEnsemble(fitted, fitted[0].ceiling)


# --- the models -----------------------------------------------------------------------


def _xgboost(seed: int, **params: Any) -> Any:
    import xgboost

    return xgboost.XGBRegressor(nthread=N_JOBS, random_state=seed, **params)


def _random_forest(seed: int) -> Any:
    from sklearn.ensemble import RandomForestRegressor

    return RandomForestRegressor(n_estimators=300, max_features=0.33, n_jobs=N_JOBS, random_state=seed)


def _gaussian_process(seed: int) -> Any:
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    kernel = ConstantKernel() * Matern(length_scale=3.0, nu=1.5) + WhiteKernel()
    return make_pipeline(
        StandardScaler(), GaussianProcessRegressor(kernel, normalize_y=True, random_state=seed)
    )


_BASELINE_XGB = {"n_estimators": 500, "learning_rate": 0.05, "max_depth": 6}
_TUNED_XGB = {"n_estimators": 500, "learning_rate": 0.05, "max_depth": 4, "subsample": 0.8, "colsample_bytree": 0.8}

XGBOOST_ONEHOT = EstimatorModel(
    "xgboost_onehot",
    "one_hot",
    lambda seed: _xgboost(seed, **_BASELINE_XGB),
    "baseline: XGBoost (500 trees, depth 6, learning rate 0.05) on the plain one-hot, raw accuracy",
    log_error_target=False,
    disconnected_rule=False,
)
XGBOOST_PATH = EstimatorModel(
    "xgboost_path",
    "path",
    lambda seed: _xgboost(seed, **_BASELINE_XGB),
    "baseline XGBoost on the BANANAS path encoding, raw accuracy",
    log_error_target=False,
    disconnected_rule=False,
)
XGBOOST = EstimatorModel(
    "xgboost",
    "effective_structure",
    lambda seed: _xgboost(seed, **_TUNED_XGB),
    "XGBoost (500 trees, depth 4, row/column subsampling 0.8) on the effective one-hot + structure",
)
RANDOM_FOREST = EstimatorModel(
    "random_forest",
    "effective_structure",
    _random_forest,
    "random forest (300 trees, a third of the features per split) on the effective one-hot + structure",
)
GAUSSIAN_PROCESS = EstimatorModel(
    "gp",
    "structure",
    _gaussian_process,
    f"Gaussian process (Matern 3/2 + white noise, standardised inputs) on the structure features, "
    f"at most {GP_MAX_POINTS} training cells",
    max_points=GP_MAX_POINTS,
)
ENSEMBLE = EnsembleModel(
    "ensemble",
    (XGBOOST, GAUSSIAN_PROCESS),
    "mean of xgboost and gp in log-error space",
)

for _model in (XGBOOST_ONEHOT, XGBOOST_PATH, XGBOOST, RANDOM_FOREST, GAUSSIAN_PROCESS, ENSEMBLE):
    MODELS.add(_model.name, _model)

#: The model the harness uses when a spec or report does not name one.
BEST_MODEL = "ensemble"


def model_names() -> list[str]:
    return list(MODELS)


def get_model(name: str) -> SurrogateModel:
    if name not in MODELS:
        raise UnknownNameError(f"unknown surrogate model {name!r}; valid: {', '.join(model_names())}")
    return MODELS[name]


# --- fitting on a table ---------------------------------------------------------------


def sample_training_indices(n: int, seed: int) -> np.ndarray:
    """The ``n`` distinct architecture indices (sorted) a surrogate with this seed is fitted on."""
    _check_n(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(NUM_ARCHITECTURES, size=n, replace=False))


def _check_n(n: int) -> None:
    if not 1 <= n <= NUM_ARCHITECTURES:
        raise UserError(f"a surrogate is fitted on 1..{NUM_ARCHITECTURES} architectures, got n={n}")


class SurrogateBenchmark(TabularBenchmark):
    """A table whose reward is replaced by a learned surrogate's prediction.

    The model is fitted on the table's ``val_accuracy`` of ``n`` cells drawn with ``seed``,
    then predicts every cell once, so queries are lookups. ``test_accuracy`` and
    ``cost_seconds`` stay the table's (the real figures, for reports); the extra
    ``table_val_accuracy`` holds the figure the surrogate stands in for.

    ``fitted_on_report_metric`` says whether that figure is the one reports show: a table whose
    reward is its report (the embedded table's single accuracy). The reward is then a
    prediction of the reported figure itself, so the report is not held out from the search.
    """

    def __init__(self, table: TabularBenchmark, model: str = BEST_MODEL, n: int = 300, seed: int = 0) -> None:
        surrogate = get_model(model)
        self.model = surrogate.name
        self.n = int(n)
        self.seed = int(seed)
        self.table = table
        self.train_indices = sample_training_indices(self.n, self.seed)
        ops = ops_matrix()
        predictor = surrogate.fit(ops[self.train_indices], table.val_accuracy[self.train_indices], self.seed)
        predicted = predictor(ops)
        super().__init__(
            name=f"surrogate:{self.model}:{self.n}:{table.name}",
            val_accuracy=predicted,
            test_accuracy=table.test_accuracy,
            reward_metric=(
                f"{self.model} surrogate of {table.reward_metric} fitted on n={self.n} "
                f"architectures (seed {self.seed})"
            ),
            report_metric=table.report_metric,
            cost_seconds=table.cost_seconds,
            extras={**table.extras, "table_val_accuracy": table.val_accuracy},
        )
        self.fitted_on_report_metric = bool(table.reward_metric == table.report_metric
                                            or np.array_equal(table.val_accuracy, table.test_accuracy))


def parse_surrogate_spec(spec: str) -> tuple[str, int, int]:
    """``"surrogate:<model>:<n>[:<seed>]"`` -> (model, n, seed); a UserError says what is wrong."""
    valid = ", ".join(model_names())
    usage = f"a surrogate spec looks like 'surrogate:<model>:<n>[:<seed>]', e.g. 'surrogate:{BEST_MODEL}:300'"
    if not isinstance(spec, str):
        raise UserError(f"{usage}; got {spec!r}")
    parts = spec.strip().split(":")
    if len(parts) not in (3, 4) or parts[0] != "surrogate":
        raise UserError(f"{usage}; got {spec!r} (models: {valid})")
    model, n_text, seed_text = parts[1], parts[2], parts[3] if len(parts) == 4 else "0"
    if model not in MODELS:
        raise UnknownNameError(f"unknown surrogate model {model!r} in {spec!r}; valid: {valid}")
    try:
        n, seed = int(n_text), int(seed_text)
    except ValueError:
        raise UserError(f"{usage}; n and seed must be integers, got {spec!r}") from None
    if not 1 <= n <= NUM_ARCHITECTURES:
        raise UserError(f"n in {spec!r} must be in 1..{NUM_ARCHITECTURES} (architectures to fit on), got {n}")
    if seed < 0:
        raise UserError(f"seed in {spec!r} must be a non-negative integer, got {seed}")
    return model, n, seed
