"""Logging set-up, with a filter that masks anything shaped like a Slack token or an API key."""

from __future__ import annotations

import logging
import re

_SECRET = re.compile(r"\b(xox[abprs]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|sk-[A-Za-z0-9_-]{8,})")


def redact(text: str) -> str:
    return _SECRET.sub(lambda m: m.group(1)[:5] + "…[redacted]", text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = redact(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        return True


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Per-request access lines from the stand-ins and httpx are noise at INFO.
    for noisy in ("werkzeug", "httpx", "httpx2", "openai", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
