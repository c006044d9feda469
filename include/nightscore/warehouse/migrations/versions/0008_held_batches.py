"""Held batches: a batch that would replace a loaded day with far fewer rows is `held`
(recorded, alerted, nothing loaded) until someone applies it on purpose; `applied_by`
says who did, and how.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"

STATUSES = "'received', 'validated', 'rejected', 'loaded'"


def upgrade() -> None:
    op.execute("ALTER TABLE ops.batches DROP CONSTRAINT batches_status_check")
    op.execute(
        "ALTER TABLE ops.batches ADD CONSTRAINT batches_status_check "
        f"CHECK (status IN ({STATUSES}, 'held'))"
    )
    op.execute("ALTER TABLE ops.batches ADD COLUMN applied_by text")
    op.execute(
        "COMMENT ON COLUMN ops.batches.applied_by IS "
        "'Who applied a held batch on purpose, and how (cli:user@host, airflow:run_id); "
        "NULL for batches that were never held.'"
    )


def downgrade() -> None:
    op.execute("UPDATE ops.batches SET status = 'rejected' WHERE status = 'held'")
    op.execute("ALTER TABLE ops.batches DROP COLUMN applied_by")
    op.execute("ALTER TABLE ops.batches DROP CONSTRAINT batches_status_check")
    op.execute(
        f"ALTER TABLE ops.batches ADD CONSTRAINT batches_status_check CHECK (status IN ({STATUSES}))"
    )
