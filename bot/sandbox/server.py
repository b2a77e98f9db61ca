"""HTTP face of the sandbox: OpenAI's routes under /v1, plus /_sandbox control routes for tests."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from dataclasses import asdict, fields
from typing import Any

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from bot.background_server import BackgroundServer
from bot.sandbox import checks
from bot.sandbox.learned import DEFAULT_NOISE
from bot.sandbox.state import ApiError, Faults, SandboxState, Timing

ROUTES = Map(
    [
        Rule("/v1/files", methods=["POST"], endpoint="create_file"),
        Rule("/v1/files", methods=["GET"], endpoint="list_files"),
        Rule("/v1/files/<fid>", methods=["GET"], endpoint="get_file"),
        Rule("/v1/files/<fid>", methods=["DELETE"], endpoint="delete_file"),
        Rule("/v1/files/<fid>/content", methods=["GET"], endpoint="file_content"),
        Rule("/v1/uploads", methods=["POST"], endpoint="create_upload"),
        Rule("/v1/uploads/<uid>/parts", methods=["POST"], endpoint="add_part"),
        Rule("/v1/uploads/<uid>/complete", methods=["POST"], endpoint="complete_upload"),
        Rule("/v1/uploads/<uid>/cancel", methods=["POST"], endpoint="cancel_upload"),
        Rule("/v1/fine_tuning/jobs", methods=["POST"], endpoint="create_job"),
        Rule("/v1/fine_tuning/jobs", methods=["GET"], endpoint="list_jobs"),
        Rule("/v1/fine_tuning/jobs/<jid>", methods=["GET"], endpoint="get_job"),
        Rule("/v1/fine_tuning/jobs/<jid>/cancel", methods=["POST"], endpoint="cancel_job"),
        Rule("/v1/fine_tuning/jobs/<jid>/pause", methods=["POST"], endpoint="pause_job"),
        Rule("/v1/fine_tuning/jobs/<jid>/resume", methods=["POST"], endpoint="resume_job"),
        Rule("/v1/fine_tuning/jobs/<jid>/events", methods=["GET"], endpoint="list_events"),
        Rule("/v1/fine_tuning/jobs/<jid>/checkpoints", methods=["GET"], endpoint="list_checkpoints"),
        Rule("/v1/models", methods=["GET"], endpoint="list_models"),
        Rule("/v1/models/<path:mid>", methods=["GET"], endpoint="get_model"),
        Rule("/v1/models/<path:mid>", methods=["DELETE"], endpoint="delete_model"),
        Rule("/v1/chat/completions", methods=["POST"], endpoint="chat"),
        # control routes for tests, benchmarks and the demo
        Rule("/_sandbox/faults", methods=["POST", "DELETE"], endpoint="ctl_faults"),
        Rule("/_sandbox/timing", methods=["POST"], endpoint="ctl_timing"),
        Rule("/_sandbox/limits", methods=["POST"], endpoint="ctl_limits"),
        Rule("/_sandbox/stats", methods=["GET", "DELETE"], endpoint="ctl_stats"),
        Rule("/_sandbox/reset", methods=["POST"], endpoint="ctl_reset"),
        Rule("/_sandbox/chat", methods=["POST", "DELETE"], endpoint="ctl_chat"),
        Rule("/_sandbox/models/shutdown", methods=["POST"], endpoint="ctl_shutdown"),
        Rule("/_sandbox/jobs/<jid>/burst", methods=["POST"], endpoint="ctl_burst"),
        Rule("/_sandbox/jobs/<jid>", methods=["DELETE"], endpoint="ctl_forget_job"),
        Rule("/_sandbox/jobs/<jid>/curve", methods=["POST"], endpoint="ctl_curve"),
        Rule("/_sandbox/jobs/<jid>/stall", methods=["POST", "DELETE"], endpoint="ctl_stall"),
        Rule("/_sandbox/jobs/<jid>/status", methods=["POST", "DELETE"], endpoint="ctl_status"),
        Rule("/_sandbox/webhooks", methods=["GET", "POST", "DELETE"], endpoint="ctl_webhooks"),
        Rule("/_sandbox/webhooks/<wid>/replay", methods=["POST"], endpoint="ctl_webhook_replay"),
        Rule("/_sandbox/refusals", methods=["GET", "POST", "DELETE"], endpoint="ctl_refusals"),
    ]
)


_SERVER_ERROR = {"error": {"message": "The server had an error while processing your request.", "type": "server_error", "param": None, "code": None}}


def drop_connection(request: Request, response: Response) -> Response:
    """The work is done, then the connection closes before a byte of the answer: the client sees a
    dropped connection (a proxy restarting, a network cut), not an HTTP error."""
    sock = request.environ.get("werkzeug.socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    # Written to a closed socket: werkzeug takes it as the client having gone away.
    return response


def _json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(obj), status=status, mimetype="application/json", headers=headers)


def _body(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(request.get_data() or b"{}")
    except json.JSONDecodeError as exc:
        raise ApiError(400, "We could not parse the JSON body of your request.") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return data


def _limit(request: Request, default: int = 20) -> int:
    try:
        n = int(request.args.get("limit", default))
    except ValueError as exc:
        raise ApiError(400, "limit must be an integer", param="limit") from exc
    if not 1 <= n <= 10000:
        raise ApiError(400, "limit must be between 1 and 10000", param="limit")
    return n


class SandboxApp:
    """WSGI app over a SandboxState."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    # ---- plumbing ---------------------------------------------------------------------------

    def __call__(self, environ, start_response):  # noqa: ANN001
        path = environ.get("PATH_INFO", "")
        if path.startswith("/openai/v1/"):
            # Azure OpenAI's v1 endpoint is OpenAI's API under /openai/v1/: one sandbox serves both.
            environ["PATH_INFO"] = path[len("/openai") :]
        request = Request(environ)
        return self.dispatch(request)(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        adapter = ROUTES.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except NotFound:
            return _json({"error": {"message": f"Invalid URL ({request.method} {request.path})", "type": "invalid_request_error", "param": None, "code": None}}, 404)
        except HTTPException as exc:
            return _json({"error": {"message": exc.description, "type": "invalid_request_error", "param": None, "code": None}}, exc.code or 400)
        if not endpoint.startswith("ctl_"):
            with self.state.lock:
                self.state.requests[endpoint] = self.state.requests.get(endpoint, 0) + 1
            fault = self._fault(request)
            if isinstance(fault, Response):
                return fault
            if not self._authorised(request):
                return _json({"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}, 401)
        else:
            fault = None
        try:
            response = getattr(self, endpoint)(request, **args)
        except ApiError as exc:
            response = _json(exc.body, exc.status, exc.headers)
        if fault == "lost":
            # The work was done but the answer never arrives: what a timeout after a POST looks like.
            return _json(_SERVER_ERROR, 500)
        if fault == "drop":
            return drop_connection(request, response)
        return response

    def _authorised(self, request: Request) -> bool:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return False
        return self.state.api_key is None or auth[7:].strip() == self.state.api_key

    def _fault(self, request: Request) -> Response | str | None:
        f = self.state.faults
        if f.latency:
            time.sleep(f.latency)
        if f.rate <= 0 or (f.path_contains and f.path_contains not in request.path):
            return None
        if f.path_exact and request.path.rstrip("/") != f.path_exact.rstrip("/"):
            return None
        if f.method and f.method.upper() != request.method:
            return None
        with self.state.lock:
            if f.remaining is not None and f.remaining <= 0:
                return None
            if self.state.fault_rng.random() >= f.rate:
                return None
            if f.remaining is not None:
                f.remaining -= 1
            kind = self.state.fault_rng.choice(f.kinds)
        if kind == "slow":
            # Hangs until slow_seconds pass or the faults are lifted (a test healing the provider
            # need not wait out requests already hanging).
            deadline = time.monotonic() + f.slow_seconds
            while self.state.faults is f and (left := deadline - time.monotonic()) > 0:
                time.sleep(min(0.05, left))
            return None
        if kind in ("lost", "drop"):
            return kind
        if kind == "429":
            return _json(
                {"error": {"message": "Rate limit reached for requests", "type": "requests", "param": None, "code": "rate_limit_exceeded"}},
                429,
                {"Retry-After": str(f.retry_after)},
            )
        if kind == "403":
            # What a key without the owner role hears when it deletes a model.
            return _json({"error": {"message": "You have insufficient permissions for this operation. Missing scopes: api.delete.", "type": "invalid_request_error", "param": None, "code": "insufficient_permissions"}}, 403)
        return _json(_SERVER_ERROR, int(kind))

    # ---- files ------------------------------------------------------------------------------

    def create_file(self, request: Request) -> Response:
        upload = request.files.get("file")
        if upload is None:
            raise ApiError(400, "Missing required parameter: 'file'.", param="file")
        for key in list(request.form) + [k for k in request.files if k != "file"]:
            if key != "purpose" and not key.startswith("expires_after"):
                raise ApiError(400, f"Unrecognized request argument supplied: {key}", param=key)
        purpose = checks.file_purpose(request.form.get("purpose"))
        checks.form_expires_after(request.form)
        content = upload.read()
        if len(content) > 512 * 1024 * 1024:
            raise ApiError(400, "File is larger than 512 MB; use the Uploads API.", param="file")
        return _json(self.state.add_file(upload.filename or "file", content, purpose))

    def list_files(self, request: Request) -> Response:
        if request.args.get("order", "desc") not in {"asc", "desc"}:
            raise ApiError(400, "order must be 'asc' or 'desc'", param="order")
        return _json(
            self.state.list_files(
                purpose=request.args.get("purpose"),
                after=request.args.get("after"),
                limit=_limit(request, 10000),
                order=request.args.get("order", "desc"),
            )
        )

    def get_file(self, request: Request, fid: str) -> Response:
        return _json(self.state.get_file(fid))

    def delete_file(self, request: Request, fid: str) -> Response:
        return _json(self.state.delete_file(fid))

    def file_content(self, request: Request, fid: str) -> Response:
        self.state.get_file(fid)
        return Response(self.state.file_content.get(fid, b""), mimetype="application/octet-stream")

    # ---- uploads ----------------------------------------------------------------------------

    def create_upload(self, request: Request) -> Response:
        return _json(self.state.create_upload(_body(request)))

    def add_part(self, request: Request, uid: str) -> Response:
        part = request.files.get("data")
        if part is None:
            raise ApiError(400, "Missing required parameter: 'data'.", param="data")
        return _json(self.state.add_part(uid, part.read()))

    def complete_upload(self, request: Request, uid: str) -> Response:
        return _json(self.state.complete_upload(uid, checks.complete_upload(_body(request))))

    def cancel_upload(self, request: Request, uid: str) -> Response:
        return _json(self.state.cancel_upload(uid))

    # ---- jobs -------------------------------------------------------------------------------

    def create_job(self, request: Request) -> Response:
        body = _body(request)
        self.state.refusals.check_create()
        return _json(self.state.create_job(body))

    def list_jobs(self, request: Request) -> Response:
        metadata = {
            k[len("metadata[") : -1]: v for k, v in request.args.items() if k.startswith("metadata[") and k.endswith("]")
        }
        return _json(self.state.list_jobs(after=request.args.get("after"), limit=_limit(request), metadata=metadata))

    def get_job(self, request: Request, jid: str) -> Response:
        return _json(self.state.get_job(jid))

    def cancel_job(self, request: Request, jid: str) -> Response:
        return _json(self.state.cancel_job(jid))

    def pause_job(self, request: Request, jid: str) -> Response:
        return _json(self.state.pause_job(jid))

    def resume_job(self, request: Request, jid: str) -> Response:
        return _json(self.state.resume_job(jid))

    def list_events(self, request: Request, jid: str) -> Response:
        return _json(self.state.list_events(jid, after=request.args.get("after"), limit=_limit(request)))

    def list_checkpoints(self, request: Request, jid: str) -> Response:
        return _json(self.state.list_checkpoints(jid, after=request.args.get("after"), limit=_limit(request, 10)))

    # ---- models -----------------------------------------------------------------------------

    def list_models(self, request: Request) -> Response:
        return _json(self.state.list_models())

    def get_model(self, request: Request, mid: str) -> Response:
        return _json(self.state.get_model(mid))

    def delete_model(self, request: Request, mid: str) -> Response:
        return _json(self.state.delete_model(mid))

    def chat(self, request: Request) -> Response:
        body = _body(request)
        self.state.get_model(body.get("model") or "")
        self.state.refusals.check_chat(body)
        return _json(self.state.chat_completion(body))

    # ---- control ----------------------------------------------------------------------------

    def ctl_faults(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.state.faults = Faults()
        else:
            body = _body(request)
            known = {f.name for f in fields(Faults)}
            unknown = set(body) - known
            if unknown:
                raise ApiError(400, f"unknown fault settings: {sorted(unknown)}")
            if "kinds" in body:
                body["kinds"] = tuple(str(k) for k in body["kinds"])
            self.state.faults = Faults(**body)
        return _json(asdict(self.state.faults))

    def ctl_timing(self, request: Request) -> Response:
        body = _body(request)
        for k, v in body.items():
            if not hasattr(self.state.timing, k):
                raise ApiError(400, f"unknown timing setting: {k}")
            setattr(self.state.timing, k, type(getattr(self.state.timing, k))(v))
        return _json(asdict(self.state.timing))

    def ctl_limits(self, request: Request) -> Response:
        body = _body(request)
        self.state.daily_job_limit = int(body.get("daily_job_limit", 0))
        return _json({"daily_job_limit": self.state.daily_job_limit})

    def ctl_stats(self, request: Request) -> Response:
        with self.state.lock:
            stats = dict(self.state.requests)
            if request.method == "DELETE":
                self.state.requests.clear()
        return _json({"requests": stats, "total": sum(stats.values())})

    def ctl_chat(self, request: Request) -> Response:
        """POST {"reply": "..."}: every chat completion answers that ("{prompt}" is replaced by the
        prompt, so "{prompt}" alone echoes it); POST {"noise": 0.2}: the fraction of trained prompts
        a fine-tuned model answers wrongly (bot.sandbox.learned); DELETE: back to the usual answers."""
        if request.method == "DELETE":
            self.state.chat_reply = None
            self.state.memory.noise = DEFAULT_NOISE
            return _json({"reply": None, "noise": DEFAULT_NOISE})
        body = _body(request)
        if "noise" in body:
            noise = body["noise"]
            if not isinstance(noise, int | float) or isinstance(noise, bool) or not 0 <= noise <= 1:
                raise ApiError(400, "noise must be a number from 0 to 1")
            self.state.memory.noise = float(noise)
        if "reply" in body or "noise" not in body:
            reply = body.get("reply")
            if reply is not None and not isinstance(reply, str):
                raise ApiError(400, "reply must be a string")
            self.state.chat_reply = reply
        return _json({"reply": self.state.chat_reply, "noise": self.state.memory.noise})

    def ctl_shutdown(self, request: Request) -> Response:
        """POST {"model": ID, "shutdown_date": "YYYY-MM-DD" | null}: what the models list says."""
        body = _body(request)
        when = body.get("shutdown_date")
        if when is not None and not isinstance(when, str):
            raise ApiError(400, "shutdown_date must be a string or null")
        return _json(self.state.set_shutdown_date(str(body.get("model") or ""), when))

    def ctl_reset(self, request: Request) -> Response:
        self.state.reset()
        return _json({"ok": True})

    def ctl_burst(self, request: Request, jid: str) -> Response:
        count = int(_body(request).get("count", 100))
        self.state.add_events(jid, count)
        return _json({"ok": True, "count": count})

    def ctl_curve(self, request: Request, jid: str) -> Response:
        """{"train_loss": [...], "valid_loss": [...], "full_valid_loss": [...], "trained_tokens": n}:
        the job's per-step metrics from now on (index 0 is step 1; null: not reported that step;
        NaN / "Infinity" allowed, as a broken run reports them)."""
        return _json(self.state.set_curve(jid, _body(request)))

    def ctl_stall(self, request: Request, jid: str) -> Response:
        """POST: a running job stops producing steps while it stays running; DELETE: it goes on."""
        return _json(self.state.set_stalled(jid, request.method == "POST"))

    def ctl_status(self, request: Request, jid: str) -> Response:
        """POST {"status": "..."}: the job reports that status (any text: "pausing", one nobody
        knows) and stands still; DELETE: it goes on from where it stood."""
        status = None
        if request.method == "POST":
            status = _body(request).get("status")
            if not isinstance(status, str) or not status:
                raise ApiError(400, "status must be a non-empty string", param="status")
        return _json(self.state.hold_status(jid, status))

    def ctl_forget_job(self, request: Request, jid: str) -> Response:
        self.state.forget_job(jid)
        return _json({"ok": True, "id": jid})


    def ctl_refusals(self, request: Request) -> Response:
        """POST {"chat": {"contains", "kind", "model"?}} / {"create_job": {"status", "message", …}}:
        refuse those requests as the real service does (bot.sandbox.refusals); DELETE: stop; GET: what is set."""
        if request.method == "DELETE":
            self.state.refusals.clear()
            return _json(self.state.refusals.describe())
        if request.method == "GET":
            return _json(self.state.refusals.describe())
        return _json(self.state.refusals.configure(_body(request)))

    def ctl_webhooks(self, request: Request) -> Response:
        """POST {"url": ..., "secret": "whsec_…", "retry_delays": [...]?}: sign and send a webhook
        whenever a job ends; DELETE: stop; GET: every delivery attempt so far."""
        hooks = self.state.webhooks
        if request.method == "GET":
            return _json({"deliveries": hooks.deliveries()})
        if request.method == "DELETE":
            hooks.configure(None, None)
            return _json({"ok": True})
        body = _body(request)
        url, secret = body.get("url"), body.get("secret")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ApiError(400, "url must be an http(s) URL", param="url")
        if not isinstance(secret, str) or not secret.startswith("whsec_"):
            raise ApiError(400, "secret must be a whsec_… signing secret", param="secret")
        delays = body.get("retry_delays")
        hooks.configure(url, secret, retry_delays=tuple(float(x) for x in delays) if delays is not None else None)
        return _json({"ok": True, "url": url})

    def ctl_webhook_replay(self, request: Request, wid: str) -> Response:
        if not self.state.webhooks.replay(wid):
            raise ApiError(404, f"No webhook delivery {wid}")
        return _json({"ok": True, "webhook_id": wid})


class SandboxServer(BackgroundServer):
    """The sandbox on a background thread; `url` is what OPENAI_BASE_URL should be."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, state: SandboxState | None = None, timing: Timing | None = None, api_key: str | None = None) -> None:
        self.state = state or SandboxState(timing=timing, api_key=api_key)
        self.app = SandboxApp(self.state)
        super().__init__(self.app, host, port, "sandbox")
        self.url = f"{self.base}/v1"
