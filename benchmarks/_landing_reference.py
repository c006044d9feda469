"""The landing-file parser as it was before bounded input (a frozen copy, for
`benchmarks/landing.py` to measure against in the same run): the file is read whole,
every row is kept as a list of strings, and the header check is quadratic."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nightscore.contract import BatchFile, Column
from nightscore.validation.report import MAX_EXAMPLES, ExpectationOutcome

if TYPE_CHECKING:
    import pandas as pd

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


def parse_part(spec: BatchFile, raw: bytes | None, path: str | None = None) -> ParsedPart:
    """Parse one CSV file strictly against its contract; never raises on bad content.

    `raw` is None when the file does not exist.
    """
    name = spec.filename
    if raw is None:
        where = f" (expected at {path})" if path else f" (no path given for part '{spec.name}')"
        return unparseable(spec, f"{name} is missing{where}")
    if not raw:
        return unparseable(spec, f"{name} is empty (0 bytes)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        return unparseable(
            spec,
            f"{name} is not valid UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start} (line {line})",
            examples=[raw[max(0, exc.start - 10) : exc.start + 10].decode("utf-8", "replace")],
        )
    text = text.removeprefix("\ufeff")  # a byte-order mark from a spreadsheet export
    if not text.strip():
        return unparseable(spec, f"{name} has no header and no rows (only whitespace)")

    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
        records: list[tuple[int, list[str]]] = []  # (line number, fields)
        for fields in reader:
            if fields:  # blank lines carry nothing
                records.append((reader.line_num, fields))
    except csv.Error as exc:
        return unparseable(
            spec, f"{name} could not be read as CSV at line {reader.line_num}: {exc}"
        )

    delimiter = _other_delimiter(header)
    if delimiter:
        return unparseable(
            spec,
            f"{name} is not comma-separated: its header is {delimiter}-delimited "
            f"({header[0][:60]!r}...)",
            examples=[header[0][:200]],
        )
    problems = _header_problems(spec, header)
    if problems:
        return ParsedPart(frame=None, rows=len(records), problems=problems)
    if not records:
        return unparseable(spec, f"{name} has a header but no rows")

    problems = _shape_problems(spec, header, records, ends_with_newline=text.endswith("\n"))
    if problems:
        return ParsedPart(frame=None, rows=len(records), problems=problems)

    frame, problems = _typed_frame(spec, header, [r for _, r in records])
    return ParsedPart(frame=None if problems else frame, rows=len(records), problems=problems)


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
    duplicated = sorted({h for h in header if header.count(h) > 1})
    missing = [c for c in expected if c not in header]
    unexpected = [h for h in header if h not in expected]
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
        if position < len(header) and header[position] in unexpected:
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


def _shape_problems(
    spec: BatchFile,
    header: list[str],
    records: list[tuple[int, list[str]]],
    *,
    ends_with_newline: bool,
) -> list[ExpectationOutcome]:
    width = len(header)
    bad = [(line, len(fields)) for line, fields in records if len(fields) != width]
    if not bad:
        return []
    name = spec.filename
    last_line = records[-1][0]
    if len(bad) == 1 and bad[0][0] == last_line and bad[0][1] < width:
        # The classic partial upload: the writer stopped in the middle of the last row.
        note = "" if ends_with_newline else "; the file does not end with a newline"
        return [
            _problem(
                spec,
                f"{name}: the last line (line {last_line}) is truncated: "
                f"{bad[0][1]} of {width} fields{note}",
                examples=[",".join(records[-1][1])[:200]],
            )
        ]
    first_line, first_width = bad[0]
    return [
        _problem(
            spec,
            f"{name}: {len(bad)} line{'s have' if len(bad) > 1 else ' has'} the wrong number of "
            f"fields (expected {width}), e.g. line {first_line} has {first_width}",
            count=len(bad),
            examples=[f"line {line}: {n} fields" for line, n in bad[:MAX_EXAMPLES]],
        )
    ]


def _typed_frame(
    spec: BatchFile, header: list[str], rows: list[list[str]]
) -> tuple[pd.DataFrame, list[ExpectationOutcome]]:
    import pandas as pd

    text = pd.DataFrame(rows, columns=header, dtype=object)
    columns: dict[str, pd.Series] = {}
    problems: list[ExpectationOutcome] = []
    for column in spec.columns:
        raw = text[column.name]
        null = raw == ""
        converted, bad = _convert(column, raw.where(~null), null)
        columns[column.name] = converted
        if bad.any():
            values = list(dict.fromkeys(raw[bad]))
            n = int(bad.sum())
            problems.append(
                _problem(
                    spec,
                    f"{spec.filename}: {n} value{'s' if n > 1 else ''} in column '{column.name}' "
                    f"{'are' if n > 1 else 'is'} not {_TYPE_NOUNS[column.type]}, e.g. "
                    + ", ".join(repr(v) for v in values[:3]),
                    column=column.name,
                    count=n,
                    examples=values,
                )
            )
    return pd.DataFrame(columns), problems


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
