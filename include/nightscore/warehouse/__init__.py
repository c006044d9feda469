"""The warehouse: one Postgres database with the schemas ops, core, scoring, monitoring,
ml and analytics. Schema changes are Alembic migrations (`nightscore db upgrade`)."""

from nightscore.warehouse.db import engine_for, upgrade

__all__ = ["engine_for", "upgrade"]
