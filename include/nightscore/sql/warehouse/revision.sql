SELECT version_num FROM ops.alembic_version
