"""What the adapters share when they move bytes (both SDKs are generated the same way)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHUNK = 1 << 20


def stream_to_file(response: Any, dest: Path) -> int:
    """Write a streamed SDK response (`with_streaming_response…`) to `dest` a chunk at a time."""
    size = 0
    with open(dest, "wb") as out:
        for chunk in response.iter_bytes(CHUNK):
            out.write(chunk)
            size += len(chunk)
    return size
