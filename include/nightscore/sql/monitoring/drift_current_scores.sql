-- The score one model version gave each flight of the day.
SELECT service_date, carrier, flight, origin, score
FROM scoring.predictions
WHERE service_date = :day AND model_name = :name AND model_version = :version
