"""Training against the real warehouse and a real MLflow tracking server: what a run logs,
what the registry holds, and the gate both ways (promote, reject, dry run)."""

from __future__ import annotations

from datetime import date

import pytest
from mlflow import MlflowClient
from sqlalchemy import text

from nightscore import gate, registry, training
from nightscore.features import FEATURES
from nightscore.warehouse.db import engine_for

# Slow: a training run with tuning, on the session's history and MLflow server.
pytestmark = [pytest.mark.integration, pytest.mark.slow]

CUTOFF = date(2013, 3, 11)  # the day after the seeded history ends


@pytest.fixture(scope="module")
def settings(history_warehouse, mlflow_server):
    # A small window and budget: this tests the machinery, `nightscore evaluate` the quality.
    return history_warehouse.replace(
        mlflow_tracking_uri=mlflow_server,
        model_name="flight_disruption_test",
        training_window_days=45,
        validation_days=10,
        tuning_trials=2,
        tuning_timeout_s=60,
        gate_floor_roc_auc=0.5,
    )


@pytest.fixture(scope="module")
def first(settings):
    """The first model trained on an empty registry, and its gate decision."""
    outcome = training.train_challenger(CUTOFF, settings, trigger="test")
    decision = gate.gate_challenger(outcome.model, CUTOFF, settings, trigger="test")
    return outcome, decision


def decisions(settings):
    with engine_for(settings).connect() as conn:
        return conn.execute(
            text(
                "SELECT challenger_version, champion_version, decision, applied, mode, reason "
                "FROM ml.model_decisions WHERE model_name = :m ORDER BY decision_id"
            ),
            {"m": settings.model_name},
        ).all()


def test_a_training_run_logs_what_an_engineer_needs(settings, first):
    outcome, _ = first
    client = MlflowClient(settings.mlflow_tracking_uri)
    run = client.get_run(outcome.model.run_id)
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert params["train_start"] == "2013-01-25" and params["validation_end"] == "2013-03-10"
    assert len(params["data_hash"]) == 64 and params["threshold_rule"].startswith("best F1")
    assert {"train_roc_auc", "validation_roc_auc", "validation_brier", "validation_pr_auc"} <= set(
        metrics
    )
    assert 0.5 < metrics["validation_roc_auc"] < 0.95
    assert len(tags["mlflow.source.git.commit"]) == 40
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert artifacts == {
        "plots/calibration.png",
        "plots/feature_importance.png",
        "plots/precision_recall.png",
    }
    # The reference sample for the morning's drift, the profile for the evening's check.
    assert {a.path for a in client.list_artifacts(run.info.run_id, "reference")} == {
        registry.REFERENCE_ARTIFACT,
        registry.PROFILE_ARTIFACT,
    }
    assert run.inputs.dataset_inputs[0].dataset.digest == params["data_hash"][:32]


def test_the_registered_model_carries_signature_threshold_and_encoding(settings, first):
    outcome, _ = first
    loaded = registry.load_model(settings, alias=registry.CHALLENGER)
    assert loaded.version == outcome.model.version
    assert loaded.signature_inputs == list(FEATURES) == loaded.features
    assert 0 < loaded.threshold < 1
    assert set(loaded.encoding.vocabulary) == {"carrier", "origin", "dest"}


def test_the_first_model_above_the_floor_becomes_champion(settings, first):
    outcome, decision = first
    assert decision.decision == "promote" and decision.applied
    assert "no champion yet" in decision.reason
    champion = registry.model_version(settings, registry.CHAMPION)
    assert int(champion.version) == outcome.model.version
    assert champion.tags["gate.decision"] == "promote"
    assert decisions(settings)[0][:5] == (outcome.model.version, None, "promote", True, "enforce")


def test_a_challenger_below_the_floor_is_rejected_and_the_champion_stays(settings, first):
    champion_before = int(registry.model_version(settings, registry.CHAMPION).version)
    strict = settings.replace(gate_floor_roc_auc=0.99, tuning_trials=1)
    outcome = training.train_challenger(CUTOFF, strict)
    decision = gate.gate_challenger(outcome.model, CUTOFF, strict)
    assert decision.decision == "reject" and not decision.applied
    assert "below the floor 0.9900" in decision.reason
    assert decision.champion_version == champion_before
    assert int(registry.model_version(settings, registry.CHAMPION).version) == champion_before
    assert int(registry.model_version(settings, registry.CHALLENGER).version) == (
        outcome.model.version
    )
    last = decisions(settings)[-1]
    assert last[:5] == (outcome.model.version, champion_before, "reject", False, "enforce")
    run = MlflowClient(settings.mlflow_tracking_uri).get_run(outcome.model.run_id)
    assert run.data.tags["gate.decision"] == "reject"


def test_dry_run_decides_and_records_but_never_moves_the_champion(settings, first):
    champion_before = int(registry.model_version(settings, registry.CHAMPION).version)
    dry = settings.replace(gate_mode="dry_run", tuning_trials=1)
    outcome = training.train_challenger(CUTOFF, dry)
    decision = gate.gate_challenger(outcome.model, CUTOFF, dry)
    assert decision.decision == "promote" and not decision.applied
    assert "dry run" in decision.reason
    assert int(registry.model_version(settings, registry.CHAMPION).version) == champion_before
    assert decisions(settings)[-1][2:5] == ("promote", False, "dry_run")


def test_a_training_set_that_fails_its_checks_registers_nothing(settings, first):
    versions_before = MlflowClient(settings.mlflow_tracking_uri).search_model_versions(
        f"name = '{settings.model_name}'"
    )
    # The window before 2013-01-02 holds one day: too few rows.
    with pytest.raises(training.TrainingError, match=r"no labelled flights|failed"):
        training.train_challenger(date(2013, 1, 2), settings)
    versions_after = MlflowClient(settings.mlflow_tracking_uri).search_model_versions(
        f"name = '{settings.model_name}'"
    )
    assert len(versions_after) == len(versions_before)


def test_champion_history_view_names_each_champion(settings, first):
    outcome, _ = first
    with engine_for(settings).connect() as conn:
        rows = conn.execute(
            text(
                "SELECT version, champion_until FROM analytics.champion_history "
                "WHERE model_name = :m ORDER BY champion_from"
            ),
            {"m": settings.model_name},
        ).all()
    assert rows[0] == (outcome.model.version, None)
