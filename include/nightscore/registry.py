"""The model registry adapter: log a trained model to MLflow, load a model by alias, and
the champion/challenger gate.

Every new version gets the alias `challenger`. Only the gate moves `champion`, and only
in `enforce` mode; each decision is a row in `ml.model_decisions` and tags in MLflow.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nightscore.config import PROJECT_ROOT, Settings
from nightscore.features import FEATURES, LABEL, Encoding

if TYPE_CHECKING:
    import pandas as pd

    from nightscore.training import TrainedModel

logger = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
GATE_METRIC = "roc_auc"
REFERENCE_ROWS = 5000
REFERENCE_ARTIFACT = "reference/reference_sample.parquet"


class RegistryError(RuntimeError):
    """The MLflow tracking server cannot be used."""


class NoChampionError(LookupError):
    """The registry has no version with the alias `champion`."""


def check_server(settings: Settings, timeout_s: float = 10) -> None:
    """RegistryError unless the tracking server answers its health check."""
    import httpx

    url = f"{settings.mlflow_tracking_uri.rstrip('/')}/health"
    try:
        httpx.get(url, timeout=timeout_s).raise_for_status()
    except httpx.HTTPError as exc:
        raise RegistryError(
            f"the MLflow tracking server does not answer at {url} ({exc}); start the stack "
            "(make demo) or set NIGHTSCORE_MLFLOW_TRACKING_URI"
        ) from None


def _mlflow(settings: Settings) -> Any:
    # Task logs: no progress bars, no "View run" lines (we print the links ourselves).
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    import mlflow

    # Quiet the per-call "registered model already exists" and similar INFO lines.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    return mlflow


def client(settings: Settings) -> Any:
    from mlflow import MlflowClient

    _mlflow(settings)
    return MlflowClient(tracking_uri=settings.mlflow_tracking_uri)


def git_commit() -> str:
    """The commit of the code that trains (NIGHTSCORE_GIT_COMMIT wins, e.g. in an image)."""
    if os.environ.get("NIGHTSCORE_GIT_COMMIT"):
        return os.environ["NIGHTSCORE_GIT_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@dataclass(frozen=True)
class ModelRef:
    """A registered model version and where to see it in the MLflow UI."""

    name: str
    version: int
    run_id: str
    experiment_id: str
    tracking_uri: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelRef:
        return cls(**data)

    @property
    def run_url(self) -> str:
        return f"{self.tracking_uri}/#/experiments/{self.experiment_id}/runs/{self.run_id}"

    @property
    def model_url(self) -> str:
        return f"{self.tracking_uri}/#/models/{self.name}/versions/{self.version}"


# --- logging a trained model --------------------------------------------------------------


def _plots(trained: TrainedModel, valid: pd.DataFrame) -> dict[str, Any]:
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


def reference_sample(trained: TrainedModel, frame: pd.DataFrame) -> pd.DataFrame:
    """A seeded sample of the training features with their scores, for drift monitoring."""
    sample = frame.sample(n=min(REFERENCE_ROWS, len(frame)), random_state=13)
    sample = sample[["service_date", *FEATURES, LABEL]].copy()
    sample["score"] = trained.predict(sample)
    return sample.reset_index(drop=True)


def model_metadata(trained: TrainedModel) -> dict[str, Any]:
    """What scoring needs besides the trees: stored in the MLmodel file."""
    return {
        "threshold": trained.threshold,
        "features": list(FEATURES),
        "encoding": trained.encoding.to_dict(),
        "train_window": [d.isoformat() for d in trained.train_window],
        "validation_window": [d.isoformat() for d in trained.validation_window],
    }


def log_trained_model(
    trained: TrainedModel,
    frame: pd.DataFrame,
    settings: Settings,
    *,
    cutoff: date,
    trigger: str = "",
    airflow_run_id: str | None = None,
) -> ModelRef:
    """Log the run (params, metrics, plots, data lineage, reference sample, model) and
    register the model as a new version with the alias `challenger`."""
    mlflow = _mlflow(settings)
    from mlflow.models import infer_signature

    mlflow.set_experiment(settings.model_name)
    valid = frame[frame["service_date"] >= trained.validation_window[0]]
    x_example = trained.encoding.model_input(valid.head(5))
    signature = infer_signature(
        trained.encoding.model_input(valid.head(1000)), trained.predict(valid.head(1000))
    )
    with mlflow.start_run(run_name=f"train-{cutoff.isoformat()}") as run:
        mlflow.set_tags(
            {
                "mlflow.source.git.commit": git_commit(),
                "nightscore.cutoff": cutoff.isoformat(),
                "nightscore.trigger": trigger or "manual",
                "nightscore.airflow_run_id": airflow_run_id or "",
                "nightscore.data_hash": trained.data_hash,
            }
        )
        mlflow.log_params(
            {
                **{f"xgb_{k}": v for k, v in trained.params.items()},
                "trees": trained.best_iteration + 1,
                "threshold": round(trained.threshold, 6),
                "threshold_rule": "best F1 on the validation days",
                "train_start": trained.train_window[0].isoformat(),
                "train_end": trained.train_window[1].isoformat(),
                "validation_start": trained.validation_window[0].isoformat(),
                "validation_end": trained.validation_window[1].isoformat(),
                "training_rows": len(frame),
                "data_hash": trained.data_hash,
                "features": len(FEATURES),
                "tuning_trials": trained.tuning.get("trials"),
                "tuning_seconds": trained.tuning.get("seconds"),
            }
        )
        for split, metrics in trained.metrics.items():
            mlflow.log_metrics({f"{split}_{k}": v for k, v in metrics.items()})
        dataset = mlflow.data.from_pandas(
            frame[["service_date", "carrier", "flight", "origin"]].astype(str),
            name=f"flights {trained.train_window[0]}..{trained.validation_window[1]}",
            digest=trained.data_hash[:32],
        )
        mlflow.log_input(dataset, context="training")
        for path, fig in _plots(trained, valid).items():
            mlflow.log_figure(fig, path)
        with tempfile.TemporaryDirectory() as tmp:
            sample_path = Path(tmp) / Path(REFERENCE_ARTIFACT).name
            reference_sample(trained, frame).to_parquet(sample_path, index=False)
            mlflow.log_artifact(
                str(sample_path), artifact_path=str(Path(REFERENCE_ARTIFACT).parent)
            )
        info = mlflow.xgboost.log_model(
            trained.model,
            name="model",
            signature=signature,
            input_example=x_example,
            registered_model_name=settings.model_name,
            metadata=model_metadata(trained),
            model_format="ubj",
            # Stated, not inferred: inference runs a subprocess that takes ~10 s.
            pip_requirements=_requirements(),
        )
        version = int(info.registered_model_version)
        experiment_id = run.info.experiment_id
        run_id = run.info.run_id
    mlflow_client = client(settings)
    mlflow_client.set_registered_model_alias(settings.model_name, CHALLENGER, version)
    mlflow_client.set_model_version_tag(
        settings.model_name, str(version), "threshold", f"{trained.threshold:.6f}"
    )
    return ModelRef(
        settings.model_name, version, run_id, experiment_id, settings.mlflow_tracking_uri
    )


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("xgboost", "scikit-learn", "pandas", "numpy")]


# --- loading a model by alias -------------------------------------------------------------


@dataclass
class LoadedModel:
    """A registered model ready to score: trees, encoding, threshold and lineage."""

    name: str
    version: int
    run_id: str
    model: Any
    encoding: Encoding
    threshold: float
    features: list[str]
    signature_inputs: list[str]

    def predict(self, frame: pd.DataFrame) -> Any:
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise ValueError(
                f"{self.name} v{self.version} needs features the frame lacks: " + ", ".join(missing)
            )
        return self.model.predict_proba(self.encoding.model_input(frame))[:, 1]


def model_version(settings: Settings, alias: str) -> Any | None:
    """The registry's ModelVersion for an alias, or None when no version has it."""
    from mlflow.exceptions import MlflowException

    try:
        return client(settings).get_model_version_by_alias(settings.model_name, alias)
    except MlflowException as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(exc.error_code) or "not found" in str(exc).lower():
            return None
        raise


def load_model(settings: Settings, alias: str = CHAMPION) -> LoadedModel:
    """Load the version with `alias`; NoChampionError when there is none."""
    version = model_version(settings, alias)
    if version is None:
        raise NoChampionError(
            f"no version of model {settings.model_name!r} has the alias {alias!r} in "
            f"{settings.mlflow_tracking_uri}: train one (nightscore train) and let the gate "
            "promote it"
        )
    return load_version(settings, int(version.version))


# --- the gate -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    decision: str  # promote | reject
    applied: bool
    reason: str
    challenger_version: int
    champion_version: int | None
    challenger_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    window: tuple[date, date]
    mode: str

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["window"] = [d.isoformat() for d in self.window]
        return data


def decide(
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    *,
    floor: float,
    margin: float,
) -> tuple[str, str]:
    """The gate's rule on one metric (ROC AUC): (decision, reason). Pure, for the tests."""
    value = challenger[GATE_METRIC]
    if not value >= floor:  # NaN fails too
        return "reject", f"challenger {GATE_METRIC} {value:.4f} is below the floor {floor:.4f}"
    if champion is None:
        return "promote", (
            f"no champion yet; challenger {GATE_METRIC} {value:.4f} clears the floor {floor:.4f}"
        )
    best = champion[GATE_METRIC]
    if value >= best - margin:
        return "promote", (
            f"challenger {GATE_METRIC} {value:.4f} vs champion {best:.4f}: within the margin "
            f"{margin:.4f} or better"
        )
    return "reject", (
        f"challenger {GATE_METRIC} {value:.4f} is worse than the champion's {best:.4f} by "
        f"more than the margin {margin:.4f}"
    )


def run_gate(
    settings: Settings,
    challenger: ModelRef,
    window_frame: pd.DataFrame,
    *,
    cutoff: date | None = None,
    trigger: str = "",
    airflow_run_id: str | None = None,
) -> Decision:
    """Score the challenger and the champion on the same labelled window, decide, record
    the decision, and in `enforce` mode move the `champion` alias on a promotion."""
    from nightscore.training import classification_metrics

    frame = window_frame[window_frame[LABEL].notna()]
    if frame.empty:
        raise ValueError("the gate's window has no labelled flights")
    window = (min(frame["service_date"]), max(frame["service_date"]))
    y = frame[LABEL].astype(int).to_numpy()

    # By number, not alias: another training may have registered a newer challenger.
    new = load_version(settings, challenger.version)
    new_metrics = classification_metrics(y, new.predict(frame), new.threshold)
    current: LoadedModel | None
    try:
        current = load_model(settings, alias=CHAMPION)
    except NoChampionError:
        current = None
    old_metrics = None
    if current is not None:
        old_metrics = classification_metrics(y, current.predict(frame), current.threshold)
    decision, reason = decide(
        new_metrics, old_metrics, floor=settings.gate_floor_roc_auc, margin=settings.gate_margin
    )
    applied = decision == "promote" and settings.gate_mode == "enforce"
    if settings.gate_mode == "dry_run":
        reason += " (dry run: the champion alias was not changed)"
    result = Decision(
        decision=decision,
        applied=applied,
        reason=reason,
        challenger_version=new.version,
        champion_version=current.version if current else None,
        challenger_metrics=new_metrics,
        champion_metrics=old_metrics,
        window=window,
        mode=settings.gate_mode,
    )
    _record(settings, result, challenger, cutoff, trigger, airflow_run_id)
    mlflow_client = client(settings)
    if applied:
        mlflow_client.set_registered_model_alias(settings.model_name, CHAMPION, new.version)
    tags = {
        "gate.decision": decision,
        "gate.applied": str(applied).lower(),
        "gate.reason": reason,
        "gate.mode": settings.gate_mode,
        "gate.window": f"{window[0]}..{window[1]}",
        f"gate.{GATE_METRIC}": f"{new_metrics[GATE_METRIC]:.4f}",
    }
    for key, value in tags.items():
        mlflow_client.set_model_version_tag(settings.model_name, str(new.version), key, value)
        mlflow_client.set_tag(challenger.run_id, key, value)
    return result


def load_version(settings: Settings, version: int) -> LoadedModel:
    """Load a registered version by number."""
    mlflow = _mlflow(settings)
    uri = f"models:/{settings.model_name}/{version}"
    info = mlflow.models.get_model_info(uri)
    meta = info.metadata or {}
    registered = client(settings).get_model_version(settings.model_name, str(version))
    return LoadedModel(
        name=settings.model_name,
        version=version,
        run_id=registered.run_id,
        model=mlflow.xgboost.load_model(uri),
        encoding=Encoding(meta["encoding"]),
        threshold=float(meta["threshold"]),
        features=list(meta["features"]),
        signature_inputs=[c.name for c in info.signature.inputs] if info.signature else [],
    )


def _record(
    settings: Settings,
    result: Decision,
    challenger: ModelRef,
    cutoff: date | None,
    trigger: str,
    airflow_run_id: str | None,
) -> None:
    from sqlalchemy import text

    from nightscore.warehouse.db import engine_for

    with engine_for(settings).begin() as conn:
        conn.execute(
            text(
                """
                INSERT INTO ml.model_decisions
                    (model_name, challenger_version, challenger_run_id, champion_version,
                     decision, applied, mode, reason, metric, challenger_metrics,
                     champion_metrics, window_start, window_end, floor, margin,
                     training_cutoff, trigger, airflow_run_id)
                VALUES (:name, :cv, :run, :champ, :decision, :applied, :mode, :reason,
                        :metric, CAST(:cm AS jsonb), CAST(:om AS jsonb), :ws, :we, :floor,
                        :margin, :cutoff, :trigger, :airflow_run_id)
                """
            ),
            {
                "name": settings.model_name,
                "cv": result.challenger_version,
                "run": challenger.run_id,
                "champ": result.champion_version,
                "decision": result.decision,
                "applied": result.applied,
                "mode": result.mode,
                "reason": result.reason,
                "metric": GATE_METRIC,
                "cm": _json(result.challenger_metrics),
                "om": _json(result.champion_metrics) if result.champion_metrics else None,
                "ws": result.window[0],
                "we": result.window[1],
                "floor": settings.gate_floor_roc_auc,
                "margin": settings.gate_margin,
                "cutoff": cutoff,
                "trigger": trigger or "manual",
                "airflow_run_id": airflow_run_id,
            },
        )


def _json(metrics: dict[str, float]) -> str:
    """JSON for jsonb, which has no NaN: an undefined metric is null."""
    return json.dumps({k: (None if v != v else v) for k, v in metrics.items()})
