-- What `core` holds for S: the schedule's flights and weather hours, and the outcomes.
SELECT (SELECT count(*) FROM core.flights WHERE service_date = :service_date) AS flights,
       (SELECT count(*) FROM core.weather WHERE service_date = :service_date) AS weather,
       (SELECT count(*) FROM core.outcomes WHERE service_date = :service_date) AS outcomes
