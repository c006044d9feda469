"""Scoring against the real warehouse and a real MLflow registry: lineage on every row,
atomic re-runs, a failure that changes nothing, the advisory lock, K partitions equal to
one, and the analyst's views."""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import date, timedelta

import pytest
from sqlalchemy import create_engine, text

from nightscore import registry, scoring
from nightscore.features import FEATURES
from nightscore.warehouse.db import engine_for

# Slow: a champion trained first, on the session's history and MLflow server.
pytestmark = [pytest.mark.integration, pytest.mark.slow]

S = date(2013, 3, 6)


@pytest.fixture(scope="module")
def settings(champion_settings):
    """The session's champion (tests/conftest.py)."""
    return champion_settings


def rows(settings, sql, **params):
    with engine_for(settings).connect() as conn:
        return conn.execute(text(sql), params).all()


def predictions(settings, day=S):
    return rows(
        settings,
        "SELECT carrier, flight, origin, score, label, model_version, scoring_run_id "
        "FROM scoring.predictions WHERE service_date = :d AND model_name = :m "
        "ORDER BY carrier, flight, origin",
        d=day,
        m=settings.model_name,
    )


def test_a_night_is_scored_with_lineage_on_every_row(settings):
    result = scoring.score(S, settings, airflow_run_id="manual__test")
    flights = rows(settings, "SELECT count(*) FROM core.flights WHERE service_date = :d", d=S)
    assert result.rows == flights[0][0] > 500
    champion = registry.model_version(settings, registry.CHAMPION)
    checks = rows(
        settings,
        """
        SELECT count(*), count(DISTINCT model_version), min(model_version),
               bool_and(mlflow_run_id = :run), bool_and(label = (score >= threshold)),
               bool_and(airflow_run_id = 'manual__test'), min(score), max(score)
        FROM scoring.predictions WHERE service_date = :d AND model_name = :m
        """,
        run=champion.run_id,
        d=S,
        m=settings.model_name,
    )[0]
    assert checks[:6] == (result.rows, 1, int(champion.version), True, True, True)
    assert 0 <= checks[6] < checks[7] <= 1
    run = rows(
        settings,
        "SELECT status, rows, model_version, duration_s > 0 FROM scoring.runs "
        "WHERE scoring_run_id = :id",
        id=result.scoring_run_id,
    )[0]
    assert run == ("succeeded", result.rows, int(champion.version), True)
    partitions = rows(
        settings,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'scoring.predictions'::regclass",
    )
    assert ("predictions_2013_03",) in partitions


def test_rescoring_replaces_the_nights_rows(settings):
    first = scoring.score(S, settings)
    second = scoring.score(S, settings)
    after = predictions(settings)
    assert len(after) == second.rows == first.rows
    assert {r.scoring_run_id for r in after} == {second.scoring_run_id}


class _FailsOnSecondChunk:
    """The champion, except that it breaks after one chunk has been written."""

    def __init__(self, model):
        self.model, self.calls = model, 0

    def __getattr__(self, name):
        return getattr(self.model, name)

    def predict(self, frame):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("the scoring process died mid-write")
        return self.model.predict(frame)


def test_a_failure_mid_write_leaves_the_previous_rows_intact(settings):
    before = predictions(settings)
    assert before
    broken = _FailsOnSecondChunk(scoring.champion(settings))
    with pytest.raises(RuntimeError, match="died mid-write"):
        scoring.score(S, settings, model=broken, chunk_rows=200)
    assert broken.calls == 2  # one chunk had been written before the failure
    assert predictions(settings) == before
    status, error = rows(
        settings,
        "SELECT status, error FROM scoring.runs ORDER BY scoring_run_id DESC LIMIT 1",
    )[0]
    assert status == "failed" and "died mid-write" in error


def test_two_runs_for_the_same_night_do_not_interleave(settings):
    """Hold the night's lock, start two runs: both wait, then run one after the other."""
    lock = create_engine(engine_for(settings).url)
    results, errors = [], []

    def run():
        try:
            results.append(scoring.score(S, settings, chunk_rows=300))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with lock.connect() as conn, conn.begin():
        conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
            {"k": f"score:{S}:{settings.model_name}"},
        )
        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        time.sleep(3)
        assert results == [], "a run wrote while another held the night's lock"
    for thread in threads:
        thread.join(timeout=120)
    lock.dispose()
    assert not errors and len(results) == 2
    after = predictions(settings)
    assert len(after) == results[0].rows
    # The rows are all from one run: the one that committed last.
    assert len({r.scoring_run_id for r in after}) == 1


def test_k_partitions_give_exactly_the_rows_of_one(settings):
    single = scoring.score(S, settings)
    one = [(r.carrier, r.flight, r.origin, r.score, r.label) for r in predictions(settings)]
    planned = scoring.plan(S, settings, 3)
    staged = [scoring.score_partition(planned, part, settings) for part in range(3)]
    assert all(n > 0 for n in staged) and sum(staged) == single.rows
    published = scoring.publish(planned, settings)
    assert published.rows == single.rows
    three = [(r.carrier, r.flight, r.origin, r.score, r.label) for r in predictions(settings)]
    assert three == one
    assert rows(
        settings,
        "SELECT count(*) FROM scoring.staged_predictions WHERE scoring_run_id = :id",
        id=planned["scoring_run_id"],
    ) == [(0,)]


def test_no_champion_fails_clearly_and_raises_an_alert(settings):
    orphan = settings.replace(model_name="flight_disruption_never_trained")
    with pytest.raises(scoring.ScoringError, match="alias 'champion'"):
        scoring.score(S, orphan)
    alerts = rows(
        settings,
        "SELECT rule, severity FROM monitoring.alerts WHERE dedup_key = :k",
        k=f"scoring_no_usable_champion:{S}",
    )
    assert alerts == [("scoring_no_usable_champion", "critical")]


def test_a_model_whose_signature_does_not_match_the_features_is_refused(settings):
    model = scoring.champion(settings)
    older = dataclasses.replace(
        model, features=[*FEATURES[:-1], "a_retired_feature"], signature_inputs=[]
    )
    with pytest.raises(scoring.ScoringError, match="unknown to the builder: a_retired_feature"):
        scoring.check_signature(older)


def test_a_night_with_no_flights_fails_and_changes_nothing(settings):
    with pytest.raises(scoring.ScoringError, match="no flights are loaded"):
        scoring.score(date(2013, 6, 1), settings)


def test_analysts_read_tonights_risk_list_through_the_views(settings):
    scoring.score(S, settings)
    tonight = rows(
        settings,
        "SELECT risk, carrier_name, origin_name, dest_name, sched_departure_local "
        "FROM analytics.tonight WHERE model_name = :m",
        m=settings.model_name,
    )
    assert len(tonight) > 500
    risks = [r.risk for r in tonight]
    assert risks == sorted(risks, reverse=True)
    assert all(r.carrier_name and r.origin_name and r.dest_name for r in tonight)
    performance = rows(
        settings,
        "SELECT flights, observed_rate, precision, recall FROM analytics.daily_model_performance "
        "WHERE service_date = :d AND model_name = :m",
        d=S,
        m=settings.model_name,
    )
    assert len(performance) == 1 and performance[0].flights == len(tonight)


def test_performance_once_outcomes_land_overall_by_segment_and_trailing(settings):
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from nightscore.monitoring import performance

    scoring.score(S - timedelta(days=1), settings)
    scoring.score(S, settings)
    stored = performance.measure(S, settings)
    again = performance.measure(S, settings)  # a re-run replaces, never duplicates
    assert len(again) == len(stored)
    mine = [r for r in stored if r.model_name == settings.model_name]
    kinds = {(r.segment_type, r.segment) for r in mine}
    assert {("all", "all"), ("origin", "EWR"), ("origin", "JFK"), ("origin", "LGA")} <= kinds
    assert ("trailing_7d", "2 days") in kinds
    overall = next(r for r in mine if r.segment_type == "all").metrics
    truth = rows(
        settings,
        "SELECT risk, disrupted, predicted_disrupted FROM analytics.predictions_vs_outcomes "
        "WHERE service_date = :d AND model_name = :m",
        d=S,
        m=settings.model_name,
    )
    y = np.array([int(r.disrupted) for r in truth])
    p = np.array([r.risk for r in truth])
    assert overall["rows"] == len(truth) and overall["positives"] == y.sum()
    assert overall["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-6)
    flagged = np.array([r.predicted_disrupted for r in truth])
    assert overall["precision"] == pytest.approx((flagged & (y == 1)).sum() / flagged.sum())
    by_origin = sum(r.metrics["rows"] for r in mine if r.segment_type == "origin")
    assert by_origin == overall["rows"]
    count = rows(
        settings,
        "SELECT count(*) FROM monitoring.performance WHERE service_date = :d AND model_name = :m",
        d=S,
        m=settings.model_name,
    )[0][0]
    assert count == len(mine)


def test_nothing_to_measure_before_a_night_is_scored(settings):
    from nightscore.monitoring import performance

    with pytest.raises(performance.NothingToMeasure, match="no predictions of 2013-02-20"):
        performance.measure(date(2013, 2, 20), settings)
