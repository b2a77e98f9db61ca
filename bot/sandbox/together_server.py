"""HTTP face of the Together sandbox: the routes the `together` SDK calls, plus /_sandbox controls.

Start it with `TogetherSandboxServer().start()`; its `url` is what TOGETHER_BASE_URL should be (the
host alone: the SDK's paths carry their own /v1 and /v2). Pass `state=` to share one simulation
(timing, faults, stats) with an OpenAI SandboxServer.
"""

from __future__ import annotations

import json
from typing import Any

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from bot.background_server import BackgroundServer
from bot.sandbox.server import SandboxApp, drop_connection
from bot.sandbox.state import ApiError, SandboxState, Timing
from bot.sandbox.together_state import TogetherWorld

ROUTES = Map(
    [
        Rule("/v1/files", methods=["POST"], endpoint="start_upload"),
        Rule("/v1/files", methods=["GET"], endpoint="list_files"),
        Rule("/v1/files/<fid>", methods=["GET"], endpoint="get_file"),
        Rule("/v1/files/<fid>", methods=["DELETE"], endpoint="delete_file"),
        Rule("/v1/files/<fid>/content", methods=["GET"], endpoint="file_content"),
        Rule("/v1/files/<fid>/preprocess", methods=["POST"], endpoint="preprocess"),
        Rule("/v1/fine-tunes/models/limits", methods=["GET"], endpoint="limits"),
        Rule("/v1/fine-tunes/estimate-price", methods=["POST"], endpoint="estimate_price"),
        Rule("/v1/fine-tunes", methods=["POST"], endpoint="create_job"),
        Rule("/v1/fine-tunes", methods=["GET"], endpoint="list_jobs"),
        Rule("/v1/fine-tunes/<jid>", methods=["GET"], endpoint="get_job"),
        Rule("/v1/fine-tunes/<jid>", methods=["DELETE"], endpoint="delete_job"),
        Rule("/v1/fine-tunes/<jid>/cancel", methods=["POST"], endpoint="cancel_job"),
        Rule("/v1/fine-tunes/<jid>/events", methods=["GET"], endpoint="list_events"),
        Rule("/v1/fine-tunes/<jid>/checkpoints", methods=["GET"], endpoint="list_checkpoints"),
        Rule("/v1/fine-tunes/<jid>/metrics", methods=["GET"], endpoint="list_metrics"),
        Rule("/v2/projects/<project_id>/models", methods=["GET"], endpoint="list_models"),
        Rule("/v2/projects/<project_id>/models/<mid>", methods=["DELETE"], endpoint="delete_model"),
        Rule("/v1/chat/completions", methods=["POST"], endpoint="chat"),
        # where the 302 of an upload points: object storage, which takes a PUT without our API key
        Rule("/_storage/<token>", methods=["PUT"], endpoint="storage_put"),
        # control routes (faults, timing, stats, chat, reset are the OpenAI sandbox's own)
        Rule("/_sandbox/faults", methods=["POST", "DELETE"], endpoint="ctl_faults"),
        Rule("/_sandbox/timing", methods=["POST"], endpoint="ctl_timing"),
        Rule("/_sandbox/stats", methods=["GET", "DELETE"], endpoint="ctl_stats"),
        Rule("/_sandbox/chat", methods=["POST", "DELETE"], endpoint="ctl_chat"),
        Rule("/_sandbox/reset", methods=["POST"], endpoint="ctl_reset"),
        Rule("/_sandbox/fine-tunes/<jid>/status", methods=["POST", "DELETE"], endpoint="ctl_status"),
        Rule("/_sandbox/fine-tunes/<jid>/events", methods=["POST"], endpoint="ctl_events"),
        Rule("/_sandbox/deployments", methods=["POST", "DELETE"], endpoint="ctl_deploy"),
        Rule("/_sandbox/refusals", methods=["GET", "POST", "DELETE"], endpoint="ctl_refusals"),
    ]
)
_DELEGATED = {"ctl_faults", "ctl_timing", "ctl_stats", "ctl_chat", "ctl_refusals"}


def _json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(obj), status=status, mimetype="application/json", headers=headers)


def _error(status: int, message: str, code: str | None = None) -> Response:
    return _json({"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}, status)


def _body(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(request.get_data() or b"{}")
    except json.JSONDecodeError as exc:
        raise ApiError(400, "Invalid JSON body") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return data


def _int_arg(request: Request, name: str) -> int | None:
    value = request.args.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise ApiError(400, f"{name} must be an integer", param=name) from exc


class TogetherSandboxApp:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.world = TogetherWorld(state)
        self._openai = SandboxApp(state)  # its fault injection, auth check and shared control routes

    def __call__(self, environ, start_response):  # noqa: ANN001
        request = Request(environ)
        return self.dispatch(request)(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        adapter = ROUTES.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except NotFound:
            return _error(404, f"Invalid URL ({request.method} {request.path})")
        except HTTPException as exc:
            return _error(exc.code or 400, exc.description or "bad request")
        if endpoint in _DELEGATED:
            return getattr(self._openai, endpoint)(request)
        fault = None
        if not endpoint.startswith(("ctl_", "storage_")):
            with self.state.lock:
                key = f"together.{endpoint}"
                self.state.requests[key] = self.state.requests.get(key, 0) + 1
            fault = self._openai._fault(request)
            if isinstance(fault, Response):
                return fault
            if not self._openai._authorised(request):
                return _error(401, "Invalid API key provided", "invalid_api_key")
        try:
            response = getattr(self, endpoint)(request, **args)
        except ApiError as exc:
            response = _json(exc.body, exc.status, exc.headers)
        if fault == "lost":
            return _error(500, "Internal server error")
        if fault == "drop":
            return drop_connection(request, response)
        return response

    # ---- files ------------------------------------------------------------------------------

    def start_upload(self, request: Request) -> Response:
        fid, token = self.world.start_upload({k: v for k, v in request.form.items()})
        location = f"{request.host_url.rstrip('/')}/_storage/{token}"
        # Together answers the first step with a redirect to object storage and the new id.
        return Response(b"", status=302, headers={"Location": location, "X-Together-File-Id": fid})

    def storage_put(self, request: Request, token: str) -> Response:
        self.world.put_content(token, request.get_data())
        return Response(b"", status=200)

    def preprocess(self, request: Request, fid: str) -> Response:
        return _json(self.world.preprocess(fid))

    def list_files(self, request: Request) -> Response:
        return _json(self.world.list_files())

    def get_file(self, request: Request, fid: str) -> Response:
        return _json(self.world.get_file(fid))

    def delete_file(self, request: Request, fid: str) -> Response:
        return _json(self.world.delete_file(fid))

    def file_content(self, request: Request, fid: str) -> Response:
        return Response(self.world.file_content(fid), mimetype="application/octet-stream")

    # ---- fine-tunes -------------------------------------------------------------------------

    def limits(self, request: Request) -> Response:
        return _json(self.world.limits(request.args.get("model_name", "")))

    def estimate_price(self, request: Request) -> Response:
        return _json(self.world.estimate_price(_body(request)))

    def create_job(self, request: Request) -> Response:
        body = _body(request)
        self.state.refusals.check_create()
        return _json(self.world.create_job(body))

    def list_jobs(self, request: Request) -> Response:
        return _json(self.world.list_jobs())

    def get_job(self, request: Request, jid: str) -> Response:
        return _json(self.world.get_job(jid))

    def delete_job(self, request: Request, jid: str) -> Response:
        return _json(self.world.delete_job(jid))

    def cancel_job(self, request: Request, jid: str) -> Response:
        return _json(self.world.cancel_job(jid))

    def list_events(self, request: Request, jid: str) -> Response:
        return _json(self.world.events(jid))

    def list_checkpoints(self, request: Request, jid: str) -> Response:
        return _json(self.world.checkpoints(jid))

    def list_metrics(self, request: Request, jid: str) -> Response:
        return _json(self.world.metrics(jid, step_from=_int_arg(request, "global_step_from"), step_to=_int_arg(request, "global_step_to")))

    # ---- models and chat --------------------------------------------------------------------

    def list_models(self, request: Request, project_id: str) -> Response:
        return _json(self.world.list_models(project_id))

    def delete_model(self, request: Request, project_id: str, mid: str) -> Response:
        return _json(self.world.delete_model(project_id, mid))

    def chat(self, request: Request) -> Response:
        body = _body(request)
        self.state.refusals.check_chat(body)
        return _json(self.world.chat(body))

    # ---- control ----------------------------------------------------------------------------

    def ctl_reset(self, request: Request) -> Response:
        self.state.reset()
        self.world.reset()
        return _json({"ok": True})

    def ctl_status(self, request: Request, jid: str) -> Response:
        """POST {"status": "..."}: the job reports that status (one Together might add one day)."""
        status = None if request.method == "DELETE" else _body(request).get("status")
        self.world.set_status(jid, status)
        return _json({"id": jid, "status": status})

    def ctl_events(self, request: Request, jid: str) -> Response:
        body = _body(request)
        count = int(body.get("count", 1))
        self.world.add_events(jid, message=str(body.get("message", "Sandbox event")), count=count, type=str(body.get("type", "warning")))
        return _json({"ok": True, "count": count})

    def ctl_deploy(self, request: Request) -> Response:
        """POST/DELETE {"model": name, "endpoint": optional name}: give a fine-tuned model a dedicated
        endpoint, or take it away. A named endpoint also answers chat requests under its own name."""
        body = _body(request)
        name = str(body.get("model", ""))
        self.world.deploy(name, request.method == "POST", endpoint=str(body["endpoint"]) if body.get("endpoint") else None)
        return _json({"model": name, "deployed": request.method == "POST"})


class TogetherSandboxServer(BackgroundServer):
    """The Together sandbox on a background thread; `url` is what TOGETHER_BASE_URL should be."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        state: SandboxState | None = None,
        timing: Timing | None = None,
        api_key: str | None = None,
    ) -> None:
        self.state = state or SandboxState(timing=timing, api_key=api_key)
        self.app = TogetherSandboxApp(self.state)
        self.world = self.app.world
        super().__init__(self.app, host, port, "together-sandbox")
        self.url = self.base
