"""The service-date rules: one module decides which day a run serves."""

from datetime import UTC, date, datetime

import pytest

from nightscore import calendar


def at(day: str, hour: int) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def test_nightly_scoring_on_the_evening_of_s_minus_1_serves_s():
    assert calendar.scoring_service_date(at("2013-02-07", 22)) == date(2013, 2, 8)


def test_ingest_outcomes_on_the_morning_of_s_plus_1_serves_s():
    assert calendar.outcomes_service_date(at("2013-02-09", 6)) == date(2013, 2, 8)


def test_replay_lands_tomorrows_schedule_and_todays_outcomes():
    assert calendar.replay_service_dates(at("2013-02-07", 20)) == {
        "schedule": date(2013, 2, 8),
        "outcomes": date(2013, 2, 7),
    }


def test_year_and_month_boundaries():
    assert calendar.scoring_service_date(at("2012-12-31", 22)) == date(2013, 1, 1)
    assert calendar.outcomes_service_date(at("2013-03-01", 6)) == date(2013, 2, 28)


def test_the_param_wins_over_the_logical_date():
    assert calendar.scoring_service_date(at("2013-02-07", 22), "2013-05-01") == date(2013, 5, 1)
    assert calendar.replay_service_dates(None, "2013-05-01") == {
        "schedule": date(2013, 5, 1),
        "outcomes": date(2013, 5, 1),
    }


@pytest.mark.parametrize(
    "rule",
    [calendar.scoring_service_date, calendar.outcomes_service_date, calendar.replay_service_dates],
)
def test_a_hand_triggered_run_without_the_param_gets_a_clear_error(rule):
    with pytest.raises(ValueError, match="service_date"):
        rule(None, None)


def test_a_malformed_param_is_named_in_the_error():
    with pytest.raises(ValueError, match="2013-13-01"):
        calendar.scoring_service_date(None, "2013-13-01")


def test_date_range_is_inclusive_and_refuses_a_backwards_range():
    assert list(calendar.date_range(date(2013, 2, 27), date(2013, 3, 1))) == [
        date(2013, 2, 27),
        date(2013, 2, 28),
        date(2013, 3, 1),
    ]
    with pytest.raises(ValueError, match="before it starts"):
        list(calendar.date_range(date(2013, 3, 1), date(2013, 2, 1)))
