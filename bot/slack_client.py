"""The Slack Web API client ftbot uses everywhere: retries on rate limits, 5xx and dropped connections."""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)


def make_web_client(
    token: str | None, base_url: str, *, retries: int = 2, timeout: int = 15, retry_unsure: bool = True, retry_rate_limited: bool = True
) -> WebClient:
    """`retry_unsure=False` does not retry a 5xx or a dropped connection: they may hide a message
    that was posted, so the outbox sender retries those itself, after checking.
    `retry_rate_limited=False` surfaces a 429 at once (SlackApiError, status 429, `Retry-After`
    header) instead of sleeping it out in the calling thread: the outbox sender reschedules it."""
    handlers = [RateLimitErrorRetryHandler(max_retry_count=retries)] if retry_rate_limited else []  # honours Retry-After
    if retry_unsure:
        handlers += [ConnectionErrorRetryHandler(max_retry_count=retries), ServerErrorRetryHandler(max_retry_count=retries)]
    return WebClient(token=token, base_url=base_url, timeout=timeout, retry_handlers=handlers)
