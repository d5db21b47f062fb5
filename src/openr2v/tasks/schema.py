"""SQLAlchemy tables of the task store. Alembic migrations (openr2v/migrations) create them."""

from __future__ import annotations

from sqlalchemy import Float, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base", "DeliveryRow", "LedgerRow", "QuotaChargeRow", "QuotaOverrideRow", "TaskRow", "UploadRow"]


class Base(DeclarativeBase):
    pass


class TaskRow(Base):
    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    region: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(64))
    dialect: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    request_json: Mapped[str] = mapped_column(Text)
    submit_time: Mapped[float] = mapped_column(Float, index=True)
    scheduled_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    end_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    code: Mapped[str | None] = mapped_column(String(128), nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    output_key: Mapped[str | None] = mapped_column(String(256), nullable=True)
    usage_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    orig_prompt: Mapped[str | None] = mapped_column(Text, nullable=True)
    actual_prompt: Mapped[str | None] = mapped_column(Text, nullable=True)
    plan_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    request_id: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    extra_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The worker's lease (migration 0002): renewed while it renders; a stale one means the worker is lost.
    heartbeat_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # When a wake-up for this PENDING task was last published (the reaper re-publishes lost ones).
    queued_at: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (Index("ix_tasks_owner_submit", "owner", "submit_time"),
                      Index("ix_tasks_status_heartbeat", "status", "heartbeat_at"))


class LedgerRow(Base):
    """Billed seconds per succeeded task; written in the same transaction as SUCCEEDED."""

    __tablename__ = "ledger"

    task_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    model: Mapped[str] = mapped_column(String(64))
    input_seconds: Mapped[float] = mapped_column(Float)
    output_seconds: Mapped[float] = mapped_column(Float)
    billed_seconds: Mapped[float] = mapped_column(Float)
    cost_usd: Mapped[float] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float)


class UploadRow(Base):
    """An object uploaded through the getPolicy flow, addressable as oss://<key>."""

    __tablename__ = "uploads"

    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class QuotaChargeRow(Base):
    """What a task takes from its key's quota (tasks/quotas.py): reserved at submit, used once SUCCEEDED,
    deleted when it FAILS or is CANCELED. ``created_at`` (the submit time) places it in a day and month."""

    __tablename__ = "quota_charges"

    task_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # reserved | used
    billed_seconds: Mapped[float] = mapped_column(Float)
    free_seconds: Mapped[float] = mapped_column(Float)
    cost_usd: Mapped[float] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_quota_charges_owner_created", "owner", "created_at"),)


class QuotaOverrideRow(Base):
    """A key's limits as an admin set them at run time; they win over OPENR2V_QUOTAS."""

    __tablename__ = "quota_overrides"

    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    limits_json: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[float] = mapped_column(Float)


class DeliveryRow(Base):
    """The webhook outbox (migration 0003): one row per status change of a task with a callback URL,
    written in the transaction that changes the status; dispatchers on any node claim and send them."""

    __tablename__ = "webhook_deliveries"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)  # order of a task's events
    id: Mapped[str] = mapped_column(String(64))  # webhook-id: the same on every attempt
    task_id: Mapped[str] = mapped_column(String(64), index=True)
    owner: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(Text)
    event: Mapped[str] = mapped_column(String(16))  # the task status it announces
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))  # pending | delivered | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ux_webhook_deliveries_id", "id", unique=True),
                      Index("ix_webhook_deliveries_state_next", "state", "next_attempt_at"),
                      Index("ix_webhook_deliveries_owner_state", "owner", "state"))
