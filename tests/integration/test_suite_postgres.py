"""The suite's own Postgres (conftest.admin_url): with no server asked for or answering,
the session starts an embedded one, trusting as CI's service container, and stops it at
the end. Each case runs in a Python process of its own: a session picks its server once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Slow: an embedded Postgres started and stopped by a process of its own.
pytestmark = [pytest.mark.integration, pytest.mark.slow]

TESTS = Path(__file__).resolve().parents[1]

# What a session does with its server: picks it, connects to it as the superuser and as
# the warehouse's role (no password: a trusting server), then ends (pytest_unconfigure).
SESSION = """
import json, sys
import psycopg2
from sqlalchemy import make_url
sys.path.insert(0, sys.argv[1])
import conftest  # tests/conftest.py itself, in a fresh process

url = conftest.admin_url()
admin = make_url(url)
seen = {"url": url, "port": admin.port, "root": str(conftest._embedded_root)}
if conftest._embedded_root is not None:
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute("CREATE ROLE nightscore_etl LOGIN")
    etl = f"postgresql://nightscore_etl@{admin.host}:{admin.port}/postgres"
    psycopg2.connect(etl, connect_timeout=5).close()
    conftest.pytest_unconfigure(None)
    try:
        psycopg2.connect(url, connect_timeout=5).close()
        seen["answers_after"] = True
    except psycopg2.OperationalError:
        seen["answers_after"] = False
print(json.dumps(seen))
"""


def session(**env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NIGHTSCORE_TEST_POSTGRES", "NIGHTSCORE_TEST_ADMIN_URL")
    }
    return subprocess.run(
        [sys.executable, "-c", SESSION, str(TESTS)],
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_an_embedded_server_is_started_trusting_and_gone_at_the_end():
    done = session(NIGHTSCORE_TEST_POSTGRES="embedded")
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["port"] not in (None, 5432)
    assert seen["answers_after"] is False
    assert not Path(seen["root"]).exists()


def test_an_explicit_url_is_used_as_given_and_nothing_is_started():
    # Control: the same session with the URL set starts no server (a closed port: the
    # session does not connect here, and does not fall back either).
    url = "postgresql://postgres@127.0.0.1:9/postgres"
    done = session(NIGHTSCORE_TEST_ADMIN_URL=url)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert (seen["url"], seen["root"]) == (url, "None")


def test_an_unknown_choice_is_refused_by_name():
    done = session(NIGHTSCORE_TEST_POSTGRES="docker")
    assert done.returncode != 0
    assert "NIGHTSCORE_TEST_POSTGRES='docker': expected one of auto, embedded" in done.stderr
