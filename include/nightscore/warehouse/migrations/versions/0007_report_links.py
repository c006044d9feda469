"""Report links: `monitoring.reports` keeps where a report is in the store (`path`) and
the public http(s) link a browser opens (`url`, served by the Airflow API server);
`analytics.drift` shows the link.

Rows written before have no link (`url` NULL): their paths were local to one host.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"

DRIFT_VIEW = """
CREATE OR REPLACE VIEW analytics.drift AS
SELECT r.service_date, r.model_name, r.model_version, r.current_rows,
       round(r.share_drifted::numeric, 3) AS share_drifted, r.drifted_columns,
       r.score_drifted, round(r.mean_score::numeric, 4) AS mean_score,
       round(r.reference_mean_score::numeric, 4) AS reference_mean_score, p.{column} AS report
FROM monitoring.drift_runs r
LEFT JOIN monitoring.reports p USING (report_id);
"""


def upgrade() -> None:
    op.execute("ALTER TABLE monitoring.reports ADD COLUMN url text")
    op.execute(
        "COMMENT ON COLUMN monitoring.reports.path IS 'Where the report is in the store.'; "
        "COMMENT ON COLUMN monitoring.reports.url IS "
        "'The report''s public http(s) link (NULL for reports written before 0007).'"
    )
    op.execute(DRIFT_VIEW.format(column="url"))


def downgrade() -> None:
    op.execute(DRIFT_VIEW.format(column="path"))
    op.execute("ALTER TABLE monitoring.reports DROP COLUMN url")
