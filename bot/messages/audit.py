"""`/ft audit [N]`: the latest audit entries, newest first, packed into sections within Slack's limits. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.mrkdwn import code, escape

SECTION_CHARS = 2900
MAX_BLOCKS = 48

LABELS = {
    "request": "asked for approval",
    "approve": "approved",
    "reject": "rejected",
    "refused": "vote refused",
    "expired": "expired",
    "executing": "quorum reached, running",
    "done": "done",
    "failed": "failed",
}


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str | None
    action: str
    target: str | None
    detail: dict[str, Any] = field(default_factory=dict)


def _trim(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def audit_line(e: AuditEntry) -> str:
    """One entry. Each piece is trimmed before it is escaped, so a line stays well under a section's size."""
    who = f"<@{e.actor}>" if e.actor else "ftbot"
    what = LABELS.get(e.action, e.action)
    line = f"`{e.at:%Y-%m-%d %H:%M:%S}` {who} {escape(_trim(what, 60))}"
    req, kind = e.detail.get("request"), e.detail.get("kind")
    subject = {"delete_model": "delete", "job_budget": "job on"}.get(str(kind), "")
    if e.target:
        subject = f"{subject} {code(_trim(e.target, 120))}".strip()
    if req is not None:
        subject = f"{subject}, #{escape(_trim(str(req), 20))}" if subject else f"#{escape(_trim(str(req), 20))}"
    if subject:
        line += f" ({subject})"
    why = e.detail.get("why") or e.detail.get("error") or e.detail.get("reason")
    if why:
        line += " — " + escape(_trim(str(why), 200))
    return line


def audit_answer(entries: Sequence[AuditEntry], asked: int) -> dict[str, Any]:
    if not entries:
        return {"text": "The audit log is empty.", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "The audit log is empty: no approval requests yet."}}]}
    header = f"*Audit log*: the latest {len(entries)} entries, newest first"
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": header}}]
    chunk: list[str] = []
    size = 0
    shown = 0
    for e in entries:
        line = audit_line(e)
        if chunk and size + len(line) + 1 > SECTION_CHARS:
            if len(blocks) >= MAX_BLOCKS:
                break
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(chunk)}})
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 1
        shown += 1
    if chunk and len(blocks) < MAX_BLOCKS:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(chunk)}})
    else:
        shown -= len(chunk)
    if shown < len(entries):
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"{len(entries) - shown} older entries did not fit; ask for fewer."}]})
    return {"text": f"Audit log: {shown} of the latest {asked} entries", "blocks": blocks}
