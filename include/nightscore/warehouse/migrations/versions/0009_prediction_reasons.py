"""Reasons for every prediction: its three strongest drivers, in words, with their effect.

Scoring stores, per prediction, the three features with the largest exact TreeSHAP
contributions (`nightscore.reasons`): reason_N_feature (the feature's name) and
reason_N_effect (its signed contribution, in log-odds), strongest first. The words an
analyst reads live in `nightscore.reasons.FEATURE_WORDS`; scoring copies them into
`scoring.feature_words` before each run, and `analytics.predictions` (and so
`analytics.tonight`) shows them as reason_1 .. reason_3.

The staging table gets the same columns in the same order: publishing copies a run's rows
with `INSERT ... SELECT *`.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"

RANKS = (1, 2, 3)

PREDICTIONS = """
CREATE {verb} VIEW analytics.predictions AS
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
       p.airflow_run_id{reasons}
FROM scoring.predictions p
JOIN core.flights f USING (service_date, carrier, flight, origin)
JOIN core.airlines al ON al.carrier = p.carrier
JOIN core.airports o ON o.faa = p.origin
JOIN core.airports d ON d.faa = f.dest{joins};
"""

# A feature without words (none, while FEATURE_WORDS covers every feature) shows its name.
REASONS = "".join(
    f""",
       coalesce(w{n}.words, p.reason_{n}_feature) AS reason_{n},
       p.reason_{n}_effect"""
    for n in RANKS
)
JOINS = "".join(
    f"\nLEFT JOIN scoring.feature_words w{n} ON w{n}.feature = p.reason_{n}_feature" for n in RANKS
)

# The same text as in 0003: `*` is expanded when a view is created, so it is created again
# to take the new columns.
TONIGHT = """
CREATE OR REPLACE VIEW analytics.tonight AS
SELECT *
FROM analytics.predictions
WHERE (model_name, service_date) IN (SELECT model_name, max(service_date)
                                     FROM scoring.predictions GROUP BY model_name)
ORDER BY risk DESC;
"""

ORDINALS = {1: "strongest", 2: "second strongest", 3: "third strongest"}
LARGEST = {1: "largest", 2: "second largest", 3: "third largest"}


def _comments(view: str) -> str:
    return "".join(
        f"""
COMMENT ON COLUMN {view}.reason_{n} IS
    'The {ORDINALS[n]} driver of this risk, in words: the feature whose contribution '
    '(exact TreeSHAP) is the {LARGEST[n]} in absolute value. NULL when not scored with reasons.';
COMMENT ON COLUMN {view}.reason_{n}_effect IS
    'How much reason_{n} moved this risk, in log-odds: positive raised it, negative lowered '
    'it. Contributions add up: the model''s base margin plus all of them is the log-odds of risk.';"""
        for n in RANKS
    )


def upgrade() -> None:
    for table in ("scoring.predictions", "scoring.staged_predictions"):
        columns = ", ".join(
            f"ADD COLUMN reason_{n}_feature text, ADD COLUMN reason_{n}_effect real" for n in RANKS
        )
        op.execute(f"ALTER TABLE {table} {columns}")
    op.execute(
        """
        CREATE TABLE scoring.feature_words (
            feature text PRIMARY KEY,
            words   text NOT NULL
        );
        COMMENT ON TABLE scoring.feature_words IS
            'What each model feature means, in words (nightscore.reasons.FEATURE_WORDS, '
            'copied here by every scoring run).';
        """
    )
    op.execute(PREDICTIONS.format(verb="OR REPLACE", reasons=REASONS, joins=JOINS))
    op.execute(TONIGHT)
    op.execute(_comments("analytics.predictions") + _comments("analytics.tonight"))


# Downgrade: a view cannot lose columns in place, so the views on analytics.predictions are
# dropped with it and created again as 0003 and 0006 left them.
DEPENDENTS = """
COMMENT ON VIEW analytics.predictions IS
    'Every prediction with its flight''s details: risk is the model''s probability of disruption.';
COMMENT ON VIEW analytics.tonight IS
    'Each model''s latest scored service date, riskiest flights first.';

CREATE VIEW analytics.predictions_vs_outcomes AS
SELECT p.service_date, p.carrier, p.flight, p.origin, p.dest, p.sched_departure_local,
       p.model_name, p.model_version, p.risk, p.predicted_disrupted, p.threshold,
       oc.arr_delay, oc.cancelled, oc.diverted,
       core.disrupted(oc.cancelled, oc.diverted, oc.arr_delay) AS disrupted
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

GRANT SELECT ON analytics.predictions, analytics.tonight, analytics.predictions_vs_outcomes,
                analytics.daily_model_performance TO nightscore_analyst;
"""


def downgrade() -> None:
    op.execute("DROP VIEW analytics.predictions CASCADE")
    op.execute(PREDICTIONS.format(verb="", reasons="", joins=""))
    op.execute(TONIGHT)
    op.execute(DEPENDENTS)
    op.execute("DROP TABLE scoring.feature_words")
    for table in ("scoring.predictions", "scoring.staged_predictions"):
        columns = ", ".join(
            f"DROP COLUMN reason_{n}_feature, DROP COLUMN reason_{n}_effect" for n in RANKS
        )
        op.execute(f"ALTER TABLE {table} {columns}")
