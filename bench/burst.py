"""A burst under Slack's rate limits: 100 jobs watched in 3 channels end at once.

The Slack stand-in enforces Slack's limits as published for an app outside the Marketplace (about one
post a second per channel with a burst of 3, chat.update 50 a minute, files.* 100 a minute, history
reads once a minute), answering 429 with Retry-After. The sandbox runs in its own process; ftbot's
real worker (APScheduler, poller, sender with its pacing) polls every 2 s, on SQLite or PostgreSQL.

The job cards are posted before the limits are turned on (the jobs started over time); then every job
ends within one sandbox tick. Measured from that moment:
- every ending visible in the channel (a line of a digest, or a job's own alert), p50 / max;
- everything delivered: each job's alert in its thread, its card edited to the end, its loss chart;
- nothing lost (every job's alert, card edit and chart there) and nothing doubled (each outbox key
  once in Slack); the 429s met, by method.

    python bench/burst.py [--db sqlite|postgres] [--jobs 100] [--channels 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import func, select

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import _ctl, _db_url, _jsonl, _port  # noqa: E402  (bench/, the script's own folder)

from bot.jobs.lifecycle import start_job  # noqa: E402
from bot.outbox.sender import METADATA_TYPE, Sender  # noqa: E402
from bot.provider import JobSpec  # noqa: E402
from bot.provider.openai_adapter import OpenAIProvider  # noqa: E402
from bot.services import build_services  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.slack_standin.limits import RateLimits  # noqa: E402
from bot.slack_standin.server import SlackStandIn  # noqa: E402
from bot.wiring import wire  # noqa: E402
from bot.worker.runner import Worker  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import OutboxMessage  # noqa: E402

TOKEN = "xoxb-bench"
MODEL = "gpt-4o-mini-2024-07-18"


def _waiting(svc) -> int:  # noqa: ANN001
    with svc.db.session() as s:
        return s.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.delivered_at.is_(None), OutboxMessage.gave_up_at.is_(None))) or 0


def run(base: str, slack: SlackStandIn, settings: Settings, n_jobs: int, channels: list[str], timeout: float) -> dict:
    _ctl(base, "/_sandbox/reset")
    _ctl(base, "/_sandbox/timing", {"validating_seconds": 0.05, "queued_seconds": 3600, "step_seconds": 0.001})
    slack.reset()
    provider = OpenAIProvider(api_key="sk-bench", base_url=base + "/v1", timeout=30)
    setup = build_services(replace(settings, slack_pacing=False), provider=provider)
    f = setup.provider.upload_file(_jsonl(12), "train.jsonl")
    spec = JobSpec(model=MODEL, training_file=f.id, hyperparameters={"n_epochs": 1, "batch_size": 4})
    where = {start_job(setup, spec, team_id="T0001", user=f"U{i % 7:04d}", channel=channels[i % len(channels)], idempotency_key=f"burst-{i}").job.id: channels[i % len(channels)] for i in range(n_jobs)}
    Sender(setup, "setup").send_pending()  # the cards, before the limits
    setup.close()
    assert _waiting(build_services(settings, provider=provider)) == 0

    limiter = slack.enforce_limits(RateLimits())
    svc = build_services(settings, provider=provider)
    worker = Worker(svc, team_id="T0001").start()
    try:
        time.sleep(settings.poll_interval + 0.5)  # the worker is polling; nothing has ended yet
        ended_at = time.time()
        _ctl(base, "/_sandbox/timing", {"queued_seconds": 0})  # every job ends within one sandbox tick
        seen: dict[str, float] = {}
        done_at = None
        deadline = time.time() + timeout
        while time.time() < deadline:
            for c in slack.calls("chat.postMessage"):
                if c.status == 200 and not c.args.get("thread_ts"):
                    text = str(c.args.get("text", "")) + json.dumps(c.args.get("blocks") or [])
                    for j in where:
                        if j in text and ("ended" in text or text.startswith(f"Fine-tuning {j} succeeded")):
                            seen.setdefault(j, c.at)
            if len(seen) == n_jobs and _waiting(svc) == 0 and all(provider.get_job(j).status == "succeeded" for j in list(where)[:1]):
                done_at = time.time()
                break
            time.sleep(0.2)
        with svc.db.session() as s:
            # The alerts (`s<sub>:final`, `:final:<n>` after a restart) and the digest posts, not the
            # evaluation headlines edited into them minutes later (`…:final:eval`, `digest:…:eval:…`).
            o = OutboxMessage
            alert = (o.idempotency_key.like("s%:final%"), o.idempotency_key.not_like("%:eval%"))
            first_found = s.scalar(select(func.min(o.created_at)).where(*alert))
            last_found = s.scalar(select(func.max(o.created_at)).where(*alert))
            digest_queued = s.scalar(select(func.max(o.created_at)).where(o.idempotency_key.like("digest:%"), o.idempotency_key.not_like("%:eval%")))
    finally:
        worker.stop()
    # What Slack shows, per job.
    lost: list[str] = []
    keys: Counter[str] = Counter()
    digests = Counter()
    for ch in channels:
        msgs = slack.channel_messages(ch)
        for m in msgs:
            md = m.get("metadata") or {}
            if md.get("event_type") == METADATA_TYPE:
                keys[(md.get("event_payload") or {}).get("key")] += 1
            if not m.get("thread_ts") and "fine-tuning jobs ended" in m.get("text", ""):
                digests[ch] += 1
        for j, jch in where.items():
            if jch != ch:
                continue
            card = next((m for m in msgs if not m.get("thread_ts") and m.get("text", "").startswith(f"Fine-tuning {j}:")), None)
            thread = [m for m in msgs if card is not None and m.get("thread_ts") == card["ts"] and m["ts"] != card["ts"]]
            alert = [m for m in thread + [m for m in msgs if not m.get("thread_ts")] if m.get("text", "").startswith(f"Fine-tuning {j} succeeded")]
            chart = [f for m in thread for f in (m.get("files") or []) if f.get("name") == f"loss-{j}.png"]
            if card is None or "succeeded" not in card.get("text", "") or len(alert) != 1 or len(chart) != 1:
                lost.append(j)
    visible = [seen[j] - ended_at for j in where if j in seen]
    with svc.db.session() as s:
        gave_up = s.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.gave_up_at.is_not(None)))
    svc.close()
    by_method = Counter(c.method for c in slack.calls() if c.status == 429)
    return {
        "jobs": n_jobs,
        "channels": len(channels),
        "poll_interval_s": settings.poll_interval,
        "endings_visible": len(seen),
        "ending_visible_s": {"p50": round(statistics.median(visible), 2), "max": round(max(visible), 2)} if visible else None,
        # Where the time goes: the poll cycle that finds the endings, then the send.
        "first_ending_found_s": round(first_found.timestamp() - ended_at, 2) if first_found else None,
        "last_ending_found_s": round(last_found.timestamp() - ended_at, 2) if last_found else None,
        "last_digest_queued_s": round(digest_queued.timestamp() - ended_at, 2) if digest_queued else None,
        "everything_delivered_s": round(done_at - ended_at, 1) if done_at else None,
        "digests_per_channel": dict(digests),
        "lost": len(lost),
        "doubled": sum(1 for n in keys.values() if n > 1),
        "gave_up": gave_up,
        "ratelimited_429": dict(by_method),
        "ratelimited_total": limiter.refused,
        "slack_calls": dict(Counter(c.method for c in slack.calls() if c.status == 200)),
    }


def main() -> int:
    wire()  # what the worker and the web process wire at start-up: this script builds a sender and poller itself
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--jobs", type=int, default=100)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=300.0)
    args = ap.parse_args()

    logging.getLogger("apscheduler").setLevel(logging.ERROR)  # "skipped: already running" is expected under load
    logging.getLogger("bot.outbox.sender").setLevel(logging.ERROR)
    tmp = tempfile.mkdtemp(prefix="ftbot-bench-burst-")
    port = _port()
    sandbox = subprocess.Popen([sys.executable, "-m", "bot.cli", "--log-level", "WARNING", "sandbox", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    slack = SlackStandIn(bot_token=TOKEN).start()
    out: dict = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average_1min_at_start": round(os.getloadavg()[0], 1),
        "db": args.db,
    }
    try:
        for _ in range(200):
            try:
                _ctl(base, "/_sandbox/stats", method="GET")
                break
            except OSError:
                time.sleep(0.1)
        url = _db_url(args.db, tmp, "ftbot_bench_burst")
        upgrade(url)
        settings = replace(
            Settings(), slack_bot_token=TOKEN, slack_signing_secret="bench", slack_api_url=slack.api_url, openai_api_key="sk-bench", openai_base_url=base + "/v1", database_url=url, poll_interval=2.0
        )
        out["burst"] = run(base, slack, settings, args.jobs, [f"C0BURST{i}" for i in range(args.channels)], args.timeout)
    finally:
        slack.stop()
        sandbox.terminate()
        sandbox.wait(10)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
