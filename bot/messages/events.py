"""A job's events as thread replies, and the `/ft events` answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.mrkdwn import clip

LEVEL_EMOJI = {"info": "", "warn": ":warning: ", "error": ":red_circle: "}
MAX_LINES = 25
MAX_CHARS = 2800  # a section holds 3,000


@dataclass(frozen=True)
class EventView:
    created_at: datetime
    level: str
    message: str
    type: str = "message"


def event_line(e: EventView) -> str:
    """One line per event (replies are split by line count, so a message's newlines are folded)."""
    message = " ".join(e.message.split())
    return f"`{e.created_at:%H:%M:%S}` {LEVEL_EMOJI.get(e.level, '')}{clip(message, 600)}"


def chunk_lines(lines: list[str]) -> list[list[str]]:
    """Split lines into groups that fit one section each, order kept."""
    chunks: list[list[str]] = []
    cur: list[str] = []
    size = 0
    for line in lines:
        if cur and (len(cur) >= MAX_LINES or size + len(line) + 1 > MAX_CHARS):
            chunks.append(cur)
            cur, size = [], 0
        cur.append(line)
        size += len(line) + 1
    if cur:
        chunks.append(cur)
    return chunks


def event_replies(events: list[EventView]) -> list[dict[str, Any]]:
    """Thread replies for new events, oldest first; several events share a reply to spare Slack calls."""
    out = []
    for chunk in chunk_lines([event_line(e) for e in events]):
        text = "\n".join(chunk)
        out.append({"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]})
    return out
