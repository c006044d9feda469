"""Step 2 of the monitoring job (`monitor`): the drift of service date S.

S's features and scores, for each model version that scored S, against the reference
sample that version was trained with (Evidently, `drift.evidently_drift`; for a night of
more than SAMPLE_ROWS flights, the same tests by the streaming path, `drift_fast`, and
Evidently's page and snapshot from a sample of SAMPLE_ROWS), stored per
column in `monitoring.drift` and summarised in `monitoring.drift_runs`. The champion's
(the version that scored most flights) also gets the day's HTML report in the store
(`{reports_dir}/drift/`), recorded in `monitoring.reports` with its public link, and a
snapshot in the Evidently workspace, so `evidently ui` shows the trend. The workspace is
a folder in the store too: Evidently opens it through fsspec, so `s3://...` works as a
local folder does. A re-run replaces what it wrote for S.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, text

from nightscore import links, sql, store
from nightscore.errors import DataError
from nightscore.features import FEATURES, KEY_COLUMNS
from nightscore.monitoring.report_store import record_report

if TYPE_CHECKING:
    import pandas as pd

    from nightscore.config import Settings
    from nightscore.monitoring.drift_methods import DriftResult

# Constant within a day by construction (the whole batch has one month, one weekday): they
# always "drift" from a reference spread over months, so they are stored, not counted.
CALENDAR_COLUMNS = ("month", "day_of_week", "days_to_holiday")
EVIDENTLY_PROJECT = "nightscore"


class NothingScored(DataError, LookupError):
    """No predictions for the service date: nothing to monitor."""


@dataclass(frozen=True)
class ScoredVersion:
    model_name: str
    model_version: int
    mlflow_run_id: str
    rows: int


def scored_versions(conn: Connection, service_date: date, model_name: str) -> list[ScoredVersion]:
    """The versions of the model that scored S, the one that scored most first (the champion)."""
    rows = conn.execute(
        text(sql.load("monitoring/scored_versions")),
        {"day": service_date, "name": model_name},
    ).all()
    return [
        ScoredVersion(r.model_name, int(r.model_version), r.mlflow_run_id, r.rows) for r in rows
    ]


@dataclass(frozen=True)
class DriftSummary:
    model_name: str
    model_version: int
    current_rows: int
    share_drifted: float
    drifted_columns: list[str]
    score_drifted: bool | None
    mean_score: float
    reference_mean_score: float
    report_path: str | None = None  # where the HTML report is in the store
    report_url: str | None = None  # its public link
    report_bytes: int | None = None

    @property
    def score_mean_shift(self) -> float:
        return abs(self.mean_score - self.reference_mean_score)


def reference_sample(settings: Settings, mlflow_run_id: str) -> pd.DataFrame:
    """The reference sample logged with the model's training run (features and score)."""
    import mlflow
    import pandas as pd

    from nightscore.registry import REFERENCE_ARTIFACT, RegistryError

    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=mlflow_run_id,
                artifact_path=REFERENCE_ARTIFACT,
                dst_path=tmp,
                tracking_uri=settings.mlflow_tracking_uri,
            )
        except Exception as exc:
            raise RegistryError(
                f"cannot download {REFERENCE_ARTIFACT} of MLflow run {mlflow_run_id} from "
                f"{settings.mlflow_tracking_uri}: {exc}"
            ) from exc
        return pd.read_parquet(path)


def current_rows(
    conn: Connection, service_date: date, version: ScoredVersion, features: pd.DataFrame
) -> pd.DataFrame:
    """S's features (`build_features`: as scoring saw them) with the score `version` gave
    each flight."""
    import pandas as pd

    result = conn.execute(
        text(sql.load("monitoring/drift_current_scores")),
        {"day": service_date, "name": version.model_name, "version": version.model_version},
    )
    scores = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    scores["flight"] = scores["flight"].astype("int64")
    scores["score"] = scores["score"].astype("float64")
    return features.merge(scores, on=list(KEY_COLUMNS), how="inner")


def summarize(
    result: DriftResult, version: ScoredVersion, reference_mean: float, current_mean: float
) -> DriftSummary:
    monitored = [c for c in result.columns if c.column not in CALENDAR_COLUMNS]
    drifted = [c.column for c in monitored if c.drifted]
    return DriftSummary(
        model_name=version.model_name,
        model_version=version.model_version,
        current_rows=result.current_rows,
        share_drifted=len(drifted) / len(monitored) if monitored else 0.0,
        drifted_columns=drifted,
        score_drifted=result.score.drifted if result.score else None,
        mean_score=current_mean,
        reference_mean_score=reference_mean,
    )


def night_drift(
    reference: pd.DataFrame, current: pd.DataFrame, columns: list[str], **evidently: Any
) -> DriftResult:
    """Evidently's tests of the night, with its snapshot for the page and the workspace.

    A night of more than SAMPLE_ROWS flights gets its flags from the streaming path (the
    same tests, `drift_fast`: seconds instead of minutes and gigabytes at a million
    rows) and Evidently's snapshot from a uniform sample of SAMPLE_ROWS of them."""
    from nightscore.monitoring.drift import evidently_drift
    from nightscore.monitoring.drift_fast import fast_drift, reference_stats
    from nightscore.monitoring.early_warning import SAMPLE_ROWS

    if len(current) <= SAMPLE_ROWS:
        return evidently_drift(reference, current, columns=columns, **evidently)
    sample = current.sample(SAMPLE_ROWS, random_state=13)
    snapshot = evidently_drift(reference, sample, columns=columns, **evidently).snapshot
    exact = fast_drift(reference_stats(reference, columns), current, columns=columns)
    return dataclasses.replace(exact, snapshot=snapshot)


def measure_drift(
    service_date: date, settings: Settings, *, html: bool = True, workspace: bool = True
) -> list[DriftSummary]:
    """Drift of S against each scoring version's reference sample, stored. The champion's
    (the first version) also gets the HTML report and the workspace snapshot."""
    from nightscore.features import build_features
    from nightscore.monitoring.drift import save_html
    from nightscore.warehouse.db import engine_for

    engine = engine_for(settings)
    with engine.connect() as conn:
        versions = scored_versions(conn, service_date, settings.model_name)
        if not versions:
            raise NothingScored(f"nothing was scored for {service_date}: is it loaded and scored?")
        features = build_features(conn, service_date, service_date)
    summaries = []
    for rank, version in enumerate(versions):
        reference = reference_sample(settings, version.mlflow_run_id)
        with engine.connect() as conn:
            current = current_rows(conn, service_date, version, features)
        if current.empty:
            raise NothingScored(f"no features for the flights of {service_date}")
        result = night_drift(
            reference,
            current,
            columns=[c for c in FEATURES if c in reference],
            timestamp=datetime.combine(service_date, datetime.min.time(), tzinfo=UTC),
            metadata={
                "service_date": service_date.isoformat(),
                "model": f"{version.model_name} v{version.model_version}",
            },
        )
        summary = summarize(
            result, version, float(reference["score"].mean()), float(current["score"].mean())
        )
        if rank == 0 and html:
            location = drift_report_location(settings, service_date)
            size = save_html(result.snapshot, location)
            summary = dataclasses.replace(
                summary,
                report_path=location,
                report_url=links.file_url(settings, location),
                report_bytes=size,
            )
        if rank == 0 and workspace:
            add_to_workspace(settings, result.snapshot, service_date)
        with engine.begin() as conn:
            store_drift(conn, settings, service_date, summary, result)
        summaries.append(summary)
    return summaries


def drift_report_location(settings: Settings, service_date: date) -> str:
    """Where the day's HTML drift report is written in the store."""
    return f"{settings.reports_dir.rstrip('/')}/drift/drift_report_{service_date}.html"


def store_drift(
    conn: Connection,
    settings: Settings,
    service_date: date,
    summary: DriftSummary,
    result: DriftResult,
) -> None:
    """Replace S's drift rows for the summary's model version (and its report row; a run
    without a report keeps the link to the one written before)."""
    report_id = None
    if not summary.report_path:
        report_id = conn.execute(
            text(sql.load("monitoring/drift_run_report_id")),
            {"day": service_date, "name": summary.model_name, "version": summary.model_version},
        ).scalar()
    if summary.report_path:
        report_id = record_report(
            conn, settings, "drift", service_date, summary.report_path, summary.report_bytes or 0
        )
    key = {"day": service_date, "name": summary.model_name, "version": summary.model_version}
    conn.execute(text(sql.load("monitoring/drift_runs_delete")), key)
    conn.execute(
        text(sql.load("monitoring/drift_runs_insert")),
        {
            **key,
            "reference_rows": result.reference_rows,
            "current_rows": result.current_rows,
            "columns": len([c for c in result.columns if c.column not in CALENDAR_COLUMNS]),
            "drifted": len(summary.drifted_columns),
            "share": summary.share_drifted,
            "drifted_columns": summary.drifted_columns,
            "skipped": list(result.skipped),
            "score_drifted": summary.score_drifted,
            "mean_score": summary.mean_score,
            "reference_mean_score": summary.reference_mean_score,
            "report_id": report_id,
        },
    )
    columns = [*result.columns, *([result.score] if result.score else [])]
    conn.execute(
        text(sql.load("monitoring/drift_columns_insert")),
        [
            {
                **key,
                "column": c.column,
                "kind": c.kind,
                "method": c.method,
                "statistic": c.statistic,
                "threshold": c.threshold,
                "drifted": c.drifted,
                "monitored": c.column not in CALENDAR_COLUMNS and c is not result.score,
            }
            for c in columns
        ],
    )


def add_to_workspace(settings: Settings, snapshot: Any, service_date: date) -> None:
    """Put S's snapshot in the Evidently workspace (replacing an earlier one of S), with a
    dashboard of the drift share and the score's drift, for `evidently ui`. The workspace
    may be a store URL: Evidently reaches it through fsspec, configured as the store is."""
    from evidently.ui.workspace import Workspace

    store.apply_env()
    workspace = Workspace(settings.evidently_workspace)
    found = workspace.search_project(EVIDENTLY_PROJECT)
    if found:
        project = found[0]
    else:
        project = workspace.create_project(
            EVIDENTLY_PROJECT, description="Daily drift of flight_disruption's features and score"
        )
        _add_panels(project)
    for snapshot_id in workspace.list_runs(project.id):
        earlier = workspace.get_run(project.id, snapshot_id)
        if earlier and earlier.metadata.get("service_date") == service_date.isoformat():
            workspace.delete_run(project.id, snapshot_id)
    workspace.add_run(project.id, snapshot, name=f"drift {service_date}")


# The workspace dashboard: (title, legend, Evidently metric, its labels) per line plot.
_PANELS = (
    ("Share of drifted columns", "share", "DriftedColumnsCount", {"value_type": "share"}),
    ("Drift of the risk score", "score", "ValueDrift", {"column": "score"}),
)


def _add_panels(project: Any) -> None:
    from evidently.sdk.models import PanelMetric
    from evidently.sdk.panels import line_plot_panel

    for title, legend, metric, labels in _PANELS:
        value = PanelMetric(
            legend=legend, metric=f"evidently:metric_v2:{metric}", metric_labels=labels
        )
        project.dashboard.add_panel(line_plot_panel(title=title, values=[value]))


# --- 3. rules ---------------------------------------------------------------------------
