"""Mail: the SMTP connection `smtp_default`, sending a message, and the alert email.

The connection is Airflow's `smtp_default`, read from `AIRFLOW_CONN_SMTP_DEFAULT` (URI or
JSON form) so that sending works in plain Python, in the CLI and in tests, without a
running Airflow. Its extras follow the Airflow SMTP provider: `disable_ssl`,
`disable_tls`, `from_email`, `timeout`, `ssl_context`.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import smtplib
import ssl
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, formatdate
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from nightscore.errors import DataError

CONN_ID = "smtp_default"
CONN_ENV = "AIRFLOW_CONN_SMTP_DEFAULT"
DEFAULT_FROM = "nightscore@localhost"
DEFAULT_TIMEOUT_S = 30.0
EXAMPLE_URI = "smtp://user:password@127.0.0.1:1025?disable_ssl=true&disable_tls=true"

# Keys of an alert's `details` shown as links, in this order, with these labels.
LINK_KEYS = {
    "report_url": "Report",
    "airflow_url": "Airflow run",
    "log_url": "Task log",
    "data_docs_url": "Data Docs",
}
_SEVERITY_COLOURS = {"critical": "#b00020", "warning": "#b26a00", "info": "#1f5fa8"}


class SmtpConfigError(DataError, ValueError):
    """The SMTP connection is missing or malformed; the message says what to fix."""


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send mail. `port=None` means 465 with SSL, 25 without."""

    host: str
    port: int | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl: bool = True
    starttls: bool = True
    from_email: str = DEFAULT_FROM
    timeout: float = DEFAULT_TIMEOUT_S
    verify_tls: bool = True

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port or (465 if self.ssl else 25)}"


def smtp_settings() -> SmtpSettings:
    """The connection `smtp_default`, without needing a running Airflow.

    `AIRFLOW_CONN_SMTP_DEFAULT` wins when it is set. Otherwise, inside an Airflow process
    (the SDK already imported), the connection is looked up through Airflow, so secrets
    backends work too. Importing Airflow just to find out costs seconds, so plain Python
    does not try.
    """
    value = os.environ.get(CONN_ENV, "").strip()
    if value:
        return parse_connection(value)
    if "airflow.sdk" in sys.modules:
        try:
            from airflow.sdk import BaseHook

            conn = BaseHook.get_connection(CONN_ID)
        except Exception as exc:
            raise SmtpConfigError(
                f"no SMTP connection {CONN_ID!r} ({exc}): set {CONN_ENV}, e.g. {EXAMPLE_URI}"
            ) from exc
        return _from_fields(
            host=conn.host,
            port=conn.port,
            login=conn.login,
            password=conn.password,
            extra=conn.extra_dejson,
            source=f"Airflow connection {CONN_ID!r}",
        )
    raise SmtpConfigError(f"{CONN_ENV} is not set: set it to an SMTP URI, e.g. {EXAMPLE_URI}")


def parse_connection(value: str, *, source: str = CONN_ENV) -> SmtpSettings:
    """An Airflow SMTP connection in URI form (`smtp://...`) or JSON form (`{"host": ...}`)."""
    value = value.strip()
    if value.startswith("{"):
        return _parse_json(value, source)
    return _parse_uri(value, source)


def _parse_uri(value: str, source: str) -> SmtpSettings:
    shown = _redact(value)
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise SmtpConfigError(f"{source} is not a valid SMTP URI ({exc}): {shown!r}") from None
    if parts.scheme not in ("smtp", "smtps"):
        raise SmtpConfigError(
            f"{source} must be an smtp:// URI or a JSON object, not {shown!r}; e.g. {EXAMPLE_URI}"
        )
    extra: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
    if "__extra__" in extra:
        try:
            extra = json.loads(extra["__extra__"])
        except json.JSONDecodeError as exc:
            raise SmtpConfigError(f"{source}: __extra__ is not JSON ({exc})") from None
    if parts.scheme == "smtps":
        extra.setdefault("disable_ssl", False)
    return _from_fields(
        host=unquote(parts.hostname or ""),
        port=port,
        login=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        extra=extra,
        source=source,
    )


def _parse_json(value: str, source: str) -> SmtpSettings:
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise SmtpConfigError(f"{source} looks like JSON but is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise SmtpConfigError(f"{source} must be a JSON object")
    conn_type = data.get("conn_type", "smtp")
    if conn_type not in ("smtp", "email"):
        raise SmtpConfigError(f"{source} has conn_type {conn_type!r}, expected 'smtp'")
    extra = data.get("extra") or {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except json.JSONDecodeError as exc:
            raise SmtpConfigError(f"{source}: extra is not JSON ({exc})") from None
    port = data.get("port")
    try:
        port = int(port) if port not in (None, "") else None
    except (TypeError, ValueError):
        raise SmtpConfigError(f"{source}: port must be a number, not {port!r}") from None
    return _from_fields(
        host=data.get("host"),
        port=port,
        login=data.get("login"),
        password=data.get("password"),
        extra=extra,
        source=source,
    )


def _from_fields(
    *,
    host: str | None,
    port: int | None,
    login: str | None,
    password: str | None,
    extra: Mapping[str, Any],
    source: str,
) -> SmtpSettings:
    if not host:
        raise SmtpConfigError(f"{source} has no host; e.g. {EXAMPLE_URI}")
    if port is not None and not 0 < port < 65536:
        raise SmtpConfigError(f"{source}: port {port} is out of range")
    if extra.get("auth_type", "basic") != "basic":
        raise SmtpConfigError(f"{source}: auth_type {extra['auth_type']!r} is not supported")
    ssl_context = extra.get("ssl_context") or "default"
    if ssl_context not in ("default", "none"):
        raise SmtpConfigError(f"{source}: ssl_context must be 'default' or 'none'")
    try:
        timeout = float(extra.get("timeout") or DEFAULT_TIMEOUT_S)
    except (TypeError, ValueError):
        raise SmtpConfigError(f"{source}: timeout must be a number of seconds") from None
    if timeout <= 0:
        raise SmtpConfigError(f"{source}: timeout must be positive")
    return SmtpSettings(
        host=host,
        port=port,
        login=login or None,
        password=password or None,
        ssl=not _flag(extra, "disable_ssl", source),
        starttls=not _flag(extra, "disable_tls", source),
        from_email=str(extra.get("from_email") or DEFAULT_FROM),
        timeout=timeout,
        verify_tls=ssl_context == "default",
    )


def _flag(extra: Mapping[str, Any], key: str, source: str) -> bool:
    """A boolean extra; URI query values arrive as strings ("true", "false", "1", ...)."""
    value = extra.get(key, False)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise SmtpConfigError(f"{source}: {key} must be true or false, not {value!r}")


def _redact(uri: str) -> str:
    """The URI with its password replaced, for error messages."""
    scheme, sep, rest = uri.partition("://")
    userinfo, at, hostpart = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return uri
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{hostpart}"


def connect(smtp: SmtpSettings) -> smtplib.SMTP:
    """An SMTP session, after SSL or STARTTLS and login as configured. Close it with quit()."""
    context = ssl.create_default_context()
    if not smtp.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    port = smtp.port or 0
    client: smtplib.SMTP
    if smtp.ssl:
        client = smtplib.SMTP_SSL(smtp.host, port, timeout=smtp.timeout, context=context)
    else:
        client = smtplib.SMTP(smtp.host, port, timeout=smtp.timeout)
    try:
        if not smtp.ssl and smtp.starttls:
            client.starttls(context=context)
        if smtp.login:
            client.login(smtp.login, smtp.password or "")
    except BaseException:
        client.close()
        raise
    return client


def send_message(msg: EmailMessage, smtp: SmtpSettings) -> dict[str, tuple[int, bytes]]:
    """Send one message in a session of its own. Returns the recipients the server refused
    (empty when all were accepted); raises when it refused all of them or could not be
    reached."""
    client = connect(smtp)
    try:
        return client.send_message(msg)
    finally:
        quit_session(client)


def quit_session(client: smtplib.SMTP) -> None:
    """End a session politely, or just close it when the server is already gone."""
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()


def build_alert_email(
    alert: Mapping[str, Any],
    *,
    to: Sequence[str],
    links: Mapping[str, str] | None = None,
    from_email: str = DEFAULT_FROM,
) -> EmailMessage:
    """The email for one `monitoring.alerts` row: plain text with an HTML alternative.

    It says what breached (subject, rule, body), how badly (severity), for which service
    date, the numbers in `details`, and links: those under the keys of `LINK_KEYS` in
    `details` (report, Airflow run, task log, Data Docs) and any extra `links` given as
    label -> URL.
    """
    if not to:
        raise ValueError("an alert email needs at least one recipient")
    details = _details(alert.get("details"))
    severity = str(alert.get("severity") or "info")
    rule = str(alert.get("rule") or "")
    service_date = alert.get("service_date")
    all_links = {label: str(details[key]) for key, label in LINK_KEYS.items() if details.get(key)}
    all_links.update({label: url for label, url in (links or {}).items() if url})
    # Only web addresses become links: a javascript: or data: URL would run in a mail client.
    all_links = {k: v for k, v in all_links.items() if v.startswith(("http://", "https://"))}
    body = str(alert.get("body") or "")
    facts = [
        (key, _show(value))
        for key, value in details.items()
        # Long text already in the body (an exception, a summary) is not repeated.
        if key not in LINK_KEYS
        and not (isinstance(value, str) and len(value) > 60 and value in body)
    ]
    msg = EmailMessage()
    msg["Subject"] = f"[nightscore] {severity.upper()}: {_headline(alert, rule)}"
    msg["From"] = from_email
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(localtime=False)
    if alert.get("dedup_key"):
        msg["Message-ID"] = alert_message_id(str(alert["dedup_key"]), from_email)
    msg["X-Nightscore-Rule"] = rule
    msg["X-Nightscore-Severity"] = severity
    if alert.get("alert_id") is not None:
        msg["X-Nightscore-Alert-Id"] = str(alert["alert_id"])

    msg.set_content(_text_body(alert, severity, rule, service_date, facts, all_links))
    msg.add_alternative(
        _html_body(alert, severity, rule, service_date, facts, all_links), subtype="html"
    )
    return msg


def alert_message_id(dedup_key: str, from_email: str = DEFAULT_FROM) -> str:
    """The Message-ID of an alert: a function of its dedup key only, so a resend (the
    outbox delivers at least once) and the outbox's copy of a notice mailed directly while
    the warehouse was down carry the Message-ID of the mail already delivered, and mail
    clients show one message."""
    digest = hashlib.sha256(dedup_key.encode()).hexdigest()[:24]
    domain = from_email.rpartition("@")[2] or "localhost"
    return f"<nightscore-alert-{digest}@{domain}>"


def prebuilt_email(raw: bytes, *, to: Sequence[str], from_email: str) -> EmailMessage:
    """A message built when it was queued (the weekly report), addressed now: recipients
    are configuration, and may have changed since."""
    if not to:
        raise ValueError("an email needs at least one recipient")
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    del msg["To"]
    msg["To"] = ", ".join(to)
    if not msg["From"]:
        msg["From"] = from_email
    return msg


def _headline(alert: Mapping[str, Any], rule: str) -> str:
    return str(alert.get("subject") or rule).removeprefix("[nightscore]").strip()


def _details(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else {}
    return dict(value)


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def _when(alert: Mapping[str, Any]) -> str:
    created = alert.get("created_at")
    return created.strftime("%Y-%m-%d %H:%M %Z").strip() if isinstance(created, datetime) else ""


def _text_body(alert, severity, rule, service_date, facts, links) -> str:
    lines = [
        f"Severity:     {severity.upper()}",
        f"Rule:         {rule}",
        f"Service date: {service_date.isoformat() if service_date else '-'}",
        "",
        str(alert.get("body") or "").rstrip(),
    ]
    if facts:
        lines += ["", "Details"]
        width = max(len(key) for key, _ in facts)
        lines += [f"  {key.ljust(width)}  {value}" for key, value in facts]
    if links:
        lines += ["", "Links"]
        lines += [f"  {label}: {url}" for label, url in links.items()]
    lines += ["", _footer(alert)]
    return "\n".join(lines) + "\n"


def _footer(alert: Mapping[str, Any]) -> str:
    when = _when(alert)
    who = f"Alert {alert['alert_id']}" if alert.get("alert_id") is not None else "Alert"
    return (
        f"-- \n{who}{', raised ' + when if when else ''}, from the nightscore outbox "
        f"(monitoring.alerts, dedup key {alert.get('dedup_key', '-')})."
    )


# The alert's HTML, read on phones first: one fluid column of at most 600 px, text of
# 15 px or more (11 pt), and long words (an exception, a path, a link) broken anywhere
# rather than pushing the page sideways.
_PAGE = (
    "max-width:600px;margin:0 auto;padding:16px;box-sizing:border-box;"
    "font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;font-size:16px;"
    "line-height:1.5;color:#222;overflow-wrap:anywhere;word-break:break-word"
)
_PRE = (
    "white-space:pre-wrap;overflow-wrap:anywhere;word-break:break-word;margin:0 0 16px 0;"
    "padding:10px;background:#f4f5f7;border-radius:4px;"
    "font-family:Menlo,Consolas,monospace;font-size:15px;line-height:1.45"
)
_CELL = "padding:6px 4px;border-bottom:1px solid #e6e6e6;vertical-align:top;text-align:left"


def _html_body(alert, severity, rule, service_date, facts, links) -> str:
    e = html.escape
    colour = _SEVERITY_COLOURS.get(severity, "#444")
    rows = "".join(
        f'<tr><th style="{_CELL};width:38%;font-weight:normal;color:#555">{e(key)}</th>'
        f'<td style="{_CELL}">{e(value)}</td></tr>'
        for key, value in [
            ("severity", severity.upper()),
            ("rule", rule),
            ("service date", service_date.isoformat() if service_date else "-"),
            *facts,
        ]
    )
    link_items = "".join(
        f'<li style="margin:0 0 6px 0"><a href="{e(url, quote=True)}">{e(label)}</a></li>'
        for label, url in links.items()
    )
    footer = _footer(alert).removeprefix("-- \n")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(_headline(alert, rule))}</title></head>"
        f'<body style="margin:0;padding:0"><div style="{_PAGE}">'
        f'<p style="margin:0 0 12px 0;font-size:18px;line-height:1.35">'
        f'<span style="background:{colour};color:#fff;padding:2px 6px;border-radius:3px;'
        f'font-size:15px">{e(severity.upper())}</span> '
        f"<strong>{e(_headline(alert, rule))}</strong></p>"
        f'<pre style="{_PRE}">{e(str(alert.get("body") or ""))}</pre>'
        '<table role="presentation" style="border-collapse:collapse;width:100%;'
        f'table-layout:fixed;font-size:15px;line-height:1.4">{rows}</table>'
        + (
            f'<p style="margin:16px 0 6px 0;font-weight:600">Links</p>'
            f'<ul style="padding-left:20px;margin:0">{link_items}</ul>'
            if link_items
            else ""
        )
        + f'<p style="margin:24px 0 0 0;color:#666;font-size:15px">{e(footer)}</p>'
        "</div></body></html>"
    )
