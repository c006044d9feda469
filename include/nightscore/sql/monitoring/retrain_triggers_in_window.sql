-- The retrains monitoring asked for between two service dates.
SELECT * FROM monitoring.retrain_triggers WHERE service_date BETWEEN :a AND :b
