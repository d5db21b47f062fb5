"""worker lease: heartbeat_at, worker, queued_at on tasks

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns: ALTER TABLE ADD COLUMN on both SQLite and PostgreSQL, no table rebuild.
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("heartbeat_at", sa.Float, nullable=True))
        batch.add_column(sa.Column("worker", sa.String(128), nullable=True))
        batch.add_column(sa.Column("queued_at", sa.Float, nullable=True))
    op.create_index("ix_tasks_status_heartbeat", "tasks", ["status", "heartbeat_at"])


def downgrade() -> None:
    op.drop_index("ix_tasks_status_heartbeat", "tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("queued_at")
        batch.drop_column("worker")
        batch.drop_column("heartbeat_at")
