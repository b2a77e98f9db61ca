"""Time from a signed slash command to Slack getting its HTTP answer (the ack), against `ftbot serve`.

Runs the OpenAI sandbox and the Slack stand-in in this process, `ftbot serve` in another, and sends
500 signed `/ft` commands (a mix of verbs) one after the other, as a busy channel would.
Target: p99 under 100 ms on a 2-core machine.

    python bench/ack_latency.py [--n 500]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bot.sandbox.server import SandboxServer  # noqa: E402
from bot.sandbox.state import Timing  # noqa: E402
from bot.slack_standin.requests import SlackRequester  # noqa: E402
from bot.slack_standin.server import SlackStandIn  # noqa: E402

SECRET = "bench-secret"
TOKEN = "xoxb-bench"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    args = ap.parse_args()

    sandbox = SandboxServer(timing=Timing(validating_seconds=1, queued_seconds=1, step_seconds=0.2)).start()
    slack = SlackStandIn(bot_token=TOKEN).start()
    tmp = tempfile.mkdtemp(prefix="ftbot-bench-")
    port = _port()
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack.api_url,
        "OPENAI_API_KEY": "sk-bench",
        "OPENAI_BASE_URL": sandbox.url,
        "DATABASE_URL": f"sqlite:///{tmp}/bench.db",
        "PORT": str(port),
        "FTBOT_POLL_INTERVAL": "2",
        "FTBOT_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "--log-level", "WARNING", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        req = SlackRequester(f"http://127.0.0.1:{port}/slack/events", SECRET, response_base=f"{slack.base}/response")
        lines = "\n".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]}) for i in range(20))
        fid = sandbox.state.add_file("train.jsonl", lines.encode(), "fine-tune")["id"]
        # a few jobs so that status / events have something to look at
        for i in range(3):
            req.command(f"start {fid} seed={i}")
        time.sleep(1.5)
        job = next(iter(sandbox.state.jobs))
        verbs = ["help", "list", f"status {job}", f"events {job} 10", f"checkpoints {job}", "models", "files", f"start {fid} epochs=1", "list 5", "bogus verb", f"start {fid} epochs=99"]
        rng = random.Random(1)
        for _ in range(20):  # warm-up
            req.command("help")
        times = []
        statuses = set()
        for _ in range(args.n):
            reply = req.command(rng.choice(verbs))
            statuses.add(reply.status)
            times.append(reply.elapsed * 1000)
            time.sleep(0.005)
        times.sort()
        p50 = statistics.median(times)
        p99 = times[int(len(times) * 0.99) - 1]
        result = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "requests": args.n,
            "http_statuses": sorted(statuses),
            "p50_ms": round(p50, 1),
            "p99_ms": round(p99, 1),
            "max_ms": round(times[-1], 1),
            "jobs_started": len(sandbox.state.jobs),
        }
        print(json.dumps(result, indent=2))
        return 0 if statuses == {200} else 1
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        slack.stop()
        sandbox.stop()


if __name__ == "__main__":
    raise SystemExit(main())
