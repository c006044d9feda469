"""Scoring: partitioned predictions, one row per scoring run, and the analyst views.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"

UPGRADE = """
CREATE TABLE scoring.runs (
    scoring_run_id bigserial PRIMARY KEY,
    service_date   date NOT NULL,
    model_name     text NOT NULL,
    model_version  integer NOT NULL,
    mlflow_run_id  text NOT NULL,
    threshold      double precision NOT NULL,
    partitions     integer NOT NULL DEFAULT 1,
    status         text NOT NULL DEFAULT 'running'
                   CHECK (status IN ('running', 'succeeded', 'failed')),
    rows           integer,
    started_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at    timestamptz,
    duration_s     double precision,
    airflow_run_id text,
    error          text
);
CREATE INDEX runs_by_date ON scoring.runs (service_date, started_at DESC);
COMMENT ON TABLE scoring.runs IS 'One row per scoring run: model version, rows, duration, status.';

-- Monthly range partitions are created as needed by nightscore.scoring.
CREATE TABLE scoring.predictions (
    service_date   date NOT NULL,
    carrier        text NOT NULL,
    flight         integer NOT NULL,
    origin         text NOT NULL,
    model_name     text NOT NULL,
    model_version  integer NOT NULL,
    mlflow_run_id  text NOT NULL,
    score          real NOT NULL CHECK (score BETWEEN 0 AND 1),
    label          boolean NOT NULL,
    threshold      real NOT NULL,
    scored_at      timestamptz NOT NULL,
    airflow_run_id text,
    scoring_run_id bigint NOT NULL,
    PRIMARY KEY (service_date, carrier, flight, origin, model_name)
) PARTITION BY RANGE (service_date);
COMMENT ON TABLE scoring.predictions IS
    'One row per (service date, flight, model): the risk score, its label at the model''s threshold, and lineage.';

-- Mapped scoring tasks write here; the publish step moves a run's rows in one transaction.
CREATE UNLOGGED TABLE scoring.staged_predictions (LIKE scoring.predictions);
CREATE INDEX staged_by_run ON scoring.staged_predictions (scoring_run_id);

CREATE VIEW analytics.predictions AS
SELECT p.service_date,
       p.score AS risk,
       p.label AS predicted_disrupted,
       p.carrier,
       al.name AS carrier_name,
       p.flight,
       f.tailnum,
       p.origin,
       o.name AS origin_name,
       f.dest,
       d.name AS dest_name,
       make_timestamp(extract(year FROM p.service_date)::int,
                      extract(month FROM p.service_date)::int,
                      extract(day FROM p.service_date)::int,
                      f.sched_dep_time / 100, f.sched_dep_time % 100, 0) AS sched_departure_local,
       f.sched_arr_time,
       p.model_name,
       p.model_version,
       p.threshold,
       p.mlflow_run_id,
       p.scored_at,
       p.airflow_run_id
FROM scoring.predictions p
JOIN core.flights f USING (service_date, carrier, flight, origin)
JOIN core.airlines al ON al.carrier = p.carrier
JOIN core.airports o ON o.faa = p.origin
JOIN core.airports d ON d.faa = f.dest;
COMMENT ON VIEW analytics.predictions IS
    'Every prediction with its flight''s details: risk is the model''s probability of disruption.';

CREATE VIEW analytics.tonight AS
SELECT *
FROM analytics.predictions
WHERE (model_name, service_date) IN (SELECT model_name, max(service_date)
                                     FROM scoring.predictions GROUP BY model_name)
ORDER BY risk DESC;
COMMENT ON VIEW analytics.tonight IS
    'Each model''s latest scored service date, riskiest flights first.';

CREATE VIEW analytics.predictions_vs_outcomes AS
SELECT p.service_date, p.carrier, p.flight, p.origin, p.dest, p.sched_departure_local,
       p.model_name, p.model_version, p.risk, p.predicted_disrupted, p.threshold,
       oc.arr_delay, oc.cancelled, oc.diverted,
       (oc.cancelled OR oc.diverted OR oc.arr_delay >= 15) AS disrupted
FROM analytics.predictions p
JOIN core.outcomes oc USING (service_date, carrier, flight, origin);
COMMENT ON VIEW analytics.predictions_vs_outcomes IS
    'Predictions of the days whose outcomes have landed, with what happened.';

CREATE VIEW analytics.daily_model_performance AS
SELECT service_date, model_name, model_version,
       count(*) AS flights,
       count(*) FILTER (WHERE disrupted) AS disrupted,
       round(avg(disrupted::int)::numeric, 4) AS observed_rate,
       round(avg(risk)::numeric, 4) AS mean_risk,
       count(*) FILTER (WHERE predicted_disrupted) AS flagged,
       round((count(*) FILTER (WHERE predicted_disrupted AND disrupted))::numeric
             / nullif(count(*) FILTER (WHERE predicted_disrupted), 0), 4) AS precision,
       round((count(*) FILTER (WHERE predicted_disrupted AND disrupted))::numeric
             / nullif(count(*) FILTER (WHERE disrupted), 0), 4) AS recall,
       round(avg((risk - disrupted::int) ^ 2)::numeric, 4) AS brier
FROM analytics.predictions_vs_outcomes
GROUP BY service_date, model_name, model_version;
COMMENT ON VIEW analytics.daily_model_performance IS
    'Per service date and model version: how the predictions fared once outcomes landed.';

CREATE VIEW analytics.scoring_runs AS
SELECT scoring_run_id, service_date, model_name, model_version, partitions, status, rows,
       started_at, finished_at, duration_s, airflow_run_id, error
FROM scoring.runs;
COMMENT ON VIEW analytics.scoring_runs IS 'Every scoring run: when, which model, how many rows.';
"""

VIEWS = (
    "analytics.scoring_runs",
    "analytics.daily_model_performance",
    "analytics.predictions_vs_outcomes",
    "analytics.tonight",
    "analytics.predictions",
)


def upgrade() -> None:
    op.execute(UPGRADE)
    op.execute(f"GRANT SELECT ON {', '.join(VIEWS)} TO nightscore_analyst")


def downgrade() -> None:
    for view in VIEWS:
        op.execute(f"DROP VIEW {view}")
    op.execute("DROP TABLE scoring.staged_predictions")
    op.execute("DROP TABLE scoring.predictions")
    op.execute("DROP TABLE scoring.runs")
