"""The one place where exceptions become answers in Slack.

Every listener's slow part runs through `guarded`, and Bolt's own error hook calls `answer_error`, so a
failure anywhere ends as a short ephemeral message, never a silent nothing or a stack trace in Slack.
"""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.mrkdwn import clip
from bot.provider import ProviderError
from bot.replies import reply_for

log = logging.getLogger(__name__)


class UserError(Exception):
    """Bad input: the message says what was wrong, `usage` how to do it right."""

    def __init__(self, message: str, usage: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage


def error_text(exc: BaseException) -> str:
    """What the user reads. Provider and Slack failures are said the way a person would say them."""
    if isinstance(exc, UserError):
        text = f":warning: {exc.message}"
        if exc.usage:
            text += f"\nUsage: `{exc.usage}`"
        return text
    if isinstance(exc, ProviderError):
        return f":x: {clip(exc.reason, 1500)}"
    if isinstance(exc, SlackApiError):
        code = exc.response.get("error") if exc.response is not None else "unknown"
        return f":x: Slack refused the request ({clip(str(code), 100)}). Try again in a minute."
    ref = secrets.token_hex(3)
    log.exception("unexpected error (ref %s)", ref, exc_info=exc)
    return f":x: Something went wrong on our side (ref `{ref}`). The team can find it in the logs."


def answer_error(exc: BaseException, reply: Callable[[str], Any] | None) -> None:
    """`reply` shows one mrkdwn text to the user (see bot.replies.reply_for)."""
    text = error_text(exc)
    if isinstance(exc, ProviderError):
        log.warning("provider error: %s (%s)", exc.reason, exc.kind)
    if reply is None:
        return
    try:
        reply(text)
    except Exception:  # the answer itself failed: nothing more we can tell the user
        log.exception("could not deliver an error answer")


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a lazy listener so its exceptions reach the user as one short ephemeral answer.

    Bolt runs lazy listeners on a thread pool and only logs what they raise; this keeps the
    behaviour identical to Bolt's own error hook.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - this is the error boundary
            answer_error(exc, reply_for(kwargs.get("body") or {}, kwargs.get("client"), kwargs.get("respond")))
            return None

    return wrapper
