"""The evening's early warning: tonight's features and scores against the model's own
training nights, checked right after scoring (`nightscore.monitoring.early_warning`).

`monitoring.early_warnings` holds one row per (service date, model version): the
verdict, which conditions fired, the night-level numbers and the alert and report it
led to. `monitoring.early_warning_features` holds the check of every watched feature:
tonight's average against the training nights' (mean, standard deviation, range), its
importance to the model, and Evidently's default test on the same rows. Reports gain the
kind 'evening' (Evidently's page for a warned night, from a bounded sample).
The morning monitoring adds what happened (the observed rate, the ROC AUC, and whether
the night turned out bad: `early_warning.bad_night`). `analytics.early_warnings` shows
both to analysts.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"

UPGRADE = """
ALTER TABLE monitoring.reports DROP CONSTRAINT reports_kind_check;
ALTER TABLE monitoring.reports ADD CONSTRAINT reports_kind_check
    CHECK (kind IN ('drift', 'weekly', 'evening'));

CREATE TABLE monitoring.early_warnings (
    service_date      date NOT NULL,
    model_name        text NOT NULL,
    model_version     integer NOT NULL,
    flights           integer NOT NULL,
    training_nights   integer NOT NULL,
    warned            boolean NOT NULL,
    reasons           text[] NOT NULL,
    moved_features    text[] NOT NULL,
    importance_excess double precision NOT NULL,
    mean_score        double precision,
    score_z           double precision,
    expected_auc      double precision,
    evidently_share   double precision,
    rule              jsonb NOT NULL,
    summary           text NOT NULL,
    alert_id          bigint REFERENCES monitoring.alerts,
    report_id         bigint REFERENCES monitoring.reports,
    -- Filled in by the morning monitoring once the outcomes have landed.
    observed_rate     double precision,
    roc_auc           double precision,
    turned_out_bad    boolean,
    checked_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service_date, model_name, model_version)
);
COMMENT ON TABLE monitoring.early_warnings IS
    'The evening check of each scored night against the model''s training nights: whether tonight''s scores deserve less trust, and why.';

CREATE TABLE monitoring.early_warning_features (
    service_date        date NOT NULL,
    model_name          text NOT NULL,
    model_version       integer NOT NULL,
    column_name         text NOT NULL,
    tonight             double precision,
    nightly_mean        double precision,
    nightly_sd          double precision,
    nightly_low         double precision,
    nightly_high        double precision,
    z                   double precision,
    importance          double precision NOT NULL,
    beyond              boolean NOT NULL,
    excess              double precision NOT NULL,
    evidently_method    text,
    evidently_statistic double precision,
    evidently_drifted   boolean,
    PRIMARY KEY (service_date, model_name, model_version, column_name),
    FOREIGN KEY (service_date, model_name, model_version)
        REFERENCES monitoring.early_warnings ON DELETE CASCADE
);
COMMENT ON TABLE monitoring.early_warning_features IS
    'Per watched feature and night: tonight''s average against the training nights'' averages, its importance, and Evidently''s default test on the same rows.';

CREATE VIEW analytics.early_warnings AS
SELECT w.service_date, w.model_name, w.model_version, w.flights, w.warned, w.reasons,
       w.moved_features, round(w.mean_score::numeric, 4) AS mean_risk,
       round(w.expected_auc::numeric, 4) AS expected_auc, w.summary,
       round(w.observed_rate::numeric, 4) AS observed_rate,
       round(w.roc_auc::numeric, 4) AS roc_auc, w.turned_out_bad, r.url AS report
FROM monitoring.early_warnings w
LEFT JOIN monitoring.reports r USING (report_id);
COMMENT ON VIEW analytics.early_warnings IS
    'The evening early warning of each scored night, with what happened once the outcomes landed.';
GRANT SELECT ON analytics.early_warnings TO nightscore_analyst;
"""

DOWNGRADE = """
DROP VIEW analytics.early_warnings;
DROP TABLE monitoring.early_warning_features;
DROP TABLE monitoring.early_warnings;
DELETE FROM monitoring.reports WHERE kind = 'evening';
ALTER TABLE monitoring.reports DROP CONSTRAINT reports_kind_check;
ALTER TABLE monitoring.reports ADD CONSTRAINT reports_kind_check
    CHECK (kind IN ('drift', 'weekly'));
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
