"""The store on a real S3 API (moto's server, authentication on): atomic writes, failures
that name the location and the reason but no secret, a batch landed, validated and
documented on S3, and the Evidently workspace on S3."""

from __future__ import annotations

import json
from datetime import date

import pytest
from nightscore_suite import clear_s3_clients
from sqlalchemy import text

from nightscore import links, store
from nightscore.ingest import ingest
from nightscore.landing import Landing, replay_parts
from nightscore.store import StoreError
from nightscore.warehouse.db import engine_for

# Slow: moto's S3 server, and a batch validated and documented on it.
pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def fresh_clients():
    """Credentials changed by a test apply to its requests, and no longer after it."""
    clear_s3_clients()
    yield
    clear_s3_clients()


def test_writes_and_reads_on_s3(s3_store):
    url = s3_store.url("t/basic/page.html")
    store.write_text(url, "first")
    assert store.exists(url) and store.read_text(url) == "first"
    store.write_bytes(url, b"second")
    assert store.read_bytes(url) == b"second"
    assert s3_store.keys("t/basic/") == ["t/basic/page.html"]
    store.remove(url)
    assert not store.exists(url)
    with pytest.raises(FileNotFoundError):
        store.read_bytes(url)


@pytest.mark.parametrize("where", ["s3", "local"])
def test_a_write_that_fails_keeps_the_earlier_version(s3_store, tmp_path, where):
    url = s3_store.url("t/atomic/report.html") if where == "s3" else str(tmp_path / "report.html")
    store.write_text(url, "complete")
    with pytest.raises(RuntimeError, match="rendering failed"), store.open_write(url) as file:
        file.write(b"half a page")
        raise RuntimeError("rendering failed")
    assert store.read_text(url) == "complete"
    if where == "s3":
        assert s3_store.keys("t/atomic/") == ["t/atomic/report.html"]
    else:
        assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_an_upload_that_fails_midway_leaves_no_final_key(s3_store, monkeypatch, fresh_clients):
    """A user that may write temporary keys but not the final one: the first stage of the
    upload succeeds, the move fails; no final key appears and nothing is left behind."""
    iam = s3_store.client("iam")
    bucket = f"arn:aws:s3:::{s3_store.bucket}"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"},
            {"Effect": "Allow", "Action": "s3:*", "Resource": f"{bucket}/t/midway/.*.partial"},
        ],
    }
    iam.create_user(UserName="midway")
    iam.put_user_policy(UserName="midway", PolicyName="partial", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="midway")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    url = s3_store.url("t/midway/report.html")

    with pytest.raises(StoreError, match="access denied") as failure:
        store.write_text(url, "x" * 100_000)

    assert url in str(failure.value)
    assert s3_store.keys("t/midway/") == []


def test_a_store_that_is_down_raises_store_error_naming_the_url(s3_store, monkeypatch):
    from nightscore_dev.stack import free_port

    monkeypatch.setenv("FSSPEC_S3_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    url = s3_store.url("t/down/report.html")

    with pytest.raises(StoreError, match="cannot connect") as failure:
        store.write_text(url, "never written")

    message = str(failure.value)
    assert message.startswith(f"Object store unavailable: cannot write {url}: ")
    assert s3_store.secret not in message


def test_wrong_credentials_raise_store_error_without_the_secret(
    s3_store, monkeypatch, fresh_clients
):
    wrong = "wrong-secret-that-must-not-print"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong)
    url = s3_store.url("t/denied/report.html")

    with pytest.raises(StoreError, match="access denied") as failure:
        store.write_text(url, "never written")
    with pytest.raises(StoreError, match=f"cannot check {url}: access denied"):
        store.exists(url)

    assert url in str(failure.value)
    assert wrong not in str(failure.value) and s3_store.secret not in str(failure.value)


def test_put_folder_publishes_a_site_and_drops_what_the_last_one_had(s3_store, tmp_path):
    site = tmp_path / "site"
    (site / "validations").mkdir(parents=True)
    (site / "validations" / "old.html").write_text("old run")
    (site / "summary.html").write_text("v1")
    url = s3_store.url("t/site")
    store.put_folder(site, url, linked="summary.html")
    (site / "validations" / "old.html").unlink()
    (site / "validations" / "new.html").write_text("new run")
    (site / "summary.html").write_text("v2")

    page = store.put_folder(site, url, linked="summary.html")

    assert page == f"{url}/summary.html" and store.read_text(page) == "v2"
    assert s3_store.keys("t/site/") == ["t/site/summary.html", "t/site/validations/new.html"]


def test_a_batch_landed_on_s3_is_ingested_with_its_docs_on_s3(warehouse, s3_store):
    settings = warehouse.replace(
        landing_root=s3_store.url("landing"),
        data_docs_root=s3_store.url("data_docs"),
        public_airflow_url="https://airflow.example",
    )
    day = date(2013, 8, 13)
    Landing(settings.landing_root).write_batch("schedule", day, replay_parts("schedule", day))
    assert s3_store.keys("landing/schedules/service_date=2013-08-13/") == [
        f"landing/schedules/service_date=2013-08-13/{name}"
        for name in ("_SUCCESS", "flights.csv", "weather.csv")
    ]

    result = ingest("schedule", day, settings=settings)

    assert result.status == "loaded"
    with engine_for(settings).connect() as conn:
        row = conn.execute(
            text(
                "SELECT uri, data_docs_url, validation FROM ops.batches "
                "WHERE kind = 'schedule' AND service_date = :d"
            ),
            {"d": day},
        ).one()
    assert row.uri == s3_store.url("landing/schedules/service_date=2013-08-13")
    prefix = "https://airflow.example/nightscore/files/data_docs/"
    assert row.data_docs_url.startswith(prefix) and row.data_docs_url.endswith("/summary.html")
    location = links.resolve(settings, "data_docs", row.data_docs_url.removeprefix(prefix))
    assert location == row.validation["data_docs_location"]
    assert location.startswith(s3_store.url("data_docs/schedule/service_date=2013-08-13/"))
    page = store.read_text(location)
    assert "This batch passed" in page
    # nightscore's page only: Great Expectations' site is not built (it does not escape).
    assert [k for k in s3_store.keys("data_docs/") if not k.endswith("/summary.html")] == []


def test_the_evidently_workspace_lives_on_s3(s3_store):
    import numpy as np
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset
    from evidently.ui.workspace import Workspace

    from nightscore.config import Settings
    from nightscore.monitoring.monitor_drift import EVIDENTLY_PROJECT, add_to_workspace

    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"x": rng.normal(size=300), "score": rng.random(300)})
    current = pd.DataFrame({"x": rng.normal(0.5, size=300), "score": rng.random(300)})
    settings = Settings(store_url=s3_store.url("ws"))
    day = date(2013, 2, 8)
    snapshot = Report([DataDriftPreset()]).run(
        current, reference, metadata={"service_date": day.isoformat()}
    )

    add_to_workspace(settings, snapshot, day)
    add_to_workspace(settings, snapshot, day)  # a re-run replaces the day's snapshot

    assert settings.evidently_workspace == s3_store.url("ws/evidently")
    workspace = Workspace(settings.evidently_workspace)
    project = workspace.search_project(EVIDENTLY_PROJECT)[0]
    assert len(workspace.list_runs(project.id)) == 1
    assert any(k.endswith(".json") and "/snapshots/" in k for k in s3_store.keys("ws/evidently/"))
