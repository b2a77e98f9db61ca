"""A local stand-in for the Slack Web API, for tests and `ftbot demo`.

It speaks the methods ftbot uses, keeps channels and messages (with metadata) so the bot can read its
own history back, records every call, and can be told to answer 429 or 5xx. Point the real
`slack_sdk.WebClient` at it with `base_url=<url>/api/`.

It refuses what Slack refuses, so tests catch what production would: Block Kit limits
(`invalid_blocks`, the `table` and `alert` rules in newer_blocks.py), text over 40,000 characters (`msg_too_long`), posts to archived channels
(`is_archived`), deleted or invisible channels (`channel_not_found`), reading a channel the bot is
not a member of (`not_in_channel`; public channels stay postable through `chat:write.public`, file
uploads need membership), a refused token (`refuse_token`), and, once `enforce_limits()` is called,
Slack's rate limits (limits.py: 429 with Retry-After). Channels whose id starts with C are
public and have the bot as a member until a test says otherwise (`set_channel`).
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

from bot import clock
from bot.background_server import BackgroundServer
from bot.slack_standin.limits import READS, Limiter, RateLimits
from bot.slack_standin.newer_blocks import newer_blocks_problem

JSON_FIELDS = {"blocks", "attachments", "metadata", "view", "files", "user_ids", "channels"}

# Slack's documented Block Kit and message limits.
MAX_TEXT = 40_000
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT = 3_000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2_000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_VIEW_TITLE = 24
MAX_PAGE = 1_000


@dataclass
class Channel:
    """What the stand-in knows of a channel. `member`: the bot is in it."""

    private: bool = False
    member: bool = True
    archived: bool = False
    deleted: bool = False


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
    download_redirects: dict[str, str] = field(default_factory=dict)  # file id -> Location
    download_trickle: float | None = None  # seconds between the bytes of every download
    channels: dict[str, Channel] = field(default_factory=dict)
    channel_members: dict[str, list[str]] = field(default_factory=dict)  # people in a channel (the bot is added when it is a member)
    revoked: str | None = None  # the error every call answers while the token is refused
    # Block types this workspace's Slack refuses (a surface or plan without `table`, `alert`, …).
    refused_blocks: set[str] = field(default_factory=set)
    lock: threading.RLock = field(default_factory=threading.RLock)


class SlackStandIn(BackgroundServer):
    """The stand-in server on a background thread."""

    def __init__(self, *, bot_token: str = "xoxb-test-token", host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = StandInState(bot_token=bot_token)
        self._ts = itertools.count(1)
        self._holds: dict[str, tuple[threading.Event, threading.Event, bool]] = {}
        self.limiter: Limiter | None = None  # Slack's rate limits, off until enforce_limits()
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
            self.state.channels.clear()
            self.state.channel_members.clear()
            self.state.download_redirects.clear()
            self.state.download_trickle = None
            self.state.downloads_withheld = False
            self.state.revoked = None
            self.state.refused_blocks.clear()
            self._holds.clear()
            self.limiter = None

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

    def set_channel(self, channel: str, *, private: bool | None = None, member: bool | None = None, archived: bool | None = None, deleted: bool | None = None) -> Channel:
        """Change what the stand-in knows of a channel (created on first mention)."""
        with self.state.lock:
            ch = self._channel(channel)
            if ch is None:
                ch = self.state.channels[channel] = Channel(private=not channel.startswith("C"))
            for name, value in (("private", private), ("member", member), ("archived", archived), ("deleted", deleted)):
                if value is not None:
                    setattr(ch, name, value)
            return ch

    def set_members(self, channel: str, users: list[str]) -> None:
        """Who is in `channel` besides the bot (conversations.members answers these, paged)."""
        with self.state.lock:
            self.state.channel_members[channel] = list(users)

    def enforce_limits(self, limits: RateLimits | None = None) -> Limiter:
        """Answer 429 with Retry-After over Slack's rate limits from now on (`reset()` turns it off)."""
        limiter = Limiter(limits or RateLimits())
        with self.state.lock:
            self.limiter = limiter
        return limiter

    def rate_limited(self, method: str | None = None) -> int:
        """How many calls (of `method`) were answered 429."""
        return len([c for c in self.calls(method) if c.status == 429])

    def refuse_token(self, error: str | None = "token_revoked") -> None:
        """Every call with the bot token answers `error` (token_revoked, invalid_auth, account_inactive,
        ...) until called again with None."""
        with self.state.lock:
            self.state.revoked = error

    def refuse_blocks(self, *types: str) -> None:
        """This workspace refuses messages with these block types from now on, as Slack refuses a
        block it does not take there (`invalid_blocks`, the type named by its json-pointer); none:
        accept every type again."""
        with self.state.lock:
            self.state.refused_blocks = set(types)

    def _refused_block(self, args: dict[str, Any]) -> tuple[str, str] | None:
        with self.state.lock:
            refused = set(self.state.refused_blocks)
        return refused_block_problem(args.get("blocks"), refused) if refused else None

    def post_as_user(self, channel: str, text: str, *, user: str = "U0HUMAN", thread_ts: str | None = None) -> str:
        """A message someone else wrote (fills a busy channel). Its ts."""
        with self.state.lock:
            ts = self._next_ts()
            self.state.messages.setdefault(channel, []).append({"type": "message", "ts": ts, "user": user, "text": text, "thread_ts": thread_ts})
            return ts

    def hold_answers(self, method: str, *, after: bool = True) -> tuple[threading.Event, threading.Event]:
        """Pause the next call of `method` (after doing it when `after`, before otherwise).
        Returns (reached, release): `reached` is set when a call waits, `release` lets it answer."""
        reached, release = threading.Event(), threading.Event()
        with self.state.lock:
            self._holds[method] = (reached, release, after)
        return reached, release

    def set_usergroup(self, group_id: str, users: list[str]) -> None:
        with self.state.lock:
            self.state.usergroups[group_id] = list(users)

    def channel_messages(self, channel: str) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(m) for m in self.state.messages.get(channel, [])]

    def add_user_file(self, name: str, content: bytes, *, filetype: str = "text", url: str | None = None, external_type: str | None = None) -> dict[str, Any]:
        """A file a user shared in Slack, downloadable with the bot token from the stand-in (or from
        `url`, as a file object naming some other address would say). `external_type` ("gdrive",
        "dropbox", …): a link to a file kept outside Slack, as Slack describes one (`is_external`,
        `mode: external`, `url_private` the outside address, no `url_private_download`)."""
        fid = "F" + secrets.token_hex(5).upper()
        here = url or f"{self.base}/files-pri/{fid}/{name}"
        meta: dict[str, Any] = {
            "id": fid,
            "name": name,
            "title": name,
            "filetype": filetype,
            "size": len(content),
            "mode": "hosted",
            "is_external": False,
            "url_private_download": here,
            "url_private": here,
        }
        if external_type is not None:
            meta.update(mode="external", is_external=True, external_type=external_type, size=0, url_private=url or f"https://drive.example.com/{fid}")
            del meta["url_private_download"]
        with self.state.lock:
            self.state.files[fid] = meta
            self.state.file_bytes[fid] = content
        return meta

    def redirect_download(self, file_id: str, location: str) -> None:
        """Answer an authorised download of `file_id` with a 302 to `location` (a CDN, say)."""
        with self.state.lock:
            self.state.download_redirects[file_id] = location

    def trickle_downloads(self, seconds_per_byte: float | None) -> None:
        """Send every download one byte at a time, this far apart (a stuck transfer)."""
        with self.state.lock:
            self.state.download_trickle = seconds_per_byte

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
        # Slack dates messages by its own clock; the stand-in by the one the app reads (bot/clock.py).
        return f"{int(clock.timestamp())}.{next(self._ts):06d}"

    def _api(self, request: Request, method: str) -> Response:
        args = self._args(request)
        with self.state.lock:
            fault = next((f for f in self.state.faults if f.method in (method, "*") and f.count > 0), None)
            if fault is not None:
                fault.count -= 1
                self.state.calls.append(Call(method, args, time.time(), fault.status))
        if fault is not None:
            if fault.status == 429:
                return _ratelimited(fault.retry_after)
            if fault.status >= 500:
                return Response("upstream trouble", status=fault.status)
            return _ok_false(fault.error or "fatal_error")
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else args.get("token")
        call = Call(method, args, time.time())
        with self.state.lock:
            self.state.calls.append(call)
            hold = self._holds.pop(method, None)
            revoked = self.state.revoked
        if token != self.state.bot_token:
            return _ok_false("invalid_auth")
        if revoked:
            return _ok_false(revoked)
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return _ok_false("unknown_method")
        limiter = self.limiter
        retry_after = limiter.check(method, args.get("channel") or args.get("channel_id")) if limiter is not None else None
        if retry_after is not None:
            call.status = 429  # a refused call does nothing
            return _ratelimited(retry_after)
        if limiter is not None and method in READS and limiter.limits.read_page_max:
            args["limit"] = min(int(args.get("limit") or limiter.limits.read_page_max), limiter.limits.read_page_max)
        if hold is not None and not hold[2]:
            _wait_release(hold)
        resp = handler(args)
        if hold is not None and hold[2]:
            _wait_release(hold)
        return resp

    # ---- channels and limits ----------------------------------------------------------------

    def _channel(self, channel: str | None) -> Channel | None:
        """The channel as the stand-in knows it; C/G/D ids exist until deleted (the bot in them)."""
        if not channel:
            return None
        ch = self.state.channels.get(channel)
        if ch is None and channel.startswith(("C", "G", "D")):
            ch = self.state.channels[channel] = Channel(private=not channel.startswith("C"))
        elif ch is None and channel.startswith(("U", "W")):
            # chat.postMessage to a user id posts in the app's DM with them (the Messages tab).
            ch = self.state.channels[channel] = Channel(private=True, member=True)
        if ch is None or ch.deleted:
            return None
        return ch

    def _refuse_post(self, channel: str | None, *, upload: bool = False) -> str | None:
        with self.state.lock:
            ch = self._channel(channel)
            if ch is None or (ch.private and not ch.member):
                return "channel_not_found"
            if ch.archived:
                return "is_archived"
            if upload and not ch.member:
                return "not_in_channel"  # chat:write.public covers messages, not files
        return None

    def _refuse_read(self, channel: str | None) -> str | None:
        with self.state.lock:
            ch = self._channel(channel)
            if ch is None or (ch.private and not ch.member):
                return "channel_not_found"
            if not ch.member:
                return "not_in_channel"
        return None

    # ---- methods ----------------------------------------------------------------------------

    def _m_auth_test(self, args: dict[str, Any]) -> Response:
        return _ok(url="https://ftbot-test.slack.com/", team="ftbot test", user="ftbot", team_id=self.state.team_id, user_id=self.state.bot_user_id, bot_id="B0001")

    def _m_chat_postMessage(self, args: dict[str, Any]) -> Response:
        channel = args.get("channel")
        if not (args.get("text") or args.get("blocks") or args.get("attachments")):
            return _ok_false("no_text")
        refused = self._refuse_post(channel) or self._refused_block(args) or _message_problem(args)
        if refused:
            return _refusal(refused)
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
        refused = self._refuse_post(channel) or self._refused_block(args) or _message_problem(args)
        if refused:
            return _refusal(refused)
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
        refused = self._refuse_post(args.get("channel")) or self._refused_block(args) or _message_problem(args)
        if refused:
            return _refusal(refused)
        return _ok(message_ts=self._next_ts())

    def _m_conversations_history(self, args: dict[str, Any]) -> Response:
        channel = args.get("channel")
        refused = self._refuse_read(channel)
        if refused:
            return _ok_false(refused)
        with self.state.lock:
            msgs = [m for m in self.state.messages.get(channel, []) if not m.get("thread_ts") or m["thread_ts"] == m["ts"]]
        msgs = [m for m in reversed(msgs) if _ts_between(m["ts"], args)]  # newest first, like Slack
        return _page(msgs, args, default_limit=100)

    def _m_conversations_replies(self, args: dict[str, Any]) -> Response:
        channel, ts = args.get("channel"), args.get("ts")
        refused = self._refuse_read(channel)
        if refused:
            return _ok_false(refused)
        with self.state.lock:
            msgs = [m for m in self.state.messages.get(channel, []) if m["ts"] == ts or m.get("thread_ts") == ts]
        if not msgs:
            return _ok_false("thread_not_found")
        parent, replies = msgs[0], [m for m in msgs[1:] if _ts_between(m["ts"], args)]
        # Slack puts the parent first on every page.
        resp = json.loads(_page(replies, args, default_limit=1000).get_data())
        resp["messages"] = [parent, *resp["messages"]]
        return Response(json.dumps(resp), mimetype="application/json")

    def _m_conversations_info(self, args: dict[str, Any]) -> Response:
        cid = args.get("channel", "")
        with self.state.lock:
            ch = self._channel(cid)
            if ch is None or (ch.private and not ch.member):
                return _ok_false("channel_not_found")
            return _ok(channel={"id": cid, "name": cid.lower(), "is_member": ch.member, "is_channel": not ch.private, "is_private": ch.private, "is_archived": ch.archived})

    def _m_conversations_members(self, args: dict[str, Any]) -> Response:
        """Slack's answer: user ids a page at a time (limit up to 1,000, default 100, an opaque cursor);
        channel_not_found for an unknown or deleted channel, or a private one the bot is not in."""
        cid = args.get("channel", "")
        with self.state.lock:
            ch = self._channel(cid)
            if ch is None or (ch.private and not ch.member):
                return _ok_false("channel_not_found")
            members = list(self.state.channel_members.get(cid, []))
            if ch.member and self.state.bot_user_id not in members:
                members.append(self.state.bot_user_id)
        try:
            limit = max(1, min(MAX_PAGE, int(args.get("limit") or 100)))
            start = int(args.get("cursor") or 0)
        except ValueError:
            return _ok_false("invalid_cursor")
        page = members[start : start + limit]
        more = start + limit < len(members)
        return _ok(members=page, response_metadata={"next_cursor": str(start + limit) if more else ""})

    def _m_views_open(self, args: dict[str, Any]) -> Response:
        if not args.get("trigger_id"):
            return _ok_false("invalid_trigger_id")
        refused = _view_problem(args.get("view"))
        if refused:
            return _refusal(refused)
        problem = _file_input_problem(args.get("view") or {})
        if problem:
            return _ok_false_detail("invalid_arguments", problem)
        return _ok(view={"id": "V" + secrets.token_hex(4).upper(), **(args.get("view") or {})})

    def _m_views_push(self, args: dict[str, Any]) -> Response:
        return self._m_views_open(args)

    def _m_views_update(self, args: dict[str, Any]) -> Response:
        refused = _view_problem(args.get("view"))
        if refused:
            return _refusal(refused)
        return _ok(view={"id": args.get("view_id") or "V0", **(args.get("view") or {})})

    def _m_views_publish(self, args: dict[str, Any]) -> Response:
        refused = _view_problem(args.get("view"))
        if refused:
            return _refusal(refused)
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
        if args.get("channel_id"):
            refused = self._refuse_post(args["channel_id"], upload=True)
            if refused:
                return _ok_false(refused)
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
            redirect = self.state.download_redirects.get(fid)
            trickle = self.state.download_trickle
            self.state.calls.append(Call("download", {"file_id": fid, "with_token": auth == f"Bearer {self.state.bot_token}"}, time.time()))
        if auth != f"Bearer {self.state.bot_token}" or self.state.downloads_withheld:
            # Slack answers an unauthenticated download with its login page, status 200.
            return Response("<!DOCTYPE html><html><body>Sign in to Slack</body></html>", mimetype="text/html")
        if redirect is not None:
            return Response("", status=302, headers={"Location": redirect})
        if data is None:
            return Response("not found", status=404)
        if trickle:
            def drip():  # noqa: ANN202
                for i in range(len(data)):
                    time.sleep(trickle)
                    yield data[i : i + 1]

            return Response(drip(), mimetype="application/octet-stream", headers={"Content-Length": str(len(data))}, direct_passthrough=True)
        return Response(data, mimetype="application/octet-stream")

    def _response_url(self, request: Request) -> Response:
        try:
            body = json.loads(request.get_data() or b"{}")
        except json.JSONDecodeError:
            return Response("invalid_payload", status=400)
        refused = self._refused_block(body) or _message_problem(body)
        if refused:
            with self.state.lock:
                self.state.calls.append(Call("response_url", body, time.time(), 400))
            return Response(refused[0], status=400)
        with self.state.lock:
            self.state.responses.append({"path": request.path, **body})
            self.state.calls.append(Call("response_url", body, time.time()))
        return Response("ok", status=200)


def _ok(**kw: Any) -> Response:
    return Response(json.dumps({"ok": True, **kw}), mimetype="application/json")


def _ratelimited(retry_after: int) -> Response:
    return Response(json.dumps({"ok": False, "error": "ratelimited"}), status=429, headers={"Retry-After": str(retry_after)}, mimetype="application/json")


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


def _refusal(problem: str | tuple[str, str]) -> Response:
    if isinstance(problem, tuple):
        error, why = problem
        return Response(json.dumps({"ok": False, "error": error, "errors": [why], "response_metadata": {"messages": [f"[ERROR] {why}"]}}), mimetype="application/json")
    return _ok_false(problem)


def _text_of(obj: Any) -> str:
    return str(obj.get("text", "")) if isinstance(obj, dict) else ""


def _blocks_problem(blocks: Any, max_blocks: int) -> tuple[str, str] | None:
    """The first Block Kit limit `blocks` breaks, as Slack reports it."""
    if blocks is None:
        return None
    if not isinstance(blocks, list):
        return ("invalid_blocks_format", "blocks must be a list")
    if len(blocks) > max_blocks:
        return ("invalid_blocks", f"no more than {max_blocks} items allowed [json-pointer:/blocks]")
    for i, b in enumerate(blocks):
        where = f"[json-pointer:/blocks/{i}]"
        if not isinstance(b, dict) or "type" not in b:
            return ("invalid_blocks", f"missing required field: type {where}")
        kind = b["type"]
        if kind == "section":
            if len(_text_of(b.get("text"))) > MAX_SECTION_TEXT:
                return ("invalid_blocks", f"must be less than {MAX_SECTION_TEXT + 1} characters {where}/text/text")
            fields = b.get("fields") or []
            if len(fields) > MAX_FIELDS:
                return ("invalid_blocks", f"no more than {MAX_FIELDS} items allowed {where}/fields")
            for j, f in enumerate(fields):
                if len(_text_of(f)) > MAX_FIELD_TEXT:
                    return ("invalid_blocks", f"must be less than {MAX_FIELD_TEXT + 1} characters {where}/fields/{j}/text")
            if not b.get("text") and not fields:
                return ("invalid_blocks", f"must provide either text or fields {where}")
        if kind == "header" and len(_text_of(b.get("text"))) > MAX_HEADER_TEXT:
            return ("invalid_blocks", f"must be less than {MAX_HEADER_TEXT + 1} characters {where}/text/text")
        elements = list(b.get("elements") or []) if kind == "actions" else []
        if isinstance(b.get("accessory"), dict):
            elements.append(b["accessory"])
        for e in elements:
            if isinstance(e, dict) and e.get("type") == "button" and len(_text_of(e.get("text"))) > MAX_BUTTON_TEXT:
                return ("invalid_blocks", f"must be less than {MAX_BUTTON_TEXT + 1} characters {where}/elements/text/text")
    return newer_blocks_problem(blocks)


def refused_block_problem(blocks: Any, refused: set[str]) -> tuple[str, str] | None:
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except ValueError:
            return None
    for i, b in enumerate(blocks if isinstance(blocks, list) else []):
        if isinstance(b, dict) and b.get("type") in refused:
            return ("invalid_blocks", f"must be a valid enum value [json-pointer:/blocks/{i}/type]")
    return None


def _message_problem(args: dict[str, Any]) -> str | tuple[str, str] | None:
    if len(str(args.get("text") or "")) > MAX_TEXT:
        return "msg_too_long"
    return _blocks_problem(args.get("blocks"), MAX_MESSAGE_BLOCKS)


def _view_problem(view: Any) -> str | tuple[str, str] | None:
    if not isinstance(view, dict):
        return ("invalid_arguments", "view is required")
    for name in ("title", "submit", "close"):
        if len(_text_of(view.get(name))) > MAX_VIEW_TITLE:
            return ("invalid_blocks", f"must be less than {MAX_VIEW_TITLE + 1} characters [json-pointer:/view/{name}/text]")
    return _blocks_problem(view.get("blocks"), MAX_VIEW_BLOCKS)


def _ts_between(ts: str, args: dict[str, Any]) -> bool:
    inclusive = str(args.get("inclusive", "")).lower() in {"1", "true"}
    oldest, latest = args.get("oldest"), args.get("latest")
    if oldest and not (float(ts) >= float(oldest) if inclusive else float(ts) > float(oldest)):
        return False
    return not (latest and not (float(ts) <= float(latest) if inclusive else float(ts) < float(latest)))


def _page(msgs: list[dict[str, Any]], args: dict[str, Any], *, default_limit: int) -> Response:
    """One page of `msgs` by `limit` and `cursor` (an offset here; opaque to clients)."""
    limit = max(1, min(MAX_PAGE, int(args.get("limit") or default_limit)))
    start = int(args.get("cursor") or 0)
    page = msgs[start : start + limit]
    more = start + limit < len(msgs)
    return _ok(messages=page, has_more=more, response_metadata={"next_cursor": str(start + limit) if more else ""})


def _wait_release(hold: tuple[threading.Event, threading.Event, bool]) -> None:
    reached, release, _ = hold
    reached.set()
    release.wait(timeout=60)
