"""A WSGI app served by werkzeug on a daemon thread: the two local stand-ins (sandbox, Slack)."""

from __future__ import annotations

import logging
import threading

from werkzeug.serving import make_server

# One access-log line per request is noise for stand-ins.
logging.getLogger("werkzeug").setLevel(logging.WARNING)


class BackgroundServer:
    def __init__(self, app, host: str, port: int, name: str) -> None:  # noqa: ANN001
        self._server = make_server(host, port, app, threaded=True)
        self._server.daemon_threads = True
        self.host = host
        self.port = self._server.server_port
        self.base = f"http://{host}:{self.port}"
        self._name = name
        self._thread: threading.Thread | None = None

    def start(self):  # noqa: ANN201 - returns self, typed by subclasses' use
        # A short poll interval: stop() waits for the loop to notice, and tests stop servers often.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=self._name, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._server.shutdown()  # returns once serve_forever has ended (it closes the socket)
            self._thread.join(timeout)
        self._server.server_close()
