"""What an executor sees and says: the request it runs (a snapshot) and its two kinds of "no".

Its own module, below the executors (bot/approvals/actions.py, and those registered by other
features at start-up), so an executor's helpers can name these without importing the registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.orm import Session

from bot.services import Services


class ActionFailed(Exception):
    """`recheck`: the failure was judged after an unknown outcome, and the action may still land
    (a slow provider finishing after our timeout); the worker looks again for a while."""

    def __init__(self, reason: str, *, recheck: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.recheck = recheck


class OutcomeUnknown(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Pending:
    """What an executor sees of the request it runs (a snapshot, outside any transaction)."""

    id: int
    kind: str
    team_id: str
    target: str
    requested_by: str
    channel_id: str | None
    detail: dict[str, Any] = field(default_factory=dict)
    approvers: tuple[str, ...] = ()
    provider: str = "openai"  # where the model is, or where the job is to run

    @property
    def idempotency_key(self) -> str:
        return f"approval-{self.id}"


class Executor(Protocol):
    def run(self, services: Services, req: Pending) -> dict[str, Any]: ...
    def resolve(self, services: Services, req: Pending, why: str) -> dict[str, Any] | None: ...
    def after_done(self, session: Session, req: Pending, result: dict[str, Any]) -> None: ...
