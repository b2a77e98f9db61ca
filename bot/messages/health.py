"""A training-health finding as a thread reply (and, when severe, a channel alert). Pure."""

from __future__ import annotations

from typing import Any

from bot.jobs.health import Finding
from bot.mrkdwn import code, escape

ICONS = {"overfitting": ":chart_with_upwards_trend:", "divergence": ":rotating_light:", "stalled": ":hourglass:", "queued_long": ":hourglass:", "best_checkpoint": ":trophy:", "billed_tokens": ":receipt:"}


def health_message(job_id: str, f: Finding, *, in_channel: bool = False) -> dict[str, Any]:
    icon = ICONS.get(f.kind, ":warning:")
    head = f"{icon} *{escape(f.title)}*" + (f" on {code(job_id)}" if in_channel else "")
    body = escape(f.detail[:2500])
    if f.model:
        body += f"\nCheckpoint model to try: {code(f.model[:200])}"
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": f"{head}\n{body}"[:2990]}}]
    text = f"{escape(f.title)} on {escape(job_id)}: {escape(f.detail[:300])}"
    return {"text": text, "blocks": blocks}
