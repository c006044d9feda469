"""The MLflow server of the stack (and of `tests/conftest.py`) asks for a login: MLflow's
basic-auth app. Anonymous requests to its API and UI get 401; the stack's generated login
opens both, in an HTTP client and in a browser."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import httpx
import pytest

# Slow: the session's MLflow server (started by its first test), and Chromium.
pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
SEARCH = "/api/2.0/mlflow/experiments/search?max_results=1"


@pytest.fixture
def login(mlflow_server) -> tuple[str, str]:
    """The login the session's server was started with (the fixture exports it)."""
    return os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]


@pytest.mark.parametrize("path", [SEARCH, "/", "/ajax-api/2.0/mlflow/experiments/search"])
def test_anonymous_requests_get_401(mlflow_server, path):
    response = httpx.get(mlflow_server + path, timeout=30)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_a_wrong_password_gets_401(mlflow_server, login):
    response = httpx.get(mlflow_server + SEARCH, auth=(login[0], "not-the-password"), timeout=30)
    assert response.status_code == 401


def test_the_generated_login_opens_the_api_and_the_ui(mlflow_server, login):
    # The control for the 401s above: the same requests, logged in.
    assert httpx.get(mlflow_server + SEARCH, auth=login, timeout=30).status_code == 200
    ui = httpx.get(mlflow_server + "/", auth=login, timeout=30)
    assert ui.status_code == 200 and "<title>MLflow</title>" in ui.text
    # The health check stays open: the stack and compose wait on it.
    assert httpx.get(mlflow_server + "/health", timeout=30).status_code == 200


def test_nightscore_logs_in_with_the_settings(mlflow_server, login, monkeypatch):
    from nightscore import registry
    from nightscore.config import Settings

    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    settings = Settings(
        mlflow_tracking_uri=mlflow_server,
        mlflow_tracking_username=login[0],
        mlflow_tracking_password=login[1],
    )
    assert registry.client(settings).search_experiments(max_results=1) is not None


def test_a_client_without_login_is_refused(mlflow_server, monkeypatch):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    with pytest.raises(MlflowException, match=r"401|[Uu]nauthori|authenticat"):
        MlflowClient(tracking_uri=mlflow_server).search_experiments(max_results=1)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")
def test_a_browser_opens_the_ui_after_the_basic_auth_prompt(mlflow_server, login):
    """What an engineer sees following the Airflow UI's MLflow link: the browser's login
    prompt (basic auth), then MLflow's UI; cancelling the prompt leaves a 401."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    from mlflow import MlflowClient

    name = f"browser-check-{uuid.uuid4().hex[:8]}"
    experiment_id = MlflowClient(tracking_uri=mlflow_server).create_experiment(name)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            # Headless Chromium cancels the prompt: the navigation fails on the 401.
            anonymous = browser.new_context().new_page()
            with pytest.raises(sync_api.Error, match="ERR_INVALID_AUTH_CREDENTIALS"):
                anonymous.goto(mlflow_server + "/")
            context = browser.new_context(
                http_credentials={"username": login[0], "password": login[1]}
            )
            page = context.new_page()
            # The run page an extra link opens: the UI's own API calls carry the login too.
            assert page.goto(f"{mlflow_server}/#/experiments/{experiment_id}").status == 200
            page.wait_for_selector(f"text={name}", timeout=60_000)
        finally:
            browser.close()
