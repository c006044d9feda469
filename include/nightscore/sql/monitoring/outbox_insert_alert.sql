-- Queue an alert; nothing when an alert with the same dedup_key is already queued.
INSERT INTO monitoring.alerts
    (rule, severity, service_date, subject, body, details, dedup_key,
     cooldown_key, audience, message, status)
VALUES (:rule, :severity, :service_date, :subject, :body,
        CAST(:details AS jsonb), :dedup_key, :cooldown_key, :audience, :message,
        :status)
ON CONFLICT (dedup_key) DO NOTHING
RETURNING alert_id
