WITH night AS (
    SELECT f.service_date, f.carrier, f.flight, f.origin, f.dest, f.tailnum, f.distance,
           f.sched_dep_time / 100 AS dep_hour, f.sched_dep_time % 100 AS dep_minute,
           (f.sched_arr_time / 100) % 24 AS arr_hour,
           count(*) OVER (PARTITION BY f.service_date, f.origin, f.sched_dep_time / 100)
               AS origin_hour_departures,
           count(*) OVER (PARTITION BY f.service_date, f.origin) AS origin_day_departures,
           count(*) OVER (PARTITION BY f.service_date, f.carrier) AS carrier_day_departures,
           count(*) OVER (PARTITION BY f.service_date, f.sched_dep_time / 100)
               AS nyc_hour_departures,
           CASE WHEN f.tailnum IS NOT NULL THEN
               (f.sched_dep_time / 100 * 60 + f.sched_dep_time % 100)
               - lag(f.sched_dep_time / 100 * 60 + f.sched_dep_time % 100)
                 OVER (PARTITION BY f.service_date, f.tailnum
                       ORDER BY f.sched_dep_time, f.flight) END AS plane_prev_gap_min,
           CASE WHEN f.tailnum IS NULL THEN 0 ELSE
               row_number() OVER (PARTITION BY f.service_date, f.tailnum
                                  ORDER BY f.sched_dep_time, f.flight) END AS plane_leg_of_day
    FROM core.flights f
    WHERE f.service_date BETWEEN :start AND :end
),
labelled AS (
    -- Flights whose label is known: the label is core.disrupted, defined once in the warehouse.
    SELECT f.service_date, f.carrier, f.flight, f.origin, f.dest, f.tailnum,
           f.sched_dep_time / 100 AS dep_hour,
           core.disrupted(o.cancelled, o.diverted, o.arr_delay) AS disrupted
    FROM core.outcomes o
    JOIN core.flights f USING (service_date, carrier, flight, origin)
    WHERE o.service_date BETWEEN CAST(:start AS date) - 29
                             AND CAST(:end AS date) - 2
      AND core.disrupted(o.cancelled, o.diverted, o.arr_delay) IS NOT NULL
),
hourly AS (
    -- One row per local hour (the autumn DST change repeats an hour: keep the first).
    SELECT DISTINCT ON (origin, service_date, hour) *
    FROM core.weather
    WHERE service_date BETWEEN :start AND :end
    ORDER BY origin, service_date, hour, time_hour
),
weather AS (
    SELECT origin, service_date, hour, temp, dewp, humid, wind_speed, wind_gust, precip,
           pressure, visib,
           sum(coalesce(precip, 0)) OVER day AS day_precip,
           count(*) FILTER (WHERE precip > 0) OVER day AS day_precip_hours,
           min(visib) OVER day AS day_min_visib,
           max(wind_speed) OVER day AS day_max_wind_speed,
           sum(coalesce(precip, 0)) OVER before AS precip_before_departure,
           min(visib) OVER before AS min_visib_before_departure,
           coalesce(sum(coalesce(precip, 0)) OVER after, 0) AS precip_after_departure,
           sum(coalesce(precip, 0)) OVER nyc / 3 AS nyc_day_precip
    FROM hourly
    WINDOW day AS (PARTITION BY origin, service_date),
           before AS (PARTITION BY origin, service_date ORDER BY hour
                      RANGE BETWEEN 3 PRECEDING AND CURRENT ROW),
           after AS (PARTITION BY origin, service_date ORDER BY hour
                     RANGE BETWEEN 1 FOLLOWING AND 3 FOLLOWING),
           nyc AS (PARTITION BY service_date)
),
-- One row per service date: the calendar features, each window's prior (the rate of all
-- flights in the window) and the rate of a key without history, once per date.
priors AS (
    SELECT service_date,
           coalesce(k_hist::float8 / nullif(n_hist, 0), 0.25) AS hist_prior,
           coalesce(k_recent::float8 / nullif(n_recent, 0), 0.25) AS recent_prior,
           coalesce(k_last_day::float8 / nullif(n_last_day, 0), 0.25) AS last_day_prior
    FROM (
        SELECT service_date, probe,
               sum(n) OVER hist AS n_hist, sum(k) OVER hist AS k_hist,
               sum(n) OVER recent AS n_recent, sum(k) OVER recent AS k_recent,
               sum(n) OVER last_day AS n_last_day, sum(k) OVER last_day AS k_last_day
        FROM (
            SELECT service_date, count(*) AS n, sum(disrupted::int) AS k, false AS probe
            FROM labelled GROUP BY service_date
            UNION ALL
            SELECT d::date, 0, 0, true
            FROM generate_series(CAST(:start AS date), CAST(:end AS date), '1 day') d
        ) rows
        WINDOW hist AS (ORDER BY service_date RANGE BETWEEN '29 days' PRECEDING AND '2 days' PRECEDING),
               recent AS (ORDER BY service_date RANGE BETWEEN '8 days' PRECEDING AND '2 days' PRECEDING),
               last_day AS (ORDER BY service_date RANGE BETWEEN '2 days' PRECEDING AND '2 days' PRECEDING)
    ) windowed
    WHERE probe
),
days AS (
    -- The shrunk rate of 0 flights, written as such: 20 * p / 20 may differ from p in its
    -- last bit, and the features must not change.
    SELECT priors.*,
           20 * hist_prior / 20 AS hist_no_history,
           20 * recent_prior / 20 AS recent_no_history,
           20 * last_day_prior / 20 AS last_day_no_history,
           extract(year FROM service_date)::int AS year,
           extract(month FROM service_date)::int AS month,
           extract(isodow FROM service_date)::int AS day_of_week,
           (SELECT min(abs(h - service_date)) FROM unnest(CAST(:holidays AS date[])) h)
               AS days_to_holiday
    FROM priors
),
hist_carrier AS (
    SELECT service_date, carrier,
           (coalesce(k_hist, 0) + 20 * days.hist_prior) / (coalesce(n_hist, 0) + 20) AS hist_carrier_rate,
           (coalesce(k_recent, 0) + 20 * days.recent_prior) / (coalesce(n_recent, 0) + 20) AS recent_carrier_rate,
           (coalesce(k_last_day, 0) + 20 * days.last_day_prior) / (coalesce(n_last_day, 0) + 20) AS last_day_carrier_rate
    FROM (
        SELECT service_date, carrier, probe,
               sum(n) OVER hist AS n_hist, sum(k) OVER hist AS k_hist,
               sum(n) OVER recent AS n_recent, sum(k) OVER recent AS k_recent,
               sum(n) OVER last_day AS n_last_day, sum(k) OVER last_day AS k_last_day
        FROM (
            SELECT service_date, carrier, count(*) AS n, sum(disrupted::int) AS k, false AS probe
            FROM labelled GROUP BY service_date, carrier
            UNION ALL
            SELECT DISTINCT service_date, carrier, 0, 0, true FROM night
            WHERE (carrier) IN (SELECT carrier FROM labelled)
        ) rows
        WINDOW hist AS (PARTITION BY carrier ORDER BY service_date RANGE BETWEEN '29 days' PRECEDING AND '2 days' PRECEDING),
               recent AS (PARTITION BY carrier ORDER BY service_date RANGE BETWEEN '8 days' PRECEDING AND '2 days' PRECEDING),
               last_day AS (PARTITION BY carrier ORDER BY service_date RANGE BETWEEN '2 days' PRECEDING AND '2 days' PRECEDING)
    ) windowed
    JOIN days USING (service_date)
    WHERE probe
),
hist_route AS (
    SELECT service_date, origin, dest,
           (coalesce(k_hist, 0) + 20 * days.hist_prior) / (coalesce(n_hist, 0) + 20) AS hist_route_rate
    FROM (
        SELECT service_date, origin, dest, probe,
               sum(n) OVER hist AS n_hist, sum(k) OVER hist AS k_hist
        FROM (
            SELECT service_date, origin, dest, count(*) AS n, sum(disrupted::int) AS k, false AS probe
            FROM labelled GROUP BY service_date, origin, dest
            UNION ALL
            SELECT DISTINCT service_date, origin, dest, 0, 0, true FROM night
            WHERE (origin, dest) IN (SELECT origin, dest FROM labelled)
        ) rows
        WINDOW hist AS (PARTITION BY origin, dest ORDER BY service_date RANGE BETWEEN '29 days' PRECEDING AND '2 days' PRECEDING)
    ) windowed
    JOIN days USING (service_date)
    WHERE probe
),
hist_origin_hour AS (
    SELECT service_date, origin, dep_hour,
           (coalesce(k_hist, 0) + 20 * days.hist_prior) / (coalesce(n_hist, 0) + 20) AS hist_origin_hour_rate
    FROM (
        SELECT service_date, origin, dep_hour, probe,
               sum(n) OVER hist AS n_hist, sum(k) OVER hist AS k_hist
        FROM (
            SELECT service_date, origin, dep_hour, count(*) AS n, sum(disrupted::int) AS k, false AS probe
            FROM labelled GROUP BY service_date, origin, dep_hour
            UNION ALL
            SELECT DISTINCT service_date, origin, dep_hour, 0, 0, true FROM night
            WHERE (origin, dep_hour) IN (SELECT origin, dep_hour FROM labelled)
        ) rows
        WINDOW hist AS (PARTITION BY origin, dep_hour ORDER BY service_date RANGE BETWEEN '29 days' PRECEDING AND '2 days' PRECEDING)
    ) windowed
    JOIN days USING (service_date)
    WHERE probe
),
hist_route_hour AS (
    SELECT service_date, origin, dest, dep_hour,
           (coalesce(k_hist, 0) + 20 * days.hist_prior) / (coalesce(n_hist, 0) + 20) AS hist_route_hour_rate
    FROM (
        SELECT service_date, origin, dest, dep_hour, probe,
               sum(n) OVER hist AS n_hist, sum(k) OVER hist AS k_hist
        FROM (
            SELECT service_date, origin, dest, dep_hour, count(*) AS n, sum(disrupted::int) AS k, false AS probe
            FROM labelled GROUP BY service_date, origin, dest, dep_hour
            UNION ALL
            SELECT DISTINCT service_date, origin, dest, dep_hour, 0, 0, true FROM night
            WHERE (origin, dest, dep_hour) IN (SELECT origin, dest, dep_hour FROM labelled)
        ) rows
        WINDOW hist AS (PARTITION BY origin, dest, dep_hour ORDER BY service_date RANGE BETWEEN '29 days' PRECEDING AND '2 days' PRECEDING)
    ) windowed
    JOIN days USING (service_date)
    WHERE probe
),
hist_flight AS (
    SELECT service_date, carrier, flight, origin,
           (coalesce(k_hist, 0) + 20 * days.hist_prior) / (coalesce(n_hist, 0) + 20) AS hist_flight_rate,
           coalesce(n_hist, 0) AS hist_flight_count
    FROM (
        SELECT service_date, carrier, flight, origin, probe,
               sum(n) OVER hist AS n_hist, sum(k) OVER hist AS k_hist
        FROM (
            SELECT service_date, carrier, flight, origin, count(*) AS n, sum(disrupted::int) AS k, false AS probe
            FROM labelled GROUP BY service_date, carrier, flight, origin
            UNION ALL
            SELECT DISTINCT service_date, carrier, flight, origin, 0, 0, true FROM night
            WHERE (carrier, flight, origin) IN (SELECT carrier, flight, origin FROM labelled)
        ) rows
        WINDOW hist AS (PARTITION BY carrier, flight, origin ORDER BY service_date RANGE BETWEEN '29 days' PRECEDING AND '2 days' PRECEDING)
    ) windowed
    JOIN days USING (service_date)
    WHERE probe
),
hist_dest AS (
    SELECT service_date, dest,
           (coalesce(k_hist, 0) + 20 * days.hist_prior) / (coalesce(n_hist, 0) + 20) AS hist_dest_rate
    FROM (
        SELECT service_date, dest, probe,
               sum(n) OVER hist AS n_hist, sum(k) OVER hist AS k_hist
        FROM (
            SELECT service_date, dest, count(*) AS n, sum(disrupted::int) AS k, false AS probe
            FROM labelled GROUP BY service_date, dest
            UNION ALL
            SELECT DISTINCT service_date, dest, 0, 0, true FROM night
            WHERE (dest) IN (SELECT dest FROM labelled)
        ) rows
        WINDOW hist AS (PARTITION BY dest ORDER BY service_date RANGE BETWEEN '29 days' PRECEDING AND '2 days' PRECEDING)
    ) windowed
    JOIN days USING (service_date)
    WHERE probe
),
hist_plane AS (
    SELECT service_date, tailnum,
           (coalesce(k_hist, 0) + 20 * days.hist_prior) / (coalesce(n_hist, 0) + 20) AS hist_plane_rate
    FROM (
        SELECT service_date, tailnum, probe,
               sum(n) OVER hist AS n_hist, sum(k) OVER hist AS k_hist
        FROM (
            SELECT service_date, tailnum, count(*) AS n, sum(disrupted::int) AS k, false AS probe
            FROM labelled GROUP BY service_date, tailnum
            UNION ALL
            SELECT DISTINCT service_date, tailnum, 0, 0, true FROM night
            WHERE (tailnum) IN (SELECT tailnum FROM labelled)
        ) rows
        WINDOW hist AS (PARTITION BY tailnum ORDER BY service_date RANGE BETWEEN '29 days' PRECEDING AND '2 days' PRECEDING)
    ) windowed
    JOIN days USING (service_date)
    WHERE probe
),
hist_origin AS (
    SELECT service_date, origin,
           (coalesce(k_recent, 0) + 20 * days.recent_prior) / (coalesce(n_recent, 0) + 20) AS recent_origin_rate,
           (coalesce(k_last_day, 0) + 20 * days.last_day_prior) / (coalesce(n_last_day, 0) + 20) AS last_day_origin_rate
    FROM (
        SELECT service_date, origin, probe,
               sum(n) OVER recent AS n_recent, sum(k) OVER recent AS k_recent,
               sum(n) OVER last_day AS n_last_day, sum(k) OVER last_day AS k_last_day
        FROM (
            SELECT service_date, origin, count(*) AS n, sum(disrupted::int) AS k, false AS probe
            FROM labelled GROUP BY service_date, origin
            UNION ALL
            SELECT DISTINCT service_date, origin, 0, 0, true FROM night
            WHERE (origin) IN (SELECT origin FROM labelled)
        ) rows
        WINDOW recent AS (PARTITION BY origin ORDER BY service_date RANGE BETWEEN '8 days' PRECEDING AND '2 days' PRECEDING),
               last_day AS (PARTITION BY origin ORDER BY service_date RANGE BETWEEN '2 days' PRECEDING AND '2 days' PRECEDING)
    ) windowed
    JOIN days USING (service_date)
    WHERE probe
)
SELECT night.service_date, night.carrier, night.flight, night.origin, night.dest,
       days.month, days.day_of_week,
       night.dep_hour, night.dep_minute, night.arr_hour, night.distance, days.days_to_holiday,
       night.origin_hour_departures, night.origin_day_departures,
       night.carrier_day_departures, night.nyc_hour_departures, night.plane_leg_of_day,
       night.plane_prev_gap_min,
       w.temp, w.dewp, w.humid, w.wind_speed, w.wind_gust, w.precip, w.pressure, w.visib,
       w.day_precip, w.day_precip_hours, w.day_min_visib, w.day_max_wind_speed,
       w.precip_before_departure, w.min_visib_before_departure, w.precip_after_departure,
       w.nyc_day_precip,
       days.year - p.year AS plane_age,
       p.seats AS plane_seats, p.engines AS plane_engines,
       (p.tailnum IS NOT NULL)::int AS plane_known,
       coalesce(hist_carrier.hist_carrier_rate, days.hist_no_history) AS hist_carrier_rate,
       coalesce(hist_route.hist_route_rate, days.hist_no_history) AS hist_route_rate,
       coalesce(hist_origin_hour.hist_origin_hour_rate, days.hist_no_history) AS hist_origin_hour_rate,
       coalesce(hist_route_hour.hist_route_hour_rate, days.hist_no_history) AS hist_route_hour_rate,
       coalesce(hist_flight.hist_flight_rate, days.hist_no_history) AS hist_flight_rate,
       coalesce(hist_dest.hist_dest_rate, days.hist_no_history) AS hist_dest_rate,
       coalesce(hist_flight.hist_flight_count, 0) AS hist_flight_count,
       coalesce(hist_plane.hist_plane_rate, days.hist_no_history) AS hist_plane_rate,
       coalesce(hist_origin.recent_origin_rate, days.recent_no_history) AS recent_origin_rate,
       coalesce(hist_carrier.recent_carrier_rate, days.recent_no_history) AS recent_carrier_rate,
       coalesce(hist_origin.last_day_origin_rate, days.last_day_no_history) AS last_day_origin_rate,
       coalesce(hist_carrier.last_day_carrier_rate, days.last_day_no_history) AS last_day_carrier_rate,
       CASE WHEN o.service_date IS NULL THEN NULL
            ELSE core.disrupted(o.cancelled, o.diverted, o.arr_delay)::int END AS disrupted
FROM night
JOIN days ON days.service_date = night.service_date
LEFT JOIN weather w
       ON w.origin = night.origin AND w.service_date = night.service_date
      AND w.hour = night.dep_hour
LEFT JOIN core.planes p ON p.tailnum = night.tailnum
LEFT JOIN core.outcomes o
       ON o.service_date = night.service_date AND o.carrier = night.carrier
      AND o.flight = night.flight AND o.origin = night.origin
LEFT JOIN hist_carrier ON hist_carrier.service_date = night.service_date AND hist_carrier.carrier = night.carrier
LEFT JOIN hist_route ON hist_route.service_date = night.service_date AND hist_route.origin = night.origin AND hist_route.dest = night.dest
LEFT JOIN hist_origin_hour ON hist_origin_hour.service_date = night.service_date AND hist_origin_hour.origin = night.origin AND hist_origin_hour.dep_hour = night.dep_hour
LEFT JOIN hist_route_hour ON hist_route_hour.service_date = night.service_date AND hist_route_hour.origin = night.origin AND hist_route_hour.dest = night.dest AND hist_route_hour.dep_hour = night.dep_hour
LEFT JOIN hist_flight ON hist_flight.service_date = night.service_date AND hist_flight.carrier = night.carrier AND hist_flight.flight = night.flight AND hist_flight.origin = night.origin
LEFT JOIN hist_dest ON hist_dest.service_date = night.service_date AND hist_dest.dest = night.dest
LEFT JOIN hist_plane ON hist_plane.service_date = night.service_date AND hist_plane.tailnum = night.tailnum
LEFT JOIN hist_origin ON hist_origin.service_date = night.service_date AND hist_origin.origin = night.origin
ORDER BY night.service_date, night.carrier, night.flight, night.origin
