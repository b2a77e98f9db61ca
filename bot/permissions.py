"""Who may change things: FTBOT_OPERATORS lists user ids and user-group ids. An empty list means
everyone may.

Group members come from usergroups.users.list and are cached for `ttl` seconds. The check runs before
the request is acknowledged, so it never waits on Slack for long: a cold or expired group is looked up
in the background and waited for at most `wait` seconds; if Slack is slower the answer is "still
checking, try again". An API error grants nothing and keeps nothing: an expired entry is never used.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures

from slack_sdk import WebClient

log = logging.getLogger(__name__)


class Verdict(enum.Enum):
    ALLOWED = "allowed"
    DENIED = "denied"
    CHECKING = "checking"  # Slack has not answered yet
    UNAVAILABLE = "unavailable"  # Slack answered with an error


class Operators:
    def __init__(self, ids: tuple[str, ...], client: WebClient, *, ttl: float = 300.0, wait: float = 1.0, lookup_timeout: int = 10) -> None:
        self.users = {i for i in ids if not i.startswith("S")}
        self.groups = [i for i in ids if i.startswith("S")]
        # Its own client: no retries (a retry loop is what kept requests waiting), a bounded timeout.
        self.client = WebClient(token=client.token, base_url=client.base_url, timeout=lookup_timeout, retry_handlers=[])
        self.ttl = ttl
        self.wait = wait
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._failed: dict[str, float] = {}
        self._inflight: dict[str, Future[None]] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="usergroups")

    @property
    def everyone(self) -> bool:
        return not self.users and not self.groups

    def _fresh(self, group: str) -> frozenset[str] | None:
        hit = self._cache.get(group)
        if hit is None:
            return None
        if time.monotonic() - hit[0] >= self.ttl:
            del self._cache[group]  # expired: never used again, whatever happens to the refresh
            return None
        return hit[1]

    def _fetch(self, group: str) -> None:
        try:
            members = frozenset(self.client.usergroups_users_list(usergroup=group).get("users") or [])
        except Exception as exc:  # noqa: BLE001 - fail closed; the next request asks again
            log.warning("could not read user group %s (%s)", group, type(exc).__name__)
            with self._lock:
                self._failed[group] = time.monotonic()
                self._inflight.pop(group, None)
            return
        with self._lock:
            self._cache[group] = (time.monotonic(), members)
            self._failed.pop(group, None)
            self._inflight.pop(group, None)

    def _refresh(self, group: str) -> Future[None]:
        """One lookup per group at a time, however many requests are waiting for it."""
        fut = self._inflight.get(group)
        if fut is None:
            self._failed.pop(group, None)
            fut = self._inflight[group] = self._pool.submit(self._fetch, group)
        return fut

    def check(self, user: str | None) -> Verdict:
        if self.everyone:
            return Verdict.ALLOWED
        if not user:
            return Verdict.DENIED
        if user in self.users:
            return Verdict.ALLOWED
        with self._lock:
            pending = []
            for g in self.groups:
                members = self._fresh(g)
                if members is None:
                    pending.append(self._refresh(g))
                elif user in members:
                    return Verdict.ALLOWED
        if not pending:
            return Verdict.DENIED
        wait_futures(pending, timeout=self.wait)
        with self._lock:
            verdict = Verdict.DENIED
            for g in self.groups:
                members = self._fresh(g)
                if members is not None and user in members:
                    return Verdict.ALLOWED
                if members is None and g in self._inflight:
                    verdict = Verdict.CHECKING
                elif members is None and g in self._failed and verdict is Verdict.DENIED:
                    verdict = Verdict.UNAVAILABLE
            return verdict

    def allows(self, user: str | None) -> bool:
        return self.check(user) is Verdict.ALLOWED

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
