-- Forget S's performance rows before they are written again.
DELETE FROM monitoring.performance WHERE service_date = :service_date
