"""Webhooks: how fast an ending reaches Slack, and what the slower idle cadence saves.

A. 100 jobs watched in Slack end at the same moment; the sandbox (its own process) signs and sends
   their 100 `fine_tuning.job.succeeded` webhooks to `POST /webhooks/openai` of a running ftbot
   (waitress, real worker, FTBOT_POLL_INTERVAL=60). Latency per job: from the webhook leaving the
   sandbox to the final alert's chat.postMessage at the Slack stand-in (in the channel, or, when
   several jobs end together, in the job card's thread, the channel getting one digest); p50, p99,
   max. Also from the webhook to the ending being visible at channel level (its alert or a digest
   line naming it).
B. Provider requests per job-hour for idle (queued) jobs and a mix of idle and running jobs, with
   webhooks off (everything at the poll interval) and on (queued/validating at the idle interval).
   Time is scaled 10x: a 3 s poll interval and a 30 s idle interval stand for the defaults 30 s
   and 300 s; the rates are reported at real scale.

    python bench/webhook.py [--db sqlite|postgres] [--jobs 100] [--window 30]
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
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import select

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import _ctl, _db_url, _jsonl, _port  # noqa: E402  (bench/, the script's own folder)

from bot.app import build_app  # noqa: E402
from bot.jobs.lifecycle import start_job  # noqa: E402
from bot.provider import JobSpec  # noqa: E402
from bot.provider.openai_adapter import OpenAIProvider  # noqa: E402
from bot.sandbox.webhooks import new_secret  # noqa: E402
from bot.services import build_services  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.slack_standin.server import SlackStandIn  # noqa: E402
from bot.web import HttpServer, WebApp  # noqa: E402
from bot.worker.runner import Worker  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import WebhookDelivery  # noqa: E402

TOKEN = "xoxb-bench"
SCALE = 10  # bench seconds → real seconds
MODEL = "gpt-4o-mini-2024-07-18"


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def _start_jobs(svc, n: int, channel: str, prefix: str) -> list[str]:  # noqa: ANN001
    f = svc.provider.upload_file(_jsonl(12), "train.jsonl")
    spec = JobSpec(model=MODEL, training_file=f.id, hyperparameters={"n_epochs": 1, "batch_size": 4})
    return [start_job(svc, spec, team_id="T0001", user="U0001", channel=channel, idempotency_key=f"{prefix}-{i}").job.id for i in range(n)]


def scenario_latency(base: str, slack: SlackStandIn, settings: Settings, n_jobs: int) -> dict:
    """A: n jobs end at once; webhook → final alert in Slack."""
    _ctl(base, "/_sandbox/reset")
    _ctl(base, "/_sandbox/timing", {"validating_seconds": 0.05, "queued_seconds": 3600, "step_seconds": 0.001})
    secret = new_secret()
    settings = replace(settings, poll_interval=60.0, openai_webhook_secret=secret)
    svc = build_services(settings, provider=OpenAIProvider(api_key="sk-bench", base_url=base + "/v1", timeout=30))
    server = HttpServer(WebApp(build_app(svc), svc), host="127.0.0.1", port=0).start()
    slack.reset()
    job_ids = _start_jobs(svc, n_jobs, "C0END", "end")
    worker = Worker(svc, team_id="T0001").start()
    try:
        # every job card is in the channel before the jobs end (the cards, not their threads' replies:
        # the sender paces a channel to Slack's one post a second, so n cards take about n seconds)
        deadline = time.time() + 60 + 2 * n_jobs
        while len([c for c in slack.calls("chat.postMessage") if c.args.get("channel") == "C0END" and not c.args.get("thread_ts")]) < n_jobs and time.time() < deadline:
            time.sleep(0.1)
        _ctl(base, "/_sandbox/webhooks", {"url": f"{server.url}/webhooks/openai", "secret": secret})
        ended_at = time.time()
        _ctl(base, "/_sandbox/timing", {"queued_seconds": 0})  # the ticker ends them all within one tick
        wanted = {f"Fine-tuning {j} " for j in job_ids}
        alerts: dict[str, float] = {}
        in_channel: dict[str, float] = {}
        # When several end together the alerts go into the cards' threads behind their event replies,
        # all in one channel at one post a second: about 3 posts per job before the last alert.
        deadline = time.time() + 120 + 4 * n_jobs
        while len(alerts) < n_jobs and time.time() < deadline:
            for c in slack.calls("chat.postMessage"):
                text = str(c.args.get("text", ""))
                if c.args.get("channel") != "C0END":
                    continue
                # A job's own alert: in the channel when it ended alone, in its card's thread when it
                # ended with others (the channel then hears one digest naming them all).
                if text[: text.find(" ", 12) + 1] in wanted:
                    alerts.setdefault(text.split(" ")[1], c.at)
                    if not c.args.get("thread_ts"):
                        in_channel.setdefault(text.split(" ")[1], c.at)
                elif not c.args.get("thread_ts") and "fine-tuning jobs ended" in text:
                    lines = text + json.dumps(c.args.get("blocks"))  # the text names 20 jobs, the blocks all
                    for j in job_ids:
                        if j in lines:
                            in_channel.setdefault(j, c.at)
            time.sleep(0.05)
        deliveries = _ctl(base, "/_sandbox/webhooks", method="GET")["deliveries"]
        with svc.db.session() as s:
            rows = {r.provider_job_id: (r.received_at.timestamp(), r.processed_at.timestamp() if r.processed_at else None) for r in s.scalars(select(WebhookDelivery))}
    finally:
        worker.stop()
        server.stop()
        svc.close()
    sent = {}
    for d in deliveries:
        if d["attempt"] == 1:
            sent.setdefault(d["job_id"], d["sent_at"])
    answered = [d["answered_at"] - d["sent_at"] for d in deliveries]
    lat = [alerts[j] - sent[j] for j in job_ids if j in alerts and j in sent]
    seen = [in_channel[j] - sent[j] for j in job_ids if j in in_channel and j in sent]
    recorded = [rows[j][0] - sent[j] for j in job_ids if j in rows and j in sent]
    posted = [alerts[j] - rows[j][0] for j in job_ids if j in rows and j in alerts]
    def spread(values: list[float], *keys: str) -> dict | None:
        # None rather than a crash when nothing arrived (the counts say so)
        if not values:
            return None
        got = {"p50": statistics.median(values), "p99": _pct(values, 99), "max": max(values)}
        return {k: round(got[k], 3) for k in keys}

    return {
        "jobs": n_jobs,
        "poll_interval_s": 60,
        "alerts": len(alerts),
        "webhooks_sent": len(sent),
        "webhook_answer_ms": {"p50": round(1000 * statistics.median(answered), 1), "max": round(1000 * max(answered), 1)} if answered else None,
        "webhook_to_slack_s": spread(lat, "p50", "p99", "max"),
        "visible_in_channel": len(seen),
        "webhook_to_channel_s": spread(seen, "p50", "max"),
        "breakdown_p50_s": {"sent_to_recorded": (spread(recorded, "p50") or {}).get("p50"), "recorded_to_alert": (spread(posted, "p50") or {}).get("p50")},
        "all_webhooks_sent_within_s": round(max(sent.values()) - ended_at, 3),
        "non_2xx_answers": sum(1 for d in deliveries if not (d["status"] and 200 <= d["status"] < 300)),
    }


def scenario_requests(base: str, slack: SlackStandIn, settings: Settings, *, idle: int, running: int, webhooks: bool, window: float) -> dict:
    """B: provider requests over `window` bench seconds of polling."""
    _ctl(base, "/_sandbox/reset")
    _ctl(base, "/_sandbox/timing", {"validating_seconds": 0, "queued_seconds": 0, "step_seconds": 100_000})
    extra = {"openai_webhook_secret": new_secret()} if webhooks else {}
    settings = replace(settings, poll_interval=30 / SCALE, idle_poll_interval=300 / SCALE, **extra)
    svc = build_services(settings, provider=OpenAIProvider(api_key="sk-bench", base_url=base + "/v1", timeout=30))
    slack.reset()
    _start_jobs(svc, running, "C0RUN", "run")
    svc.provider.list_jobs(limit=100)  # looked at once, the sandbox moves them to running
    _ctl(base, "/_sandbox/timing", {"queued_seconds": 1_000_000})  # later jobs stay in the queue
    _start_jobs(svc, idle, "C0IDLE", "idle")
    worker = Worker(svc, team_id="T0001").start()
    try:
        time.sleep(2.0)  # past the first poll of every job
        _ctl(base, "/_sandbox/stats", method="DELETE")
        time.sleep(window)
        req = _ctl(base, "/_sandbox/stats", method="GET")
    finally:
        worker.stop()
        svc.close()
    jobs = idle + running
    job_hours = jobs * window * SCALE / 3600
    return {
        "idle_jobs": idle,
        "running_jobs": running,
        "webhooks": webhooks,
        "requests": req["total"],
        "by_route": req["requests"],
        "requests_per_job_hour": round(req["total"] / job_hours, 1),
        # one job-list page per cycle that polled anything: cycles stretched by a loaded machine show here
        "poll_cycles": req["requests"].get("list_jobs", 0),
        "nominal_cycles": int(window / settings.poll_interval),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--jobs", type=int, default=100)
    ap.add_argument("--only", choices=["latency", "requests"], default=None)
    ap.add_argument("--window", type=float, default=90.0, help="bench seconds of polling per request-count run")
    args = ap.parse_args()

    logging.getLogger("apscheduler").setLevel(logging.ERROR)  # "skipped: already running" is expected under load
    tmp = tempfile.mkdtemp(prefix="ftbot-bench-webhook-")
    port = _port()
    sandbox = subprocess.Popen([sys.executable, "-m", "bot.cli", "--log-level", "WARNING", "sandbox", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    slack = SlackStandIn(bot_token=TOKEN).start()
    out: dict = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "db": args.db,
    }
    try:
        for _ in range(200):
            try:
                _ctl(base, "/_sandbox/stats", method="GET")
                break
            except OSError:
                time.sleep(0.1)
        base_settings = replace(Settings(), slack_bot_token=TOKEN, slack_signing_secret="bench", slack_api_url=slack.api_url, openai_api_key="sk-bench", openai_base_url=base + "/v1")

        def settings_for(name: str) -> Settings:
            url = _db_url(args.db, tmp, name)
            upgrade(url)
            return replace(base_settings, database_url=url)

        if args.only != "requests":
            out["latency"] = scenario_latency(base, slack, settings_for("ftbot_bench_wh_a"), args.jobs)
            print(json.dumps(out["latency"]), flush=True)
        runs = []
        for i, (idle, running) in enumerate(((30, 10),) if args.only != "latency" else ()):
            for webhooks in (False, True):
                r = scenario_requests(base, slack, settings_for(f"ftbot_bench_wh_b{i}{int(webhooks)}"), idle=idle, running=running, webhooks=webhooks, window=args.window)
                print(json.dumps(r), flush=True)
                runs.append(r)
        out["requests"] = runs
    finally:
        slack.stop()
        sandbox.terminate()
        sandbox.wait(10)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
