"""An unsigned 200 MB POST to /slack/events against a running `ftbot serve` (its own process, waitress,
FTBOT_SANDBOX=1, the Slack stand-in in this process): how long until the answer, how many bytes the
client got to send, and the server's peak RSS (VmHWM), with ftbot's body limit (the default 1 MB) and
with waitress' old default (1 GiB, what ftbot ran with before FTBOT_HTTP_MAX_BODY_BYTES).

    python bench/http_body.py [--mb 200]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bot.slack_standin.server import SlackStandIn  # noqa: E402

TOKEN, SECRET = "xoxb-bench-token", "bench-signing-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(limit: int | None, mb: int, slack: SlackStandIn, tmp: str) -> dict:
    port = _free_port()
    env = {
        "PATH": os.environ["PATH"], "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": f"sqlite:///{tmp}/bench-{port}.db", "PORT": str(port), "FTBOT_SANDBOX": "1",
    }
    if limit is not None:
        env["FTBOT_HTTP_MAX_BODY_BYTES"] = str(limit)
    ftbot = shutil.which("ftbot", path=str(Path(sys.executable).parent)) or "ftbot"
    proc = subprocess.Popen([ftbot, "--log-level", "WARNING", "serve", "--no-worker", "--host", "127.0.0.1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        before = _hwm_mb(proc.pid)
        total = mb * 1024 * 1024
        block = b"a" * (1 << 20)
        sent = 0
        start = time.monotonic()
        s = socket.create_connection(("127.0.0.1", port), timeout=120)
        s.sendall(f"POST /slack/events HTTP/1.1\r\nHost: ftbot\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {total}\r\n\r\n".encode())
        s.setblocking(False)
        answer = b""
        while sent < total and not answer:
            try:
                sent += s.send(block[: min(len(block), total - sent)])
            except BlockingIOError:
                time.sleep(0.001)
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                answer = s.recv(4096)
            except (BlockingIOError, ConnectionResetError):
                pass
        s.setblocking(True)
        s.settimeout(120)
        try:
            answer = answer or s.recv(4096)
        except (ConnectionResetError, TimeoutError):
            pass
        elapsed = time.monotonic() - start
        s.close()
        time.sleep(0.5)
        return {"status": answer.split(b"\r\n", 1)[0].decode(errors="replace") or "(connection reset)", "seconds": elapsed, "sent_mb": sent / 2**20, "rss_before": before, "rss_peak": _hwm_mb(proc.pid)}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mb", type=int, default=200)
    args = p.parse_args()
    slack = SlackStandIn(bot_token=TOKEN).start()
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"unsigned {args.mb} MB POST /slack/events")
    with tempfile.TemporaryDirectory() as tmp:
        for label, limit in (("FTBOT_HTTP_MAX_BODY_BYTES=1048576 (default)", None), ("1 GiB (waitress' default, as before)", 1024**3)):
            r = run(limit, args.mb, slack, tmp)
            print(f"  {label:45} {r['status']:40} after {r['seconds']:6.2f} s, client sent {r['sent_mb']:7.1f} MB, server RSS peak {r['rss_peak']:6.0f} MB (idle {r['rss_before']:.0f} MB)")
    slack.stop()


if __name__ == "__main__":
    main()
