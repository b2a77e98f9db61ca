"""Who may change things: FTBOT_OPERATORS lists user ids and user-group ids. An empty list means
everyone may. Who may point a job at a channel: its members (ChannelMembers).

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
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)


class Verdict(enum.Enum):
    ALLOWED = "allowed"
    DENIED = "denied"
    CHECKING = "checking"  # Slack has not answered yet
    UNAVAILABLE = "unavailable"  # Slack answered with an error


class SlackSets:
    """Sets of user ids Slack tells per key (a user group's members, a channel's members), cached for
    `ttl` seconds, looked up in the background and waited for at most `wait` seconds."""

    def __init__(self, client: WebClient, *, ttl: float = 300.0, wait: float = 1.0, lookup_timeout: int = 10, name: str = "slack-sets") -> None:
        # Its own client: no retries (a retry loop is what kept requests waiting), a bounded timeout.
        self.client = WebClient(token=client.token, base_url=client.base_url, timeout=lookup_timeout, retry_handlers=[])
        self.ttl = ttl
        self.wait = wait
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._failed: dict[str, tuple[float, str]] = {}
        self._inflight: dict[str, Future[None]] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix=name)

    def _load(self, key: str) -> frozenset[str]:
        raise NotImplementedError

    def _fresh(self, key: str) -> frozenset[str] | None:
        hit = self._cache.get(key)
        if hit is None:
            return None
        if time.monotonic() - hit[0] >= self.ttl:
            del self._cache[key]  # expired: never used again, whatever happens to the refresh
            return None
        return hit[1]

    def _fetch(self, key: str) -> None:
        try:
            members = self._load(key)
        except Exception as exc:  # noqa: BLE001 - fail closed; the next request asks again
            error = (exc.response.get("error") if isinstance(exc, SlackApiError) and exc.response is not None else None) or type(exc).__name__
            log.warning("could not read the members of %s (%s)", key, error)
            with self._lock:
                self._failed[key] = (time.monotonic(), str(error))
                self._inflight.pop(key, None)
            return
        with self._lock:
            self._cache[key] = (time.monotonic(), members)
            self._failed.pop(key, None)
            self._inflight.pop(key, None)

    def _refresh(self, key: str) -> Future[None]:
        """One lookup per key at a time, however many requests are waiting for it."""
        fut = self._inflight.get(key)
        if fut is None:
            self._failed.pop(key, None)
            fut = self._inflight[key] = self._pool.submit(self._fetch, key)
        return fut

    def failure(self, key: str) -> str | None:
        """Slack's error for the last failed lookup of `key` (e.g. channel_not_found), if it failed."""
        with self._lock:
            hit = self._failed.get(key)
            return hit[1] if hit else None

    def member_of_any(self, keys: list[str], user: str) -> Verdict:
        with self._lock:
            pending = []
            for k in keys:
                members = self._fresh(k)
                if members is None:
                    pending.append(self._refresh(k))
                elif user in members:
                    return Verdict.ALLOWED
        if not pending:
            return Verdict.DENIED
        wait_futures(pending, timeout=self.wait)
        with self._lock:
            verdict = Verdict.DENIED
            for k in keys:
                members = self._fresh(k)
                if members is not None and user in members:
                    return Verdict.ALLOWED
                if members is None and k in self._inflight:
                    verdict = Verdict.CHECKING
                elif members is None and k in self._failed and verdict is Verdict.DENIED:
                    verdict = Verdict.UNAVAILABLE
            return verdict

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class Operators(SlackSets):
    def __init__(self, ids: tuple[str, ...], client: WebClient, *, ttl: float = 300.0, wait: float = 1.0, lookup_timeout: int = 10) -> None:
        super().__init__(client, ttl=ttl, wait=wait, lookup_timeout=lookup_timeout, name="usergroups")
        self.users = {i for i in ids if not i.startswith("S")}
        self.groups = [i for i in ids if i.startswith("S")]

    @property
    def everyone(self) -> bool:
        return not self.users and not self.groups

    def _load(self, group: str) -> frozenset[str]:
        return frozenset(self.client.usergroups_users_list(usergroup=group).get("users") or [])

    def check(self, user: str | None) -> Verdict:
        if self.everyone:
            return Verdict.ALLOWED
        if not user:
            return Verdict.DENIED
        if user in self.users:
            return Verdict.ALLOWED
        return self.member_of_any(self.groups, user)

    def allows(self, user: str | None) -> bool:
        return self.check(user) is Verdict.ALLOWED


class ChannelMembers(SlackSets):
    """Who is in a channel (conversations.members, every page), to let only its members point a job
    at it. Cached like the operator groups: a few minutes, never waited on for more than `wait`."""

    PAGE = 1000  # conversations.members' largest page

    def __init__(self, client: WebClient, *, ttl: float = 300.0, wait: float = 1.0, lookup_timeout: int = 10) -> None:
        super().__init__(client, ttl=ttl, wait=wait, lookup_timeout=lookup_timeout, name="channel-members")

    def _load(self, channel: str) -> frozenset[str]:
        members: set[str] = set()
        cursor: str | None = None
        while True:
            page = self.client.conversations_members(channel=channel, limit=self.PAGE, cursor=cursor)
            members.update(page.get("members") or [])
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return frozenset(members)

    def check(self, channel: str, user: str | None) -> Verdict:
        if not user:
            return Verdict.DENIED
        return self.member_of_any([channel], user)
