SELECT to_regclass('ops.alembic_version')
