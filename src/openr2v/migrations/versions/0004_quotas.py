"""quotas: per-task charges (reserved, then used) and admin overrides of a key's limits

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quota_charges",
        sa.Column("task_id", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("billed_seconds", sa.Float, nullable=False),
        sa.Column("free_seconds", sa.Float, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_quota_charges_owner_created", "quota_charges", ["owner", "created_at"])
    op.create_table(
        "quota_overrides",
        sa.Column("owner", sa.String(64), primary_key=True),
        sa.Column("limits_json", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    # What keys were billed before quotas existed counts as their usage.
    op.execute("INSERT INTO quota_charges (task_id, owner, state, billed_seconds, free_seconds, cost_usd, created_at) "
               "SELECT task_id, owner, 'used', billed_seconds, 0.0, cost_usd, created_at FROM ledger")


def downgrade() -> None:
    op.drop_table("quota_overrides")
    op.drop_index("ix_quota_charges_owner_created", "quota_charges")
    op.drop_table("quota_charges")
