"""The audit log: every request, vote (refused ones with why), expiry, rejection and outcome."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.messages.audit import AuditEntry
from bot.services import Services
from storage.models import ApprovalRequest, AuditLog
from storage.types import utcnow

MAX_ENTRIES = 200


def record(session: Session, req: ApprovalRequest, action: str, actor: str | None, **detail: Any) -> None:
    """One entry, in the caller's transaction: the log and the change it describes commit together."""
    session.add(
        AuditLog(
            team_id=req.team_id,
            actor=actor,
            action=action,
            target=req.target,
            detail={"request": req.id, "kind": req.kind, **{k: v for k, v in detail.items() if v is not None}},
            created_at=utcnow(),
        )
    )


def latest(services: Services, team_id: str, n: int) -> list[AuditEntry]:
    n = max(1, min(n, MAX_ENTRIES))
    with services.db.session() as s:
        rows = s.scalars(select(AuditLog).where(AuditLog.team_id == team_id).order_by(AuditLog.created_at.desc(), AuditLog.id.desc()).limit(n)).all()
        return [AuditEntry(r.created_at, r.actor, r.action, r.target, dict(r.detail or {})) for r in rows]
