"""The HTTP face of `ftbot serve`: POST /slack/events (Bolt) and GET /healthz, served by waitress."""

from __future__ import annotations

import json
import logging
import threading

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from sqlalchemy import text

from bot.outbox.sender import delivery_health
from bot.services import Services

log = logging.getLogger(__name__)


class WebApp:
    """WSGI app. /healthz answers 200 when the database answers, 503 otherwise. Its body also says
    whether sending to Slack is paused (the token was refused) and how many messages were given up:
    those need a person, not a restart, so they do not turn the status into a 503."""

    def __init__(self, app: App, services: Services) -> None:
        self.bolt = SlackRequestHandler(app, path="/slack/events")
        self.services = services

    def __call__(self, environ, start_response):  # noqa: ANN001
        path = environ.get("PATH_INFO", "")
        if path == "/healthz" and environ.get("REQUEST_METHOD") in {"GET", "HEAD"}:
            return self._health(start_response)
        return self.bolt(environ, start_response)

    def _health(self, start_response):  # noqa: ANN001
        try:
            with self.services.db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            status, body = "200 OK", {"ok": True, "delivery": delivery_health(self.services.db)}
        except Exception as exc:  # noqa: BLE001 - health checks report, they do not raise
            log.warning("health check: database unreachable: %s", type(exc).__name__)
            status, body = "503 Service Unavailable", {"ok": False, "database": "unreachable"}
        data = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]


class HttpServer:
    """waitress on a thread (tests, demo) or in the foreground (`ftbot serve`)."""

    def __init__(self, wsgi_app, host: str = "0.0.0.0", port: int = 3000, threads: int = 8) -> None:  # noqa: ANN001
        from waitress.server import create_server

        self._server = create_server(wsgi_app, host=host, port=port, threads=threads, ident="ftbot")
        self.port = self._server.effective_port
        self.host = host
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in {"0.0.0.0", ""} else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> HttpServer:
        self._thread = threading.Thread(target=self._server.run, name="http", daemon=True)
        self._thread.start()
        return self

    def run(self) -> None:
        self._server.run()

    def stop(self) -> None:
        self._server.close()
