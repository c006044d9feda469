DELETE FROM scoring.predictions
WHERE service_date = :service_date AND model_name = :model_name
