"""The stack the faults are injected into, and the switches that break and mend it.

It is the local stack (`nightscore_dev.stack`), started from the same pieces, with two
differences that the faults need:
- the warehouse lives on a Postgres server of its own (an embedded one, under the state
  folder), so restarting it leaves Airflow's metadata and MLflow's backend store alone
  (those stay on the server `ensure_postgres` finds, in databases named for this run);
- the reports go to a small tmpfs (`REPORTS_TMPFS_BYTES`), which can be made read-only.
Mounting needs root.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from nightscore import config
from nightscore_dev.stack.airflow import (
    admin_password,
    airflow_command,
    airflow_db_migrate,
    airflow_env,
    process_env,
    start_components,
    wait_for_api,
    write_env_file,
    write_passwords_file,
)
from nightscore_dev.stack.mlflow import (
    MLFLOW_START_TIMEOUT_S,
    mlflow_base_url,
    mlflow_health_url,
    start_mlflow_server,
)
from nightscore_dev.stack.paths import MAIL_SINK, MANAGED, MLFLOW, StatePaths
from nightscore_dev.stack.ports import Ports, choose_ports, free_port, tcp_answers
from nightscore_dev.stack.postgres import (
    drop_database,
    ensure_postgres,
    start_embedded_postgres,
    stop_embedded_postgres,
    warehouse_url_for,
)
from nightscore_dev.stack.processes import (
    component_pid,
    running_components,
    session_members,
    start_detached,
    stop_processes,
    wait_until,
)
from nightscore_dev.stack.roles import ETL_ROLE, drop_own_role, own_database, role_password
from nightscore_dev.stack.stack import start_mail_sink, upgrade_warehouse

# Room for a few drift reports (~1 MB each with Evidently's scripts inlined); full is a
# fault of its own, read-only is the one injected.
REPORTS_TMPFS_BYTES = 64 * 1024 * 1024
# A task whose process died (the scheduler host's crash) is failed, and retried, after
# this long without a heartbeat (Airflow's default: 300 s); orphans of a dead scheduler
# are looked for this often (default: 300 s).
HEARTBEAT_TIMEOUT_S = 30
ORPHAN_CHECK_S = 20
# Short retries, waited out for real (production: 3 retries from 120 s, doubling up to
# 1800 s). Five from 5 s, doubling up to 30 s: 5 + 10 + 20 + 30 + 30 = 95 s of pauses,
# plus a task start each (5-15 s on 2 busy cores), outlast an MLflow restart: 86 s
# measured with the 2 cores at a load of 10 (four retries made it by 2 s).
RETRIES = 5
RETRY_DELAY_S = 5
MAX_RETRY_DELAY_S = 30
# The alert_outbox DAG's sweep, every minute (production: 10): mail the sink missed
# goes out within a minute of its return.
DRAIN_EVERY_MIN = 1


@dataclass
class FaultStack:
    """A running stack: its paths, the two Postgres servers, its ports and environment."""

    paths: StatePaths
    server: StatePaths  # the warehouse's own Postgres
    admin_url: str  # superuser on the warehouse's server
    meta_url: str  # superuser on the server of Airflow's and MLflow's databases
    airflow_db: str
    mlflow_db: str
    warehouse_url: str
    reports: Path
    ports: Ports
    env: dict[str, str]

    @property
    def api_url(self) -> str:
        return self.env["AIRFLOW__API__BASE_URL"]

    @property
    def airflow_db_url(self) -> str:
        """The superuser's URL on Airflow's metadata (this process reads it; no task does)."""
        from sqlalchemy.engine import make_url

        url = make_url(config.libpq_url(self.meta_url)).set(database=self.airflow_db)
        return url.render_as_string(hide_password=False)

    @property
    def password(self) -> str:
        return admin_password(self.paths)

    # --- the warehouse's Postgres ---------------------------------------------------

    def stop_warehouse(self) -> None:
        """`pg_ctl stop -m fast`: every session is cut, new ones are refused."""
        stop_embedded_postgres(self.server)

    def start_warehouse(self) -> None:
        start_embedded_postgres(self.server)

    # --- the MLflow server ----------------------------------------------------------

    def kill_mlflow(self) -> int:
        """SIGKILL the MLflow server and its uvicorn worker; the processes killed."""
        return kill_component(self.paths, MLFLOW)

    def start_mlflow(self, wait: bool = True) -> None:
        start_mlflow_server(self.paths, self.meta_url, self.ports.mlflow, self.mlflow_db)
        if wait:
            wait_until(
                mlflow_health_url(mlflow_base_url(self.ports.mlflow)),
                timeout_s=MLFLOW_START_TIMEOUT_S,
                log=self.paths.log(MLFLOW),
                alive=lambda: component_pid(self.paths, MLFLOW) is not None,
                what="the MLflow server",
            )

    def mlflow_answers(self) -> bool:
        import httpx

        try:
            url = mlflow_health_url(mlflow_base_url(self.ports.mlflow))
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    # --- the mail sink --------------------------------------------------------------

    def stop_sink(self) -> None:
        pids = running_components(self.paths, (MAIL_SINK,))
        if pids:
            stop_processes(pids, timeout_s=10)
        self.paths.pid_file(MAIL_SINK).unlink(missing_ok=True)
        _wait(lambda: not tcp_answers("127.0.0.1", self.ports.smtp), 10, "the mail sink to stop")

    def start_sink(self) -> None:
        start_mail_sink(self.paths, self.ports.smtp)
        _wait(lambda: tcp_answers("127.0.0.1", self.ports.smtp), 30, "the mail sink to answer")

    # --- the scheduler --------------------------------------------------------------

    def kill_scheduler(self) -> int:
        """SIGKILL the scheduler with its executor's workers and their task processes,
        as a crash of its host would; the processes killed."""
        return kill_component(self.paths, "scheduler")

    def start_scheduler(self) -> None:
        start_detached(self.paths, "scheduler", airflow_command("scheduler"), process_env(self.env))

    # --- the reports store ----------------------------------------------------------

    def reports_read_only(self, read_only: bool) -> None:
        """Remount the reports' tmpfs read-only (root ignores file modes, not this) or
        read-write again."""
        mode = "ro" if read_only else "rw"
        # A remount to ro fails (EBUSY) while a file is open for writing: try again.
        for attempt in range(50):
            result = _mount("-o", f"remount,{mode}", str(self.reports), check=False)
            if result.returncode == 0:
                return
            time.sleep(0.1 if attempt < 49 else 0)
        raise RuntimeError(f"could not remount {self.reports} {mode}: {result.stderr.strip()}")

    def down(self) -> None:
        """Stop every process, both Postgres servers' roles in it, the tmpfs; safe to repeat."""
        pids = running_components(self.paths, MANAGED)
        if pids:
            stop_processes(pids, timeout_s=20)
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            stop_embedded_postgres(self.server)
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            stop_embedded_postgres(self.paths)  # only when no server was at hand
        if _mounted(self.reports):
            _mount_cmd(["umount", "-l", str(self.reports)])
        for database in (self.airflow_db, self.mlflow_db):
            with contextlib.suppress(Exception):
                drop_database(self.meta_url, database)
                drop_own_role(self.meta_url, database)


def kill_component(paths: StatePaths, name: str) -> int:
    """SIGKILL a component's process group and whatever else runs in its session; reap
    it; forget its pid file. Returns how many processes were signalled."""
    pid = component_pid(paths, name)
    if pid is None:
        return 0
    import psutil

    members = session_members(pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    for member in members:
        with contextlib.suppress(OSError):
            os.kill(member, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)  # ours: reaped, or it stays a zombie
    # Gone for good, so their ports are free when the component starts again.
    processes = []
    for number in members:
        with contextlib.suppress(psutil.Error):
            processes.append(psutil.Process(number))
    psutil.wait_procs(processes, timeout=10)
    paths.pid_file(name).unlink(missing_ok=True)
    return 1 + len(members)


def _wait(check, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _mount_cmd(args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=check, timeout=30)


def _mount(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return _mount_cmd(["mount", *args], check=check)


def _mounted(path: Path) -> bool:
    target = str(path.resolve()) if path.exists() else str(path)
    with contextlib.suppress(OSError):
        return any(
            line.split()[1] == target for line in Path("/proc/mounts").read_text().splitlines()
        )
    return False


def can_run() -> str | None:
    """None when this process can mount a tmpfs and run Postgres as a helper account;
    else why not."""
    if os.geteuid() != 0:
        return "needs root (it mounts a tmpfs and remounts it read-only)"
    if not Path("/proc/mounts").exists():
        return "needs /proc/mounts"
    return None


def up(root: Path, *, log=print) -> FaultStack:
    """Bring the stack up under `root`; return once the API server and MLflow answer."""
    paths = StatePaths(root / "stack").ensure()
    server = StatePaths(root / "warehouse-server").ensure()
    reports = root / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    tag = f"faults_{os.getpid()}"
    stack = FaultStack(
        paths, server, "", "", f"{tag}_airflow", f"{tag}_mlflow", "", reports,
        Ports(0, 0, 0, 0), {},
    )  # fmt: skip
    try:
        _mount("-t", "tmpfs", "-o", f"size={REPORTS_TMPFS_BYTES},mode=0755", "tmpfs", str(reports))
        started = time.monotonic()
        stack.admin_url = start_embedded_postgres(server)
        stack.meta_url = ensure_postgres(paths)
        for database in (stack.airflow_db, stack.mlflow_db):
            drop_database(stack.meta_url, database)
        airflow_db_url = own_database(
            stack.meta_url, stack.airflow_db, role_password(paths, stack.airflow_db)
        )
        stack.ports = choose_ports(paths, free_port(), free_port())
        start_mlflow_server(paths, stack.meta_url, stack.ports.mlflow, stack.mlflow_db)
        stack.start_sink()
        stack.warehouse_url = warehouse_url_for(
            stack.admin_url, "warehouse", role_password(paths, ETL_ROLE)
        )
        upgrade_warehouse(paths, stack.warehouse_url, stack.admin_url)
        log(f"  warehouse on its own server, upgraded ({time.monotonic() - started:.0f} s)")
        env = airflow_env(
            paths, airflow_db_url=airflow_db_url, warehouse_url=stack.warehouse_url,
            ports=stack.ports,
        )  # fmt: skip
        env.update(
            {
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_S),
                "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": str(ORPHAN_CHECK_S),
                "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": str(ORPHAN_CHECK_S),
                "NIGHTSCORE_RETRIES": str(RETRIES),
                "NIGHTSCORE_RETRY_DELAY_S": str(RETRY_DELAY_S),
                "NIGHTSCORE_MAX_RETRY_DELAY_S": str(MAX_RETRY_DELAY_S),
                "NIGHTSCORE_ALERT_DRAIN_EVERY_MIN": str(DRAIN_EVERY_MIN),
                # The first champion is a means here, not the subject: two trials.
                "NIGHTSCORE_TUNING_TRIALS": "2",
                "NIGHTSCORE_TUNING_TIMEOUT_S": "20",
                "NIGHTSCORE_STORE_URL": str(paths.root / "store"),
                "NIGHTSCORE_REPORTS_DIR": str(reports),
            }
        )
        stack.env = env
        write_passwords_file(paths)
        write_env_file(paths, env)
        started = time.monotonic()
        airflow_db_migrate(paths, env)
        start_components(paths, env)
        wait_for_api(paths, stack.ports.api)
        stack.start_mlflow()  # started above; waited for here
        log(f"  airflow at {stack.api_url}, mlflow answers ({time.monotonic() - started:.0f} s)")
        return stack
    except BaseException:
        stack.down()
        raise


def settings_of(stack: FaultStack) -> config.Settings:
    """The settings the stack's tasks run with, for work done in this process."""
    return config.Settings.model_validate(
        {
            "warehouse_url": stack.warehouse_url,
            "store_url": stack.env["NIGHTSCORE_STORE_URL"],
            "reports_dir": stack.env["NIGHTSCORE_REPORTS_DIR"],
        }
    )
