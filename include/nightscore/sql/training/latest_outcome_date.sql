SELECT max(service_date) FROM core.outcomes
