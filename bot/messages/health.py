"""A training-health finding as a thread reply (and, when severe, a channel alert). Pure."""

from __future__ import annotations

from typing import Any, Protocol

from bot.mrkdwn import code, escape


class Finding(Protocol):
    """What a message says of a training-health finding (bot/jobs/health.py's Finding has this shape)."""

    @property
    def kind(self) -> str: ...
    @property
    def severe(self) -> bool: ...
    @property
    def title(self) -> str: ...
    @property
    def detail(self) -> str: ...
    @property
    def model(self) -> str | None: ...

ICONS = {"overfitting": ":chart_with_upwards_trend:", "divergence": ":rotating_light:", "stalled": ":hourglass:", "queued_long": ":hourglass:", "best_checkpoint": ":trophy:", "billed_tokens": ":receipt:"}


# Slack's alert levels: a run going wrong is an error, one to watch a warning, good news info.
LEVELS = {"divergence": "error", "overfitting": "warning", "stalled": "warning", "queued_long": "warning", "best_checkpoint": "info", "billed_tokens": "info"}


def alert_block(text: str, level: str) -> dict[str, Any]:
    """slack_sdk's AlertBlock as a dict: `text` is mrkdwn (escape what goes in), level one of Slack's."""
    return {"type": "alert", "level": level, "text": {"type": "mrkdwn", "text": text[:2990]}}


def health_message(job_id: str, f: Finding, *, in_channel: bool = False) -> dict[str, Any]:
    icon = ICONS.get(f.kind, ":warning:")
    head = f"{icon} *{escape(f.title[:300])}*" + (f" on {code(job_id)}" if in_channel else "")
    body = escape(f.detail[:2500])
    if f.model:
        body += f"\nCheckpoint model to try: {code(f.model[:200])}"
    blocks = [alert_block(head, LEVELS.get(f.kind, "warning")), {"type": "section", "text": {"type": "mrkdwn", "text": body[:2990]}}]
    text = f"{escape(f.title)} on {escape(job_id)}: {escape(f.detail[:300])}"
    return {"text": text, "blocks": blocks}
