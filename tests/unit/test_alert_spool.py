"""The alert spool on a local store folder: a notice survives the round trip, one file
per dedup key, a stray file is left alone, and an alert's Message-ID is its dedup key's."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

from nightscore.config import Settings
from nightscore.monitoring import spool
from nightscore.monitoring.mailer import alert_message_id, build_alert_email
from nightscore.monitoring.spool import Notice


def notice(key: str = "dag_failed:nightly_scoring:r1:publish_predictions") -> Notice:
    return Notice(
        rule="dag_failed",
        severity="critical",
        subject="[nightscore] nightly_scoring: task publish_predictions failed",
        body="ValueError: lock timeout",
        dedup_key=key,
        cooldown_key="dag_failed:nightly_scoring:publish_predictions",
        service_date=date(2013, 2, 12),
        details={"dag_id": "nightly_scoring", "try_number": 3},
        noticed_at=datetime(2013, 2, 11, 22, 5, tzinfo=UTC),
    )


def settings(tmp_path) -> Settings:
    return Settings(store_url=str(tmp_path / "store"))


def test_a_notice_survives_the_spool(tmp_path):
    s = settings(tmp_path)
    assert s.alert_spool_root == str(tmp_path / "store" / "alert_spool")
    kept = notice().mailed(datetime(2013, 2, 11, 22, 6, tzinfo=UTC))

    spool.keep(kept, s)

    assert spool.spooled(s) == [(spool.location(s, kept.dedup_key), kept)]


def test_one_file_per_dedup_key(tmp_path):
    s = settings(tmp_path)
    spool.keep(notice("a"), s)
    spool.keep(notice("a").mailed(), s)  # the same notice, now mailed: replaced
    spool.keep(notice("b"), s)

    found = spool.spooled(s)
    assert [n.dedup_key for _, n in found] == ["a", "b"]
    assert found[0][1].mailed_at is not None
    spool.discard(found[0][0])
    assert [n.dedup_key for _, n in spool.spooled(s)] == ["b"]


def test_a_stray_file_is_left_in_place_and_logged(tmp_path, caplog):
    s = settings(tmp_path)
    stray = tmp_path / "store" / "alert_spool" / "broken.json"
    stray.parent.mkdir(parents=True)
    stray.write_text("{not json")

    with caplog.at_level(logging.ERROR):
        assert spool.spooled(s) == []

    assert stray.exists()
    assert "is not a spooled alert notice" in caplog.text


def test_the_message_id_is_the_dedup_keys_whatever_the_row():
    one = build_alert_email({**notice().as_alert(), "alert_id": 7}, to=["a@example.com"])
    other = build_alert_email(notice().as_alert(), to=["a@example.com"])

    assert one["Message-ID"] == other["Message-ID"] == alert_message_id(notice().dedup_key)
    assert alert_message_id("x") != alert_message_id("y")
