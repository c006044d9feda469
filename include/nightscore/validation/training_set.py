"""Great Expectations checks on a training set, before any model is fitted.

The label must be present and binary, the classes balanced within bounds (a window
where almost nothing, or almost everything, is disrupted means broken outcomes, not a
quiet month), and the features inside their physical or logical ranges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nightscore.features import CATEGORICAL, HISTORY_FEATURES, LABEL

if TYPE_CHECKING:
    import pandas as pd

# The disruption rate of 2013 is 26.6 %, between 15 % (September) and 36 % (July) by
# month; a training window outside these bounds is suspect.
CLASS_BALANCE = (0.05, 0.60)
MIN_ROWS = 1000

FEATURE_RANGES: dict[str, tuple[float, float]] = {
    "month": (1, 12),
    "day_of_week": (1, 7),
    "dep_hour": (0, 23),
    "dep_minute": (0, 59),
    "arr_hour": (0, 23),
    "distance": (1, 6000),
    "days_to_holiday": (0, 366),
    "plane_age": (0, 80),
    "plane_known": (0, 1),
    "humid": (0, 100),
    "visib": (0, 100),
    "wind_speed": (0, 200),
    "precip": (0, 10),
    "day_precip": (0, 100),
    **{name: (0, 1) for name in HISTORY_FEATURES if name.endswith("_rate")},
}


@dataclass(frozen=True)
class TrainingSetCheck:
    expectation: str
    success: bool
    detail: str


def check_training_set(frame: pd.DataFrame) -> list[TrainingSetCheck]:
    """Run the suite; every check's outcome, failures first."""
    from nightscore.validation._gx import ephemeral_context, import_gx

    gx = import_gx()
    gxe = gx.expectations

    expectations: list[Any] = [
        gxe.ExpectTableRowCountToBeBetween(min_value=MIN_ROWS),
        gxe.ExpectColumnValuesToNotBeNull(column=LABEL),
        gxe.ExpectColumnValuesToBeInSet(column=LABEL, value_set=[0, 1]),
        gxe.ExpectColumnMeanToBeBetween(
            column=LABEL, min_value=CLASS_BALANCE[0], max_value=CLASS_BALANCE[1]
        ),
        *(gxe.ExpectColumnValuesToNotBeNull(column=c) for c in ("service_date", *CATEGORICAL)),
        *(
            gxe.ExpectColumnValuesToBeBetween(column=c, min_value=lo, max_value=hi)
            for c, (lo, hi) in FEATURE_RANGES.items()
        ),
    ]
    context = ephemeral_context()
    data = frame.copy()
    data[LABEL] = data[LABEL].astype("float64")  # nullable Int8 trips GX's set checks
    batch = (
        context.data_sources.add_pandas("training")
        .add_dataframe_asset("training_set")
        .add_batch_definition_whole_dataframe("window")
        .get_batch(batch_parameters={"dataframe": data})
    )
    suite = context.suites.add(gx.ExpectationSuite(name="training_set", expectations=expectations))
    result = batch.validate(suite, result_format="SUMMARY")
    checks = []
    for r in result.results:
        config = r.expectation_config
        column = config.kwargs.get("column", "table")
        details = r.result or {}
        if "observed_value" in details:
            detail = f"observed {details['observed_value']}"
        else:
            examples = details.get("partial_unexpected_list", [])[:5]
            detail = f"{details.get('unexpected_count', 0)} bad rows, e.g. {examples}"
        checks.append(TrainingSetCheck(f"{config.type}({column})", bool(r.success), detail))
    return sorted(checks, key=lambda c: c.success)
