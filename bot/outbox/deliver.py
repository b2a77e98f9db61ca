"""Deliver a few outbox messages right away (the card of a job just started), from any process.

The outbox claims make this safe alongside a running worker: each message still goes out once."""

from __future__ import annotations

import logging

from bot.outbox.sender import Sender
from bot.services import Services
from storage.leases import worker_id

log = logging.getLogger(__name__)


def deliver_now(services: Services, subscription_ids: list[int] | tuple[int, ...]) -> None:
    if not subscription_ids:
        return
    sender = services.extras.get("web_sender")
    if sender is None:
        sender = services.extras["web_sender"] = Sender(services, worker_id(), threads=1)
    try:
        sender.send_pending(subscription_ids=list(subscription_ids))
    except Exception:  # noqa: BLE001 - the worker's sender will retry what did not go out
        log.exception("immediate delivery failed; the worker will retry")
