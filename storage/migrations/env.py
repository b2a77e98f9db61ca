from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool, text

from storage.migrate import MIGRATION_LOCK
from storage.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool,
        # SQLite: wait for another process's migration rather than fail after the default 5 s.
        **({"connect_args": {"timeout": 60}} if config.get_main_option("sqlalchemy.url", "").startswith("sqlite") else {}),
    )
    with connectable.connect() as connection:
        # render_as_batch lets later migrations alter columns on SQLite (copy-and-move tables).
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Processes starting together on an empty database would race to create the same
                # tables: one migrates, the others wait here, then find the schema at head.
                # Held until this transaction commits; PostgreSQL DDL is transactional.
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            # SQLite: storage.migrate.upgrade holds a lock file around the whole upgrade.
            context.run_migrations()
    connectable.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
