"""Pace the sender's calls to Slack's rate limits, so that a burst is spread out instead of answered
429, and remember the holds Slack's 429s impose.

Slack's limits (api.slack.com/apis/rate-limits): chat.postMessage about one message per second per
channel, short bursts allowed (a thread reply is a post in the channel too); the other methods a tier
each, per workspace: tier 3 (chat.update, conversations.history / replies for Marketplace and
internal apps) 50+/min, tier 4 (files.getUploadURLExternal, files.completeUploadExternal) 100+/min.
Apps outside the Marketplace may read history once a minute: that is learnt from the 429 (its
Retry-After is the minute) rather than assumed, so internal apps keep their tier.

Nothing here sleeps: `slot()` says when a call may go; the sender reschedules the message for then
and moves on, so no thread and no outbox claim is held while waiting. A slot is reserved when given,
so messages queued behind a busy channel get successive slots instead of all retrying at once.
Each key (a channel's posts, a method) has its own slots and holds: one channel or method that is
limited never delays another.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

POST = "chat.postMessage"

# (calls per second, burst) by method; chat.postMessage is per channel.
CHANNEL_RATE = (1.0, 3)
METHOD_RATES = {
    "chat.update": (50 / 60, 20),
    "conversations.history": (50 / 60, 5),
    "conversations.replies": (50 / 60, 5),
    "files.getUploadURLExternal": (100 / 60, 20),
    "files.completeUploadExternal": (100 / 60, 20),
}


class Pacer:
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        enabled: bool = True,
        channel_rate: tuple[float, int] = CHANNEL_RATE,
        method_rates: dict[str, tuple[float, int]] | None = None,
    ) -> None:
        self.clock = clock
        self.channel_rate = channel_rate
        self.method_rates = METHOD_RATES if method_rates is None else method_rates
        self.enabled = enabled  # off: no pacing ahead of Slack, only the holds its 429s impose
        self._lock = threading.Lock()
        self._next: dict[tuple[str, str], float] = {}  # key -> the earliest time its next call may go
        self._held: dict[tuple[str, str], float] = {}  # key -> until when Slack said to wait
        self._reserved: dict[tuple[str, str, int], float] = {}  # (key, message id) -> its slot
        self._urgent: dict[tuple[str, str], float] = {}  # key -> the next slot of channel-level posts
        self._bucket: dict[tuple[str, str], tuple[float, float]] = {}  # key -> (tokens, when): calls made

    @staticmethod
    def key(method: str, channel: str) -> tuple[str, str]:
        return ("channel", channel) if method == POST else ("method", method)

    def slot(self, method: str, channel: str, mid: int, *, urgent: bool = False) -> float:
        """Seconds from now until message `mid`'s call of `method` in `channel` may go (0: now, and it
        is counted). A later slot is kept for `mid`: asking again then gets 0 without a new one.

        `urgent` (a channel-level post: a digest, a card, an approval request) goes ahead of the thread
        replies that reserved the channel's next slots: it has a schedule of its own and pushes theirs
        back by one. A reply already given the same second may meet a 429, which is then waited out."""
        key = self.key(method, channel)
        rate, burst = self.channel_rate if method == POST else self.method_rates.get(method, (0.0, 0))
        with self._lock:
            now = self.clock()
            held = self._held.get(key, 0.0)
            if held > now:
                self._reserved.pop((*key, mid), None)
                return held - now
            if not rate or not self.enabled:
                return 0.0
            reserved = self._reserved.pop((*key, mid), None)
            if reserved is not None and reserved <= now + 0.05:
                # A slot used late may bunch up with the next one: the calls actually made decide.
                wait = self._spend(key, rate, burst, now)
                if wait:
                    self._reserved[(*key, mid)] = now + wait
                return wait
            if reserved is not None:
                self._reserved[(*key, mid)] = reserved
                return reserved - now
            interval = 1.0 / rate
            # The burst: the virtual schedule may lag behind now by at most burst-1 intervals.
            floor = now - (burst - 1) * interval
            if urgent:
                # No burst credit while replies hold the next slots: they are using it.
                start = max(self._urgent.get(key, float("-inf")), now if self._next.get(key, floor) > now else floor)
                self._urgent[key] = start + interval
                self._next[key] = max(self._next.get(key, floor), start) + interval
            else:
                start = max(self._next.get(key, float("-inf")), self._urgent.get(key, float("-inf")), floor)
                self._next[key] = start + interval
            if start <= now:
                wait = self._spend(key, rate, burst, now)
                if not wait:
                    return 0.0
                start = now + wait
            if len(self._reserved) > 10_000:  # slots of messages that went elsewhere or were sent by another process
                self._reserved = {k: t for k, t in self._reserved.items() if t > now - 60}
            self._reserved[(*key, mid)] = start
            return start - now

    def _spend(self, key: tuple[str, str], rate: float, burst: int, now: float) -> float:
        """The calls actually made, as Slack counts them (a token bucket): 0 and one spent, or the wait."""
        tokens, at = self._bucket.get(key, (float(burst), now))
        tokens = min(float(burst), tokens + (now - at) * rate)
        if tokens >= 1:
            self._bucket[key] = (tokens - 1, now)
            return 0.0
        self._bucket[key] = (tokens, now)
        return (1 - tokens) / rate

    def hold(self, method: str, channel: str, seconds: float) -> None:
        """Slack answered 429 with Retry-After `seconds`: nothing of this key goes before then."""
        key = self.key(method, channel)
        with self._lock:
            until = self.clock() + seconds
            self._held[key] = max(self._held.get(key, 0.0), until)
            self._next[key] = max(self._next.get(key, 0.0), until)
            self._urgent[key] = max(self._urgent.get(key, 0.0), until)
            self._bucket[key] = (1.0, until)  # Slack's bucket has a call's worth again then
