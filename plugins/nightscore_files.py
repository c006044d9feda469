"""Reports and Data Docs in a browser, behind Airflow's login; nav links to MLflow and more.

The Airflow API server mounts this plugin's FastAPI app at ``/nightscore``:

==========================================  ================================================
``GET /nightscore/files/{area}/{key}``      a file of the store: ``area`` is ``reports``
                                            (``settings.reports_dir``) or ``data_docs``
                                            (``settings.data_docs_root``), ``key`` its path
                                            below that root. 404 if there is no such file
                                            or area, 400 if the key leaves the area.
``GET /nightscore/reports``                 an index of the weekly reports, drift reports
                                            and Data Docs summaries, newest first.
``GET /nightscore/mail``                    the mail inbox of ``settings.mail_dir`` (the
                                            local stack's SMTP sink): subject, recipients
                                            and time of each message, newest first.
``GET /nightscore/mail/{name}``             one message of it, ``.html`` (its HTML body) or
                                            ``.eml`` (as received, shown as text). 404 when
                                            ``mail_dir`` is not set or there is no such
                                            message.
==========================================  ================================================

Every link nightscore stores or mails points here (``nightscore.links.file_url``).

Every response carries a Content-Security-Policy (``served_files.security_headers``): no
script at all, except in Evidently's drift reports, which run theirs sandboxed in an
opaque origin with no network; and ``X-Content-Type-Options: nosniff``.

Login: a request must carry an Airflow JWT, as ``Authorization: Bearer <token>`` or as the
UI's ``_token`` cookie, checked by Airflow's own ``get_user`` (``core_api.security``), and
its user must be allowed to read DAGs (the auth manager's ``is_authorized_dag``). Without
one, a browser (``Accept: text/html``) is redirected to the auth manager's login page, which
sends it back to the file afterwards; any other client gets 401. A user without the right
to read DAGs gets 403.

The plugin also adds to the UI's navigation bar "Reports" (the index, shown inside the UI),
and to its *Browse* menu "MLflow" (``mlflow_link_base``) and "Evidently"
(``public_evidently_url``, only when set). "Mail" (``links.mail_url``) is a top-level item
showing ``/nightscore/mail`` inside the UI when ``mail_dir`` is set, else a *Browse* item
to ``public_mail_url`` (Mailpit in docker compose); no item when neither is set.

Plugins load in every Airflow process, so Airflow's API modules are imported only when a
request comes.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPBearer

from nightscore import links, mail_inbox, served_files
from nightscore.config import load_settings

SETTINGS = load_settings()
_bearer = HTTPBearer(auto_error=False)


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


async def _reader(request: Request) -> Any:
    """The logged-in Airflow user, who may read DAGs; else a redirect to login, 401 or 403."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.core_api.security import get_user

    auth_manager = get_auth_manager()
    try:
        user = await get_user(request, None, await _bearer(request))
    except HTTPException as exc:
        if not _wants_html(request):
            raise
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        login = auth_manager.get_url_login(next_url=back)
        raise HTTPException(status_code=307, headers={"Location": login}) from exc
    if not auth_manager.is_authorized_dag(method="GET", user=user):
        raise HTTPException(status_code=403, detail="Reading reports needs access to the DAGs")
    return user


Reader = Annotated[Any, Depends(_reader)]
app = FastAPI(
    title="nightscore files",
    description="Reports and Data Docs from the store, behind Airflow's login.",
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
)


@app.get("/files/{area}/{key:path}")
def get_file(area: str, key: str, _: Reader) -> Response:
    """A file of a served area, with the content type its name implies."""
    if area not in links.SERVED_AREAS:
        raise HTTPException(status_code=404, detail=f"No such area: {area}")
    try:
        # The path arrives decoded; resolve() decodes once more, so hand it back encoded.
        location = links.resolve(SETTINGS, area, quote(key))
    except links.NotServed as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc
    try:
        data = served_files.read_bytes(location)
    except FileNotFoundError as exc:
        raise HTTPException(status_code=404, detail=f"No such file: {area}/{key}") from exc
    return Response(
        content=data,
        media_type=served_files.content_type(key),
        headers=served_files.security_headers(area, key),
    )


@app.get("/reports", response_class=HTMLResponse)
def reports_index(_: Reader) -> HTMLResponse:
    """The index page: weekly reports, drift reports and Data Docs summaries, newest first."""
    page = served_files.index_page(served_files.list_sections(SETTINGS))
    return HTMLResponse(page, headers=served_files.security_headers("", "reports"))


@app.get("/mail", response_class=HTMLResponse)
def mail_index(_: Reader) -> HTMLResponse:
    """The mail inbox: every message of `mail_dir`, newest first."""
    if not SETTINGS.mail_dir:
        raise HTTPException(status_code=404, detail="No mail folder is set (NIGHTSCORE_MAIL_DIR)")
    page = mail_inbox.inbox_page(*mail_inbox.list_messages(SETTINGS.mail_dir))
    return HTMLResponse(page, headers=served_files.security_headers("", "mail"))


@app.get("/mail/{name}")
def mail_file(name: str, _: Reader) -> Response:
    """One message: its HTML body, or the message as received, as plain text."""
    if not SETTINGS.mail_dir:
        raise HTTPException(status_code=404, detail="No mail folder is set (NIGHTSCORE_MAIL_DIR)")
    try:
        data = mail_inbox.resolve(SETTINGS.mail_dir, name).read_bytes()
    except mail_inbox.NotServed as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    except (FileNotFoundError, IsADirectoryError) as exc:
        raise HTTPException(status_code=404, detail=f"No such message: {name}") from exc
    # An .eml is shown as its source: a browser would download message/rfc822.
    media_type = (
        "text/html; charset=utf-8" if name.endswith(".html") else "text/plain; charset=utf-8"
    )
    return Response(
        content=data, media_type=media_type, headers=served_files.security_headers("", name)
    )


# The nav icons: 24 px line drawings, as data: URIs (no route, no login needed to show them).
_ICON_PATHS = {
    "MLflow": "M9 3h6M10 3v6l-5 9a2 2 0 0 0 2 3h10a2 2 0 0 0 2-3l-5-9V3M7 15h10",  # a flask
    "Evidently": "M3 12h4l3-8 4 16 3-8h4",  # a pulse
    "Mail": "M3 5h18v14H3zM3 6l9 7 9-7",  # an envelope
    "Reports": "M14 3H6a1 1 0 0 0-1 1v16a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1V8zM14 3v5h5M9 13h6M9 17h6",
}


def _icon(name: str, colour: str) -> str:
    svg = (
        "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 24' fill='none' "
        f"stroke='{colour}' stroke-width='2' stroke-linecap='round' stroke-linejoin='round'>"
        f"<path d='{_ICON_PATHS[name]}'/></svg>"
    )
    return "data:image/svg+xml," + quote(svg)


def nav_links(settings: Any) -> list[dict[str, Any]]:
    """The UI's navigation links.

    "Reports" is a top-level item that shows the reports index inside the UI (an iframe at
    ``/plugin/reports``), and so is "Mail" when this server shows ``mail_dir``. MLflow,
    Evidently and a mail inbox of its own (Mailpit) are other servers: they go in the
    *Browse* menu, whose items open in a new tab. (Airflow 3.3's UI renders a top-level item
    without ``url_route`` as a button that does not navigate.)
    """
    views = [{"name": "MLflow", "href": settings.mlflow_link_base, "category": "browse"}]
    if settings.public_evidently_url:
        views.append(
            {"name": "Evidently", "href": settings.public_evidently_url, "category": "browse"}
        )
    mail = links.mail_url(settings)
    if mail and not settings.public_mail_url:  # this server's page of mail_dir
        views.append({"name": "Mail", "href": mail, "url_route": "mail", "nav_top_level": True})
    elif mail:
        views.append({"name": "Mail", "href": mail, "category": "browse"})
    reports = f"{settings.airflow_link_base}{links.PLUGIN_PREFIX}/reports"
    views.append(
        {"name": "Reports", "href": reports, "url_route": "reports", "nav_top_level": True}
    )
    return [
        {
            **view,
            "icon": _icon(view["name"], "#334155"),
            "icon_dark_mode": _icon(view["name"], "#e2e8f0"),
            "destination": "nav",
        }
        for view in views
    ]


class NightscoreFilesPlugin(AirflowPlugin):
    name = "nightscore_files"
    fastapi_apps = [{"app": app, "url_prefix": links.PLUGIN_PREFIX, "name": "nightscore files"}]  # noqa: RUF012
    external_views = nav_links(SETTINGS)
