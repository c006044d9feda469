"""Training: every champion/challenger decision, and who was champion when.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"

UPGRADE = """
CREATE TABLE ml.model_decisions (
    decision_id        bigserial PRIMARY KEY,
    decided_at         timestamptz NOT NULL DEFAULT now(),
    model_name         text NOT NULL,
    challenger_version integer NOT NULL,
    challenger_run_id  text NOT NULL,
    champion_version   integer,
    decision           text NOT NULL CHECK (decision IN ('promote', 'reject')),
    applied            boolean NOT NULL,
    mode               text NOT NULL CHECK (mode IN ('enforce', 'dry_run')),
    reason             text NOT NULL,
    metric             text NOT NULL,
    challenger_metrics jsonb NOT NULL,
    champion_metrics   jsonb,
    window_start       date NOT NULL,
    window_end         date NOT NULL,
    floor              double precision NOT NULL,
    margin             double precision NOT NULL,
    training_cutoff    date,
    trigger            text,
    airflow_run_id     text
);
CREATE INDEX model_decisions_by_model ON ml.model_decisions (model_name, decided_at);
COMMENT ON TABLE ml.model_decisions IS
    'Every gate decision: promote or reject a challenger, applied unless in dry_run mode.';

CREATE VIEW analytics.champion_history AS
SELECT model_name,
       challenger_version AS version,
       challenger_run_id AS mlflow_run_id,
       decided_at AS champion_from,
       lead(decided_at) OVER (PARTITION BY model_name ORDER BY decided_at) AS champion_until,
       (challenger_metrics ->> 'roc_auc')::float8 AS roc_auc_at_promotion,
       window_start AS evaluated_from,
       window_end AS evaluated_to,
       reason
FROM ml.model_decisions
WHERE decision = 'promote' AND applied;
COMMENT ON VIEW analytics.champion_history IS
    'Which model version was champion when (champion_until is NULL for the current one).';

CREATE VIEW analytics.model_decisions AS
SELECT decided_at, model_name, challenger_version, champion_version, decision, applied,
       mode, reason, metric,
       (challenger_metrics ->> 'roc_auc')::float8 AS challenger_roc_auc,
       (champion_metrics ->> 'roc_auc')::float8 AS champion_roc_auc,
       window_start, window_end, training_cutoff, trigger
FROM ml.model_decisions;
COMMENT ON VIEW analytics.model_decisions IS 'Every champion/challenger gate decision.';
"""


def upgrade() -> None:
    op.execute(UPGRADE)
    # Default privileges from 0001 grant SELECT on new analytics views; be explicit anyway.
    op.execute(
        "GRANT SELECT ON analytics.champion_history, analytics.model_decisions "
        "TO nightscore_analyst"
    )


def downgrade() -> None:
    op.execute("DROP VIEW analytics.model_decisions")
    op.execute("DROP VIEW analytics.champion_history")
    op.execute("DROP TABLE ml.model_decisions")
