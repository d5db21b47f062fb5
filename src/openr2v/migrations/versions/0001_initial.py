"""initial: tasks, ledger, uploads

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("region", sa.String(16), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("dialect", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Integer, nullable=False),
        sa.Column("request_json", sa.Text, nullable=False),
        sa.Column("submit_time", sa.Float, nullable=False),
        sa.Column("scheduled_time", sa.Float, nullable=True),
        sa.Column("end_time", sa.Float, nullable=True),
        sa.Column("code", sa.String(128), nullable=True),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("output_key", sa.String(256), nullable=True),
        sa.Column("usage_json", sa.Text, nullable=True),
        sa.Column("orig_prompt", sa.Text, nullable=True),
        sa.Column("actual_prompt", sa.Text, nullable=True),
        sa.Column("plan_json", sa.Text, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("extra_json", sa.Text, nullable=True),
    )
    op.create_index("ix_tasks_owner", "tasks", ["owner"])
    op.create_index("ix_tasks_status", "tasks", ["status"])
    op.create_index("ix_tasks_submit_time", "tasks", ["submit_time"])
    op.create_index("ix_tasks_expires_at", "tasks", ["expires_at"])
    op.create_index("ix_tasks_owner_submit", "tasks", ["owner", "submit_time"])
    op.create_table(
        "ledger",
        sa.Column("task_id", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("input_seconds", sa.Float, nullable=False),
        sa.Column("output_seconds", sa.Float, nullable=False),
        sa.Column("billed_seconds", sa.Float, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_ledger_owner", "ledger", ["owner"])
    op.create_table(
        "uploads",
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("content_type", sa.String(128), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_uploads_owner", "uploads", ["owner"])
    op.create_index("ix_uploads_expires_at", "uploads", ["expires_at"])


def downgrade() -> None:
    op.drop_table("uploads")
    op.drop_table("ledger")
    op.drop_table("tasks")
