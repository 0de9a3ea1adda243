"""SQLAlchemy 2 models: idempotency ledger and audit trail (inbox, cross-references and rollups
join them as the gateway and edge issues land)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class LedgerEntry(Base):
    """One posting to an outside system, keyed by its deterministic idempotency key.

    Written before the call (`started`) and after it (`succeeded` / `rejected`): a key that is
    `succeeded` is never posted again; a key left `started` by a crash makes the connector look
    the posting up in the target system by its external key before posting again.
    """

    __tablename__ = "ledger"

    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    workflow_id: Mapped[str] = mapped_column(String(120), index=True)
    step_kind: Mapped[str] = mapped_column(String(60))
    system: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(12))
    documents: Mapped[list[str]] = mapped_column(JSON, default=list)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The attempt whose connector call is in flight (activities/base.py), and until when its lease
    # holds: renewed by its heartbeat; another attempt waits rather than look up and post beside it.
    lease_owner: Mapped[str | None] = mapped_column(String(250), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AuditRecord(Base):
    """Who did what to which order, when: supervisor levers, exceptions, holds."""

    __tablename__ = "audit"
    __table_args__ = (Index("ix_audit_plant_order", "plant", "order_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    workflow_id: Mapped[str] = mapped_column(String(120), index=True)
    plant: Mapped[str] = mapped_column(String(10))
    order_number: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(60))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Deterministic key from the saga, so a retried audit activity writes one record.
    dedup_key: Mapped[str | None] = mapped_column(String(250), unique=True, nullable=True)
