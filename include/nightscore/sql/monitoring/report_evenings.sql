-- The week's evening early warnings (the champion's check of each night: the version that
-- scored most flights), next to how each night turned out (NULL: outcomes not in yet).
SELECT DISTINCT ON (service_date) service_date, warned, turned_out_bad
FROM monitoring.early_warnings
WHERE model_name = :model AND service_date BETWEEN :first AND :last
ORDER BY service_date, flights DESC, model_version DESC
