"""Monitoring: drift per column, reports, rule checks, retrain triggers; the outbox learns
audiences, cooldowns and prebuilt messages.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"

UPGRADE = """
-- Who an alert is for, the key its cooldown counts by, and (for the weekly report) the
-- whole MIME message, built when queued, so the sender has nothing left to compute.
ALTER TABLE monitoring.alerts
    ADD COLUMN audience text NOT NULL DEFAULT 'engineers'
        CHECK (audience IN ('engineers', 'stakeholders')),
    ADD COLUMN cooldown_key text,
    ADD COLUMN message bytea;
CREATE INDEX alerts_by_cooldown_key ON monitoring.alerts (cooldown_key, service_date);

CREATE TABLE monitoring.reports (
    report_id    bigserial PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('drift', 'weekly')),
    service_date date NOT NULL,
    path         text NOT NULL,
    bytes        integer NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, service_date)
);
COMMENT ON TABLE monitoring.reports IS
    'Reports written by the monitoring DAG: the daily Evidently drift report, the weekly stakeholder report.';

CREATE TABLE monitoring.drift_runs (
    service_date    date NOT NULL,
    model_name      text NOT NULL,
    model_version   integer NOT NULL,
    reference_rows  integer NOT NULL,
    current_rows    integer NOT NULL,
    columns         integer NOT NULL,
    drifted         integer NOT NULL,
    share_drifted   double precision NOT NULL,
    drifted_columns text[] NOT NULL,
    skipped_columns text[] NOT NULL,
    score_drifted   boolean,
    mean_score      double precision,
    reference_mean_score double precision,
    report_id       bigint REFERENCES monitoring.reports,
    computed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service_date, model_name, model_version)
);
COMMENT ON TABLE monitoring.drift_runs IS
    'One row per (service date, model version): how many monitored features drifted from the model''s reference sample, and the score''s shift.';

CREATE TABLE monitoring.drift (
    service_date  date NOT NULL,
    model_name    text NOT NULL,
    model_version integer NOT NULL,
    column_name   text NOT NULL,
    kind          text NOT NULL,
    method        text NOT NULL,
    statistic     double precision NOT NULL,
    threshold     double precision NOT NULL,
    drifted       boolean NOT NULL,
    monitored     boolean NOT NULL,
    PRIMARY KEY (service_date, model_name, model_version, column_name),
    FOREIGN KEY (service_date, model_name, model_version)
        REFERENCES monitoring.drift_runs ON DELETE CASCADE
);
COMMENT ON TABLE monitoring.drift IS
    'Per-column drift (Evidently''s default test): the statistic, the method, its threshold and the flag. monitored = counts in the share (calendar columns are constant within a day and do not).';

CREATE TABLE monitoring.rule_checks (
    service_date date NOT NULL,
    rule         text NOT NULL,
    metric       text NOT NULL,
    value        double precision,
    comparison   text NOT NULL,
    threshold    double precision NOT NULL,
    severity     text NOT NULL,
    breached     boolean NOT NULL,
    retrain      boolean NOT NULL,
    model_name   text NOT NULL,
    model_version integer NOT NULL,
    alert_id     bigint REFERENCES monitoring.alerts,
    checked_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service_date, model_name, rule)
);
COMMENT ON TABLE monitoring.rule_checks IS
    'Every alert rule checked for every service date, breached or not: the history the retrain trigger reads.';

CREATE TABLE monitoring.retrain_triggers (
    service_date  date NOT NULL,
    model_name    text NOT NULL,
    reason        text NOT NULL,
    rules         text[] NOT NULL,
    cutoff        date NOT NULL,
    dag_run_id    text,
    triggered_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service_date, model_name)
);
COMMENT ON TABLE monitoring.retrain_triggers IS
    'Retrains asked for by the monitoring DAG: which rules were breached, and the retrain run.';

CREATE VIEW analytics.drift AS
SELECT r.service_date, r.model_name, r.model_version, r.current_rows,
       round(r.share_drifted::numeric, 3) AS share_drifted, r.drifted_columns,
       r.score_drifted, round(r.mean_score::numeric, 4) AS mean_score,
       round(r.reference_mean_score::numeric, 4) AS reference_mean_score, p.path AS report
FROM monitoring.drift_runs r
LEFT JOIN monitoring.reports p USING (report_id);
COMMENT ON VIEW analytics.drift IS
    'Daily drift of the features and the score against the scoring model''s reference sample.';

CREATE VIEW analytics.alerts AS
SELECT alert_id, created_at, rule, severity, audience, service_date, subject, status,
       attempts, last_error, sent_at
FROM monitoring.alerts;
COMMENT ON VIEW analytics.alerts IS 'Every alert and report email: queued, sent, pending or suppressed.';
"""


def upgrade() -> None:
    op.execute(UPGRADE)
    op.execute("GRANT SELECT ON analytics.drift, analytics.alerts TO nightscore_analyst")


def downgrade() -> None:
    op.execute("DROP VIEW analytics.alerts")
    op.execute("DROP VIEW analytics.drift")
    for table in ("retrain_triggers", "rule_checks", "drift", "drift_runs", "reports"):
        op.execute(f"DROP TABLE monitoring.{table}")
    op.execute("DROP INDEX monitoring.alerts_by_cooldown_key")
    op.execute(
        "ALTER TABLE monitoring.alerts DROP COLUMN message, DROP COLUMN cooldown_key, "
        "DROP COLUMN audience"
    )
