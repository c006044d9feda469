"""The champion/challenger gate: a challenger becomes champion only through here.

The challenger and the champion are scored on the same most recent labelled days before
the cut-off. The challenger is promoted when its ROC AUC clears the floor and is at most
`margin` below the champion's. Every decision is a row of `ml.model_decisions` and tags on
the MLflow version and run; only `enforce` mode moves the `champion` alias.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from nightscore import registry, sql
from nightscore.calendar import days_before
from nightscore.config import Settings
from nightscore.errors import DataError
from nightscore.features import LABEL, build_features, labelled
from nightscore.metrics import Metrics, classification_metrics, fmt

if TYPE_CHECKING:
    import pandas as pd

    from nightscore.model import LoadedModel

GATE_METRIC = "roc_auc"


class GateError(DataError):
    """The gate cannot compare the models: its window has no labelled flights."""


@dataclass(frozen=True)
class Decision:
    decision: str  # promote | reject
    applied: bool
    reason: str
    challenger_version: int
    champion_version: int | None
    challenger_metrics: Metrics
    champion_metrics: Metrics | None
    window: tuple[date, date]
    mode: str

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["window"] = [d.isoformat() for d in self.window]
        return data


def decide(
    challenger: Metrics,
    champion: Metrics | None,
    *,
    floor: float,
    margin: float,
) -> tuple[str, str]:
    """The gate's rule on one metric (ROC AUC): (decision, reason). Pure, for the tests."""
    value = challenger[GATE_METRIC]
    if value is None or not value >= floor:  # undefined (one class) or NaN fails too
        return "reject", f"challenger {GATE_METRIC} {fmt(value)} is below the floor {floor:.4f}"
    if champion is None or champion[GATE_METRIC] is None:
        return "promote", (
            f"no champion yet; challenger {GATE_METRIC} {value:.4f} clears the floor {floor:.4f}"
        )
    best = champion[GATE_METRIC]
    if value >= best - margin:
        return "promote", (
            f"challenger {GATE_METRIC} {value:.4f} vs champion {best:.4f}: within the margin "
            f"{margin:.4f} or better"
        )
    return "reject", (
        f"challenger {GATE_METRIC} {value:.4f} is worse than the champion's {best:.4f} by "
        f"more than the margin {margin:.4f}"
    )


def window(cutoff: date, settings: Settings) -> tuple[date, date]:
    """The most recent labelled days before the cut-off: where the gate compares models."""
    return days_before(cutoff, settings.validation_days)


def gate_challenger(
    challenger: registry.ModelRef,
    cutoff: date,
    settings: Settings,
    *,
    trigger: str = "",
    airflow_run_id: str | None = None,
) -> Decision:
    """Put a registered challenger through the gate on the days before `cutoff`."""
    from nightscore.warehouse.db import engine_for

    first, last = window(cutoff, settings)
    frame = labelled(build_features(engine_for(settings), first, last))
    return run_gate(
        settings, challenger, frame, cutoff=cutoff, trigger=trigger, airflow_run_id=airflow_run_id
    )


def run_gate(
    settings: Settings,
    challenger: registry.ModelRef,
    window_frame: pd.DataFrame,
    *,
    cutoff: date | None = None,
    trigger: str = "",
    airflow_run_id: str | None = None,
) -> Decision:
    """Score the challenger and the champion on the same labelled window, decide, record
    the decision, and in `enforce` mode move the `champion` alias on a promotion."""
    frame = window_frame[window_frame[LABEL].notna()]
    if frame.empty:
        raise GateError("the gate's window has no labelled flights")
    days = (min(frame["service_date"]), max(frame["service_date"]))
    y = frame[LABEL].astype(int).to_numpy()

    # By number, not alias: another training may have registered a newer challenger.
    new = registry.load_version(settings, challenger.version)
    new_metrics = classification_metrics(y, new.predict(frame), new.threshold)
    current: LoadedModel | None
    try:
        current = registry.load_model(settings, alias=registry.CHAMPION)
    except registry.NoChampionError:
        current = None
    old_metrics = None
    if current is not None:
        old_metrics = classification_metrics(y, current.predict(frame), current.threshold)
    decision, reason = decide(
        new_metrics, old_metrics, floor=settings.gate_floor_roc_auc, margin=settings.gate_margin
    )
    applied = decision == "promote" and settings.gate_mode == "enforce"
    if settings.gate_mode == "dry_run":
        reason += " (dry run: the champion alias was not changed)"
    result = Decision(
        decision=decision,
        applied=applied,
        reason=reason,
        challenger_version=new.version,
        champion_version=current.version if current else None,
        challenger_metrics=new_metrics,
        champion_metrics=old_metrics,
        window=days,
        mode=settings.gate_mode,
    )
    _record(settings, result, challenger, cutoff, trigger, airflow_run_id)
    if applied:
        registry.set_alias(settings, registry.CHAMPION, new.version)
    registry.tag_version(
        settings,
        challenger,
        {
            "gate.decision": decision,
            "gate.applied": str(applied).lower(),
            "gate.reason": reason,
            "gate.mode": settings.gate_mode,
            "gate.window": f"{days[0]}..{days[1]}",
            f"gate.{GATE_METRIC}": fmt(new_metrics[GATE_METRIC]),
        },
    )
    return result


def _record(
    settings: Settings,
    result: Decision,
    challenger: registry.ModelRef,
    cutoff: date | None,
    trigger: str,
    airflow_run_id: str | None,
) -> None:
    """The decision's row of `ml.model_decisions` (written from here alone)."""
    from sqlalchemy import text

    from nightscore.warehouse.db import engine_for

    with engine_for(settings).begin() as conn:
        conn.execute(
            text(sql.load("ml/record_decision")),
            {
                "model_name": settings.model_name,
                "challenger_version": result.challenger_version,
                "challenger_run_id": challenger.run_id,
                "champion_version": result.champion_version,
                "decision": result.decision,
                "applied": result.applied,
                "mode": result.mode,
                "reason": result.reason,
                "metric": GATE_METRIC,
                "challenger_metrics": json.dumps(result.challenger_metrics),
                "champion_metrics": (
                    json.dumps(result.champion_metrics) if result.champion_metrics else None
                ),
                "window_start": result.window[0],
                "window_end": result.window[1],
                "floor": settings.gate_floor_roc_auc,
                "margin": settings.gate_margin,
                "training_cutoff": cutoff,
                "trigger": trigger or "manual",
                "airflow_run_id": airflow_run_id,
            },
        )
