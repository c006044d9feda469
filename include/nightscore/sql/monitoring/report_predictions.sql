-- The model's predictions between two service dates with their routes and, once the
-- outcome is loaded, whether the flight was disrupted (from analytics.flights; NULL
-- until then).
SELECT p.service_date, p.origin, f.dest, f.dest_name, p.model_version,
       p.score, p.label, p.threshold, f.disrupted::int AS disrupted
FROM scoring.predictions p
JOIN analytics.flights f USING (service_date, carrier, flight, origin)
WHERE p.model_name = :model AND p.service_date BETWEEN :first AND :last
