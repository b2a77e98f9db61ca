"""Files shared with the bot: acknowledged (Slack switches off an app's events after failed deliveries)
and otherwise left alone until dataset uploads through Slack land."""

from __future__ import annotations

from typing import Any

from slack_bolt import App


def _ignore(event: dict[str, Any]) -> None:
    return None


def register(app: App) -> None:
    app.event("file_shared")(_ignore)
    app.event({"type": "message", "subtype": "file_share"})(_ignore)
