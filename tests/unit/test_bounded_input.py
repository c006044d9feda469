"""Bounded input: every landing file, whatever its shape, is checked in bounded memory
and time. Sizes are asserted by what was read and work by what was counted, never by
the clock (benchmarks/landing.py measures seconds and memory)."""

from __future__ import annotations

import hashlib
import io
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from nightscore import store
from nightscore.contract import FLIGHTS
from nightscore.landing import Landing, replay_parts
from nightscore.validation import parse_batch, parsing
from nightscore.validation.parsing import InputLimits, parse_stream

DAY = date(2013, 2, 11)
LIMITS = InputLimits(max_batch_bytes=10_000_000, max_columns=100, max_line_bytes=65_536)


def landed(tmp_path: Path) -> dict[str, str]:
    return Landing(str(tmp_path)).write_batch("schedule", DAY, replay_parts("schedule", DAY))


class CountingStream(io.BytesIO):
    """A file whose reads are counted: how many bytes the parser took from it."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.taken = 0

    def readline(self, size: int | None = -1) -> bytes:
        line = super().readline(size)
        self.taken += len(line)
        return line

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.taken += len(data)
        return data


def test_an_oversized_batch_is_rejected_whole_before_any_file_is_opened(tmp_path, monkeypatch):
    paths = landed(tmp_path)
    Path(paths["flights"]).write_bytes(b"x" * 10_500_000)
    weather = Path(paths["weather"]).stat().st_size
    opened: list[str] = []
    real_open = store.open_read
    monkeypatch.setattr(store, "open_read", lambda p: opened.append(p) or real_open(p))

    parsed = parse_batch("schedule", paths, LIMITS)

    assert opened == []  # not one byte read
    assert parsed.frames is None
    (problem,) = parsed.parts["flights"].problems
    total = 10_500_000 + weather
    assert problem.description == (
        f"schedule batch: {total:,} bytes (flights.csv 10,500,000, weather.csv {weather:,}), "
        "over the limit NIGHTSCORE_MAX_BATCH_BYTES=10,000,000; it was not read"
    )
    assert parsed.parts["weather"].problems == []  # one batch, one message
    # The ledger still gets a checksum, stable for the same files.
    assert parsed.checksum == parse_batch("schedule", paths, LIMITS).checksum


def test_a_batch_at_the_limit_is_read(tmp_path):
    paths = landed(tmp_path)
    total = sum(Path(p).stat().st_size for p in paths.values())
    limits = InputLimits(total, LIMITS.max_columns, LIMITS.max_line_bytes)
    assert parse_batch("schedule", paths, limits).frames is not None
    tighter = InputLimits(total - 1, LIMITS.max_columns, LIMITS.max_line_bytes)
    assert parse_batch("schedule", paths, tighter).frames is None  # control


def test_100000_columns_are_rejected_after_reading_one_bounded_line():
    header = ",".join(f"column_{i}" for i in range(100_000)).encode()
    data = header + b"\n" + b"1," * 99_999 + b"1\n"
    stream = CountingStream(data)

    part = parse_stream(FLIGHTS, stream, LIMITS)

    (problem,) = part.problems
    assert "line 1 is longer than the limit NIGHTSCORE_MAX_LINE_BYTES=65,536 bytes" in (
        problem.description
    )
    assert stream.taken <= LIMITS.max_line_bytes + 1  # of the file's 1.2 MB


def test_a_header_over_the_column_limit_is_rejected_before_any_row_is_read():
    header = ",".join(f"c{i}" for i in range(100_000)).encode()
    data = header + b"\n" + (b"1," * 99_999 + b"1\n") * 20
    wide = InputLimits(LIMITS.max_batch_bytes, 100, max_line_bytes=1_000_000)
    stream = CountingStream(data)

    part = parse_stream(FLIGHTS, stream, wide)

    (problem,) = part.problems
    assert problem.description == (
        "flights.csv: 100,000 columns, over the limit NIGHTSCORE_MAX_BATCH_COLUMNS=100; "
        "the file was not read further"
    )
    assert stream.taken == len(header) + 1  # the header line, and no row


class CountingName(str):
    """A column name that counts how often it is compared: the header check's work."""

    comparisons = 0

    def __eq__(self, other: object) -> bool:
        CountingName.comparisons += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


@pytest.mark.parametrize("width", [1_000, 10_000, 100_000])
def test_the_header_check_is_linear_in_the_number_of_columns(width):
    header = [CountingName(f"c{i}") for i in range(width)]
    CountingName.comparisons = 0
    problems = parsing._header_problems(FLIGHTS, header)
    assert problems  # every expected column is missing
    # Set lookups compare a name only on a hash match: a handful per column. A list scan
    # per column (the quadratic check) would compare ~width**2: measured 1,017,000 times
    # at 1,000 columns with the former check, 0 with this one.
    assert CountingName.comparisons <= 2 * width


def test_a_single_very_long_line_is_rejected_after_reading_the_limit():
    stream = CountingStream(b"a" * 5_000_000)  # 5 MB, no newline at all
    part = parse_stream(FLIGHTS, stream, LIMITS)
    assert "line 1 is longer than the limit" in part.problems[0].description
    assert stream.taken == LIMITS.max_line_bytes + 1


def big_night(copies: int) -> pd.DataFrame:
    """`copies` real nights of flights as one night, with distinct flight numbers."""
    night = replay_parts("schedule", DAY)["flights"]
    return pd.concat(
        [night.assign(flight=night["flight"] + 10_000 * i) for i in range(copies)],
        ignore_index=True,
    )


# 3.2 s of CPU
@pytest.mark.slow
def test_chunked_parsing_gives_the_same_frame_and_counts_problems_across_chunks(monkeypatch):
    frame = big_night(5)
    data = frame.to_csv(index=False, lineterminator="\n").encode()
    whole = parse_stream(FLIGHTS, io.BytesIO(data), LIMITS)
    monkeypatch.setattr(parsing, "CHUNK_ROWS", 97)
    chunked = parse_stream(FLIGHTS, io.BytesIO(data), LIMITS)
    assert whole.problems == [] and chunked.rows == len(frame)
    pd.testing.assert_frame_equal(whole.frame, chunked.frame)

    # Two bad values, rows far apart (in different chunks): one problem, both counted.
    bad = frame.astype({"distance": object})
    bad.loc[[3, len(bad) - 2], "distance"] = ["far", "12x"]
    data = bad.to_csv(index=False, lineterminator="\n").encode()
    part = parse_stream(FLIGHTS, io.BytesIO(data), LIMITS)
    (problem,) = part.problems
    assert problem.unexpected_count == 2 and problem.examples == ["far", "12x"]
    assert part.frame is None


def test_the_checksum_is_still_the_sha256_of_the_files_bytes(tmp_path):
    paths = landed(tmp_path)
    expected = hashlib.sha256(
        Path(paths["flights"]).read_bytes() + Path(paths["weather"]).read_bytes()
    ).hexdigest()
    assert parse_batch("schedule", paths, LIMITS).checksum == expected
