"""Who may change things: FTBOT_OPERATORS lists user ids and user-group ids (groups resolved through
usergroups.users.list and cached). An empty list means everyone may."""

from __future__ import annotations

import logging
import threading
import time

from slack_sdk import WebClient

log = logging.getLogger(__name__)


class Operators:
    def __init__(self, ids: tuple[str, ...], client: WebClient, *, ttl: float = 300.0) -> None:
        self.users = {i for i in ids if not i.startswith("S")}
        self.groups = [i for i in ids if i.startswith("S")]
        self.client = client
        self.ttl = ttl
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    @property
    def everyone(self) -> bool:
        return not self.users and not self.groups

    def _members(self, group: str) -> frozenset[str]:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(group)
            if hit and now - hit[0] < self.ttl:
                return hit[1]
        try:
            members = frozenset(self.client.usergroups_users_list(usergroup=group).get("users") or [])
        except Exception as exc:  # noqa: BLE001 - fail closed, but keep a stale answer if we have one
            log.warning("could not read user group %s (%s)", group, type(exc).__name__)
            return hit[1] if hit else frozenset()
        with self._lock:
            self._cache[group] = (now, members)
        return members

    def allows(self, user: str | None) -> bool:
        if self.everyone:
            return True
        if not user:
            return False
        return user in self.users or any(user in self._members(g) for g in self.groups)
