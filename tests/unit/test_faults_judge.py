"""The fault suite's alert checks (`nightscore_dev.faults.check._judge`), on mail as the
sink stores it: each check passes on the right mail and fails on the wrong one."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from nightscore_dev.faults.check import LATE_S, Fault, _judge
from nightscore_dev.faults.evidence import Mail, duplicate_mails

RUN = "demo__2013-02-11__20261203T101010"
T0 = 1_000_000.0


def _mail(rule: str, text: str, after_s: float = 5, message_id: str = "<a@x>") -> Mail:
    subject = f"[nightscore] ingest_outcomes: task wait_for_outcomes_batch {rule}"
    return Mail(Path("m.eml"), T0 + after_s, message_id, subject, rule, f"{RUN}\n{text}")


def _fault(**kwargs: Any) -> Fault:
    fault = Fault(4, "warehouse", "down", "ingest_outcomes", "wait_for_outcomes_batch", [RUN])
    fault.injected_at = T0
    for key, value in kwargs.items():
        setattr(fault, key, value)
    return fault


def _judged(mails: list[Mail], recovered: bool) -> Fault:
    fault = _fault()
    _judge(cast(Any, None), fault, mails, recovered)
    return fault


def test_an_infrastructure_alert_naming_the_component_in_time_passes() -> None:
    notice = _mail("infrastructure_unavailable", "task wait_for_outcomes_batch: the warehouse")
    fault = _judged([notice], recovered=False)
    assert fault.problems == [] and fault.late == 0
    assert fault.delay_s == 5


def test_a_failure_without_the_infrastructure_alert_fails() -> None:
    generic = _mail("dag_failed", "task wait_for_outcomes_batch failed: warehouse")
    fault = _judged([generic], recovered=False)
    assert any("no infrastructure_unavailable" in p for p in fault.problems)
    assert fault.late == 1


def test_the_wrong_component_fails() -> None:
    wrong = _mail("infrastructure_unavailable", "task wait_for_outcomes_batch: the mlflow")
    assert _judged([wrong], recovered=False).problems


def test_a_late_alert_counts_as_late() -> None:
    late = _mail(
        "infrastructure_unavailable", "wait_for_outcomes_batch: warehouse", after_s=LATE_S + 1
    )
    fault = _judged([late], recovered=False)
    assert fault.late == 1 and fault.problems


def test_a_data_alert_for_an_infrastructure_fault_fails() -> None:
    data = _mail("batch_missing", "wait_for_outcomes_batch: no batch")
    notice = _mail("infrastructure_unavailable", "wait_for_outcomes_batch: warehouse")
    fault = _judged([data, notice], recovered=False)
    assert any("data alert" in p for p in fault.problems)


def test_a_recovered_fault_must_not_alert() -> None:
    assert _judged([], recovered=True).problems == []
    notice = _mail("infrastructure_unavailable", "wait_for_outcomes_batch: warehouse")
    assert _judged([notice], recovered=True).problems


def test_mail_about_other_runs_or_from_before_the_fault_is_not_counted() -> None:
    other = Mail(Path("o.eml"), T0 + 5, "<o@x>", "s", "dag_failed", "another run")
    before = _mail("dag_failed", "wait_for_outcomes_batch", after_s=-60)
    assert _judged([other, before], recovered=True).problems == []


def test_the_same_mail_twice_is_a_duplicate() -> None:
    notice = _mail("infrastructure_unavailable", "wait_for_outcomes_batch: warehouse")
    fault = _judged([notice, notice], recovered=False)
    assert fault.mail_duplicates == 1
    assert duplicate_mails([notice, notice]) == 1
