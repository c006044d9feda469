-- How many days of the week had a drift check.
SELECT count(DISTINCT service_date) FROM monitoring.drift_runs
WHERE model_name = :model AND service_date BETWEEN :first AND :last
