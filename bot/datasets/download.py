"""Fetch a file a user shared in Slack: `files.info`, then its `url_private_download` with the bot
token, streamed to a temporary file (Slack allows 1 GB; nothing is held in memory)."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SLACK_MAX_BYTES = 1024**3
CHUNK = 1 << 20


class DownloadError(Exception):
    """Something the user can act on; the message is shown to them."""


class SignInPage(DownloadError):
    pass


@dataclass
class SlackFile:
    id: str
    name: str
    size: int
    url: str
    user: str | None


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
    url = f.get("url_private_download") or f.get("url_private")
    if not url:
        raise DownloadError("Slack gave no download address for the file.")
    return SlackFile(f["id"], f.get("name") or f.get("title") or f["id"], int(f.get("size") or 0), url, f.get("user"))


def _looks_like_html(first: bytes, content_type: str) -> bool:
    head = first.lstrip()[:64].lower()
    return "text/html" in content_type.lower() or head.startswith((b"<!doctype html", b"<html"))


def download(token: str, f: SlackFile, *, max_bytes: int = SLACK_MAX_BYTES, timeout: float = 60.0, chunk: int = CHUNK) -> Downloaded:
    """Stream the file to a temporary file, hashing as it goes. The caller removes it."""
    if f.size > max_bytes:
        raise DownloadError(f"The file is {f.size:,} bytes; ftbot takes at most {max_bytes:,}.")
    req = urllib.request.Request(f.url, headers={"Authorization": f"Bearer {token}"})
    fd, name = tempfile.mkstemp(prefix="ftbot-dataset-", suffix=".jsonl")
    path = Path(name)
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - Slack's URL
            ctype = resp.headers.get("Content-Type", "")
            first = True
            while True:
                block = resp.read(chunk)
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
    except urllib.error.HTTPError as exc:
        path.unlink(missing_ok=True)
        raise DownloadError(f"Slack refused the download (HTTP {exc.code}).") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        path.unlink(missing_ok=True)
        raise DownloadError(f"The download from Slack failed ({type(exc).__name__}); try again.") from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Downloaded(path, size, digest.hexdigest())
