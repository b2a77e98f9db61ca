"""The last approvals arriving at the same instant on two app processes delete the model once.

Two complete ftbot apps (each its own Bolt app, HTTP server, engine and provider client) share one
PostgreSQL database, as two `ftbot serve` processes would; only the database can keep them apart.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, text

from storage.db import normalise_url
from tests.approvals.conftest import Team, add_model, deletes
from tests.conftest import wait_for

ROUNDS = 12


def _lock_waiters(engine) -> int:  # noqa: ANN001
    with engine.connect() as c:
        return c.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")).scalar()


@pytest.mark.postgres
def test_simultaneous_final_approvals_on_two_apps_delete_once(start_bot, slack, sandbox) -> None:  # noqa: ANN001
    from storage.migrate import upgrade
    from tests.conftest import fresh_postgres_db

    url, drop = fresh_postgres_db()
    try:
        upgrade(url)
        watcher = create_engine(normalise_url(url))
        a = Team(start_bot(url, approvals_required=2), slack, sandbox)
        # As in production, a worker delivers what an app's immediate send left (another app held the claim).
        b = Team(start_bot(url, approvals_required=2, worker=True), slack, sandbox)
        for i in range(ROUNDS):
            model = add_model(sandbox, f"ft:gpt-4o-mini-2024-07-18:org-sandbox:race{i}:{i:08d}")
            a.ask(f"delete-model {model} round {i}")
            req = a.request()
            # Neither vote alone is enough: without the row lock each would count only itself and
            # nothing would run; without the conditional update both could run the delete.
            answered = len(slack.responses())
            gate = threading.Barrier(2)
            replies: list[int] = []

            def vote(team: Team, user: str, rid: int = req.id, gate: threading.Barrier = gate, replies: list[int] = replies) -> None:
                gate.wait()
                replies.append(team.bot.slack.block_action("approval_approve", str(rid), user=user).status)

            threads = [threading.Thread(target=vote, args=(a, "U0002")), threading.Thread(target=vote, args=(b, "U0003"))]
            held = None
            if i % 2 == 0:
                # Make the two transactions truly overlap: hold new votes back until both clicks are
                # inside the database waiting, then let them go at once.
                held = watcher.connect()
                held.begin()
                held.execute(text("LOCK TABLE approval_votes IN SHARE ROW EXCLUSIVE MODE"))
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert replies == [200, 200]
            if held is not None:
                wait_for(lambda: _lock_waiters(watcher) >= 2)
                held.rollback()
                held.close()
            wait_for(lambda rid=req.id: a.request().id == rid and a.request().status == "done", timeout=15)
            # Both voters hear back (one counted, one told it is already approved or done) before the next round.
            wait_for(lambda n=answered: len(slack.responses()) >= n + 2)
            assert model not in sandbox.state.models
            assert deletes(sandbox) == i + 1, f"round {i}: {deletes(sandbox)} delete calls"
            a.wait_message(req.id, "Deleted")
        assert deletes(sandbox) == ROUNDS
    finally:
        if "watcher" in locals():
            watcher.dispose()
        drop()
