"""Evaluation speed and memory: 200 examples x 2 models (a fine-tuned sandbox model and its base),
the sandbox (its own process) answering each chat completion after 300 ms, through the real openai
client, the store on SQLite (or PostgreSQL), scored and summarised. Reports wall time, requests,
peak RSS of this process (ftbot's side only: the sandbox runs elsewhere).

Target: under 15 s wall and 150 MB peak on 2 cores.

    python bench/eval.py [--examples 200] [--latency 0.3] [--concurrency 8] [--db sqlite|postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import openai  # noqa: E402

from bot.evals import sampling, store  # noqa: E402
from bot.evals.examples import parse_bytes  # noqa: E402
from bot.evals.runner import EvalRunner  # noqa: E402
from bot.evals.summary import summarise  # noqa: E402
from bot.provider.openai_adapter import OpenAIProvider  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402

BASE = "gpt-4o-mini-2024-07-18"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict) -> None:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req).read()


def _dataset(n: int) -> bytes:
    rows = []
    for i in range(n):
        rows.append({"messages": [
            {"role": "system", "content": "You answer questions about orders in one short sentence."},
            {"role": "user", "content": f"Where is order {i}? It was placed on day {i % 28 + 1} and I still have nothing."},
            {"role": "assistant", "content": f"Order {i} left our warehouse on day {i % 28 + 3} and arrives within two days."},
        ]})
    return "\n".join(json.dumps(r) for r in rows).encode()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=200)
    ap.add_argument("--latency", type=float, default=0.3)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    args = ap.parse_args()

    port = _port()
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "--log-level", "WARNING", "sandbox", "--port", str(port), "--together-port", "-1", "--step-seconds", "0.01", "--validating-seconds", "0.05", "--queued-seconds", "0.05"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    tmp = tempfile.mkdtemp(prefix="ftbot-bench-eval-")
    drop = None
    if args.db == "postgres":
        from tests.conftest import fresh_postgres_db

        db_url, drop = fresh_postgres_db()
    else:
        db_url = f"sqlite:///{tmp}/bench.db"
    try:
        client = openai.OpenAI(api_key="sk-bench", base_url=base_url, max_retries=5)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.models.list()
                break
            except openai.APIConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        content = _dataset(args.examples)
        f = client.files.create(file=("bench.jsonl", content), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model=BASE, training_file=f.id, method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1, "batch_size": 32}}})
        while not (model := client.fine_tuning.jobs.retrieve(job.id).fine_tuned_model):
            time.sleep(0.1)
        _post(f"{base_url.removesuffix('/v1')}/_sandbox/faults", {"latency": args.latency})
        upgrade(db_url)
        db = Database(db_url)
        provider = OpenAIProvider(api_key="sk-bench", base_url=base_url, max_retries=0, timeout=30)

        t0 = time.perf_counter()
        parsed = parse_bytes(content)
        got = sampling.sample(parsed.examples, args.examples, seed=1, models=[(model, BASE), (BASE, None)])
        spec = store.RunSpec(request_key="bench", model=model, provider="openai", baseline=BASE, baseline_provider="openai", scores=("exact", "similarity", "json", "tools"), source_file=f.id, source_note="bench")
        run, _ = store.create_run(db, spec, got.examples, got.prompt_tokens, skipped=got.skipped, estimate={})
        t_prepared = time.perf_counter()
        out = EvalRunner(db, {"openai": provider}, "bench", concurrency=args.concurrency).drive(run.id)
        t_done = time.perf_counter()
        summary = out.run.summary
        summarise(out.run, store.rows(db, run.id))  # once more: the report's cost on its own
        t_summary = time.perf_counter() - t_done
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        requests = args.examples * 2
        print(f"machine: {platform.machine()} {os.cpu_count()} cores, {platform.python_version()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, db={args.db}")
        print(f"{args.examples} examples x 2 models, sandbox latency {args.latency * 1000:.0f} ms, FTBOT_EVAL_CONCURRENCY={args.concurrency}")
        print(f"prepare (sample, count tokens, store {args.examples} examples + {requests} answer rows): {t_prepared - t0:.2f} s")
        print(f"ask + record + summarise: {t_done - t_prepared:.2f} s (lower bound at this concurrency: {requests * args.latency / args.concurrency:.2f} s)")
        print(f"summary alone: {t_summary:.2f} s")
        print(f"wall: {t_done - t0:.2f} s   peak RSS: {peak_mb:.0f} MB   status: {out.status}, scored {summary['scored']}")
        c = summary["comparisons"]["exact"]
        print(f"exact match {c['baseline'] * 100:.0f} % -> {c['model'] * 100:.0f} % ({c['diff'] * 100:+.0f} pts [{c['ci_low'] * 100:+.0f}, {c['ci_high'] * 100:+.0f}])")
        db.dispose()
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
        if drop is not None:
            drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
