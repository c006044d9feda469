"""Logical date -> service date: the only place that maps a DAG run to the day it serves.

A *service date* S is the day the flights fly.

- The schedule batch for S lands on the evening of S-1; ``nightly_scoring`` runs then,
  so a run whose logical date falls on day L serves S = L + 1.
- The outcomes batch for S lands on the morning of S+1; ``ingest_outcomes`` and
  ``monitoring`` run then, so a run on day L serves S = L - 1.
- ``replay_source`` runs on the evening of L and writes the schedule batch for L + 1
  and the outcomes of L. (The real outcomes of L land on the morning of L + 1; the
  replay writes them a few hours early, and ``ingest_outcomes`` still picks them up
  on the morning of L + 1, after L + 1 has been scored.)

Airflow 3 collapses a manual run's data interval to its logical date, and a run
triggered by hand has no logical date at all: so the rules take the logical date
only, and every DAG lets a ``service_date`` param override them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta

from nightscore.errors import DataError

ONE_DAY = timedelta(days=1)

# The cron schedules that go with these rules (UTC).
SCORING_SCHEDULE = "0 22 * * *"  # evening of S-1
OUTCOMES_SCHEDULE = "0 6 * * *"  # morning of S+1
MONITORING_SCHEDULE = "0 7 * * *"  # morning of S+1, after the outcomes
REPLAY_SCHEDULE = "0 20 * * *"  # before both


class CalendarError(DataError, ValueError):
    """A date or a run's parameters that the calendar cannot read: not retried."""


def parse_date(value: str | date | datetime) -> date:
    """A date from 'YYYY-MM-DD', a date or a datetime, with a clear error otherwise."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise CalendarError(f"not a date (expected YYYY-MM-DD): {value!r}") from None


def _resolve(
    logical_date: datetime | None, param: str | date | None, offset: int, dag: str
) -> date:
    if param not in (None, ""):
        return parse_date(param)  # type: ignore[arg-type]
    if logical_date is None:
        raise CalendarError(
            f"{dag}: this run has no logical date (it was triggered by hand); "
            "pass the service date as the 'service_date' param, e.g. "
            '{"service_date": "2013-02-07"}'
        )
    return logical_date.date() + timedelta(days=offset)


def scoring_service_date(logical_date: datetime | None, param: str | date | None = None) -> date:
    """The service date a ``nightly_scoring`` run serves (its evening is S-1)."""
    return _resolve(logical_date, param, +1, "nightly_scoring")


def outcomes_service_date(logical_date: datetime | None, param: str | date | None = None) -> date:
    """The service date an ``ingest_outcomes`` run serves (S+1 morning)."""
    return _resolve(logical_date, param, -1, "ingest_outcomes")


def monitoring_service_date(logical_date: datetime | None, param: str | date | None = None) -> date:
    """The service date a ``monitoring`` run serves (S+1 morning, after the outcomes)."""
    return _resolve(logical_date, param, -1, "monitoring")


def replay_service_dates(
    logical_date: datetime | None, param: str | date | None = None
) -> dict[str, date]:
    """What a ``replay_source`` run writes: {'schedule': S, 'outcomes': S'}.

    With a ``service_date`` param both batches are for that date.
    """
    if param not in (None, ""):
        day = parse_date(param)  # type: ignore[arg-type]
        return {"schedule": day, "outcomes": day}
    evening = _resolve(logical_date, None, 0, "replay_source")
    return {"schedule": evening + ONE_DAY, "outcomes": evening}


def date_range(start: date, end: date) -> Iterator[date]:
    """Every date from start to end, both included."""
    if end < start:
        raise CalendarError(f"the range ends ({end}) before it starts ({start})")
    day = start
    while day <= end:
        yield day
        day += ONE_DAY


def days_before(day: date, days: int) -> tuple[date, date]:
    """The `days` days just before `day`: (first, last), both included."""
    return day - timedelta(days=days), day - ONE_DAY


# Weekly, Monday noon: the outcomes of Sunday landed at 06:00.
RETRAIN_SCHEDULE = "0 12 * * 1"


def training_cutoff(logical_date: datetime | None, param: str | date | None = None) -> date:
    """The cut-off of a ``retrain`` run: it trains on labelled days strictly before it.

    A run on day L may use the outcomes of L-1 (landed that morning), so the cut-off is L.
    """
    if param not in (None, ""):
        return parse_date(param)  # type: ignore[arg-type]
    if logical_date is None:
        raise CalendarError(
            "retrain: this run has no logical date (it was triggered by hand); "
            'pass the cut-off as the \'cutoff\' param, e.g. {"cutoff": "2013-06-01"}'
        )
    return logical_date.date()
