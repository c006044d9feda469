SELECT count(*) FROM monitoring.alerts WHERE status = 'pending'
