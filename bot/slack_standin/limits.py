"""Slack's rate limits, as the stand-in enforces them when told to (off unless a test or the bench
turns them on).

What Slack publishes (api.slack.com/apis/rate-limits, /methods/*):
- chat.postMessage has its own rule: about one message per second per channel, short bursts allowed
  (thread replies are posts to the channel too); the other methods a tier each, per workspace and
  method: tier 1 1+/min, tier 2 20+/min, tier 3 50+/min, tier 4 100+/min, bursts allowed.
- Since 2025-05-29, apps distributed outside the Marketplace may call conversations.history and
  conversations.replies once a minute, at most 15 objects a call (internal apps are exempt).
- Over a limit: HTTP 429, `Retry-After: <seconds>`, body {"ok": false, "error": "ratelimited"}; the
  refused call does nothing.

Each limit is a token bucket: `burst` calls at once, then the rate.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

TIER_PER_MINUTE = {1: 1, 2: 20, 3: 50, 4: 100}

# Slack's documented tier of each method the bot calls (chat.postMessage: per channel, below).
METHOD_TIERS = {
    "chat.update": 3,
    "chat.delete": 3,
    "conversations.info": 3,
    "conversations.members": 4,
    "conversations.history": 3,
    "conversations.replies": 3,
    "files.getUploadURLExternal": 4,
    "files.completeUploadExternal": 4,
    "files.info": 4,
    "users.info": 4,
    "usergroups.users.list": 2,
    "views.open": 4,
    "views.push": 4,
    "views.update": 4,
    "views.publish": 4,
}
CHANNEL_POSTS = frozenset({"chat.postMessage", "chat.meMessage"})
READS = frozenset({"conversations.history", "conversations.replies"})


@dataclass
class Bucket:
    burst: float
    per_second: float
    tokens: float
    at: float

    def take(self, now: float) -> float:
        """0 when a call may go now (and count it); else the seconds until one may."""
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.per_second)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.per_second


@dataclass
class RateLimits:
    """Which limits to enforce. The defaults are Slack's for an app outside the Marketplace."""

    channel_per_second: float = 1.0
    channel_burst: int = 3
    method_per_minute: dict[str, int] = field(default_factory=lambda: {m: TIER_PER_MINUTE[t] for m, t in METHOD_TIERS.items()})
    method_burst: dict[str, int] = field(default_factory=dict)  # default: a minute's worth
    # Outside the Marketplace: one history read a minute, 15 objects a page. None: the tier above.
    reads_per_minute: int | None = 1
    read_page_max: int | None = 15
    clock: Callable[[], float] = time.monotonic


class Limiter:
    """Counts calls against `RateLimits`; thread-safe."""

    def __init__(self, limits: RateLimits) -> None:
        self.limits = limits
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self._lock = threading.Lock()
        self.refused = 0

    def _bucket(self, key: tuple[str, str], burst: float, per_second: float, now: float) -> Bucket:
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = Bucket(burst, per_second, burst, now)
        return b

    def check(self, method: str, channel: str | None) -> int | None:
        """None when the call may go (it is counted); else its Retry-After in whole seconds (>= 1)."""
        lim = self.limits
        with self._lock:
            now = lim.clock()
            if method in CHANNEL_POSTS and channel:
                wait = self._bucket(("channel", channel), lim.channel_burst, lim.channel_per_second, now).take(now)
            else:
                per_minute = lim.reads_per_minute if method in READS and lim.reads_per_minute is not None else lim.method_per_minute.get(method)
                if per_minute is None:
                    return None
                burst = lim.method_burst.get(method, per_minute)
                wait = self._bucket(("method", method), burst, per_minute / 60.0, now).take(now)
            if not wait:
                return None
            self.refused += 1
            return max(1, math.ceil(wait))
