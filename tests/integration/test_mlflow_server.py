"""The real MLflow server of `tests/conftest.py`: runs, the registry and artifacts, which
go through the server over HTTP (no shared folder), as they do for Airflow's tasks."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

# Slow: a model logged and served through the session's MLflow server.
pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def tracking_uri(mlflow_server, monkeypatch) -> str:
    """The fluent API (mlflow.start_run, log_model, load_model) aimed at the test server
    for one test; the URIs it used before are set back after."""
    import mlflow

    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    # set_tracking_uri() also exports MLFLOW_TRACKING_URI: monkeypatch restores the variables.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", mlflow_server)
    # Quiet: no download progress bars, no "View run at" lines.
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_registry_uri(mlflow_server)
    yield mlflow_server
    mlflow.set_tracking_uri(previous[0])
    mlflow.set_registry_uri(previous[1])


def test_a_model_round_trips_through_the_registry_and_the_server(tracking_uri):
    import mlflow
    import mlflow.xgboost
    import xgboost
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    rng = np.random.default_rng(0)
    # Floats: integer columns make MLflow warn that they cannot hold missing values.
    features = pd.DataFrame({"dep_hour": rng.integers(5, 23, 200), "wind": rng.random(200) * 30})
    features = features.astype("float64")
    label = (features["wind"] + rng.normal(0, 5, 200) > 15).astype(int)
    model = xgboost.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1).fit(features, label)

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_id = client.create_experiment(f"test_{uuid.uuid4().hex[:8]}")
    # The server proxies artifacts: the experiment stores them behind its own URL.
    assert client.get_experiment(experiment_id).artifact_location.startswith("mlflow-artifacts:")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_param("max_depth", 2)
        mlflow.log_metric("roc_auc", 0.75)
        info = mlflow.xgboost.log_model(
            model,
            name="model",
            signature=infer_signature(features, model.predict_proba(features)[:, 1]),
            input_example=features.head(3),
            registered_model_name="test_model",
            # Explicit requirements: inferring them loads the model in a subprocess (~10 s).
            pip_requirements=[f"xgboost=={xgboost.__version__}"],
        )

    stored = client.get_run(run.info.run_id).data
    assert stored.params == {"max_depth": "2"}
    assert stored.metrics == {"roc_auc": 0.75}

    version = info.registered_model_version
    client.set_registered_model_alias("test_model", "champion", str(version))
    champion = client.get_model_version_by_alias("test_model", "champion")
    assert champion.version == str(version)
    assert champion.run_id == run.info.run_id

    # Downloaded from the server: the model's files went up and come back over HTTP.
    loaded = mlflow.xgboost.load_model("models:/test_model@champion")
    expected = model.predict_proba(features.head(5))[:, 1]
    np.testing.assert_allclose(loaded.predict_proba(features.head(5))[:, 1], expected)
    signature = mlflow.models.get_model_info("models:/test_model@champion").signature
    assert signature.inputs.input_names() == ["dep_hour", "wind"]
