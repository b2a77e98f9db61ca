"""HTTP face of the Vertex sandbox: the REST routes the real `google-genai` client calls against a
local base URL (`HttpOptions(base_url=…)`), plus /_sandbox controls; and a Cloud Storage emulator
(`gcp-storage-emulator`, in memory) that `google-cloud-storage` is pointed at for the bucket.

    server = VertexSandboxServer(bucket="ftbot-data").start()
    server.url          # google-genai's base_url
    server.storage_url  # google-cloud-storage's api_endpoint (what STORAGE_EMULATOR_HOST would be)
    server.stop()       # stops both (the emulator's thread is not a daemon: always stop)

Both REST versions (`v1`, `v1beta1`) are served. Every API request needs `Authorization: Bearer …`
(any token: the client sends the token of the credentials it is given).

Controls (JSON bodies):
- POST /_sandbox/faults {"kind": "500" | "503" | "429" | "lost" | "drop", "path_contains": …,
  "method": …, "remaining": n}: the next matching requests fail. "lost" does the work then answers
  500; "drop" does the work then closes the connection without answering (a creation whose answer
  never arrives). DELETE /_sandbox/faults lifts them.
- POST /_sandbox/timing {"queued_seconds": …, "validating_seconds": …, "step_seconds": …}
- POST /_sandbox/tuningJobs/<id>/fail {"message": …, "code": 13}: the job fails when next looked at.
- POST /_sandbox/chat {"reply": "…{prompt}…"} or {"noise": 0.2}; DELETE: usual answers.
- POST /_sandbox/clock {"advance": seconds}: the sandbox's clock stops and moves only when told;
  DELETE /_sandbox/clock: the wall clock again.
- GET /_sandbox/stats: requests per route; POST /_sandbox/reset.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request, Response

from bot.background_server import BackgroundServer
from bot.sandbox.state import Timing
from bot.sandbox.vertex_state import PROJECT, GoogleError, ManualClock, VertexWorld

_P = r"/(?P<version>v1|v1beta1)/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(_P + r"/tuningJobs$"), "create_job"),
    ("GET", re.compile(_P + r"/tuningJobs$"), "list_jobs"),
    ("GET", re.compile(_P + r"/tuningJobs/(?P<jid>[^/:]+)$"), "get_job"),
    ("POST", re.compile(_P + r"/tuningJobs/(?P<jid>[^/:]+):cancel$"), "cancel_job"),
    ("GET", re.compile(_P + r"/models$"), "list_models"),
    ("DELETE", re.compile(_P + r"/models/(?P<mid>[^/:]+)$"), "delete_model"),
    ("POST", re.compile(_P + r"/(?P<target>endpoints/[^/:]+|publishers/google/models/[^/:]+):generateContent$"), "generate"),
]
CONTROLS: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"/_sandbox/faults$"), "ctl_faults"),
    ("DELETE", re.compile(r"/_sandbox/faults$"), "ctl_faults_off"),
    ("POST", re.compile(r"/_sandbox/timing$"), "ctl_timing"),
    ("POST", re.compile(r"/_sandbox/tuningJobs/(?P<jid>[^/]+)/fail$"), "ctl_fail"),
    ("POST", re.compile(r"/_sandbox/chat$"), "ctl_chat"),
    ("DELETE", re.compile(r"/_sandbox/chat$"), "ctl_chat_off"),
    ("GET", re.compile(r"/_sandbox/stats$"), "ctl_stats"),
    ("POST", re.compile(r"/_sandbox/reset$"), "ctl_reset"),
    ("POST", re.compile(r"/_sandbox/clock$"), "ctl_clock"),
    ("DELETE", re.compile(r"/_sandbox/clock$"), "ctl_clock_off"),
]
FAULT_KINDS = {"500": 13, "503": 14, "429": 8}


@dataclass
class Fault:
    kind: str
    path_contains: str | None = None
    method: str | None = None
    remaining: int | None = 1


def _json(obj: Any, status: int = 200) -> Response:
    return Response(json.dumps(obj), status=status, mimetype="application/json")


def _error(exc: GoogleError) -> Response:
    return _json(exc.body, exc.http)


def _body(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(request.get_data() or b"{}")
    except ValueError:
        raise GoogleError(3, "Invalid JSON payload received.") from None
    if not isinstance(data, dict):
        raise GoogleError(3, "Invalid JSON payload received: the body must be an object.")
    return data


class VertexSandboxApp:
    def __init__(self, world: VertexWorld) -> None:
        self.world = world
        self.faults: list[Fault] = []
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):  # noqa: ANN001
        request = Request(environ)
        return self.dispatch(request)(environ, start_response)

    def _match(self, request: Request, table: list[tuple[str, re.Pattern[str], str]]) -> tuple[str, dict[str, str]] | None | bool:
        """(handler, args); False when the path exists under another method; None when unknown."""
        known = False
        for method, pattern, name in table:
            m = pattern.match(request.path)
            if m:
                known = True
                if method == request.method:
                    return name, m.groupdict()
        return False if known else None

    def dispatch(self, request: Request) -> Response:
        ctl = self._match(request, CONTROLS)
        if isinstance(ctl, tuple):
            try:
                return getattr(self, ctl[0])(request, **ctl[1])
            except GoogleError as exc:
                return _error(exc)
        found = self._match(request, ROUTES)
        if not isinstance(found, tuple):
            code = 5 if found is None else 3
            message = f"The requested URL {request.path} was not found on this server." if found is None else f"Method {request.method} is not allowed on {request.path}."
            return _error(GoogleError(code, message))
        name, args = found
        args.pop("version")
        with self.world.lock:
            self.world.requests[name] = self.world.requests.get(name, 0) + 1
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return _error(GoogleError(16, "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential."))
        fault = self._take_fault(request)
        if fault is not None and fault.kind in FAULT_KINDS:
            return _error(GoogleError(FAULT_KINDS[fault.kind], "The service is currently unavailable." if fault.kind != "429" else "Quota exceeded for aiplatform.googleapis.com/generate_content_requests_per_minute."))
        try:
            response = getattr(self, name)(request, **args)
        except GoogleError as exc:
            response = _error(exc)
        if fault is not None and fault.kind == "lost":
            return _error(GoogleError(13, "Internal error encountered."))
        if fault is not None and fault.kind == "drop":
            _drop(request)
        return response

    def _take_fault(self, request: Request) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if f.path_contains and f.path_contains not in request.path:
                    continue
                if f.method and f.method.upper() != request.method:
                    continue
                if f.remaining is not None:
                    f.remaining -= 1
                    if f.remaining <= 0:
                        self.faults.remove(f)
                return f
        return None

    # ---- the API ----------------------------------------------------------------------------

    def create_job(self, request: Request, project: str, location: str) -> Response:
        return _json(self.world.create(project, location, _body(request)))

    def list_jobs(self, request: Request, project: str, location: str) -> Response:
        size = request.args.get("pageSize")
        try:
            page_size = int(size) if size else None
        except ValueError:
            raise GoogleError(3, f"Invalid value at 'page_size' (TYPE_INT32), {size!r}") from None
        return _json(self.world.list(project, location, page_size=page_size, page_token=request.args.get("pageToken"), filter_=request.args.get("filter")))

    def get_job(self, request: Request, project: str, location: str, jid: str) -> Response:
        return _json(self.world.get(project, location, jid))

    def cancel_job(self, request: Request, project: str, location: str, jid: str) -> Response:
        return _json(self.world.cancel(project, location, jid))

    def list_models(self, request: Request, project: str, location: str) -> Response:
        return _json(self.world.list_models(project, location))

    def delete_model(self, request: Request, project: str, location: str, mid: str) -> Response:
        return _json(self.world.delete_model(project, location, mid))

    def generate(self, request: Request, project: str, location: str, target: str) -> Response:
        return _json(self.world.generate(project, location, target, _body(request)))

    # ---- controls ---------------------------------------------------------------------------

    def ctl_faults(self, request: Request) -> Response:
        body = _body(request)
        kind = str(body.get("kind", "500"))
        if kind not in {*FAULT_KINDS, "lost", "drop"}:
            raise GoogleError(3, f"unknown fault kind {kind!r}")
        remaining = body.get("remaining", 1)
        with self._lock:
            self.faults.append(Fault(kind, body.get("path_contains"), body.get("method"), None if remaining is None else int(remaining)))
        return _json({"ok": True})

    def ctl_faults_off(self, request: Request) -> Response:
        with self._lock:
            self.faults.clear()
        return _json({"ok": True})

    def ctl_timing(self, request: Request) -> Response:
        for k, v in _body(request).items():
            if not hasattr(self.world.timing, k):
                raise GoogleError(3, f"unknown timing {k!r}")
            setattr(self.world.timing, k, float(v))
        return _json(vars(self.world.timing))

    def ctl_fail(self, request: Request, jid: str) -> Response:
        body = _body(request)
        return _json(self.world.fail(jid, str(body.get("message", "Internal error occurred. Please retry.")), int(body.get("code", 13))))

    def ctl_chat(self, request: Request) -> Response:
        body = _body(request)
        with self.world.lock:
            if "reply" in body:
                self.world.chat_reply = str(body["reply"])
            if "noise" in body:
                self.world.memory.noise = float(body["noise"])
        return _json({"ok": True})

    def ctl_chat_off(self, request: Request) -> Response:
        with self.world.lock:
            self.world.chat_reply = None
            self.world.memory.noise = 0.1
        return _json({"ok": True})

    def ctl_stats(self, request: Request) -> Response:
        with self.world.lock:
            return _json(dict(self.world.requests))

    def ctl_clock(self, request: Request) -> Response:
        """{"advance": seconds}: the sandbox's clock stops (at the wall clock's time, the first time)
        and moves only by what is asked; DELETE: back to the wall clock."""
        with self.world.lock:
            if not isinstance(self.world.clock, ManualClock):
                self.world.clock = ManualClock()
            self.world.clock.advance(float(_body(request).get("advance", 0)))
            return _json({"now": self.world.clock()})

    def ctl_clock_off(self, request: Request) -> Response:
        with self.world.lock:
            self.world.clock = time.time
        return _json({"ok": True})

    def ctl_reset(self, request: Request) -> Response:
        self.world.reset()
        with self._lock:
            self.faults.clear()
        return _json({"ok": True})


def _drop(request: Request) -> None:
    """Close the client's connection without an answer (the work has been done)."""
    sock = request.environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class StorageEmulator:
    """`gcp-storage-emulator` in memory on a local port, with one bucket made."""

    def __init__(self, bucket: str, host: str = "127.0.0.1") -> None:
        from gcp_storage_emulator.server import create_server

        self._server = create_server(host, 0, in_memory=True, default_bucket=bucket)
        self._server.start()
        self.port = self._server._api._httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"

    def read(self, bucket: str, name: str) -> bytes | None:
        from gcp_storage_emulator.exceptions import NotFound

        try:
            return self._server._storage.get_file(bucket, name, show_error=False)
        except NotFound:
            return None

    def stop(self) -> None:
        self._server.stop()


class VertexSandboxServer(BackgroundServer):
    """The Vertex sandbox and its bucket on background threads."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, bucket: str = "ftbot-sandbox-data", timing: Timing | None = None, project: str = PROJECT) -> None:
        self.bucket = bucket
        self.project = project
        self.storage = StorageEmulator(bucket, host)
        try:
            read: Callable[[str, str], bytes | None] = self.storage.read
            self.world = VertexWorld(read, timing=timing, project=project)
            self.app = VertexSandboxApp(self.world)
            super().__init__(self.app, host, port, "vertex-sandbox")
        except Exception:
            self.storage.stop()
            raise
        self.url = self.base + "/"
        self.storage_url = self.storage.url

    def stop(self, timeout: float = 5.0) -> None:
        try:
            super().stop(timeout)
        finally:
            self.storage.stop()
