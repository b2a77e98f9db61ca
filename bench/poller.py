"""The poller at scale, against the sandbox with 50 ms added to every request.

A. 1,000 running jobs: time per poll cycle (target < 10 s), provider requests per cycle (target:
   at most one per running job plus one per 100 jobs), peak memory of this process.
C. Two providers of 500 running jobs each (OpenAI at 50 ms, Azure OpenAI answering slowly at
   300 ms), each polled on its own as the worker does: the fast provider's cycle time against the
   same provider polled alone (the slow one must not slow it).
B. One 300-step job watched in a channel from start to end with the real worker: Slack calls over
   its life (target <= 25) and the delay from an event's creation to its Slack post (target <=
   poll interval + 2 s).

The sandbox runs as its own process (`ftbot sandbox`); the poller, the sender and the Slack
stand-in run here.

    python bench/poller.py [--jobs 1000] [--db sqlite|postgres] [--only one,many,two] [--two-jobs 500]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bot.jobs.lifecycle import start_job  # noqa: E402
from bot.jobs.notify import subscribe  # noqa: E402
from bot.jobs.store import new_job_row  # noqa: E402
from bot.outbox.sender import Sender  # noqa: E402
from bot.provider import JobSpec  # noqa: E402
from bot.provider.azure_adapter import AzureOpenAIProvider  # noqa: E402
from bot.provider.openai_adapter import OpenAIProvider  # noqa: E402
from bot.services import build_services  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.slack_standin.server import SlackStandIn  # noqa: E402
from bot.wiring import wire  # noqa: E402
from bot.worker.poller import Poller  # noqa: E402
from bot.worker.runner import Worker  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.types import utcnow  # noqa: E402

TOKEN = "xoxb-bench"
LATENCY = 0.05


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ctl(base: str, path: str, body: dict | None = None, method: str = "POST") -> dict:
    req = urllib.request.Request(base + path, data=json.dumps(body or {}).encode(), method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def _stats(base: str, reset: bool = False) -> dict:
    req = urllib.request.Request(base + "/_sandbox/stats", method="DELETE" if reset else "GET")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def _jsonl(n: int) -> bytes:
    return "\n".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}) for i in range(n)).encode()


def _db_url(kind: str, tmp: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp}/bench.db"
    from sqlalchemy import create_engine, text

    admin = os.environ.get("FTBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test").replace("postgresql://", "postgresql+psycopg://")
    eng = create_engine(admin, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text("DROP DATABASE IF EXISTS ftbot_bench WITH (FORCE)"))
        c.execute(text("CREATE DATABASE ftbot_bench"))
    return admin.rsplit("/", 1)[0] + "/ftbot_bench"


def scenario_one_job(base: str, slack: SlackStandIn, settings: Settings) -> dict:
    """B: one 300-step job, the real worker, a channel watching."""
    _ctl(base, "/_sandbox/timing", {"validating_seconds": 2, "queued_seconds": 2, "step_seconds": 0.1, "eval_every": 10})
    svc = build_services(settings, provider=OpenAIProvider(api_key="sk-bench", base_url=base + "/v1"))
    f = svc.provider.upload_file(_jsonl(100), "train.jsonl")
    v = svc.provider.upload_file(_jsonl(20), "valid.jsonl")
    slack.reset()
    spec = JobSpec(model="gpt-4o-mini-2024-07-18", training_file=f.id, validation_file=v.id, hyperparameters={"n_epochs": 3, "batch_size": 1})
    job = start_job(svc, spec, team_id="T0001", user="U0001", channel="C0ONE", idempotency_key="bench-one").job
    worker = Worker(svc, send_interval=0.2).start()
    started = time.time()
    try:
        while time.time() - started < 180:
            if any(c.method == "files.completeUploadExternal" for c in slack.calls()):
                break
            time.sleep(0.2)
    finally:
        worker.stop()
    calls = [c for c in slack.calls() if c.method not in {"auth.test"}]
    api_calls = [c for c in calls if c.method != "upload"]
    # delay: thread replies carry each event's creation time (HH:MM:SS, whole seconds)
    delays = []
    for c in calls:
        if c.method == "chat.postMessage" and c.args.get("thread_ts"):
            posted = datetime.fromtimestamp(c.at, UTC)
            for hhmmss in re.findall(r"^`(\d\d:\d\d:\d\d)`", c.args.get("text", ""), flags=re.M):
                h, m, s = map(int, hhmmss.split(":"))
                created = posted.replace(hour=h, minute=m, second=s, microsecond=0)
                delays.append((posted - created).total_seconds())
    pj = svc.provider.get_job(job.id)
    alert = next(c for c in calls if c.method == "chat.postMessage" and not c.args.get("thread_ts") and "succeeded" in c.args.get("text", ""))
    svc.close()
    return {
        "steps": 300,
        "job_seconds": round((pj.finished_at or 0) - pj.created_at, 1),
        "poll_interval_s": settings.poll_interval,
        "slack_api_calls": len(api_calls),
        "slack_calls_by_method": {m: sum(1 for c in api_calls if c.method == m) for m in sorted({c.method for c in api_calls})},
        "event_to_post_delay_s": {"median": round(statistics.median(delays), 2), "max": round(max(delays), 2), "events": len(delays), "resolution": "1 s (event times are whole seconds)"},
        "end_to_alert_delay_s": round(alert.at - (pj.finished_at or alert.at), 2),
    }


def scenario_many_jobs(base: str, slack: SlackStandIn, settings: Settings, n_jobs: int, cycles: int) -> dict:
    """A: n running jobs polled by one worker."""
    _ctl(base, "/_sandbox/reset")
    _ctl(base, "/_sandbox/timing", {"validating_seconds": 0, "queued_seconds": 0, "step_seconds": 3.0})
    svc = build_services(settings, provider=OpenAIProvider(api_key="sk-bench", base_url=base + "/v1", timeout=60))
    f = svc.provider.upload_file(_jsonl(100), "train.jsonl")
    client = svc.provider.client
    for i in range(n_jobs):
        client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=f.id, method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 20, "batch_size": 1}}}, seed=i)
    now = utcnow()
    after = None
    with svc.db.session() as s:
        while True:
            page = svc.provider.list_jobs(limit=100, after=after)
            for pj in page.jobs:
                row = new_job_row(pj, team_id="T0001", started_by="U0001", channel="C0MANY", idempotency_key=None)
                s.add(row)
                s.flush()
                subscribe(s, row, f"C{row.id % 50:04d}", user="U0001", now=now)
            if not page.has_more:
                break
            after = page.jobs[-1].id
    sender = Sender(svc, "bench")
    sender.send_pending(limit=5000)  # the job cards, before measuring
    _ctl(base, "/_sandbox/faults", {"latency": LATENCY})
    poller = Poller(svc, "bench", lease_seconds=120, threads=32)
    results = []
    for i in range(cycles):
        _stats(base, reset=True)
        t0 = time.perf_counter()
        stats = poller.cycle()
        t1 = time.perf_counter()
        sent = sender.send_pending(limit=5000)
        t2 = time.perf_counter()
        req = _stats(base)
        results.append({"cycle": i + 1, "jobs_polled": stats.polled, "failed": stats.failed, "seconds": round(t1 - t0, 2), "provider_requests": req["total"], "by_route": req["requests"], "send_seconds": round(t2 - t1, 2), "slack_messages": sent.delivered})
        if i + 1 < cycles:
            time.sleep(max(0.0, settings.poll_interval - (time.perf_counter() - t0)))
    poller.close()
    _ctl(base, "/_sandbox/faults", method="DELETE")
    svc.close()
    return {"jobs": n_jobs, "added_latency_ms": LATENCY * 1000, "poll_threads": 32, "cycles": results}


SLOW_LATENCY = 0.3


def _seed_running_jobs(svc, provider: str, n_jobs: int, channel: str) -> None:  # noqa: ANN001
    at = svc.providers[provider]
    f = at.upload_file(_jsonl(100), "train.jsonl")
    for i in range(n_jobs):
        at.client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=f.id, method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 20, "batch_size": 1}}}, seed=i)
    now = utcnow()
    after = None
    with svc.db.session() as s:
        while True:
            page = at.list_jobs(limit=100, after=after)
            for pj in page.jobs:
                row = new_job_row(pj, team_id="T0001", started_by="U0001", channel=channel, idempotency_key=None, provider=provider)
                s.add(row)
                s.flush()
                subscribe(s, row, f"C{row.id % 50:04d}", user="U0001", now=now)
            if not page.has_more:
                break
            after = page.jobs[-1].id


def _lanes(poller: Poller, names: list[str]) -> dict[str, dict]:
    """Each provider's cycle on its own thread, as the worker's per-provider poll jobs run them."""
    import threading

    out: dict[str, dict] = {}

    def run(name: str) -> None:
        t0 = time.perf_counter()
        st = poller.cycle(name)
        out[name] = {"seconds": round(time.perf_counter() - t0, 2), "jobs_polled": st.polled, "failed": st.failed}

    threads = [threading.Thread(target=run, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def scenario_two_providers(base: str, slow_base: str, slack: SlackStandIn, settings: Settings, n_jobs: int, cycles: int) -> dict:
    """C: OpenAI (50 ms) alone, then OpenAI and a slow Azure OpenAI (300 ms) side by side."""
    for b in (base, slow_base):
        _ctl(b, "/_sandbox/faults", method="DELETE")
        _ctl(b, "/_sandbox/reset")
        _ctl(b, "/_sandbox/timing", {"validating_seconds": 0, "queued_seconds": 0, "step_seconds": 3.0})
    providers = {
        "openai": OpenAIProvider(api_key="sk-bench", base_url=base + "/v1", timeout=60),
        "azure": AzureOpenAIProvider(endpoint=slow_base, api_key="az-bench", timeout=60),
    }
    svc = build_services(replace(settings, azure_endpoint=slow_base, azure_api_key="az-bench", default_provider="openai"), providers=providers)
    _seed_running_jobs(svc, "openai", n_jobs, "C0OAI")
    _seed_running_jobs(svc, "azure", n_jobs, "C0AZ")
    sender = Sender(svc, "bench")
    sender.send_pending(limit=5000)
    _ctl(base, "/_sandbox/faults", {"latency": LATENCY})
    _ctl(slow_base, "/_sandbox/faults", {"latency": SLOW_LATENCY})
    poller = Poller(svc, "bench", lease_seconds=120, threads=32)
    alone, together = [], []
    for _ in range(cycles):
        alone.append(_lanes(poller, ["openai"])["openai"])
        sender.send_pending(limit=5000)
        time.sleep(max(0.0, settings.poll_interval - alone[-1]["seconds"]) + 0.5)
    for _ in range(cycles):
        together.append(_lanes(poller, ["openai", "azure"]))
        sender.send_pending(limit=5000)
        time.sleep(max(0.0, settings.poll_interval - max(r["seconds"] for r in together[-1].values())) + 0.5)
    poller.close()
    for b in (base, slow_base):
        _ctl(b, "/_sandbox/faults", method="DELETE")
    svc.close()
    return {
        "jobs_per_provider": n_jobs,
        "latency_ms": {"openai": LATENCY * 1000, "azure": SLOW_LATENCY * 1000},
        "poll_threads_per_provider": 32,
        "openai_alone_s": [r["seconds"] for r in alone],
        "openai_beside_slow_azure_s": [r["openai"]["seconds"] for r in together],
        "slow_azure_s": [r["azure"]["seconds"] for r in together],
        "cycles": {"alone": alone, "together": together},
    }


def main() -> int:
    wire()  # what the worker and the web process wire at start-up: this script builds a sender and poller itself
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--cycles", type=int, default=3)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--only", default="one,many,two", help="scenarios to run: one, many, two (comma-separated)")
    ap.add_argument("--two-jobs", type=int, default=500, help="running jobs per provider in the two-provider scenario")
    args = ap.parse_args()
    only = {x.strip() for x in args.only.split(",") if x.strip()}

    tmp = tempfile.mkdtemp(prefix="ftbot-bench-")
    port = _port()
    slow_port = _port()
    sandbox = subprocess.Popen([sys.executable, "-m", "bot.cli", "--log-level", "WARNING", "sandbox", "--port", str(port), "--together-port", "-1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # The second provider's sandbox in a process of its own, as a separate service would be.
    slow_sandbox = subprocess.Popen([sys.executable, "-m", "bot.cli", "--log-level", "WARNING", "sandbox", "--port", str(slow_port), "--together-port", "-1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    slow_base = f"http://127.0.0.1:{slow_port}"
    slack = SlackStandIn(bot_token=TOKEN).start()
    try:
        for b in (base, slow_base):
            for _ in range(200):
                try:
                    _stats(b)
                    break
                except OSError:
                    time.sleep(0.1)
        _ctl(base, "/_sandbox/faults", {"latency": LATENCY})
        db_url = _db_url(args.db, tmp)
        upgrade(db_url)
        settings = replace(Settings(), slack_bot_token=TOKEN, slack_api_url=slack.api_url, openai_api_key="sk-bench", openai_base_url=base + "/v1", database_url=db_url, poll_interval=2.0)
        report: dict = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {args.db}",
        }
        if "one" in only:
            report["one_300_step_job"] = scenario_one_job(base, slack, settings)
        if "many" in only:
            report["many_jobs"] = scenario_many_jobs(base, slack, replace(settings, poll_interval=10.0), args.jobs, args.cycles)
        if "two" in only:
            if "many" in only or "one" in only:
                upgrade(db_url := _db_url(args.db, tempfile.mkdtemp(prefix="ftbot-bench-two-")))
                settings = replace(settings, database_url=db_url)
            report["two_providers"] = scenario_two_providers(base, slow_base, slack, replace(settings, poll_interval=10.0), args.two_jobs, args.cycles)
        report["peak_rss_mb_of_this_process"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        print(json.dumps(report, indent=2))
        return 0
    finally:
        slack.stop()
        for proc in (sandbox, slow_sandbox):
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)


if __name__ == "__main__":
    raise SystemExit(main())
