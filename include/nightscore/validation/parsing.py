"""Strict, file-level parsing of a batch's CSV files against the contract.

This runs before Great Expectations: a file that cannot be read the way the contract
says never reaches GX, and each way it can be malformed becomes one specific message
(missing, empty, not UTF-8, wrong delimiter, wrong columns, truncated, wrong types)
instead of a traceback. Values are read as text first and converted per logical type,
so that the values that fail to convert can be counted and shown.

Every file is read in bounded memory and time, whatever its shape: the batch's size is
checked before anything is read (`InputLimits`, from the NIGHTSCORE_MAX_* settings), a
line is read at most `max_line_bytes` at a time, the header's width is capped before it
is checked (with sets: linear), and rows become typed columns a chunk at a time.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from nightscore.contract import BatchFile, Column
from nightscore.validation.report import MAX_EXAMPLES, ExpectationOutcome

if TYPE_CHECKING:
    import pandas as pd

    from nightscore.config import Settings

# What a spreadsheet or another exporter might have used instead of a comma.
_OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}

_INT = r"[+-]?\d+"
_DATE = r"\d{4}-\d{2}-\d{2}"
# ISO 8601 with an explicit offset: a timestamp without one is ambiguous across DST.
_TIMESTAMP = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)"

_TYPE_NOUNS = {
    "int": "integers",
    "float": "numbers",
    "bool": "true/false",
    "date": "ISO dates (YYYY-MM-DD)",
    "timestamp": "ISO 8601 timestamps with a UTC offset",
}


@dataclass
class ParsedPart:
    """One file of a batch after parsing: a typed frame, or the problems that prevent one."""

    frame: pd.DataFrame | None
    rows: int
    problems: list[ExpectationOutcome] = field(default_factory=list)


@dataclass(frozen=True)
class InputLimits:
    """How big a landing file may be. A file over a limit is rejected whole, unparsed."""

    max_batch_bytes: int  # all the files of a batch together
    max_columns: int  # fields in a header
    max_line_bytes: int  # one line of a file

    @classmethod
    def from_settings(cls, settings: Settings) -> InputLimits:
        return cls(
            max_batch_bytes=settings.max_batch_bytes,
            max_columns=settings.max_batch_columns,
            max_line_bytes=settings.max_line_bytes,
        )


# Rows converted to typed columns at a time: the text of one chunk is all that is ever
# held as Python strings (a few MB), whatever the size of the file.
CHUNK_ROWS = 20_000


class _Unreadable(Exception):
    """A line of the file that stops the read: too long, or not UTF-8."""

    def __init__(self, description: str, examples: list | None = None):
        super().__init__(description)
        self.description = description
        self.examples = examples or []


@dataclass
class _Lines:
    """The lines of a binary stream, decoded one by one, each read with a bounded size."""

    stream: IO[bytes]
    name: str
    limit: int
    digest: Any = None  # a hashlib object that sees every byte read, when given
    bytes_read: int = 0
    lines: int = 0
    ends_with_newline: bool = True
    complete: bool = False  # the whole stream was read

    def __iter__(self) -> Iterator[str]:
        while True:
            raw = self.stream.readline(self.limit + 1)
            if not raw:
                self.complete = True
                return
            if self.digest is not None:
                self.digest.update(raw)
            start = self.bytes_read
            self.bytes_read += len(raw)
            self.lines += 1
            if len(raw) > self.limit:
                raise _Unreadable(
                    f"{self.name}: line {self.lines} is longer than the limit "
                    f"NIGHTSCORE_MAX_LINE_BYTES={self.limit:,} bytes; the file was not read further",
                    examples=[raw[:60].decode("utf-8", "replace") + "..."],
                )
            self.ends_with_newline = raw.endswith(b"\n")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _Unreadable(
                    f"{self.name} is not valid UTF-8: byte 0x{raw[exc.start]:02x} at offset "
                    f"{start + exc.start} (line {self.lines})",
                    examples=[
                        raw[max(0, exc.start - 10) : exc.start + 10].decode("utf-8", "replace")
                    ],
                ) from None
            if self.lines == 1:
                text = text.removeprefix("\ufeff")  # a byte-order mark from a spreadsheet export
            yield text


def parse_part(
    spec: BatchFile,
    raw: bytes | None,
    path: str | None = None,
    limits: InputLimits | None = None,
) -> ParsedPart:
    """Parse one CSV file, given as bytes, strictly against its contract; never raises on
    bad content. `raw` is None when the file does not exist."""
    if raw is None:
        where = f" (expected at {path})" if path else f" (no path given for part '{spec.name}')"
        return unparseable(spec, f"{spec.filename} is missing{where}")
    return parse_stream(spec, io.BytesIO(raw), limits or default_limits())


def default_limits() -> InputLimits:
    from nightscore.config import load_settings

    return InputLimits.from_settings(load_settings())


def parse_stream(
    spec: BatchFile, stream: IO[bytes], limits: InputLimits, digest: Any = None
) -> ParsedPart:
    """Parse one CSV file from a binary stream, in bounded memory and linear time.

    Lines are read one at a time (each at most `limits.max_line_bytes`), rows are
    converted to typed columns `CHUNK_ROWS` at a time, and the header is checked with
    sets. `digest` (a hashlib object) sees every byte read. Never raises on bad content.
    """
    name = spec.filename
    lines = _Lines(stream, name, limits.max_line_bytes, digest)
    reader = csv.reader(iter(lines), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            return unparseable(spec, f"{name} is empty (0 bytes)")
        if len(header) > limits.max_columns:
            return unparseable(
                spec,
                f"{name}: {len(header):,} columns, over the limit "
                f"NIGHTSCORE_MAX_BATCH_COLUMNS={limits.max_columns:,}; the file was not read further",
                examples=header[:MAX_EXAMPLES],
            )
        if not any(h.strip() for h in header):
            rest = next((fields for fields in reader if any(f.strip() for f in fields)), None)
            if rest is None:
                return unparseable(spec, f"{name} has no header and no rows (only whitespace)")
        delimiter = _other_delimiter(header)
        if delimiter:
            return unparseable(
                spec,
                f"{name} is not comma-separated: its header is {delimiter}-delimited "
                f"({header[0][:60]!r}...)",
                examples=[header[0][:200]],
            )
        problems = _header_problems(spec, header)
        body = _Body(spec, header)
        for fields in reader:
            if fields:  # blank lines carry nothing
                body.add(reader.line_num, fields, convert=not problems)
    except _Unreadable as exc:
        return unparseable(spec, exc.description, examples=exc.examples)
    except csv.Error as exc:
        return unparseable(
            spec, f"{name} could not be read as CSV at line {reader.line_num}: {exc}"
        )
    if problems:
        return ParsedPart(frame=None, rows=body.rows, problems=problems)
    if not body.rows:
        return unparseable(spec, f"{name} has a header but no rows")
    problems = body.shape_problems(ends_with_newline=lines.ends_with_newline)
    if problems:
        return ParsedPart(frame=None, rows=body.rows, problems=problems)
    frame, problems = body.finish()
    return ParsedPart(frame=None if problems else frame, rows=body.rows, problems=problems)


def unparseable(spec: BatchFile, description: str, examples: list | None = None) -> ParsedPart:
    """A part that could not be parsed, with the one problem that says why."""
    return ParsedPart(frame=None, rows=0, problems=[_problem(spec, description, examples=examples)])


def _problem(
    spec: BatchFile,
    description: str,
    *,
    column: str | None = None,
    count: int = 1,
    examples: list | None = None,
) -> ExpectationOutcome:
    return ExpectationOutcome(
        part=spec.name,
        expectation="parse",
        column=column,
        critical=True,
        success=False,
        unexpected_count=count,
        examples=list(examples or [])[:MAX_EXAMPLES],
        description=description,
    )


def _quoted(names: list[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _other_delimiter(header: list[str]) -> str | None:
    """The name of the delimiter a one-column header was really split by, if any."""
    if len(header) == 1:
        for delimiter, label in _OTHER_DELIMITERS.items():
            if delimiter in header[0]:
                return label
    return None


def _header_problems(spec: BatchFile, header: list[str]) -> list[ExpectationOutcome]:
    name = spec.filename
    expected = spec.column_names
    # Sets and counters, not list scans: linear in the header's width, which is bounded
    # only by NIGHTSCORE_MAX_BATCH_COLUMNS.
    expected_set, present = set(expected), set(header)
    duplicated = sorted(h for h, n in Counter(header).items() if n > 1)
    missing = [c for c in expected if c not in present]
    unexpected = [h for h in header if h not in expected_set]
    problems = []
    if duplicated:
        problems.append(
            _problem(spec, f"{name} repeats column {_quoted(duplicated)}", examples=duplicated)
        )
    if missing and len(missing) == len(expected):
        problems.append(
            _problem(
                spec,
                f"{name} has no recognisable header: expected {','.join(expected)!r}, "
                f"found {','.join(header)[:200]!r}",
                count=len(missing),
                examples=header,
            )
        )
        return problems
    # A column found where a missing one belongs was most likely renamed: say so.
    renamed: list[tuple[str, str]] = []
    for column in missing:
        position = expected.index(column)
        if position < len(header) and header[position] not in expected_set:
            renamed.append((column, header[position]))
    renamed_from = {found for _, found in renamed}
    renamed_to = {wanted for wanted, _ in renamed}
    for wanted, found in renamed:
        problems.append(
            _problem(
                spec,
                f"{name}: expected column '{wanted}', found '{found}'",
                column=wanted,
                examples=[found],
            )
        )
    still_missing = [c for c in missing if c not in renamed_to]
    extra = [h for h in unexpected if h not in renamed_from]
    if still_missing:
        problems.append(
            _problem(
                spec,
                f"{name} is missing column{'s' if len(still_missing) > 1 else ''} {_quoted(still_missing)}",
                count=len(still_missing),
                examples=still_missing,
            )
        )
    if extra:
        problems.append(
            _problem(
                spec,
                f"{name} has unexpected column{'s' if len(extra) > 1 else ''} {_quoted(extra)}",
                count=len(extra),
                examples=extra,
            )
        )
    return problems


class _Body:
    """The rows of a file as they stream past: counted, checked for width, and converted
    to typed columns a chunk at a time. Only a few examples of each problem are kept."""

    def __init__(self, spec: BatchFile, header: list[str]):
        self.spec, self.header, self.width = spec, header, len(header)
        self.rows = 0
        self.bad_widths: list[tuple[int, int]] = []  # (line, fields): the first few
        self.bad_count = 0
        self.last_line: int = 0
        self.last_fields: list[str] = []
        self.last_bad = False
        self.pending: list[list[str]] = []
        self.frames: list[pd.DataFrame] = []
        self.type_errors: dict[str, tuple[int, list]] = {}  # column -> (count, examples)

    def add(self, line: int, fields: list[str], *, convert: bool) -> None:
        self.rows += 1
        self.last_line, self.last_fields = line, fields
        if len(fields) == self.width:
            self.last_bad = False
            if convert and not self.bad_count:
                self.pending.append(fields)
                if len(self.pending) >= CHUNK_ROWS:
                    self._convert_pending()
            return
        self.last_bad = True
        self.bad_count += 1
        if len(self.bad_widths) < MAX_EXAMPLES:
            self.bad_widths.append((line, len(fields)))

    def shape_problems(self, *, ends_with_newline: bool) -> list[ExpectationOutcome]:
        if not self.bad_count:
            return []
        spec, width = self.spec, self.width
        name = spec.filename
        last_line, last_fields = self.last_line, self.last_fields
        if self.bad_count == 1 and self.last_bad and len(last_fields) < width:
            # The classic partial upload: the writer stopped in the middle of the last row.
            note = "" if ends_with_newline else "; the file does not end with a newline"
            return [
                _problem(
                    spec,
                    f"{name}: the last line (line {last_line}) is truncated: "
                    f"{len(last_fields)} of {width} fields{note}",
                    examples=[",".join(last_fields)[:200]],
                )
            ]
        n = self.bad_count
        first_line, first_width = self.bad_widths[0]
        return [
            _problem(
                spec,
                f"{name}: {n} line{'s have' if n > 1 else ' has'} the wrong number of "
                f"fields (expected {width}), e.g. line {first_line} has {first_width}",
                count=n,
                examples=[f"line {line}: {k} fields" for line, k in self.bad_widths],
            )
        ]

    def finish(self) -> tuple[pd.DataFrame | None, list[ExpectationOutcome]]:
        """The typed frame of all rows (None when values failed to convert), and the
        type problems, one per column."""
        import pandas as pd

        self._convert_pending()
        problems = []
        for column in self.spec.columns:
            if column.name not in self.type_errors:
                continue
            n, values = self.type_errors[column.name]
            problems.append(
                _problem(
                    self.spec,
                    f"{self.spec.filename}: {n} value{'s' if n > 1 else ''} in column "
                    f"'{column.name}' {'are' if n > 1 else 'is'} not {_TYPE_NOUNS[column.type]}, e.g. "
                    + ", ".join(repr(v) for v in values[:3]),
                    column=column.name,
                    count=n,
                    examples=values,
                )
            )
        if problems or not self.frames:
            return None, problems
        frame = (
            self.frames[0] if len(self.frames) == 1 else pd.concat(self.frames, ignore_index=True)
        )
        self.frames = []
        return frame, problems

    def _convert_pending(self) -> None:
        if not self.pending:
            return
        frame, errors = _typed_chunk(self.spec, self.header, self.pending)
        self.pending = []
        for column, (n, values) in errors.items():
            count, examples = self.type_errors.get(column, (0, []))
            examples = list(dict.fromkeys([*examples, *values]))[:MAX_EXAMPLES]
            self.type_errors[column] = (count + n, examples)
        if not self.type_errors:  # once a value is bad no frame is returned: stop keeping them
            self.frames.append(frame)


def _typed_chunk(
    spec: BatchFile, header: list[str], rows: list[list[str]]
) -> tuple[pd.DataFrame, dict[str, tuple[int, list]]]:
    """A chunk of rows as a typed frame, and per column the count and a few of the values
    that failed to convert."""
    import pandas as pd

    text = pd.DataFrame(rows, columns=header, dtype=object)
    columns: dict[str, pd.Series] = {}
    errors: dict[str, tuple[int, list]] = {}
    for column in spec.columns:
        raw = text[column.name]
        null = raw == ""
        converted, bad = _convert(column, raw.where(~null), null)
        columns[column.name] = converted
        if bad.any():
            values = list(dict.fromkeys(raw[bad].head(MAX_EXAMPLES * 20)))[:MAX_EXAMPLES]
            errors[column.name] = (int(bad.sum()), values)
    return pd.DataFrame(columns), errors


def _convert(column: Column, values: pd.Series, null: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Convert text to the column's logical type; returns (converted, mask of bad values)."""
    import numpy as np
    import pandas as pd

    present = ~null
    if column.type == "str":
        return values.astype(object).where(present, None), present & False
    if column.type == "int":
        ok = values.fillna("").str.fullmatch(_INT)
        converted = pd.to_numeric(values.where(ok), errors="coerce").astype("Int64")
        return converted, present & ~ok
    if column.type == "float":
        converted = pd.to_numeric(values, errors="coerce").astype("float64")
        ok = converted.notna() & np.isfinite(converted.fillna(0.0))
        return converted.where(ok), present & ~ok
    if column.type == "bool":
        lower = values.str.lower()
        ok = lower.isin(["true", "false"])
        return lower.map({"true": True, "false": False}).astype("boolean"), present & ~ok
    if column.type == "date":
        ok = values.fillna("").str.fullmatch(_DATE)
        parsed = pd.to_datetime(values.where(ok), format="%Y-%m-%d", errors="coerce")
        converted = parsed.dt.date.astype(object).where(parsed.notna(), None)
        return converted, present & parsed.isna()
    if column.type == "timestamp":
        ok = values.fillna("").str.fullmatch(_TIMESTAMP)
        parsed = pd.to_datetime(values.where(ok), utc=True, format="ISO8601", errors="coerce")
        return parsed, present & parsed.isna()
    raise ValueError(f"unknown logical type {column.type!r} for column {column.name!r}")
