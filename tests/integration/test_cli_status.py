"""The CLI answers operators, against a real warehouse and a real SMTP server: `status`
for one night, `alerts list`, `--json`, and an exit code for each way a command ends
(a rejected, held or missing batch, a component down, MLflow down for `status`)."""

from __future__ import annotations

import json
from datetime import date

import pytest
from aiosmtpd.controller import Controller

from nightscore.cli import main
from nightscore.exit_codes import ExitCode
from nightscore.landing import Landing, replay_parts
from nightscore_dev.stack import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

D = date(2013, 11, 19)  # a date no other test of the session's warehouse loads
TO = "oncall@nightscore.example"


class Accept:
    """An SMTP handler that accepts every message."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        return "250 Message accepted for delivery"


@pytest.fixture
def cli_env(warehouse, monkeypatch):
    """The CLI's settings point at the session's warehouse; MLflow at a closed port."""
    monkeypatch.setenv("NIGHTSCORE_WAREHOUSE_URL", warehouse.warehouse_url)
    monkeypatch.setenv("NIGHTSCORE_ADMIN_URL", warehouse.admin_url)
    monkeypatch.setenv("NIGHTSCORE_LANDING_ROOT", warehouse.landing_root)
    monkeypatch.setenv("NIGHTSCORE_DATA_DOCS_ROOT", warehouse.data_docs_root)
    monkeypatch.setenv("NIGHTSCORE_ALERT_SPOOL_ROOT", warehouse.alert_spool_root)
    monkeypatch.setenv("NIGHTSCORE_MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("NIGHTSCORE_ALERT_EMAIL_TO", TO)
    return warehouse


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv: str) -> tuple[int, dict]:
    code, out, _ = run(capsys, *argv, "--json")
    return code, json.loads(out)  # stdout is exactly one JSON object


def test_a_night_told_from_nothing_to_loaded_held_rejected_and_alerted(cli_env, capsys):
    day = D.isoformat()
    landing = Landing(cli_env.landing_root)

    # Nothing yet: said plainly, not an error; MLflow down makes it degraded.
    code, out, _ = run(capsys, "status", "--service-date", day)
    assert code == ExitCode.DEGRADED
    assert f"Nothing recorded for {day} yet" in out and "MLflow unavailable" in out
    code, empty = run_json(capsys, "status", "--service-date", day)
    assert (code, empty["empty"], empty["degraded"]) == (ExitCode.DEGRADED, True, True)
    assert empty["champion"]["state"] == "unavailable" and empty["batches"] == []

    # Outcomes that have not landed: the missing code.
    code, missing = run_json(capsys, "ingest", "outcomes", "--service-date", day)
    assert (code, missing["outcome"], missing["exit_code"]) == (ExitCode.MISSING, "missing", 4)

    # The schedule loads; --json says what was done.
    night = len(replay_parts("schedule", D)["flights"])
    landing.write_batch("schedule", D, replay_parts("schedule", D))
    code, loaded = run_json(capsys, "ingest", "schedule", "--service-date", day)
    assert code == ExitCode.OK
    assert (loaded["command"], loaded["status"], loaded["kind"]) == ("ingest", "loaded", "schedule")
    assert loaded["service_date"] == day and loaded["rows"] > night and loaded["batch_id"] > 0

    # A truncated schedule is held: the held code, and the batch's id.
    parts = replay_parts("schedule", D)
    landing.write_batch("schedule", D, {**parts, "flights": parts["flights"].head(night // 2)})
    code, held = run_json(capsys, "ingest", "schedule", "--service-date", day)
    assert (code, held["outcome"]) == (ExitCode.HELD, "held")
    assert held["batch_id"] > loaded["batch_id"] and "held" in held["error"]

    # Outcomes naming a carrier nobody flies are rejected: the rejected code.
    outcomes = replay_parts("outcomes", D)
    outcomes["outcomes"].loc[outcomes["outcomes"].index[:3], "carrier"] = "ZZ"
    landing.write_batch("outcomes", D, outcomes)
    code, out, err = run(capsys, "ingest", "outcomes", "--service-date", day)
    assert code == ExitCode.REJECTED and out == ""
    assert "REJECTED" in err and "Traceback" not in err

    # The status tells it all, in 80 columns.
    code, out, _ = run(capsys, "status", "--service-date", day)
    assert code == ExitCode.DEGRADED
    # Every line fits 80 columns, but a link, which is never cut (on a line of its own).
    assert all(len(line) <= 80 or line.startswith("    http") for line in out.splitlines()), out
    for expected in (
        f"schedule  #{loaded['batch_id']}",
        "held",
        "rejected",
        "why: ",
        "ZZ",
        f"in core   {night:,} flights",
        "Scoring\n  not scored",
        "MLflow unavailable",
        "performance: not measured",
        "pending",
    ):
        assert expected in out, (expected, out)
    code, status = run_json(capsys, "status", "--service-date", day)
    assert set(status) == {
        "service_date",
        "empty",
        "degraded",
        "batches",
        "loaded",
        "scoring_runs",
        "champion",
        "monitoring",
        "alerts",
    }
    assert [(b["kind"], b["status"]) for b in status["batches"]] == [
        ("schedule", "loaded"),
        ("schedule", "held"),
        ("outcomes", "rejected"),
    ]
    assert status["batches"][1]["batch_id"] == held["batch_id"]
    rejection = status["batches"][2]["error"]
    assert "REJECTED" in rejection and "ZZ" in rejection  # the whole summary, examples too
    assert status["loaded"] == {
        "flights": night,
        "weather": status["loaded"]["weather"],
        "outcomes": 0,
    }
    assert status["loaded"]["weather"] > 0 and status["scoring_runs"] == []
    assert {a["rule"] for a in status["alerts"]} >= {"batch_held", "batch_rejected"}
    assert {a["status"] for a in status["alerts"]} == {"pending"}

    # The outbox, filtered; then sent through a real SMTP server, and listed as sent.
    code, pending = run_json(capsys, "alerts", "list", "--service-date", day, "--status", "pending")
    assert code == ExitCode.OK and len(pending) == len(status["alerts"])
    assert [a["alert_id"] for a in pending] == sorted(
        (a["alert_id"] for a in pending), reverse=True
    )
    code, sent = run_json(capsys, "alerts", "list", "--service-date", day, "--status", "sent")
    assert (code, sent) == (ExitCode.OK, [])
    import os

    handler = Accept()
    smtp = Controller(handler, hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        os.environ["AIRFLOW_CONN_SMTP_DEFAULT"] = (
            f"smtp://127.0.0.1:{smtp.port}?disable_ssl=true&disable_tls=true&timeout=5"
        )
        assert main(["alerts", "send"]) == ExitCode.OK
    finally:
        os.environ.pop("AIRFLOW_CONN_SMTP_DEFAULT", None)
        smtp.stop()
    capsys.readouterr()
    assert handler.count >= len(pending)
    code, sent = run_json(capsys, "alerts", "list", "--service-date", day, "--status", "sent")
    assert sorted(a["alert_id"] for a in sent) == sorted(a["alert_id"] for a in pending)
    code, out, _ = run(capsys, "alerts", "list", "--service-date", day)
    assert code == ExitCode.OK and out.count(" sent ") >= len(pending)
    code, out, _ = run(capsys, "status", "--service-date", day)
    assert f"0 pending, {len(pending)} sent" in out

    # Nothing scored to monitor: the data code, and still one JSON object on stdout.
    code, failed = run_json(capsys, "monitor", "--service-date", day, "--no-html")
    assert (code, failed["outcome"], failed["command"]) == (ExitCode.DATA, "data", "monitor")
    assert "nothing was scored" in failed["error"]


def test_a_warehouse_that_does_not_answer_is_the_unavailable_code(cli_env, monkeypatch, capsys):
    url = f"postgresql://nightscore_etl@127.0.0.1:{free_port()}/nowhere"
    monkeypatch.setenv("NIGHTSCORE_WAREHOUSE_URL", url)
    code, out, err = run(capsys, "status", "--service-date", D.isoformat())
    assert code == ExitCode.UNAVAILABLE and out == ""
    assert "Warehouse unavailable" in err and "Traceback" not in err
    code, failed = run_json(capsys, "alerts", "list")
    assert code == ExitCode.UNAVAILABLE
    # --json keeps its promise of one object, even on the way out.
    later = date(2013, 11, 20)
    Landing(cli_env.landing_root).write_batch("schedule", later, replay_parts("schedule", later))
    code, failed = run_json(capsys, "ingest", "schedule", "--service-date", "2013-11-20")
    assert (code, failed["outcome"], failed["exit_code"]) == (
        ExitCode.UNAVAILABLE,
        "unavailable",
        7,
    )


def test_usage_errors_are_code_two_and_the_version_prints(cli_env, capsys):
    for argv in (
        ["status", "--service-date", "2013-02-30"],
        ["status"],
        ["alerts", "list", "--status", "lost"],
        ["alerts", "list", "--limit", "0"],
    ):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == ExitCode.USAGE, argv
    err = capsys.readouterr().err
    assert "not a date (expected YYYY-MM-DD): '2013-02-30'" in err
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("nightscore 0.")


def test_with_mlflow_up_and_no_champion_scoring_is_the_data_code(
    cli_env, mlflow_server, monkeypatch, capsys
):
    monkeypatch.setenv("NIGHTSCORE_MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("NIGHTSCORE_MODEL_NAME", "cli_status_no_champion")
    code, status = run_json(capsys, "status", "--service-date", "2013-11-21")
    assert (code, status["degraded"]) == (ExitCode.OK, False)
    assert status["champion"]["state"] == "none" and status["empty"] is True
    code, out, _ = run(capsys, "status", "--service-date", "2013-11-21")
    assert "no version of cli_status_no_champion has the alias @champion" in out
    code, failed = run_json(capsys, "score", "--service-date", "2013-11-21")
    assert (code, failed["outcome"], failed["command"]) == (ExitCode.DATA, "data", "score")
    assert "champion" in failed["error"]
