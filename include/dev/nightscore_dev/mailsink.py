"""The demo's local SMTP sink: every message sent to it is kept as a file, none goes out.

    nightscore-dev mailsink --folder DIR --host 127.0.0.1 --port 1025
    python -m nightscore_dev.mailsink --folder DIR ...   (the same; what the stack starts)

Each message is written to `DIR/<NNNN>-<yyyymmddThhmmss>-<subject-slug>.eml`, the raw bytes
as received; when it has an HTML body, that body is written beside it as `.html`, with
its inline `cid:` images turned into `data:` URIs so that it opens in a browser. One log
line per message says who it was for and its subject.

Plain SMTP on loopback: no TLS, no AUTH needed (a client that logs in is let in with any
credentials, so an `smtp_default` connection with a user and password works too).
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
import threading
import unicodedata
from base64 import b64encode
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 1025
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
SLUG_CHARS = 60
_NUMBERED = re.compile(r"^(\d{4,})-")
_CID = re.compile(r"""cid:([^"'\s)>]+)""", re.IGNORECASE)
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SavedMessage:
    """One message the sink kept."""

    number: int
    eml: Path
    html: Path | None
    mail_from: str
    recipients: tuple[str, ...]
    subject: str


def slug(value: str, limit: int = SLUG_CHARS) -> str:
    """A file-name-safe, lower-case ASCII version of a subject ("no-subject" if empty)."""
    # Punctuation (an en dash too) separates words before accents are stripped.
    spaced = re.sub(r"[\W_]+", " ", value)
    ascii_text = unicodedata.normalize("NFKD", spaced).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return cleaned[:limit].rstrip("-") or "no-subject"


def html_with_inline_images(msg: EmailMessage) -> str | None:
    """The message's HTML body with `cid:` references replaced by `data:` URIs; None when
    it has no HTML body."""
    body = msg.get_body(preferencelist=("html",))
    if body is None:
        return None
    page = body.get_content()
    inline: dict[str, str] = {}
    for part in msg.walk():
        content_id = part.get("Content-ID")
        if content_id and not part.is_multipart():
            # Not multipart: get_payload(decode=True) gives the decoded bytes (or None).
            data = cast("bytes | None", part.get_payload(decode=True)) or b""
            inline[content_id.strip().strip("<>")] = (
                f"data:{part.get_content_type()};base64,{b64encode(data).decode('ascii')}"
            )

    def replace(match: re.Match[str]) -> str:
        return inline.get(match.group(1), match.group(0))

    return _CID.sub(replace, page)


class _Handler:
    """The aiosmtpd handler: writes each accepted message to the folder."""

    def __init__(self, sink: MailSink):
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        try:
            saved = self.sink.save(
                envelope.original_content or envelope.content,
                mail_from=envelope.mail_from or "",
                recipients=tuple(envelope.rcpt_tos),
            )
        except Exception as exc:  # a full disk, say: tell the client, keep running
            logger.exception("could not save a message")
            return f"451 4.3.0 Could not save the message: {type(exc).__name__}"
        return f"250 Message accepted for delivery (saved as {saved.eml.name})"


def _accept_any_login(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any):
    from aiosmtpd.smtp import AuthResult

    return AuthResult(success=True)


class MailSink:
    """An SMTP server on `host:port` that saves what it receives to `folder`.

    `start()` returns once the server accepts connections; `stop()` shuts it down. Also
    a context manager. `saved` lists the messages kept by this instance, oldest first.
    """

    def __init__(self, folder: str | Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT):
        self.folder = Path(folder)
        self.host = host
        self.port = port
        self.saved: list[SavedMessage] = []
        self._controller: Any = None
        self._lock = threading.Lock()
        self._next_number = 0

    @property
    def address(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> MailSink:
        from aiosmtpd.controller import Controller

        self.folder.mkdir(parents=True, exist_ok=True)
        self._next_number = self._last_number() + 1
        controller = Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            data_size_limit=MAX_MESSAGE_BYTES,
            enable_SMTPUTF8=True,
            authenticator=_accept_any_login,
            auth_require_tls=False,
        )
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> MailSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _last_number(self) -> int:
        """Numbers continue after the messages already in the folder (a restarted sink
        does not overwrite them)."""
        numbers = [int(m.group(1)) for p in self.folder.iterdir() if (m := _NUMBERED.match(p.name))]
        return max(numbers, default=0)

    def save(
        self, raw: bytes, *, mail_from: str = "", recipients: tuple[str, ...] = ()
    ) -> SavedMessage:
        """Write one message (and its HTML body, if any); returns what was written."""
        msg = message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        subject = str(msg.get("Subject", "") or "")
        with self._lock:
            number = self._next_number
            self._next_number += 1
        stem = f"{number:04d}-{datetime.now():%Y%m%dT%H%M%S}-{slug(subject)}"
        eml = self.folder / f"{stem}.eml"
        eml.write_bytes(raw)
        html_path = None
        try:
            page = html_with_inline_images(msg)
        except Exception:  # a malformed part: the .eml is what matters
            logger.warning("could not extract the HTML body of %s", eml.name, exc_info=True)
            page = None
        if page is not None:
            html_path = eml.with_suffix(".html")
            html_path.write_text(page, encoding="utf-8")
        saved = SavedMessage(number, eml, html_path, mail_from, recipients, subject)
        with self._lock:
            self.saved.append(saved)
        logger.info(
            "mail #%04d to %s: %s (%s bytes) -> %s",
            number,
            ", ".join(recipients) or "-",
            subject or "(no subject)",
            f"{len(raw):,}",
            eml.name,
        )
        return saved


DESCRIPTION = "A local SMTP server that saves every message it receives to a folder."


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The sink's options, for `python -m nightscore_dev.mailsink` and `nightscore-dev mailsink`."""
    parser.add_argument("--folder", required=True, help="where the .eml and .html files go")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the sink until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(
        prog="python -m nightscore_dev.mailsink", description=DESCRIPTION
    )
    return serve(add_arguments(parser).parse_args(argv))


def serve(args: argparse.Namespace) -> int:
    """Run the sink (args: folder, host, port) until SIGTERM or SIGINT."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stdout,
    )
    # aiosmtpd logs every SMTP command at INFO; one line per message is enough.
    logging.getLogger("mail.log").setLevel(logging.WARNING)

    stopping = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sink = MailSink(args.folder, args.host, args.port)
    try:
        sink.start()
    except OSError as exc:
        print(f"mail sink: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(
        f"mail sink: listening on {sink.address}, saving messages to {sink.folder.resolve()}",
        flush=True,
    )
    try:
        while not stopping.wait(1.0):
            pass
    finally:
        sink.stop()
        print("mail sink: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
