"""Deliver a few outbox messages right away (a job's new card, an approval request, a dataset report),
from any process.

The outbox claims make this safe alongside a running worker: each message still goes out once."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.outbox.sender import Sender
from bot.services import Services
from storage.leases import worker_id

log = logging.getLogger(__name__)


def deliver_now(services: Services, subscription_ids: Sequence[int] = (), *, channels: Sequence[str] = ()) -> None:
    """Send these job threads' queued messages, and the queued messages outside any job thread in
    these channels, now rather than on the worker's next tick. A failure is left to the worker."""
    if not subscription_ids and not channels:
        return
    sender = services.extras.get("web_sender")
    if sender is None:
        sender = services.extras["web_sender"] = Sender(services, worker_id(), threads=1)
    try:
        if subscription_ids:
            sender.send_pending(subscription_ids=list(subscription_ids))
        if channels:
            sender.send_pending(channels=list(dict.fromkeys(c for c in channels if c)))
    except Exception:  # noqa: BLE001 - the worker's sender will retry what did not go out
        log.exception("immediate delivery failed; the worker will retry")
