"""Monitoring: daily performance per model version and segment, drift, and reports.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"

UPGRADE = """
CREATE TABLE monitoring.performance (
    service_date  date NOT NULL,
    model_name    text NOT NULL,
    model_version integer NOT NULL,
    segment_type  text NOT NULL CHECK (segment_type IN ('all', 'origin', 'carrier', 'trailing_7d')),
    segment       text NOT NULL,
    rows          integer NOT NULL,
    positives     integer NOT NULL,
    roc_auc       double precision,
    pr_auc        double precision,
    precision     double precision,
    recall        double precision,
    f1            double precision,
    brier         double precision,
    ece           double precision,
    mean_score    double precision,
    threshold     double precision NOT NULL,
    computed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service_date, model_name, model_version, segment_type, segment)
);
COMMENT ON TABLE monitoring.performance IS
    'How each model version that scored a date fared once its outcomes landed: overall, by origin, by carrier, and over the trailing 7 days.';

CREATE VIEW analytics.model_performance AS
SELECT service_date, model_name, model_version, segment_type, segment, rows, positives,
       round(roc_auc::numeric, 4) AS roc_auc, round(pr_auc::numeric, 4) AS pr_auc,
       round(precision::numeric, 4) AS precision, round(recall::numeric, 4) AS recall,
       round(f1::numeric, 4) AS f1, round(brier::numeric, 4) AS brier,
       round(ece::numeric, 4) AS ece, round(mean_score::numeric, 4) AS mean_score
FROM monitoring.performance;
COMMENT ON VIEW analytics.model_performance IS
    'Daily model performance per version and segment (all, origin, carrier, trailing 7 days).';
"""


def upgrade() -> None:
    op.execute(UPGRADE)
    op.execute("GRANT SELECT ON analytics.model_performance TO nightscore_analyst")


def downgrade() -> None:
    op.execute("DROP VIEW analytics.model_performance")
    op.execute("DROP TABLE monitoring.performance")
