-- Forget the day's rule checks of the model before they are written again.
DELETE FROM monitoring.rule_checks WHERE service_date = :day AND model_name = :name
