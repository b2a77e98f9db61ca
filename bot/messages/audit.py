"""`/ft audit [N]`: the latest audit entries, newest first, as a table within Slack's limits. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.messages.table import MAX_BODY_ROWS, table_blocks, user_cell
from bot.mrkdwn import code, escape, truncate

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


def _subject(e: AuditEntry) -> str:
    kind = {"delete_model": "delete", "job_budget": "job on"}.get(str(e.detail.get("kind")), "")
    return f"{kind} {_trim(e.target, 120)}".strip() if e.target else kind


def audit_answer(entries: Sequence[AuditEntry], asked: int) -> dict[str, Any]:
    if not entries:
        return {"text": "The audit log is empty.", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "The audit log is empty: no approval requests yet."}}]}
    rows = []
    for e in entries:
        req = e.detail.get("request")
        why = e.detail.get("why") or e.detail.get("error") or e.detail.get("reason")
        rows.append(
            [
                f"{e.at:%Y-%m-%d %H:%M:%S}",
                user_cell(e.actor, otherwise="ftbot"),
                _trim(LABELS.get(e.action, e.action), 60),
                _subject(e),
                f"#{_trim(str(req), 20)}" if req is not None else "",
                _trim(str(why), 200) if why else "",
            ]
        )
    shown = min(len(rows), MAX_BODY_ROWS)
    header = f"*Audit log*: the latest {shown} entries, newest first"
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": header}}]
    blocks += table_blocks(
        ["When (UTC)", "Who", "What", "Subject", "Request", "Why"], rows, more="{n} older entries did not fit in one table; ask for fewer.", wrapped=[5]
    )
    # The fallback keeps the readable lines (what notifications and table-less clients show).
    text = f"Audit log: {shown} of the latest {asked} entries\n" + "\n".join(audit_line(e) for e in entries[:shown])
    return {"text": truncate(text, 3000), "blocks": blocks}
