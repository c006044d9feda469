"""The model as training hands it over and as scoring receives it.

`TrainedModel` is what `training.fit_model` returns; `LoadedModel` is a registered
version loaded back by `registry.load_version` (trees only, no code). Both score a feature frame the same way:
the categorical encoding stored with the model, then the trees.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import TYPE_CHECKING, Any

from nightscore.errors import DataError
from nightscore.features import FEATURES, LABEL, Encoding

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

logger = logging.getLogger(__name__)

# Rows of the training features kept with the model, for drift monitoring.
REFERENCE_ROWS = 5000


@dataclass
class TrainedModel:
    """A fitted model and everything that must travel with it."""

    model: Any  # xgboost.XGBClassifier
    encoding: Encoding
    threshold: float
    params: dict[str, Any]
    best_iteration: int
    train_window: tuple[date, date]
    validation_window: tuple[date, date]
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_hash: str = ""
    tuning: dict[str, Any] = field(default_factory=dict)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Scores (the probability of disruption) for a feature frame."""
        return self.model.predict_proba(self.encoding.model_input(frame))[:, 1]

    def metadata(self) -> dict[str, Any]:
        """What scoring needs besides the trees: stored in the MLmodel file."""
        return {
            "threshold": self.threshold,
            "features": list(FEATURES),
            "encoding": self.encoding.to_dict(),
            "train_window": [d.isoformat() for d in self.train_window],
            "validation_window": [d.isoformat() for d in self.validation_window],
        }

    def reference_sample(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A seeded sample of the training features with their scores, for drift."""
        sample = frame.sample(n=min(REFERENCE_ROWS, len(frame)), random_state=13)
        sample = sample[["service_date", *FEATURES, LABEL]].copy()
        sample["score"] = self.predict(sample)
        return sample.reset_index(drop=True)

    def importance(self, sample: pd.DataFrame) -> dict[str, float]:
        """Each feature's mean |TreeSHAP contribution| on `sample`, in log-odds: what it
        moves the score by on the average flight (XGBoost's `pred_contribs`)."""
        import numpy as np
        import xgboost

        from nightscore.features import feature_types

        matrix = xgboost.DMatrix(
            self.encoding.model_input(sample),
            feature_names=list(FEATURES),
            feature_types=feature_types(),
            enable_categorical=True,
        )
        contributions = self.model.get_booster().predict(
            matrix, pred_contribs=True, iteration_range=(0, self.best_iteration + 1)
        )
        mean = np.abs(contributions[:, :-1]).mean(axis=0)
        return {name: float(value) for name, value in zip(FEATURES, mean, strict=True)}

    def drift_profile(self, frame: pd.DataFrame, reference: pd.DataFrame) -> dict[str, Any]:
        """The evening check's profile of the training window (`early_warning`): `frame`
        is the training frame, `reference` the reference sample (with its scores)."""
        from nightscore.monitoring.early_warning import build_profile

        scored = frame[["service_date", *FEATURES]].copy()
        scored["score"] = self.predict(frame)
        return build_profile(scored, reference, self.importance(reference))


class ModelInputError(DataError, ValueError):
    """The feature frame lacks a feature the model needs."""


@dataclass
class LoadedModel:
    """A registered model ready to score: trees, encoding, threshold and lineage.

    `model` is an `xgboost.Booster` read from the version's UBJ file (never unpickled);
    `iteration_range` is the trees the scikit-learn wrapper used at training (up to the
    best iteration of early stopping), so the scores equal training's.
    """

    name: str
    version: int
    run_id: str
    model: Any
    encoding: Encoding
    threshold: float
    features: list[str]
    signature_inputs: list[str]
    iteration_range: tuple[int, int] = (0, 0)

    def predict(self, frame: pd.DataFrame) -> Any:
        return self.model.inplace_predict(self._input(frame), iteration_range=self.iteration_range)

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        """Exact TreeSHAP contributions (XGBoost's `pred_contribs`), in log-odds: one
        column per feature, in FEATURES order, then the bias. Each row adds up to the
        model's margin, the log-odds of its score; the trees are those `predict` uses.

        Computed by `nightscore.treeshap` (the same values, several times faster), or by
        XGBoost itself when the model's tables would not fit their memory budget."""
        from nightscore import treeshap

        if self._shap_tables is not None:
            return treeshap.contributions(self._shap_tables, self._input(frame).to_numpy())
        return self.xgboost_contributions(frame)

    @cached_property
    def _shap_tables(self) -> Any:
        """nightscore.treeshap's tables, built once per loaded model; None when too large."""
        from nightscore import treeshap

        tables = treeshap.compile_booster(self.model, self.iteration_range, len(FEATURES))
        if tables is None:
            logger.info(
                "%s v%s: reasons from XGBoost's own TreeSHAP (the fast tables would "
                "exceed %s entries)",
                self.name,
                self.version,
                treeshap.TABLE_BUDGET,
            )
        return tables

    @property
    def fast_contributions(self) -> bool:
        """Whether `contributions` uses nightscore.treeshap's tables."""
        return self._shap_tables is not None

    def xgboost_contributions(self, frame: pd.DataFrame) -> np.ndarray:
        """The same contributions from XGBoost's own TreeSHAP (slower; the reference)."""
        import xgboost

        from nightscore.features import feature_types

        matrix = xgboost.DMatrix(
            self._input(frame),
            feature_names=list(FEATURES),
            feature_types=feature_types(),
            enable_categorical=True,
        )
        contributions = self.model.predict(
            matrix, pred_contribs=True, iteration_range=self.iteration_range
        )
        # XGBoost gives shape (0,) for no rows: the empty chunk of a night with no flights.
        return contributions.reshape(len(frame), len(FEATURES) + 1)

    def _input(self, frame: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise ModelInputError(
                f"{self.name} v{self.version} needs features the frame lacks: " + ", ".join(missing)
            )
        return self.encoding.model_input(frame)
