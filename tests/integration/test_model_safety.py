"""Models load without running their code, against the real MLflow server.

Two hostile versions are registered: an `mlflow.xgboost` model whose `model_class` lives
in its `code_paths` (MLflow's own loader imports it), and a pyfunc whose loader module
ships in its `code_paths`. Importing either writes a marker file. The controls load them
with MLflow's loaders in a subprocess and the marker appears; scoring and the gate refuse
them, with a data error and an alert, and the marker never appears. A normal model
scores exactly as MLflow's own loader scores it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from nightscore import gate, registry, scoring, training
from nightscore.errors import DataError
from nightscore.features import build_features
from nightscore.model_files import UnsafeModelError
from nightscore.warehouse.db import engine_for

# Slow: a model trained first, on the session's history and MLflow server.
pytestmark = [pytest.mark.integration, pytest.mark.slow]

S = date(2013, 3, 6)
CUTOFF = date(2013, 3, 4)


@pytest.fixture(scope="module")
def settings(history_warehouse, mlflow_server):
    settings = history_warehouse.replace(
        mlflow_tracking_uri=mlflow_server,
        model_name="flight_disruption_safety",
        training_window_days=40,
        validation_days=10,
        tuning_trials=1,
        gate_floor_roc_auc=0.5,
    )
    outcome = training.train_challenger(CUTOFF, settings)
    registry.set_alias(settings, registry.CHAMPION, outcome.model.version)
    return settings


@pytest.fixture(scope="module")
def hostile(settings, tmp_path_factory):
    """Register the two hostile versions under a model name of their own; returns
    (settings for that name, {kind: ModelRef}, marker path)."""
    import mlflow
    import mlflow.pyfunc
    import mlflow.xgboost

    folder = tmp_path_factory.mktemp("hostile")
    marker = folder / "code_ran.marker"
    write = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('code ran')\n"
    (folder / "evil_trees.py").write_text(
        write + "import xgboost\n\n\nclass Booster(xgboost.Booster):\n    pass\n"
    )
    (folder / "evil_loader.py").write_text(write + "\n\ndef _load_pyfunc(path):\n    return None\n")
    hostile_settings = settings.replace(model_name="flight_disruption_hostile")
    good = registry.load_version(settings, 1)
    good_mlmodel = mlflow.models.get_model_info(f"models:/{settings.model_name}/1")

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    mlflow.set_experiment("hostile_models")
    sys.path.insert(0, str(folder))
    try:
        import evil_trees  # writes the marker: removed below, before anything is loaded

        booster = evil_trees.Booster()
        booster.load_model(bytearray(good.model.save_raw("ubj")))
        refs = {}
        with mlflow.start_run() as run:
            trees = mlflow.xgboost.log_model(
                booster,
                name="model",
                code_paths=[str(folder / "evil_trees.py")],
                model_format="ubj",
                metadata=good_mlmodel.metadata,
                signature=good_mlmodel.signature,
                pip_requirements=[],
                registered_model_name=hostile_settings.model_name,
            )
            refs["xgboost_code_paths"] = _ref(hostile_settings, run, trees)
        with mlflow.start_run() as run:
            pyfunc = mlflow.pyfunc.log_model(
                name="model",
                loader_module="evil_loader",
                code_paths=[str(folder / "evil_loader.py")],
                pip_requirements=[],  # inferring them would load the model
                registered_model_name=hostile_settings.model_name,
            )
            refs["pyfunc_loader_module"] = _ref(hostile_settings, run, pyfunc)
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("evil_trees", None)
        sys.modules.pop("evil_loader", None)
    marker.unlink()
    return hostile_settings, refs, marker


def _ref(settings, run, info) -> registry.ModelRef:
    return registry.ModelRef(
        settings.model_name,
        int(info.registered_model_version),
        run.info.run_id,
        run.info.experiment_id,
        settings.mlflow_tracking_uri,
    )


def load_with_mlflow(uri: str, tracking_uri: str, loader: str) -> subprocess.CompletedProcess:
    """MLflow's own loader, in a subprocess (so the test process never imports the code)."""
    code = textwrap.dedent(
        f"""
        import mlflow, mlflow.pyfunc, mlflow.xgboost
        mlflow.set_tracking_uri({tracking_uri!r})
        mlflow.set_registry_uri({tracking_uri!r})
        {loader}({uri!r})
        """
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("kind", "loader"),
    [
        ("xgboost_code_paths", "mlflow.xgboost.load_model"),
        ("pyfunc_loader_module", "mlflow.pyfunc.load_model"),
    ],
)
def test_control_mlflows_loader_runs_the_models_code(hostile, kind, loader):
    """The control: these versions really run code when MLflow loads them."""
    hostile_settings, refs, marker = hostile
    uri = f"models:/{hostile_settings.model_name}/{refs[kind].version}"
    try:
        load_with_mlflow(uri, hostile_settings.mlflow_tracking_uri, loader)
        assert marker.exists(), f"{loader} did not import the model's code"
    finally:
        marker.unlink(missing_ok=True)


@pytest.mark.parametrize("kind", ["xgboost_code_paths", "pyfunc_loader_module"])
def test_scoring_refuses_a_champion_that_carries_code(hostile, kind):
    hostile_settings, refs, marker = hostile
    registry.set_alias(hostile_settings, registry.CHAMPION, refs[kind].version)
    # The session's warehouse is shared: another test may have queued this night's alert
    # (the outbox keeps one per key), so start from none.
    key = f"scoring_no_usable_champion:{S}"
    with engine_for(hostile_settings).begin() as conn:
        conn.execute(text("DELETE FROM monitoring.alerts WHERE dedup_key = :k"), {"k": key})
    with pytest.raises(scoring.ScoringError, match="is refused") as refused:
        scoring.score(S, hostile_settings)
    assert isinstance(refused.value, DataError)
    assert isinstance(refused.value.__cause__, UnsafeModelError)
    assert "code" in str(refused.value)
    assert not marker.exists()
    with engine_for(hostile_settings).connect() as conn:
        alert = conn.execute(
            text("SELECT rule, severity, body FROM monitoring.alerts WHERE dedup_key = :k"),
            {"k": key},
        ).one()
    assert alert[:2] == ("scoring_no_usable_champion", "critical") and "refused" in alert[2]


@pytest.mark.parametrize("kind", ["xgboost_code_paths", "pyfunc_loader_module"])
def test_the_gate_refuses_a_challenger_that_carries_code(hostile, kind):
    hostile_settings, refs, marker = hostile
    with pytest.raises(UnsafeModelError, match="is refused"):
        gate.gate_challenger(refs[kind], CUTOFF, hostile_settings)
    assert not marker.exists()


def test_a_normal_model_scores_exactly_as_mlflow_loads_it(settings):
    """The UBJ trees read as data give the same scores, to the bit, as the model that
    `mlflow.xgboost.load_model` returns (its class imported by name)."""
    import mlflow.xgboost

    loaded = registry.load_model(settings)
    assert type(loaded.model).__name__ == "Booster"
    frame = build_features(engine_for(settings), S, S)
    reference = mlflow.xgboost.load_model(f"models:/{settings.model_name}/{loaded.version}")
    expected = reference.predict_proba(loaded.encoding.model_input(frame))[:, 1]
    assert len(frame) > 500
    np.testing.assert_array_equal(loaded.predict(frame), expected)
    result = scoring.score(S, settings)
    assert result.rows == len(frame) and result.model_version == loaded.version


def test_a_model_logged_by_training_passes_the_check(settings):
    """Training logs what the check accepts: xgboost flavor, UBJ trees, no code."""
    from mlflow.artifacts import download_artifacts

    from nightscore.model_files import inspect

    folder = Path(download_artifacts(f"models:/{settings.model_name}/1"))
    files = inspect(folder, "v1")
    assert files.trees.name == "model.ubj"
    assert {"threshold", "features", "encoding"} <= set(files.metadata)
