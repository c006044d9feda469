-- Predictions of :first to :last joined with their outcomes. The label comes from
-- analytics.flights, the one place outside the feature query that says what "disrupted"
-- means; NULL until the flight's outcome is loaded, so those flights are left out.
SELECT p.service_date, p.carrier, p.origin, p.model_name, p.model_version, p.score,
       p.label, p.threshold, f.disrupted::int AS disrupted
FROM scoring.predictions p
JOIN analytics.flights f USING (service_date, carrier, flight, origin)
WHERE p.service_date BETWEEN :first AND :last AND f.disrupted IS NOT NULL
