"""A training file moved from the OpenAI sandbox to the Together AI sandbox the way `/ft migrate` moves
it, against the disk's own speed, with ftbot's peak memory.

    python bench/migrate.py [--mb 1024]

1. Starts `ftbot sandbox` (OpenAI and Together AI) in its own process: the sandboxes keep files in
   memory, and that must not count as ftbot's.
2. Generates a chat dataset of about --mb megabytes on disk and uploads it to the OpenAI sandbox from a
   helper process (the openai client, Uploads API in parts).
3. Measures the disk: one read-and-write copy of the same file (the floor any copy through a temp file
   pays), in its own process.
4. Runs the copy in a fresh process: bot.migration.copying.download (the openai client streaming the
   file to a temp file, then hashed) and .place (the together client streaming it up from disk), with
   a SQLite database for the reuse check; its ru_maxrss is ftbot's peak resident memory.
Then checks the bytes at Together equal the original, and prints the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"port {port} did not open")


def generate(path: Path, target: int) -> int:
    """The chat data bench/validate.py generates (deterministic); returns its size in bytes."""
    sys.path.insert(0, str(ROOT / "bench"))
    from validate import generate as gen

    gen(path, target)
    return path.stat().st_size


def child_upload(openai_url: str, path: str) -> None:
    from bot.provider.openai_adapter import OpenAIProvider

    p = OpenAIProvider(api_key="sk-bench", base_url=openai_url, max_retries=0, timeout=600)
    print(json.dumps({"file_id": p.upload_file(Path(path), "support-1g.jsonl").id}))


def child_disk(path: str, tmp: str) -> None:
    t = time.perf_counter()
    with open(path, "rb") as src, open(Path(tmp) / "disk-copy.jsonl", "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
        dst.flush()
        os.fsync(dst.fileno())
    print(json.dumps({"seconds": time.perf_counter() - t}))


def child_copy(openai_url: str, together_url: str, file_id: str, db: str) -> None:
    from bot.migration.copying import download, place, temp_dir
    from bot.provider.openai_adapter import OpenAIProvider
    from bot.provider.together_adapter import TogetherProvider
    from bot.services import build_services
    from bot.settings import Settings
    from storage.db import Database
    from storage.models import Base

    url = f"sqlite:///{db}"
    # The schema without Alembic: its import alone is 11 MB that a running bot has loaded anyway
    # but that says nothing about the copy.
    probe = Database(url)
    Base.metadata.create_all(probe.engine)
    probe.dispose()
    settings = Settings(slack_bot_token="xoxb-bench", slack_signing_secret="bench", database_url=url, openai_api_key="sk-bench", openai_base_url=openai_url)
    providers = {
        "openai": OpenAIProvider(api_key="sk-bench", base_url=openai_url, max_retries=0, timeout=600),
        "together": TogetherProvider(api_key="bench", base_url=together_url, max_retries=0, timeout=600),
    }
    services = build_services(settings, providers=providers)
    before_kb = _rss_kb()
    with temp_dir() as tmp:
        t0 = time.perf_counter()
        got = download(services, "openai", file_id, Path(tmp), "training")
        t1 = time.perf_counter()
        placed = place(services, team_id="T-bench", target="together", got=got, what="training")
        t2 = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_kb = usage.ru_maxrss
    print(json.dumps({
        "download_and_hash": t1 - t0, "upload": t2 - t1, "total": t2 - t0, "bytes": got.bytes, "sha256": got.sha256, "target": placed.file_id,
        "peak_mb": peak_kb / 1024, "before_mb": before_kb / 1024, "cpu": usage.ru_utime + usage.ru_stime,
    }))


def _rss_kb() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS"))


def _run(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=1024)
    ap.add_argument("--child", nargs="+")
    a = ap.parse_args()
    if a.child:
        {"upload": child_upload, "disk": child_disk, "copy": child_copy}[a.child[0]](*a.child[1:])
        return 0
    p1, p2 = _free_port(), _free_port()
    sandbox = subprocess.Popen([sys.executable, "-m", "bot.cli", "sandbox", "--port", str(p1), "--together-port", str(p2)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(p1)
        _wait_port(p2)
        openai_url, together_url = f"http://127.0.0.1:{p1}/v1", f"http://127.0.0.1:{p2}"
        with tempfile.TemporaryDirectory(prefix="ftbot-bench-migrate-") as tmp:
            data = Path(tmp) / "support-1g.jsonl"
            size = generate(data, a.mb * 1024 * 1024)
            digest = hashlib.sha256()
            with data.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
            fid = _run("--child", "upload", openai_url, str(data))["file_id"]
            disk = _run("--child", "disk", str(data), tmp)
            copy = _run("--child", "copy", openai_url, together_url, fid, str(Path(tmp) / "bench.db"))
            import httpx

            # The bytes at Together are the original's (read back through the sandbox's own API).
            h = hashlib.sha256()
            with httpx.stream("GET", f"{together_url}/v1/files/{copy['target']}/content", headers={"Authorization": "Bearer bench"}, timeout=600) as r:
                for chunk in r.iter_bytes(1 << 20):
                    h.update(chunk)
            same = h.hexdigest() == digest.hexdigest() == copy["sha256"]
    finally:
        sandbox.terminate()
        sandbox.wait(10)
    mb = size / 1024 / 1024
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}")
    print(f"file: {mb:,.0f} MB of chat examples; arrived byte for byte: {same}")
    print(f"disk copy (read + write + fsync): {disk['seconds']:.1f} s, {mb / disk['seconds']:.0f} MB/s")
    print(
        f"ftbot copy: {copy['total']:.1f} s, {mb / copy['total']:.0f} MB/s "
        f"(download and sha256 {copy['download_and_hash']:.1f} s, upload {copy['upload']:.1f} s); "
        f"{copy['total'] / disk['seconds']:.1f}x the disk copy; peak resident memory {copy['peak_mb']:.0f} MB "
        f"({copy['before_mb']:.0f} MB loaded before the copy began); ftbot's own CPU {copy['cpu']:.1f} s "
        "(the rest of the wall time is the sandboxes serving and taking in the bytes on the same 2 cores)"
    )
    return 0 if same and copy["peak_mb"] < 100 else 1


if __name__ == "__main__":
    raise SystemExit(main())
