"""What each kind of request does once approved: kind -> Executor.

An executor's `run` raises ActionFailed (a known "no": nothing happened) or OutcomeUnknown (the
provider did not answer: it may or may not have happened). After OutcomeUnknown, `resolve` looks
at the world (reads the model back; finds the job by its idempotency key) before anything is said;
it returns None when it still cannot tell, and the worker asks again later.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from bot.approvals.job_note import note_model_deleted
from bot.approvals.job_start import start_from_request
from bot.approvals.pending import ActionFailed, Executor, OutcomeUnknown, Pending
from bot.provider.base import (
    ProviderError,
    ProviderNotFound,
    ProviderPermissionError,
    ProviderRateLimited,
    ProviderUnavailable,
)
from bot.services import Services
from storage.models import Job
from storage.types import utcnow

# ---- delete_model -----------------------------------------------------------------------------


class DeleteModel:
    def run(self, services: Services, req: Pending) -> dict[str, Any]:
        try:
            deleted = services.provider_for(req.provider).delete_model(req.target)
        except ProviderNotFound as exc:
            raise ActionFailed(f"the provider has no model {req.target} (deleted already?): {exc.reason}") from exc
        except ProviderPermissionError as exc:
            raise ActionFailed(f"{exc.reason} (deleting a model needs the provider's owner role)") from exc
        except (ProviderUnavailable, ProviderRateLimited) as exc:
            raise OutcomeUnknown(exc.reason) from exc
        except ProviderError as exc:
            raise ActionFailed(exc.reason) from exc
        if not deleted:
            raise ActionFailed("the provider answered but did not confirm the deletion")
        return {"deleted": True}

    def resolve(self, services: Services, req: Pending, why: str) -> dict[str, Any] | None:
        try:
            present = any(m.id == req.target for m in services.provider_for(req.provider).list_models())
        except ProviderError:
            return None
        if present:
            raise ActionFailed(f"{why}; the model is still there, nothing was deleted", recheck=True)
        return {"deleted": True, "confirmed": "read back after: " + why}

    def after_done(self, session: Session, req: Pending, result: dict[str, Any]) -> None:
        session.execute(update(Job).where(Job.fine_tuned_model == req.target, Job.model_deleted_at.is_(None)).values(model_deleted_at=utcnow()))
        note_model_deleted(session, req)


# ---- job_budget -------------------------------------------------------------------------------

# (services, pending request) -> {"job": provider job id, ...}. Must be idempotent on
# req.idempotency_key: it is called again when an earlier call's outcome is unknown.
JobStarter = Callable[[Services, Pending], dict[str, Any]]
_job_starter: list[JobStarter] = []


def set_job_starter(fn: JobStarter | None) -> None:
    """Replace how an approved job is created (default: bot.approvals.job_start.start_from_request)."""
    _job_starter.clear()
    if fn is not None:
        _job_starter.append(fn)


class StartJob:
    def _starter(self) -> JobStarter:
        if _job_starter:
            return _job_starter[0]
        return start_from_request

    def run(self, services: Services, req: Pending) -> dict[str, Any]:
        try:
            return self._starter()(services, req)
        except (ProviderUnavailable, ProviderRateLimited) as exc:
            raise OutcomeUnknown(exc.reason) from exc
        except ProviderError as exc:
            raise ActionFailed(exc.reason) from exc

    def resolve(self, services: Services, req: Pending, why: str) -> dict[str, Any] | None:
        # The starter is idempotent on the request's key: asking again finds the job if it was made.
        try:
            return self.run(services, req)
        except OutcomeUnknown:
            return None

    def after_done(self, session: Session, req: Pending, result: dict[str, Any]) -> None:
        return None


EXECUTORS: dict[str, Executor] = {"delete_model": DeleteModel(), "job_budget": StartJob()}

__all__ = ["EXECUTORS", "ActionFailed", "DeleteModel", "Executor", "OutcomeUnknown", "Pending", "StartJob", "register_executor", "set_job_starter"]


def register_executor(kind: str, executor: Executor) -> None:
    """A kind of request another feature runs once approved (an evaluation over the budget:
    bot/evals/gate.py), registered at start-up by bot/wiring.py."""
    EXECUTORS[kind] = executor
