-- The alerts raised between two service dates, but the weekly reports themselves.
SELECT service_date, severity, rule, subject, status
FROM monitoring.alerts
WHERE service_date BETWEEN :first AND :last AND rule <> :rule
ORDER BY service_date, alert_id
