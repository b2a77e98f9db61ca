"""Send Slack-shaped, correctly signed requests to a running ftbot's /slack/events.

Used by the tests, `ftbot demo` and the benchmarks; it is how Slack itself talks to the bot.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode


def sign(secret: str, body: bytes, timestamp: int) -> str:
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class Reply:
    status: int
    body: bytes
    elapsed: float

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def text(self) -> str:
        return self.body.decode()


class SlackRequester:
    """Posts slash commands, block actions, view submissions and events, signed with `secret`."""

    def __init__(self, events_url: str, signing_secret: str, *, response_base: str | None = None, team_id: str = "T0001") -> None:
        self.events_url = events_url
        self.secret = signing_secret
        self.response_base = response_base or "http://127.0.0.1:9/response"
        self.team_id = team_id

    def post(self, body: bytes, content_type: str, *, timestamp: int | None = None, signature: str | None = None, headers: dict[str, str] | None = None) -> Reply:
        ts = int(time.time()) if timestamp is None else timestamp
        hdrs = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": signature if signature is not None else sign(self.secret, body, ts),
            **(headers or {}),
        }
        req = urllib.request.Request(self.events_url, data=body, headers=hdrs, method="POST")
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                data = resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            data, status = exc.read(), exc.code
        return Reply(status, data, time.perf_counter() - start)

    def command_form(self, text: str, *, user: str = "U0001", channel: str = "C0001", command: str = "/ft", trigger_id: str | None = None, team_id: str | None = None) -> dict[str, str]:
        tid = trigger_id or f"{int(time.time())}.{secrets.randbelow(10**9)}.{secrets.token_hex(8)}"
        return {
            "token": "legacy-verification-token",
            "team_id": team_id or self.team_id,
            "team_domain": "ftbot-test",
            "channel_id": channel,
            "channel_name": channel.lower(),
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": "A0001",
            "is_enterprise_install": "false",
            "response_url": f"{self.response_base}/{secrets.token_hex(6)}",
            "trigger_id": tid,
        }

    def command(self, text: str, **kw: Any) -> Reply:
        form = self.command_form(text, **kw)
        return self.post(urlencode(form).encode(), "application/x-www-form-urlencoded")

    def interactive(self, payload: dict[str, Any]) -> Reply:
        payload.setdefault("team", {"id": self.team_id, "domain": "ftbot-test"})
        payload.setdefault("api_app_id", "A0001")
        payload.setdefault("token", "legacy-verification-token")
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return self.post(body, "application/x-www-form-urlencoded")

    def block_action(self, action_id: str, value: str, *, user: str = "U0001", channel: str = "C0001", message_ts: str = "1.000001", block_id: str = "b", trigger_id: str | None = None) -> Reply:
        return self.interactive(
            {
                "type": "block_actions",
                "user": {"id": user, "username": user.lower(), "team_id": self.team_id},
                "channel": {"id": channel, "name": channel.lower()},
                "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
                "message": {"ts": message_ts, "text": ""},
                "trigger_id": trigger_id or f"{int(time.time())}.{secrets.token_hex(6)}",
                "response_url": f"{self.response_base}/{secrets.token_hex(6)}",
                "actions": [{"type": "button", "action_id": action_id, "block_id": block_id, "value": value, "action_ts": str(time.time())}],
            }
        )

    def view_submission(self, callback_id: str, values: dict[str, dict[str, Any]], *, user: str = "U0001", private_metadata: str = "", view_id: str | None = None) -> Reply:
        return self.interactive(
            {
                "type": "view_submission",
                "user": {"id": user, "username": user.lower(), "team_id": self.team_id},
                "trigger_id": f"{int(time.time())}.{secrets.token_hex(6)}",
                "view": {
                    "id": view_id or "V" + secrets.token_hex(4).upper(),
                    "type": "modal",
                    "callback_id": callback_id,
                    "private_metadata": private_metadata,
                    "team_id": self.team_id,
                    "state": {"values": values},
                    "hash": "h",
                },
            }
        )

    def event(self, event: dict[str, Any], *, retry_num: int | None = None, event_id: str | None = None) -> Reply:
        body = json.dumps(
            {
                "token": "legacy-verification-token",
                "team_id": self.team_id,
                "api_app_id": "A0001",
                "event": event,
                "type": "event_callback",
                "event_id": event_id or "Ev" + secrets.token_hex(5).upper(),
                "event_time": int(time.time()),
            }
        ).encode()
        headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"} if retry_num else None
        return self.post(body, "application/json", headers=headers)
