"""The human and JSON forms of `nightscore status` and `alerts list`, and the exit codes:
80 columns, what an operator looks for on each line, and a stable JSON object."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import numpy as np
import pytest

from nightscore.cli import build_parser
from nightscore.config import SettingsError
from nightscore.errors import DataError, InfrastructureError
from nightscore.exit_codes import ExitCode, epilog, for_error
from nightscore.ingest import BatchHeld, BatchMissing, BatchRejected
from nightscore.status import Champion, NightStatus, jsonable
from nightscore.status_text import fit, reasons, render_alerts, render_status, when

D = date(2013, 2, 8)
T = datetime(2013, 2, 7, 21, 4, 30, tzinfo=UTC)
LONG = "flight_disruption_scoring_with_a_very_long_registered_model_name"
URL = "http://airflow.example/nightscore/files/reports/drift/" + "x" * 40 + ".html"
REJECTION = (
    "outcomes batch for 2013-02-08 REJECTED: 2 critical expectations failed\n"
    " - outcomes: carrier must be a known airline: 3 of 900 rows, e.g. ZZ\n"
    " - outcomes: every outcome must be a scheduled flight: 3 of 900 rows, e.g. ZZ 1"
)


def batch(batch_id, kind, status, rows, error=None, applied_by=None):
    return {
        "batch_id": batch_id,
        "kind": kind,
        "status": status,
        "rows": rows,
        "warnings": 0,
        "error": error,
        "data_docs_url": f"http://airflow.example/nightscore/files/data_docs/{batch_id}.html",
        "applied_by": applied_by,
        "received_at": T,
        "updated_at": T,
    }


def alert(alert_id, status, subject, attempts=0, last_error=None):
    return {
        "alert_id": alert_id,
        "created_at": T,
        "service_date": D,
        "rule": "batch_rejected",
        "severity": "critical",
        "audience": "engineers",
        "subject": subject,
        "status": status,
        "attempts": attempts,
        "last_error": last_error,
        "sent_at": T if status == "sent" else None,
    }


def night(**changes) -> NightStatus:
    status = NightStatus(
        service_date=D,
        batches=[
            batch(11, "schedule", "loaded", 1_003),
            batch(14, "outcomes", "rejected", 900, REJECTION),
        ],
        loaded={"flights": 1_003, "weather": 72, "outcomes": 0},
        scoring_runs=[
            {
                "scoring_run_id": 7,
                "status": "succeeded",
                "rows": 1_003,
                "model_name": LONG,
                "model_version": 3,
                "mlflow_run_id": "abc",
                "partitions": 1,
                "started_at": T,
                "finished_at": T,
                "duration_s": 2.25,
                "airflow_run_id": None,
                "error": None,
            }
        ],
        champion=Champion(LONG, "ok", version=3, run_id="abc", promoted_at=T),
        performance=[
            {
                "model_name": LONG,
                "model_version": 3,
                "rows": 1_003,
                "positives": 400,
                "roc_auc": 0.7123,
                "pr_auc": 0.6,
                "precision": 0.5,
                "recall": float("nan"),
                "brier": 0.2,
                "threshold": 0.4,
                "computed_at": T,
            }
        ],
        drift=[
            {
                "model_name": LONG,
                "model_version": 3,
                "current_rows": 1_003,
                "share_drifted": 0.25,
                "drifted_columns": ["precip", "visib", "wind_speed", "wind_gust", "humid"] * 3,
                "score_drifted": True,
                "mean_score": 0.41,
                "reference_mean_score": 0.26,
                "report_path": "/x/drift/2013-02-08.html",
                "report_url": URL,
                "computed_at": T,
            }
        ],
        alerts=[
            alert(21, "sent", "[nightscore] outcomes batch for 2013-02-08 rejected " + "x" * 60),
            alert(22, "pending", "[nightscore] MLflow unavailable", 2, "SMTP server down"),
        ],
    )
    for key, value in changes.items():
        setattr(status, key, value)
    return status


def test_every_line_fits_80_columns_and_says_what_an_operator_looks_for():
    text = render_status(night())
    # Every line fits, but a link: that one is whole, on a line of its own.
    for line in text.splitlines():
        assert len(line) <= 80 or line == "    " + URL, line
    assert text.startswith("nightscore status for 2013-02-08 (Friday)")
    for expected in (
        "schedule  #11    loaded        1,003 rows",
        "outcomes  #14    rejected        900 rows",
        "why: outcomes: carrier must be a known airline: 3 of 900 rows,",
        "e.g. ZZ; outcomes: every outcome must be a scheduled ...\n"
        + " " * 18
        + "Data Docs:\n    http://airflow.example/nightscore/files/data_docs/14.html",
        "in core   1,003 flights, 72 weather hours, 0 outcomes",
        "run #7     succeeded     1,003 rows",
        "started 2013-02-07 21:04 UTC, took 2.2 s",
        "v3 @champion, promoted 2013-02-07 21:04 UTC",
        f"run #7     succeeded     1,003 rows  v3 of {LONG[:30]}",
        "ROC AUC 0.712, precision 0.500, recall n/a",
        "25% of features drifted (precip, visib",
        "mean score 0.410 vs 0.260 in the reference",
        "1 pending, 1 sent, 0 other",
        "#22    pending    critical MLflow unavailable",
        "2 failed attempt(s), last: SMTP server down",
        "sent 2013-02-07 21:04 UTC",
        f"  drift report of v3:\n    {URL}\n",
    ):
        assert expected in text, (expected, text)
    # Cut lines end in "...": the long model name, the drifted columns, the subject.
    assert text.count("...") >= 3
    # The loaded batch has no "why"; only the rejected one does.
    assert text.count("why:") == 1


def test_a_night_with_nothing_says_so_and_still_shows_the_champion():
    empty = night(batches=[], scoring_runs=[], performance=[], drift=[], alerts=[])
    empty.loaded = {"flights": 0, "weather": 0, "outcomes": 0}
    assert empty.empty and not night().empty
    text = render_status(empty)
    assert "Nothing recorded for 2013-02-08 yet" in text and "Champion (now)" in text
    assert "Batches" not in text


def test_mlflow_down_is_said_in_its_section_and_degrades_the_status():
    down = night(champion=Champion(LONG, "unavailable", error="connection refused"))
    assert down.degraded and not night().degraded
    text = render_status(down)
    assert "  MLflow unavailable: connection refused" in text
    assert "Batches" in text and "Monitoring" in text  # the rest is still there
    none = render_status(night(champion=Champion("m", "none")))
    assert "no version of m has the alias @champion" in none


def test_the_json_object_has_stable_keys_and_plain_values():
    data = night().to_json()
    encoded = json.loads(json.dumps(data))  # nothing json cannot take
    assert list(encoded) == [
        "service_date",
        "empty",
        "degraded",
        "batches",
        "loaded",
        "scoring_runs",
        "champion",
        "monitoring",
        "alerts",
    ]
    assert list(encoded["monitoring"]) == ["performance", "drift", "breached_rules", "retrain"]
    assert encoded["service_date"] == "2013-02-08"
    assert encoded["batches"][1]["error"] == REJECTION  # the whole summary, for a script
    assert encoded["champion"]["promoted_at"] == "2013-02-07T21:04:30+00:00"
    assert encoded["monitoring"]["performance"][0]["recall"] is None  # NaN is not JSON
    assert jsonable({"a": Decimal("0.25"), "b": np.float32(0.5), "c": np.int64(3)}) == {
        "a": 0.25,
        "b": 0.5,
        "c": 3,
    }


def test_alerts_list_is_one_line_an_alert_under_a_header():
    text = render_alerts(night().alerts)
    lines = text.splitlines()
    assert lines[0].split() == ["id", "date", "status", "severity", "subject"]
    assert lines[1].startswith("  #21    2013-02-08 sent       critical")
    assert all(len(line) <= 80 for line in lines)
    assert render_alerts([]) == "no alerts match"


def test_small_helpers():
    assert fit("x" * 80) == "x" * 80
    assert fit("x" * 81) == "x" * 77 + "..."
    assert when(None) == "-"
    assert when(datetime(2013, 2, 7, 23, 4, tzinfo=UTC).astimezone()) == "2013-02-07 23:04 UTC"
    assert reasons(REJECTION).startswith("outcomes: carrier must be a known airline")
    assert reasons("one line\nand more") == "one line"
    assert reasons(None) is None


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (BatchRejected("rejected"), ExitCode.REJECTED),
        (BatchMissing("not landed"), ExitCode.MISSING),
        (SettingsError("NIGHTSCORE_X='y'"), ExitCode.USAGE),
        (DataError("no champion"), ExitCode.DATA),
        (InfrastructureError("mlflow", "refused"), ExitCode.UNAVAILABLE),
        (ConnectionRefusedError("refused"), ExitCode.FAILED),  # no client in its traceback
        (RuntimeError("a bug"), ExitCode.FAILED),
    ],
)
def test_each_error_has_its_exit_code(error, code):
    assert for_error(error) is code


def test_a_held_batch_has_its_own_code():
    from nightscore.held import Hold, PartShrink

    hold = Hold("schedule", D, 0.9, (PartShrink("flights", 1000, 500),))
    assert for_error(BatchHeld(hold, 3)) is ExitCode.HELD


def test_the_codes_are_distinct_and_in_the_help():
    assert len({int(c) for c in ExitCode}) == len(ExitCode)
    help_text = build_parser().format_help()
    assert epilog() in help_text
    for code in ExitCode:
        assert f"  {code.value}  {code.name.lower()}" in help_text
    assert all(len(line) <= 80 for line in epilog().splitlines())
