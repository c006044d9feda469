"""Validate one landed batch: parse its files strictly, then run the GX suites.

A batch is rejected whole when any critical expectation fails; the report
says what failed, with examples, and is what the ingestion task records and raises.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from nightscore import store
from nightscore.contract import BATCH_FILES, BatchKind
from nightscore.validation.docs import batch_docs_location, publish_docs
from nightscore.validation.parsing import (
    InputLimits,
    ParsedPart,
    default_limits,
    parse_stream,
    unparseable,
)
from nightscore.validation.report import (
    MAX_EXAMPLES,
    ExpectationOutcome,
    ReferenceData,
    ValidationReport,
    to_jsonable,
)
from nightscore.validation.suites import (
    EXAMPLE_KEYS,
    build_suite,
    flight_label,
    gx_frame,
    result_format,
)

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)


def validate_batch(
    kind: BatchKind,
    service_date: date,
    paths: dict[str, str],
    reference: ReferenceData,
    *,
    data_docs_root: str | None = None,
    row_count_band: float = 0.5,
    limits: InputLimits | None = None,
) -> ValidationReport:
    """Validate the files of a `kind` batch for `service_date`; never raises on bad data.

    `paths` maps part name to a location in the store. When `data_docs_root` is given,
    the batch's validation page is written below it (`validation.docs`), and the report
    holds its store location (`data_docs_location`; the caller makes its link).
    """
    parsed = parse_batch(kind, paths, limits)
    report = ValidationReport(
        kind=kind,
        service_date=service_date,
        checksum=parsed.checksum,
        rows={name: p.rows for name, p in parsed.parts.items()},
        outcomes=[problem for p in parsed.parts.values() for problem in p.problems],
        frames=parsed.frames,
    )
    ready = {name: p.frame for name, p in parsed.parts.items() if p.frame is not None}
    if ready:
        # Parts that parsed are still validated when another part did not, so that one
        # report shows everything that is wrong with the batch.
        from nightscore.validation._gx import ephemeral_context

        context = ephemeral_context()
        run_name = f"{kind}-{service_date.isoformat()}"  # names the results in the context
        for part, frame in ready.items():
            report.outcomes.extend(
                _run_suite(context, part, frame, service_date, reference, row_count_band, run_name)
            )
    if data_docs_root:
        location = batch_docs_location(data_docs_root, kind, service_date, report.checksum)
        try:
            report.data_docs_location = publish_docs(location, report)
        except Exception:  # the verdict stands without its docs; never lose it to them
            logger.warning("could not write the validation page at %s", location, exc_info=True)
    return report


@dataclass
class ParsedBatch:
    """A batch's files read and parsed: the checksum of their bytes and each part."""

    checksum: str
    parts: dict[str, ParsedPart]

    @property
    def frames(self) -> dict[str, pd.DataFrame] | None:
        """The typed frames by part, or None when any part failed to parse."""
        frames = {name: p.frame for name, p in self.parts.items() if p.frame is not None}
        return frames if len(frames) == len(self.parts) else None


def parse_batch(kind: str, paths: dict[str, str], limits: InputLimits | None = None) -> ParsedBatch:
    """Read and parse a batch's files strictly, in bounded memory; never raises on bad
    content. A batch over `limits.max_batch_bytes` is rejected before any file is read.

    The loader calls this too, so what reaches `core` is parsed exactly as validated.
    """
    if kind not in BATCH_FILES:
        raise ValueError(f"unknown batch kind {kind!r}; expected one of {sorted(BATCH_FILES)}")
    limits = limits or default_limits()
    specs = BATCH_FILES[kind]  # contract order, which the checksum depends on
    sizes: dict[str, int | None] = {}
    parts: dict[str, ParsedPart] = {}
    for spec in specs:
        path = paths.get(spec.name)
        size, error = _size(path)
        sizes[spec.name] = size
        if error:
            parts[spec.name] = unparseable(spec, f"{spec.filename} could not be read: {error}")
        elif size is None:
            where = f" (expected at {path})" if path else f" (no path given for part '{spec.name}')"
            parts[spec.name] = unparseable(spec, f"{spec.filename} is missing{where}")
    total = sum(n for n in sizes.values() if n)
    if total > limits.max_batch_bytes:
        return _oversized(kind, specs, paths, sizes, total, limits, parts)
    # One digest over the files' bytes in contract order, fed as they stream past.
    checksum = hashlib.sha256()
    for spec in specs:
        if spec.name in parts:
            continue
        path = paths[spec.name]
        try:
            with store.open_read(path) as stream:
                parts[spec.name] = parse_stream(spec, stream, limits, checksum)
                # A read that stopped early (a line or header over its limit) still gets
                # a checksum of its own: what was read, and how much there is.
                if stream.read(1):
                    checksum.update(f"|partial of {sizes[spec.name]} bytes".encode())
        except FileNotFoundError:  # removed between the size check and the read
            parts[spec.name] = unparseable(spec, f"{spec.filename} is missing (expected at {path})")
        except (OSError, ValueError) as exc:  # an unreachable store raises StoreError
            parts[spec.name] = unparseable(
                spec, f"{spec.filename} could not be read: {type(exc).__name__}: {exc}"
            )
    return ParsedBatch(checksum=checksum.hexdigest(), parts={s.name: parts[s.name] for s in specs})


def _size(path: str | None) -> tuple[int | None, str | None]:
    """The file's size (None when it does not exist), or an error message."""
    if not path:
        return None, None
    try:
        return store.size(path), None
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as exc:  # a folder; an unreachable store raises StoreError
        return None, f"{type(exc).__name__}: {exc}"


def _oversized(
    kind: str,
    specs: tuple,
    paths: dict[str, str],
    sizes: dict[str, int | None],
    total: int,
    limits: InputLimits,
    parts: dict[str, ParsedPart],
) -> ParsedBatch:
    """A batch over the size limit: rejected whole, not one byte of it read."""
    files = ", ".join(f"{s.filename} {sizes[s.name]:,}" for s in specs if sizes[s.name])
    message = (
        f"{kind} batch: {total:,} bytes ({files}), over the limit "
        f"NIGHTSCORE_MAX_BATCH_BYTES={limits.max_batch_bytes:,}; it was not read"
    )
    first = next(s for s in specs if sizes[s.name])
    parts[first.name] = unparseable(first, message, examples=[total])
    for spec in specs:
        parts.setdefault(spec.name, ParsedPart(frame=None, rows=0))
    # The ledger needs a checksum: the batch's files and sizes stand in for their bytes.
    checksum = hashlib.sha256(
        "|".join(f"{paths.get(s.name)}:{sizes[s.name]}" for s in specs).encode()
    )
    return ParsedBatch(checksum=checksum.hexdigest(), parts={s.name: parts[s.name] for s in specs})


def _run_suite(
    context: Any,
    part: str,
    frame: pd.DataFrame,
    service_date: date,
    reference: ReferenceData,
    row_count_band: float,
    run_name: str,
) -> list[ExpectationOutcome]:
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    asset = context.data_sources.add_or_update_pandas("landing").add_dataframe_asset(part)
    batch_definition = asset.add_batch_definition_whole_dataframe("whole batch")
    suite = context.suites.add(
        build_suite(part, service_date, reference, row_count_band=row_count_band)
    )
    # A ValidationDefinition (rather than batch.validate) keeps the results in the
    # context, with the run name that identifies them.
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=part, data=batch_definition, suite=suite)
    )
    result = definition.run(
        batch_parameters={"dataframe": gx_frame(part, frame, reference)},
        result_format=result_format(part),
        run_id=RunIdentifier(run_name=run_name),
    )
    # GX groups results by column; report them in the order the suite lists them.
    order = {e.id: i for i, e in enumerate(suite.expectations)}
    results = sorted(result.results, key=lambda r: order.get(r.expectation_config.id, len(order)))
    return [_outcome(part, r) for r in results]


def _outcome(part: str, result: Any) -> ExpectationOutcome:
    config = result.expectation_config
    meta = config.meta or {}
    details = result.result or {}
    description = config.description or config.type
    exception = result.exception_info or {}
    success = bool(result.success)
    if exception.get("raised_exception"):
        success = False
        description += f" (could not be checked: {exception.get('exception_message')})"
    if "observed_value" in details and "unexpected_count" not in details:
        examples = [] if success else [details["observed_value"]]
    elif meta.get("examples") == "keys":
        rows = details.get("partial_unexpected_index_list") or details.get(
            "partial_unexpected_list", []
        )
        examples = [_row_label(part, row) for row in rows if isinstance(row, dict)]
    else:
        examples = list(details.get("partial_unexpected_list") or [])
    return ExpectationOutcome(
        part=part,
        expectation=config.type,
        column=meta.get("column") or config.kwargs.get("column"),
        critical=str(getattr(config.severity, "value", config.severity)) == "critical",
        success=success,
        unexpected_count=int(details.get("unexpected_count") or 0),
        examples=_distinct(examples),
        description=description,
    )


def _row_label(part: str, row: dict) -> str:
    """Name a row by its key: "UA 1545 EWR" for flights, "EWR 2013-02-12T08:00:00Z" for weather."""
    values = [to_jsonable(row.get(c)) for c in EXAMPLE_KEYS[part]]
    if part != "weather" and None not in values:
        try:
            return flight_label(*values)
        except (TypeError, ValueError):
            pass
    return " ".join("?" if v is None else str(v) for v in values)


def _distinct(values: list) -> list:
    seen: list = []
    for value in (to_jsonable(v) for v in values):
        if value not in seen:
            seen.append(value)
        if len(seen) == MAX_EXAMPLES:
            break
    return seen
