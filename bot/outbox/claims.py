"""Keep the outbox claims of sends in flight alive.

A claim is taken for a fixed time; a send can outlast it (a slow answer, the three calls of
`files_upload_v2`, a read-back). Were it to lapse mid-send, another sender (web's `deliver_now`, a
second worker) would claim the message, find nothing in the channel yet, and post it again. So while a
send is in flight its claim is extended every third of the claim time, each renewal conditional on
the claim still being this sender's (the owner and the attempt number it took it with)."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

from sqlalchemy import update

from storage.models import OutboxMessage
from storage.types import utcnow

log = logging.getLogger(__name__)


def held(owner: str, mid: int, attempts: int) -> list[Any]:
    """The conditions under which `owner` still holds the claim it took on `mid` as attempt `attempts`.
    Another claim (by anyone, this owner included) always raises the attempt number."""
    o = OutboxMessage
    return [o.id == mid, o.claimed_by == owner, o.attempts == attempts, o.delivered_at.is_(None), o.gave_up_at.is_(None)]


class ClaimKeeper:
    """Renews the claims registered with it on one background thread, which runs only while some are."""

    def __init__(self, db: Any, owner: str, claim: timedelta) -> None:
        self.db = db
        self.owner = owner
        self.claim = claim
        self.interval = max(0.05, claim.total_seconds() / 3)
        self._inflight: dict[int, int] = {}  # message id -> attempt number of our claim
        self._lost: set[int] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, mid: int, attempts: int) -> None:
        with self._lock:
            self._inflight[mid] = attempts
            self._lost.discard(mid)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="outbox-claims", daemon=True)
                self._thread.start()

    def drop(self, mid: int) -> None:
        with self._lock:
            self._inflight.pop(mid, None)
            self._lost.discard(mid)

    def lost(self, mid: int) -> bool:
        with self._lock:
            return mid in self._lost

    def renew_now(self) -> None:
        with self._lock:
            todo = dict(self._inflight)
        if not todo:
            return
        until = utcnow() + self.claim
        gone: list[int] = []
        try:
            with self.db.session() as s:
                for mid, attempts in todo.items():
                    if not s.execute(update(OutboxMessage).where(*held(self.owner, mid, attempts)).values(claimed_until=until)).rowcount:
                        gone.append(mid)
        except Exception:  # noqa: BLE001 - tried again next interval; the record stays conditional anyway
            log.warning("renewing outbox claims failed; retrying", exc_info=True)
            return
        if gone:
            lost: list[int] = []
            with self._lock:
                for mid in gone:
                    # Not a send that ended (and recorded) meanwhile, nor a newer claim of the same message.
                    if self._inflight.get(mid) == todo[mid]:
                        self._lost.add(mid)
                        self._inflight.pop(mid)
                        lost.append(mid)
            if lost:
                log.warning("outbox claims lost while sending (%s): their results will not be recorded by this sender", ", ".join(map(str, lost)))

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            with self._lock:
                if not self._inflight:
                    self._thread = None
                    return
            self.renew_now()
