"""Announce and subscribe: the one place where a change meets the features that react to it.

A subscriber picks when it runs, on purpose:
- IN_TRANSACTION: inside the announcer's transaction, so what it writes commits together with the
  change or not at all (a migration moving on with its job, an evaluation created once when its job
  succeeds). It is called once per event, inside a SAVEPOINT: if it raises, only its own writes are
  undone, the error is logged, the change it reacts to still commits, and it is called once more
  after the commit in a transaction of its own (subscribers are idempotent: they check the state
  they move on from).
- AFTER_COMMIT: after the announcer's transaction committed, in a transaction of its own (a
  subscriber that may ask a provider, or may fail alone: the retirement check of new models). It is
  called once per committed transaction with all of that transaction's events of its type; a
  failure is logged and loses nothing of the change. A transaction that rolls back runs none.

Subscribers are registered at start-up by the composition root (bot/wiring.py), never by the
announcer: the announcer does not know who listens.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from bot.services import Services
    from bot.settings import Settings

log = logging.getLogger(__name__)

IN_TRANSACTION = "in_transaction"
AFTER_COMMIT = "after_commit"
_PENDING = "ftbot_after_commit"


@dataclass(frozen=True)
class Context:
    """What a subscriber gets besides the event: the session to write in (the announcer's, or its
    own after the commit) and, when the announcer has them, the settings and the services."""

    session: Session
    settings: Settings | None = None
    services: Services | None = None


@dataclass(frozen=True)
class _Subscriber:
    name: str
    handler: Callable[..., Any]
    phase: str


_subscribers: dict[type, dict[str, _Subscriber]] = {}


def subscribe(event_type: type, handler: Callable[..., Any], *, phase: str, name: str | None = None) -> str:
    """Register `handler` for events of `event_type`. IN_TRANSACTION handlers are called as
    handler(ctx, event); AFTER_COMMIT handlers as handler(ctx, events). Registering the same name
    again replaces it (wiring twice is harmless). Returns the name."""
    if phase not in (IN_TRANSACTION, AFTER_COMMIT):
        raise ValueError(f"phase must be {IN_TRANSACTION!r} or {AFTER_COMMIT!r}, not {phase!r}")
    name = name or f"{handler.__module__}.{handler.__qualname__}"
    _subscribers.setdefault(event_type, {})[name] = _Subscriber(name, handler, phase)
    return name


def unsubscribe(event_type: type, name: str) -> None:
    _subscribers.get(event_type, {}).pop(name, None)


def subscribers(event_type: type) -> list[tuple[str, str]]:
    """(name, phase) of each subscriber of this event type, in registration order."""
    return [(s.name, s.phase) for s in _subscribers.get(event_type, {}).values()]


def announce(session: Session, event: Any, *, settings: Settings | None = None, services: Services | None = None) -> None:
    """Tell the subscribers of `event`'s type, inside the caller's transaction (`session`)."""
    subs = list(_subscribers.get(type(event), {}).values())
    if not subs:
        return
    ctx = Context(session, settings if settings is not None else (services.settings if services is not None else None), services)
    for sub in subs:
        if sub.phase == AFTER_COMMIT:
            _later(session, sub, event, ctx)
            continue
        try:
            with session.begin_nested():
                sub.handler(ctx, event)
        except Exception:  # noqa: BLE001 - a subscriber's fault must not undo the change it reacts to
            log.exception("subscriber %s failed on %s: its writes are undone, the change stands; trying it again after the commit", sub.name, event)
            _later(session, sub, event, ctx)


def _later(session: Session, sub: _Subscriber, event: Any, ctx: Context) -> None:
    session.info.setdefault(_PENDING, []).append((sub, event, ctx))


@sa_event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a SAVEPOINT released (SQLAlchemy calls this hook for those too): the transaction goes on
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    bind = session.get_bind()
    # After-commit subscribers get their events together; an in-transaction one that failed gets its event again.
    grouped: dict[str, tuple[_Subscriber, list[Any], Context]] = {}
    for sub, event, ctx in pending:
        if sub.phase == AFTER_COMMIT:
            grouped.setdefault(sub.name, (sub, [], ctx))[1].append(event)
        else:
            _run_alone(bind, sub, [event], ctx, single=True)
    for sub, events, ctx in grouped.values():
        _run_alone(bind, sub, events, ctx, single=False)


@sa_event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: Any) -> None:
    # The outermost transaction ended without a commit (after_commit took what a commit runs): what
    # it announced did not happen, so nobody is told.
    if transaction.parent is None and not transaction.nested:
        session.info.pop(_PENDING, None)


def _run_alone(bind: Any, sub: _Subscriber, events: Sequence[Any], ctx: Context, *, single: bool) -> None:
    try:
        with Session(bind=bind, expire_on_commit=False) as s, s.begin():
            own = Context(s, ctx.settings, ctx.services)
            if single:
                sub.handler(own, events[0])
            else:
                sub.handler(own, list(events))
    except Exception:  # noqa: BLE001 - after the commit a subscriber fails alone
        log.exception("subscriber %s failed after the commit on %s", sub.name, events[0] if single else f"{len(events)} event(s)")
