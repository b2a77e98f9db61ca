"""The HTTP face of `ftbot serve`: POST /slack/events (Bolt), GET /healthz and, when
OPENAI_WEBHOOK_SECRET is set, POST /webhooks/openai; served by waitress."""

from __future__ import annotations

import io
import json
import logging
import threading

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from sqlalchemy import text

from bot.jobs import webhooks
from bot.jobs.poll_health import polling_health
from bot.outbox.sender import delivery_health
from bot.provider.base import WebhookRejected
from bot.services import Services
from bot.settings import (
    DEFAULT_HTTP_CHANNEL_TIMEOUT,
    DEFAULT_HTTP_CONNECTION_LIMIT,
    DEFAULT_HTTP_MAX_BODY_BYTES,
)

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/openai"
# OpenAI's job webhooks are a few hundred bytes; anything far larger is not one of them.
MAX_WEBHOOK_BYTES = 64 * 1024


class WebApp:
    """WSGI app. /healthz answers 200 when the database answers, 503 otherwise. Its body also says
    whether sending to Slack is paused (the token was refused) and how many messages were given up,
    and which jobs' polls keep failing: those need a person, not a restart, so they do not turn the
    status into a 503."""

    def __init__(self, app: App, services: Services) -> None:
        self.bolt = SlackRequestHandler(app, path="/slack/events")
        self.services = services

    def __call__(self, environ, start_response):  # noqa: ANN001
        path = environ.get("PATH_INFO", "")
        if path == "/healthz" and environ.get("REQUEST_METHOD") in {"GET", "HEAD"}:
            return self._health(start_response)
        webhook = path == WEBHOOK_PATH and self.services.settings.webhooks_enabled
        limit = min(MAX_WEBHOOK_BYTES, self.max_body) if webhook else self.max_body
        declared = environ.get("CONTENT_LENGTH") or ""
        if declared and not declared.strip().isdigit():
            # waitress refuses such a header itself; another WSGI server may pass "-1" on, which a
            # reader would take as "read everything".
            return _answer(start_response, "400 Bad Request", {"error": "Content-Length must be a whole number of bytes"})
        if not _bounded_body(environ, limit):
            # Before Bolt (which reads and parses a body before checking its signature) or anything else.
            return _answer(start_response, "413 Content Too Large", {"error": f"request body over {limit} bytes"})
        if webhook:
            return self._webhook(environ, start_response)
        return self.bolt(environ, start_response)

    @property
    def max_body(self) -> int:
        return self.services.settings.http_max_body_bytes

    def _webhook(self, environ, start_response):  # noqa: ANN001
        """Verify, record once, answer. The job is polled by the worker, never in the request."""
        if environ.get("REQUEST_METHOD") != "POST":
            return _answer(start_response, "405 Method Not Allowed", {"error": "POST only"}, [("Allow", "POST")])
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not 0 < length <= MAX_WEBHOOK_BYTES:
            return _answer(start_response, "400 Bad Request", {"error": "missing or oversized body"})
        body = environ["wsgi.input"].read(length)
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        secret = self.services.settings.openai_webhook_secret or ""
        openai = self.services.providers.get("openai")
        if openai is None:
            return _answer(start_response, "404 Not Found", {"error": "OpenAI is not enabled"})
        try:
            event = openai.parse_webhook(body, headers, secret)
        except WebhookRejected as exc:
            log.warning("webhook refused: %s", exc.reason)
            return _answer(start_response, "400 Bad Request", {"error": exc.reason})
        if event is None:
            return _answer(start_response, "200 OK", {"ok": True, "ignored": True})
        try:
            fresh = webhooks.record(self.services.db, event, provider="openai")
        except Exception as exc:  # noqa: BLE001 - a 5xx makes the provider deliver it again later
            log.warning("webhook %s not recorded: %s", event.id, type(exc).__name__)
            return _answer(start_response, "503 Service Unavailable", {"error": "try again"})
        if fresh:
            log.info("webhook %s: %s for %s", event.id, event.type, event.job_id)
        return _answer(start_response, "200 OK", {"ok": True, "duplicate": not fresh})

    def _health(self, start_response):  # noqa: ANN001
        try:
            with self.services.db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            status, body = "200 OK", {"ok": True, "delivery": delivery_health(self.services.db), "polling": polling_health(self.services.db)}
        except Exception as exc:  # noqa: BLE001 - health checks report, they do not raise
            log.warning("health check: database unreachable: %s", type(exc).__name__)
            status, body = "503 Service Unavailable", {"ok": False, "database": "unreachable"}
        data = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]


def _bounded_body(environ, limit: int) -> bool:  # noqa: ANN001
    """False when the body is over `limit`, judged without reading it when it declares its length.
    A body without one (chunked, behind a server that does not de-chunk) is read at most limit+1
    bytes and handed on in memory. waitress refuses larger bodies itself (max_request_body_size) and
    de-chunks within that bound; this guards the app under any WSGI server."""
    raw = environ.get("CONTENT_LENGTH")
    if raw:
        try:
            length = int(raw)
        except ValueError:
            return False
        return 0 <= length <= limit
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if not (chunked or environ.get("wsgi.input_terminated")):
        return True  # no body at all
    data = environ["wsgi.input"].read(limit + 1)
    if len(data) > limit:
        return False
    environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(data), str(len(data))
    return True


def _answer(start_response, status: str, body: dict, extra: list[tuple[str, str]] | None = None) -> list[bytes]:  # noqa: ANN001
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *(extra or [])])
    return [data]


class HttpServer:
    """waitress on a thread (tests, demo) or in the foreground (`ftbot serve`).

    Its limits (FTBOT_HTTP_* settings): a body over `max_body_bytes` is answered 413 by waitress as
    soon as the headers declare it (or, chunked, once that much arrived), never spooled; at most
    `connection_limit` connections are open (more wait in the listen backlog); a connection idle for
    `channel_timeout` seconds is closed, checked every `channel_timeout / 2` seconds at most."""

    def __init__(
        self,
        wsgi_app,  # noqa: ANN001
        host: str = "0.0.0.0",
        port: int = 3000,
        threads: int = 8,
        *,
        max_body_bytes: int = DEFAULT_HTTP_MAX_BODY_BYTES,
        connection_limit: int = DEFAULT_HTTP_CONNECTION_LIMIT,
        channel_timeout: int = DEFAULT_HTTP_CHANNEL_TIMEOUT,
    ) -> None:
        from waitress.server import create_server

        self._server = create_server(
            wsgi_app,
            host=host,
            port=port,
            threads=threads,
            ident="ftbot",
            # waitress refuses a body whose length is >= this, so one more than the largest allowed.
            max_request_body_size=max_body_bytes + 1,
            connection_limit=connection_limit,
            channel_timeout=channel_timeout,
            # Idle connections are looked for this often; waitress' 30 s would let a short timeout lag.
            cleanup_interval=max(1, min(30, channel_timeout // 2)),
        )
        self.port = self._server.effective_port
        self.host = host
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in {"0.0.0.0", ""} else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> HttpServer:
        self._thread = self._loop = threading.Thread(target=self.run, name="http", daemon=True)
        self._thread.start()
        return self

    def run(self) -> None:
        self._loop = threading.current_thread()
        self._server.run()

    def stop(self, timeout: float = 5.0) -> None:
        """Requests in flight finish, then every socket is closed by the loop's own thread and the
        loop ends. Closing them from another thread while the loop polls them is what made it die
        with "Bad file descriptor" (and left idle keep-alive connections holding it alive)."""
        from waitress import wasyncore

        server = self._server
        server.task_dispatcher.shutdown(timeout=timeout)
        sockets = getattr(server, "_map", None)
        if sockets is None:
            sockets = server.map  # several listening sockets (MultiSocketServer)
        loop, trigger = getattr(self, "_loop", None), getattr(server, "trigger", None)
        if loop is None or not loop.is_alive() or loop is threading.current_thread() or trigger is None:
            wasyncore.close_all(sockets)  # no loop running elsewhere (or we are it, in a signal handler)
            return
        trigger.pull_trigger(lambda: wasyncore.close_all(sockets))
        loop.join(timeout)
