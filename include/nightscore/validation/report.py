"""What validation needs from the warehouse, and what it hands back.

Plain dataclasses with no heavy imports: the DAG files and the ingestion code can
import them at parse time.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

MAX_EXAMPLES = 5


@dataclass(frozen=True)
class ReferenceData:
    """Reference sets the caller fetches from the warehouse; validation never touches a DB."""

    carriers: frozenset[str]  # known airline codes
    airports: frozenset[str]  # known FAA codes (dests must be in it)
    # For outcomes: the (carrier, flight, origin) scheduled on that service date.
    scheduled_keys: frozenset[tuple] | None = None
    # Per part name: trailing average rows of loaded batches; missing = no history.
    trailing_rows: dict[str, float] | None = None
    # Per FAA code: (lat, lon, IANA time zone), each None when unknown; for the row rules.
    places: dict[str, tuple[float | None, float | None, str | None]] | None = None
    # For outcomes: (carrier, flight, origin) -> (dest, sched_dep_time, sched_arr_time,
    # distance) of the flights scheduled on that service date.
    schedule: dict[tuple, tuple] | None = None


@dataclass
class ExpectationOutcome:
    """The result of one expectation (or of parsing one file)."""

    part: str  # "flights" | "weather" | "outcomes" | "file"
    expectation: str  # the GX expectation type, or "parse" for file-level problems
    column: str | None
    critical: bool
    success: bool
    unexpected_count: int
    examples: list  # up to MAX_EXAMPLES bad values, JSON-serialisable
    description: str  # a short human phrase, e.g. "wind_speed within 0-200 mph"

    @property
    def label(self) -> str:
        """How the summary names this outcome, e.g. "weather.wind_speed within 0-200 mph"."""
        if self.expectation == "parse":
            return self.description  # parse messages name their file themselves
        if self.column and self.description.startswith(self.column):
            return f"{self.part}.{self.description}"
        return f"{self.part}: {self.description}"


@dataclass
class ValidationReport:
    """Everything known about one landed batch after validation."""

    kind: str
    service_date: date
    checksum: str  # sha256 hex over the raw bytes of the batch's files, in contract order
    rows: dict[str, int]  # rows per part (0 when unparseable)
    outcomes: list[ExpectationOutcome]
    frames: dict[str, pd.DataFrame] | None  # parsed, typed frames when parsing succeeded
    data_docs_location: str | None = None  # the Data Docs summary page in the store
    data_docs_url: str | None = None  # its public link (`links.file_url`)

    @property
    def success(self) -> bool:
        """True when no critical expectation failed."""
        return not self.failures

    @property
    def failures(self) -> list[ExpectationOutcome]:
        """Critical failures: any one rejects the batch."""
        return [o for o in self.outcomes if o.critical and not o.success]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        """Non-critical failures: recorded and reported, the batch still loads."""
        return [o for o in self.outcomes if not o.critical and not o.success]

    def summary(self) -> str:
        """A short, human, multi-line account of the verdict, for logs, alerts and ops."""
        head = f"{self.kind} batch for {self.service_date.isoformat()}"
        failures, warnings = self.failures, self.warnings
        if failures:
            n = len(failures)
            lines = [f"{head} REJECTED: {n} critical expectation{'' if n == 1 else 's'} failed"]
        else:
            met = sum(o.success for o in self.outcomes)
            rows = ", ".join(f"{part} {count} rows" for part, count in self.rows.items())
            lines = [f"{head} PASSED: {met} of {len(self.outcomes)} expectations met ({rows})"]
        lines += [f" - {_describe(o, self.rows)}" for o in failures]
        if warnings:
            lines.append(f"{len(warnings)} warning{'' if len(warnings) == 1 else 's'}:")
            lines += [f" - {_describe(o, self.rows)}" for o in warnings]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict without frames, for the ops.batches.validation column."""
        return {
            "kind": self.kind,
            "service_date": self.service_date.isoformat(),
            "checksum": self.checksum,
            "success": self.success,
            "rows": dict(self.rows),
            "failures": len(self.failures),
            "warnings": len(self.warnings),
            "summary": self.summary(),
            "data_docs_location": self.data_docs_location,
            "data_docs_url": self.data_docs_url,
            "outcomes": [
                {**asdict(o), "examples": [to_jsonable(v) for v in o.examples]}
                for o in self.outcomes
            ],
        }


def _describe(outcome: ExpectationOutcome, rows: dict[str, int]) -> str:
    text = outcome.label
    if outcome.expectation == "parse":
        return text
    if outcome.expectation.startswith("expect_table_"):  # a whole-table measure
        if outcome.examples:
            text += f": observed {format_value(outcome.examples[0])}"
        return text
    if outcome.unexpected_count:
        total = rows.get(outcome.part)
        of = f" of {total}" if total is not None else ""
        noun = "row" if outcome.unexpected_count == 1 and not of else "rows"
        text += f": {outcome.unexpected_count}{of} {noun}"
    if outcome.examples:
        text += (": " if not outcome.unexpected_count else ", ") + "e.g. "
        text += ", ".join(format_value(v) for v in outcome.examples[:3])
    return text


def format_value(value: Any) -> str:
    """A value as a person wants to read it in a one-line summary."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str):
        return value
    return str(to_jsonable(value))


def to_jsonable(value: Any) -> Any:
    """Numpy, pandas and datetime values as plain JSON types (NaN and NA become None)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):  # pandas Timestamp
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return to_jsonable(value.item())
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError, ImportError):
        pass
    return str(value)
