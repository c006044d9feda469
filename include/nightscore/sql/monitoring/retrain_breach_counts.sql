-- Per retrain rule breached in the window, by the model version checked on its last
-- day, the days it was breached, whether the last day is one of them, and its value
-- on the last day.
SELECT c.rule, count(*) AS days, bool_or(c.service_date = :last) AS latest,
       max(c.value) FILTER (WHERE c.service_date = :last) AS value
FROM monitoring.rule_checks c
JOIN monitoring.rule_checks today
  ON today.service_date = :last AND today.rule = c.rule
 AND today.model_name = c.model_name AND today.model_version = c.model_version
WHERE c.service_date BETWEEN :first AND :last AND c.breached AND c.retrain
  AND c.model_name = :name
GROUP BY c.rule
