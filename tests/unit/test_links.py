"""Every stored or mailed link is an http(s) address built from the public settings."""

from __future__ import annotations

import pytest

from nightscore import links
from nightscore.config import Settings

SETTINGS = Settings(
    store_url="s3://bucket/ns",
    public_airflow_url="https://airflow.example",
    public_mlflow_url="https://mlflow.example",
)


def test_a_stored_file_is_served_below_the_airflow_address():
    url = links.file_url(
        SETTINGS, "s3://bucket/ns/data_docs/schedule/service_date=2013-02-11/ab/summary.html"
    )
    assert url == (
        "https://airflow.example/nightscore/files/data_docs/"
        "schedule/service_date%3D2013-02-11/ab/summary.html"
    )
    assert links.resolve(SETTINGS, "data_docs", url.split("/data_docs/", 1)[1]) == (
        "s3://bucket/ns/data_docs/schedule/service_date=2013-02-11/ab/summary.html"
    )


def test_a_local_store_gives_the_same_kind_of_link(tmp_path):
    settings = Settings(store_url=str(tmp_path))
    url = links.file_url(settings, (tmp_path / "reports/drift/d.html").as_uri())
    assert url == "http://localhost:8080/nightscore/files/reports/drift/d.html"


@pytest.mark.parametrize("location", ["s3://bucket/ns/landing/x.csv", "s3://elsewhere/r.html"])
def test_files_outside_the_served_areas_get_no_link(location):
    with pytest.raises(links.NotServed):
        links.file_url(SETTINGS, location)


@pytest.mark.parametrize("key", ["../landing/x.csv", "a/../../b", "/etc/passwd", "", "a//b"])
def test_a_key_cannot_leave_its_area(key):
    with pytest.raises(links.NotServed):
        links.resolve(SETTINGS, "reports", key)


def test_airflow_and_mlflow_pages():
    run = "scheduled__2013-02-11T22:00:00+00:00"
    assert links.dag_run_url(SETTINGS, "nightly_scoring", run) == (
        "https://airflow.example/dags/nightly_scoring/runs/scheduled__2013-02-11T22%3A00%3A00%2B00%3A00"
    )
    assert links.task_url(SETTINGS, "d", "r", "t", try_number=2, map_index=3) == (
        "https://airflow.example/dags/d/runs/r/tasks/t/mapped/3?try_number=2"
    )
    assert links.mlflow_model_url(SETTINGS, "flight_disruption", 3) == (
        "https://mlflow.example/#/models/flight_disruption/versions/3"
    )


def test_the_mail_inbox_is_the_public_one_else_the_served_folder():
    assert links.mail_url(SETTINGS) == ""  # neither: no link
    served = SETTINGS.replace(mail_dir="/srv/mail")
    assert links.mail_url(served) == "https://airflow.example/nightscore/mail"
    mailpit = served.replace(public_mail_url="https://mail.example/")
    assert links.mail_url(mailpit) == "https://mail.example"


def test_the_owner_links_to_the_runbook_else_the_engineers_else_the_dag_list():
    assert links.owner_url(SETTINGS) == "https://airflow.example/dags?tags=nightscore"
    mail = SETTINGS.replace(alert_email_to="oncall@x.example, lead@x.example")
    assert links.owner_url(mail) == "mailto:oncall@x.example,lead@x.example"
    runbook = mail.replace(owner_link="https://wiki.example/nightscore/runbook")
    assert links.owner_url(runbook) == "https://wiki.example/nightscore/runbook"


@pytest.mark.parametrize("value", ["javascript:alert(1)", "wiki/runbook", "ftp://x.example"])
def test_an_owner_link_a_browser_cannot_follow_is_refused(value):
    with pytest.raises(ValueError, match="mailto"):
        Settings(owner_link=value)
