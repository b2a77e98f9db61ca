"""Creating a job exactly once at a provider whose create call is not idempotent.

Neither OpenAI (and Azure) nor Together takes an idempotency key for a fine-tuning job, and their
SDKs retry a POST by themselves. So each adapter makes its create call with the SDK's retries off and
hands it here with a way to find the job a key made (OpenAI: metadata; Together: the seed; Ray: the
submission id). The rules:

- a refused connection, a 5xx, a dropped connection or a 429: the job may have been made; look for it
  (a few times, briefly) and only create again when it is not there;
- a timeout: the request may still be carried out after we gave up, so a second create could race
  it. Look for a few seconds; if it is still not there, raise StartUnconfirmed rather than create
  again (ftbot keeps looking for the key, see bot/jobs/pending_starts.py);
- after the last attempt, one more look before saying anything: an unknown outcome with a key is
  StartUnconfirmed, never a plain failure that invites a second start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bot.provider.base import (
    Job,
    ProviderRateLimited,
    ProviderTimedOut,
    ProviderUnavailable,
    StartUnconfirmed,
)

log = logging.getLogger(__name__)

ATTEMPTS = 3
# Pauses between looks for a job whose answer was lost: a listing may lag the create by a moment.
SETTLE = (0.0, 0.3, 0.7)
# After a timeout the request may still be running at the provider: looked for this long in all.
IN_FLIGHT_LOOK = (0.5, 1.0, 1.5, 2.0)


def create_once(
    create: Callable[[], Job],
    find: Callable[[], Job | None] | None,
    *,
    vendor: str,
    sleep: Callable[[float], None] = time.sleep,
) -> Job:
    """`create()` makes the job (SDK retries off) and raises ProviderError subclasses; `find()` looks
    the job up by its key (None when there is no key to look by: then a plain retry, as before)."""
    for attempt in range(ATTEMPTS):
        try:
            return create()
        except ProviderTimedOut as exc:
            if find is None:
                # Nothing to look by (a caller without a key): retried as any unavailable answer.
                if attempt == ATTEMPTS - 1:
                    raise
                continue
            found = _look(find, IN_FLIGHT_LOOK, sleep)
            if found is not None:
                return found
            raise StartUnconfirmed(_unconfirmed(vendor, exc.reason), status=exc.status) from exc
        except (ProviderUnavailable, ProviderRateLimited) as exc:
            if find is None:
                if attempt == ATTEMPTS - 1:
                    raise
                continue
            found = _look(find, SETTLE, sleep)
            if found is not None:
                log.info("%s made the job although its answer was lost (%s): using it", vendor, exc.reason)
                return found
            if attempt == ATTEMPTS - 1:
                if isinstance(exc, ProviderRateLimited):
                    raise  # a 429 made nothing: a plain refusal
                raise StartUnconfirmed(_unconfirmed(vendor, exc.reason), status=exc.status) from exc
            if isinstance(exc, ProviderRateLimited) and exc.retry_after:
                sleep(min(exc.retry_after, 5.0))
    raise AssertionError("unreachable")


def _look(find: Callable[[], Job | None], pauses: tuple[float, ...], sleep: Callable[[float], None]) -> Job | None:
    for pause in pauses:
        if pause:
            sleep(pause)
        try:
            found = find()
        except ProviderUnavailable:
            continue  # the look-up itself failed: try the next one, then say "unconfirmed"
        if found is not None:
            return found
    return None


def _unconfirmed(vendor: str, reason: str) -> str:
    return f"{vendor} did not confirm the job ({reason.rstrip('.')}); it may have been made"
