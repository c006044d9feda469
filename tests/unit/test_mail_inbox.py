"""The mail inbox page of the local SMTP sink's folder (`nightscore.mail_inbox`): what the
sink really writes, listed newest first, every value escaped, no other file reachable."""

from __future__ import annotations

import html
import re
from email.message import EmailMessage

import pytest

from nightscore import mail_inbox
from nightscore_dev.mailsink import MailSink

HOSTILE = "<script>alert(1)</script> EWR & <img src=x onerror=alert(2)>"


def _message(subject: str, to: str, body_html: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = "nightscore@nightscore.example"
    msg["To"] = to
    msg["Date"] = "Thu, 07 Feb 2013 23:15:00 +0100"
    msg.set_content("plain")
    if body_html is not None:
        msg.add_alternative(body_html, subtype="html")
    return msg.as_bytes()


@pytest.fixture
def folder(tmp_path):
    """Three messages, saved by the sink as it saves what it receives, oldest first."""
    sink = MailSink(tmp_path / "mail")
    sink.folder.mkdir()
    for subject, to, page in [
        ("[nightscore] batch rejected", "oncall@nightscore.example", "<p>first</p>"),
        ("weekly report", "stakeholders@nightscore.example", None),
        (HOSTILE, "a@x.example, b@x.example", "<p>third</p>"),
    ]:
        sink.save(_message(subject, to, page), recipients=(to,))
    return sink.folder


def test_messages_are_listed_newest_first_with_subject_recipients_and_time(folder):
    messages, total = mail_inbox.list_messages(folder)
    assert total == 3
    assert [m.subject for m in messages] == [
        HOSTILE,
        "weekly report",
        "[nightscore] batch rejected",
    ]
    assert messages[0].recipients == "a@x.example, b@x.example"
    assert (
        messages[0].sent is not None and messages[0].sent.isoformat() == "2013-02-07T22:15:00+00:00"
    )
    # A message without an HTML body opens as received.
    assert [m.href.rsplit(".", 1)[1] for m in messages] == ["html", "eml", "html"]


def test_the_page_escapes_every_value_and_links_each_message(folder):
    messages, total = mail_inbox.list_messages(folder)
    page = mail_inbox.inbox_page(messages, total)
    assert "<script>" not in page and "<img" not in page
    assert html.escape(HOSTILE) in page
    assert '<meta name="viewport"' in page
    hrefs = re.findall(r'href="(mail/[^"]+)"', page)
    assert len(hrefs) == 3
    for href in hrefs:
        path = mail_inbox.resolve(folder, href.removeprefix("mail/"))
        assert path.is_file()
    first = mail_inbox.resolve(folder, hrefs[0].removeprefix("mail/"))
    assert first.read_text().strip().endswith("<p>third</p>")


def test_a_limit_lists_the_newest_and_says_how_many_are_older(folder):
    messages, total = mail_inbox.list_messages(folder, limit=1)
    assert (len(messages), total) == (1, 3)
    assert messages[0].subject == HOSTILE
    assert "2 older not listed" in mail_inbox.inbox_page(messages, total)


def test_no_folder_is_an_empty_inbox(tmp_path):
    assert mail_inbox.list_messages(tmp_path / "none") == ([], 0)
    assert "No mail yet." in mail_inbox.inbox_page([], 0)


@pytest.mark.parametrize(
    "name",
    [
        "../secret.eml",
        "0001-20130207T231500-x/../../etc.eml",
        "0001-20130207T231500-x.txt",
        "%2e%2e",
        "",
        ".eml",
        "0001-20130207T231500-Capital.html",
    ],
)
def test_only_the_sinks_own_file_names_are_served(tmp_path, name):
    with pytest.raises(mail_inbox.NotServed):
        mail_inbox.resolve(tmp_path, name)
