"""The monitoring job for one service date S, once S's outcomes are loaded: the `monitoring`
DAG runs it step by step, `nightscore monitor` in one go.

1. `measure_performance`: how each model version that scored S fared (`performance`).
2. `measure_drift`: S's features and scores against the reference sample the scoring
   model was trained with (Evidently), stored per column; the day's HTML report; a
   snapshot in the Evidently workspace, so `evidently ui` shows the trend.
3. `check_rules`: the alert rules (`rules`) on the day's numbers; breaches go to the
   outbox (with cooldown), every check to `monitoring.rule_checks`.
4. `retrain_request`: a rule marked `retrain` breached on enough recent days asks for a
   retrain, recorded in `monitoring.retrain_triggers`.

A re-run for S is safe: performance, drift and rule checks replace what was written for S
before, an alert already queued for S is not queued again (its dedup key), and a retrain
already asked for S is returned, not asked for again.

The steps live in `performance`, `monitor_drift` (2) and `monitor_rules` (3, 4); this
module has step 1 (`measure_performance`), `monitor` (all four) and `outcomes_settled`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from nightscore.monitoring.monitor_drift import DriftSummary, measure_drift
from nightscore.monitoring.monitor_rules import (
    RetrainRequest,
    RuleCheck,
    check_rules,
    retrain_request,
)

if TYPE_CHECKING:
    from nightscore.config import Settings
    from nightscore.monitoring.performance import PerformanceRow

logger = logging.getLogger(__name__)


# --- 1. performance -------------------------------------------------------------------


def measure_performance(service_date: date, settings: Settings) -> list[PerformanceRow]:
    """S's performance rows, stored; empty when S has no outcomes (rejected, say)."""
    from nightscore.monitoring.performance import NothingToMeasure, measure

    try:
        return measure(service_date, settings)
    except NothingToMeasure as exc:
        logger.warning("performance of %s: %s", service_date, exc)
        return []


# --- all of it ------------------------------------------------------------------------------


@dataclass
class MonitorResult:
    service_date: date
    performance: list[PerformanceRow]
    drift: list[DriftSummary]
    checks: list[RuleCheck]
    retrain: RetrainRequest | None

    @property
    def summary(self) -> str:
        lines = [f"monitoring of {self.service_date}:"]
        overall = [r for r in self.performance if r.segment_type == "all"]
        for row in overall:
            m = row.metrics
            lines.append(
                f"  performance {row.model_name} v{row.model_version}: {m['rows']:,} flights, "
                f"ROC AUC {_num(m['roc_auc'])}, precision {_num(m['precision'])}, "
                f"recall {_num(m['recall'])}"
            )
        if not overall:
            lines.append("  performance: no outcomes to measure against")
        for d in self.drift:
            lines.append(
                f"  drift {d.model_name} v{d.model_version}: {d.share_drifted:.0%} of monitored "
                f"features drifted ({', '.join(d.drifted_columns) or 'none'}); mean score "
                f"{d.mean_score:.3f} vs {d.reference_mean_score:.3f} in the reference"
            )
            if d.report_url:
                lines.append(f"  report: {d.report_url}")
        lines += [f"  rule {c.line}" for c in self.checks]
        if self.retrain:
            lines.append(f"  retrain requested: {self.retrain.reason}")
        return "\n".join(lines)


def _num(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{value:.3f}"


def monitor(
    service_date: date,
    settings: Settings,
    *,
    html: bool = True,
    workspace: bool = True,
    run_url: str | None = None,
) -> MonitorResult:
    """Steps 1 to 4 for S, as the DAG runs them."""
    performance = measure_performance(service_date, settings)
    drift = measure_drift(service_date, settings, html=html, workspace=workspace)
    checks = check_rules(service_date, settings, run_url=run_url)
    return MonitorResult(
        service_date, performance, drift, checks, retrain_request(service_date, settings)
    )


def outcomes_settled(service_date: date, settings: Settings) -> bool:
    """True once S's outcomes batch is loaded or rejected: monitoring can run (a rejected
    batch leaves no performance to measure, but drift and the alert still matter)."""
    from nightscore.warehouse.batches import settled
    from nightscore.warehouse.db import engine_for

    with engine_for(settings).connect() as conn:
        return settled(conn, "outcomes", service_date)
