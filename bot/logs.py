"""Logging set-up that never lets a secret out: messages, exception text and tracebacks are all
masked (Slack tokens, app tokens, OpenAI keys, webhook signing secrets)."""

from __future__ import annotations

import logging
import re
import sys
import threading
from types import TracebackType
from typing import TextIO

_SECRET = re.compile(r"\b(xox[abeprs]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|sk-[A-Za-z0-9_-]{8,}|whsec_[A-Za-z0-9+/=_-]{8,})")

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def redact(text: str) -> str:
    return _SECRET.sub(lambda m: m.group(1)[:5] + "…[redacted]", text)


def parse_level(value: str) -> str:
    """A level name as logging knows it; ValueError with a one-line reason otherwise."""
    name = (value or "").strip().upper()
    if name == "WARN":
        name = "WARNING"
    if name not in LEVELS:
        raise ValueError(f"unknown log level {value!r}: use one of {', '.join(LEVELS)}")
    return name


class RedactSecrets(logging.Filter):
    """Masks the message early, so handlers added later by libraries see it clean too."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is logging's problem, not ours to hide
            return True
        clean = redact(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        return True


class RedactingFormatter(logging.Formatter):
    """The formatted line as a whole is masked: exception messages and traceback lines (which
    quote source code and, with chained exceptions, other exceptions' text) included."""

    def formatException(self, ei) -> str:  # noqa: ANN001, N802 - logging's name
        return redact(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 - logging's name
        return redact(super().formatStack(stack_info))

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class RedactingStreamHandler(logging.StreamHandler):
    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        # logging's own handleError prints the failing record's traceback raw (secrets included).
        if not logging.raiseExceptions:
            return
        try:
            exc = sys.exc_info()[1]
            sys.__stderr__.write(redact(f"--- logging error: {type(exc).__name__}: {exc} (record from {record.name}) ---\n"))
        except Exception:  # noqa: BLE001, S110 - nowhere left to report to
            pass


FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _log_uncaught(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None, where: str = "") -> None:
    logging.getLogger("ftbot").critical("uncaught exception%s", where, exc_info=(exc_type, exc, tb))


def _excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    _log_uncaught(exc_type, exc, tb)


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or issubclass(args.exc_type, SystemExit):
        return
    name = args.thread.name if args.thread is not None else "?"
    _log_uncaught(args.exc_type, args.exc_value, args.exc_traceback, f" in thread {name}")


def setup_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    handler = RedactingStreamHandler(stream)
    handler.setFormatter(RedactingFormatter(FORMAT))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(parse_level(level))
    # Per-request access lines from the stand-ins and httpx are noise at INFO.
    for noisy in ("werkzeug", "httpx", "httpx2", "openai", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Uncaught exceptions would otherwise be printed by Python straight to stderr, unmasked.
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook
