"""Notices about delivery itself: a channel ftbot can no longer post in. Pure: data in, message out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.mrkdwn import code, truncate

WHY = {
    "is_archived": "the channel was archived",
    "channel_not_found": "the channel was deleted, or the bot was removed from this private channel",
    "not_in_channel": "the bot is not a member of the channel (invite it)",
    "restricted_action": "posting there is restricted to some members",
}
MAX_LISTED = 20


def channel_ended_notice(channel: str, reason: str, job_ids: Sequence[str], dropped: int) -> dict[str, Any]:
    """Told once, in the job's origin channel (or the notify channel), when a channel stops working."""
    why = WHY.get(reason, f"Slack answered `{reason}`")
    jobs = ", ".join(code(j) for j in job_ids[:MAX_LISTED]) + (f" and {len(job_ids) - MAX_LISTED} more" if len(job_ids) > MAX_LISTED else "")
    text = (
        f":warning: ftbot can no longer post in <#{channel}>: {why}. It stopped following {jobs} there"
        + (f" and dropped {dropped} queued message{'s' if dropped != 1 else ''} for it" if dropped else "")
        + f". Once the bot can post there again, `/ft watch JOB_ID` in <#{channel}> follows a job again."
    )
    text = truncate(text, 2900)
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
