"""Why a flight got its risk: the three features that moved its score the most.

At scoring, XGBoost gives each prediction its exact TreeSHAP contributions
(`LoadedModel.contributions`): one number per feature plus the bias, in log-odds. They
add up: bias + the sum of the features' contributions = the model's margin, and the risk
is 1 / (1 + exp(-margin)). The bias is the model's base margin, the same for every flight.
A positive contribution raised this flight's risk, a negative one lowered it.

`top_reasons` keeps the TOP strongest by absolute contribution, strongest first. The
prediction stores the feature's name and its signed contribution; the analytics view
shows FEATURE_WORDS (copied into `scoring.feature_words` at every scoring run, so this
file is the one place the words live).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Connection, text

from nightscore import sql

if TYPE_CHECKING:
    import numpy as np

TOP = 3
# Prediction columns, in this order after score and label: reason_1_feature, _effect, ...
REASON_COLUMNS = tuple(
    f"reason_{rank}_{part}" for rank in range(1, TOP + 1) for part in ("feature", "effect")
)

# What each model feature means to an analyst. "The last 28 days" (or 7) are the days whose
# outcomes were known when the flight was scored: they end two days before its date.
FEATURE_WORDS = {
    "carrier": "the airline",
    "origin": "the New York airport it leaves from",
    "dest": "the destination airport",
    "month": "the time of year (month)",
    "day_of_week": "the day of the week",
    "dep_hour": "the scheduled departure hour",
    "dep_minute": "the minute of the scheduled departure within its hour",
    "arr_hour": "the scheduled arrival hour",
    "distance": "the flight's distance",
    "days_to_holiday": "how near the day is to a US holiday",
    "origin_hour_departures": "how many flights leave the origin airport in the same hour",
    "origin_day_departures": "how many flights leave the origin airport that day",
    "carrier_day_departures": "how many flights the airline has leaving New York that day",
    "nyc_hour_departures": "how many flights leave the three New York airports in the same hour",
    "plane_leg_of_day": "which of the plane's flights of the day this is",
    "plane_prev_gap_min": "the time since the plane's previous scheduled departure",
    "temp": "the temperature at the origin at departure",
    "dewp": "the dew point at the origin at departure",
    "humid": "the humidity at the origin at departure",
    "wind_speed": "the wind speed at the origin at departure",
    "wind_gust": "wind gusts at the origin at departure",
    "precip": "rain or snow at the origin in the departure hour",
    "pressure": "the air pressure at the origin at departure",
    "visib": "the visibility at the origin at departure",
    "day_precip": "rain or snow at the origin over the whole day",
    "day_precip_hours": "how many hours it rains or snows at the origin that day",
    "day_min_visib": "the day's lowest visibility at the origin",
    "day_max_wind_speed": "the day's strongest wind at the origin",
    "precip_before_departure": "rain or snow at the origin in the 3 hours before departure",
    "min_visib_before_departure": "the lowest visibility at the origin in the 3 hours before "
    "departure",
    "precip_after_departure": "rain or snow at the origin in the 3 hours after departure",
    "nyc_day_precip": "rain or snow over the day across the three New York airports",
    "plane_age": "the plane's age",
    "plane_seats": "the plane's number of seats",
    "plane_engines": "the plane's number of engines",
    "plane_known": "whether the plane is in the aircraft register",
    "hist_carrier_rate": "the airline's disruption rate over the last 28 days",
    "hist_route_rate": "this route's disruption rate over the last 28 days",
    "hist_origin_hour_rate": "the disruption rate at the origin airport at this hour over "
    "the last 28 days",
    "hist_route_hour_rate": "this route's disruption rate at this hour over the last 28 days",
    "hist_flight_rate": "this flight number's disruption rate over the last 28 days",
    "hist_dest_rate": "the disruption rate of flights to this destination over the last 28 days",
    "hist_flight_count": "how often this flight number flew in the last 28 days",
    "hist_plane_rate": "this plane's disruption rate over the last 28 days",
    "recent_origin_rate": "the origin airport's disruption rate over the last 7 days",
    "recent_carrier_rate": "the airline's disruption rate over the last 7 days",
    "last_day_origin_rate": "the origin airport's disruption rate on the latest day with "
    "known outcomes",
    "last_day_carrier_rate": "the airline's disruption rate on the latest day with known outcomes",
}


def top_reasons(contributions: np.ndarray, features: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The TOP features with the largest |contribution| per row, strongest first.

    `contributions` is XGBoost's `pred_contribs` output: one column per feature, in
    `features` order, then the bias. Returns (names, effects), each of shape (rows, TOP):
    the features' names (None where the contribution is 0: no driver) and their signed
    contributions in log-odds (NaN there).
    """
    import numpy as np

    if contributions.ndim != 2 or contributions.shape[1] != len(features) + 1:
        raise ValueError(
            f"contributions of shape {contributions.shape} do not fit {len(features)} features "
            "plus the bias column"
        )
    if len(features) < TOP:
        raise ValueError(f"{len(features)} features cannot give {TOP} reasons")
    per_feature = contributions[:, :-1]
    strength = np.abs(per_feature)
    # argpartition finds the TOP without sorting all 48 columns; then sort just those.
    top = np.argpartition(-strength, TOP - 1, axis=1)[:, :TOP]
    order = np.argsort(-np.take_along_axis(strength, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    effects = np.take_along_axis(per_feature, top, axis=1).astype("float32")
    names = np.asarray(features, dtype=object)[top]
    none = effects == 0
    names[none] = None
    effects[none] = np.nan
    return names, effects


def sync_words(conn: Connection) -> None:
    """Copy FEATURE_WORDS into `scoring.feature_words`, which the analytics view reads.

    Rows that already say the same are not rewritten, but stay locked until the transaction
    ends: call it in a short transaction of its own, not in a night's scoring."""
    conn.execute(
        text(sql.load("scoring/sync_feature_words")),
        [{"feature": name, "words": words} for name, words in FEATURE_WORDS.items()],
    )
