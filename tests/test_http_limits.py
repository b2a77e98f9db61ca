"""`ftbot serve`'s HTTP limits over real sockets: an oversized body is refused with 413 before it is
read (declared, chunked, and the webhook's own smaller limit), and idle connections beyond the
connection limit only delay /healthz until the server closes them for idleness.

What the idle-connection test shows, honestly: no limit on an app server stops a client that opens
enough idle connections from filling it; what ftbot controls is how long that lasts (the channel
timeout) and how many there may be. So the test fills a small limit with idle sockets, asks /healthz
while it is full, and checks the server closes the idle ones itself and then answers. The real defence
is a proxy in front that buffers requests (README, Deploy)."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from bot.sandbox.webhooks import new_secret
from bot.web import HttpServer, WebApp
from tests.conftest import date_env, wait_for

LIMIT = 1024 * 1024  # the default FTBOT_HTTP_MAX_BODY_BYTES


def _connect(url: str, timeout: float = 10.0) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=timeout)
    return s


def _read_response(s: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        block = s.recv(65536)
        if not block:
            break
        data += block
    return data


@pytest.fixture
def bot(start_bot, sqlite_url):  # noqa: ANN001
    return start_bot(sqlite_url, openai_webhook_secret=new_secret())


def test_a_declared_oversized_unsigned_post_gets_413_without_sending_the_body(bot) -> None:  # noqa: ANN001
    s = _connect(bot.url)
    try:
        # Headers only: the 200 MB body is never sent, so an answer proves nothing waited for it.
        s.sendall(b"POST /slack/events HTTP/1.1\r\nHost: ftbot\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 200000000\r\n\r\n")
        head = _read_response(s)
    finally:
        s.close()
    assert head.startswith(b"HTTP/1.1 413"), head[:200]
    # One byte over the limit is refused too; the limit itself is not.
    for size, status in ((LIMIT + 1, b"413"), (LIMIT, b"401")):
        s = _connect(bot.url)
        try:
            s.sendall(f"POST /slack/events HTTP/1.1\r\nHost: ftbot\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {size}\r\n\r\n".encode())
            if status == b"401":
                s.sendall(b"a" * size)  # allowed in, then refused as unsigned by Bolt
            head = _read_response(s)
        finally:
            s.close()
        assert head.split(b"\r\n", 1)[0].split(b" ")[1] == status, (size, head[:200])


def test_a_chunked_body_is_refused_once_it_passes_the_limit(bot) -> None:  # noqa: ANN001
    s = _connect(bot.url)
    try:
        s.sendall(b"POST /slack/events HTTP/1.1\r\nHost: ftbot\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n")
        # One byte more than the limit, and the body never ends: the answer must not wait for its end.
        s.sendall(f"{LIMIT + 1:x}\r\n".encode() + b"a" * (LIMIT + 1))
        head = _read_response(s)
    finally:
        s.close()
    assert head.startswith(b"HTTP/1.1 413"), head[:200]


def test_the_webhook_keeps_its_own_smaller_limit(bot) -> None:  # noqa: ANN001
    body = b"{" + b" " * (100 * 1024) + b"}"  # under the server's limit, over the webhook's 64 KB
    req = urllib.request.Request(f"{bot.url}/webhooks/openai", data=body, method="POST", headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 413 and "65536" in json.loads(err.value.read())["error"]


def test_the_body_limit_is_a_setting(start_bot, sqlite_url) -> None:  # noqa: ANN001
    bot = start_bot(sqlite_url, http_max_body_bytes=4096)
    req = urllib.request.Request(f"{bot.url}/slack/events", data=b"a" * 5000, method="POST", headers={"Content-Type": "application/x-www-form-urlencoded"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 413  # the app's own check (this test server's waitress keeps the 1 MB bound)
    assert bot.slack.command("help").status == 200  # a real Slack request is far smaller


def _healthz(url: str, timeout: float) -> int:
    with urllib.request.urlopen(f"{url}/healthz", timeout=timeout) as r:
        return r.status


def test_idle_connections_over_the_limit_only_delay_healthz_until_they_time_out(bot) -> None:  # noqa: ANN001
    limit, idle_timeout = 6, 2
    server = HttpServer(WebApp(bot.app, bot.services), host="127.0.0.1", port=0, connection_limit=limit, channel_timeout=idle_timeout).start()
    channels = server._server.active_channels  # waitress' own count of accepted connections
    idle: list[socket.socket] = []
    try:
        # Under the limit: idle connections do not stop /healthz.
        idle += [_connect(server.url) for _ in range(2)]
        wait_for(lambda: len(channels) == 2)
        assert _healthz(server.url, timeout=5) == 200

        # Over it: more idle connections than the limit. waitress stops accepting at the limit (its
        # listening socket and wake-up pipe count too); the rest wait in the kernel's backlog.
        idle += [_connect(server.url) for _ in range(limit + 2)]
        wait_for(lambda: len(channels) >= limit - 2)
        seen = []
        for _ in range(30):  # what must NOT happen: accepting past the limit
            seen.append(len(channels))
            time.sleep(0.01)
        assert max(seen) <= limit, seen

        answered: list[int] = []
        probe = threading.Thread(target=lambda: answered.append(_healthz(server.url, timeout=60)))
        probe.start()
        # The server closes idle connections by itself (EOF on the client side) ...
        first = idle[0]
        first.settimeout(30)
        assert first.recv(1) == b""
        # ... and then answers /healthz, which was waiting in the backlog.
        probe.join(timeout=60)
        assert answered == [200]
    finally:
        for s in idle:
            s.close()
        server.stop()


def test_ftbot_serve_takes_its_limits_from_the_settings(tmp_path, slack) -> None:  # noqa: ANN001
    """The console script wires FTBOT_HTTP_MAX_BODY_BYTES into waitress: a body over it is refused
    from its headers alone (the app's own check would only run after waitress had read the body)."""
    import os
    import shutil
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import BOT_TOKEN, SIGNING_SECRET

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        "PATH": os.environ["PATH"],
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "PORT": str(port),
        "FTBOT_SANDBOX": "1",
        **date_env(),
        "FTBOT_HTTP_MAX_BODY_BYTES": "4096",
        "FTBOT_HTTP_CONNECTION_LIMIT": "20",
        "FTBOT_HTTP_CHANNEL_TIMEOUT": "5",
    }
    ftbot = shutil.which("ftbot", path=str(Path(sys.executable).parent)) or "ftbot"
    proc = subprocess.Popen([ftbot, "--log-level", "WARNING", "serve", "--no-worker", "--host", "127.0.0.1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        def healthy() -> bool:
            try:
                return _healthz(url, timeout=1) == 200
            except OSError:
                return proc.poll() is not None  # stop waiting if it died

        wait_for(healthy, timeout=60, interval=0.2)
        assert proc.poll() is None
        s = _connect(url)
        try:
            s.sendall(b"POST /slack/events HTTP/1.1\r\nHost: ftbot\r\nContent-Length: 4097\r\n\r\n")
            head = _read_response(s)
        finally:
            s.close()
        assert head.startswith(b"HTTP/1.1 413"), head[:200]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)


def test_a_chunked_body_is_bounded_under_another_wsgi_server(bot) -> None:  # noqa: ANN001
    """Served by a WSGI server that passes chunked bodies on as a stream (werkzeug's: no
    CONTENT_LENGTH, wsgi.input_terminated), ftbot itself reads at most the limit plus one byte."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, WebApp(bot.app, bot.services), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        s = _connect(url)
        try:
            s.sendall(b"POST /slack/events HTTP/1.1\r\nHost: ftbot\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n")
            s.sendall(f"{LIMIT + 1:x}\r\n".encode() + b"a" * (LIMIT + 1) + b"\r\n")  # and the body never ends
            head = _read_response(s)
        finally:
            s.close()
        assert b" 413 " in head.split(b"\r\n", 1)[0], head[:200]
        # A small chunked request goes on to Bolt (refused there as unsigned: it was read and checked).
        s = _connect(url)
        try:
            s.sendall(b"POST /slack/events HTTP/1.1\r\nHost: ftbot\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\na=b&c\r\n0\r\n\r\n")
            head = _read_response(s)
        finally:
            s.close()
        assert b" 401 " in head.split(b"\r\n", 1)[0], head[:200]
    finally:
        server.shutdown()
        server.server_close()


def test_a_negative_content_length_is_refused_before_anything_reads_the_body(bot) -> None:  # noqa: ANN001
    """waitress answers 400 to it itself; under a WSGI server that passes it on, ftbot refuses it
    (a "-1" read would mean "read everything", past every limit)."""
    import io

    s = _connect(bot.url)
    try:
        s.sendall(b"POST /slack/events HTTP/1.1\r\nHost: ftbot\r\nContent-Length: -1\r\nConnection: close\r\n\r\nabc")
        head = _read_response(s)
    finally:
        s.close()
    assert b" 400 " in head.split(b"\r\n", 1)[0], head[:200]

    reads: list[tuple] = []

    class Unread(io.BytesIO):
        def read(self, *a):  # noqa: ANN001, ANN202
            reads.append(a)
            return super().read(*a)

        readline = read

    app = WebApp(bot.app, bot.services)
    for path in ("/slack/events", "/webhooks/openai"):
        answered: list[str] = []
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "CONTENT_LENGTH": "-1", "CONTENT_TYPE": "application/json", "wsgi.input": Unread(b"x" * 10)}
        body = b"".join(app(environ, lambda status, headers, *_, seen=answered: seen.append(status)))
        assert answered == ["400 Bad Request"] and b"Content-Length" in body, (path, answered, body)
    assert reads == []
