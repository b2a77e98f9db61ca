"""One file from the source provider to the target, in constant memory: streamed to a temp file
(hashed as it is read back), then uploaded from disk, or not at all when the same bytes are there.

"The same bytes are there" is known two ways: a dataset row of the team with this sha256 at the
target (bot/datasets/register.py), or a file at the target under the name ftbot gives a copy, which
carries the sha256. The second is what makes a retry after the target failed mid-upload (or answered
too late) reuse the upload that did arrive instead of making a second one.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bot.datasets.register import reusable_file
from bot.errors import UserError
from bot.provider.base import ProviderError, ProviderNotFound, provider_label
from bot.services import Services

log = logging.getLogger(__name__)

CHUNK = 1 << 20
UPLOAD_ATTEMPTS = 3


@dataclass(frozen=True)
class Downloaded:
    path: Path
    bytes: int
    sha256: str


def download(services: Services, provider: str, file_id: str, dest_dir: Path, what: str) -> Downloaded:
    """The source file on disk. A file gone at the source is a clear UserError."""
    at = services.provider_for(provider)
    path = dest_dir / f"{what}.jsonl"
    try:
        size = at.download_file(file_id, path)
    except ProviderNotFound:
        raise UserError(
            f"The {what} file `{file_id[:60]}` of this model no longer exists at {provider_label(provider)}, so there is nothing to copy and nothing was started. "
            "Upload the data again (`/ft upload`) and start from it at the target."
        ) from None
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return Downloaded(path, size, digest.hexdigest())


def copy_name(sha256: str, what: str) -> str:
    """The name a copy gets at the target: the sha256 makes a finished earlier upload recognisable."""
    return f"ftbot-{what}-{sha256[:16]}.jsonl"


def _already_there(services: Services, target: str, name: str, size: int) -> str | None:
    try:
        for f in services.provider_for(target).list_files(purpose="fine-tune", limit=1000):
            # A file the target never finished taking in (still pending, or refused) is not a copy.
            if f.filename == name and f.bytes == size and not any(w in (f.status or "") for w in ("pending", "invalid", "error")):
                return f.id
    except ProviderError as exc:
        log.warning("listing %s files failed (%s); uploading", target, exc.reason)
    return None


@dataclass(frozen=True)
class Placed:
    file_id: str
    reused: bool
    name: str


def place(services: Services, *, team_id: str, target: str, got: Downloaded, what: str, sleep: float = 1.0) -> Placed:
    """Upload `got` to the target once, retrying a failing target; an identical file is reused."""
    name = copy_name(got.sha256, what)
    found = reusable_file(services, team_id, got.sha256, target) or _already_there(services, target, name, got.bytes)
    if found:
        return Placed(found, True, name)
    # Named like the copy so the Together SDK, which uploads from a path, needs no second copy on disk.
    named = got.path.with_name(name)
    got.path.rename(named)
    at = services.provider_for(target)
    for attempt in range(1, UPLOAD_ATTEMPTS + 1):
        try:
            return Placed(at.upload_file(named, name).id, False, name)
        except ProviderError as exc:
            if not exc.retryable or attempt == UPLOAD_ATTEMPTS:
                raise
            log.warning("upload to %s failed (%s), attempt %d of %d", target, exc.reason, attempt, UPLOAD_ATTEMPTS)
            time.sleep(sleep * attempt)
            # It may have arrived although the answer did not: look before sending it again.
            found = _already_there(services, target, name, got.bytes)
            if found:
                return Placed(found, True, name)
    raise AssertionError("unreachable")


def temp_dir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="ftbot-migrate-")
