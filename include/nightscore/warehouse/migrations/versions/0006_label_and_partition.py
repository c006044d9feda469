"""Rules defined once in the warehouse.

- The label: `core.disrupted(cancelled, diverted, arr_delay)`.
- Which of K scoring partitions a flight belongs to: `scoring.partition_of(carrier,
  flight, origin, parts)`.
- The latest batch of a (kind, day): most recently updated, the newest batch on a tie, in
  `analytics.batches` as in `sql/ingest/latest_batch.sql`.

A flight is disrupted when it arrived 15 or more minutes late (the US DOT definition of
late), was cancelled, or was diverted; NULL while none of that is known. The feature
query, the analytics views, performance and the weekly report all use this function (the
last two through `analytics.flights`). An SQL function this simple is inlined by the
planner: it costs nothing at a million rows.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"

LATE_MINUTES = 15

FLIGHTS = """
CREATE OR REPLACE VIEW analytics.flights AS
SELECT f.service_date,
       f.carrier,
       al.name AS carrier_name,
       f.flight,
       f.origin,
       o.name AS origin_name,
       f.dest,
       d.name AS dest_name,
       f.tailnum,
       f.sched_dep_time,
       make_timestamp(extract(year FROM f.service_date)::int,
                      extract(month FROM f.service_date)::int,
                      extract(day FROM f.service_date)::int,
                      f.sched_dep_time / 100, f.sched_dep_time % 100, 0) AS sched_departure_local,
       f.sched_arr_time,
       f.distance,
       oc.dep_delay,
       oc.arr_delay,
       oc.cancelled,
       oc.diverted,
       CASE WHEN oc.service_date IS NULL THEN NULL
            ELSE {label} END AS disrupted
FROM core.flights f
JOIN core.airlines al USING (carrier)
JOIN core.airports o ON o.faa = f.origin
JOIN core.airports d ON d.faa = f.dest
LEFT JOIN core.outcomes oc USING (service_date, carrier, flight, origin);
"""

PREDICTIONS_VS_OUTCOMES = """
CREATE OR REPLACE VIEW analytics.predictions_vs_outcomes AS
SELECT p.service_date, p.carrier, p.flight, p.origin, p.dest, p.sched_departure_local,
       p.model_name, p.model_version, p.risk, p.predicted_disrupted, p.threshold,
       oc.arr_delay, oc.cancelled, oc.diverted,
       {label} AS disrupted
FROM analytics.predictions p
JOIN core.outcomes oc USING (service_date, carrier, flight, origin);
"""

FUNCTION = f"""
CREATE OR REPLACE FUNCTION core.disrupted(cancelled boolean, diverted boolean, arr_delay real)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT cancelled OR diverted OR arr_delay >= {LATE_MINUTES} $$;
COMMENT ON FUNCTION core.disrupted(boolean, boolean, real) IS
    'The label: arrived {LATE_MINUTES}+ min late, cancelled or diverted; NULL while unknown.';
"""

BATCHES = """
CREATE OR REPLACE VIEW analytics.batches AS
SELECT DISTINCT ON (kind, service_date)
       service_date, kind, status, rows, warnings, received_at, updated_at, data_docs_url,
       split_part(error, E'\\n', 1) AS error
FROM ops.batches
ORDER BY kind, service_date, updated_at DESC{tie_breaker};
"""

PARTITION_OF = """
CREATE OR REPLACE FUNCTION scoring.partition_of(carrier text, flight integer, origin text,
                                                parts integer)
RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT mod(abs(hashtext(carrier || ':' || flight || ':' || origin)), parts) $$;
COMMENT ON FUNCTION scoring.partition_of(text, integer, text, integer) IS
    'The scoring partition (0 .. parts-1) of a flight: its key hashed.';
"""

CALL = "core.disrupted(oc.cancelled, oc.diverted, oc.arr_delay)"
INLINE = f"(oc.cancelled OR oc.diverted OR oc.arr_delay >= {LATE_MINUTES})"


def upgrade() -> None:
    op.execute(FUNCTION)
    op.execute(PARTITION_OF)
    op.execute(FLIGHTS.format(label=CALL))
    op.execute(PREDICTIONS_VS_OUTCOMES.format(label=CALL))
    op.execute(BATCHES.format(tie_breaker=", batch_id DESC"))


def downgrade() -> None:
    op.execute(FLIGHTS.format(label=INLINE))
    op.execute(PREDICTIONS_VS_OUTCOMES.format(label=INLINE))
    op.execute(BATCHES.format(tie_breaker=""))
    op.execute("DROP FUNCTION core.disrupted(boolean, boolean, real)")
    op.execute("DROP FUNCTION scoring.partition_of(text, integer, text, integer)")
