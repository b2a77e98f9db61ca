"""Direct messages to the bot (message.im): plain text gets a short help answer, every other message
event (edits, deletions, the bot's own posts) is acknowledged and ignored."""

from __future__ import annotations

from typing import Any

from slack_bolt import App

from bot.messages.help import dm_help


def _plain_dm(event: dict[str, Any], client: Any) -> None:
    if event.get("channel_type") != "im" or event.get("bot_id"):
        return
    client.chat_postMessage(channel=event["channel"], **dm_help())


def _ignore(event: dict[str, Any]) -> None:
    return None


def register(app: App) -> None:
    # Bolt runs the first listener that matches, so the catch-all comes last.
    app.event({"type": "message", "subtype": None})(_plain_dm)
    app.event("message")(_ignore)
