"""When Slack refuses a message's newer blocks (`invalid_blocks` naming a `table`, an `alert`, …: not
every surface or workspace takes them), the message goes again once with those blocks drawn classic
(bot/outbox/classic_blocks.py), and the workspace's refusal is remembered for REMEMBER, in the
database (several senders may run), so later messages with that block go classic at once.

The sender wraps its Slack client with `FallbackClient` in one place; `chat_postMessage` and
`chat_update` go through it, everything else passes straight on. The workspace is the bot token's
(one sender, one token): asked of `auth.test` once, the first time a message has a newer block.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from bot.outbox.classic_blocks import newer_types, to_classic
from storage.db import Database
from storage.errors import is_race_on
from storage.models import BlockFallback
from storage.types import utcnow

log = logging.getLogger(__name__)

# Slack gains a block on a surface with a release, not by the minute: a day is "for a while", and
# after it one message finds out again (and falls back again if it must).
REMEMBER = timedelta(hours=24)
# "[json-pointer:/blocks/2/type]" (the sub-path may also follow the bracket: "…/blocks/2]/level").
_POINTER = re.compile(r"json-pointer:/blocks/(\d+)(/[^\]\s]*)?\]?(/\S*)?")


def refused_block_type(exc: SlackApiError, blocks: list[Any]) -> tuple[str | None, bool]:
    """(the newer block type Slack's `invalid_blocks` points at, whether it refused the type itself
    rather than something inside the block). (None, False) when it names no newer block."""
    data = exc.response.data if isinstance(exc.response.data, dict) else {}
    texts = [str(e) for e in data.get("errors") or []] + [str(m) for m in (data.get("response_metadata") or {}).get("messages") or []]
    for text in texts:
        m = _POINTER.search(text)
        if not m:
            continue
        i = int(m.group(1))
        if 0 <= i < len(blocks) and isinstance(blocks[i], dict):
            kind = str(blocks[i].get("type"))
            if kind in newer_types([blocks[i]]):
                return kind, (m.group(2) or m.group(3) or "") in ("", "/type")
    return None, False


class Memory:
    """Which newer block types each workspace refused lately (the `block_fallbacks` table)."""

    def __init__(self, db: Database, *, remember: timedelta = REMEMBER) -> None:
        self.db = db
        self.remember = remember

    def refused(self, team: str, now: datetime | None = None) -> set[str]:
        now = now or utcnow()
        with self.db.session() as s:
            return set(s.scalars(select(BlockFallback.block_type).where(BlockFallback.team_id == team, BlockFallback.until > now)))

    def remember_refusal(self, team: str, block_type: str, error: str, now: datetime | None = None) -> None:
        now = now or utcnow()
        values = {"until": now + self.remember, "error": error[:500], "updated_at": now}
        with self.db.session() as s:
            if s.execute(update(BlockFallback).where(BlockFallback.team_id == team, BlockFallback.block_type == block_type).values(**values)).rowcount:
                return
        try:
            with self.db.session() as s:
                s.add(BlockFallback(team_id=team, block_type=block_type[:32], created_at=now, **values))
        except IntegrityError as exc:
            if not is_race_on(exc, {"uq_block_fallbacks_team_type"}):
                raise
            # Another sender remembered it at the same moment: its row stands.


class FallbackClient:
    """A slack_sdk WebClient whose posts and edits fall back to classic blocks when refused."""

    def __init__(self, client: Any, memory: Memory, team: Callable[[], str] | None = None) -> None:
        self._client = client
        self._memory = memory
        self._team_fn = team
        self._team: str | None = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def chat_postMessage(self, **kw: Any) -> Any:  # noqa: N802 - slack_sdk's name
        return self._send(self._client.chat_postMessage, kw)

    def chat_update(self, **kw: Any) -> Any:
        return self._send(self._client.chat_update, kw)

    def _workspace(self) -> str:
        with self._lock:
            if self._team is None:
                self._team = self._team_fn() if self._team_fn else str(self._client.auth_test().get("team_id") or "")
            return self._team

    def _send(self, call: Callable[..., Any], kw: dict[str, Any]) -> Any:
        blocks = kw.get("blocks")
        newer = newer_types(blocks) if isinstance(blocks, list) else set()
        if not newer:
            return call(**kw)
        team = self._workspace()
        known = self._memory.refused(team) & newer
        if known:
            # Refused here lately: straight to the form that works.
            return call(**{**kw, "blocks": to_classic(blocks, known)})
        try:
            return call(**kw)
        except SlackApiError as exc:
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            if data.get("error") != "invalid_blocks":
                raise
            kind, whole_type = refused_block_type(exc, blocks)
            if kind is None:
                raise  # a classic block is wrong: a bug to see, not a workspace to remember
            why = "; ".join(str(e) for e in data.get("errors") or []) or "invalid_blocks"
            if whole_type:
                self._memory.remember_refusal(team, kind, why)
            log.warning("slack refused a %s block in %s (%s): sent again with it drawn classic%s", kind, team, why, ", remembered" if whole_type else "")
            # Once, with every newer block drawn classic: a second refusal is final, as before.
            return call(**{**kw, "blocks": to_classic(blocks, newer)})
