"""Every link nightscore stores or mails, built from the public-address settings.

A browser on any host opens these, so none is a `file://` path or an internal host name:

- files in the store (Data Docs, drift and weekly reports) are served by the Airflow API
  server, behind its login, at `{public_airflow_url}/nightscore/files/{area}/{key}`
  (`plugins/nightscore_files.py` reads them from the store);
- the Airflow UI's pages: `{public_airflow_url}/dags/...`;
- the MLflow UI: `{public_mlflow_url}/#/...`;
- the mail inbox: `{public_mail_url}`, else, with a local `mail_dir`, the API server's
  page of it, `{public_airflow_url}/nightscore/mail`.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from nightscore.config import Settings

# Where the files plugin is mounted below the Airflow API server, and what it serves.
PLUGIN_PREFIX = "/nightscore"
FILES_PREFIX = f"{PLUGIN_PREFIX}/files"
MAIL_PREFIX = f"{PLUGIN_PREFIX}/mail"
# area -> the setting holding its root in the store
SERVED_AREAS = {"data_docs": "data_docs_root", "reports": "reports_dir"}


class NotServed(ValueError):
    """A location outside every served area, or a key that tries to leave one."""


def area_root(settings: Settings, area: str) -> str:
    if area not in SERVED_AREAS:
        raise NotServed(f"no such area {area!r}; served: {', '.join(SERVED_AREAS)}")
    return str(getattr(settings, SERVED_AREAS[area])).rstrip("/")


def _normalised(location: str) -> str:
    return location[len("file://") :] if location.startswith("file://") else location


def file_url(settings: Settings, location: str) -> str:
    """The public http(s) link of a file written below a served area's root."""
    location = _normalised(location)
    for area in SERVED_AREAS:
        root = _normalised(area_root(settings, area))
        if location.startswith(root + "/"):
            key = location[len(root) + 1 :]
            return f"{settings.airflow_link_base}{FILES_PREFIX}/{area}/{quote(key)}"
    raise NotServed(f"{location} is not below a served area ({', '.join(SERVED_AREAS)})")


def resolve(settings: Settings, area: str, key: str) -> str:
    """The store location a served link points at; refuses keys that leave the area."""
    key = unquote(key)
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise NotServed(f"not a key below {area}: {key!r}")
    return f"{area_root(settings, area)}/{key}"


def dag_url(settings: Settings, dag_id: str) -> str:
    return f"{settings.airflow_link_base}/dags/{quote(dag_id)}"


def dag_run_url(settings: Settings, dag_id: str, run_id: str) -> str:
    return f"{dag_url(settings, dag_id)}/runs/{quote(run_id, safe='')}"


def task_url(
    settings: Settings,
    dag_id: str,
    run_id: str,
    task_id: str,
    *,
    try_number: int | None = None,
    map_index: int | None = None,
) -> str:
    """A task instance's page (its log) in the Airflow UI."""
    url = f"{dag_run_url(settings, dag_id, run_id)}/tasks/{quote(task_id)}"
    if map_index is not None and map_index >= 0:
        url += f"/mapped/{map_index}"
    return url + (f"?try_number={try_number}" if try_number else "")


def mlflow_run_url(settings: Settings, experiment_id: str, run_id: str) -> str:
    return f"{settings.mlflow_link_base}/#/experiments/{experiment_id}/runs/{run_id}"


def mlflow_model_url(settings: Settings, name: str, version: str | int) -> str:
    return f"{settings.mlflow_link_base}/#/models/{quote(name)}/versions/{version}"


def owner_url(settings: Settings) -> str:
    """Where the DAG owner's name links to in the Airflow UI: `owner_link`, else a mail to
    the engineers who get the alerts, else the list of nightscore's DAGs (their docs are
    the runbook)."""
    if settings.owner_link:
        return settings.owner_link
    if settings.alert_email_to:
        return "mailto:" + ",".join(settings.alert_email_to)
    return f"{settings.airflow_link_base}/dags?tags=nightscore"


def mail_url(settings: Settings) -> str:
    """The mail inbox: the public one, else the API server's page of `mail_dir`; "" when
    there is neither."""
    if settings.public_mail_url:
        return settings.public_mail_url
    return f"{settings.airflow_link_base}{MAIL_PREFIX}" if settings.mail_dir else ""
