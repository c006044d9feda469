"""A scored and monitored night, told by the CLI: `score --json`, `monitor --json` and
`status` against a real warehouse holding history and a real MLflow registry with a
champion promoted by the gate."""

from __future__ import annotations

import json
from datetime import date

import pytest

from nightscore import gate, training
from nightscore.cli import main
from nightscore.exit_codes import ExitCode

pytestmark = [pytest.mark.integration, pytest.mark.slow]

S = date(2013, 3, 10)
CUTOFF = date(2013, 3, 4)
MODEL = "cli_status_scored"


@pytest.fixture(scope="module")
def champion(history_warehouse, mlflow_server):
    settings = history_warehouse.replace(
        mlflow_tracking_uri=mlflow_server,
        model_name=MODEL,
        training_window_days=40,
        validation_days=10,
        tuning_trials=1,
        gate_floor_roc_auc=0.5,
    )
    outcome = training.train_challenger(CUTOFF, settings)
    assert gate.gate_challenger(outcome.model, CUTOFF, settings).applied
    return settings, outcome.model.version


@pytest.fixture
def cli_env(champion, monkeypatch, tmp_path):
    settings, _ = champion
    for name, value in {
        "NIGHTSCORE_WAREHOUSE_URL": settings.warehouse_url,
        "NIGHTSCORE_ADMIN_URL": settings.admin_url,
        "NIGHTSCORE_LANDING_ROOT": settings.landing_root,
        "NIGHTSCORE_DATA_DOCS_ROOT": settings.data_docs_root,
        "NIGHTSCORE_ALERT_SPOOL_ROOT": settings.alert_spool_root,
        "NIGHTSCORE_MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "NIGHTSCORE_MODEL_NAME": MODEL,
        "NIGHTSCORE_REPORTS_DIR": str(tmp_path / "reports"),
        "NIGHTSCORE_EVIDENTLY_WORKSPACE": str(tmp_path / "evidently"),
    }.items():
        monkeypatch.setenv(name, value)
    return champion


def run_json(capsys, *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)  # exactly one JSON object


def test_score_monitor_and_status_tell_the_same_night(cli_env, capsys):
    _, version = cli_env
    day = S.isoformat()

    code, scored = run_json(capsys, "score", "--service-date", day)
    assert code == ExitCode.OK and scored["outcome"] == "scored"
    assert (scored["model_name"], scored["model_version"]) == (MODEL, version)
    assert scored["rows"] > 500 and scored["scoring_run_id"] > 0
    assert scored["model_url"].endswith(f"/#/models/{MODEL}/versions/{version}")

    code, status = run_json(capsys, "status", "--service-date", day)
    assert (code, status["degraded"], status["empty"]) == (ExitCode.OK, False, False)
    (run,) = [r for r in status["scoring_runs"] if r["model_name"] == MODEL]
    assert (run["scoring_run_id"], run["status"], run["rows"]) == (
        scored["scoring_run_id"],
        "succeeded",
        scored["rows"],
    )
    assert status["loaded"]["flights"] == scored["rows"] and status["loaded"]["outcomes"] > 0
    champ = status["champion"]
    assert (champ["state"], champ["version"], champ["alias"]) == ("ok", version, "champion")
    assert champ["promoted_at"] is not None

    code, monitored = run_json(capsys, "monitor", "--service-date", day, "--no-html")
    assert (code, monitored["outcome"]) == (ExitCode.OK, "ok")
    (performance,) = [p for p in monitored["performance"] if p["model_name"] == MODEL]
    assert performance["rows"] == scored["rows"] and 0.5 < performance["roc_auc"] < 1
    assert [d["model_version"] for d in monitored["drift"] if d["model_name"] == MODEL] == [version]

    code = main(["status", "--service-date", day])
    out = capsys.readouterr().out
    assert code == ExitCode.OK
    assert f"v{version} @champion, promoted " in out
    assert f"performance v{version}: {scored['rows']:,} flights, ROC AUC " in out
    assert f"drift       v{version}: " in out
    assert f"succeeded {scored['rows']:>9,} rows  v{version} of {MODEL}" in out
