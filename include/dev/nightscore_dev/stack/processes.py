"""The stack's processes: pid files, one way to start a process detached, one way to
stop them, one way to wait for a service to become healthy."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from nightscore_dev.stack.paths import MANAGED, StatePaths


def alive(pid: int) -> bool:
    """True when the process runs (a zombie does not)."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def read_pid(pid_file: Path) -> int | None:
    """The pid of a pid file when that very process still runs (not a reused pid)."""
    import psutil

    try:
        pid_text, started_text = pid_file.read_text().split()[:2]
        process = psutil.Process(int(pid_text))
        if abs(process.create_time() - float(started_text)) > 1:
            return None
        return process.pid if process.status() != psutil.STATUS_ZOMBIE else None
    except (OSError, ValueError, psutil.Error):
        return None


def write_pid(pid_file: Path, pid: int) -> None:
    import psutil

    pid_file.write_text(f"{pid}\n{psutil.Process(pid).create_time()}\n")


def component_pid(paths: StatePaths, name: str) -> int | None:
    return read_pid(paths.pid_file(name))


def running_components(paths: StatePaths, names: Iterable[str] = MANAGED) -> dict[str, int]:
    """The stack's processes that run (by default the Airflow components, the MLflow
    server, the mail sink)."""
    found = {name: component_pid(paths, name) for name in names}
    return {name: pid for name, pid in found.items() if pid is not None}


def start_detached(
    paths: StatePaths, name: str, command: list[str], env: Mapping[str, str] | None = None
) -> tuple[int, bool]:
    """Start a process of the stack, logging to its log file; (pid, started) — not
    started when it already runs. `env` is the whole environment (None: this one's)."""
    pid = component_pid(paths, name)
    if pid is not None:
        return pid, False
    with paths.log(name).open("a") as handle:
        handle.write(f"\n--- starting {name} at {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        handle.flush()
        # A new session: the process outlives this command and ignores its Ctrl-C, and
        # `stop` can signal the whole process group (executor workers, task processes).
        process = subprocess.Popen(
            command,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=paths.root,
            start_new_session=True,
        )
    write_pid(paths.pid_file(name), process.pid)
    return process.pid, True


def wait_until(
    url_or_check: str | Callable[[], bool],
    *,
    timeout_s: float,
    log: Path,
    alive: Callable[[], bool],
    what: str,
) -> float:
    """Wait until a service is healthy; return the seconds waited.

    `url_or_check`: a URL that must answer 200, or a function that says whether it is up.
    `alive` says whether the service's process still runs: when it exits, fail at once,
    with the tail of its `log`.
    """
    import httpx

    def healthy() -> bool:
        if callable(url_or_check):
            return url_or_check()
        try:
            return httpx.get(url_or_check, timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    where = url_or_check if isinstance(url_or_check, str) else "its health check"
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if healthy():
            return time.monotonic() - started
        if not alive():
            raise RuntimeError(f"{what} exited; see {log}:\n{tail(log)}")
        time.sleep(1)
    raise RuntimeError(
        f"{what} did not answer {where} within {timeout_s:.0f} s; see {log}:\n{tail(log)}"
    )


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)  # started with a new session: its group id is its pid
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def stop_processes(pids: Mapping[str, int], timeout_s: float = 30) -> None:
    """SIGTERM each process group, wait, then SIGKILL what is left, including processes
    that moved to a group of their own within the session (Airflow's task supervisors
    under a Celery worker)."""
    for pid in pids.values():
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    waiting = dict(pids)
    while waiting and time.monotonic() < deadline:
        waiting = {name: pid for name, pid in waiting.items() if alive(pid)}
        time.sleep(0.5)
    for name, pid in pids.items():
        if name in waiting:
            print(f"  {name} did not stop within {timeout_s:.0f} s; killing it", flush=True)
        # Also reaps leftovers of a group whose leader already exited (task processes).
        _signal_group(pid, signal.SIGKILL)
        for member in session_members(pid):
            with contextlib.suppress(OSError):
                os.kill(member, signal.SIGKILL)
        _reap(pid)


def session_members(sid: int) -> list[int]:
    """The processes of the session `sid` (a component started with a new session)."""
    import psutil

    found = []
    for pid in psutil.pids():
        try:
            if pid != sid and os.getsid(pid) == sid:
                found.append(pid)
        except OSError:  # gone, or not ours to look at
            continue
    return found


def _reap(pid: int) -> None:
    """Collect the exit status of a process this one started, so no zombie stays behind."""
    for _ in range(50):
        try:
            if os.waitpid(pid, os.WNOHANG)[0] != 0:
                return
        except ChildProcessError:  # not our child: its parent (or init) reaps it
            return
        time.sleep(0.1)


def run_logged(args: list[str], env: Mapping[str, str], log: Path, what: str) -> None:
    """Run a command to completion, its output in a log; fail with the log's tail."""
    with log.open("w") as handle:
        result = subprocess.run(
            args, env=dict(env), stdout=handle, stderr=subprocess.STDOUT, check=False
        )
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {result.returncode}); see {log}:\n{tail(log)}")


def tail(path: Path, lines: int = 15) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
