-- The monitored features that drifted on a day of the week, with the test's statistic.
SELECT column_name AS feature, service_date, method, statistic
FROM monitoring.drift
WHERE model_name = :model AND service_date BETWEEN :first AND :last
  AND monitored AND drifted
