"""ftbot's persistence: SQLAlchemy models, engine/session helpers and Alembic migrations."""
