"""How long the sender takes to choose what to send when the outbox is full.

`--threads` subscriptions with `--per-thread` undelivered messages each; every other thread's
oldest message waits out a backoff (so the rest of that thread waits too). Reports the time of
one `pending_groups` call (target < 0.5 s at 200,000 rows) and checks that only due threads are
chosen. Runs on a fresh SQLite file or a fresh PostgreSQL database (`--db postgres` needs
FTBOT_TEST_POSTGRES_URL).

    python bench/outbox_select.py [--threads 200] [--per-thread 1000] [--db sqlite|postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlalchemy import create_engine, insert, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bot.outbox.sender import Sender  # noqa: E402
from bot.settings import Settings  # noqa: E402
from storage.db import Database, normalise_url  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Job, OutboxMessage, Subscription  # noqa: E402
from storage.types import utcnow  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=200)
    ap.add_argument("--per-thread", type=int, default=1000)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    args = ap.parse_args()
    drop = None
    if args.db == "sqlite":
        url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    else:
        admin = normalise_url(os.environ["FTBOT_TEST_POSTGRES_URL"])
        name = f"ftbot_bench_{uuid.uuid4().hex[:8]}"
        eng = create_engine(admin, isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(admin).set(database=name).render_as_string(hide_password=False)

        def drop() -> None:
            with eng.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    try:
        upgrade(url)
        db = Database(url)
        now, later = utcnow(), utcnow() + timedelta(hours=1)
        with db.session() as s:
            job = Job(provider_job_id="ftjob-bench", status="running", base_model="m")
            s.add(job)
            s.flush()
            subs = []
            for i in range(args.threads):
                sub = Subscription(job_id=job.id, channel_id=f"C{i:05d}")
                s.add(sub)
                s.flush()
                subs.append(sub.id)
        rows = [
            dict(idempotency_key=f"s{sid}:{i}", kind="post", channel_id=f"C{k:05d}", subscription_id=sid, payload={}, attempts=int(i == 0 and k % 2 == 0),
                 next_attempt_at=later if i == 0 and k % 2 == 0 else now, created_at=now)
            for k, sid in enumerate(subs)
            for i in range(args.per_thread)
        ]
        with db.session() as s:
            for i in range(0, len(rows), 10_000):
                s.execute(insert(OutboxMessage), rows[i : i + 10_000])
        # Real Settings rather than a stand-in namespace, so a setting the sender starts reading is there.
        sender = Sender(SimpleNamespace(db=db, settings=Settings(slack_bot_token="x", slack_api_url="http://127.0.0.1:9/api/")), "bench")
        t0 = time.perf_counter()
        groups = sender.pending_groups()
        seconds = time.perf_counter() - t0
        due_subs = {subs[k] for k in range(1, args.threads, 2)}
        with db.session() as s:
            chosen = {s.get(OutboxMessage, g[0]).subscription_id for g in groups}
        assert chosen <= due_subs, "a waiting thread was chosen"
        print(json.dumps({"db": args.db, "rows": len(rows), "threads": args.threads, "groups": len(groups), "messages": sum(map(len, groups)), "seconds": round(seconds, 3)}))
        db.dispose()
    finally:
        if drop is not None:
            drop()


if __name__ == "__main__":
    main()
