"""The MLflow adapter: log a trained model and register it, load a version by alias or
number, move aliases and set tags. Nothing here decides anything.

Every new version gets the alias `challenger`; only the gate (`nightscore.gate`) moves
`champion`.
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

from nightscore import links
from nightscore.config import PROJECT_ROOT, Settings
from nightscore.errors import DataError, InfrastructureError, classify
from nightscore.features import FEATURES, Encoding
from nightscore.model import LoadedModel

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from nightscore.model import TrainedModel

logger = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
REFERENCE_ARTIFACT = "reference/reference_sample.parquet"
# The evening check's profile of the training window (`monitoring.early_warning`).
PROFILE_ARTIFACT = "reference/drift_profile.json"


class RegistryError(InfrastructureError):
    """The MLflow tracking server does not answer (retried: it may come back)."""

    def __init__(self, message: str) -> None:
        super().__init__("mlflow", message)


class NoChampionError(DataError, LookupError):
    """The registry answers, and no version has the alias `champion`."""


def _unavailable(exc: Exception) -> RegistryError | None:
    """A RegistryError when `exc` means the server did not answer (a refused connection,
    a timeout, a 5xx), else None: the server answered and said no."""
    found = classify(exc)
    if isinstance(found, InfrastructureError) and found.component == "mlflow":
        return found if isinstance(found, RegistryError) else RegistryError(found.detail)
    return None


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
    # MLflow's client reads its login from the environment only.
    if settings.mlflow_tracking_username:
        os.environ["MLFLOW_TRACKING_USERNAME"] = settings.mlflow_tracking_username
    if settings.mlflow_tracking_password is not None:
        os.environ["MLFLOW_TRACKING_PASSWORD"] = (
            settings.mlflow_tracking_password.get_secret_value()
        )
    return mlflow


def client(settings: Settings) -> Any:
    from mlflow import MlflowClient

    _mlflow(settings)
    return MlflowClient(
        tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri
    )


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

    def run_url(self, settings: Settings) -> str:
        """The training run's page in the MLflow UI, at its public address."""
        return links.mlflow_run_url(settings, self.experiment_id, self.run_id)

    def model_url(self, settings: Settings) -> str:
        """The model version's page in the MLflow UI, at its public address."""
        return links.mlflow_model_url(settings, self.name, self.version)


# --- logging a trained model --------------------------------------------------------------


def log_trained_model(
    trained: TrainedModel,
    frame: pd.DataFrame,
    settings: Settings,
    *,
    cutoff: date,
    figures: dict[str, Figure],
    trigger: str = "",
    airflow_run_id: str | None = None,
) -> ModelRef:
    """Log the run (params, metrics, `figures` by artifact path, data lineage, reference
    sample, model) and register the model as a new version with the alias `challenger`."""
    from nightscore.metrics import defined

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
            mlflow.log_metrics({f"{split}_{k}": v for k, v in defined(metrics).items()})
        dataset = mlflow.data.from_pandas(
            frame[["service_date", "carrier", "flight", "origin"]].astype(str),
            name=f"flights {trained.train_window[0]}..{trained.validation_window[1]}",
            digest=trained.data_hash[:32],
        )
        mlflow.log_input(dataset, context="training")
        for path, fig in figures.items():
            mlflow.log_figure(fig, path)
        with tempfile.TemporaryDirectory() as tmp:
            sample_path = Path(tmp) / Path(REFERENCE_ARTIFACT).name
            sample = trained.reference_sample(frame)
            sample.to_parquet(sample_path, index=False)
            mlflow.log_artifact(
                str(sample_path), artifact_path=str(Path(REFERENCE_ARTIFACT).parent)
            )
            profile_path = Path(tmp) / Path(PROFILE_ARTIFACT).name
            profile_path.write_text(json.dumps(trained.drift_profile(frame, sample)))
            mlflow.log_artifact(str(profile_path), artifact_path=str(Path(PROFILE_ARTIFACT).parent))
        info = mlflow.xgboost.log_model(
            trained.model,
            name="model",
            signature=signature,
            input_example=x_example,
            registered_model_name=settings.model_name,
            metadata=trained.metadata(),
            model_format="ubj",
            # Stated, not inferred: inference runs a subprocess that takes ~10 s.
            pip_requirements=_requirements(),
        )
        version = int(info.registered_model_version)
        experiment_id = run.info.experiment_id
        run_id = run.info.run_id
    mlflow_client = client(settings)
    set_alias(settings, CHALLENGER, version)
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


def drift_profile(settings: Settings, run_id: str) -> dict[str, Any] | None:
    """The evening check's profile logged with the run (`PROFILE_ARTIFACT`), or None for
    a model trained before profiles were logged."""
    import mlflow

    _mlflow(settings)
    try:
        names = {a.path for a in client(settings).list_artifacts(run_id, "reference")}
        if PROFILE_ARTIFACT not in names:
            return None
        with tempfile.TemporaryDirectory() as tmp:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id,
                artifact_path=PROFILE_ARTIFACT,
                dst_path=tmp,
                tracking_uri=settings.mlflow_tracking_uri,
            )
            return json.loads(Path(path).read_text())
    except Exception as exc:
        if (unavailable := _unavailable(exc)) is not None:
            raise unavailable from exc
        raise


def model_version(settings: Settings, alias: str) -> Any | None:
    """The registry's ModelVersion for an alias, or None when no version has it."""
    from mlflow.exceptions import MlflowException

    try:
        return client(settings).get_model_version_by_alias(settings.model_name, alias)
    except MlflowException as exc:
        # An unreachable server is not "no champion": it is retried, and alerts as MLflow.
        unavailable = _unavailable(exc)
        if unavailable is not None:
            raise unavailable from exc
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


def load_version(settings: Settings, version: int) -> LoadedModel:
    """Load a registered version by number, as data: its files are downloaded and checked
    (`model_files.inspect` refuses one that carries code), and the trees are parsed by
    XGBoost. No code the model names is imported."""
    from nightscore import model_files

    mlflow = _mlflow(settings)
    label = f"{settings.model_name} v{version}"
    try:
        registered = client(settings).get_model_version(settings.model_name, str(version))
        with tempfile.TemporaryDirectory(prefix="nightscore-model-") as tmp:
            folder = mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{settings.model_name}/{version}", dst_path=tmp
            )
            files = model_files.inspect(Path(folder), label)
            booster = model_files.load_booster(files)
    except Exception as exc:
        unavailable = _unavailable(exc)
        if unavailable is not None and not isinstance(exc, RegistryError):
            raise unavailable from exc
        raise
    meta = files.metadata
    missing = [key for key in ("encoding", "threshold", "features") if key not in meta]
    if missing:
        raise model_files.UnsafeModelError(
            f"{label} lacks the metadata scoring needs ({', '.join(missing)}): it was not "
            "logged by nightscore's training"
        )
    return LoadedModel(
        name=settings.model_name,
        version=version,
        run_id=registered.run_id,
        model=booster,
        encoding=Encoding(meta["encoding"]),
        threshold=float(meta["threshold"]),
        features=[str(name) for name in meta["features"]],
        signature_inputs=files.signature_inputs,
        iteration_range=model_files.iteration_range(booster),
    )


# --- aliases and tags ---------------------------------------------------------------------


def set_alias(settings: Settings, alias: str, version: int) -> None:
    """Point `alias` at `version` of the model."""
    client(settings).set_registered_model_alias(settings.model_name, alias, version)


def tag_version(settings: Settings, ref: ModelRef, tags: dict[str, str]) -> None:
    """Set `tags` on the model version and on the run that logged it."""
    mlflow_client = client(settings)
    for key, value in tags.items():
        mlflow_client.set_model_version_tag(settings.model_name, str(ref.version), key, value)
        mlflow_client.set_tag(ref.run_id, key, value)
