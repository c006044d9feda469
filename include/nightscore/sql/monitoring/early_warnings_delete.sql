-- A re-run of the evening check replaces S's row for the version (its features cascade).
DELETE FROM monitoring.early_warnings
WHERE service_date = :day AND model_name = :name AND model_version = :version
