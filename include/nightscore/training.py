"""Training: the labelled window, its checks, a time split, Optuna-tuned XGBoost, a threshold.

`train_challenger()` is what the `retrain` DAG and `nightscore train` run: build the
training set from the warehouse, check it, fit, log to MLflow and register the
challenger (the gate, `nightscore.gate`, then decides). `fit_model` is pure (DataFrame
in, model out), so that `nightscore evaluate` and the tests use exactly the same fitting.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from nightscore import sql
from nightscore.calendar import days_before
from nightscore.config import Settings
from nightscore.errors import DataError
from nightscore.features import LABEL, Encoding, build_features, feature_types, labelled
from nightscore.metrics import classification_metrics, fmt
from nightscore.model import TrainedModel

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

logger = logging.getLogger(__name__)

SEED = 13
# Early stopping: stop adding trees when validation log loss has not improved for this many.
EARLY_STOPPING_ROUNDS = 50
MAX_TREES = 2000


class TrainingError(DataError):
    """Training could not produce a model (no data, data that fails its checks)."""


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The decision threshold: the score cut that maximises F1 on the validation days.

    F1 weighs missed disruptions and false alarms equally, which suits a risk list that
    operations staff work down; the threshold is stored with the model and used as is.
    """
    import numpy as np
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(y, p)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[int(np.argmax(f1[:-1]))])


# --- the pure part: a labelled frame in, a fitted model out ------------------------------


def split_by_time(frame: pd.DataFrame, validation_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The last `validation_days` service dates for validation, the rest for training."""
    dates = sorted(frame["service_date"].unique())
    if len(dates) <= validation_days:
        raise TrainingError(
            f"{len(dates)} labelled days cannot be split into training and "
            f"{validation_days} validation days; widen the window or load more history"
        )
    first_valid = dates[-validation_days]
    is_valid = frame["service_date"] >= first_valid
    return frame[~is_valid].reset_index(drop=True), frame[is_valid].reset_index(drop=True)


def data_hash(frame: pd.DataFrame) -> str:
    """A content hash of the training rows (the feature builder returns them sorted)."""
    import pandas as pd

    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _classifier(params: dict[str, Any]) -> Any:
    from xgboost import XGBClassifier

    return XGBClassifier(
        n_estimators=MAX_TREES,
        early_stopping_rounds=EARLY_STOPPING_ROUNDS,
        eval_metric="logloss",
        tree_method="hist",
        enable_categorical=True,
        feature_types=feature_types(),
        max_cat_to_onehot=1,
        n_jobs=2,
        random_state=SEED,
        **params,
    )


def _fit(params: dict[str, Any], x_train, y_train, x_valid, y_valid) -> Any:
    model = _classifier(params)
    model.fit(x_train, y_train, eval_set=[(x_valid, y_valid)], verbose=False)
    return model


def _search_space(trial: Any) -> dict[str, Any]:
    return {
        "max_depth": trial.suggest_int("max_depth", 3, 9),
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
        "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 100.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.6, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 0.1, 30.0, log=True),
        "max_cat_threshold": trial.suggest_int("max_cat_threshold", 8, 64, log=True),
    }


# A sound start that the search refines: moderate depth, a slow learning rate, and leaves
# of at least ~50 flights (one route-hour on one day is noise, not signal).
DEFAULT_PARAMS = {
    "max_depth": 5,
    "learning_rate": 0.02,
    "min_child_weight": 50.0,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
    "max_cat_threshold": 32,
}


def fit_model(
    frame: pd.DataFrame,
    *,
    validation_days: int,
    trials: int,
    timeout_s: float,
    progress: Callable[[str], None] = logger.info,
) -> TrainedModel:
    """Tune and fit on a labelled frame; the last `validation_days` days validate.

    Optuna (TPE, seeded) maximises validation ROC AUC within `trials` or `timeout_s`,
    whichever comes first; each trial early-stops on validation log loss. The first trial
    is DEFAULT_PARAMS, so even a budget of one trial gives a sound model.
    """
    import optuna

    frame = labelled(frame)
    if frame.empty:
        raise TrainingError("no labelled flights in the training window")
    train, valid = split_by_time(frame, validation_days)
    encoding = Encoding.fit(train)
    x_train, y_train = encoding.model_input(train), train[LABEL].astype(int).to_numpy()
    x_valid, y_valid = encoding.model_input(valid), valid[LABEL].astype(int).to_numpy()

    from sklearn.metrics import roc_auc_score

    best: dict[str, Any] = {"score": -1.0, "model": None}  # only the best model is kept

    def objective(trial: optuna.Trial) -> float:
        model = _fit(_search_space(trial), x_train, y_train, x_valid, y_valid)
        score = float(roc_auc_score(y_valid, model.predict_proba(x_valid)[:, 1]))
        if score > best["score"]:
            best.update(score=score, model=model)
        progress(
            f"  trial {trial.number + 1}/{trials}: validation ROC AUC {score:.4f}, "
            f"{model.best_iteration + 1} trees"
        )
        return score

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=SEED))
    study.enqueue_trial(DEFAULT_PARAMS)
    started = time.monotonic()
    study.optimize(objective, n_trials=max(trials, 1), timeout=timeout_s)
    model = best["model"]
    p_train = model.predict_proba(x_train)[:, 1]
    p_valid = model.predict_proba(x_valid)[:, 1]
    threshold = best_f1_threshold(y_valid, p_valid)
    return TrainedModel(
        model=model,
        encoding=encoding,
        threshold=threshold,
        params=dict(study.best_params),
        best_iteration=int(model.best_iteration),
        train_window=(min(train["service_date"]), max(train["service_date"])),
        validation_window=(min(valid["service_date"]), max(valid["service_date"])),
        metrics={
            "train": classification_metrics(y_train, p_train, threshold),
            "validation": classification_metrics(y_valid, p_valid, threshold),
        },
        data_hash=data_hash(frame),
        tuning={
            "trials": len(study.trials),
            "seconds": round(time.monotonic() - started, 1),
            "best_trial": study.best_trial.number,
        },
    )


# --- the training set ---------------------------------------------------------------------


def training_window(cutoff: date, days: int) -> tuple[date, date]:
    """The `days` service dates before the cut-off (the cut-off itself excluded)."""
    return days_before(cutoff, days)


def training_set(settings: Settings, cutoff: date, days: int | None = None) -> pd.DataFrame:
    """Labelled features of the window before `cutoff`, built by the shared feature builder."""
    from nightscore.warehouse.db import engine_for

    first, last = training_window(cutoff, days or settings.training_window_days)
    return labelled(build_features(engine_for(settings), first, last))


def default_cutoff(settings: Settings) -> date:
    """The day after the latest service date with outcomes loaded."""
    from sqlalchemy import text

    from nightscore.warehouse.db import engine_for

    with engine_for(settings).connect() as conn:
        latest = conn.execute(text(sql.load("training/latest_outcome_date"))).scalar()
    if latest is None:
        raise TrainingError("no outcomes are loaded: load history first (nightscore load-history)")
    return latest + timedelta(days=1)


# --- the whole training: what the retrain DAG and `nightscore train` run --------------------


@dataclass
class TrainingOutcome:
    cutoff: date
    model: Any  # registry.ModelRef
    metrics: dict[str, dict[str, Any]]
    seconds: float
    rows: int


def check_training_data(frame: pd.DataFrame) -> None:
    """Great Expectations on the training set; TrainingError listing what failed."""
    from nightscore.validation.training_set import check_training_set

    failed = [c for c in check_training_set(frame) if not c.success]
    if failed:
        lines = "\n".join(f"  - {c.expectation}: {c.detail}" for c in failed)
        raise TrainingError(f"the training set failed {len(failed)} check(s):\n{lines}")


def train_challenger(
    cutoff: date,
    settings: Settings,
    *,
    trigger: str = "",
    airflow_run_id: str | None = None,
    progress: Callable[[str], None] = logger.info,
) -> TrainingOutcome:
    """Build, check, tune, fit, log and register a challenger; never touches the champion."""
    from nightscore import registry

    started = time.monotonic()
    first, last = training_window(cutoff, settings.training_window_days)
    progress(f"building features for {first}..{last}")
    frame = training_set(settings, cutoff)
    progress(f"{len(frame):,} labelled flights over {frame['service_date'].nunique()} days")
    check_training_data(frame)
    progress("training set passed its checks")
    trained = fit_model(
        frame,
        validation_days=settings.validation_days,
        trials=settings.tuning_trials,
        timeout_s=settings.tuning_timeout_s,
        progress=progress,
    )
    valid = trained.metrics["validation"]
    progress(
        f"best of {trained.tuning['trials']} trials: validation ROC AUC {fmt(valid['roc_auc'])}, "
        f"PR AUC {fmt(valid['pr_auc'])}, Brier {fmt(valid['brier'])}, threshold "
        f"{trained.threshold:.3f}"
    )
    valid_days = frame[frame["service_date"] >= trained.validation_window[0]]
    ref = registry.log_trained_model(
        trained,
        frame,
        settings,
        cutoff=cutoff,
        figures=plots(trained, valid_days),
        trigger=trigger,
        airflow_run_id=airflow_run_id,
    )
    progress(f"registered {ref.name} v{ref.version} as challenger: {ref.model_url(settings)}")
    return TrainingOutcome(
        cutoff=cutoff,
        model=ref,
        metrics=trained.metrics,
        seconds=round(time.monotonic() - started, 1),
        rows=len(frame),
    )


def plots(trained: TrainedModel, valid: pd.DataFrame) -> dict[str, Any]:
    """Feature importance, precision-recall and calibration on the validation days."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import precision_recall_curve

    y = valid[LABEL].astype(int).to_numpy()
    p = trained.predict(valid)
    figures = {}

    gain = trained.model.get_booster().get_score(importance_type="gain")
    top = sorted(gain.items(), key=lambda kv: kv[1])[-20:]
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.barh([k for k, _ in top], [v for _, v in top])
    ax.set_title("Feature importance (gain), top 20")
    fig.tight_layout()
    figures["plots/feature_importance.png"] = fig

    precision, recall, _ = precision_recall_curve(y, p)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(recall, precision)
    ax.axhline(y.mean(), linestyle="--", color="grey", label=f"base rate {y.mean():.2f}")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (validation days)")
    ax.legend()
    fig.tight_layout()
    figures["plots/precision_recall.png"] = fig

    observed, predicted = calibration_curve(y, p, n_bins=10, strategy="quantile")
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.plot(predicted, observed, marker="o")
    ax.set(xlabel="mean predicted risk", ylabel="observed disruption rate")
    ax.set_title("Calibration (validation days)")
    fig.tight_layout()
    figures["plots/calibration.png"] = fig
    return figures
