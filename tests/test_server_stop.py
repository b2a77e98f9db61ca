"""Servers stop cleanly: ftbot's waitress server and the stand-ins' werkzeug servers end their
threads, close every socket (idle keep-alive connections included) and raise nothing in a thread."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from bot.background_server import BackgroundServer
from bot.web import HttpServer


def _hello(environ, start_response):  # noqa: ANN001, ANN202
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


@pytest.fixture
def thread_errors() -> Iterator[list[BaseException]]:
    seen: list[BaseException] = []
    before = threading.excepthook

    def hook(args) -> None:  # noqa: ANN001
        # Only server threads: leftovers of other tests in this process are not judged here.
        name = args.thread.name if args.thread is not None else ""
        if name in {"http", "stand-in"} or name.startswith("waitress") or "process_request" in name:
            seen.append(args.exc_value)
        else:
            before(args)

    threading.excepthook = hook  # type: ignore[assignment]
    yield seen
    threading.excepthook = before


def _keep_alive(port: int) -> list[socket.socket]:
    """One connection that made a request and stays open, one that never said anything."""
    used = socket.create_connection(("127.0.0.1", port))
    used.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = b""
    while not answer.endswith(b"ok"):  # the whole answer, so what is read after stop() is the close
        answer += used.recv(1024)
    assert answer.startswith(b"HTTP/1.1 200")
    return [used, socket.create_connection(("127.0.0.1", port))]


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def test_waitress_server_stops_with_idle_connections_open(thread_errors: list[BaseException]) -> None:
    before = set(threading.enumerate())  # other tests' servers in this process are not ours to judge
    server = HttpServer(_hello, host="127.0.0.1", port=0, threads=2).start()
    conns = _keep_alive(server.port)
    workers = [t for t in threading.enumerate() if t.name.startswith("waitress-") and t not in before]
    assert workers
    server.stop()
    assert not server._thread.is_alive()  # the loop ended (before: idle channels kept it polling)
    assert not any(t.is_alive() for t in workers)
    assert _refused(server.port)
    for c in conns:
        assert c.recv(1024) == b""  # closed by the server, not left dangling
        c.close()
    assert thread_errors == []


def test_waitress_server_stopped_right_after_start(thread_errors: list[BaseException]) -> None:
    server = HttpServer(_hello, host="127.0.0.1", port=0, threads=1).start()
    server.stop()
    assert not server._thread.is_alive() and thread_errors == []


def test_stand_in_server_stops_its_thread(thread_errors: list[BaseException]) -> None:
    server = BackgroundServer(_hello, "127.0.0.1", 0, "stand-in").start()
    conns = _keep_alive(server.port)
    server.stop()
    assert not server._thread.is_alive() and _refused(server.port)
    for c in conns:
        c.close()
    assert thread_errors == []
