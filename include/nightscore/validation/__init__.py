"""Validation of landed batches with Great Expectations (GX Core 1.x).

`validate_batch` parses a batch's CSV files strictly against `nightscore.contract`,
runs one expectation suite per part, optionally writes GX Data Docs, and returns a
`ValidationReport`. Nothing here imports GX or pandas at import time.
"""

from nightscore.validation.report import ExpectationOutcome, ReferenceData, ValidationReport
from nightscore.validation.runner import ParsedBatch, parse_batch, validate_batch

__all__ = [
    "ExpectationOutcome",
    "ParsedBatch",
    "ReferenceData",
    "ValidationReport",
    "parse_batch",
    "validate_batch",
]
