"""Where an answer to a click, form or event goes when there may be no response_url.

A button on a message answers through its response_url; a button in the App Home tab (or in a modal)
has none, so the answer goes on top of that view; a form answers in the channel it was opened from; a
direct message answers in the DM.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from bot.messages.answers import view_with_notice

log = logging.getLogger(__name__)

Reply = Callable[[str], None]


def _user(body: dict[str, Any]) -> str | None:
    user = body.get("user")
    if isinstance(user, dict):
        return user.get("id")
    return body.get("user_id") or (body.get("event") or {}).get("user")


def reply_for(body: dict[str, Any], client: Any, respond: Any) -> Reply | None:
    """A function that shows `text` (mrkdwn) to the person who sent this request, or None if nowhere fits."""
    if respond is not None and (body.get("response_url") or body.get("command")):
        return lambda text: respond(text=text, response_type="ephemeral", replace_original=False)
    view = body.get("view") or {}
    user = _user(body)
    if body.get("type") == "block_actions" and view and user:
        if view.get("type") == "home":
            return lambda text: client.views_publish(user_id=user, view=view_with_notice(view, text))
        return lambda text: client.views_update(view_id=view["id"], view=view_with_notice(view, text))
    if body.get("type") == "view_submission" and user:
        try:
            channel = json.loads(view.get("private_metadata") or "{}").get("channel")
        except (json.JSONDecodeError, AttributeError):
            channel = None
        return lambda text: client.chat_postEphemeral(channel=channel or user, user=user, text=text)
    event = body.get("event") or {}
    if event.get("channel") and event.get("channel_type") == "im":
        return lambda text: client.chat_postMessage(channel=event["channel"], text=text)
    return None
