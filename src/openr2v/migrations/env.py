"""Alembic environment: runs with the connection openr2v hands it (see tasks/store.py)."""

from __future__ import annotations

from alembic import context

from openr2v.tasks.schema import Base

config = context.config
target_metadata = Base.metadata

connection = config.attributes.get("connection")
if connection is None:  # invoked from the alembic CLI
    from sqlalchemy import create_engine

    connection = create_engine(config.get_main_option("sqlalchemy.url") or "").connect()

context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
