"""Alembic environment: runs migrations on the connection nightscore hands over."""

from alembic import context

connection = context.config.attributes["connection"]
# The version table lives in ops, which must exist before Alembic writes to it.
connection.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS ops")
context.configure(connection=connection, version_table_schema="ops")
with context.begin_transaction():
    context.run_migrations()
