"""Facts a feature announces when they change, and who reacts to them.

The layer that owns a fact announces its change (`announce`) as one of the small typed events in
`bot/events/types.py`; features that react subscribe at start-up, in the composition root
(`bot/wiring.py`, called by `bot/app.py` and the worker), never inside the announcer. See the
README's architecture section for the events, their announcers and their subscribers."""

from bot.events.bus import (
    AFTER_COMMIT,
    IN_TRANSACTION,
    Context,
    announce,
    subscribe,
    subscribers,
    unsubscribe,
)
from bot.events.types import (
    ApprovalClosed,
    EvaluationFinished,
    JobChanged,
    JobEnded,
    ModelAppeared,
    StartNotMade,
)

__all__ = [
    "AFTER_COMMIT",
    "IN_TRANSACTION",
    "ApprovalClosed",
    "Context",
    "EvaluationFinished",
    "JobChanged",
    "JobEnded",
    "ModelAppeared",
    "StartNotMade",
    "announce",
    "subscribe",
    "subscribers",
    "unsubscribe",
]
