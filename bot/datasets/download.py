"""Fetch a file a user shared in Slack: `files.info`, then its `url_private_download` with the bot
token, streamed to a temporary file (Slack allows 1 GB; nothing is held in memory).

The bot token goes only where Slack serves files: over https to files.slack.com (files.slack-gov.com
on GovSlack), which is where `url_private` and `url_private_download` point. A file whose address is
anywhere else is refused before any request. Redirects are followed by hand so the token is attached
to each hop only when that hop is a Slack file host; any other host gets the request without it, and
a step down from https to plain http, or any scheme but http(s), is refused. One exception, exact and
narrow: when SLACK_API_URL is not Slack's (the local stand-in the tests and the demo use, or a relay a
team runs in front of Slack), its own origin (scheme, host and port) is trusted too: the token already
goes there with every API call, so sending it there for files discloses nothing new.

The whole download has a deadline, not only each read: every socket wait is bounded by what is left.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import socket
import ssl
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

SLACK_MAX_BYTES = 1024**3
CHUNK = 1 << 20
# 1 GB at ~1.2 MB/s; Slack's file hosts are far faster, so only a stuck or trickling transfer hits it.
DOWNLOAD_DEADLINE = 900.0
READ_TIMEOUT = 60.0
MAX_REDIRECTS = 5
SLACK_FILE_HOST = "files.slack.com"
GOV_FILE_HOST = "files.slack-gov.com"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECTS = {301, 302, 303, 307, 308}
_EXTERNAL_NAMES = {"gdrive": "Google Drive", "dropbox": "Dropbox", "box": "Box", "onedrive": "OneDrive", "sharepoint": "SharePoint"}

Origin = tuple[str, str, int]


class DownloadError(Exception):
    """Something the user can act on; the message is shown to them."""


class SignInPage(DownloadError):
    pass


@dataclass
class SlackFile:
    id: str
    name: str
    size: int
    url: str | None
    user: str | None
    external_type: str | None = None  # set when Slack only links to a file kept elsewhere
    mode: str | None = None  # Slack's `mode`: hosted, external, snippet, post, tombstone, hidden_by_limit …

    @property
    def is_external(self) -> bool:
        return self.external_type is not None or self.mode == "external"


@dataclass
class Downloaded:
    path: Path
    bytes: int
    sha256: str

    def remove(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def file_info(slack: Any, file_id: str) -> SlackFile:
    from slack_sdk.errors import SlackApiError

    try:
        f = slack.files_info(file=file_id)["file"]
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else None
        if error == "missing_scope":
            raise DownloadError("ftbot cannot read files: the app needs the `files:read` scope (reinstall it).") from None
        raise DownloadError(f"Slack would not describe the file ({error or 'error'}).") from None
    external = f.get("is_external") or f.get("mode") == "external"
    url = f.get("url_private_download") or f.get("url_private")
    if not url and not external and f.get("mode") not in {"tombstone", "hidden_by_limit"}:
        raise DownloadError("Slack gave no download address for the file.")
    name = f.get("name") or f.get("title") or f["id"]
    external_type = (f.get("external_type") or "external") if external else None
    return SlackFile(f["id"], name, int(f.get("size") or 0), url, f.get("user"), external_type, f.get("mode"))


def token_origins(slack_api_url: str) -> frozenset[Origin]:
    """Where the bot token may go for a file download (see the module's note)."""
    origins = {("https", SLACK_FILE_HOST, 443)}
    api = urlsplit(slack_api_url)
    host = (api.hostname or "").lower()
    if host == "slack-gov.com" or host.endswith(".slack-gov.com"):
        origins.add(("https", GOV_FILE_HOST, 443))
    elif host and host != "slack.com" and not host.endswith(".slack.com") and api.scheme in _DEFAULT_PORTS:
        origins.add((api.scheme, host, api.port or _DEFAULT_PORTS[api.scheme]))
    return frozenset(origins)


def _origin(url: str) -> Origin:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme, 0)


def _looks_like_html(first: bytes, content_type: str) -> bool:
    head = first.lstrip()[:64].lower()
    return "text/html" in content_type.lower() or head.startswith((b"<!doctype html", b"<html"))


def _refuse_unusable(f: SlackFile) -> None:
    if f.mode == "tombstone":
        raise DownloadError("The file was deleted from Slack.")
    if f.mode == "hidden_by_limit":
        raise DownloadError("Slack hides this file (older than the workspace's plan shows), so ftbot cannot read it.")
    if f.is_external:
        where = _EXTERNAL_NAMES.get((f.external_type or "").lower(), "a service outside Slack")
        raise DownloadError(
            f"It is a link to a file kept in {where}, not a file uploaded to Slack, so ftbot cannot read it. "
            "Download it and share the `.jsonl` file itself."
        )


class _Deadline:
    def __init__(self, seconds: float, read_timeout: float) -> None:
        self.seconds, self.read_timeout = seconds, read_timeout
        self.end = time.monotonic() + seconds

    def wait(self) -> float:
        """How long the next socket operation may take."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise self.expired()
        return min(self.read_timeout, left)

    def expired(self) -> DownloadError:
        return DownloadError(f"The download from Slack did not finish within {self.seconds:g} s; try again later.")

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self.end


def _connection(origin: Origin, timeout: float) -> http.client.HTTPConnection:
    scheme, host, port = origin
    proxy = urllib.request.getproxies().get(scheme) if scheme == "https" else None
    if proxy and not urllib.request.proxy_bypass(host):
        # The deployment's egress proxy, as urllib honours it. http.client's HTTPSConnection aimed at
        # the proxy with set_tunnel(target) connects in plain TCP, sends CONNECT, and only then wraps
        # TLS with the target's hostname: the proxy sees `CONNECT host:port`, never the token.
        p = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if p.scheme != "http":
            raise DownloadError(f"HTTPS_PROXY is a {p.scheme}:// proxy; ftbot tunnels only through an http:// proxy (CONNECT, then TLS to Slack inside the tunnel).")
        conn = http.client.HTTPSConnection(p.hostname or "", p.port or 3128, timeout=timeout, context=ssl.create_default_context())
        tunnel_headers = {}
        if p.username is not None:
            creds = f"{unquote(p.username)}:{unquote(p.password or '')}".encode()
            tunnel_headers["Proxy-Authorization"] = "Basic " + base64.b64encode(creds).decode("ascii")
        conn.set_tunnel(host, port, headers=tunnel_headers)
        return conn
    if scheme == "https":
        return http.client.HTTPSConnection(host, port, timeout=timeout, context=ssl.create_default_context())
    return http.client.HTTPConnection(host, port, timeout=timeout)


def _open(token: str, url: str, origins: frozenset[Origin], clock: _Deadline) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse, socket.socket]:
    """GET `url`, following redirects by hand; the token only ever rides to a trusted origin."""
    if _origin(url) not in origins:
        host = urlsplit(url).hostname or url[:40]
        raise DownloadError(f"Slack named a download address outside its file hosts ({host}); ftbot sends its token only to Slack, so it did not fetch it.")
    previous_scheme = None
    for _ in range(MAX_REDIRECTS + 1):
        origin = _origin(url)
        scheme = origin[0]
        if scheme not in _DEFAULT_PORTS or not origin[1]:
            raise DownloadError(f"The download was sent to a {scheme or 'non-web'} address; ftbot only fetches over https from Slack.")
        trusted = origin in origins
        if previous_scheme == "https" and scheme == "http":
            raise DownloadError("The download was redirected from https to plain http; ftbot refused to follow it.")
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {"User-Agent": "ftbot"}
        if trusted:
            headers["Authorization"] = f"Bearer {token}"
        conn = _connection(origin, clock.wait())
        try:
            conn.connect()
            # Kept here: http.client drops conn.sock when the response will close the connection,
            # but the response reads through this same socket, whose timeout the caller keeps bounding.
            sock = conn.sock
            conn.request("GET", target, headers=headers)
            resp = conn.getresponse()
        except BaseException:
            conn.close()
            raise
        if resp.status in _REDIRECTS:
            location = resp.getheader("Location")
            conn.close()
            if not location:
                raise DownloadError(f"Slack redirected the download (HTTP {resp.status}) without saying where.")
            url, previous_scheme = urljoin(url, location), scheme
            continue
        if resp.status >= 400:
            conn.close()
            raise DownloadError(f"Slack refused the download (HTTP {resp.status}).")
        return conn, resp, sock
    raise DownloadError(f"The download was redirected more than {MAX_REDIRECTS} times; ftbot gave up.")


def download(
    token: str,
    f: SlackFile,
    *,
    origins: frozenset[Origin] | None = None,
    max_bytes: int = SLACK_MAX_BYTES,
    deadline: float = DOWNLOAD_DEADLINE,
    timeout: float = READ_TIMEOUT,
    chunk: int = CHUNK,
) -> Downloaded:
    """Stream the file to a temporary file, hashing as it goes. The caller removes it.
    `origins`: where the token may go (token_origins(SLACK_API_URL)); Slack's file hosts by default."""
    _refuse_unusable(f)
    if f.size > max_bytes:
        raise DownloadError(f"The file is {f.size:,} bytes; ftbot takes at most {max_bytes:,}.")
    if not f.url:
        raise DownloadError("Slack gave no download address for the file.")
    origins = origins if origins is not None else token_origins("https://slack.com/api/")
    clock = _Deadline(deadline, timeout)
    fd, name = tempfile.mkstemp(prefix="ftbot-dataset-", suffix=".jsonl")
    path = Path(name)
    digest, size = hashlib.sha256(), 0
    conn = None
    try:
        with os.fdopen(fd, "wb") as out:
            conn, resp, sock = _open(token, f.url, origins, clock)
            ctype = resp.getheader("Content-Type", "") or ""
            first = True
            while True:
                sock.settimeout(clock.wait())
                block = resp.read1(chunk)
                if not block:
                    break
                if first and _looks_like_html(block, ctype):
                    # What Slack sends instead of the file when the token lacks `files:read`.
                    raise SignInPage(
                        "Slack answered with its sign-in page instead of the file: the app is missing the "
                        "`files:read` scope. Add it in the app's OAuth settings and reinstall ftbot."
                    )
                first = False
                size += len(block)
                if size > max_bytes:
                    raise DownloadError(f"The file is larger than {max_bytes:,} bytes.")
                digest.update(block)
                out.write(block)
    except DownloadError:
        path.unlink(missing_ok=True)
        raise
    except TimeoutError as exc:
        path.unlink(missing_ok=True)
        if clock.passed:
            raise clock.expired() from None
        raise DownloadError(f"The download from Slack failed ({type(exc).__name__}); try again.") from None
    except (http.client.HTTPException, OSError) as exc:
        path.unlink(missing_ok=True)
        raise DownloadError(f"The download from Slack failed ({type(exc).__name__}); try again.") from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    finally:
        if conn is not None:
            conn.close()
    return Downloaded(path, size, digest.hexdigest())
