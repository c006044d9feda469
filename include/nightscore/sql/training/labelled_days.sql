SELECT count(DISTINCT service_date) FROM core.outcomes
WHERE service_date BETWEEN :first AND :last
