"""Secrets never reach the log: not in messages, exception text, tracebacks or uncaught exceptions;
a wrong log level is one clear line, not a traceback."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from bot.logs import setup_logging

BOT = "xoxb-1234-5678-abcdefSECRET"
KEY = "sk-proj-abcdefghSECRET"
HOOK = "whsec_abcdefghSECRET"
APP = "xapp-1-A0-123-abcSECRET"


@pytest.fixture
def logged() -> Iterator[Callable[[], str]]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, sys.excepthook, threading.excepthook)
    out = io.StringIO()
    setup_logging("DEBUG", stream=out)
    yield out.getvalue
    root.handlers[:], level, sys.excepthook, threading.excepthook = saved
    root.setLevel(level)


def _connect(token: str) -> None:
    api_key = "sk-proj-abcdefghSECRET"  # a secret in the source line the traceback quotes
    raise ConnectionError(f"auth failed for {token} using {api_key}")


def _wrapped() -> None:
    try:
        _connect(BOT)
    except ConnectionError as exc:
        raise RuntimeError(f"webhook {HOOK} rejected; app token {APP}") from exc


def test_exception_text_and_traceback_are_redacted(logged) -> None:  # noqa: ANN001
    log = logging.getLogger("ftbot.test")
    try:
        _wrapped()
    except RuntimeError:
        log.exception("call with %s failed", BOT)
    out = logged()
    assert "Traceback" in out and "ConnectionError" in out and "_connect" in out  # the traceback is there
    for secret in (BOT, KEY, HOOK, APP, "SECRET"):
        assert secret not in out, out
    assert "xoxb-…[redacted]" in out and "sk-pr…[redacted]" in out and "whsec…[redacted]" in out


def test_stack_info_and_message_args_are_redacted(logged) -> None:  # noqa: ANN001
    logging.getLogger("ftbot.test").warning("token %s key %s", BOT, KEY, stack_info=True)
    out = logged()
    assert "Stack (most recent call last)" in out
    assert "SECRET" not in out


def test_uncaught_exception_in_a_thread_is_logged_redacted(logged) -> None:  # noqa: ANN001
    t = threading.Thread(target=_wrapped, name="boom")
    t.start()
    t.join()
    out = logged()
    assert "uncaught exception in thread boom" in out and "RuntimeError" in out
    assert "SECRET" not in out


def test_uncaught_exception_in_the_process_is_redacted() -> None:
    code = f"from bot.logs import setup_logging; setup_logging('INFO'); raise RuntimeError('bad token {BOT}')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "RuntimeError" in out.stderr and "SECRET" not in out.stderr


@pytest.mark.parametrize("how", ["flag", "env"])
def test_unknown_log_level_is_one_clear_line(how: str, tmp_path) -> None:  # noqa: ANN001
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    args = [sys.executable, "-m", "bot.cli"]
    if how == "flag":
        args += ["--log-level", "verbose"]
    else:
        env["FTBOT_LOG_LEVEL"] = "verbose"
    out = subprocess.run([*args, "db", "upgrade"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert "unknown log level 'verbose'" in lines[0] and "INFO" in lines[0]
    assert not (tmp_path / "x.db").exists()  # nothing ran


def test_log_level_names_are_case_insensitive(tmp_path) -> None:  # noqa: ANN001
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    out = subprocess.run([sys.executable, "-m", "bot.cli", "--log-level", "warning", "db", "upgrade"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
