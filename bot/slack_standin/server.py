"""A local stand-in for the Slack Web API, for tests and `ftbot demo`.

It speaks the methods ftbot uses, keeps channels and messages (with metadata) so the bot can read its
own history back, records every call, and can be told to answer 429 or 5xx. Point the real
`slack_sdk.WebClient` at it with `base_url=<url>/api/`.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from werkzeug.wrappers import Request, Response

from bot.background_server import BackgroundServer

JSON_FIELDS = {"blocks", "attachments", "metadata", "view", "files", "user_ids", "channels"}


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    at: float
    status: int = 200


@dataclass
class Fault:
    method: str
    status: int  # 429 or 5xx, or 200 with an `error`
    count: int = 1
    retry_after: int = 1
    error: str | None = None


@dataclass
class StandInState:
    bot_token: str
    team_id: str = "T0001"
    bot_user_id: str = "UBOT"
    calls: list[Call] = field(default_factory=list)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    file_bytes: dict[str, bytes] = field(default_factory=dict)
    usergroups: dict[str, list[str]] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)
    downloads_withheld: bool = False
    lock: threading.RLock = field(default_factory=threading.RLock)


class SlackStandIn(BackgroundServer):
    """The stand-in server on a background thread."""

    def __init__(self, *, bot_token: str = "xoxb-test-token", host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = StandInState(bot_token=bot_token)
        self._ts = itertools.count(1)
        super().__init__(self, host, port, "slack-standin")
        self.api_url = f"{self.base}/api/"

    # ---- what tests use ---------------------------------------------------------------------

    def reset(self) -> None:
        with self.state.lock:
            self.state.calls.clear()
            self.state.messages.clear()
            self.state.faults.clear()
            self.state.responses.clear()
            self.state.files.clear()
            self.state.file_bytes.clear()

    def calls(self, method: str | None = None) -> list[Call]:
        with self.state.lock:
            return [c for c in self.state.calls if method is None or c.method == method]

    def responses(self) -> list[dict[str, Any]]:
        """Bodies posted to response_url (what `respond()` sends)."""
        with self.state.lock:
            return list(self.state.responses)

    def fail(self, method: str, status: int, *, count: int = 1, retry_after: int = 1, error: str | None = None) -> None:
        with self.state.lock:
            self.state.faults.append(Fault(method, status, count, retry_after, error))

    def set_usergroup(self, group_id: str, users: list[str]) -> None:
        with self.state.lock:
            self.state.usergroups[group_id] = list(users)

    def channel_messages(self, channel: str) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(m) for m in self.state.messages.get(channel, [])]

    def add_user_file(self, name: str, content: bytes, *, filetype: str = "text") -> dict[str, Any]:
        """A file a user shared in Slack, downloadable with the bot token."""
        fid = "F" + secrets.token_hex(5).upper()
        meta = {
            "id": fid,
            "name": name,
            "title": name,
            "filetype": filetype,
            "size": len(content),
            "url_private_download": f"{self.base}/files-pri/{fid}/{name}",
            "url_private": f"{self.base}/files-pri/{fid}/{name}",
        }
        with self.state.lock:
            self.state.files[fid] = meta
            self.state.file_bytes[fid] = content
        return meta

    def withhold_downloads(self, withheld: bool = True) -> None:
        """Act like an app without the `files:read` scope: downloads get the sign-in page."""
        with self.state.lock:
            self.state.downloads_withheld = withheld

    def uploaded_file(self, file_id: str) -> bytes | None:
        with self.state.lock:
            return self.state.file_bytes.get(file_id)

    # ---- WSGI -------------------------------------------------------------------------------

    def __call__(self, environ, start_response):  # noqa: ANN001
        request = Request(environ)
        path = request.path
        if path.startswith("/api/"):
            resp = self._api(request, path[len("/api/") :])
        elif path.startswith("/upload/") and request.method == "POST":
            resp = self._upload(request, path.split("/")[2])
        elif path.startswith("/files-pri/"):
            resp = self._download(request, path.split("/")[2])
        elif path.startswith("/response/"):
            resp = self._response_url(request)
        else:
            resp = Response("not found", status=404)
        return resp(environ, start_response)

    def _args(self, request: Request) -> dict[str, Any]:
        args: dict[str, Any] = {}
        ctype = request.headers.get("Content-Type", "")
        raw = request.get_data()
        if ctype.startswith("application/json"):
            args.update(json.loads(raw or b"{}"))
        elif raw:
            for k, v in parse_qs(raw.decode(), keep_blank_values=True).items():
                args[k] = v[0]
        for k, v in request.args.items():
            args.setdefault(k, v)
        for k in JSON_FIELDS:
            if isinstance(args.get(k), str):
                try:
                    args[k] = json.loads(args[k])
                except json.JSONDecodeError:
                    pass
        return args

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def _api(self, request: Request, method: str) -> Response:
        args = self._args(request)
        with self.state.lock:
            fault = next((f for f in self.state.faults if f.method in (method, "*") and f.count > 0), None)
            if fault is not None:
                fault.count -= 1
                self.state.calls.append(Call(method, args, time.time(), fault.status))
        if fault is not None:
            if fault.status == 429:
                return Response(json.dumps({"ok": False, "error": "ratelimited"}), status=429, headers={"Retry-After": str(fault.retry_after)}, mimetype="application/json")
            if fault.status >= 500:
                return Response("upstream trouble", status=fault.status)
            return _ok_false(fault.error or "fatal_error")
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else args.get("token")
        with self.state.lock:
            self.state.calls.append(Call(method, args, time.time()))
        if token != self.state.bot_token:
            return _ok_false("invalid_auth")
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return _ok_false("unknown_method")
        return handler(args)

    # ---- methods ----------------------------------------------------------------------------

    def _m_auth_test(self, args: dict[str, Any]) -> Response:
        return _ok(url="https://ftbot-test.slack.com/", team="ftbot test", user="ftbot", team_id=self.state.team_id, user_id=self.state.bot_user_id, bot_id="B0001")

    def _m_chat_postMessage(self, args: dict[str, Any]) -> Response:
        channel = args.get("channel")
        if not channel:
            return _ok_false("channel_not_found")
        if not (args.get("text") or args.get("blocks") or args.get("attachments")):
            return _ok_false("no_text")
        ts = self._next_ts()
        msg = {
            "type": "message",
            "ts": ts,
            "user": self.state.bot_user_id,
            "text": args.get("text", ""),
            "blocks": args.get("blocks"),
            "thread_ts": args.get("thread_ts"),
            "metadata": args.get("metadata"),
        }
        with self.state.lock:
            self.state.messages.setdefault(channel, []).append(msg)
        return _ok(channel=channel, ts=ts, message=msg)

    def _m_chat_update(self, args: dict[str, Any]) -> Response:
        channel, ts = args.get("channel"), args.get("ts")
        with self.state.lock:
            for m in self.state.messages.get(channel, []):
                if m["ts"] == ts:
                    m["text"] = args.get("text", m["text"])
                    if "blocks" in args:
                        m["blocks"] = args["blocks"]
                    m["edited"] = True
                    return _ok(channel=channel, ts=ts, text=m["text"])
        return _ok_false("message_not_found")

    def _m_chat_postEphemeral(self, args: dict[str, Any]) -> Response:
        return _ok(message_ts=self._next_ts())

    def _m_conversations_history(self, args: dict[str, Any]) -> Response:
        with self.state.lock:
            msgs = [m for m in self.state.messages.get(args.get("channel"), []) if not m.get("thread_ts") or m["thread_ts"] == m["ts"]]
        return _ok(messages=list(reversed(msgs))[: int(args.get("limit", 100))], has_more=False)

    def _m_conversations_replies(self, args: dict[str, Any]) -> Response:
        ts = args.get("ts")
        with self.state.lock:
            msgs = [m for m in self.state.messages.get(args.get("channel"), []) if m["ts"] == ts or m.get("thread_ts") == ts]
        return _ok(messages=msgs[: int(args.get("limit", 1000))], has_more=False)

    def _m_conversations_info(self, args: dict[str, Any]) -> Response:
        ch = args.get("channel", "")
        if not ch.startswith(("C", "G", "D")):
            return _ok_false("channel_not_found")
        return _ok(channel={"id": ch, "name": ch.lower(), "is_member": True, "is_channel": True})

    def _m_views_open(self, args: dict[str, Any]) -> Response:
        if not args.get("trigger_id"):
            return _ok_false("invalid_trigger_id")
        problem = _file_input_problem(args.get("view") or {})
        if problem:
            return _ok_false_detail("invalid_arguments", problem)
        return _ok(view={"id": "V" + secrets.token_hex(4).upper(), **(args.get("view") or {})})

    def _m_views_update(self, args: dict[str, Any]) -> Response:
        return _ok(view={"id": args.get("view_id") or "V0", **(args.get("view") or {})})

    def _m_views_publish(self, args: dict[str, Any]) -> Response:
        return _ok(view={"id": "VHOME", **(args.get("view") or {})})

    def _m_users_info(self, args: dict[str, Any]) -> Response:
        uid = args.get("user", "")
        user = self.state.users.get(uid) or {"id": uid, "name": uid.lower(), "real_name": f"User {uid}", "tz": "UTC", "profile": {"display_name": uid.lower()}}
        return _ok(user=user)

    def _m_usergroups_users_list(self, args: dict[str, Any]) -> Response:
        group = args.get("usergroup")
        with self.state.lock:
            if group not in self.state.usergroups:
                return _ok_false("no_such_subteam")
            return _ok(users=list(self.state.usergroups[group]))

    def _m_files_getUploadURLExternal(self, args: dict[str, Any]) -> Response:
        fid = "F" + secrets.token_hex(5).upper()
        name = args.get("filename", "file")
        with self.state.lock:
            self.state.files[fid] = {"id": fid, "name": name, "title": name, "size": int(args.get("length", 0)), "complete": False}
        return _ok(upload_url=f"{self.base}/upload/{fid}", file_id=fid)

    def _upload(self, request: Request, fid: str) -> Response:
        data = request.get_data()
        if request.files:
            data = next(iter(request.files.values())).read()
        with self.state.lock:
            if fid not in self.state.files:
                return Response("unknown upload", status=404)
            self.state.file_bytes[fid] = data
            self.state.calls.append(Call("upload", {"file_id": fid, "bytes": len(data)}, time.time()))
        return Response(f"OK - {len(data)}", status=200)

    def _m_files_completeUploadExternal(self, args: dict[str, Any]) -> Response:
        files = args.get("files") or []
        out = []
        with self.state.lock:
            for f in files:
                meta = self.state.files.get(f.get("id"))
                if meta is None or f.get("id") not in self.state.file_bytes:
                    return _ok_false("file_not_found")
                meta.update(complete=True, title=f.get("title") or meta["name"], channel=args.get("channel_id"), thread_ts=args.get("thread_ts"))
                out.append({"id": meta["id"], "title": meta["title"], "name": meta["name"]})
            if args.get("channel_id"):
                ts = self._next_ts()
                self.state.messages.setdefault(args["channel_id"], []).append(
                    {"type": "message", "ts": ts, "user": self.state.bot_user_id, "text": args.get("initial_comment", ""), "files": out, "thread_ts": args.get("thread_ts")}
                )
        return _ok(files=out)

    def _m_files_info(self, args: dict[str, Any]) -> Response:
        with self.state.lock:
            meta = self.state.files.get(args.get("file", ""))
        if meta is None:
            return _ok_false("file_not_found")
        return _ok(file=meta)

    def _download(self, request: Request, fid: str) -> Response:
        auth = request.headers.get("Authorization", "")
        with self.state.lock:
            data = self.state.file_bytes.get(fid)
        if auth != f"Bearer {self.state.bot_token}" or self.state.downloads_withheld:
            # Slack answers an unauthenticated download with its login page, status 200.
            return Response("<!DOCTYPE html><html><body>Sign in to Slack</body></html>", mimetype="text/html")
        if data is None:
            return Response("not found", status=404)
        return Response(data, mimetype="application/octet-stream")

    def _response_url(self, request: Request) -> Response:
        try:
            body = json.loads(request.get_data() or b"{}")
        except json.JSONDecodeError:
            return Response("invalid_payload", status=400)
        with self.state.lock:
            self.state.responses.append({"path": request.path, **body})
            self.state.calls.append(Call("response_url", body, time.time()))
        return Response("ok", status=200)


def _ok(**kw: Any) -> Response:
    return Response(json.dumps({"ok": True, **kw}), mimetype="application/json")


def _ok_false(error: str) -> Response:
    return Response(json.dumps({"ok": False, "error": error}), mimetype="application/json")


def _ok_false_detail(error: str, detail: str) -> Response:
    return Response(json.dumps({"ok": False, "error": error, "response_metadata": {"messages": [detail]}}), mimetype="application/json")


def _file_input_problem(view: dict[str, Any]) -> str | None:
    """Slack's rules for `file_input`: only in an input block of a modal, 1-10 files, file types as a list."""
    for block in view.get("blocks") or []:
        for el in [block.get("element") or {}] + list(block.get("elements") or []):
            if not isinstance(el, dict) or el.get("type") != "file_input":
                continue
            if block.get("type") != "input" or view.get("type") != "modal":
                return "[ERROR] file_input is only allowed in an input block of a modal"
            max_files = el.get("max_files", 10)
            if not isinstance(max_files, int) or not 1 <= max_files <= 10:
                return "[ERROR] max_files must be between 1 and 10"
            types = el.get("filetypes", [])
            if not isinstance(types, list) or not all(isinstance(t, str) and t for t in types):
                return "[ERROR] filetypes must be a list of file type strings"
            if not el.get("action_id"):
                return "[ERROR] file_input needs an action_id"
    return None
