"""The repository's static config is valid: compose file, GitLab CI, Dockerfile, pins.

The linters come from the venv (requirements.txt) and use the schemas vendored in
check-jsonschema, so these tests need neither Docker nor the network.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, (
        f"{' '.join(result.args)} exited {result.returncode}\n{result.stdout}{result.stderr}"
    )


@pytest.mark.parametrize(
    ("path", "schema"),
    [("docker-compose.yaml", "vendor.compose-spec"), (".gitlab-ci.yml", "vendor.gitlab-ci")],
)
def test_matches_its_schema(path: str, schema: str) -> None:
    assert_ok(run(BIN / "check-jsonschema", "--builtin-schema", schema, path))


def test_dockerfile_is_clean_under_hadolint() -> None:
    assert_ok(run(BIN / "hadolint", "Dockerfile"))


def test_docker_compose_config() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client on PATH")
    if run(docker, "compose", "version").returncode != 0:
        pytest.skip("this docker client has no compose plugin (`docker compose version` fails)")
    # `config` only parses and interpolates; it needs no Docker engine.
    assert_ok(run(docker, "compose", "--file", "docker-compose.yaml", "config", "--quiet"))


def test_requirements_txt_pins_every_package() -> None:
    pin = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]+\])?==[^\s=]+(\s*;.*)?$")
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    packages = [s for s in (line.strip() for line in lines) if s and not s.startswith("#")]
    assert packages, "requirements.txt lists no package"
    unpinned = [p for p in packages if not pin.match(p)]
    assert not unpinned, f"not pinned with ==: {unpinned}"
