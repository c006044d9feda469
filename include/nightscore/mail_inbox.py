"""The mail inbox page of a local folder of mail, served by the Airflow API server at
`/nightscore/mail` (`plugins/nightscore_files.py`), behind its login.

The folder is the local stack's SMTP sink's (setting `mail_dir`): one
`NNNN-yyyymmddThhmmss-subject-slug.eml` per message, as received, and its HTML body
beside it as `.html`. The index lists the messages newest first (the sink numbers them
in the order received) with subject, recipients and time; each opens its `.html`, or its
`.eml` when it has no HTML body. Subjects and addresses are data (a carrier code in an
alert's subject): every value is escaped.

Nothing here needs Airflow.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import quote

from nightscore.served_files import page

# Only names the sink writes are served: no other character, so no path, can get through.
MAIL_FILE = re.compile(r"\d{4,}-\d{8}T\d{6}-[a-z0-9-]+\.(?:eml|html)")
# A message's headers are at its start; a weekly report's .eml is megabytes of image.
HEADER_BYTES = 64 * 1024
# The index lists this many messages (a year's replay mails a few hundred).
LISTED = 500


class NotServed(ValueError):
    """A name that is not one of the sink's files."""


@dataclass(frozen=True)
class Message:
    """One message of the folder, as the index shows it."""

    stem: str  # the file name without .eml
    subject: str
    recipients: str
    sent: datetime | None  # its Date header, else the time in its file name
    has_html: bool

    @property
    def href(self) -> str:
        # The index is served at /nightscore/mail, the files at /nightscore/mail/<name>.
        return f"mail/{quote(self.stem)}.{'html' if self.has_html else 'eml'}"


def resolve(folder: str | Path, name: str) -> Path:
    """The file `name` of the folder; NotServed for any name the sink does not write."""
    if not MAIL_FILE.fullmatch(name):
        raise NotServed(f"not a mail file: {name!r}")
    return Path(folder) / name


def _headers(path: Path) -> dict[str, str]:
    with path.open("rb") as f:
        head = f.read(HEADER_BYTES)
    for end in (b"\r\n\r\n", b"\n\n"):
        if end in head:
            head = head[: head.index(end) + len(end)]
            break
    parsed = BytesHeaderParser(policy=policy.default).parsebytes(head)
    values = {}
    for key in ("Subject", "To", "Cc", "Date"):
        try:
            values[key] = str(parsed.get(key, "") or "")
        except Exception:  # a malformed header: the index still lists the message
            values[key] = ""
    return values


def _sent(date_header: str, stem: str) -> datetime | None:
    try:
        return parsedate_to_datetime(date_header).astimezone(UTC)
    except (TypeError, ValueError, IndexError):
        pass
    stamp = stem.split("-")[1]  # MAIL_FILE: NNNN-yyyymmddThhmmss-slug
    try:
        return datetime.strptime(stamp, "%Y%m%dT%H%M%S")  # the sink's local time
    except ValueError:
        return None


def list_messages(folder: str | Path, limit: int = LISTED) -> tuple[list[Message], int]:
    """The newest `limit` messages of the folder, newest first, and how many it holds;
    none when it does not exist."""
    root = Path(folder)
    if not root.is_dir():
        return [], 0
    names = sorted(
        (p.name for p in root.iterdir() if p.suffix == ".eml" and MAIL_FILE.fullmatch(p.name)),
        key=lambda name: int(name.split("-", 1)[0]),
        reverse=True,
    )
    messages = []
    for name in names[:limit]:
        stem = name.removesuffix(".eml")
        try:
            headers = _headers(root / name)
        except OSError:  # removed while listed
            continue
        recipients = ", ".join(v for v in (headers["To"], headers["Cc"]) if v)
        messages.append(
            Message(
                stem=stem,
                subject=headers["Subject"] or "(no subject)",
                recipients=recipients or "(no recipient)",
                sent=_sent(headers["Date"], stem),
                has_html=(root / f"{stem}.html").is_file(),
            )
        )
    return messages, len(names)


def _when(sent: datetime | None) -> str:
    if sent is None:
        return ""
    return sent.strftime("%Y-%m-%d %H:%M UTC" if sent.tzinfo else "%Y-%m-%d %H:%M")


def _item(message: Message) -> str:
    detail = " · ".join(v for v in (message.recipients, _when(message.sent)) if v)
    return (
        f'<li><a href="{html.escape(message.href)}">'
        f"<span>{html.escape(message.subject)}</span>"
        f'<span class="detail">{html.escape(detail)}</span></a></li>'
    )


def inbox_page(messages: list[Message], total: int) -> str:
    """The inbox: one line per message, newest first, readable on a phone."""
    if messages:
        listed = "\n".join(_item(m) for m in messages)
        more = (
            f'\n<p class="empty">{total - len(messages)} older not listed.</p>'
            if total > len(messages)
            else ""
        )
        body = f"<h2>Messages ({total})</h2>\n<ul>\n{listed}\n</ul>{more}"
    else:
        body = '<p class="empty">No mail yet.</p>'
    return page(
        "nightscore mail",
        "Every alert and report the platform sent, as the local mail sink received "
        "it, newest first.",
        body,
    )
